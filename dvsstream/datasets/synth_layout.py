"""``dvsstream synth``'s output folder as a DVS128 Gesture root.

``synth --out S`` writes ``S/synth_summary.json`` (:data:`dvsstream.synth.SUMMARY_NAME`),
``S/tonic/DVSGesture/ibmGesture{Train,Test}/...`` (tonic's layout) and
``S/hdf5/{train,test}/<class_name>_<index>.h5`` (see :mod:`dvsstream.synth.dataset`).
``--root S`` finds the set under it: tonic's folder when there is one (the same events as
the HDF5 files), else the HDF5 recordings (``synth --format hdf5``), whose label is the
class name in the file name (the summary's ``class_names``, in DVS128 Gesture's order).

:func:`synth_output_near` finds the synth folder a wrong ``--root`` sits in (or above),
or the ones inside it (:func:`synth_outputs_in`), for the error message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dvsstream.datasets.listing import Sample, file_stamp
from dvsstream.errors import DvsstreamError
from dvsstream.synth import SUMMARY_NAME

__all__ = ["is_synth_output", "list_synth_hdf5", "synth_gesture_base", "synth_output_near", "synth_outputs_in"]

#: the split folders of the synthetic set's HDF5 recordings
_HDF5_SPLITS = {"train": ["train"], "test": ["test"], "all": ["train", "test"]}


def is_synth_output(folder: Path) -> bool:
    """``folder`` holds a ``dvsstream synth`` summary."""
    return (Path(folder) / SUMMARY_NAME).is_file()


def synth_gesture_base(root: Path) -> tuple[str, Path] | None:
    """For a synth output folder ``root``: ``("tonic", root/tonic/DVSGesture)`` or
    ``("synth_hdf5", root/hdf5)``, whichever it holds (tonic's first); None for any
    other folder."""
    if not is_synth_output(root):
        return None
    tonic = root / "tonic" / "DVSGesture"
    if (tonic / "ibmGestureTrain").is_dir() or (tonic / "ibmGestureTest").is_dir():
        return "tonic", tonic
    if (root / "hdf5").is_dir():
        return "synth_hdf5", root / "hdf5"
    return None


def synth_output_near(root: Path, levels: int = 4) -> Path | None:
    """The synth output folder ``root`` is inside of (``root`` itself or up to ``levels``
    folders above it), or None."""
    p = Path(root).resolve()
    for folder in [p, *p.parents][: levels + 1]:
        if is_synth_output(folder):
            return folder
    return None


def synth_outputs_in(folder: Path, most: int = 3) -> list[Path]:
    """Up to ``most`` synth output folders directly inside ``folder`` (sorted by name)."""
    try:
        children = sorted(p for p in Path(folder).iterdir() if p.is_dir())
    except OSError:
        return []
    return [p for p in children if is_synth_output(p)][:most]


def _class_names(summary_dir: Path, n_classes: int) -> list[str]:
    """The synthetic set's class names (its summary's ``class_names``), in label order."""
    path = summary_dir / SUMMARY_NAME
    try:
        names = json.loads(path.read_text())["class_names"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DvsstreamError(f"{path}: cannot read the class names ({type(exc).__name__}: {exc}); "
                             f"run dvsstream synth again into an empty folder") from None
    if not isinstance(names, list) or len(names) != n_classes:
        raise DvsstreamError(f"{path}: expected {n_classes} class names, got {names!r}")
    return [str(n) for n in names]


def list_synth_hdf5(base: Path, split: str, n_classes: int) -> tuple[list[Sample], dict[str, Any], list]:
    """The synthetic set's HDF5 recordings under ``base`` (``S/hdf5``) for ``split``:
    ``(samples, info, skipped)``; the label is the class name before ``_<index>.h5``."""
    label_of = {name: k for k, name in enumerate(_class_names(base.parent, n_classes))}
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    for folder in _HDF5_SPLITS[split]:
        d = base / folder
        if not d.is_dir():
            raise DvsstreamError(f"{d} not found: the {split} split of the synthetic set needs it; "
                                 f"run dvsstream synth again into an empty folder")
        for p in sorted(d.glob("*.h5")):
            name = p.stem.rpartition("_")[0]
            if name not in label_of:
                skipped.append((str(p), "file name does not start with one of the set's class names"))
                continue
            samples.append(Sample(str(p), label_of[name], stamp=file_stamp(p)))
    samples.sort(key=lambda s: (s.label, s.path))
    info = {"layout": "dvsstream synth hdf5/train|test/<class_name>_<index>.h5", "folder": str(base),
            "split_rule": "synth's train/ and test/ folders (the last recording sessions are test)"}
    return samples, info, skipped
