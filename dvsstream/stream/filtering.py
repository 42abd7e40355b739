"""The live pipeline's noise filter: the one in use, the one a display asked for, and
the count of events removed across both (:class:`LiveFilter`). No torch."""

from __future__ import annotations

import threading

import numpy as np

from dvsstream.filters import parse_filter

__all__ = ["LiveFilter"]


class LiveFilter:
    """A ``--filter`` built for one sensor, replaceable while a stream runs.

    The source thread calls :meth:`__call__` on every packet; any thread may call
    :meth:`set` (taken up at the next packet, with a fresh history) and read
    :meth:`fill`. :meth:`reset` (a seek, a loop) forgets the history, not the counts."""

    def __init__(self, event_filter, sensor_size) -> None:
        self.sensor_size = sensor_size
        self._filter = parse_filter(event_filter).build(sensor_size)
        self._next: tuple | None = None  # (filter,) left by set(), taken by the source thread
        self._removed_before = 0  # events removed by the filters replaced or reset so far
        self._lock = threading.Lock()

    def set(self, event_filter) -> None:
        """Filter with ``event_filter`` (``--filter`` text or spec; None or ``"none"``: no
        filter) from the next packet on."""
        new = parse_filter(event_filter).build(self.sensor_size)
        with self._lock:
            self._next = (new,)

    @property
    def spec(self) -> str:
        """The ``--filter`` text of the filter in use, or the one asked for (``"none"``)."""
        pending = self._next
        current = pending[0] if pending is not None else self._filter
        return current.spec if current is not None else "none"

    def __call__(self, packet: np.ndarray) -> np.ndarray:
        if self._next is not None:
            with self._lock:
                (new,), self._next = self._next, None
                self._retire()
                self._filter = new
        return packet if self._filter is None else self._filter(packet)

    def reset(self) -> None:
        """Time went backwards: the filter starts a new history."""
        with self._lock:
            self._retire()
            if self._filter is not None:
                self._filter.reset()

    def _retire(self) -> None:
        if self._filter is not None:
            self._removed_before += self._filter.events_removed

    def fill(self, stats) -> None:
        """``events_filtered``, ``filter`` and ``filter_removed_share`` of a
        :class:`~dvsstream.stream.stats.PipelineStats`."""
        with self._lock:
            current = self._filter
            stats.events_filtered = self._removed_before + (current.events_removed if current is not None else 0)
            stats.filter = current.spec if current is not None else "none"
            stats.filter_removed_share = current.removed_share if current is not None else 0.0
