"""Whole recordings to frames: :func:`events_to_frames` (one recording),
:func:`batch_events_to_frames` (many, one per thread, for dataset preprocessing) and
:func:`region_frames` (the model's region of finished frames, resized as the streaming
binner resizes). Each call accounts for its events in a :class:`BinStats`.

Frames are ``float32`` event counts ``[n_bins, 2, H, W]`` (``[S, n_bins, 2, H, W]`` for
a batch); times in µs; the time-bin and count-split conventions are stated in
:mod:`dvsstream.binning`. The counting itself is :mod:`~dvsstream.binning.kernels`'.
No torch, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dvsstream.binning.kernels import (
    _T_MAX,
    _T_MIN,
    _batch_kernel,
    _bin_one_sample,
    _count_starts,
    _parallel_allowed,
    _time_bins,
    range_kernel,
)
from dvsstream.binning.region import check_region, output_size, padded_crop, spans_sensor
from dvsstream.events import EVENT_DTYPE, sensor_size_of

__all__ = ["BinStats", "as_event_array", "batch_events_to_frames", "events_to_frames", "region_frames"]


@dataclass
class BinStats:
    """How the events of one call were accounted for:
    ``events = binned + out_of_bounds (+ out_of_window)``."""

    events: int = 0
    binned: int = 0
    out_of_bounds: int = 0
    out_of_window: int = 0


def as_event_array(events: np.ndarray) -> np.ndarray:
    """``events`` as a C-contiguous :data:`~dvsstream.events.EVENT_DTYPE` array (any
    t/x/y/p structured array is converted), what the kernels read."""
    if events.dtype != EVENT_DTYPE:
        from dvsstream.events import as_events

        events = as_events(events)
    return np.ascontiguousarray(events)


def events_to_frames(
    events: np.ndarray,
    sensor_size,
    n_bins: int,
    mode: str = "time",
    *,
    t_start: int | None = None,
    t_end: int | None = None,
    parallel: bool = True,
    return_stats: bool = False,
    roi: Sequence[int] | None = None,
    size: Sequence[int] | None = None,
):
    """Accumulate a whole recording into ``n_bins`` frames of event counts.

    Parameters
    ----------
    events: :data:`~dvsstream.events.EVENT_DTYPE` array (other t/x/y/p
        structured arrays are converted). Time mode is fastest on time-sorted
        input; unsorted input is handled correctly on a slower path.
    sensor_size: ``(width, height)``.
    n_bins: number of frames T (>= 1).
    mode: ``"time"`` (equal time bins over ``[t_start, t_end]``, default the
        first and last timestamps) or ``"count"`` (equal event counts, the papers'
        split).
    t_start, t_end: time mode only: the span to cut (µs, both inclusive);
        events outside it are counted as ``out_of_window``.
    parallel: use all Numba threads (bins are split across threads); always off in a
        forked child such as a DataLoader worker (GNU OpenMP is not fork-safe).
    return_stats: also return a :class:`BinStats`.
    roi, size: the region ``(x0, y0, w, h)`` of the sensor to keep and the ``(width,
        height)`` it is resized to, exactly as :class:`StreamingBinner` does (see
        :func:`region_frames`); events outside the region count as ``out_of_window``,
        as the streaming binner counts them. The count split still counts every input
        event (the papers' ``N``).

    Returns
    -------
    ``float32`` array ``[n_bins, 2, height, width]`` (``size`` when given; and ``BinStats``).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if mode not in ("time", "count"):
        raise ValueError(f"mode must be 'time' or 'count', got {mode!r}")
    if mode == "count" and (t_start is not None or t_end is not None):
        raise ValueError("t_start/t_end apply to mode='time' only")
    width, height = sensor_size_of(sensor_size)
    ev = as_event_array(events)
    frames = np.zeros((n_bins, 2, height, width), np.float32)
    stats = BinStats(events=int(ev.size))
    if ev.size:
        if mode == "count":
            kernel = range_kernel(parallel)
            lo = np.full(n_bins, _T_MIN, np.int64)
            hi = np.full(n_bins, _T_MAX, np.int64)
            stats.binned = int(kernel(ev, _count_starts(ev.size, n_bins), lo, hi, frames, width, height))
        else:
            stats.binned, stats.out_of_window = _time_bins(ev, t_start, t_end, frames, width, height, parallel)
    stats.out_of_bounds = stats.events - stats.binned - stats.out_of_window
    if roi is not None or size is not None:
        frames = region_frames(frames, roi, size)
        in_region = int(frames.sum(dtype=np.float64))
        stats.out_of_window += stats.binned - in_region
        stats.binned = in_region
    return (frames, stats) if return_stats else frames


def region_frames(frames: np.ndarray, roi: Sequence[int] | None, size: Sequence[int] | None) -> np.ndarray:
    """The region ``roi = (x0, y0, w, h)`` of count frames ``[..., H, W]`` (None: all of
    them), resized to ``size = (width, height)`` (None: the region's size) exactly as
    :class:`StreamingBinner` maps events: region pixel ``(x, y)`` adds into output pixel
    ``(x * width // w, y * height // h)`` -- sum-pooling for integer ratios, the exact
    nearest-bin resize otherwise (enlarging, along an axis where the region is the whole
    sensor: each region pixel its own output pixel). Every count of the region lands in
    exactly one output pixel (totals exact). A region reaching past the frames' edge reads zeros there.
    Returns ``float32 [..., height, width]``. Raises ``ValueError`` (one line) for a
    region :func:`~dvsstream.binning.region.check_region` refuses (``padded``) or a size larger
    than the region."""
    height, width = frames.shape[-2:]
    x0, y0, rw, rh = check_region(roi if roi is not None else (0, 0, width, height), (width, height), padded=True)
    out_w, out_h = output_size(rw, rh, 1, size, spans_sensor((x0, y0, rw, rh), (width, height)))
    out = padded_crop(frames, x0, y0, rw, rh)
    out = _resize_axis(out, rw, out_w, -1)
    out = _resize_axis(out, rh, out_h, -2)
    return np.ascontiguousarray(out, dtype=np.float32)


def _resize_axis(frames: np.ndarray, n_in: int, n_out: int, axis: int) -> np.ndarray:
    """Input index ``i`` of ``axis`` added into output index ``i * n_out // n_in``:
    sum-pooling or the nearest-bin shrink when ``n_out < n_in``; when enlarging, each
    input index lands in its own output index (the others stay zero)."""
    if n_out == n_in:
        return frames
    if n_out < n_in:
        return np.add.reduceat(frames, _group_starts(n_in, n_out), axis=axis, dtype=np.float32)
    shape = list(frames.shape)
    shape[axis] = n_out
    out = np.zeros(shape, np.float32)
    index = [slice(None)] * frames.ndim
    index[axis] = (np.arange(n_in, dtype=np.int64) * n_out) // n_in  # injective for n_out > n_in
    out[tuple(index)] = frames
    return out


def _group_starts(n_in: int, n_out: int) -> np.ndarray:
    """First input index of each output index under ``i -> i * n_out // n_in``
    (``ceil(j * n_in / n_out)``), ``int64 [n_out]``; strictly increasing for ``n_out <= n_in``."""
    j = np.arange(n_out, dtype=np.int64)
    return (j * n_in + n_out - 1) // n_out


def batch_events_to_frames(
    recordings: Sequence[np.ndarray],
    sensor_size,
    n_bins: int,
    mode: str = "count",
) -> tuple[np.ndarray, np.ndarray]:
    """Bin many recordings at once, one recording per thread (``prange``).

    Each recording is binned exactly as :func:`events_to_frames` would (over its
    own first..last timestamp in time mode). Returns ``(frames, binned)``:
    ``float32 [S, n_bins, 2, H, W]`` and the in-bounds count per recording
    (``int64 [S]``; ``len(recording) - binned`` were out of bounds).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if mode not in ("time", "count"):
        raise ValueError(f"mode must be 'time' or 'count', got {mode!r}")
    width, height = sensor_size_of(sensor_size)
    arrays = [as_event_array(r) for r in recordings]
    offsets = np.zeros(len(arrays) + 1, np.int64)
    np.cumsum([a.size for a in arrays], out=offsets[1:])
    flat = np.concatenate(arrays) if arrays else np.zeros(0, EVENT_DTYPE)
    out = np.zeros((len(arrays), n_bins, 2, height, width), np.float32)
    if _parallel_allowed():
        return out, _batch_kernel(flat, offsets, out, mode == "count", width, height)
    no_lo = np.full(n_bins, _T_MIN, np.int64)  # a forked child: one sample after another
    no_hi = np.full(n_bins, _T_MAX, np.int64)
    binned = np.array([_bin_one_sample(flat[offsets[s]:offsets[s + 1]], out[s], mode == "count", no_lo, no_hi,
                                       width, height) for s in range(len(arrays))], np.int64)
    return out, binned
