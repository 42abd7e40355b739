"""The event-source interface shared by files, cameras, network streams and
synthetic generators, plus replay pacing for recordings.

A source is an iterable of event packets (1-D :data:`~dvsstream.events.EVENT_DTYPE`
arrays, time-sorted within and across packets) with ``.sensor_size`` and
``.close()``; it is also a context manager. Every source counts what it read and
what it had to repair or reject in ``.stats``, so that no event disappears
silently.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from contextlib import closing
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from dvsstream.errors import SourceError
from dvsstream.events import (
    EVENT_DTYPE,
    SensorSize,
    drop_out_of_bounds,
    sort_events,
)


#: ``--duration`` on a real-time source stops at the latest this long (s) after the wall
#: clock shows the duration: such a source's clock shows only through its events, and a
#: camera watching a still scene sends none
WALL_GRACE_S = 2.0


def is_realtime(source) -> bool:
    """Does ``source`` deliver at the sensor's pace (camera, network, a paced replay,
    a real-time synthetic stream)?"""
    kind = getattr(source, "kind", "")
    if kind in ("camera", "network"):
        return True
    if kind == "synthetic":
        return bool(getattr(source, "realtime", False))
    return bool(getattr(source, "speed", None))


def wall_deadline(source, duration_s: float | None) -> float | None:
    """The ``time.monotonic()`` by which ``duration_s`` seconds of ``source``'s stream
    time have surely passed: now + ``duration_s`` + :data:`WALL_GRACE_S` for a live
    real-time source (:func:`is_realtime`: a camera, a network stream,
    ``synthetic:``); None without a duration or for a recording, paced or not (its
    events are in the file: the one past the duration always comes, and a slow replay
    must not lose the events before it)."""
    if duration_s is None or not is_realtime(source) or isinstance(source, FileSource):
        return None
    return time.monotonic() + duration_s + WALL_GRACE_S  # a live source's clock is the wall's


@dataclass
class SourceStats:
    """What a source delivered and what it had to repair.

    ``events_read`` counts events delivered to the consumer (after repair).
    ``out_of_bounds`` counts events dropped because they fall outside the sensor.
    ``out_of_order`` counts events that arrived after a later timestamp and
    were re-sorted (within a packet) or clamped (across packets).
    """

    events_read: int = 0
    packets_read: int = 0
    out_of_bounds: int = 0
    out_of_order: int = 0
    warnings: list[str] = field(default_factory=list)
    #: where each keyed warning sits in :attr:`warnings`
    _keyed: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def warn(self, message: str, key: str | None = None) -> None:
        """Record a one-line warning (kept once; repeats are not stored twice). A warning
        with a ``key`` replaces the earlier one of the same key in place: a condition met
        packet after packet stays one line whose count is the running total."""
        if key is not None and key in self._keyed:
            self.warnings[self._keyed[key]] = message
            return
        if message not in self.warnings:
            if key is not None:
                self._keyed[key] = len(self.warnings)
            self.warnings.append(message)


class EventSource(ABC):
    """Base class: iterate to get packets; ``close()`` when done.

    Subclasses implement :meth:`_packets`, yielding raw packets; the base class
    validates them (bounds, ordering) and counts them in :attr:`stats`.
    """

    #: "file", "camera", "network" or "synthetic"
    kind: str = "file"
    #: short format name, e.g. "aedat4", "aedat2", "aedat3.1", "hdf5", "npy"
    format: str = ""

    def __init__(self, sensor_size: SensorSize, camera: str = "") -> None:
        self.sensor_size = SensorSize(*sensor_size)
        self.camera = camera
        self.stats = SourceStats()
        self._last_t: int | None = None
        self._closed = False

    # ------------------------------------------------------------------ API
    def __iter__(self) -> Iterator[np.ndarray]:
        for packet in self._packets():
            packet = self._validate(packet)
            if packet.size:
                yield packet

    def close(self) -> None:
        """Release the file, camera or socket. Safe to call twice."""
        self._closed = True

    def __enter__(self) -> "EventSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> dict:
        """Metadata for ``dvsstream info`` and for HDF5 attributes."""
        return {
            "kind": self.kind,
            "format": self.format,
            "camera": self.camera,
            "width": self.sensor_size.width,
            "height": self.sensor_size.height,
        }

    # ------------------------------------------------------------ internals
    @abstractmethod
    def _packets(self) -> Iterator[np.ndarray]:
        """Yield raw :data:`EVENT_DTYPE` packets in stream order."""

    def _reset_order(self) -> None:
        """Forget the last timestamp (after a seek or a loop restart)."""
        self._last_t = None

    def _validate(self, packet: np.ndarray) -> np.ndarray:
        if packet.dtype != EVENT_DTYPE:
            raise TypeError(f"{type(self).__name__} yielded {packet.dtype}, not EVENT_DTYPE")
        if packet.size == 0:
            return packet
        packet, n_oob = drop_out_of_bounds(packet, self.sensor_size)
        if n_oob:
            self.stats.out_of_bounds += n_oob
            self.stats.warn(
                f"{self.stats.out_of_bounds} event(s) outside the {self.sensor_size.width}x"
                f"{self.sensor_size.height} sensor were dropped and counted", key="out_of_bounds"
            )
        if packet.size == 0:
            return packet
        packet, n_unsorted = sort_events(packet)
        if self._last_t is not None and packet["t"][0] < self._last_t:
            # a packet that starts before the previous one ended: clamp the
            # stragglers to the last timestamp so that time never runs backwards
            late = packet["t"] < self._last_t
            n_late = int(np.count_nonzero(late))
            packet = packet.copy()
            packet["t"][late] = self._last_t
            n_unsorted += n_late
        if n_unsorted:
            self.stats.out_of_order += n_unsorted
            self.stats.warn("timestamps went backwards; out-of-order events were re-sorted and counted")
        self._last_t = int(packet["t"][-1])
        self.stats.events_read += packet.size
        self.stats.packets_read += 1
        return packet


#: the longest stream time (µs) a packet of a paced replay spans: 10 ms, like a camera's
#: packets (DV cameras send every 10 ms or so), so nothing downstream waits for a burst
PACED_PACKET_US = 10_000


class Pacer:
    """Sleeps so that packets come out at ``speed`` times the recording's pace.

    ``speed=None`` or ``0`` means as fast as possible. The first packet sets the
    reference; pacing follows the last timestamp of each packet.
    """

    def __init__(self, speed: float | None = None) -> None:
        if speed is not None and speed < 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed or None
        self.restart()

    def restart(self) -> None:
        self._t0_event: int | None = None
        self._t0_wall = 0.0

    def wait(self, packet: np.ndarray) -> None:
        if self.speed is None or packet.size == 0:
            return
        t_last = int(packet["t"][-1])
        if self._t0_event is None:
            self._t0_event, self._t0_wall = int(packet["t"][0]), time.perf_counter()
        due = self._t0_wall + (t_last - self._t0_event) / 1e6 / self.speed
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


LABEL_DTYPE = np.dtype([("start", "<i8"), ("end", "<i8"), ("label", "<i4")])
"""A label track entry: ``[start, end)`` in µs (absolute, like event ``t``) and a class index."""


class FileSource(EventSource):
    """A recording on disk: replay with optional pacing, seeking and looping.

    Parameters
    ----------
    path: the file.
    speed: ``None`` (default) replays as fast as possible; ``1.0`` real time;
        any positive factor.
    loop: start again from the beginning (or from the last seek) at the end;
        :attr:`loops` counts the restarts (a seek is not one).
    packet_us: if given, re-cut packets so that none spans more than this many
        µs of stream time; default: :data:`PACED_PACKET_US` (10 ms) when paced, as
        stored otherwise. A paced replay thus behaves like a camera: a packet comes
        out when the stream clock (wall time x ``speed``) passes its last event.
    start_us: begin at the first event with ``t >= start_us`` (absolute µs); to begin
        some seconds after the first event, see :meth:`start_at`.

    Subclasses implement :meth:`_read` and may set :attr:`labels`,
    :attr:`start_time_us`, :attr:`end_time_us` and :attr:`n_events` when the
    header knows them.
    """

    kind = "file"

    def __init__(
        self,
        path,
        sensor_size: SensorSize,
        camera: str = "",
        *,
        speed: float | None = None,
        loop: bool = False,
        packet_us: int | None = None,
        start_us: int | None = None,
    ) -> None:
        super().__init__(sensor_size, camera)
        self.path = str(path)
        self.loop = loop
        self.loops = 0
        self._packet_us = packet_us
        self.pacer = Pacer(speed)
        self.labels: np.ndarray | None = None
        self.start_time_us: int | None = None
        self.end_time_us: int | None = None
        self.n_events: int | None = None
        self._seek_to = start_us
        self._seek_pending = False

    @property
    def speed(self) -> float | None:
        return self.pacer.speed

    @speed.setter
    def speed(self, value: float | None) -> None:
        self.pacer.speed = value or None
        self.pacer.restart()

    @property
    def packet_us(self) -> int | None:
        """The longest stream time (µs) a delivered packet spans: the ``packet_us`` given,
        else :data:`PACED_PACKET_US` while paced, else None (packets as stored)."""
        if self._packet_us is not None:
            return self._packet_us
        return PACED_PACKET_US if self.pacer.speed else None

    @packet_us.setter
    def packet_us(self, value: int | None) -> None:
        self._packet_us = value

    def first_event_us(self) -> int | None:
        """Timestamp (µs) of the recording's first event: from the header when the
        format states it, else from the first packet; None for an empty recording."""
        if self.start_time_us is not None:
            return int(self.start_time_us)
        return self._peek(None)

    def _peek(self, start_us: int | None) -> int | None:
        """The first timestamp at or after ``start_us`` (a read that is then dropped)."""
        with closing(self._read(start_us)) as packets:
            for packet in packets:
                if packet.size:
                    return int(packet["t"][0])
        return None

    def start_at(self, seconds: float) -> int:
        """Start (or continue) ``seconds`` after the recording's first event; returns the
        absolute start (µs). A start at or past the last event raises a one-line
        :class:`~dvsstream.errors.SourceError` naming the recording's duration."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise SourceError(f"{self.path}: the start must be 0 or more seconds, got {seconds:g}")
        t0 = self.first_event_us()
        if t0 is None:
            raise SourceError(f"{self.path}: the recording holds no events")
        target = t0 + round(seconds * 1e6)
        if self.end_time_us is not None:
            past_end = target > self.end_time_us
        else:  # no end in the header: is there an event at or after the target?
            past_end = seconds > 0 and self._peek(target) is None
        if past_end:
            end = "" if self.end_time_us is None else f" (it lasts {(self.end_time_us - t0) / 1e6:.3f} s)"
            raise SourceError(f"{self.path}: a start {seconds:g} s after the first event is past the end of the "
                              f"recording{end}; choose an earlier start")
        self._seek_to = target
        return target

    def seek(self, t_us: int) -> None:
        """Continue (or start) at the first event with ``t >= t_us``. Thread-safe
        enough for a GUI: takes effect before the next packet."""
        self._seek_to = int(t_us)
        self._seek_pending = True

    def describe(self) -> dict:
        info = super().describe()
        info.update(path=self.path, n_events=self.n_events,
                    start_time_us=self.start_time_us, end_time_us=self.end_time_us)
        return info

    @abstractmethod
    def _read(self, start_us: int | None) -> Iterator[np.ndarray]:
        """Yield raw packets from the first event with ``t >= start_us`` (all when None).
        Formats without an index may read from the start and let
        :func:`skip_before` drop the early events."""

    def _packets(self) -> Iterator[np.ndarray]:
        while not self._closed:
            self._seek_pending = False
            self.pacer.restart()
            self._reset_order()
            restarted = False
            for packet in self._read(self._seek_to):
                for piece in self._cut(packet):
                    if self._seek_pending or self._closed:
                        restarted = True
                        break
                    self.pacer.wait(piece)
                    yield piece
                if restarted:
                    break
            if restarted:
                continue
            if not self.loop:
                return
            self.loops += 1

    def _cut(self, packet: np.ndarray) -> Iterator[np.ndarray]:
        if self.packet_us is None or packet.size == 0:
            yield packet
            return
        t = packet["t"]
        span = int(t[-1] - t[0])
        if span < self.packet_us:
            yield packet
            return
        edges = np.arange(int(t[0]) + self.packet_us, int(t[-1]) + 1, self.packet_us)
        cuts = np.searchsorted(t, edges, side="left")
        yield from (p for p in np.split(packet, cuts) if p.size)


#: :func:`record_time_range` reads one timestamp every this many records
TIME_SAMPLE_RECORDS = 1 << 16


def record_time_range(path, first_byte: int, n_records: int, record_bytes: int, time_field: str,
                      any_fall_wraps: bool = False) -> tuple[int, int]:
    """``(start, end)`` µs of a file of ``n_records`` fixed-size records with a 32-bit
    timestamp (``time_field``: a NumPy dtype such as ``"<u4"`` at byte 0 of a record,
    or ``">u4@4"`` at byte 4), unwrapped without reading the whole file: the timestamps
    of every :data:`TIME_SAMPLE_RECORDS`-th record and the last are read, and each fall
    between two of them counts one wrap of 2**32 µs (a fall of more than half the range,
    as :class:`~dvsstream.events.TimestampUnwrapper` counts; any fall with
    ``any_fall_wraps``, as DAT's decoder does). Exact unless 65,536 consecutive events
    span more than one wrap (71.6 min; 35.8 with the half-range rule)."""
    dtype, _, at = time_field.partition("@")
    offset = int(at or 0)
    picks = list(range(0, n_records, TIME_SAMPLE_RECORDS))
    if picks[-1] != n_records - 1:
        picks.append(n_records - 1)
    raw = np.empty(len(picks), np.int64)
    with open(path, "rb") as f:
        for k, i in enumerate(picks):
            f.seek(first_byte + i * record_bytes + offset)
            raw[k] = int(np.frombuffer(f.read(4), dtype)[0])
    fall = raw[:-1] - raw[1:]
    wraps = int(np.count_nonzero(fall > 0 if any_fall_wraps else fall > (1 << 31)))
    return int(raw[0]), int(raw[-1]) + (wraps << 32)


def skip_before(packets: Iterator[np.ndarray], start_us: int | None) -> Iterator[np.ndarray]:
    """Drop events with ``t < start_us`` from a packet stream (a linear seek for
    formats without a time index)."""
    if start_us is None:
        yield from packets
        return
    for packet in packets:
        if packet.size and packet["t"][-1] < start_us:
            continue
        if packet.size and packet["t"][0] < start_us:
            packet = packet[np.searchsorted(packet["t"], start_us, side="left"):]
        yield packet


def start_source_at(source: EventSource, start_s: float | None, what: str) -> None:
    """``--start S``: a recording continues ``S`` seconds after its first event
    (:meth:`FileSource.start_at`); a start past the end, or any start on a live source
    (``what`` names it), is a one-line :class:`~dvsstream.errors.SourceError`.
    ``None`` or 0: from the beginning."""
    if not start_s:
        return
    if not isinstance(source, FileSource):
        raise SourceError(f"--start applies to recordings only, not to {what}")
    source.start_at(start_s)
