"""CIFAR10-DVS: its classes, its layouts under a root folder (detected; a folder that mixes
two, or holds none, gets one line saying what was looked for where) and its listing.

==================  =======================================================================
layout              under ``root``
==================  =======================================================================
tonic               ``CIFAR10DVS/<class>/*.aedat4`` (``<class>`` = airplane ... truck), 128x128
original release    ``CIFAR10DVS/<class>/cifar10_<class>_<k>.aedat``
                    (AEDAT 2.0, jAER DVS128 addresses)
spikingjelly        spikingjelly's root: ``extract/<class>/*.aedat`` (the originals),
                    ``events_np/<class>/*.npz`` (keys t, x, y, p) or
                    ``frames_number_<T>_split_by_<number|time>/<class>/*.npz`` (key
                    ``frames``, ``[T, 2, 128, 128]``, used as-is when T and the split match
                    the FrameSpec; else events_np/ or extract/ are binned and the reason is
                    in ``info["layout_note"]``)
==================  =======================================================================

tonic's ``.aedat4`` re-export is read as stored: its relation to the originals is not
verified (see :mod:`dvsstream.datasets.release`).

Split: CIFAR10-DVS has no official split. The releases' one (spikingjelly's
``split_to_train_test_set``): per class, files in sorted (string) name order, the first
``math.ceil(0.9 * n)`` train, the rest test (900/100 for the full 1000 per class; 9/1 for
10; 11/1 for 12; 4/0 for 4). ``info["split_rule"]`` says which rule was used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from dvsstream.errors import DvsstreamError
from dvsstream.datasets.listing import Layout, Sample, file_stamp, sj_frames_layout
from dvsstream.datasets.release import SPLIT_RULE, release_split
from dvsstream.datasets.synth_layout import synth_output_near
from dvsstream.datasets.spec import FrameSpec

__all__ = ["CIFAR10DVS_CLASSES", "cifar10dvs_split", "list_cifar10dvs"]

log = logging.getLogger(__name__)

#: tonic 1.7 ``CIFAR10DVS.classes`` order (label = index)
CIFAR10DVS_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
#: recordings per class in the full CIFAR10-DVS set
_CIFAR_PER_CLASS = 1000


def cifar10dvs_split(files: Sequence[str], split: str) -> list[str]:
    """The releases' per-class split of one class's files: sorted by name, first
    ``math.ceil(0.9 n)`` train, the rest test (``split="all"``: all, sorted); see
    :func:`dvsstream.datasets.release.release_split`."""
    return release_split(files, split)


def _class_files(base: Path, pattern: str) -> dict[str, list[str]]:
    """``{class: [file names]}`` for the CIFAR10-DVS classes under ``base``."""
    out = {}
    for cls in CIFAR10DVS_CLASSES:
        d = base / cls
        out[cls] = sorted(p.name for p in d.glob(pattern) if p.is_file()) if d.is_dir() else []
    return out


def _cifar_expected(root: Path) -> str:
    return ("looked for tonic's CIFAR10DVS/<class>/*.aedat4, the original release's CIFAR10DVS/<class>/*.aedat and "
            "spikingjelly's extract/<class>/*.aedat, events_np/<class>/*.npz or frames_number_<T>_split_by_<s>/<class>/, "
            "<class> one of "
            f"{', '.join(CIFAR10DVS_CLASSES)} (see the README's Datasets section)")


def _detect_cifar(root: Path, spec: FrameSpec) -> Layout:
    """The one CIFAR10-DVS layout under ``root`` (see :func:`_cifar_expected`). Raises
    one line for a folder that mixes layouts, or holds none."""
    synth = synth_output_near(root)
    if synth is not None:
        raise DvsstreamError(f"{root} is in the dvsstream synth output {synth}, a DVS128 Gesture-like set: "
                             f"pass --dataset dvsgesture --root {synth}")
    base = root / "CIFAR10DVS"
    tonic_n = sum(map(len, _class_files(base, "*.aedat4").values())) if base.is_dir() else 0
    orig_n = sum(map(len, _class_files(base, "*.aedat").values())) if base.is_dir() else 0
    if tonic_n and orig_n:
        raise DvsstreamError(f"{base} mixes layouts: {tonic_n} tonic .aedat4 and {orig_n} original .aedat files; "
                             f"keep one of them there (move the other into a folder of its own)")
    sj = {name: sum(map(len, _class_files(root / name, pat).values()))
          for name, pat in (("extract", "*.aedat"), ("events_np", "*.npz"))}
    frames, why_not = sj_frames_layout(root, spec, "<class>")
    sj_found = [f"{k}/ ({n} files)" for k, n in sj.items() if n]
    if frames is not None:
        sj_found.append(f"{frames.base.name}/")
    if (tonic_n or orig_n) and sj_found:
        raise DvsstreamError(f"{root} mixes layouts: {base}/ and spikingjelly's {', '.join(sj_found)}; "
                             f"point --root at one of them")
    if tonic_n:
        return Layout("tonic CIFAR10DVS/<class>/*.aedat4", base, "*.aedat4", "file",
                       "tonic's .aedat4 re-export is read as stored: its relation to the original files' "
                       "orientation and polarity is not verified (see dvsstream.datasets.release)")
    if orig_n:
        return Layout("original CIFAR10DVS/<class>/*.aedat", base, "*.aedat", "aedat2")
    if frames is not None:
        return frames
    note = "; ".join(f"{w}: not used" for w in why_not)
    if sj["events_np"]:
        return Layout("spikingjelly events_np/<class>/*.npz", root / "events_np", "*.npz", "events_npz", note)
    if sj["extract"]:
        return Layout("spikingjelly extract/<class>/*.aedat", root / "extract", "*.aedat", "aedat2", note)
    if why_not:
        raise DvsstreamError(f"{root}: spikingjelly's frames cannot be used ({'; '.join(why_not)}) and there is no "
                             f"events_np/ or extract/ to bin from; re-export the frames with spikingjelly or pass "
                             f"matching --bins/--frames")
    if not root.is_dir() or not any(root.iterdir()):
        raise DvsstreamError(f"{base} not found; {_cifar_expected(root)}")
    raise DvsstreamError(f"no .aedat4, .aedat or .npz files under {root}; {_cifar_expected(root)}")


def list_cifar10dvs(root: Path, split: str, spec: FrameSpec) -> tuple[list[Sample], dict[str, Any]]:
    layout = _detect_cifar(root, spec)
    samples: list[Sample] = []
    found: dict[str, int] = {}
    for label, (cls, files) in enumerate(_class_files(layout.base, layout.pattern).items()):
        found[cls] = len(files)
        for name in release_split(files, split):
            p = layout.base / cls / name
            samples.append(Sample(str(p), label, stamp=file_stamp(p), kind=layout.kind))
    total = sum(found.values())
    if layout.note:
        log.warning("CIFAR10-DVS at %s: %s", layout.base, layout.note)
    per_class = ", ".join(f"{c} {n}" for c, n in found.items())
    info = {"layout": layout.name, "folder": str(layout.base), "found_per_class": found,
            "found": total, "expected": _CIFAR_PER_CLASS * len(CIFAR10DVS_CLASSES), "split_rule": SPLIT_RULE}
    if layout.note:
        info["layout_note"] = layout.note
    msg = (f"CIFAR10-DVS ({layout.name}) at {layout.base}: found {total} of {info['expected']} recordings "
           f"({per_class}); the {split} split holds {len(samples)}")
    if any(n != _CIFAR_PER_CLASS for n in found.values()):
        missing = [c for c, n in found.items() if n == 0]
        log.warning(msg + (f"; no files for {', '.join(missing)}" if missing else "") + " (partial set)")
    else:
        log.info(msg)
    info["message"] = msg
    return samples, info
