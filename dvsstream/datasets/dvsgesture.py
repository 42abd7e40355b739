"""DVS128 Gesture: its classes, its layouts under a root folder (detected; a folder that
mixes tonic's with another, or holds none, gets one line saying what was looked for
where) and its listing.

==================  =======================================================================
layout              under ``root``
==================  =======================================================================
tonic               ``DVSGesture/ibmGestureTrain/userNN_<lighting>/<label>.npy`` and
                    ``DVSGesture/ibmGestureTest/...``; ``<label>`` = 0..10; (N, 4) arrays with
                    columns x, y, p, t, t in **ms** (multiplied by 1000, as tonic does)
raw (the release)   ``DvsGesture/userNN_<lighting>.aedat`` (AEDAT 3.1) +
                    ``userNN_<lighting>_labels.csv`` (class 1..11, start, end µs), and
                    ``trials_to_train.txt`` / ``trials_to_test.txt``; each labelled segment
                    ``[start, end)`` of a file is one sample (spikingjelly's samples exactly)
spikingjelly        spikingjelly's root: ``extract/DvsGesture/`` (the raw release),
                    ``events_np/train|test/<label>/*.npz``,
                    ``frames_number_<T>_split_by_<s>/train|test/<label>/*.npz``
dvsstream synth     ``synth --out`` folder (``synth_summary.json``): its ``tonic/DVSGesture/``,
                    else its ``hdf5/train|test/<class_name>_<index>.h5``
                    (:mod:`dvsstream.datasets.synth_layout`)
==================  =======================================================================

Split: the official user split (users 1-23 train, 24-29 test); tonic's archives and
spikingjelly's folders are already split; the raw release lists its trials in
``trials_to_{train,test}.txt`` (when those are missing, the user number decides).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np

from dvsstream.errors import DvsstreamError
from dvsstream.datasets.listing import Layout, Sample, file_stamp, sj_frames_layout
from dvsstream.datasets.spec import FrameSpec
from dvsstream.datasets.synth_layout import (
    list_synth_hdf5,
    synth_gesture_base,
    synth_output_near,
    synth_outputs_in,
)

__all__ = ["GESTURE_CLASSES", "list_gesture"]

log = logging.getLogger(__name__)

#: tonic 1.7 ``DVSGesture.classes`` (label = index; the raw release's class id = index + 1)
GESTURE_CLASSES: tuple[str, ...] = (
    "Hand clapping",
    "Right hand wave",
    "Left hand wave",
    "Right arm cw",
    "Right arm ccw",
    "Left arm cw",
    "Left arm ccw",
    "Arm roll",
    "Air drums",
    "Air guitar",
    "Other gestures",
)
#: official DVS128 Gesture user split
_GESTURE_TRAIN_USERS = range(1, 24)


_USER_DIR = re.compile(r"^user(\d+)_(.+)$")


def _gesture_tonic_dirs(root: Path) -> Optional[Path]:
    for base in (root / "DVSGesture", root):
        if (base / "ibmGestureTrain").is_dir() or (base / "ibmGestureTest").is_dir():
            return base
    return None


def _gesture_raw_dir(root: Path) -> Optional[Path]:
    for base in (root / "DvsGesture", root / "DVSGesture", root):
        if base.is_dir() and any(base.glob("user*.aedat")):
            return base
    return None


def _gesture_missing(root: Path) -> str:
    """The one line for a ``root`` holding no DVS128 Gesture layout: the right ``--root``
    when ``root`` sits inside a ``dvsstream synth`` output, else the layouts looked for,
    briefly (the README's Datasets section has them in full)."""
    synth = synth_output_near(root)
    if synth is not None and synth != root.resolve():
        return f"{root} holds no DVS128 Gesture layout; it is inside the dvsstream synth output {synth}: pass --root {synth}"
    below = synth_outputs_in(root)
    if below:
        return (f"no DVS128 Gesture data under {root}; it holds the dvsstream synth output(s) "
                f"{', '.join(p.name for p in below)}: pass --root {below[0]}")
    return (f"no DVS128 Gesture data under {root}; expected tonic's DVSGesture/ibmGestureTrain|ibmGestureTest/, the "
            f"raw release's DvsGesture/*.aedat, spikingjelly's events_np/ or frames_number_<T>_split_by_<s>/, or "
            f"a dvsstream synth --out folder (see the README's Datasets section)")


def _list_gesture_tonic(base: Path, split: str) -> tuple[list[Sample], dict[str, Any], list]:
    folders = {"train": ["ibmGestureTrain"], "test": ["ibmGestureTest"],
               "all": ["ibmGestureTrain", "ibmGestureTest"]}[split]
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    for folder in folders:
        d = base / folder
        if not d.is_dir():
            raise DvsstreamError(
                f"{d} not found: the {split} split of DVS128 Gesture (tonic layout) needs it; "
                f"unpack {folder}.tar.gz into {base}/"
            )
        for user_dir in sorted(p for p in d.iterdir() if p.is_dir()):
            if not _USER_DIR.match(user_dir.name):
                log.warning("DVS128 Gesture: ignoring %s (not a userNN_<lighting> folder)", user_dir)
                continue
            files = [p for p in user_dir.glob("*.npy")]
            for p in sorted(files, key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0, p.name)):
                if not p.stem.isdigit() or not 0 <= int(p.stem) < len(GESTURE_CLASSES):
                    skipped.append((str(p), f"file name is not a class index 0..{len(GESTURE_CLASSES) - 1}"))
                    continue
                samples.append(Sample(str(p), int(p.stem), stamp=file_stamp(p)))
    info = {"layout": "tonic DVSGesture/ibmGesture{Train,Test}/userNN_<lighting>/<label>.npy", "folder": str(base),
            "split_rule": "tonic's ibmGestureTrain / ibmGestureTest folders (users 1-23 train, 24-29 test)"}
    return samples, info, skipped


def _trial_list(path: Path) -> Optional[list[str]]:
    if not path.is_file():
        return None
    names = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(Path(line).name)
    return names


def _list_gesture_raw(base: Path, split: str) -> tuple[list[Sample], dict[str, Any], list]:
    from dvsstream.io.aedat3 import labels_path_for, read_gesture_labels

    files = sorted(base.glob("user*.aedat"))
    train_list = _trial_list(base / "trials_to_train.txt")
    test_list = _trial_list(base / "trials_to_test.txt")
    by_name = {p.name: p for p in files}
    if train_list is not None and test_list is not None:
        rule = "trials_to_train.txt / trials_to_test.txt"
        chosen = {"train": train_list, "test": test_list, "all": train_list + test_list}[split]
        missing = [n for n in chosen if n not in by_name]
        if missing:
            log.warning("DVS128 Gesture: %d trial(s) listed for %s are not in %s (e.g. %s)",
                        len(missing), split, base, ", ".join(missing[:3]))
        chosen_paths = [by_name[n] for n in chosen if n in by_name]
    else:
        rule = "user number (no trials_to_*.txt found): users 1-23 train, 24-29 test"
        log.warning("DVS128 Gesture: %s/trials_to_train.txt or trials_to_test.txt missing; splitting by %s",
                    base, rule)
        chosen_paths = []
        for p in files:
            m = _USER_DIR.match(p.stem)
            if not m:
                continue
            is_train = int(m.group(1)) in _GESTURE_TRAIN_USERS
            if split == "all" or (split == "train") == is_train:
                chosen_paths.append(p)
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    for p in chosen_paths:
        csv_path = labels_path_for(p)
        if not csv_path.is_file():
            skipped.append((str(p), f"labels file {csv_path.name} missing"))
            continue
        try:
            labels = read_gesture_labels(csv_path)
        except DvsstreamError as exc:
            skipped.append((str(p), str(exc)))
            continue
        stamp = file_stamp(p, csv_path)
        for k, (start, end, label) in enumerate(labels.tolist()):
            if not 0 <= label < len(GESTURE_CLASSES):
                skipped.append((f"{p}#{k}", f"class id {label + 1} outside 1..{len(GESTURE_CLASSES)}"))
                continue
            samples.append(Sample(str(p), int(label), int(start), int(end), k, stamp))
    info = {"layout": "raw DvsGesture/userNN_<lighting>.aedat + _labels.csv", "folder": str(base), "split_rule": rule}
    return samples, info, skipped


def _list_gesture_sj(layout: Layout, split: str) -> tuple[list[Sample], dict[str, Any], list]:
    """spikingjelly's ``events_np`` / ``frames_number_*`` Gesture folders:
    ``<base>/train|test/<label>/<user>_<k>.npz`` (label = class - 1)."""
    folders = {"train": ["train"], "test": ["test"], "all": ["train", "test"]}[split]
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    for folder in folders:
        d = layout.base / folder
        if not d.is_dir():
            raise DvsstreamError(f"{d} not found: the {split} split of DVS128 Gesture ({layout.name}) needs it")
        for label_dir in sorted((p for p in d.iterdir() if p.is_dir()), key=lambda p: p.name):
            name = label_dir.name
            if not name.isdigit() or not 0 <= int(name) < len(GESTURE_CLASSES):
                skipped.append((str(label_dir), f"folder name is not a label 0..{len(GESTURE_CLASSES) - 1}"))
                continue
            for p in sorted(label_dir.glob("*.npz")):
                samples.append(Sample(str(p), int(name), stamp=file_stamp(p), kind=layout.kind))
    info = {"layout": layout.name, "folder": str(layout.base),
            "split_rule": "spikingjelly's train/ and test/ folders (from trials_to_train/test.txt)"}
    return samples, info, skipped


def _detect_gesture(root: Path, spec: FrameSpec) -> tuple[str, Path, Optional[Layout]]:
    """-> ``(kind, base, sj layout)``: kind is "tonic", "raw", "sj" or "synth_hdf5" (a
    ``dvsstream synth`` folder's recordings). Raises one line for a folder that mixes
    layouts, or holds none."""
    synth = synth_gesture_base(root)  # synth --out S: S/tonic/DVSGesture, else S/hdf5
    if synth is not None:
        return synth[0], synth[1], None
    found = []
    tonic = _gesture_tonic_dirs(root)
    if tonic is not None:
        found.append(("tonic", tonic, None))
    raw = _gesture_raw_dir(root)
    extract = root / "extract" / "DvsGesture"
    if raw is None and extract.is_dir() and any(extract.glob("user*.aedat")):
        raw = extract
    if raw is not None:
        found.append(("raw", raw, None))
    frames, why_not = sj_frames_layout(root, spec, "train|test/<label>")
    events = root / "events_np"
    if frames is not None:
        found.append(("sj", frames.base, frames))
    elif (events / "train").is_dir() or (events / "test").is_dir():
        note = "; ".join(f"{w}: not used" for w in why_not)
        found.append(("sj", events, Layout("spikingjelly events_np/train|test/<label>/*.npz", events, "*.npz",
                                             "events_npz", note)))
    kinds = {k for k, _, _ in found}
    if "tonic" in kinds and len(kinds) > 1:
        raise DvsstreamError(f"{root} mixes layouts: " + ", ".join(f"{k} at {b}" for k, b, _ in found)
                             + "; point --root at one of them")
    if not found:
        if why_not:
            raise DvsstreamError(f"{root}: spikingjelly's frames cannot be used ({'; '.join(why_not)}) and there "
                                 f"is no events_np/ or extract/DvsGesture/ to bin from")
        raise DvsstreamError(_gesture_missing(root))
    # spikingjelly's root holds extract/ (the raw release) beside events_np/ and frames: the
    # converted samples are the same data; the frames (then events_np) are used
    for kind in ("tonic", "sj", "raw"):
        for k, base, layout in found:
            if k == kind:
                return k, base, layout
    raise AssertionError("unreachable")


def list_gesture(root: Path, split: str, spec: FrameSpec) -> tuple[list[Sample], dict[str, Any], list]:
    kind, base, layout = _detect_gesture(root, spec)
    if kind == "tonic":
        samples, info, skipped = _list_gesture_tonic(base, split)
    elif kind == "sj":
        samples, info, skipped = _list_gesture_sj(layout, split)
        if layout.note:
            info["layout_note"] = layout.note
            log.info("DVS128 Gesture at %s: %s", root, layout.note)
    elif kind == "synth_hdf5":
        samples, info, skipped = list_synth_hdf5(base, split, len(GESTURE_CLASSES))
    else:
        samples, info, skipped = _list_gesture_raw(base, split)
    counts = np.bincount([s.label for s in samples], minlength=len(GESTURE_CLASSES))
    msg = (f"DVS128 Gesture ({info['layout']}) at {base}: the {split} split holds {len(samples)} samples "
           f"({', '.join(str(int(c)) for c in counts)} per class)")
    if skipped:
        msg += f"; {len(skipped)} skipped while listing"
    info["message"] = msg
    info["found_per_class"] = {c: int(n) for c, n in zip(GESTURE_CLASSES, counts)}
    (log.warning if skipped or not samples else log.info)(msg)
    return samples, info, skipped
