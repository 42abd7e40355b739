"""The pipeline's accounting: :class:`PipelineStats` (what a display or a report reads)
and :class:`PipelineMeters`, the running measurements behind it (latencies, inference
times, rates, seconds per stage, the event counts of the binners a stream went through),
and :class:`LagClock`, how far the pipeline is behind a real-time source."""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import MutableSequence, Optional, Sequence

import numpy as np

from dvsstream.binning import StreamingBinner

__all__ = ["LagClock", "PipelineMeters", "PipelineStats", "binner_counts"]


@dataclass
class PipelineStats:
    """Accounting and timing. ``events_read = events_binned + events_out_of_bounds +
    events_outside_roi + events_late + events_shed + events_filtered`` (filtered: removed
    by the noise filter, ``filter`` the spec now in use and ``filter_removed_share`` the
    share of events it removed since it was set; outside the region of the sensor
    the model sees; late: older than the window being built, not binnable;
    shed: read and recorded but not binned while a real-time source ran ahead of the
    pipeline, their windows counted in ``windows_skipped``). ``lag_ms``: how far the
    pipeline is behind a real-time source now. ``stage_s``: seconds spent so far per stage
    (record, bin, view: source thread; infer: classifier thread). ``stream_time_us``: the
    last event's timestamp; ``stream_start_us``: the first's."""

    events_read: int = 0
    events_binned: int = 0
    events_out_of_bounds: int = 0
    events_late: int = 0
    events_outside_roi: int = 0
    events_shed: int = 0
    events_filtered: int = 0
    filter: str = "none"
    filter_removed_share: float = 0.0
    lag_ms: float = 0.0
    packets: int = 0
    windows: int = 0
    windows_classified: int = 0
    windows_skipped: int = 0
    empty_windows: int = 0
    restarts: int = 0
    recorded_events: int = 0
    event_rate: float = 0.0
    inference_rate: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    inference_ms: dict[str, float] = field(default_factory=dict)
    energy_mj_per_window: Optional[float] = None
    stage_s: dict[str, float] = field(default_factory=dict)
    stream_time_us: Optional[int] = None
    stream_start_us: Optional[int] = None
    wall_s: float = 0.0


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not len(values):
        return {}
    a = np.asarray(values, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "max": round(float(a.max()), 3), "mean": round(float(a.mean()), 3), "n": int(a.size)}



def binner_counts(binner: StreamingBinner) -> dict[str, int]:
    """A streaming binner's event accounting, by the names :class:`PipelineMeters` sums."""
    st = binner.stats
    return {"binned": st.binned, "out_of_bounds": st.out_of_bounds, "late": binner.late_events,
            "outside_roi": binner.outside_roi, "events_in": binner.events_in, "empty": binner.empty_windows_skipped}


class PipelineMeters:
    """The running measurements of a :class:`~dvsstream.stream.pipeline.Pipeline`,
    written by its two threads (under its lock where they share them) and read into a
    :class:`PipelineStats` by :meth:`fill`. ``history``: the pipeline's (None: a headless
    run, every latency is kept)."""

    def __init__(self, history: Optional[int]) -> None:
        # every latency of a headless run (8 bytes a prediction: 1.4 MB a day at 20 per s),
        # the last 10,000 for a display
        self.latencies: MutableSequence[float] = array("d") if history is None else deque(maxlen=10_000)
        self.infer_ms: MutableSequence[float] = array("d") if history is None else deque(maxlen=10_000)
        #: when the last predictions were ready (perf_counter s): the inference rate
        self.hop_times: deque[float] = deque(maxlen=64)
        #: (perf_counter s, events) of the last packets: the event rate
        self.rate_meter: deque[tuple[float, int]] = deque(maxlen=64)
        #: seconds per stage (record, bin, view: source thread; infer: classifier thread)
        self.stage_s = {"record": 0.0, "bin": 0.0, "view": 0.0, "infer": 0.0}
        #: counters of the binners retired by seeks, loops and shedding (not the binners:
        #: a window looping for hours would keep one ring buffer per loop)
        self.retired = {"binned": 0, "out_of_bounds": 0, "late": 0, "outside_roi": 0, "events_in": 0, "empty": 0}

    def retire(self, binner: StreamingBinner) -> None:
        """``binner`` is replaced (a seek, a loop, the end of shedding): keep its counts."""
        for key, value in binner_counts(binner).items():
            self.retired[key] += value

    def fill(self, s: PipelineStats, binner: StreamingBinner, source_out_of_bounds: int) -> None:
        """The event accounting (``binner``'s and the retired binners' counts, the events
        the source dropped as out of bounds) and the timing figures, into ``s``."""
        counts = {k: v + self.retired[k] for k, v in binner_counts(binner).items()}
        s.events_binned = counts["binned"]
        s.events_out_of_bounds = source_out_of_bounds + counts["out_of_bounds"]
        s.events_late = counts["late"]
        s.events_outside_roi = counts["outside_roi"]
        s.events_read = counts["events_in"] + source_out_of_bounds + s.events_shed + s.events_filtered
        s.empty_windows = counts["empty"]
        s.latency_ms = _percentiles(self.latencies)
        s.inference_ms = _percentiles(self.infer_ms)
        hops = list(self.hop_times)
        s.inference_rate = (len(hops) - 1) / (hops[-1] - hops[0]) if len(hops) > 1 and hops[-1] > hops[0] else 0.0
        meter = list(self.rate_meter)
        if len(meter) > 1 and meter[-1][0] > meter[0][0]:
            s.event_rate = sum(n for _, n in meter[1:]) / (meter[-1][0] - meter[0][0])
        s.stage_s = {k: round(v, 4) for k, v in self.stage_s.items()}


class LagClock:
    """How far the source thread is behind a real-time source's clock: the wall time
    since a reference packet minus the stream time since it over the source's replay
    ``speed``, in µs. A source ahead of the reference is the pace: it becomes the
    reference."""

    def __init__(self) -> None:
        self.reference: Optional[tuple[float, int]] = None  # (wall s, stream µs) reference
        self.speed = 1.0
        #: set when the stream was paused since the reference: the pause is no lag
        self.paused = False

    def reset(self) -> None:
        """Time went backwards (a seek, a loop) or shedding ended: a new reference."""
        self.reference = None

    def lag_us(self, packet: np.ndarray, now: float, speed: float, warming: bool) -> float:
        """The lag (µs, >= 0) at ``packet`` (events, received at ``now``, perf_counter s).
        ``warming``: no prediction yet, the reference restarts."""
        t_last = int(packet["t"][-1])
        if self.reference is None or self.paused or warming or speed != self.speed:
            # (re)start the reference: at the start, after a pause or a change of replay
            # speed, and until the first prediction (first calls load compiled kernels
            # and warm torch up)
            self.reference = (now, int(packet["t"][0]))
            self.speed = speed
            self.paused = False
        lag_us = (now - self.reference[0]) * 1e6 - (t_last - self.reference[1]) / speed
        if lag_us < 0:  # the source is ahead of our reference: it is the pace
            self.reference = (now, t_last)
            lag_us = 0.0
        return lag_us
