"""The Numba decoders behind :class:`~dvsstream.io.prophesee.PropheseeSource`:
EVT 3.0 / EVT 2.0 RAW words and DAT records straight to
:data:`~dvsstream.events.EVENT_DTYPE`, keeping what the packet's checks need (largest x
and y; for EVT 2.0 and 3.0 whether time ran backwards) in registers on the way.

DAT and EVT 2.0 reproduce expelliarmus 1.1's decoders (``src/evt2.c``, ``dat.c``) event
for event; EVT 3.0 times follow Metavision's decoder (openeb's ``evt3_decoder.h``), which
expelliarmus's do not, with one addition that keeps expelliarmus-written files readable:

* DAT: ``t = ovfs << 32 | t_low``, where ``ovfs`` grows whenever ``t_low`` falls below
  the previous record's (so a timestamp that steps back counts as a 32-bit wrap);
  x = bits 32-45, y = bits 46-59, p = bits 60-63.
* EVT 2.0: ``t = time_high << 6 | t_low6``; types 0 (OFF) and 1 (ON) are events, 8 sets
  ``time_high`` (28 bits); 0xA, 0xE, 0xF are skipped; any other type stops decoding.
* EVT 3.0: ``t = (loops << 24) + ((time_high + implied) << 12) + time_low``. A camera
  sends TIME_HIGH (8) whenever bits 12-23 of its clock change; as in Metavision,
  ``loops`` (the 24-bit wraps) grows when TIME_HIGH falls by 2048 or more, and a
  changed TIME_HIGH sets time_low to 0 until the next TIME_LOW (6). ``implied`` counts
  TIME_LOWs that fall below the previous one with no TIME_HIGH in between, which a
  camera never sends but expelliarmus's writer does (it writes TIME_HIGH once); a
  TIME_HIGH resets it. ADDR_Y (0) sets y, ADDR_X (2) is one event (p from bit 11,
  which vectors use until a VECT_BASE_X sets theirs, as in expelliarmus),
  VECT_BASE_X (3) sets the base x and p, VECT_12 (4) / VECT_8 (5) are one event per set
  bit at base x + bit (the base then moves on by 12 / 8); 7, 0xC, 0xE, 0xF are skipped;
  any other type stops decoding. (expelliarmus instead counts a wrap at every fall of
  either field, which on a camera's stream adds 4,096 µs at each TIME_HIGH step.)

Decoding expelliarmus's own way costs a 16-byte record per event and then a second
pass to our 13-byte one; decoding here writes ours directly (see ``bench_io.py``).

Imported only when a Prophesee file is read, so that ``dvsstream info`` prints its
header lines before Numba loads.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: indices into the decoder state (``int64``): the word of an unknown type (-1: none);
#: the largest x and y written since the caller last reset them (its packet's bounds
#: check); EVT 2.0 and 3.0: whether their times never decreased since then, from
#: ``PREV_T`` (DAT times cannot decrease: the wrap counter sees to it)
STOPPED_AT, MAX_X, MAX_Y, ORDERED, PREV_T = 0, 1, 2, 3, 4
#: EVT 3.0: time_high, time_low, the 24-bit loops, the implied TIME_HIGH steps, vector
#: base x, last y, p, t, and whether a TIME_HIGH came since the last TIME_LOW
E3_HIGH, E3_LOW, E3_LOOPS, E3_IMPLIED, E3_BASE_X, E3_Y, E3_P, E3_T, E3_FRESH_HIGH = 5, 6, 7, 8, 9, 10, 11, 12, 13
#: EVT 2.0: time_high; DAT: the previous record's low 32 bits and the wrap count
E2_HIGH = 5
DAT_LAST, DAT_OVFS = 5, 6
STATE_SIZE = 14
#: a TIME_HIGH this far below the last one is a 24-bit loop (Metavision's rule)
E3_LOOP_DROP = 2048
#: the most events one word makes (an EVT 3.0 VECT_12): room kept at the end of ``out``
MAX_PER_WORD = 12


def new_state() -> np.ndarray:
    """A decoder state at the start of a body: no time bits, no overflows, nothing stopped."""
    st = np.zeros(STATE_SIZE, np.int64)
    st[STOPPED_AT] = -1
    start_packet(st, np.iinfo(np.int64).min)
    return st


def start_packet(st: np.ndarray, prev_t: int) -> None:
    """Reset the per-packet checks: no x, y seen; in order so far from ``prev_t``."""
    st[MAX_X] = st[MAX_Y] = 0
    st[ORDERED] = 1
    st[PREV_T] = prev_t


@nb.njit(cache=True, nogil=True, inline="always")
def _put(out, j, t, x, y, p):
    """Write one decoded event to ``out[j]`` (``j``: uint64, so that Numba emits no
    negative-index wraparound); returns ``j + 1``. No check here: the decoders keep the
    largest x and y in registers (the caller's bounds check), and :func:`compact` fixes
    the rare packet that needs it."""
    out[j].t = t
    out[j].x = x
    out[j].y = y
    out[j].p = p != 0
    return j + np.uint64(1)


@nb.njit(cache=True, nogil=True)
def compact(out, n0, n, width, height, t_min, prev_t):
    """Drop from ``out[n0:n]`` the events before ``t_min`` (a seek: uncounted) and those
    off the ``width x height`` sensor (counted), in place. Returns ``(n, off_sensor,
    ordered, last_t)``, the order checked from ``prev_t`` over the kept events."""
    j = n0
    oob = 0
    ordered = True
    prev = prev_t
    for i in range(n0, n):
        t = out[i].t
        if t < t_min:
            continue
        if out[i].x >= width or out[i].y >= height:
            oob += 1
            continue
        ordered &= t >= prev
        prev = t
        out[j] = out[i]
        j += 1
    return j, oob, ordered, prev


# The decoders index with unsigned integers or from ``range``-loops over slices: a
# signed index makes Numba wrap negative values around on every access, which measured
# about twice as slow on these loops.

@nb.njit(cache=True, nogil=True)
def decode_dat(words, pos, out, n, st):
    """Decode DAT records ``words[pos:]`` (``uint64``) into ``out[n:]`` until the words
    end or ``out`` has no room left. Returns ``(n, pos)`` after the last record used."""
    m = min(words.shape[0] - pos, out.shape[0] - n)
    src, dst = words[pos:pos + m], out[n:n + m]
    last, ovfs = st[DAT_LAST], st[DAT_OVFS]
    mx, my = st[MAX_X], st[MAX_Y]
    for i in range(m):
        w = src[i]
        lower = np.int64(w & np.uint64(0xFFFFFFFF))
        upper = np.int64(w >> np.uint64(32))
        ovfs += lower < last
        last = lower
        x = upper & 0x3FFF
        y = (upper >> 14) & 0x3FFF
        mx = max(mx, x)
        my = max(my, y)
        _put(dst, np.uint64(i), (ovfs << 32) | lower, x, y, (upper >> 28) & 0xF)
    st[DAT_LAST], st[DAT_OVFS] = last, ovfs
    st[MAX_X], st[MAX_Y] = mx, my
    return n + m, pos + m


@nb.njit(cache=True, nogil=True)
def decode_evt2(words, pos, out, n, st):
    """Decode EVT 2.0 words ``words[pos:]`` (``uint32``) into ``out[n:]`` until the
    words end or ``out`` has no room left. Returns ``(n, pos)``; a word of an unknown
    type stops decoding there (``st[STOPPED_AT]`` = its index, ``pos`` stays on it)."""
    m = min(words.shape[0] - pos, out.shape[0] - n)  # at most one event per word
    src, dst = words[pos:pos + m], out[n:n + m]
    high = st[E2_HIGH]
    mx, my, prev = st[MAX_X], st[MAX_Y], st[PREV_T]
    backwards = 0  # counted rather than and-ed: no dependency chain through a flag
    j = np.uint64(0)
    used = m
    for i in range(m):
        w = np.int64(src[i])
        kind = w >> 28
        if kind <= 1:
            t = (high << 6) | ((w >> 22) & 0x3F)
            x = (w >> 11) & 0x7FF
            y = w & 0x7FF
            mx = max(mx, x)
            my = max(my, y)
            backwards += t < prev
            prev = t
            j = _put(dst, j, t, x, y, kind)
        elif kind == 8:
            high = w & 0xFFFFFFF
        elif kind != 0xA and kind != 0xE and kind != 0xF:
            st[STOPPED_AT] = pos + i
            used = i
            break
    st[E2_HIGH] = high
    st[MAX_X], st[MAX_Y], st[PREV_T] = mx, my, prev
    if backwards:
        st[ORDERED] = 0
    return n + np.int64(j), pos + used


@nb.njit(cache=True, nogil=True)
def decode_evt3(words, pos, out, n, st):
    """Decode EVT 3.0 words ``words[pos:]`` (``uint16``) into ``out[n:]`` until the words
    end or fewer than :data:`MAX_PER_WORD` places are left in ``out``. Returns ``(n,
    pos)``; a word of an unknown type stops decoding there (``st[STOPPED_AT]``).

    Words go in runs that cannot overflow ``out`` (``MAX_PER_WORD`` events per word at
    most), so the inner loop checks no room; the runs shrink as ``out`` fills, and
    decoding stops at the same word as a per-word check would."""
    limit = out.shape[0] - MAX_PER_WORD
    high, low, loops, implied = st[E3_HIGH], st[E3_LOW], st[E3_LOOPS], st[E3_IMPLIED]
    base_x, y, p, t, fresh_high = st[E3_BASE_X], st[E3_Y], st[E3_P], st[E3_T], st[E3_FRESH_HIGH]
    mx, my, prev = st[MAX_X], st[MAX_Y], st[PREV_T]
    backwards = 0  # times below an earlier one (a TIME_HIGH that steps back a little)
    j = np.uint64(n)
    stopped = False
    while pos < words.shape[0] and np.int64(j) < limit and not stopped:
        m = min(words.shape[0] - pos, max(1, (limit - np.int64(j)) // MAX_PER_WORD))
        src = words[pos:pos + m]
        used = m
        for i in range(m):
            w = np.int64(src[i])
            kind = w >> 12
            if kind == 0x2:  # ADDR_X: one event
                p = (w >> 11) & 1
                x = w & 0x7FF
                mx = max(mx, x)
                my = max(my, y)
                j = _put(out, j, t, x, y, p)
            elif kind == 0x0:  # ADDR_Y
                y = w & 0x7FF
            elif kind == 0x4 or kind == 0x5:  # VECT_12 / VECT_8: one event per set bit
                count = 12 if kind == 0x4 else 8
                bits = w & (0xFFF if kind == 0x4 else 0xFF)
                if bits:
                    my = max(my, y)
                for k in range(count):
                    if bits & (1 << k):
                        x = (base_x + k) & 0xFFFF  # an int16 address, as uint16 (as expelliarmus)
                        mx = max(mx, x)
                        j = _put(out, j, t, x, y, p)
                base_x = (base_x + count) & 0xFFFF
            elif kind == 0x3:  # VECT_BASE_X
                p = (w >> 11) & 1
                base_x = w & 0x7FF
            elif kind == 0x6 or kind == 0x8:  # TIME_LOW / TIME_HIGH
                value = w & 0xFFF
                if kind == 0x6:
                    implied += value < low and not fresh_high
                    low = value
                    fresh_high = 0
                else:
                    loops += high >= value + E3_LOOP_DROP
                    if value != high:
                        low = 0
                    high = value
                    implied = 0
                    fresh_high = 1
                t = (loops << 24) + ((high + implied) << 12) + low
                backwards += t < prev
                prev = t
            elif kind != 0x7 and kind != 0xC and kind != 0xE and kind != 0xF:
                st[STOPPED_AT] = pos + i
                used = i
                stopped = True
                break
        pos += used
    st[E3_HIGH], st[E3_LOW], st[E3_LOOPS], st[E3_IMPLIED] = high, low, loops, implied
    st[E3_BASE_X], st[E3_Y], st[E3_P], st[E3_T], st[E3_FRESH_HIGH] = base_x, y, p, t, fresh_high
    st[MAX_X], st[MAX_Y], st[PREV_T] = mx, my, prev
    if backwards:
        st[ORDERED] = 0
    return np.int64(j), pos


#: encoding -> decoder
DECODERS = {"evt3": decode_evt3, "evt2": decode_evt2, "dat": decode_dat}
