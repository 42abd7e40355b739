"""Events to time-step frames, with Numba kernels (``cache=True``).

Three entry points, all producing ``float32`` event *counts* per polarity:

* :func:`events_to_frames` -- a whole recording into ``[n_bins, 2, H, W]``
  (equal time bins, or the papers' equal-count split);
* :func:`batch_events_to_frames` -- many recordings in parallel (``prange``)
  into ``[S, n_bins, 2, H, W]``, for dataset preprocessing;
* :class:`StreamingBinner` -- live use: fed packets of any size, it emits
  sliding windows ``[T, C, H, W]`` causally from a ring of T bins.

Conventions (see ``shared/docs/design.md``):

* Time bins are half-open ``[t0 + k*span/n, t0 + (k+1)*span/n)`` in exact
  integer arithmetic (bin of an event = ``(t - t0) * n // span``); the last bin
  is closed so the last event is counted.
* Count split: slice ``j`` holds events ``floor(N/T)*j .. floor(N/T)*(j+1) - 1``
  of the input (in input order), the remainder goes to the last slice; with
  ``N < T`` every event lands in the last slice (that is what the formula says).
  ``N`` counts all input events, in bounds or not, as the papers' code does.
* Every in-bounds event is counted exactly once. Events outside the sensor are
  not written; they are counted in :class:`BinStats`.

Polarity: channel 0 = OFF (``p == 0``), channel 1 = ON (``p != 0``), as tonic does.
No torch, no I/O here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numba as nb
import numpy as np

from dvsstream.errors import DvsstreamError
from dvsstream.events import EVENT_DTYPE, SensorSize, check_region, region_is_padded, sensor_size_of

__all__ = [
    "BinStats",
    "Geometry",
    "events_to_frames",
    "batch_events_to_frames",
    "geometry_for",
    "region_frames",
    "StreamingBinner",
    "Window",
]


@dataclass
class BinStats:
    """How the events of one call were accounted for:
    ``events = binned + out_of_bounds (+ out_of_window)``."""

    events: int = 0
    binned: int = 0
    out_of_bounds: int = 0
    out_of_window: int = 0


def _as_event_array(events: np.ndarray) -> np.ndarray:
    if events.dtype != EVENT_DTYPE:
        from dvsstream.events import as_events

        events = as_events(events)
    return np.ascontiguousarray(events)


# ============================================================== offline kernels
_T_MIN = np.iinfo(np.int64).min
_T_MAX = np.iinfo(np.int64).max


@nb.njit(cache=True, nogil=True)
def _accumulate_range(ev, lo, hi, frame, width, height, t_lo, t_hi):
    """Add events ``ev[lo:hi]`` into ``frame[2, H, W]``; return the in-bounds
    count, or -1 as soon as an event's ``t`` is outside ``[t_lo, t_hi)`` (the
    range was not a time bin: the input was not sorted)."""
    n_in = 0
    flat = frame.reshape(-1)
    plane = width * height
    for i in range(lo, hi):
        r = ev[i]
        if r.t < t_lo or r.t >= t_hi:
            return -1
        x = np.int64(r.x)
        y = np.int64(r.y)
        if x < width and y < height:
            c = np.int64(r.p != 0)
            flat[c * plane + y * width + x] += 1.0
            n_in += 1
    return n_in


@nb.njit(cache=True, nogil=True, parallel=True)
def _bin_ranges_parallel(ev, starts, t_lo, t_hi, frames, width, height):
    """Bin ``k`` holds ``ev[starts[k]:starts[k+1]]``, whose ``t`` must lie in
    ``[t_lo[k], t_hi[k])``; bins run in parallel. Returns the in-bounds count,
    or -1 if some event broke its bin's time range."""
    n_bins = frames.shape[0]
    counts = np.zeros(n_bins, np.int64)
    for k in nb.prange(n_bins):
        counts[k] = _accumulate_range(ev, starts[k], starts[k + 1], frames[k], width, height,
                                      t_lo[k], t_hi[k])
    if counts.min() < 0:
        return -1
    return counts.sum()


@nb.njit(cache=True, nogil=True)
def _bin_ranges_serial(ev, starts, t_lo, t_hi, frames, width, height):
    total = 0
    for k in range(frames.shape[0]):
        n = _accumulate_range(ev, starts[k], starts[k + 1], frames[k], width, height,
                              t_lo[k], t_hi[k])
        if n < 0:
            return -1
        total += n
    return total


@nb.njit(cache=True, nogil=True)
def _time_bins_any_order(ev, t0, span, frames, width, height):
    """Any order: each event's bin by integer division (the slow, general path).
    Returns ``(binned, out_of_window)``."""
    n_bins = frames.shape[0]
    n_in = 0
    n_out_window = 0
    for i in range(ev.shape[0]):
        dt = ev[i].t - t0
        if dt < 0 or dt > span:
            n_out_window += 1
            continue
        k = (dt * n_bins) // span if span > 0 else 0
        if k >= n_bins:
            k = n_bins - 1
        x = np.int64(ev[i].x)
        y = np.int64(ev[i].y)
        if x < width and y < height:
            frames[k, 1 if ev[i].p != 0 else 0, y, x] += 1.0
            n_in += 1
    return n_in, n_out_window


@nb.njit(cache=True, nogil=True)
def time_bin_edges(t0, t1, n_bins):
    """Start time of every bin plus an exclusive end, ``int64 [n_bins + 1]``:
    bin ``k`` is ``[e[k], e[k+1])``, ``e[k] = t0 + ceil(k * span / n_bins)``
    (the smallest ``t`` with ``(t - t0) * n_bins // span == k``), and the last
    bin is closed: ``e[-1] = t1 + 1``. ``span = max(t1 - t0, 1)``."""
    span = max(t1 - t0, 1)
    edges = np.empty(n_bins + 1, np.int64)
    for k in range(n_bins):
        edges[k] = t0 + (k * span + n_bins - 1) // n_bins
    edges[n_bins] = t1 + 1
    return edges


# Numba's parallel kernels run on GNU OpenMP here (no TBB), which aborts a forked child
# ("fork() called from a process already using GNU OpenMP") that runs a parallel kernel
# after its parent did: a DataLoader worker binning samples after the main process binned
# one. A forked child therefore bins on one thread (the workers are the parallelism).
_IN_FORKED_CHILD = False


def _note_fork() -> None:
    global _IN_FORKED_CHILD
    _IN_FORKED_CHILD = True


os.register_at_fork(after_in_child=_note_fork)


def _parallel_allowed() -> bool:
    """Whether this process may run Numba's parallel kernels (not in a forked child)."""
    return not _IN_FORKED_CHILD


def range_kernel(parallel: bool):
    """The kernel that bins event ranges: the parallel one when asked for and allowed
    (never in a forked child), else the one-thread one. Every caller picks it here."""
    return _bin_ranges_parallel if parallel and _parallel_allowed() else _bin_ranges_serial


def _time_bins(ev, t_start, t_end, frames, width, height, parallel) -> tuple[int, int]:
    """Time-bin ``ev`` over ``[t_start, t_end]`` (None: first / last event);
    returns ``(binned, out_of_window)``.

    Fast path: assume sorted input, find each bin's event range by binary
    search, and let the kernel verify every event's time against its bin; if
    one does not fit (unsorted input), redo it on the general path."""
    t = ev["t"]
    t0 = int(t[0]) if t_start is None else int(t_start)
    t1 = int(t[-1]) if t_end is None else int(t_end)
    if t1 >= t0:
        kernel = range_kernel(parallel)
        edges = time_bin_edges(t0, t1, frames.shape[0])
        starts = _searchsorted_left(t, edges)
        n = kernel(ev, starts, edges[:-1], edges[1:], frames, width, height)
        if n >= 0:
            n_window = int(starts[-1] - starts[0])
            if n_window == ev.size or _is_sorted(t):
                return int(n), ev.size - n_window
        frames[:] = 0.0
    t0 = int(t.min()) if t_start is None else int(t_start)
    t1 = int(t.max()) if t_end is None else int(t_end)
    if t1 < t0:
        return 0, ev.size
    n_in, n_out = _time_bins_any_order(ev, t0, t1 - t0, frames, width, height)
    return int(n_in), int(n_out)


@nb.njit(cache=True, nogil=True)
def _searchsorted_left(t, values):
    """``np.searchsorted(t, values, "left")`` without copying a strided ``t``."""
    out = np.empty(values.shape[0], np.int64)
    for j in range(values.shape[0]):
        lo = 0
        hi = t.shape[0]
        v = values[j]
        while lo < hi:
            mid = (lo + hi) >> 1
            if t[mid] < v:
                lo = mid + 1
            else:
                hi = mid
        out[j] = lo
    return out


@nb.njit(cache=True, nogil=True)
def _is_sorted(t):
    for i in range(1, t.shape[0]):
        if t[i] < t[i - 1]:
            return False
    return True


def _count_starts(n: int, n_bins: int) -> np.ndarray:
    per = n // n_bins
    starts = np.arange(n_bins + 1, dtype=np.int64) * per
    starts[-1] = n
    return starts


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
    ev = _as_event_array(events)
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
    nearest-bin resize otherwise. Every count of the region lands in exactly one output
    pixel (totals exact). A region reaching past the frames' edge reads zeros there.
    Returns ``float32 [..., height, width]``. Raises ``ValueError`` (one line) for a
    region :func:`~dvsstream.events.check_region` refuses (``padded``) or a size larger
    than the region."""
    height, width = frames.shape[-2:]
    x0, y0, rw, rh = check_region(roi if roi is not None else (0, 0, width, height), (width, height), padded=True)
    out_w, out_h = _output_size(rw, rh, 1, size)
    out = padded_crop(frames, x0, y0, rw, rh)
    if out_w != rw:
        out = np.add.reduceat(out, _group_starts(rw, out_w), axis=-1, dtype=np.float32)
    if out_h != rh:
        out = np.add.reduceat(out, _group_starts(rh, out_h), axis=-2, dtype=np.float32)
    return np.ascontiguousarray(out, dtype=np.float32)


def _group_starts(n_in: int, n_out: int) -> np.ndarray:
    """First input index of each output index under ``i -> i * n_out // n_in``
    (``ceil(j * n_in / n_out)``), ``int64 [n_out]``; strictly increasing for ``n_out <= n_in``."""
    j = np.arange(n_out, dtype=np.int64)
    return (j * n_in + n_out - 1) // n_out


# ================================================================ batch kernel
@nb.njit(cache=True, nogil=True)
def _bin_one_sample(sample, out_s, count_mode, no_lo, no_hi, width, height):
    """Bin one recording into ``out_s [n_bins, 2, H, W]`` as :func:`events_to_frames`
    would; returns its in-bounds count."""
    n_bins = out_s.shape[0]
    n = sample.size
    if n == 0:
        return 0
    if count_mode:
        starts = np.arange(n_bins + 1) * (n // n_bins)
        starts[n_bins] = n
        return _bin_ranges_serial(sample, starts, no_lo, no_hi, out_s, width, height)
    if _is_sorted(sample.t):
        edges = time_bin_edges(sample[0].t, sample[n - 1].t, n_bins)
        starts = _searchsorted_left(sample.t, edges)
        return _bin_ranges_serial(sample, starts, edges[:-1], edges[1:], out_s, width, height)
    t0 = sample.t.min()
    return _time_bins_any_order(sample, t0, sample.t.max() - t0, out_s, width, height)[0]


@nb.njit(cache=True, nogil=True, parallel=True)
def _batch_kernel(ev, offsets, out, count_mode, width, height):
    """One recording per thread: ``ev[offsets[s]:offsets[s + 1]]`` into ``out[s]``."""
    binned = np.zeros(out.shape[0], np.int64)
    no_lo = np.full(out.shape[1], _T_MIN, np.int64)
    no_hi = np.full(out.shape[1], _T_MAX, np.int64)
    for s in nb.prange(out.shape[0]):
        binned[s] = _bin_one_sample(ev[offsets[s]:offsets[s + 1]], out[s], count_mode, no_lo, no_hi, width, height)
    return binned


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
    arrays = [_as_event_array(r) for r in recordings]
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


# ============================================================ streaming binner
@dataclass
class Window:
    """One sliding window emitted by :class:`StreamingBinner`.

    ``frames``: ``float32 [T, C, H, W]``, oldest bin first (a private copy);
    with ``emit="new"`` only the ``new_bins`` newest bins ``[new_bins, C, H, W]``.
    ``t_start``/``t_end``: the window covers events with ``t_start <= t < t_end`` (µs).
    ``new_bins``: how many of the last bins are new since the previous window
    (``hop / bin_us``; all T for the first window) -- what a step-mode model feeds.
    ``events``: events counted in the window (in bounds, inside the ROI).
    ``gap_before``: empty windows skipped just before this one (a silent sensor).
    """

    frames: np.ndarray
    t_start: int
    t_end: int
    new_bins: int
    events: int
    gap_before: int = 0


def padded_crop(frames: np.ndarray, x0: int, y0: int, rw: int, rh: int) -> np.ndarray:
    """``frames[..., y0:y0 + rh, x0:x0 + rw]``, zeros where the region lies past the
    frames' edge (a view when it does not)."""
    height, width = frames.shape[-2:]
    if x0 >= 0 and y0 >= 0 and x0 + rw <= width and y0 + rh <= height:
        return frames[..., y0:y0 + rh, x0:x0 + rw]
    out = np.zeros(frames.shape[:-2] + (rh, rw), frames.dtype)
    xs, ys = max(x0, 0), max(y0, 0)
    xe, ye = min(x0 + rw, width), min(y0 + rh, height)
    out[..., ys - y0:ye - y0, xs - x0:xe - x0] = frames[..., ys:ye, xs:xe]
    return out


@nb.njit(cache=True, nogil=True)
def _stream_kernel(ev, start, ring, bin_counts, state, geom, col_of, row_of):
    """Accumulate ``ev[start:]`` into the ring until an event reaches the end of
    the current window. Returns the index of the first unprocessed event.

    ``state`` (int64): [0] index of the current (newest) bin, [1] its start time,
    [2] bin length, [3] absolute index of the window's last bin,
    [4] binned, [5] out of bounds, [6] outside the ROI, [7] late (too old),
    [8] window's first bin index, [9] time origin.
    ``geom`` (int64): sensor w, h, roi x0, y0, roi w, h, merge polarity (0/1). ``col_of[x]`` / ``row_of[y]``: the output column / row of
    region pixel ``(x, y)``, ``x * out_w // roi_w`` and ``y * out_h // roi_h``
    (integer sum-pooling when the region is a multiple of the output, the
    nearest-bin resize otherwise): tables, so the per-event cost is two loads,
    no division; every event of the region lands in exactly one output pixel.
    """
    n_slots = ring.shape[0]
    cur = state[0]
    cur_start = state[1]
    bin_us = state[2]
    last_bin = state[3]
    first_bin = state[8]
    origin = state[9]
    sw = geom[0]
    sh = geom[1]
    rx0 = geom[2]
    ry0 = geom[3]
    rw = geom[4]
    rh = geom[5]
    merge = geom[6]
    for i in range(start, ev.shape[0]):
        t = ev[i].t
        if t >= cur_start + bin_us:
            k = (t - origin) // bin_us
            if k > last_bin:
                state[0] = cur
                state[1] = cur_start
                return i
            cur = k
            cur_start = origin + k * bin_us
            b = cur
        elif t >= cur_start:
            b = cur
        else:
            b = (t - origin) // bin_us
            if b < first_bin:
                state[7] += 1
                continue
        x = np.int64(ev[i].x)
        y = np.int64(ev[i].y)
        if x >= sw or y >= sh:
            state[5] += 1
            continue
        x -= rx0
        y -= ry0
        if x < 0 or y < 0 or x >= rw or y >= rh:
            state[6] += 1
            continue
        c = 0 if merge else (1 if ev[i].p != 0 else 0)
        slot = b % n_slots
        ring[slot, c, row_of[y], col_of[x]] += 1.0
        bin_counts[slot] += 1
        state[4] += 1
    state[0] = cur
    state[1] = cur_start
    return ev.shape[0]


@nb.njit(cache=True, nogil=True)
def _emit_kernel(ring, bin_counts, out, first, n_before_origin, recycle_from, n_recycle, clip):
    """Copy the window's last ``len(out)`` bins into ``out`` oldest first (bins
    before the time origin as zeros), cap counts at ``clip`` (< 0: no cap), then
    zero the ``n_recycle`` slots from absolute bin ``recycle_from`` on. Returns
    the number of events in the whole window. One kernel, so that emitting a
    window costs one pass over the frames and no temporary arrays."""
    n_slots = ring.shape[0]
    k0 = n_slots - out.shape[0]
    total = 0
    for k in range(n_slots):
        slot = (first + k) % n_slots
        if k >= n_before_origin:
            total += bin_counts[slot]
        if k < k0:
            continue
        dst = out[k - k0].reshape(-1)
        if k < n_before_origin:
            dst[:] = 0.0
            continue
        src = ring[slot].reshape(-1)
        if clip >= 0:
            for i in range(src.shape[0]):
                dst[i] = min(src[i], clip)
        else:
            dst[:] = src
    for b in range(recycle_from, recycle_from + n_recycle):
        slot = b % n_slots
        ring[slot].reshape(-1)[:] = 0.0
        bin_counts[slot] = 0
    return total


def _output_size(rw: int, rh: int, downsample: int, size: tuple[int, int] | None) -> tuple[int, int]:
    """Frame ``(width, height)`` of a ``rw x rh`` region: ``size`` when given (at most
    the region: a larger frame would have pixels no event reaches), else the region
    pooled by ``downsample`` (which must divide it)."""
    if size is not None:
        out_w, out_h = (int(v) for v in size)
        if out_w < 1 or out_h < 1:
            raise ValueError(f"resize {out_w}x{out_h} must be at least 1x1")
        if out_w > rw or out_h > rh:
            raise ValueError(f"resize {out_w}x{out_h} is larger than the {rw}x{rh} region; "
                             "choose a size at most the region's (or a larger region)")
        return out_w, out_h
    if rw % downsample or rh % downsample:
        raise ValueError(f"roi size {rw}x{rh} is not divisible by downsample={downsample}")
    return rw // downsample, rh // downsample


class StreamingBinner:
    """Causal sliding-window binning for live streams.

    The window is ``window_us`` long, cut into ``n_bins`` bins of
    ``bin_us = window_us / n_bins`` (must divide exactly); a window is emitted
    every ``hop_us`` (a multiple of ``bin_us``). Bins are aligned to a time
    origin (``t_origin``, default the first event's timestamp). A window ending
    at ``t_end`` holds exactly the events with ``t_end - window_us <= t < t_end``
    and is emitted as soon as an event with ``t >= t_end`` arrives (or
    :meth:`advance` is called with a later time), so it never uses the future.

    State is a ring of ``n_bins`` count images; memory does not grow with the
    stream. Events older than the current window (out of order by more than
    the window) are counted as ``late`` and not binned.

    Options: ``downsample`` (integer factor: 128 -> 64 with 2), ``roi``
    (``x0, y0, width, height`` in sensor pixels, applied before downsampling),
    ``size`` (``(width, height)`` of the frames: the region resized to it, each
    region pixel ``(x, y)`` landing in frame pixel ``(x * width // roi_w,
    y * height // roi_h)`` -- sum-pooling for integer ratios, the exact nearest-bin
    resize otherwise; instead of ``downsample``; never larger than the region),
    ``merge_polarity`` (one channel), ``clip`` (cap each bin's count per pixel
    in the emitted frames, e.g. 1 for binary frames), ``emit``: ``"window"``
    (each :class:`Window` carries all T bins) or ``"new"`` (only its
    ``new_bins`` newest bins -- what a step-mode model consumes; a fraction of
    the copying at high window rates).
    """

    def __init__(
        self,
        sensor_size,
        window_us: int,
        n_bins: int,
        hop_us: int | None = None,
        *,
        downsample: int = 1,
        roi: tuple[int, int, int, int] | None = None,
        size: tuple[int, int] | None = None,
        merge_polarity: bool = False,
        clip: float | None = None,
        t_origin: int | None = None,
        emit_partial: bool = False,
        emit: str = "window",
    ) -> None:
        self.sensor_size = sensor_size_of(sensor_size)
        if n_bins < 1 or window_us < n_bins or window_us % n_bins:
            raise ValueError(
                f"window_us ({window_us}) must be a positive multiple of n_bins ({n_bins})"
            )
        self.n_bins = int(n_bins)
        self.window_us = int(window_us)
        self.bin_us = self.window_us // self.n_bins
        self.hop_us = int(hop_us if hop_us is not None else self.bin_us)
        if self.hop_us <= 0 or self.hop_us % self.bin_us:
            raise ValueError(
                f"hop_us ({self.hop_us}) must be a positive multiple of the bin length "
                f"window_us / n_bins = {self.bin_us} µs"
            )
        self.hop_bins = self.hop_us // self.bin_us
        if self.hop_bins > self.n_bins:
            raise ValueError(f"hop_us ({self.hop_us}) must not exceed window_us ({self.window_us})")
        if downsample < 1:
            raise ValueError(f"downsample must be >= 1, got {downsample}")
        w, h = self.sensor_size
        x0, y0, rw, rh = check_region(roi if roi is not None else (0, 0, w, h), (w, h), padded=True)
        out_w, out_h = _output_size(rw, rh, downsample, size)
        self.roi = (x0, y0, rw, rh)
        self.size = (out_w, out_h)
        self.merge_polarity = bool(merge_polarity)
        self.clip = clip
        self.emit_partial = emit_partial
        if emit not in ("window", "new"):
            raise ValueError(f"emit must be 'window' or 'new', got {emit!r}")
        self.emit = emit
        channels = 1 if merge_polarity else 2
        self.frame_shape = (self.n_bins, channels, out_h, out_w)
        self._geom = np.array([w, h, x0, y0, rw, rh, int(merge_polarity)], np.int64)
        self._col_of = (np.arange(rw, dtype=np.int64) * out_w) // rw
        self._row_of = (np.arange(rh, dtype=np.int64) * out_h) // rh
        self._ring = np.zeros(self.frame_shape, np.float32)
        self._bin_counts = np.zeros(self.n_bins, np.int64)
        self._state = np.zeros(10, np.int64)
        self._origin = t_origin
        self._started = False
        self.events_in = 0
        self.windows_emitted = 0
        self.empty_windows_skipped = 0
        self._pending_gap = 0
        if t_origin is not None:
            self._start(int(t_origin))

    # ------------------------------------------------------------- counters
    @property
    def stats(self) -> BinStats:
        """Accounting so far: ``events = binned + out_of_bounds + out_of_window``
        (out of window = outside the ROI, or too late to bin)."""
        s = self._state
        return BinStats(
            events=self.events_in,
            binned=int(s[4]),
            out_of_bounds=int(s[5]),
            out_of_window=int(s[6] + s[7]),
        )

    @property
    def late_events(self) -> int:
        return int(self._state[7])

    @property
    def outside_roi(self) -> int:
        return int(self._state[6])

    @property
    def next_window_end(self) -> int | None:
        """End time (µs) of the window that will be emitted next."""
        if not self._started:
            return None
        return self._origin + (int(self._state[3]) + 1) * self.bin_us

    # ----------------------------------------------------------------- feed
    def _start(self, origin: int) -> None:
        self._origin = origin
        s = self._state
        s[0] = 0
        s[1] = origin
        s[2] = self.bin_us
        # first window: bins 0 .. n_bins-1, or 0 .. hop_bins-1 when emitting partial windows
        s[3] = (self.hop_bins if self.emit_partial else self.n_bins) - 1
        s[8] = s[3] - self.n_bins + 1
        s[9] = origin
        self._started = True

    def push(self, events: np.ndarray) -> list[Window]:
        """Feed one packet (time-sorted; small reorderings are tolerated) and
        return the windows it completed, oldest first."""
        ev = _as_event_array(events)
        if ev.size == 0:
            return []
        if not self._started:
            self._start(int(ev["t"][0]))
        self.events_in += ev.size
        out: list[Window] = []
        i = 0
        while True:
            i = _stream_kernel(ev, i, self._ring, self._bin_counts, self._state, self._geom,
                               self._col_of, self._row_of)
            if i >= ev.size:
                return out
            out.append(self._emit())
            self._skip_gap(int(ev[i]["t"]))

    def advance(self, t_now: int) -> list[Window]:
        """Declare that no event earlier than ``t_now`` will come (e.g. a quiet
        sensor); emits every window that ends at or before ``t_now``."""
        out: list[Window] = []
        if not self._started:
            return out
        while self.next_window_end <= t_now:
            out.append(self._emit())
            self._skip_gap(t_now)
        return out

    def flush(self) -> list[Window]:
        """End of stream: emit the pending window if it holds any event (its
        later bins are simply empty), so the last events are not lost."""
        if not self._started or not self._bin_counts.any():
            return []
        return [self._emit()]

    def __call__(self, packets: Iterable[np.ndarray], flush: bool = True) -> Iterator[Window]:
        """Bin a whole packet stream, yielding windows as they complete (and
        the pending one at the end when ``flush``)."""
        for packet in packets:
            yield from self.push(packet)
        if flush:
            yield from self.flush()

    # ----------------------------------------------------------------- emit
    def _emit(self) -> Window:
        s = self._state
        last = int(s[3])
        first = last - self.n_bins + 1
        new_bins = self.n_bins if self.windows_emitted == 0 else self.hop_bins
        n_out = self.n_bins if self.emit == "window" else new_bins
        frames = np.empty((n_out,) + self.frame_shape[1:], np.float32)
        clip = -1.0 if self.clip is None else float(self.clip)
        events = _emit_kernel(self._ring, self._bin_counts, frames, first % self.n_bins,
                              max(-first, 0), last + 1, self.hop_bins, clip)
        win = Window(
            frames=frames,
            t_start=self._origin + first * self.bin_us,
            t_end=self._origin + (last + 1) * self.bin_us,
            new_bins=new_bins,
            events=int(events),
            gap_before=self._pending_gap,
        )
        self._pending_gap = 0
        s[3] = last + self.hop_bins
        s[8] = s[3] - self.n_bins + 1
        self.windows_emitted += 1
        return win

    def _skip_gap(self, t_next: int) -> None:
        """After a long silence, jump over the windows that would all be empty
        (the ring holds no event and ``t_next`` lies beyond the next window);
        they are counted in :attr:`empty_windows_skipped` and in the next
        window's ``gap_before``."""
        if t_next < self.next_window_end or self._bin_counts.any():
            return
        s = self._state
        last = int(s[3])
        k = (t_next - self._origin) // self.bin_us  # bin of the next event
        n_skip = -(-(k - last) // self.hop_bins)  # empty windows that end before bin k
        if n_skip <= 0:
            return
        s[3] = last + n_skip * self.hop_bins
        s[8] = s[3] - self.n_bins + 1
        self.empty_windows_skipped += n_skip
        self._pending_gap += n_skip


# ============================================================== geometry
@dataclass(frozen=True)
class Geometry:
    """Where a model's input comes from on a sensor: the region ``roi = (x0, y0, w, h)``
    (sensor pixels, None: the whole sensor) resized to ``size = (width, height)``."""

    roi: tuple[int, int, int, int] | None
    size: tuple[int, int]

    def describe(self, sensor_size) -> str:
        w, h = (int(v) for v in sensor_size)
        x0, y0, rw, rh = self.roi if self.roi is not None else (0, 0, w, h)
        (ow, oh) = self.size
        pooled = rw % ow == 0 and rh % oh == 0 and rw // ow == rh // oh
        scale = f"{rw / ow:.3g}:1" if rw * oh == rh * ow else f"{rw / ow:.3g}:1 x {rh / oh:.3g}:1"
        if (rw, rh) == (ow, oh):
            scaling = f"not scaled, {ow}x{oh}"
        else:
            scaling = f"{f'pooled by {rw // ow}' if pooled else f'resized {scale} (nearest bin)'} to {ow}x{oh}"
        region = "the whole sensor" if (x0, y0, rw, rh) == (0, 0, w, h) else f"region {rw}x{rh} at ({x0}, {y0})"
        if region_is_padded(self.roi, (w, h)):
            region += " (past the sensor's edge: zeros there)"
        return f"{w}x{h} sensor, {region}, {scaling}"


def geometry_for(model_size: tuple[int, int], sensor_size, roi: Sequence[int] | None = None,
                 resize: Sequence[int] | None = None) -> Geometry:
    """The region and size that feed a model of input ``model_size = (width, height)``
    from ``sensor_size``. Default: the whole sensor when it is an integer multiple of
    the input (128x128 -> 64x64: pooled by 2), else the largest centred region with the
    input's aspect ratio, resized to the input (320x240 -> the centred 240x240 ->
    64x64), but never enlarged: a sensor narrower or lower than the input sits centred
    in an input-sized region, zeros past its edge (78x42 -> 64x64 at (7, -11)).
    ``roi`` / ``resize`` override it (along each axis a region lies inside the sensor or
    spans all of it: :func:`~dvsstream.events.check_region` with ``padded``). Raises
    ``ValueError`` (one line) for another region or one smaller than the input, or a
    size the model does not take (the streaming binner's rules: ``info``, ``run`` and
    the window agree)."""
    w, h = (int(v) for v in sensor_size)
    mw, mh = (int(v) for v in model_size)
    size = tuple(int(v) for v in resize) if resize is not None else (mw, mh)
    if tuple(size) != (mw, mh):
        raise ValueError(f"resize {size[0]}x{size[1]} does not match the model's {mw}x{mh} input")
    if roi is not None:
        region = check_region(roi, (w, h), padded=True)
    elif w % mw == 0 and h % mh == 0 and w // mw == h // mh:
        return Geometry(None, size)
    else:
        scale = max(1.0, min(w / mw, h / mh))
        rw, rh = int(mw * scale), int(mh * scale)
        region = ((w - rw) // 2, (h - rh) // 2, rw, rh)
    _output_size(region[2], region[3], 1, size)  # the region must hold the input (the binner's rule)
    return Geometry(region, size)


def check_window(window_ms: float, bins: int, hop_ms: float, to_us: Callable[[float], int] = int) -> None:
    """A sliding window of ``bins`` bins of whole µs, hopping by whole bins, at most a
    window (``to_us``: how the consumer turns ms * 1000 into µs, ``int`` or ``round``)."""
    window_us, hop_us = int(to_us(window_ms * 1000)), int(to_us(hop_ms * 1000))
    if window_us < bins or window_us % bins:
        raise DvsstreamError(f"--window-ms {window_ms:g} does not split into --bins {bins} bins of whole "
                             "microseconds; choose a window that is a multiple of the bins")
    bin_us = window_us // bins
    if hop_us < bin_us or hop_us % bin_us or hop_us > window_us:
        raise DvsstreamError(f"--hop-ms {hop_ms:g} must be a multiple of the bin length {bin_us / 1000:g} ms "
                             f"(--window-ms / --bins) and at most --window-ms {window_ms:g}")
