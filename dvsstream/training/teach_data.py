"""The data of ``dvsstream teach``: class folders of recordings, checked, and their windows.

* **Classes** (:func:`find_classes`): every first-level folder of ``ROOT`` is a class, named
  after the folder; its recordings are every readable file under it, at any depth, in any
  format the readers know (:func:`~dvsstream.datasets.recordings.find_recordings`).
  ``ROOT/_background/`` is the optional "nothing" class (named ``background_name``,
  default ``"nothing``"). Hidden folders (``.x``) are left out; other folders starting with
  ``_`` are reserved and refused, as is a recording lying directly in ``ROOT`` (it has no
  class).
* **Labels** (:func:`label_key`): two class names may not become the same label. A name's
  label is its Unicode NFKC form, case-folded, with every run of spaces, ``_`` and ``-``
  made one ``_`` and none at either end: ``"Wave"`` and ``"wave"``, or ``"a b"``, ``"a_b"``
  and ``"a-b"``, are one label and refused together. The class names the checkpoint
  carries (what ``run`` prints) are the folder names as they are; classes are ordered by
  label, the "nothing" class last.
* **Checks** (:func:`read_classes`): at least two classes; each with at least
  :data:`MIN_CLASS_SECONDS` of events (the sum of its recordings' first-to-last event
  spans); an unreadable recording stops the command naming it, or is left out with
  ``skip_unreadable`` (a class left empty is then refused).
* **Windows** (:func:`cut_windows`): every recording is cut with the live binning (window,
  bins, hop; the region and size that feed the model from *that file's* sensor) exactly as
  ``run`` cuts it (:func:`~dvsstream.datasets.recordings.recording_windows`). The first
  80 % of each recording, in time, gives the training windows, the last 20 %
  (:data:`HELD_OUT`) the held-out ones; no window straddles the cut. Windows with fewer
  than ``min_events`` events are left out. With ``background_from_quiet`` the quiet windows
  of every recording (fewer events than :data:`QUIET_SHARE` of that recording's median
  window) are the "nothing" class instead, and its other windows its own class.

Times are µs unless named ``_s`` / ``seconds``.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dvsstream.binning.geometry import BinningConfig
from dvsstream.errors import DvsstreamError

__all__ = ["BACKGROUND_FOLDER", "HELD_OUT", "MIN_CLASS_SECONDS", "QUIET_SHARE", "TeachClass", "TeachWindows",
           "class_names", "cut_windows", "find_classes", "label_key", "read_classes", "teach_binning"]

#: the folder of the optional "nothing" class
BACKGROUND_FOLDER = "_background"
#: the share of every recording (its end, in time) held out for the report and early stopping
HELD_OUT = 0.2
#: the least events a class needs, in seconds (the sum of its recordings' event spans)
MIN_CLASS_SECONDS = 2.0
#: ``background_from_quiet``: a window is quiet below this share of its recording's median window
QUIET_SHARE = 0.1
#: the formats named when a class folder holds none
_FORMATS = "AEDAT 2/3.1/4, HDF5, .npy, Prophesee RAW/DAT, ATIS .bin"


def label_key(name: str) -> str:
    """The label a class name becomes (see the module docstring): NFKC, case-folded,
    runs of spaces / ``_`` / ``-`` made one ``_``, none at either end."""
    key = unicodedata.normalize("NFKC", name).casefold()
    return re.sub(r"[\s_\-]+", "_", key).strip("_")


@dataclass
class TeachClass:
    """One class: its ``name`` (what the checkpoint carries), its ``folder``, its
    recordings ``files``, whether it is the "nothing" class (``background``), and once
    read (:func:`read_classes`) the ``seconds`` of events and the ``sensors`` ``(width,
    height)`` per file."""

    name: str
    folder: Path
    files: list[Path]
    background: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    sensors: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return label_key(self.name)

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds.values()))


def _class_folders(root: Path) -> list[Path]:
    """The class folders of ``root`` (hidden ones left out); a recording directly in
    ``root`` or a reserved ``_`` folder is refused."""
    from dvsstream.io import detect_format

    folders = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.name.startswith("_") and entry.name != BACKGROUND_FOLDER:
                raise DvsstreamError(f"{entry}: folder names starting with _ are reserved ({BACKGROUND_FOLDER} is "
                                     "the \"nothing\" class); rename it")
            folders.append(entry)
            continue
        try:
            detect_format(entry)
        except DvsstreamError:
            continue  # a README, a picture: not ours to judge
        raise DvsstreamError(f"{entry}: a recording directly in ROOT has no class; move it into "
                             f"{root}/<class name>/")
    return folders


def find_classes(root: str | os.PathLike, background_name: str = "nothing") -> list[TeachClass]:
    """The classes under ``root`` (see the module docstring), ordered by label, the
    "nothing" class last. Raises :class:`DvsstreamError` (one line) for a folder without
    a readable recording or names that collide as labels (how many classes are enough is
    :func:`check_class_names`'s, once a "nothing" class of quiet windows is counted)."""
    from dvsstream.datasets.recordings import find_recordings

    root = Path(root).expanduser()
    if not root.is_dir():
        raise DvsstreamError(f"ROOT {root}: no such folder")
    classes = []
    for folder in _class_folders(root):
        files = find_recordings(folder)
        if not files:
            raise DvsstreamError(f"{folder}: the class folder holds no recording ({_FORMATS}); add recordings or "
                                 "remove the folder")
        background = folder.name == BACKGROUND_FOLDER
        classes.append(TeachClass(background_name if background else folder.name, folder, files, background))
    check_class_names(classes, root, least=0)
    return sorted(classes, key=lambda c: (c.background, c.key))


def check_class_names(classes: Sequence[TeachClass], root: Path, extra: Sequence[str] = (), least: int = 2) -> None:
    """Names that collide as labels or make an empty one, or fewer than ``least``
    classes (counting ``extra`` names: a "nothing" class of quiet windows, which
    ``--background-name`` names) raise one line."""
    seen: dict[str, TeachClass] = {}
    for c in classes:
        if not c.key:
            raise DvsstreamError(f"{c.folder}: the class name {c.name!r} makes an empty label; rename the folder")
        if c.key in seen:
            a, b = seen[c.key], c
            what = (f"{a.folder.name!r} and {b.folder.name!r}" if not (a.background or b.background)
                    else f"{(a if not a.background else b).folder.name!r} and the \"nothing\" class "
                         f"({(a if a.background else b).name!r})")
            raise DvsstreamError(f"{root}: the classes {what} are the same label {c.key!r} (case, spaces, _ and - "
                                 "are not told apart); rename one")
        seen[c.key] = c
    for name in extra:
        if label_key(name) in seen:
            raise DvsstreamError(f"--background-name {name!r} is the same label as the class "
                                 f"{seen[label_key(name)].name!r}; choose another name")
    count = len(classes) + len(extra)
    if count < least:
        only = f" ({classes[0].name!r})" if classes else ""
        raise DvsstreamError(f"{root}: {count} class{only}; teaching needs at least two: one folder per class "
                             f"(ROOT/<class name>/), or a \"nothing\" class ({root}/{BACKGROUND_FOLDER}/ or "
                             "--background-from-quiet)")


def read_classes(classes: Sequence[TeachClass], sensor_size: Sequence[int] | None = None,
                 skip_unreadable: bool = False, say: Callable[[str], Any] = print) -> list[tuple[str, str]]:
    """Read every recording once: its event span into ``seconds`` (the files left
    unreadable are dropped from ``files`` with ``skip_unreadable``, and returned as
    ``(path, why)``; else the first raises naming it). Then every class needs
    :data:`MIN_CLASS_SECONDS` of events."""
    from dvsstream.datasets.recordings import read_recording

    skipped = []
    for c in classes:
        kept = []
        for path in c.files:
            try:
                events, sensor, _ = read_recording(path, sensor_size)
            except DvsstreamError as exc:
                if not skip_unreadable:
                    raise DvsstreamError(f"{exc} (pass --skip-unreadable to leave such files out)") from None
                skipped.append((str(path), str(exc)))
                say(f"warning: skipped {path}: {exc}")
                continue
            span = float(events["t"][-1] - events["t"][0]) / 1e6 if events.size else 0.0
            c.seconds[str(path)] = span
            c.sensors[str(path)] = (int(sensor[0]), int(sensor[1]))
            kept.append(path)
        c.files = kept
        if not kept:
            raise DvsstreamError(f"{c.folder}: no readable recording left in the class {c.name!r}; add recordings "
                                 "or remove the folder")
        if c.total_seconds < MIN_CLASS_SECONDS:
            raise DvsstreamError(f"{c.folder}: the class {c.name!r} has {c.total_seconds:.2f} s of events; record at "
                                 f"least {MIN_CLASS_SECONDS:g} s (more is better: about 30 s)")
    return skipped


def teach_binning(T: int, window_ms: float | None = None, hop_ms: float | None = None,
                  bins: int | None = None) -> BinningConfig:
    """The live binning taught (and stored in the checkpoint): ``bins`` (default the
    model's ``T``) bins over ``window_ms`` (default 50 ms a bin), a new window every
    ``hop_ms`` (default one bin). Raises one line when they do not fit together."""
    n = int(bins or T)
    window_us = round((window_ms if window_ms is not None else 50.0 * n) * 1000)
    if window_us < n or window_us % n:
        raise DvsstreamError(f"--window-ms {window_us / 1000:g} does not split into --bins {n} bins of whole "
                             "microseconds; choose a window that is a multiple of the bins")
    bin_us = window_us // n
    hop_us = round(hop_ms * 1000) if hop_ms is not None else bin_us
    if hop_us % bin_us or hop_us > window_us:
        raise DvsstreamError(f"--hop-ms {hop_us / 1000:g} must be a whole number of bins ({bin_us / 1000:g} ms) "
                             f"and at most the window ({window_us / 1000:g} ms)")
    return BinningConfig(window_us, n, hop_us)


@dataclass
class TeachWindows:
    """The windows of a teach run: ``train`` and ``held`` (held-out)
    :class:`~dvsstream.datasets.recordings.WindowSet`, the ``quiet`` threshold used per
    file (events; None without ``background_from_quiet``) and the per-file binnings."""

    train: Any
    held: Any
    quiet: dict[str, float | None]
    binnings: dict[str, dict]


def class_names(classes: Sequence[TeachClass], background_from_quiet: bool = False,
                background_name: str = "nothing") -> list[str]:
    """The names of the labels: the classes', and ``background_name`` last when quiet
    windows make a "nothing" class that no ``_background`` folder gave."""
    names = [c.name for c in classes]
    if background_from_quiet and not any(c.background for c in classes):
        names.append(background_name)
    return names


def _merge(parts: Sequence[tuple[Any, Sequence[int], Sequence[int]]], classes: Sequence[str]):
    """One :class:`WindowSet` of the windows ``indices`` of each set, relabelled with
    ``labels`` (the frames are shared, not copied)."""
    from dvsstream.datasets.recordings import WindowSet

    frames, labels, windows, binnings = [], [], [], {}
    for ws, indices, new_labels in parts:
        frames += [ws._frames[i] for i in indices]  # the held counts themselves (no copy)
        windows += [ws.windows[i] for i in indices]
        labels += [int(y) for y in new_labels]
        binnings.update(ws.binnings)
    return WindowSet(frames, labels, classes, windows, binnings, [])


def _split_quiet(ws, label: int, quiet_label: int | None, min_events: int,
                 threshold: float | None) -> tuple[list[int], list[int]]:
    """``(indices, labels)`` of a recording's windows: busy ones (>= ``min_events``,
    and >= ``threshold`` when given) as ``label``, quiet ones as ``quiet_label``."""
    keep, labels = [], []
    for i, w in enumerate(ws.windows):
        n = int(w["events"])
        if threshold is not None and quiet_label is not None and n < threshold:
            keep.append(i)
            labels.append(quiet_label)
        elif n >= min_events and (threshold is None or n >= threshold):
            keep.append(i)
            labels.append(label)
    return keep, labels


def cut_windows(classes: Sequence[TeachClass], base: BinningConfig, model_size: Sequence[int], *,
                roi: Sequence[int] | None = None, resize: Sequence[int] | None = None,
                sensor_size: Sequence[int] | None = None, min_events: int = 16,
                background_from_quiet: bool = False, background_name: str = "nothing",
                progress: Callable[[int], Any] | None = None) -> TeachWindows:
    """The training and held-out windows of every class (see the module docstring);
    class ``k`` of ``classes`` is label ``k``. With ``background_from_quiet`` the quiet
    windows are the "nothing" class: the ``_background`` folder's label, else a last
    label named ``background_name``. The windows of a ``_background`` folder are all
    kept, however quiet."""
    from dvsstream.datasets.recordings import WindowSource, recording_windows

    names = class_names(classes, background_from_quiet, background_name)
    quiet_label = None
    if background_from_quiet:
        quiet_label = next((k for k, c in enumerate(classes) if c.background), len(classes))
    kw: dict[str, Any] = {"roi": roi, "resize": resize, "sensor_size": sensor_size, "min_events": 0}
    train_parts, held_parts, quiet, binnings = [], [], {}, {}
    for k, c in enumerate(classes):
        for path in c.files:
            tr = recording_windows([WindowSource(path, k, (0.0, 1.0 - HELD_OUT))], names, base, model_size, **kw)
            he = recording_windows([WindowSource(path, k, (1.0 - HELD_OUT, 1.0))], names, base, model_size, **kw)
            binnings.update(tr.binnings)
            counts = [int(w["events"]) for w in tr.windows + he.windows]
            threshold = (QUIET_SHARE * float(np.median(counts)) if background_from_quiet and counts
                         and not c.background else None)
            quiet[str(path)] = threshold
            least = 0 if c.background else min_events
            train_parts.append((tr, *_split_quiet(tr, k, quiet_label, least, threshold)))
            held_parts.append((he, *_split_quiet(he, k, quiet_label, least, threshold)))
            if progress is not None:
                progress(1)
    return TeachWindows(_merge(train_parts, names), _merge(held_parts, names), quiet, binnings)
