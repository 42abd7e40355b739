"""What the dataset layouts share: a listed :class:`Sample` (a whole file, or a labelled
segment of one), the identity of its source files for the cache key (:func:`file_stamp`),
a detected folder :class:`Layout`, and spikingjelly's
``frames_number_<T>_split_by_<number|time>`` folders (:func:`sj_frames_layout`), which the
spikingjelly roots of both datasets hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dvsstream.datasets.spec import SPLIT_BY, FrameSpec

__all__ = ["Sample", "Layout", "file_stamp", "sj_frames_layout"]


SJ_FRAMES_DIR = re.compile(r"^frames_number_(\d+)_split_by_(number|time)$")


@dataclass(frozen=True)
class Sample:
    """One listed sample: a whole file, or (raw Gesture) the segment ``[start, end)`` of one."""

    path: str             # the file holding the events
    label: int
    start: Optional[int] = None  # raw Gesture segment [start, end) µs; None: whole file
    end: Optional[int] = None
    segment: int = -1     # row of the labels CSV (raw Gesture)
    stamp: str = ""       # source file identity (size, mtime) for the cache key
    kind: str = "file"    # how to read it: "file" (our readers), "aedat2" (original CIFAR10-DVS),
    #                       "events_npz" / "frames_npz" (spikingjelly's converted samples)

    @property
    def id(self) -> str:
        return self.path if self.segment < 0 else f"{self.path}#{self.segment}"


def file_stamp(*paths: Path) -> str:
    """The identity of ``paths`` for a cache key: ``"size:mtime_ns"`` of each (``"missing"``
    when one cannot be read), joined by ``|``."""
    parts = []
    for p in paths:
        try:
            st = p.stat()
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append("missing")
    return "|".join(parts)


@dataclass(frozen=True)
class Layout:
    """One folder layout found under ``root``: its name (report.json), the folder whose
    ``<class>`` (CIFAR10-DVS) or ``train|test/<label>`` (Gesture) subfolders hold the
    samples, the file pattern and how a file is read (``Sample.kind``)."""

    name: str
    base: Path
    pattern: str
    kind: str
    note: str = ""


def sj_frames_layout(root: Path, spec: FrameSpec, per_label: str) -> tuple[Optional[Layout], list[str]]:
    """spikingjelly's ``frames_number_<T>_split_by_<s>`` folder matching ``spec`` (T and
    split, 128x128 frames, no noise filter) or None, and why each other frames folder cannot
    be used."""
    why_not = []
    for d in sorted(root.glob("frames_number_*_split_by_*")):
        m = SJ_FRAMES_DIR.match(d.name)
        if not d.is_dir() or not m:
            continue
        T, split_by = int(m.group(1)), m.group(2)
        if T != spec.n_bins or split_by != SPLIT_BY[spec.mode]:
            why_not.append(f"{d.name} holds T={T} frames split by {split_by} but the frames asked for are "
                           f"T={spec.n_bins} split by {SPLIT_BY[spec.mode]}")
        elif tuple(spec.sensor_size) != (128, 128):
            why_not.append(f"{d.name} holds 128x128 frames but the sensor size asked for is "
                           f"{spec.sensor_size[0]}x{spec.sensor_size[1]}")
        elif spec.noise_filter != "none":
            why_not.append(f"{d.name} holds frames, but --filter {spec.noise_filter} needs the events")
        else:
            return Layout(f"spikingjelly {d.name}/{per_label}/*.npz", d, "*.npz", "frames_npz"), why_not
    return None, why_not
