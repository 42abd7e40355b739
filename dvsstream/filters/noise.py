"""Noise filters with state across packets: :class:`EventFilter` and its kinds.

A filter is called on consecutive packets of one stream (``filtered = f(packet)``)
and keeps, per pixel, the time of the last event it saw; so calling it on a recording
packet by packet gives exactly the events of calling it once on the whole recording.
``reset()`` forgets the stream (a new recording, a seek, a replay from the start).

The definitions are those of the peers, event for event:

=============================  =====================================================
:class:`BackgroundActivity`    keep an event if one of the 8 neighbours (not the
                               pixel itself) fired less than T µs before it, either
                               polarity: dv-processing's
                               ``noise.BackgroundActivityNoiseFilter``
``BackgroundActivity(4-nbr)``  the same with the 4 edge neighbours: tonic's
                               ``Denoise`` / ``functional.denoise_numpy``
:class:`RefractoryPeriod`      drop an event if its pixel's previous event (kept or
                               not, either polarity) is at most T µs older: tonic's
                               ``RefractoryPeriod`` / ``refractory_period_numpy``
=============================  =====================================================

Both peers start as if every pixel had fired at ``t = 0`` (background activity), and
tonic's refractory period as if every pixel had fired at ``t = -T``; the filters start
the same way, so the first T µs of a recording that starts at 0 pass the background
filter, and an event at exactly ``t = 0`` is refused by the refractory one, as in tonic.
Events outside the sensor are removed. No torch, no I/O.
"""

from __future__ import annotations

import numpy as np

from dvsstream.events import as_events, sensor_size_of
from dvsstream.filters.kernels import (
    NEVER,
    background_activity_kernel,
    refractory_kernel,
)


class EventFilter:
    """Base of the filters: counts events in and removed; ``spec`` is the text that
    builds it again (``--filter`` syntax)."""

    spec: str = ""

    def __init__(self) -> None:
        self.events_in = 0
        self.events_removed = 0

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Filter one packet (:data:`~dvsstream.events.EVENT_DTYPE`, time order); returns
        a new array of the kept events, in their order."""
        events = np.ascontiguousarray(as_events(events))
        kept = self._filter(events)
        self.events_in += int(events.size)
        self.events_removed += int(events.size - kept.size)
        return kept

    @property
    def removed_share(self) -> float:
        """Share of the events seen so far that were removed, 0..1 (0 before any)."""
        return self.events_removed / self.events_in if self.events_in else 0.0

    def reset(self) -> None:
        """Forget the stream's history and the counts: the next packet starts a new one."""
        self.events_in = 0
        self.events_removed = 0
        self._reset_state()

    def _filter(self, events: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _reset_state(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


class _TimeSurfaceFilter(EventFilter):
    """A filter whose state is one int64 time per pixel, ``last[H, W]`` (``pad``: with a
    border of one pixel that never fired, ``[H + 2, W + 2]``)."""

    def __init__(self, sensor_size, window_us: int, start_us: int, pad: int = 0) -> None:
        super().__init__()
        self.sensor_size = sensor_size_of(sensor_size)
        self.window_us = int(window_us)
        self._start_us = int(start_us)
        self._pad = int(pad)
        w, h = self.sensor_size
        self.last = np.empty((h + 2 * self._pad, w + 2 * self._pad), np.int64)
        self._reset_state()

    def _reset_state(self) -> None:
        self.last.fill(NEVER)
        p = self._pad
        self.last[p:self.last.shape[0] - p, p:self.last.shape[1] - p] = self._start_us


class BackgroundActivity(_TimeSurfaceFilter):
    """Background-activity filter: keep an event if a neighbour pixel fired less than
    ``window_us`` µs before it. ``neighbours``: 8 (dv-processing's definition, spec
    ``ba:T``) or 4 (tonic's ``Denoise``, spec ``denoise:T``)."""

    def __init__(self, sensor_size, window_us: int, neighbours: int = 8) -> None:
        if neighbours not in (4, 8):
            raise ValueError(f"neighbours must be 4 or 8, got {neighbours}")
        super().__init__(sensor_size, window_us, start_us=0, pad=1)
        self.neighbours = neighbours
        self.spec = f"{'ba' if neighbours == 8 else 'denoise'}:{self.window_us}"

    def _filter(self, events: np.ndarray) -> np.ndarray:
        out = np.empty_like(events)
        n = background_activity_kernel(events, self.last, self.window_us, self.neighbours == 8, out)
        return out[:n]


class RefractoryPeriod(_TimeSurfaceFilter):
    """Refractory period: drop an event if its pixel's previous event is at most
    ``period_us`` µs older (spec ``refractory:T``)."""

    def __init__(self, sensor_size, period_us: int) -> None:
        super().__init__(sensor_size, period_us, start_us=-int(period_us))
        self.spec = f"refractory:{self.window_us}"

    def _filter(self, events: np.ndarray) -> np.ndarray:
        out = np.empty_like(events)
        n = refractory_kernel(events, self.last, self.window_us, out)
        return out[:n]


class FilterChain(EventFilter):
    """Filters applied one after the other; counts the chain's own in and removed."""

    def __init__(self, filters) -> None:
        super().__init__()
        self.filters = list(filters)
        self.spec = ",".join(f.spec for f in self.filters)

    def _filter(self, events: np.ndarray) -> np.ndarray:
        for f in self.filters:
            events = f(events)
        return events

    def _reset_state(self) -> None:
        for f in self.filters:
            f.reset()


def apply_filter(events: np.ndarray, event_filter: EventFilter | None) -> np.ndarray:
    """``event_filter(events)``, or ``events`` when there is no filter."""
    if event_filter is None:
        return events
    return event_filter(events)


__all__ = ["BackgroundActivity", "EventFilter", "FilterChain", "RefractoryPeriod", "apply_filter"]
