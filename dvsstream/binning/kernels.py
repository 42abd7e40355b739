"""The Numba kernels that count events into frames (``cache=True``, ``nogil``), and which
of them a caller may run.

* whole recordings: one event range per time bin (:func:`range_kernel` picks the
  parallel or the one-thread kernel), the any-order path, :func:`time_bin_edges`, and
  :func:`_time_bins`, which tries the first and falls back on the second;
* batches: one recording per thread (:func:`_batch_kernel`);
* streaming: the ring of bins of :class:`~dvsstream.binning.streaming.StreamingBinner`
  (:func:`_stream_kernel` fills it, :func:`_emit_kernel` copies a window out).

Events are :data:`~dvsstream.events.EVENT_DTYPE` arrays, times in µs; frames are
``float32`` counts ``[..., 2, H, W]`` (channel 0 OFF, 1 ON). The binning conventions
are stated in :mod:`dvsstream.binning`. No torch, no I/O.
"""

from __future__ import annotations

import os
from typing import Callable

import numba as nb
import numpy as np

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


def range_kernel(parallel: bool) -> Callable[..., int]:
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


# ============================================================ streaming kernels
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
