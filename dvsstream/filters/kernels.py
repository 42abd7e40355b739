"""The Numba kernels of the noise filters (``cache=True``, ``nogil``).

Each kernel walks a packet of :data:`~dvsstream.events.EVENT_DTYPE` events in array
order, reads and writes a per-pixel time surface ``last[H, W]`` (int64 µs) that the
caller keeps between packets, and copies the kept events to ``out``; it returns how
many it kept. Because the whole state is the time surface, filtering a recording
packet by packet gives exactly the events of filtering it in one call.

Events outside ``last``'s sensor are removed (no pixel holds their history). No torch,
no I/O.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def background_activity_kernel(ev, last, window_us, diagonals, out):
    """Keep an event when a neighbour pixel (not the pixel itself) fired less than
    ``window_us`` µs before it (``t - t_neighbour < window_us``), whatever either's
    polarity. ``diagonals``: the 8 neighbours (dv-processing's
    ``BackgroundActivityNoiseFilter``); otherwise the 4 of tonic's ``denoise``.
    Every event, kept or not, writes its time into ``last``. Returns the kept count."""
    height, width = last.shape
    n_out = 0
    for i in range(ev.shape[0]):
        x = np.int64(ev[i].x)
        y = np.int64(ev[i].y)
        t = ev[i].t
        if x >= width or y >= height:
            continue
        keep = False
        # a neighbour fired less than window_us ago <=> its time > t - window_us
        since = t - window_us
        x0 = max(x - 1, 0)
        x1 = min(x + 1, width - 1)
        for yy in range(max(y - 1, 0), min(y + 1, height - 1) + 1):
            if yy == y:
                keep = (x0 < x and last[y, x0] > since) or (x1 > x and last[y, x1] > since)
            elif diagonals:
                for xx in range(x0, x1 + 1):
                    keep = keep or last[yy, xx] > since
            else:
                keep = last[yy, x] > since
            if keep:
                break
        last[y, x] = t
        if keep:
            out[n_out] = ev[i]
            n_out += 1
    return n_out


@nb.njit(cache=True, nogil=True)
def refractory_kernel(ev, last, period_us, out):
    """Keep an event when its pixel's previous event, kept or not and of either
    polarity, lies more than ``period_us`` µs before it (``t - t_previous >
    period_us``; tonic's ``refractory_period``). Returns the kept count."""
    height, width = last.shape
    n_out = 0
    for i in range(ev.shape[0]):
        x = np.int64(ev[i].x)
        y = np.int64(ev[i].y)
        t = ev[i].t
        if x >= width or y >= height:
            continue
        if t - last[y, x] > period_us:
            out[n_out] = ev[i]
            n_out += 1
        last[y, x] = t
    return n_out
