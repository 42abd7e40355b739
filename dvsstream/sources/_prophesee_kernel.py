"""The Numba kernel behind :class:`~dvsstream.sources.prophesee.PropheseeSource`:
expelliarmus's decoded events to :data:`~dvsstream.events.EVENT_DTYPE` in one pass.

Imported only when a Prophesee file is read, so that ``dvsstream info`` prints its
header lines before Numba loads.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def _all_plain(src, width, height, t_min, last_t):
    """True when every event has ``t >= t_min``, lies on the sensor and follows the
    previous one in time (branch-free: ~1 ns per event)."""
    ok = True
    prev = max(t_min, last_t)
    for i in range(src.shape[0]):
        t = src[i].t
        x = src[i].x
        y = src[i].y
        ok &= (t >= prev) & (x >= 0) & (y >= 0) & (x < width) & (y < height)
        prev = t
    return ok


@nb.njit(cache=True, nogil=True)
def convert_events(src, out, width, height, t_min, last_t):
    """Copy ``src`` (expelliarmus's aligned records: t int64 µs, x, y int16, p uint8,
    shape [N]) into ``out`` (EVENT_DTYPE, shape >= [N]), in one pass:

    * events with ``t < t_min`` are skipped uncounted (a seek);
    * events outside ``[0, width) x [0, height)`` are left out and counted;
    * ``p`` becomes 1 for any nonzero polarity (ON), else 0.

    Returns ``(n_out, n_out_of_bounds, sorted)`` where ``sorted`` says the kept
    timestamps never decrease, starting from ``last_t`` (the previous chunk's last)."""
    if _all_plain(src, width, height, t_min, last_t):  # the common case: a straight copy
        for i in range(src.shape[0]):
            out[i].t = src[i].t
            out[i].x = src[i].x
            out[i].y = src[i].y
            out[i].p = 1 if src[i].p != 0 else 0
        return src.shape[0], 0, True
    j = 0
    n_oob = 0
    ordered = True
    prev = last_t
    for i in range(src.shape[0]):
        t = src[i].t
        if t < t_min:
            continue
        x = src[i].x
        y = src[i].y
        if x < 0 or y < 0 or x >= width or y >= height:
            n_oob += 1
            continue
        if t < prev:
            ordered = False
        prev = t
        out[j].t = t
        out[j].x = x
        out[j].y = y
        out[j].p = 1 if src[i].p != 0 else 0
        j += 1
    return j, n_oob, ordered


def warm_up() -> None:
    """Compile (or load from the cache) before timing-sensitive use."""
    src = np.zeros(1, dtype=np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")], align=True))
    from dvsstream.events import EVENT_DTYPE

    convert_events(src, np.empty(1, EVENT_DTYPE), 1, 1, 0, 0)
