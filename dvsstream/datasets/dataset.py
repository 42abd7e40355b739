"""CIFAR10-DVS and DVS128 Gesture from a local folder, as cached event frames.

Nothing is ever downloaded. The layouts (detected under ``root``; a folder that mixes
two, or holds none, gets one line saying what was looked for where):

==================  =======================================================================
dataset             layout under ``root``
==================  =======================================================================
cifar10dvs (tonic)  ``CIFAR10DVS/<class>/*.aedat4`` (``<class>`` = airplane ... truck), 128x128
cifar10dvs (orig.)  the original release: ``CIFAR10DVS/<class>/cifar10_<class>_<k>.aedat``
                    (AEDAT 2.0, jAER DVS128 addresses)
cifar10dvs (sj)     spikingjelly's root: ``extract/<class>/*.aedat`` (the originals),
                    ``events_np/<class>/*.npz`` (keys t, x, y, p) or
                    ``frames_number_<T>_split_by_<number|time>/<class>/*.npz`` (key
                    ``frames``, ``[T, 2, 128, 128]``, used as-is when T and the split match
                    the FrameSpec; else events_np/ or extract/ are binned and the reason is
                    in ``info["layout_note"]``)
dvsgesture (tonic)  ``DVSGesture/ibmGestureTrain/userNN_<lighting>/<label>.npy`` and
                    ``DVSGesture/ibmGestureTest/...``; ``<label>`` = 0..10; (N, 4) arrays with
                    columns x, y, p, t, t in **ms** (multiplied by 1000, as tonic does)
dvsgesture (raw)    the release: ``DvsGesture/userNN_<lighting>.aedat`` (AEDAT 3.1) +
                    ``userNN_<lighting>_labels.csv`` (class 1..11, start, end µs), and
                    ``trials_to_train.txt`` / ``trials_to_test.txt``; each labelled segment
                    ``[start, end)`` of a file is one sample (spikingjelly's samples exactly)
dvsgesture (sj)     spikingjelly's root: ``extract/DvsGesture/`` (the raw release),
                    ``events_np/train|test/<label>/*.npz``,
                    ``frames_number_<T>_split_by_<s>/train|test/<label>/*.npz``
==================  =======================================================================

Orientation and polarity follow ``FrameSpec.convention`` (default ``"spikingjelly"``, the
frames every released checkpoint expects; ``"native"``: dvsstream's readers'), chosen so
that one recording gives the same frames in every layout; :mod:`dvsstream.datasets.release`
writes down each layout's convention, and what is verified (tonic's ``.aedat4``
re-export is read as stored: its relation to the originals is not verified).

Why not tonic's own classes: tonic 1.7's ``CIFAR10DVS`` calls ``download()`` unless the
archive *and* >= 1000 files are present (a partial folder would hit the network), lists
each class's files in ``os.walk`` order (unsorted, so a "first 90 %" split would depend on
the file system), and reads AEDAT 4 through the ``aedat`` package, which is not a
dependency here; ``DVSGesture`` likewise downloads unless >= 100 ``.npy`` files exist. We
keep tonic's folder names, class order and unit conversions (tests check them against
tonic) and read the files with our own readers (:mod:`dvsstream.io`), which report
truncated or corrupt files instead of failing deep inside a DataLoader worker.

Splits
------
* CIFAR10-DVS has no official split. The releases' one (spikingjelly's
  ``split_to_train_test_set``): per class, files in sorted (string) name order, the first
  ``math.ceil(0.9 * n)`` train, the rest test (900/100 for the full 1000 per class; 9/1 for
  10; 11/1 for 12; 4/0 for 4). ``info["split_rule"]`` says which rule was used.
* DVS128 Gesture: official user split (users 1-23 train, 24-29 test); tonic's archives
  and spikingjelly's folders are already split; the raw release lists its trials in
  ``trials_to_{train,test}.txt`` (when those are missing, the user number decides).

Frames and the cache
--------------------
Each sample's events become frames exactly as spikingjelly's
``integrate_events_by_fixed_frames_number`` makes them (``FrameSpec.mode``: ``"count"`` =
``split_by="number"``, the papers' equal-count split; ``"time"`` = ``split_by="time"``;
see :func:`dvsstream.datasets.release.spikingjelly_frames`), then sum-pooled by
``FrameSpec.downsample``: ``float32 [T, 2, H, W]``.

Binned frames are cached on disk, one small HDF5 file per sample:
``<cache_dir>/<dataset>/<spec tag>/<k[:2]>/<k>.h5``, where the key ``k`` hashes the sample
(relative path, segment), the source file's size and mtime (and the labels CSV's, for
raw Gesture), the :class:`FrameSpec` and a cache format version. So a different
FrameSpec is a different folder, a changed source file is a new key (recomputed), the
splits share entries, and the second epoch does no event I/O. Files are written to a
unique temporary name and ``os.replace``-d into place, so several DataLoader workers and
several DDP ranks can fill the same cache without locks: at worst two processes compute
the same sample and one replace wins; a reader never sees a half-written file. (HDF5 file
locking is off: an entry never changes once in place, and locking fails on some network
file systems.) An entry holds the flat indices and counts of the non-zero pixels
(uint8/uint16 when exact, else float32), uncompressed: reading it needs no inflate
(deflate was the bottleneck of a warm cache); dense when over a third are non-zero.

A small set can also be held in memory (:class:`FramesInMemory`, ``dvsstream train
--cache-frames``): every sample is read once (through the disk cache) and kept as its
counts in the same smallest exact dtype, so an epoch does no file I/O at all and the
frames it yields are bit for bit the ones the dataset yields.

Corrupt samples
---------------
A sample whose file cannot be read, is truncated (the reader warns that it read only
part of it), or holds no events is *skipped*: :meth:`FrameDataset.get` returns
``(None, label, reason)``, ``__getitem__`` returns ``(torch.empty(0), -1)``, and
:func:`collate_frames` drops such items from a batch. The reason is kept in
``dataset.skipped`` of the process that met it, and a ``<k>.bad`` marker in the cache
means later epochs and other processes skip it without reading the file again;
:meth:`FrameDataset.collect_skipped` gathers them all from the cache (with workers the
main process's list is otherwise empty). A skipped sample is never replaced by zeros.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import torch

from dvsstream.errors import DvsstreamError
from dvsstream.fileio import replace_atomically
from dvsstream.datasets.release import (
    CONVENTIONS,
    DEFAULT_CONVENTION,
    SPLIT_RULE,
    SampleError,
    read_cifar10dvs_aedat,
    read_events_npz,
    read_frames_npz,
    release_split,
    sj_to_native_events,
    sj_to_native_frames,
    spikingjelly_frames,
)

__all__ = [
    "CIFAR10DVS_CLASSES",
    "GESTURE_CLASSES",
    "DATASETS",
    "FrameSpec",
    "FrameDataset",
    "load_dataset",
    "collate_frames",
    "FramesInMemory",
    "dataset_classes",
    "cifar10dvs_split",
]

log = logging.getLogger("dvsstream.datasets.dataset")

#: tonic 1.7 ``CIFAR10DVS.classes`` order (label = index)
CIFAR10DVS_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
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
DATASETS = ("cifar10dvs", "dvsgesture")
_ALIASES = {
    "cifar10dvs": "cifar10dvs", "cifar10-dvs": "cifar10dvs", "cifar10_dvs": "cifar10dvs",
    "dvsgesture": "dvsgesture", "dvs128gesture": "dvsgesture", "gesture": "dvsgesture",
    "dvs128_gesture": "dvsgesture", "dvs-gesture": "dvsgesture",
}
_SPLITS = ("train", "test", "all")
#: recordings per class in the full CIFAR10-DVS set
_CIFAR_PER_CLASS = 1000
#: official DVS128 Gesture user split
_GESTURE_TRAIN_USERS = range(1, 24)
#: bump when the binning or the cache file layout changes (old entries are ignored)
CACHE_VERSION = 3
#: source warnings that mean the file was only partly read
_PARTIAL_READ = ("truncated", "ended early", "ends inside")


def _canonical(name: str) -> str:
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise DvsstreamError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return _ALIASES[key]


def dataset_classes(name: str) -> tuple[str, ...]:
    """The class names (label order) of ``"cifar10dvs"`` or ``"dvsgesture"``."""
    return CIFAR10DVS_CLASSES if _canonical(name) == "cifar10dvs" else GESTURE_CLASSES


# ===================================================================== FrameSpec
@dataclass(frozen=True)
class FrameSpec:
    """How a sample's events become frames (and the key of the frame cache).

    n_bins: time steps T. mode: ``"count"`` (equal event counts per bin, the papers'
    preprocessing; the remainder goes to the last bin) or ``"time"`` (equal time bins over
    the sample's first..last event). sensor_size: ``(width, height)`` of the events; events
    outside it are not counted. downsample: sum-pool factor (2: 128x128 -> 64x64); must
    divide both sensor dimensions. convention: ``"spikingjelly"`` (the releases'
    orientation and polarity, default) or ``"native"`` (dvsstream's readers'); see
    :mod:`dvsstream.datasets.release`. roi: the region ``(x0, y0, w, h)`` of the frames (in
    ``convention``'s coordinates) the model sees (None: all of them); size: the ``(width,
    height)`` that region is resized to (None: the region pooled by ``downsample``), applied
    exactly as the streaming binner applies them (:func:`dvsstream.binning.region_frames`:
    every event of the region in exactly one pixel; integer ratios pool, others take the
    nearest-bin resize); ``size`` excludes ``downsample`` > 1. Frames: ``float32 [n_bins,
    2, H, W]`` (``size``, or the region's ``h/d, w/d``), bit-identical to spikingjelly's
    ``integrate_events_by_fixed_frames_number`` (``split_by="number"`` for ``"count"``,
    ``"time"`` for ``"time"``; the count split counts every event of the sample, inside
    the region or not) before the region and the pooling.
    """

    n_bins: int = 16
    mode: str = "count"
    sensor_size: tuple[int, int] = (128, 128)
    downsample: int = 1
    convention: str = DEFAULT_CONVENTION
    roi: Optional[tuple[int, int, int, int]] = None
    size: Optional[tuple[int, int]] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensor_size", tuple(int(s) for s in self.sensor_size)[:2])
        if int(self.n_bins) < 1:
            raise DvsstreamError(f"FrameSpec: n_bins must be >= 1, got {self.n_bins}")
        if self.mode not in ("count", "time"):
            raise DvsstreamError(f"FrameSpec: mode must be 'count' or 'time', got {self.mode!r}")
        self._check_geometry()
        d = int(self.downsample)
        w, h = self.region[2:]
        if d < 1 or w % d or h % d:
            raise DvsstreamError(f"FrameSpec: downsample {self.downsample} must be >= 1 and divide {w}x{h}")
        if self.convention not in CONVENTIONS:
            raise DvsstreamError(f"FrameSpec: convention must be one of {', '.join(CONVENTIONS)}, "
                                 f"got {self.convention!r}")

    def _check_geometry(self) -> None:
        from dvsstream.binning.region import check_region, output_size

        roi, size = self.roi, self.size
        try:
            if roi is not None:
                roi = check_region(roi, self.sensor_size, padded=True)
                object.__setattr__(self, "roi", roi)
            if size is not None:
                size = tuple(int(v) for v in size)[:2]
                object.__setattr__(self, "size", size)
                if int(self.downsample) != 1:
                    raise ValueError(f"size {size[0]}x{size[1]} and downsample {self.downsample} both set; "
                                     "give one of them")
                output_size(*self.region[2:], 1, size)
        except ValueError as exc:
            raise DvsstreamError(f"FrameSpec: {exc}") from None

    @property
    def region(self) -> tuple[int, int, int, int]:
        """``(x0, y0, w, h)`` of the frames the model sees (the whole sensor when no ``roi``)."""
        return self.roi if self.roi is not None else (0, 0, *self.sensor_size)

    @property
    def frame_shape(self) -> tuple[int, int, int, int]:
        """``(T, 2, H, W)`` of the frames."""
        if self.size is not None:
            w, h = self.size
            return (int(self.n_bins), 2, h, w)
        w, h = self.region[2:]
        return (int(self.n_bins), 2, h // self.downsample, w // self.downsample)

    def tag(self) -> str:
        w, h = self.sensor_size
        tag = f"T{self.n_bins}-{self.mode}-{w}x{h}-d{self.downsample}-{self.convention}"
        if self.roi is not None:
            tag += "-roi{}_{}_{}x{}".format(*self.roi)
        if self.size is not None:
            tag += "-to{}x{}".format(*self.size)
        return tag

    def to_dict(self) -> dict[str, Any]:
        d = {"n_bins": int(self.n_bins), "mode": self.mode, "sensor_size": list(self.sensor_size),
             "downsample": int(self.downsample), "convention": self.convention}
        if self.roi is not None:  # only when set: the cache keys of older specs stay valid
            d["roi"] = list(self.roi)
        if self.size is not None:
            d["size"] = list(self.size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FrameSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        tuples = ("sensor_size", "roi", "size")
        return cls(**{k: (tuple(v) if k in tuples and v is not None else v) for k, v in d.items() if k in known})

    @classmethod
    def for_model(cls, config, sensor_size: tuple[int, int] = (128, 128), mode: str = "count",
                  convention: str = DEFAULT_CONVENTION, roi: Optional[Sequence[int]] = None,
                  resize: Optional[Sequence[int]] = None) -> "FrameSpec":
        """The spec that feeds a model: ``T`` bins from ``sensor_size`` to the model's
        ``img_size`` (``(H, W)``) by :func:`dvsstream.binning.geometry_for`: pooled by a
        whole factor when the sensor is one of the input (128x128 -> 64x64: ``downsample``
        2), else the largest centred region of the input's shape resized to it; ``roi`` /
        ``resize`` (``--roi`` / ``--resize``) override it. A bad region or size raises
        :class:`DvsstreamError` (one line)."""
        h, w = (int(s) for s in config.img_size)
        base = cls(n_bins=int(config.T), mode=mode, sensor_size=tuple(int(s) for s in sensor_size),
                   convention=convention)
        return base._fed_to((w, h), roi, resize)

    def with_geometry(self, model_size: Sequence[int], roi: Optional[Sequence[int]] = None,
                      resize: Optional[Sequence[int]] = None) -> "FrameSpec":
        """This spec with ``--roi`` / ``--resize`` applied for a model of input ``model_size
        = (width, height)`` (both None: unchanged)."""
        if roi is None and resize is None:
            return self
        return self._fed_to(model_size, roi, resize)

    def _fed_to(self, model_size: Sequence[int], roi: Optional[Sequence[int]],
                resize: Optional[Sequence[int]]) -> "FrameSpec":
        """This spec with the geometry (:func:`dvsstream.binning.geometry_for`) that feeds
        a model of input ``model_size = (width, height)``: a whole-factor pooling of the
        sensor, or a region resized to the input. One line (DvsstreamError) when none can."""
        from dvsstream.binning import geometry_for

        try:
            geo = geometry_for(model_size, self.sensor_size, roi, resize)
        except ValueError as exc:
            raise DvsstreamError(str(exc)) from None
        if geo.roi is None:
            return dataclasses.replace(self, roi=None, size=None, downsample=self.sensor_size[0] // geo.size[0])
        return dataclasses.replace(self, roi=geo.roi, size=geo.size, downsample=1)


def frames_from_events(events: np.ndarray, spec: FrameSpec, parallel: bool = True) -> np.ndarray:
    """Bin one sample's events exactly as spikingjelly's
    ``integrate_events_by_fixed_frames_number`` does (``mode`` "count" = ``split_by``
    "number", "time" = "time"; Numba), then keep the spec's region and pool or resize it
    (:func:`pool_frames`): ``float32`` :attr:`FrameSpec.frame_shape`."""
    w, h = spec.sensor_size
    frames = spikingjelly_frames(events, _SPLIT_BY[spec.mode], spec.n_bins, w, h, parallel=parallel)
    return pool_frames(frames, spec)


def pool_frames(frames: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """``[T, 2, H, W]`` frames of the whole sensor to the spec's: its region resized to
    ``spec.size`` (:func:`dvsstream.binning.region_frames`), or sum-pooled by
    ``spec.downsample``: ``float32`` :attr:`FrameSpec.frame_shape`."""
    if spec.roi is not None or spec.size is not None:
        from dvsstream.binning import region_frames

        frames = region_frames(frames, spec.roi, spec.size)
    d = spec.downsample
    if d > 1:
        t, c, h, w = frames.shape
        frames = frames.reshape(t, c, h // d, d, w // d, d).sum(axis=(3, 5), dtype=np.float32)
    return np.ascontiguousarray(frames, dtype=np.float32)


# ===================================================================== samples
@dataclass(frozen=True)
class _Sample:
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


def _stamp(*paths: Path) -> str:
    parts = []
    for p in paths:
        try:
            st = p.stat()
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append("missing")
    return "|".join(parts)


# ------------------------------------------------------------------ CIFAR10-DVS
def cifar10dvs_split(files: Sequence[str], split: str) -> list[str]:
    """The releases' per-class split of one class's files: sorted by name, first
    ``math.ceil(0.9 n)`` train, the rest test (``split="all"``: all, sorted); see
    :func:`dvsstream.datasets.release.release_split`."""
    return release_split(files, split)


_SJ_FRAMES_DIR = re.compile(r"^frames_number_(\d+)_split_by_(number|time)$")
_SPLIT_BY = {"count": "number", "time": "time"}


@dataclass(frozen=True)
class _Layout:
    """One folder layout found under ``root``: its name (report.json), the folder whose
    ``<class>`` (CIFAR10-DVS) or ``train|test/<label>`` (Gesture) subfolders hold the
    samples, the file pattern and how a file is read (``_Sample.kind``)."""

    name: str
    base: Path
    pattern: str
    kind: str
    note: str = ""


def _class_files(base: Path, pattern: str) -> dict[str, list[str]]:
    """``{class: [file names]}`` for the CIFAR10-DVS classes under ``base``."""
    out = {}
    for cls in CIFAR10DVS_CLASSES:
        d = base / cls
        out[cls] = sorted(p.name for p in d.glob(pattern) if p.is_file()) if d.is_dir() else []
    return out


def _cifar_expected(root: Path) -> str:
    return (f"looked for tonic's {root}/CIFAR10DVS/<class>/*.aedat4, the original release's "
            f"{root}/CIFAR10DVS/<class>/cifar10_<class>_<k>.aedat (unpack each <class>.zip of the figshare "
            f"release into {root}/CIFAR10DVS/<class>/), and spikingjelly's {root}/extract/<class>/*.aedat, "
            f"{root}/events_np/<class>/*.npz or {root}/frames_number_<T>_split_by_<number|time>/<class>/*.npz; "
            f"<class> one of {', '.join(CIFAR10DVS_CLASSES)}")


def _sj_frames_layout(root: Path, spec: FrameSpec, per_label: str) -> tuple[Optional[_Layout], list[str]]:
    """spikingjelly's ``frames_number_<T>_split_by_<s>`` folder matching ``spec`` (T and
    split, 128x128 frames) or None, and why each other frames folder cannot be used."""
    why_not = []
    for d in sorted(root.glob("frames_number_*_split_by_*")):
        m = _SJ_FRAMES_DIR.match(d.name)
        if not d.is_dir() or not m:
            continue
        T, split_by = int(m.group(1)), m.group(2)
        if T != spec.n_bins or split_by != _SPLIT_BY[spec.mode]:
            why_not.append(f"{d.name} holds T={T} split_by={split_by} but the frames asked for are "
                           f"T={spec.n_bins} split_by={_SPLIT_BY[spec.mode]}")
        elif tuple(spec.sensor_size) != (128, 128):
            why_not.append(f"{d.name} holds 128x128 frames but the sensor size asked for is "
                           f"{spec.sensor_size[0]}x{spec.sensor_size[1]}")
        else:
            return _Layout(f"spikingjelly {d.name}/{per_label}/*.npz", d, "*.npz", "frames_npz"), why_not
    return None, why_not


def _detect_cifar(root: Path, spec: FrameSpec) -> _Layout:
    """The one CIFAR10-DVS layout under ``root`` (see :func:`_cifar_expected`). Raises
    one line for a folder that mixes layouts, or holds none."""
    base = root / "CIFAR10DVS"
    tonic_n = sum(map(len, _class_files(base, "*.aedat4").values())) if base.is_dir() else 0
    orig_n = sum(map(len, _class_files(base, "*.aedat").values())) if base.is_dir() else 0
    if tonic_n and orig_n:
        raise DvsstreamError(f"{base} mixes layouts: {tonic_n} tonic .aedat4 and {orig_n} original .aedat files; "
                             f"keep one of them there (move the other into a folder of its own)")
    sj = {name: sum(map(len, _class_files(root / name, pat).values()))
          for name, pat in (("extract", "*.aedat"), ("events_np", "*.npz"))}
    frames, why_not = _sj_frames_layout(root, spec, "<class>")
    sj_found = [f"{k}/ ({n} files)" for k, n in sj.items() if n]
    if frames is not None:
        sj_found.append(f"{frames.base.name}/")
    if (tonic_n or orig_n) and sj_found:
        raise DvsstreamError(f"{root} mixes layouts: {base}/ and spikingjelly's {', '.join(sj_found)}; "
                             f"point --root at one of them")
    if tonic_n:
        return _Layout("tonic CIFAR10DVS/<class>/*.aedat4", base, "*.aedat4", "file",
                       "tonic's .aedat4 re-export is read as stored: its relation to the original files' "
                       "orientation and polarity is not verified (see dvsstream.datasets.release)")
    if orig_n:
        return _Layout("original CIFAR10DVS/<class>/*.aedat", base, "*.aedat", "aedat2")
    if frames is not None:
        return frames
    note = "; ".join(f"{w}: not used" for w in why_not)
    if sj["events_np"]:
        return _Layout("spikingjelly events_np/<class>/*.npz", root / "events_np", "*.npz", "events_npz", note)
    if sj["extract"]:
        return _Layout("spikingjelly extract/<class>/*.aedat", root / "extract", "*.aedat", "aedat2", note)
    if why_not:
        raise DvsstreamError(f"{root}: spikingjelly's frames cannot be used ({'; '.join(why_not)}) and there is no "
                             f"events_np/ or extract/ to bin from; re-export the frames with spikingjelly or pass "
                             f"matching --bins/--frames")
    if not root.is_dir() or not any(root.iterdir()):
        raise DvsstreamError(f"{base} not found; {_cifar_expected(root)}")
    raise DvsstreamError(f"no .aedat4, .aedat or .npz files under {root}; {_cifar_expected(root)}")


def _list_cifar10dvs(root: Path, split: str, spec: FrameSpec) -> tuple[list[_Sample], dict[str, Any]]:
    layout = _detect_cifar(root, spec)
    samples: list[_Sample] = []
    found: dict[str, int] = {}
    for label, (cls, files) in enumerate(_class_files(layout.base, layout.pattern).items()):
        found[cls] = len(files)
        for name in release_split(files, split):
            p = layout.base / cls / name
            samples.append(_Sample(str(p), label, stamp=_stamp(p), kind=layout.kind))
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


# ------------------------------------------------------------------ DVS128 Gesture
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


def _gesture_expected(root: Path) -> str:
    return (f"expected tonic's layout {root}/DVSGesture/ibmGestureTrain|ibmGestureTest/userNN_<lighting>/"
            f"<label>.npy (unpack ibmGestureTrain.tar.gz and ibmGestureTest.tar.gz into {root}/DVSGesture/) "
            f"or the raw release {root}/DvsGesture/userNN_<lighting>.aedat with _labels.csv files and "
            f"trials_to_train.txt / trials_to_test.txt (unpack DvsGesture.tar.gz into {root}/), or "
            f"spikingjelly's root {root}/extract/DvsGesture/, {root}/events_np/train|test/<label>/*.npz or "
            f"{root}/frames_number_<T>_split_by_<number|time>/train|test/<label>/*.npz")


def _list_gesture_tonic(base: Path, split: str) -> tuple[list[_Sample], dict[str, Any], list]:
    folders = {"train": ["ibmGestureTrain"], "test": ["ibmGestureTest"],
               "all": ["ibmGestureTrain", "ibmGestureTest"]}[split]
    samples: list[_Sample] = []
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
                samples.append(_Sample(str(p), int(p.stem), stamp=_stamp(p)))
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


def _list_gesture_raw(base: Path, split: str) -> tuple[list[_Sample], dict[str, Any], list]:
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
    samples: list[_Sample] = []
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
        stamp = _stamp(p, csv_path)
        for k, (start, end, label) in enumerate(labels.tolist()):
            if not 0 <= label < len(GESTURE_CLASSES):
                skipped.append((f"{p}#{k}", f"class id {label + 1} outside 1..{len(GESTURE_CLASSES)}"))
                continue
            samples.append(_Sample(str(p), int(label), int(start), int(end), k, stamp))
    info = {"layout": "raw DvsGesture/userNN_<lighting>.aedat + _labels.csv", "folder": str(base), "split_rule": rule}
    return samples, info, skipped


def _list_gesture_sj(layout: _Layout, split: str) -> tuple[list[_Sample], dict[str, Any], list]:
    """spikingjelly's ``events_np`` / ``frames_number_*`` Gesture folders:
    ``<base>/train|test/<label>/<user>_<k>.npz`` (label = class - 1)."""
    folders = {"train": ["train"], "test": ["test"], "all": ["train", "test"]}[split]
    samples: list[_Sample] = []
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
                samples.append(_Sample(str(p), int(name), stamp=_stamp(p), kind=layout.kind))
    info = {"layout": layout.name, "folder": str(layout.base),
            "split_rule": "spikingjelly's train/ and test/ folders (from trials_to_train/test.txt)"}
    return samples, info, skipped


def _detect_gesture(root: Path, spec: FrameSpec) -> tuple[str, Path, Optional[_Layout]]:
    """-> ``(kind, base, sj layout)``: kind is "tonic", "raw" or "sj". Raises one line for
    a folder that mixes layouts, or holds none."""
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
    frames, why_not = _sj_frames_layout(root, spec, "train|test/<label>")
    events = root / "events_np"
    if frames is not None:
        found.append(("sj", frames.base, frames))
    elif (events / "train").is_dir() or (events / "test").is_dir():
        note = "; ".join(f"{w}: not used" for w in why_not)
        found.append(("sj", events, _Layout("spikingjelly events_np/train|test/<label>/*.npz", events, "*.npz",
                                             "events_npz", note)))
    kinds = {k for k, _, _ in found}
    if "tonic" in kinds and len(kinds) > 1:
        raise DvsstreamError(f"{root} mixes layouts: " + ", ".join(f"{k} at {b}" for k, b, _ in found)
                             + "; point --root at one of them")
    if not found:
        if why_not:
            raise DvsstreamError(f"{root}: spikingjelly's frames cannot be used ({'; '.join(why_not)}) and there "
                                 f"is no events_np/ or extract/DvsGesture/ to bin from")
        raise DvsstreamError(f"no DVS128 Gesture data under {root}; {_gesture_expected(root)}")
    # spikingjelly's root holds extract/ (the raw release) beside events_np/ and frames: the
    # converted samples are the same data; the frames (then events_np) are used
    for kind in ("tonic", "sj", "raw"):
        for k, base, layout in found:
            if k == kind:
                return k, base, layout
    raise AssertionError("unreachable")


def _list_gesture(root: Path, split: str, spec: FrameSpec) -> tuple[list[_Sample], dict[str, Any], list]:
    kind, base, layout = _detect_gesture(root, spec)
    if kind == "tonic":
        samples, info, skipped = _list_gesture_tonic(base, split)
    elif kind == "sj":
        samples, info, skipped = _list_gesture_sj(layout, split)
        if layout.note:
            info["layout_note"] = layout.note
            log.info("DVS128 Gesture at %s: %s", root, layout.note)
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


# ===================================================================== reading
class _Corrupt(Exception):
    """A sample that cannot be used; the message is the reason."""


def _read_all(source) -> np.ndarray:
    from dvsstream.events import EVENT_DTYPE

    with source:
        parts = [p for p in source]
        warnings = list(source.stats.warnings)
    for w in warnings:
        if any(s in w for s in _PARTIAL_READ):
            raise _Corrupt(f"{w}")
    if not parts:
        return np.zeros(0, EVENT_DTYPE)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _read_file_events(path: str) -> np.ndarray:
    """All events of one file (our readers, format by content). Raises :class:`_Corrupt`."""
    from dvsstream.io import detect_format, open_file

    try:
        if detect_format(path) == "aedat3.1":
            from dvsstream.io.aedat3 import Aedat31Source

            source = Aedat31Source(path, labels=False)  # segments come from the listing
        else:
            source = open_file(path)
    except DvsstreamError as exc:
        raise _Corrupt(str(exc)) from None
    except Exception as exc:  # anything a garbage file can provoke in a reader
        raise _Corrupt(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    try:
        return _read_all(source)
    except _Corrupt:
        raise
    except DvsstreamError as exc:
        raise _Corrupt(str(exc)) from None
    except Exception as exc:
        raise _Corrupt(f"{path}: reading failed ({type(exc).__name__}: {exc})") from None


def _read_sample_events(item: _Sample, spec: FrameSpec, dataset: str) -> np.ndarray:
    """One whole-file sample's events in ``spec.convention`` (see
    :mod:`dvsstream.datasets.release`). Raises :class:`_Corrupt` with the reason."""
    native = spec.convention == "native"
    cifar = dataset == "cifar10dvs"
    try:
        if item.kind == "aedat2" and not native:
            return read_cifar10dvs_aedat(item.path)
        if item.kind == "events_npz":
            ev = read_events_npz(item.path, (128, 128))
            return sj_to_native_events(ev) if native and cifar else ev
    except SampleError as exc:
        raise _Corrupt(str(exc)) from None
    return _read_file_events(item.path)


def _read_sample_frames(item: _Sample, spec: FrameSpec, dataset: str) -> np.ndarray:
    """A spikingjelly frames sample, in ``spec.convention`` and pooled. Raises
    :class:`_Corrupt` with the reason."""
    try:
        frames = read_frames_npz(item.path, spec.n_bins, (128, 128))
    except SampleError as exc:
        raise _Corrupt(str(exc)) from None
    if spec.convention == "native" and dataset == "cifar10dvs":
        frames = sj_to_native_frames(frames)
    return pool_frames(frames, spec)


# ===================================================================== cache entries
def _smallest_exact(values: np.ndarray) -> np.ndarray:
    """Counts as uint8 / uint16 when that is exact, else float32."""
    if values.size == 0:
        return values.astype(np.uint8)
    lo, hi = float(values.min()), float(values.max())
    for dt in (np.uint8, np.uint16):
        if lo >= 0 and hi <= np.iinfo(dt).max:
            cast = values.astype(dt)
            if np.array_equal(cast, values):
                return cast
    return values.astype(np.float32)


def _encode_entry(f, frames: np.ndarray) -> None:
    """Event frames are mostly zeros: store the flat indices and values of the non-zero
    counts (uncompressed: reading needs no inflate, which was the bottleneck of a warm
    cache); dense (uncompressed) when more than a third of the pixels are non-zero."""
    flat = frames.reshape(-1)
    nz = np.flatnonzero(flat)
    f.attrs["shape"] = list(frames.shape)
    if nz.size * 3 > flat.size:
        f.create_dataset("frames", data=_smallest_exact(frames))
    else:
        f.create_dataset("index", data=nz.astype(np.uint32))
        f.create_dataset("values", data=_smallest_exact(flat[nz]))


def _decode_entry(f, shape: tuple[int, ...]) -> Optional[np.ndarray]:
    stored = tuple(int(s) for s in f.attrs.get("shape", ()))
    if stored != tuple(shape):
        return None
    if "frames" in f:
        return f["frames"][()].astype(np.float32, copy=False)
    out = np.zeros(int(np.prod(shape)), np.float32)
    out[f["index"][()]] = f["values"][()]
    return out.reshape(shape)


# ===================================================================== the dataset
class FrameDataset(torch.utils.data.Dataset):
    """Samples of one split as ``(frames float32 [T, 2, H, W], label)``; see the module
    docstring for layouts, the cache and how corrupt samples are skipped.

    Attributes: ``name``, ``split``, ``spec``, ``root``, ``classes``, ``samples`` (list of
    ``(path or path#segment, label)``), ``skipped`` (``(path, reason)`` found so far in this
    process), ``info`` (layout, folder, per-class counts, the summary ``message``),
    ``cache_dir`` (None: no cache).
    """

    def __init__(
        self,
        name: str,
        root,
        split: str,
        spec: FrameSpec,
        items: list[_Sample],
        cache_dir: Optional[Path],
        info: dict[str, Any],
        skipped: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.name = name
        self.root = Path(root)
        self.split = split
        self.spec = spec
        self.classes = dataset_classes(name)
        self._items = list(items)
        self.samples: list[tuple[str, int]] = [(s.id, s.label) for s in self._items]
        self.skipped: list[tuple[str, str]] = list(skipped)
        self._listing_skipped = list(self.skipped)
        self.info = info
        self.cache_dir = cache_dir
        self.event_reads = 0  # files whose events were read in this process (tests, stats)
        self._memo: Optional[tuple[str, np.ndarray]] = None  # last raw file's events

    # ------------------------------------------------------------ API
    def __len__(self) -> int:
        return len(self._items)

    def clip_seconds(self, k: int = 8) -> Optional[float]:
        """Median length (s) of the first ``k`` samples whose span is known without
        reading their events: a raw Gesture segment's ``[start, end)``, or a file whose
        reader states its first and last event; None when none is."""
        from dvsstream.io import open_file

        spans = []
        for item in self._items[:k]:
            if item.start is not None and item.end is not None:
                spans.append((item.end - item.start) / 1e6)
                continue
            try:
                with open_file(item.path) as src:
                    t0, t1 = src.start_time_us, src.end_time_us
            except Exception:  # a sample the reader cannot open is the loader's to report
                continue
            if t0 is not None and t1 is not None and t1 > t0:
                spans.append((t1 - t0) / 1e6)
        return float(np.median(spans)) if spans else None

    @property
    def targets(self) -> list[int]:
        return [s.label for s in self._items]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """``(frames, label)``; for a corrupt sample ``(torch.empty(0), -1)`` (dropped by
        :func:`collate_frames`; the reason is in ``skipped``)."""
        frames, label, _ = self.get(i)
        if frames is None:
            return torch.empty(0), -1
        return torch.from_numpy(frames), label

    def get(self, i: int) -> tuple[Optional[np.ndarray], int, Optional[str]]:
        """``(frames or None, label, reason or None)`` for sample ``i``."""
        item = self._items[i]
        key = self._key(item)
        if key is not None:
            cached = self._cache_read(key)
            if cached is not None:
                if isinstance(cached, str):
                    self._note_skip(item.id, cached)
                    return None, item.label, cached
                return cached, item.label, None
        try:
            frames = self._compute(item)
        except _Corrupt as exc:
            reason = str(exc)
            self._note_skip(item.id, reason)
            if key is not None:
                self._cache_write_bad(key, item, reason)
            return None, item.label, reason
        if key is not None:
            self._cache_write(key, item, frames)
        return frames, item.label, None

    def collect_skipped(self) -> list[tuple[str, str]]:
        """Every skipped sample known to this process or recorded in the cache (``.bad``
        markers written by any worker or rank), in sample order."""
        seen = dict(self._listing_skipped)
        seen.update(self.skipped)
        if self.cache_dir is not None:
            for item in self._items:
                if item.id in seen:
                    continue
                bad = self._entry(self._key(item)).with_suffix(".bad")
                if bad.is_file():
                    try:
                        seen[item.id] = json.loads(bad.read_text())["reason"]
                    except (OSError, ValueError, KeyError):
                        seen[item.id] = "corrupt (reason unreadable)"
        return list(seen.items())

    def build_cache(self, progress=None) -> int:
        """Bin every sample not yet cached (in this process); returns how many were
        skipped. ``progress``: callable(n_done) or None."""
        n_bad = 0
        for i in range(len(self)):
            frames, _, _ = self.get(i)
            n_bad += frames is None
            if progress is not None:
                progress(i + 1)
        return n_bad

    def __repr__(self) -> str:
        return (f"FrameDataset({self.name!r}, split={self.split!r}, {len(self)} samples, "
                f"spec={self.spec.tag()}, cache={self.cache_dir})")

    # ------------------------------------------------------------ pickling (workers)
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_memo"] = None
        return state

    # ------------------------------------------------------------ internals
    def _note_skip(self, sample_id: str, reason: str) -> None:
        if not any(p == sample_id for p, _ in self.skipped):
            self.skipped.append((sample_id, reason))
            log.warning("skipping %s: %s", sample_id, reason)

    def _key(self, item: _Sample) -> Optional[str]:
        if self.cache_dir is None:
            return None
        try:
            rel = os.path.relpath(item.path, self.root)
        except ValueError:
            rel = item.path
        text = json.dumps([CACHE_VERSION, self.name, rel, item.segment, item.start, item.end, item.label,
                           item.stamp, self.spec.to_dict()])
        return hashlib.sha1(text.encode()).hexdigest()

    def _entry(self, key: str) -> Path:
        return self.cache_dir / self.name / self.spec.tag() / key[:2] / f"{key}.h5"

    def _cache_read(self, key: str):
        import h5py

        path = self._entry(key)
        bad = path.with_suffix(".bad")
        if bad.is_file():
            try:
                return json.loads(bad.read_text())["reason"]
            except (OSError, ValueError, KeyError):
                return "corrupt (reason unreadable)"
        if not path.is_file():
            return None
        try:
            with h5py.File(path, "r", locking=False) as f:
                frames = _decode_entry(f, self.spec.frame_shape)
        except Exception as exc:  # a damaged cache entry: recompute it
            log.warning("cache entry %s unreadable (%s); recomputing", path, exc)
            try:
                path.unlink()
            except OSError:
                pass
            return None
        return frames

    def _atomic(self, path: Path, write) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(path, write)
        except OSError as exc:
            log.warning("cannot write the frame cache at %s (%s); continuing without it", self.cache_dir, exc)
            self.cache_dir = None

    def _cache_write(self, key: str, item: _Sample, frames: np.ndarray) -> None:
        import h5py

        def write(tmp: Path) -> None:
            with h5py.File(tmp, "w", locking=False) as f:
                _encode_entry(f, frames)
                f.attrs["sample"] = item.id
                f.attrs["label"] = item.label
                f.attrs["spec"] = json.dumps(self.spec.to_dict())

        self._atomic(self._entry(key), write)

    def _cache_write_bad(self, key: str, item: _Sample, reason: str) -> None:
        def write(tmp: Path) -> None:
            tmp.write_text(json.dumps({"sample": item.id, "reason": reason}))

        self._atomic(self._entry(key).with_suffix(".bad"), write)

    def _events(self, item: _Sample) -> np.ndarray:
        if item.segment < 0:
            self.event_reads += 1
            return _read_sample_events(item, self.spec, self.name)
        # raw Gesture: one file holds all the segments; keep the last file's events
        if self._memo is None or self._memo[0] != item.path:
            self._memo = None
            self.event_reads += 1
            ev = _read_file_events(item.path)
            self._memo = (item.path, ev)
        ev = self._memo[1]
        t = ev["t"]
        lo, hi = np.searchsorted(t, [item.start, item.end], side="left")
        return ev[lo:hi]

    def _compute(self, item: _Sample) -> np.ndarray:
        if item.kind == "frames_npz":
            self.event_reads += 1
            return _read_sample_frames(item, self.spec, self.name)
        events = self._events(item)
        if events.size == 0:
            where = f" in [{item.start}, {item.end}) µs" if item.segment >= 0 else ""
            raise _Corrupt(f"{item.id}: no events{where}")
        in_worker = torch.utils.data.get_worker_info() is not None
        frames = frames_from_events(events, self.spec, parallel=not in_worker)
        if self.cache_dir is not None and item.segment >= 0:
            self._fill_segments(item)
        return frames

    def _fill_segments(self, item: _Sample) -> None:
        """Raw Gesture: having read a file, cache its other segments of this split too,
        so the file is read once per epoch-0 pass whatever the sample order."""
        if self._memo is None:
            return
        for other in self._items:
            if other.path != item.path or other is item:
                continue
            key = self._key(other)
            path = self._entry(key)
            if path.is_file() or path.with_suffix(".bad").is_file():
                continue
            ev = self._memo[1]
            lo, hi = np.searchsorted(ev["t"], [other.start, other.end], side="left")
            if hi <= lo:
                self._cache_write_bad(key, other, f"{other.id}: no events in [{other.start}, {other.end}) µs")
                continue
            self._cache_write(key, other, frames_from_events(ev[lo:hi], self.spec,
                                                             parallel=torch.utils.data.get_worker_info() is None))


#: :meth:`FramesInMemory.load` gives freed memory back each time it holds this much more
_RELEASE_EVERY_BYTES = 16 << 20


class FramesInMemory(torch.utils.data.Dataset):
    """Every sample of a dataset read once and held in memory: ``(frames, label)`` as the
    dataset gives them, bit for bit (counts kept as uint8 / uint16 when that is exact,
    else as they came; handed out in the dataset's dtype). Unreadable samples stay
    ``(torch.empty(0), -1)``. ``classes`` and ``skipped`` follow the wrapped dataset.

    Build it with :meth:`load`; ``nbytes`` is the memory it holds.
    """

    def __init__(self, dataset, frames: list[Optional[torch.Tensor]], labels: list[int],
                 dtype: torch.dtype) -> None:
        self.dataset = dataset
        self._frames, self._labels, self.dtype = frames, labels, dtype
        self.classes = getattr(dataset, "classes", None)
        self.nbytes = sum(f.numel() * f.element_size() for f in frames if f is not None)

    @property
    def skipped(self) -> list:
        return list(getattr(self.dataset, "skipped", []) or [])

    @staticmethod
    def estimate_bytes(dataset) -> int:
        """Bytes the frames would take at one byte per count (the smallest case): the
        first readable sample's size times ``len(dataset)``; 0 when none of the first 16
        is readable."""
        x = first_readable(dataset)
        return 0 if x is None else int(x.numel()) * len(dataset)

    @classmethod
    def load(cls, dataset, budget_bytes: Optional[int] = None, workers: int = 0) -> Optional["FramesInMemory"]:
        """Read all of ``dataset`` (``workers`` > 0: in DataLoader worker processes);
        None as soon as the held frames pass ``budget_bytes`` (None: no limit)."""
        frames: list[Optional[torch.Tensor]] = []
        labels: list[int] = []
        dtype, held = torch.float32, 0
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers,
                                             collate_fn=_as_is) if workers > 0 else \
            (dataset[i] for i in range(len(dataset)))  # by index: a dataset need not end with IndexError
        from dvsstream.heap import release_freed_memory

        released = 0
        for x, y in loader:
            if int(y) < 0:
                frames.append(None)
            else:
                x = torch.as_tensor(x)
                dtype = x.dtype
                frames.append(_compact(x))
                held += frames[-1].numel() * frames[-1].element_size()
                if budget_bytes is not None and held > budget_bytes:
                    return None
                if held - released > _RELEASE_EVERY_BYTES:  # the freed float samples, between the kept ones
                    release_freed_memory()
                    released = held
            labels.append(int(y))
        release_freed_memory()
        return cls(dataset, frames, labels, dtype)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        f = self._frames[i]
        if f is None:
            return torch.empty(0), -1
        return f.to(self.dtype), self._labels[i]

    #: True when the frames are a mapping of a file (:meth:`open_shared`)
    shared: bool = False

    def save_shared(self, path) -> dict:
        """Write the held frames into one new file at ``path``, sample after sample as
        they lie in memory, and return the layout :meth:`open_shared` maps it with
        (``path``, its ``bytes``, per sample ``(byte offset, dtype, shape)`` or None,
        labels, dtype)."""
        entries: list[Optional[tuple[int, str, tuple[int, ...]]]] = []
        offset = 0
        with open(path, "xb") as f:
            for x in self._frames:
                if x is None:
                    entries.append(None)
                    continue
                a = np.ascontiguousarray(x.numpy())
                a.tofile(f)
                entries.append((offset, a.dtype.str, tuple(a.shape)))
                offset += a.nbytes
        return {"path": str(path), "bytes": offset, "entries": entries, "labels": list(self._labels),
                "dtype": str(self.dtype).removeprefix("torch.")}

    @classmethod
    def open_shared(cls, dataset, layout: dict) -> "FramesInMemory":
        """The frames :meth:`save_shared` wrote, mapped copy-on-write: their pages are the
        operating system's file cache, one copy for every process that maps the file (the
        ranks of a DDP run on one machine); the file may be deleted once all have."""
        size = layout["bytes"]
        data = np.memmap(layout["path"], dtype=np.uint8, mode="c", shape=(size,)) if size else None
        frames: list[Optional[torch.Tensor]] = []
        for e in layout["entries"]:
            if e is None:
                frames.append(None)
                continue
            offset, dt, shape = e
            n = int(np.prod(shape)) * np.dtype(dt).itemsize
            frames.append(torch.from_numpy(data[offset:offset + n].view(dt).reshape(shape)))
        held = cls(dataset, frames, list(layout["labels"]), getattr(torch, layout["dtype"]))
        held.shared = True
        return held


def first_readable(dataset, k: int = 16) -> Optional[torch.Tensor]:
    """The frames of the first readable sample (label >= 0) among the first ``k`` of
    ``dataset``; None when none is."""
    for i in range(min(len(dataset), k)):
        x, y = dataset[i]
        if int(y) >= 0:
            return torch.as_tensor(x)
    return None


def _as_is(item):
    """DataLoader collate for one sample (``batch_size=None``): unchanged."""
    return item


def _compact(x: torch.Tensor) -> torch.Tensor:
    """``x`` as uint8 / uint16 when that holds its values exactly, else ``x`` itself."""
    if x.is_floating_point() and x.numel():
        small = torch.from_numpy(_smallest_exact(x.detach().cpu().numpy()))
        if small.dtype in (torch.uint8, torch.uint16):
            return small
    return x


def collate_frames(batch):
    """DataLoader collate that drops skipped samples (label -1): ``(frames [B, T, 2, H, W],
    labels [B])``; an all-skipped batch gives ``B = 0``."""
    kept = [(f, int(y)) for f, y in batch if int(y) >= 0]
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    frames = torch.stack([torch.as_tensor(f) for f, _ in kept])
    labels = torch.tensor([y for _, y in kept], dtype=torch.long)
    return frames, labels


# ===================================================================== entry point
def _spread(n: int, limit: int) -> list[int]:
    """``limit`` indices spread evenly over ``range(n)`` (every class of a class-sorted list)."""
    if limit >= n:
        return list(range(n))
    return sorted({(i * n) // limit for i in range(limit)})


def load_dataset(
    name: str,
    root,
    split: str = "test",
    spec: FrameSpec = FrameSpec(),
    cache_dir=None,
    limit: Optional[int] = None,
) -> FrameDataset:
    """Open a split of ``"cifar10dvs"`` or ``"dvsgesture"`` under ``root`` (never downloads).

    ``split``: ``"train"``, ``"test"`` or ``"all"``. ``spec``: how frames are made.
    ``cache_dir``: where binned frames are cached (default ``<root>/.dvsstream-cache``;
    ``False``: no cache). ``limit``: at most this many samples, spread evenly over the
    split (so that every class appears); a limit larger than the split keeps all of it
    (``dataset.info["limit_exceeds"]`` says so). Raises :class:`DvsstreamError` with what
    is expected where when the folder is missing or empty.
    """
    name = _canonical(name)
    if split not in _SPLITS:
        raise DvsstreamError(f"unknown split {split!r}; expected one of {', '.join(_SPLITS)}")
    if not isinstance(spec, FrameSpec):
        raise DvsstreamError(f"spec must be a FrameSpec, got {type(spec).__name__}")
    root = Path(root).expanduser()
    if not root.is_dir():
        hint = ("CIFAR10DVS/<class>/*.aedat4" if name == "cifar10dvs"
                else "DVSGesture/ibmGestureTrain|ibmGestureTest/... or DvsGesture/*.aedat")
        raise DvsstreamError(f"dataset folder {root} does not exist; expected it to hold {hint}")
    if name == "cifar10dvs":
        items, info = _list_cifar10dvs(root, split, spec)
        skipped: list = []
    else:
        items, info, skipped = _list_gesture(root, split, spec)
    info["convention"] = spec.convention
    info["split_size"] = len(items)
    if limit is not None:
        if limit < 1:
            raise DvsstreamError(f"limit must be >= 1, got {limit}")
        info["limit"] = int(limit)
        info["limit_exceeds"] = limit > len(items)
        if limit > len(items):
            log.info("limit %d is larger than the %s split (%d samples); using all of them", limit, split, len(items))
        items = [items[i] for i in _spread(len(items), limit)]
    if cache_dir is False:
        cache = None
    else:
        cache = Path(cache_dir).expanduser() if cache_dir is not None else root / ".dvsstream-cache"
        try:
            cache.mkdir(parents=True, exist_ok=True)
            if not os.access(cache, os.W_OK):
                raise OSError("not writable")
        except OSError as exc:
            log.warning("frame cache %s unusable (%s); frames are recomputed every time "
                        "(pass cache_dir / --cache-dir to a writable folder)", cache, exc)
            cache = None
    return FrameDataset(name, root, split, spec, items, cache, info, skipped)
