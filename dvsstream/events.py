"""The event record, sensor geometry and validation helpers.

Every part of dvsstream passes events as a 1-D numpy structured array of
:data:`EVENT_DTYPE`:

========  ========  ==========================================
field     dtype     meaning
========  ========  ==========================================
``t``     int64     timestamp, microseconds
``x``     uint16    column, 0 .. width-1
``y``     uint16    row, 0 .. height-1
``p``     uint8     polarity, 1 = ON (brighter), 0 = OFF
========  ========  ==========================================

Sensor sizes are ``(width, height)`` tuples throughout. Where a region of a sensor may
lie is the binning's rule (:mod:`dvsstream.binning.region`).
No torch, no I/O in this module.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
"""Structured dtype of one event: ``t`` int64 µs, ``x``/``y`` uint16, ``p`` uint8."""


class SensorSize(NamedTuple):
    """Sensor geometry in pixels: ``width`` (x range) and ``height`` (y range)."""

    width: int
    height: int


DVS128 = SensorSize(128, 128)


def empty_events(n: int = 0) -> np.ndarray:
    """A zero-filled event array of ``n`` events."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def make_events(t, x, y, p) -> np.ndarray:
    """Build an :data:`EVENT_DTYPE` array from four equally long sequences.

    ``t`` in microseconds; ``p`` anything that is truthy for ON events.
    """
    t = np.asarray(t)
    n = t.shape[0]
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["t"] = t
    ev["x"] = np.asarray(x)
    ev["y"] = np.asarray(y)
    ev["p"] = np.asarray(p) != 0
    return ev


def as_events(array: np.ndarray) -> np.ndarray:
    """Convert any structured array with fields t, x, y, p (any order, any int
    widths, e.g. tonic's ``int64 t, int16 x, int16 y, bool p``) to
    :data:`EVENT_DTYPE`. Returns the input unchanged if it already matches."""
    if array.dtype == EVENT_DTYPE:
        return array
    names = array.dtype.names or ()
    missing = [f for f in ("t", "x", "y", "p") if f not in names]
    if missing:
        raise ValueError(f"events lack field(s) {missing}; have {list(names)}")
    return make_events(array["t"], array["x"], array["y"], array["p"])


def sensor_size_of(size) -> SensorSize:
    """Normalise ``(width, height)`` or tonic's ``(width, height, polarities)``."""
    if len(size) not in (2, 3):
        raise ValueError(f"sensor size must be (width, height), got {size!r}")
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"sensor size must be positive, got {size!r}")
    return SensorSize(w, h)


# --------------------------------------------------------------------------- parsing and bounds
def parse_roi(text: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` (sensor pixels) -> ``(x0, y0, width, height)``; ``ValueError``
    with a one-line reason otherwise."""
    parts = str(text).replace(" ", "").split(",")
    try:
        x0, y0, w, h = (int(v) for v in parts)
    except ValueError:
        raise ValueError(f"region {text!r} must be x,y,w,h in sensor pixels, e.g. 40,0,240,240") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"region {text!r}: w and h must be > 0")
    return x0, y0, w, h


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(width, height)``; ``ValueError`` with a one-line reason otherwise."""
    try:
        w, h = (int(v) for v in str(text).lower().replace(" ", "").split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} must be WIDTHxHEIGHT, e.g. 64x64") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"size {text!r} must be positive")
    return w, h


def in_bounds_mask(events: np.ndarray, sensor_size) -> np.ndarray:
    """Boolean mask, True for events with ``x < width`` and ``y < height``."""
    w, h = sensor_size_of(sensor_size)
    return (events["x"] < w) & (events["y"] < h)


def count_out_of_bounds(events: np.ndarray, sensor_size) -> int:
    """Number of events outside the sensor."""
    return int(events.size - np.count_nonzero(in_bounds_mask(events, sensor_size)))


def drop_out_of_bounds(events: np.ndarray, sensor_size) -> tuple[np.ndarray, int]:
    """Return ``(in_bounds_events, n_dropped)``; the input is returned when none drop."""
    mask = in_bounds_mask(events, sensor_size)
    n_bad = int(events.size - np.count_nonzero(mask))
    return (events if n_bad == 0 else events[mask]), n_bad


# --------------------------------------------------------------------------- order
def is_sorted(events: np.ndarray) -> bool:
    """True when timestamps never decrease."""
    t = events["t"]
    return bool(t.size < 2 or np.all(t[1:] >= t[:-1]))


def count_out_of_order(events: np.ndarray) -> int:
    """Number of events whose timestamp is smaller than one seen before it."""
    t = events["t"]
    if t.size < 2:
        return 0
    running_max = np.maximum.accumulate(t)
    return int(np.count_nonzero(t[1:] < running_max[:-1]))


def sort_events(events: np.ndarray) -> tuple[np.ndarray, int]:
    """Stable-sort by time. Returns ``(sorted_events, n_out_of_order)`` where
    ``n_out_of_order`` counts events that came after a later timestamp.
    No event is lost; an already sorted input is returned as is."""
    n_bad = count_out_of_order(events)
    if n_bad == 0:
        return events, 0
    order = np.argsort(events["t"], kind="stable")
    return events[order], n_bad


# --------------------------------------------------------------------------- timestamps
class TimestampUnwrapper:
    """Unwrap ``bits``-wide camera timestamps into monotone int64 microseconds,
    packet by packet (state carries across calls).

    A wrap is detected when a raw timestamp drops by more than half the range
    below the previous one; small backwards steps (sensor jitter) are kept as
    they are, so that ordering problems stay visible to :func:`sort_events`.
    """

    def __init__(self, bits: int = 32) -> None:
        self.period = np.int64(1) << np.int64(bits)
        self._offset = np.int64(0)
        self._last: int | None = None
        self.wraps = 0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw).astype(np.int64, copy=False)
        if raw.size == 0:
            return raw.astype(np.int64)
        half = self.period // 2
        prev = np.empty_like(raw)
        prev[0] = raw[0] if self._last is None else self._last
        prev[1:] = raw[:-1]
        wrapped = (prev - raw) > half
        n_wraps = np.cumsum(wrapped, dtype=np.int64)
        out = raw + self._offset + n_wraps * self.period
        self._offset = self._offset + n_wraps[-1] * self.period
        self.wraps += int(n_wraps[-1])
        self._last = int(raw[-1])
        return out


def unwrap_timestamps(raw: np.ndarray, bits: int = 32) -> np.ndarray:
    """Unwrap a whole array of ``bits``-wide timestamps to int64 (see
    :class:`TimestampUnwrapper`)."""
    return TimestampUnwrapper(bits)(raw)


# --------------------------------------------------------------------------- rates
class EventRateMeter:
    """Running event count, time span, mean and peak rate over a packet stream,
    in O(1) memory (peak = most events in one ``bin_us`` bin, as events/s)."""

    def __init__(self, bin_us: int = 10_000) -> None:
        self.bin_us = int(bin_us)
        self.events = 0
        self.t_first: int | None = None
        self.t_last: int | None = None
        self.peak_count = 0
        self._bin = 0  # index of the open bin
        self._count = 0  # events in the open bin

    def update(self, packet: np.ndarray) -> None:
        if packet.size == 0:
            return
        t = packet["t"]
        if self.t_first is None:
            self.t_first = int(t[0])
        self.t_last = int(t[-1])
        self.events += packet.size
        idx = (t - self.t_first) // self.bin_us
        first = int(idx[0])
        counts = np.bincount(idx - first)
        if first == self._bin:
            counts[0] += self._count
        elif self._count > self.peak_count:  # the open bin is complete
            self.peak_count = self._count
        if counts.size > 1:
            self.peak_count = max(self.peak_count, int(counts[:-1].max()))
        self._bin = int(idx[-1])
        self._count = int(counts[-1])

    @property
    def duration_s(self) -> float:
        return 0.0 if self.t_first is None else (self.t_last - self.t_first) / 1e6

    @property
    def mean_rate(self) -> float:
        """Events per second over the whole span (0 for fewer than two timestamps)."""
        d = self.duration_s
        return self.events / d if d > 0 else 0.0

    @property
    def peak_rate(self) -> float:
        """Events per second in the busiest ``bin_us`` bin."""
        return max(self.peak_count, self._count) * 1e6 / self.bin_us
