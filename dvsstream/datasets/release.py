"""The releases' data path, bit for bit: spikingjelly's readers, conventions, frames,
split and label order, re-implemented without spikingjelly (numpy + our Numba binner).

The Spikformer-family releases read CIFAR10-DVS and DVS128 Gesture through spikingjelly
(``data_type='frame', frames_number=T, split_by='number'``). What their checkpoints
therefore expect, and what this module reproduces (tests compare with spikingjelly 2.0's
own functions):

Conventions (``FrameSpec.convention``)
--------------------------------------
``"spikingjelly"`` (default): the frames the releases trained on.

* original CIFAR10-DVS ``.aedat`` (AEDAT 2.0, jAER DVS128 addresses ``x_raw = (a >> 1) &
  0x7F``, ``y_raw = (a >> 8) & 0x7F``, ``p_raw = a & 1``): ``x = 127 - y_raw``,
  ``y = 127 - x_raw``, ``p = 1 - p_raw`` (spikingjelly's ``_load_origin_data``). Every
  record is kept, special (bit 15) records included, and ``t`` is the raw 32-bit stamp,
  as spikingjelly reads them. Against dvsstream's upright reading of the same file
  (:class:`~dvsstream.io.aedat2.Aedat2Source`: ``x = 127 - x_raw``, ``y = 127 -
  y_raw``, ``p = 1 - p_raw``) this is the **transpose** (x and y exchanged); the
  polarity agrees (jAER's ``DVS128.Extractor`` documents raw polarity 0 as ON, so
  spikingjelly's ``p = 1`` is ON, as ours).
* spikingjelly's ``events_np`` and ``frames_number_*`` files: as stored (already so).
* DVS128 Gesture, every layout: x, y, p as stored in the AEDAT 3.1 release (spikingjelly's
  ``load_aedat_v3`` and tonic read them unchanged, and so do we).
* tonic's ``.aedat4`` re-export of CIFAR10-DVS: read as stored. Its README says only that
  the originals were "transformed from aedat 2.0 format to aedat 4.0 format by using
  iniVation software"; how that software mapped DVS128 addresses is not documented and
  was not verified here (no original/re-export pair was available), so these files are
  **not** known to give the releases' frames (a warning says so).

``"native"``: dvsstream's own readers' coordinates (upright, (0, 0) top left, as
:class:`~dvsstream.io.aedat2.Aedat2Source` gives them): the original ``.aedat`` read
by that reader (special records dropped, timestamps unwrapped); spikingjelly's converted
CIFAR10-DVS files mapped back (``x = y_sj``, ``y = x_sj``; frames transposed), so one
recording gives the same frames in every layout;
Gesture and ``.aedat4`` as stored.

Frames
------
:func:`spikingjelly_frames` is spikingjelly's ``integrate_events_by_fixed_frames_number``:
``split_by="number"`` (``FrameSpec.mode="count"``): slice ``j`` holds events
``floor(N/T)*j .. floor(N/T)*(j+1)``, the remainder in the last; ``split_by="time"``
(``mode="time"``): ``dt = (t[-1] - t[0]) // T`` (integer µs), slice ``j`` holds the
events with ``t0 + j*dt <= t < t0 + (j+1)*dt``, the last slice runs to the end. Where
spikingjelly raises (an empty time slice, e.g. ``t[-1] - t[0] < T`` µs), the slice is
simply empty here. Events outside the sensor are not counted (spikingjelly would fail).

Split and label order
---------------------
:func:`release_split`: per class, files in sorted-name order, the first
``math.ceil(0.9 * n)`` train, the rest test (spikingjelly's ``split_to_train_test_set``
as the releases call it). :func:`spikingjelly_output_classes`: torchvision's
``DatasetFolder`` sorts class folder names as strings, so a release's Gesture output
``k`` is class ``int(sorted(str(i) for i in range(11))[k])``.

No torch here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from dvsstream.errors import DvsstreamError

__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "LABEL_ORDERS",
    "SPLIT_RULE",
    "SampleError",
    "release_split",
    "release_n_train",
    "spikingjelly_output_classes",
    "spikingjelly_frames",
    "segment_index",
    "read_cifar10dvs_aedat",
    "read_events_npz",
    "read_frames_npz",
    "sj_to_native_events",
    "sj_to_native_frames",
    "label_order_for",
    "output_classes_for",
]

CONVENTIONS = ("spikingjelly", "native")
DEFAULT_CONVENTION = "spikingjelly"
LABEL_ORDERS = ("dataset", "spikingjelly")
#: the split rule, as report.json records it
SPLIT_RULE = "per class, sorted file names, first ceil(0.9 n) train (the releases' split_to_train_test_set)"
_TRAIN_RATIO = 0.9
_AEDAT2_RECORD = np.dtype([("addr", ">u4"), ("ts", ">u4")])


class SampleError(Exception):
    """One sample cannot be used; the message names the file and what is wrong."""


# ------------------------------------------------------------------ split, label order
def release_n_train(n: int) -> int:
    """Training files of a class of ``n``: ``math.ceil(n * 0.9)`` in float, exactly as
    the releases compute it (900 of 1000, 11 of 12, 4 of 4)."""
    return math.ceil(n * _TRAIN_RATIO)


def release_split(names: Sequence[str], split: str) -> list[str]:
    """One class's files for ``split`` (``"train"``, ``"test"``, ``"all"``): sorted by
    name (strings: ``..._10`` before ``..._2``), the first ``ceil(0.9 n)`` train."""
    names = sorted(names)
    k = release_n_train(len(names))
    return names[:k] if split == "train" else names[k:] if split == "test" else names


def spikingjelly_output_classes(n_classes: int, class_folders: Optional[Sequence[str]] = None) -> list[int]:
    """Dataset class of each output of a model trained on a spikingjelly
    ``DatasetFolder``: ``out[k]`` = the class whose folder sorts k-th. Folders default
    to the label numbers ``'0'..'n-1'`` (DVS128 Gesture: 0, 1, 10, 2, ..., 9)."""
    folders = [str(i) for i in range(n_classes)] if class_folders is None else list(class_folders)
    order = sorted(range(n_classes), key=lambda i: folders[i])
    return order


# ------------------------------------------------------------------ frames
def segment_index(t: np.ndarray, split_by: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """spikingjelly's ``cal_fixed_frames_number_segment_index``: ``(j_l, j_r)`` int64
    ``[n]``, slice ``i`` = events ``j_l[i]:j_r[i]``. ``t``: µs (any integer dtype).
    An empty time slice (where spikingjelly raises IndexError) is ``(k, k)``."""
    N = int(t.size)
    j_l = np.zeros(n, np.int64)
    j_r = np.zeros(n, np.int64)
    if split_by == "number":
        di = N // n
        j_l[:] = np.arange(n) * di
        j_r[:] = j_l + di
        j_r[-1] = N
        return j_l, j_r
    if split_by != "time":
        raise ValueError(f"split_by must be 'number' or 'time', got {split_by!r}")
    if N == 0:
        return j_l, j_r
    tt = t.astype(np.int64)
    t0 = int(tt[0])
    dt = (int(tt[-1]) - t0) // n
    lo = t0 + dt * np.arange(n, dtype=np.int64)
    hi = lo + dt
    if N < 2 or bool(np.all(tt[1:] >= tt[:-1])):
        j_l[:] = np.searchsorted(tt, lo, "left")
        j_r[:] = np.searchsorted(tt, hi, "left")
        j_r = np.maximum(j_r, j_l)
    else:  # unsorted: spikingjelly's first / last index inside [lo, hi)
        for i in range(n):
            idx = np.flatnonzero((tt >= lo[i]) & (tt < hi[i]))
            if idx.size:
                j_l[i], j_r[i] = idx[0], idx[-1] + 1
    j_r[-1] = N
    if j_l[-1] > N:
        j_l[-1] = N
    return j_l, j_r


def spikingjelly_frames(events: np.ndarray, split_by: str, n: int, width: int = 128,
                        height: int = 128, parallel: bool = True) -> np.ndarray:
    """``integrate_events_by_fixed_frames_number`` of spikingjelly on an event array
    (fields t, x, y, p): ``float32 [n, 2, height, width]`` event counts, channel 1 = ``p
    != 0``. Events outside ``width`` x ``height`` are not counted."""
    from dvsstream.binning.frames import as_event_array
    from dvsstream.binning.kernels import range_kernel

    ev = as_event_array(events)
    frames = np.zeros((n, 2, height, width), np.float32)
    if ev.size == 0:
        return frames
    j_l, j_r = segment_index(ev["t"], split_by, n)
    if np.array_equal(j_l[1:], j_r[:-1]) and j_l[0] == 0:  # contiguous: one Numba pass
        starts = np.append(j_l, j_r[-1]).astype(np.int64)
        lo = np.full(n, np.iinfo(np.int64).min, np.int64)
        hi = np.full(n, np.iinfo(np.int64).max, np.int64)
        kernel = range_kernel(parallel)
        kernel(ev, starts, lo, hi, frames, width, height)
        return frames
    x = ev["x"].astype(np.int64)
    y = ev["y"].astype(np.int64)
    c = (ev["p"] != 0).astype(np.int64)
    for i in range(n):  # overlapping or gapped slices (unsorted time split)
        s = slice(int(j_l[i]), int(j_r[i]))
        xi, yi, ci = x[s], y[s], c[s]
        ok = (xi < width) & (yi < height)
        pos = ci[ok] * height * width + yi[ok] * width + xi[ok]
        frames[i] = np.bincount(pos, minlength=2 * height * width).reshape(2, height, width)
    return frames


# ------------------------------------------------------------------ readers
def _event_array(t, x, y, p) -> np.ndarray:
    from dvsstream.events import EVENT_DTYPE

    ev = np.empty(len(t), EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, p
    return ev


def read_cifar10dvs_aedat(path) -> np.ndarray:
    """An original CIFAR10-DVS ``.aedat`` file in spikingjelly's convention (see the
    module docstring): every record, ``t`` the raw 32-bit µs stamp. Raises
    :class:`SampleError` for a file that is not AEDAT 2.0 or ends inside a record."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if not f.read(10).startswith(b"#!AER-DAT"):
                raise SampleError(f"{path}: not an AEDAT 2.0 file (no #!AER-DAT2.0 first line); expected "
                                  f"an original CIFAR10-DVS recording")
            f.seek(0)
            offset = 0
            while True:  # header lines start with '#'
                line = f.readline()
                if not line.startswith(b"#"):
                    break
                offset += len(line)
            f.seek(offset)
            body = f.read()
    except OSError as exc:
        raise SampleError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(body) % _AEDAT2_RECORD.itemsize:
        raise SampleError(f"{path}: the file ends inside an 8-byte record (truncated); re-extract it "
                          f"from the release's <class>.zip")
    rec = np.frombuffer(body, dtype=_AEDAT2_RECORD)
    a = rec["addr"].astype(np.int64)
    x_raw, y_raw, p_raw = (a >> 1) & 0x7F, (a >> 8) & 0x7F, a & 1
    return _event_array(rec["ts"].astype(np.int64), 127 - y_raw, 127 - x_raw, 1 - p_raw)


def read_events_npz(path, sensor_size: tuple[int, int] = (128, 128)) -> np.ndarray:
    """spikingjelly's ``events_np`` sample (keys t, x, y, p) as an event array, checked:
    raises :class:`SampleError` naming the file for missing keys, unequal lengths or
    coordinates outside ``sensor_size`` ``(width, height)``."""
    path = Path(path)
    w, h = sensor_size
    try:
        with np.load(path) as z:
            missing = [k for k in ("t", "x", "y", "p") if k not in z.files]
            if missing:
                raise SampleError(f"{path}: missing key(s) {', '.join(missing)}; expected an events npz with "
                                  f"keys t, x, y, p (spikingjelly's events_np)")
            t, x, y, p = (np.asarray(z[k]).reshape(-1) for k in ("t", "x", "y", "p"))
    except SampleError:
        raise
    except Exception as exc:  # not a zip, damaged member, ...
        raise SampleError(f"{path}: not a readable npz ({type(exc).__name__}: {exc})") from None
    if not (t.size == x.size == y.size == p.size):
        raise SampleError(f"{path}: keys t, x, y, p have different lengths ({t.size}, {x.size}, {y.size}, {p.size})")
    if t.size:
        bad = [f"{k} in [{int(v.min())}, {int(v.max())}]" for k, v, n in (("x", x, w), ("y", y, h), ("p", p, 2))
               if int(v.min()) < 0 or int(v.max()) >= n]
        if bad:
            raise SampleError(f"{path}: {', '.join(bad)}; expected 0 <= x < {w}, 0 <= y < {h}, p in {{0, 1}}")
    return _event_array(t.astype(np.int64), x, y, p)


def read_frames_npz(path, n_bins: int, sensor_size: tuple[int, int] = (128, 128)) -> np.ndarray:
    """spikingjelly's frames sample (key ``frames``, ``[T, 2, H, W]``) as float32, checked:
    raises :class:`SampleError` naming the file for a missing key or another shape."""
    path = Path(path)
    w, h = sensor_size
    try:
        with np.load(path) as z:
            if "frames" not in z.files:
                raise SampleError(f"{path}: no key 'frames' (keys: {', '.join(z.files)}); expected "
                                  f"spikingjelly's frames npz")
            frames = np.asarray(z["frames"])
    except SampleError:
        raise
    except Exception as exc:
        raise SampleError(f"{path}: not a readable npz ({type(exc).__name__}: {exc})") from None
    want = (int(n_bins), 2, h, w)
    if frames.shape != want:
        raise SampleError(f"{path}: frames of shape {list(frames.shape)}; expected {list(want)} "
                          f"(T={n_bins}); re-export with frames_number={n_bins} or choose --bins {frames.shape[0]}"
                          if frames.ndim == 4 else f"{path}: frames of shape {list(frames.shape)}; expected {list(want)}")
    return frames.astype(np.float32)


def sj_to_native_events(ev: np.ndarray) -> np.ndarray:
    """spikingjelly-convention CIFAR10-DVS events -> dvsstream's upright reading of the
    same recording: ``x = y_sj``, ``y = x_sj`` (the polarities agree: 1 = ON)."""
    out = ev.copy()
    out["x"], out["y"] = ev["y"], ev["x"]
    return out


def sj_to_native_frames(frames: np.ndarray) -> np.ndarray:
    """Frames ``[T, 2, H, W]`` in spikingjelly's CIFAR10-DVS convention -> native:
    transposed."""
    return np.ascontiguousarray(frames.transpose(0, 1, 3, 2))



# ------------------------------------------------------------------ label order policy
def _class_folders(dataset: str, n_classes: int) -> list[str]:
    """The class folder names spikingjelly's ``DatasetFolder`` sorts: CIFAR10-DVS's class
    names (already in label order), DVS128 Gesture's label numbers."""
    if dataset == "cifar10dvs":  # airplane, automobile, ..., truck: sorted is label order
        return [f"{i:02d}" for i in range(n_classes)]
    return [str(i) for i in range(n_classes)]


def output_classes_for(dataset: str, order: str, n_classes: int) -> Optional[list[int]]:
    """``out[k]`` = dataset class of model output ``k`` for a model whose outputs follow
    ``order``; None when that is the identity (nothing to map)."""
    if order != "spikingjelly":
        return None
    classes = spikingjelly_output_classes(n_classes, _class_folders(dataset, n_classes))
    return None if classes == list(range(n_classes)) else classes


def label_order_for(dataset: str, requested: Optional[str], kind: str, source: str) -> tuple[str, str, Optional[str]]:
    """Which class order a checkpoint's outputs follow -> ``(order, why, warning or None)``.

    ``kind``: ``"dvsstream"`` (ours: outputs carry their class names; ``requested`` must
    be None or "dataset"), ``"release-trained"`` (saved by a release's train.py:
    spikingjelly's order unless ``requested`` says otherwise) or ``"state-dict"`` (a bare
    state dict: ``requested``, default "dataset"; on DVS128 Gesture a one-line warning
    says that ``--label-order spikingjelly`` exists)."""
    if requested is not None and requested not in LABEL_ORDERS:
        raise DvsstreamError(f"unknown label order {requested!r}; expected one of {', '.join(LABEL_ORDERS)}")
    if kind == "dvsstream":
        if requested == "spikingjelly":
            raise DvsstreamError(f"{source} is a dvsstream checkpoint whose outputs carry their class names; "
                                 f"--label-order spikingjelly applies to release checkpoints only")
        return "dataset", "dvsstream checkpoint (outputs in the dataset's class order, named)", None
    if kind == "release-trained":
        order = requested or "spikingjelly"
        why = ("saved by a release's train.py: outputs in spikingjelly's DatasetFolder order"
               if requested is None else f"--label-order {requested} (release-trained checkpoint)")
        return order, why, None
    order = requested or "dataset"
    warning = None
    if requested is None and dataset == "dvsgesture":
        warning = (f"{source} is a bare state dict: its outputs are read in the dataset's class order; if it was "
                   f"trained through spikingjelly's DatasetFolder (as the releases are) pass --label-order spikingjelly")
    why = "bare state dict: --label-order " + order + ("" if requested else " (default)")
    return order, why, warning
