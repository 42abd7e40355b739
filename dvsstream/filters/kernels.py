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

#: the time of a pixel that never fired (the border of a padded time surface): never
#: within any window, and far enough from the int64 limits that no subtraction overflows
NEVER = -(1 << 62)


@nb.njit(cache=True, nogil=True)
def background_activity_kernel(ev, last, window_us, diagonals, out):
    """Keep an event when a neighbour pixel (not the pixel itself) fired less than
    ``window_us`` µs before it (``t - t_neighbour < window_us``), whatever either's
    polarity. ``diagonals``: the 8 neighbours (dv-processing's
    ``BackgroundActivityNoiseFilter``); otherwise the 4 of tonic's ``denoise``.
    ``last`` is padded: ``[H + 2, W + 2]``, pixel ``(x, y)`` at ``[y + 1, x + 1]``, its
    border at :data:`NEVER` (no neighbour there). Every event, kept or not, writes its
    time into ``last``. Returns the kept count."""
    height = last.shape[0] - 2
    width = last.shape[1] - 2
    n_out = 0
    for i in range(ev.shape[0]):
        x = np.int64(ev[i].x)
        y = np.int64(ev[i].y)
        t = ev[i].t
        if x >= width or y >= height:
            continue
        # a neighbour fired less than window_us ago <=> its time > t - window_us
        since = t - window_us
        r = y + 1
        c = x + 1
        keep = last[r, c - 1] > since or last[r, c + 1] > since or last[r - 1, c] > since or last[r + 1, c] > since
        if diagonals and not keep:
            keep = (last[r - 1, c - 1] > since or last[r - 1, c + 1] > since or last[r + 1, c - 1] > since
                    or last[r + 1, c + 1] > since)
        last[r, c] = t
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
