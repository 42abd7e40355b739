"""The streaming engine: source thread -> binner -> classifier thread -> consumers.

::

    source ──packets──> [source thread] ──windows──> queue ──> [classifier thread] ──> predictions
                          │  binner (model input)                 model.step / model(x)
                          │  event view (display, full resolution)
                          └─ recorder (HDF5, every packet, never drops)

**Back-pressure.** The source thread reads, records and bins; it hands each finished
window to the classifier through a bounded queue. With ``drop_stale=True`` (live use, the
GUI, paced replay) a full queue drops its *oldest* window: the classifier always works on
the freshest data, the source never waits (a camera cannot), and every dropped window is
counted in ``windows_skipped``. With ``drop_stale=False`` (deterministic replay: ``dvsstream
run`` on a file without ``--speed``) the source thread waits for the classifier, so no
window is ever skipped and the same file always gives the same predictions. The recorder
is written synchronously in the source thread, before binning: it never drops an event.

**Overload of a real-time source** (camera, network, a paced replay, a real-time synthetic
stream): when the source thread itself falls behind the sensor's clock by more than
``max_lag_ms`` (default: one window), it stops binning -- packets are still read and
recorded, their events counted as ``events_shed`` and their windows as skipped -- until
it has caught up to half that lag, then restarts binning and the model state. Latency
stays bounded and memory does not grow with the backlog.

**Step mode** (``mode="step"``, the default) feeds the model only the ``new_bins`` new
time bins of each window (``model.step_frames``), carrying LIF state between hops: a hop
costs ``hop / window`` of a full forward. The state is primed with a whole window at the
start, after a seek or loop, after silent gaps and after skipped windows (when the
classifier falls behind, the next window is recomputed whole), so a prediction always
rests on the window it reports. **Window mode** (``mode="window"``) recomputes the last T
bins from reset for every hop (``model(x)``), exactly what the model was trained on.

**Latency** is measured from the moment the source thread received the packet that
closed a window (the first packet with an event at or after the window's end) to the
moment its logits were ready.

Nothing here imports Qt: the GUI reads :meth:`Pipeline.snapshot` from a timer.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, MutableSequence, Optional, Sequence

import numpy as np
import torch

from dvsstream.binning.geometry import BinningConfig, Geometry, default_binning, geometry_for, live_binning
from dvsstream.binning.streaming import StreamingBinner, Window
from dvsstream.events import EVENT_DTYPE, SensorSize
from dvsstream.models import energy_report, record_attention, record_firing_rates
from dvsstream.models.spikformer import Spikformer
from dvsstream.io.base import is_realtime

__all__ = [
    "BinningConfig",
    "Classifier",
    "EventView",
    "Geometry",
    "LoadedModel",
    "Pipeline",
    "PipelineStats",
    "Prediction",
    "geometry_for",
    "live_binning",
    "load_classifier_model",
    "warm_up",
]

#: display accumulation bins are at most this long (µs): the event view updates ~100/s
DISPLAY_BIN_US = 10_000


# ============================================================== configuration
@dataclass
class LoadedModel:
    """A model ready for live use with what its checkpoint says about it."""

    model: Spikformer
    class_names: list[str]
    binning: BinningConfig
    checkpoint: str
    device: torch.device
    #: the checkpoint's ``meta`` (``classes``, ``live_binning``, ``trained_on``, ...)
    meta: dict = field(default_factory=dict)

    @property
    def synthetic_only(self) -> bool:
        """Does the checkpoint say it was trained on synthetic data (its
        ``meta["trained_on"]`` mentions synthetic data or ``dvsstream synth``)?"""
        text = str(self.meta.get("trained_on") or "").lower()
        return "synthetic" in text or "dvsstream synth" in text


def load_classifier_model(
    checkpoint: Optional[str] = None,
    device: Optional[str | torch.device] = None,
) -> LoadedModel:
    """Load one of our checkpoints (default: the shipped gesture model) for inference:
    eval mode, batch norms folded, on ``device`` (default CUDA when present).

    Class names and the live binning come from the checkpoint's ``meta`` (``classes``,
    ``live_binning``); without them: ``class 0..n-1`` and T bins of 50 ms. The region of
    a sensor that feeds the model is chosen per source (:func:`live_binning`)."""
    from dvsstream.models import prepare_for_inference, shipped_checkpoint
    from dvsstream.models.checkpoints import checkpoint_meta, load_model

    path = str(checkpoint) if checkpoint else str(shipped_checkpoint())
    model = load_model(path)
    meta = checkpoint_meta(path)
    prepare_for_inference(model, device=device)
    names = [str(c) for c in meta.get("classes") or []]
    if len(names) != model.num_classes:
        names = [f"class {i}" for i in range(model.num_classes)]
    live = meta.get("live_binning")
    binning = BinningConfig(**live) if live else default_binning(model.config.T)
    dev = next(model.parameters()).device
    return LoadedModel(model=model, class_names=names, binning=binning, checkpoint=path, device=dev, meta=meta)


# ============================================================== results
@dataclass
class Prediction:
    """The classifier's verdict on one window.

    ``t_start``/``t_end``: the window, µs (stream time). ``probs``: softmax ``[classes]``.
    ``latency_ms``: window closed (packet received) -> logits ready. ``label``: the true
    class at the window's centre when the recording has a label track, else None.
    ``steps``: time steps the model ran for this prediction (new bins, or a whole window
    when it (re)primed its state). ``attention``: block -> ``{"matrix": [heads, N, N],
    "spatial": [heads, h, w]}`` averaged over those steps, and ``"spatial_window"``
    ``[heads, h, w]`` averaged over the window's last T steps (only with taps on).
    """

    t_start: int
    t_end: int
    probs: np.ndarray
    latency_ms: float
    steps: int
    events: int
    label: Optional[int] = None
    firing_rate: Optional[float] = None
    attention: Optional[dict[int, dict[str, np.ndarray]]] = None

    @property
    def top(self) -> int:
        return int(np.argmax(self.probs))

    def top_k(self, k: int = 3) -> list[tuple[int, float]]:
        order = np.argsort(-self.probs)[:k]
        return [(int(i), float(self.probs[i])) for i in order]

    def to_json(self, class_names: Sequence[str], k: int = 3) -> dict[str, Any]:
        out = {
            "t_start_us": self.t_start,
            "t_end_us": self.t_end,
            "top": [[class_names[i], round(p, 5)] for i, p in self.top_k(k)],
            "probs": [round(float(p), 5) for p in self.probs],
            "events": self.events,
            "latency_ms": round(self.latency_ms, 3),
        }
        if self.label is not None:
            out["label"] = class_names[self.label] if 0 <= self.label < len(class_names) else self.label
        return out


@dataclass
class PipelineStats:
    """Accounting and timing. ``events_read = events_binned + events_out_of_bounds +
    events_outside_roi + events_late + events_shed`` (outside the region of the sensor
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


# ============================================================== event view
class EventView:
    """ON/OFF event counts of the last ``window_us``, at full sensor resolution, updated
    every ``bin_us`` (about 10 ms) of stream time: what the GUI draws.

    A :class:`StreamingBinner` with short bins emits only its new bins; a running sum over
    the last ``window_us / bin_us`` of them is the accumulation image ``[2, H, W]`` (from
    the first bin on: the image fills up during the first window)."""

    def __init__(self, sensor_size, window_us: int, bin_us_max: int = DISPLAY_BIN_US) -> None:
        n = max(1, math.ceil(window_us / bin_us_max))
        while window_us % n:
            n += 1
        self.n = n
        self._binner = StreamingBinner(sensor_size, window_us, n, window_us // n, emit="new", emit_partial=True)
        w, h = self._binner.sensor_size
        self._ring = np.zeros((n, 2, h, w), np.float32)
        self._pos = 0
        self.image = np.zeros((2, h, w), np.float32)
        self.t_end: Optional[int] = None
        self._lock = threading.Lock()

    def read(self) -> tuple[np.ndarray, Optional[int]]:
        """A copy of the image ``[2, H, W]`` and its end time (µs), consistent."""
        with self._lock:
            return self.image.copy(), self.t_end

    def push(self, packet: np.ndarray) -> bool:
        """Bin a packet; True when the image changed."""
        windows = self._binner.push(packet)
        if not windows:
            return False
        with self._lock:
            for win in windows:
                self._update(win)
        return True

    def _update(self, win: Window) -> None:
        if win.gap_before or win.new_bins >= self.n:
            self._ring[:] = 0
            self.image[:] = 0
        for f in win.frames[-self.n:]:
            self.image -= self._ring[self._pos]
            self._ring[self._pos] = f
            self.image += f
            self._pos = (self._pos + 1) % self.n
        self.t_end = win.t_end


# ============================================================== classifier
class Classifier:
    """Runs the model on windows, in step or window mode, with optional taps.

    ``attention``: record every block's spike attention (forces SSA's N x N order; small
    for the live presets). ``energy_every_s``: re-estimate the energy of one window by the
    papers' method (an extra forward) at most this often; None: never.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        mode: str = "step",
        attention: bool = False,
        firing_rates: bool = True,
        energy_every_s: Optional[float] = None,
    ) -> None:
        if mode not in ("step", "window"):
            raise ValueError(f"mode must be 'step' or 'window', got {mode!r}")
        self.loaded = loaded
        self.model = loaded.model
        self.mode = mode
        self.attention = attention
        self.firing_rates = firing_rates
        self.energy_every_s = energy_every_s
        self.energy_mj: Optional[float] = None
        self._last_energy = -math.inf
        self._primed = False
        self._energy_model: Optional[Spikformer] = None
        #: per-step spatial attention (block -> ``[heads, h, w]``) of the last T steps:
        #: the steps the current prediction is built on
        self._spatial_steps: deque[dict[int, np.ndarray]] = deque(maxlen=loaded.binning.n_bins)
        self.model.set_window(loaded.binning.n_bins)

    def reset(self) -> None:
        self.model.reset()
        self._primed = False
        self._spatial_steps.clear()

    def _tapped(self):
        """A context manager yielding the taps to record into (None when nothing is tapped)."""
        if self.attention:
            return record_attention(self.model, firing_rates=self.firing_rates)
        if self.firing_rates:
            return record_firing_rates(self.model)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def __call__(self, window: Window, resync: bool = False) -> tuple[np.ndarray, int, Optional[float], Any]:
        """Logits of one window. Returns ``(probs [classes], steps run, firing rate,
        attention or None)``. ``resync``: windows were skipped before this one."""
        x = torch.from_numpy(window.frames).unsqueeze(0)  # [1, k, C, H, W]
        with self._tapped() as taps:
            if self.mode == "window":
                logits = self.model(x)
                steps = x.shape[1]
            else:
                whole = (not self._primed or resync or window.gap_before > 0
                         or window.new_bins >= window.frames.shape[0])
                if whole:
                    self.model.reset()
                    self._spatial_steps.clear()
                frames = x if whole else x[:, -window.new_bins:]
                logits = self.model.step_frames(frames)
                self._primed = True
                steps = frames.shape[1]
        # a copy in its own memory: a kept prediction must not pin a torch tensor and its storage
        probs = torch.softmax(logits.float(), -1)[0].cpu().numpy().copy()
        rate = attn = None
        if taps is not None:
            rates = taps.firing_rates
            rate = float(np.mean(list(rates.values()))) if rates else None
            if self.attention:
                attn = self._attention_arrays(taps)
        if self.energy_every_s is not None and time.perf_counter() - self._last_energy >= self.energy_every_s:
            self._estimate_energy(window)
        return probs, steps, rate, attn

    def _attention_arrays(self, taps) -> dict[int, dict[str, np.ndarray]]:
        """block -> ``matrix [heads, N, N]`` and ``spatial [heads, h, w]`` averaged over
        the steps just run, and ``spatial_window [heads, h, w]`` averaged over the last T
        steps (the whole window the prediction rests on: steadier than one step)."""
        if self.mode == "window":
            self._spatial_steps.clear()
        spatial = {i: s[:, 0].float().cpu().numpy() for i, s in taps.spatial.items()}
        for t in range(next(iter(spatial.values())).shape[0] if spatial else 0):
            self._spatial_steps.append({i: s[t] for i, s in spatial.items()})
        return {
            i: {"matrix": m[:, 0].float().mean(0).cpu().numpy(),
                "spatial": spatial[i].mean(0),
                "spatial_window": np.mean([step[i] for step in self._spatial_steps], axis=0)}
            for i, m in taps.attention.items()
        }

    def _estimate_energy(self, window: Window) -> None:
        if window.frames.shape[0] < self.loaded.binning.n_bins:
            return  # only new bins at hand: wait for a whole window
        if self._energy_model is None:  # a private copy: the stepping state stays untouched
            self._energy_model = copy.deepcopy(self.model)
        rep = energy_report(self._energy_model, torch.from_numpy(window.frames).unsqueeze(0))
        self.energy_mj = float(rep["energy_mj"])
        self._last_energy = time.perf_counter()


# ============================================================== pipeline
_warm = False


def warm_up() -> None:
    """Load the binner's compiled kernels (from Numba's cache: ~0.1-0.5 s the first
    time in a process) before the source thread starts, not while a stream is waiting."""
    global _warm
    if _warm:
        return
    ev = np.zeros(3, EVENT_DTYPE)
    ev["t"] = [0, 1, 20]
    for emit in ("window", "new"):
        StreamingBinner((2, 2), 2, 2, 2, emit=emit).push(ev)
    _warm = True


def _binner_counts(binner: StreamingBinner) -> dict[str, int]:
    """A streaming binner's event accounting, by the names :class:`Pipeline` sums."""
    st = binner.stats
    return {"binned": st.binned, "out_of_bounds": st.out_of_bounds, "late": binner.late_events,
            "outside_roi": binner.outside_roi, "events_in": binner.events_in, "empty": binner.empty_windows_skipped}


@dataclass
class _Job:
    window: Window
    t_received: float
    generation: int


class Pipeline:
    """Source -> binner -> classifier, on two threads, with bounded queues.

    ``source``: an open :class:`~dvsstream.io.base.EventSource` (the pipeline closes
    it). ``loaded``: from :func:`load_classifier_model`, or None for no classifier (view
    and record only). ``binning``: overrides the checkpoint's live binning.
    ``drop_stale``: skip stale windows under overload (counted) instead of making the
    source wait. ``queue_size``: windows waiting for the classifier at most.
    ``on_prediction``: called in the classifier thread with each :class:`Prediction`.
    ``history``: predictions kept for :attr:`predictions` (None: all; a headless run that
    streams them elsewhere through ``on_prediction`` keeps a few, so that memory stays
    bounded however long the stream).
    ``max_lag_ms``: shed load when a real-time source runs this far ahead ("auto": one
    window for real-time sources, never for unpaced replays; None: never).
    """

    def __init__(
        self,
        source,
        loaded: Optional[LoadedModel] = None,
        *,
        binning: Optional[BinningConfig] = None,
        mode: str = "step",
        drop_stale: bool = True,
        queue_size: int = 2,
        attention: bool = False,
        firing_rates: bool = True,
        energy_every_s: Optional[float] = None,
        event_view: bool = False,
        on_prediction: Optional[Callable[[Prediction], None]] = None,
        history: Optional[int] = None,
        max_lag_ms: Optional[float] | str = "auto",
    ) -> None:
        self.source = source
        self.loaded = loaded
        self.sensor_size = SensorSize(*source.sensor_size)
        if binning is None:
            binning = (live_binning(loaded.binning, loaded.model.config.img_size[::-1], loaded.meta,
                                    self.sensor_size) if loaded is not None
                       else BinningConfig(400_000, 8, 50_000))
        self.binning = binning
        if loaded is not None:
            want = (int(loaded.model.config.img_size[1]), int(loaded.model.config.img_size[0]))
            have = binning.frame_size(self.sensor_size)
            if want != tuple(have):
                raise ValueError(
                    f"the model takes {want[0]}x{want[1]} frames but the binning makes {have[0]}x{have[1]} "
                    f"from the {self.sensor_size.width}x{self.sensor_size.height} sensor; "
                    "choose a region and size with --roi / --resize, or a matching checkpoint"
                )
        self.classifier = (Classifier(loaded, mode=mode, attention=attention, firing_rates=firing_rates,
                                      energy_every_s=energy_every_s) if loaded is not None else None)
        self.class_names = list(loaded.class_names) if loaded is not None else []
        self.labels = getattr(source, "labels", None)
        self.drop_stale = drop_stale
        self.on_prediction = on_prediction
        self.view = EventView(self.sensor_size, binning.window_us) if event_view else None

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: deque[_Job] = deque()
        self._queue_size = max(1, int(queue_size))
        self._resync = False
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._finished = threading.Event()
        self._producer_done = False
        self.error: Optional[BaseException] = None
        self.predictions: deque[Prediction] = deque(maxlen=history)
        self.latest: Optional[Prediction] = None
        # every latency of a headless run (8 bytes a prediction: 1.4 MB a day at 20 per s),
        # the last 10,000 for a display
        self._latencies: MutableSequence[float] = array("d") if history is None else deque(maxlen=10_000)
        self._infer_ms: MutableSequence[float] = array("d") if history is None else deque(maxlen=10_000)
        self._hop_times: deque[float] = deque(maxlen=64)
        self._rate_meter: deque[tuple[float, int]] = deque(maxlen=64)
        self._generation = 0
        self._binner = binning.binner(self.sensor_size)
        #: counters of the binners retired by seeks, loops and shedding (not the binners:
        #: a window looping for hours would keep one ring buffer per loop)
        self._retired = {"binned": 0, "out_of_bounds": 0, "late": 0, "outside_roi": 0, "events_in": 0, "empty": 0}
        self._last_t: Optional[int] = None
        self._loops_seen = 0  # the source's loop count at the last packet (FileSource.loops)
        self._recorder = None
        self._rec_lock = threading.Lock()  # the recorder is written outside the stats lock
        self._recorded = 0
        self._stage_s = {"record": 0.0, "bin": 0.0, "view": 0.0, "infer": 0.0}
        if max_lag_ms == "auto":
            max_lag_ms = binning.window_us / 1e3 if is_realtime(source) else None
        self.max_lag_us = None if max_lag_ms is None else float(max_lag_ms) * 1e3
        self._clock: Optional[tuple[float, int]] = None  # (wall s, stream µs) reference
        self._shedding = False
        self._shed_from: Optional[int] = None
        self._paused_since_clock = False
        self._clock_speed = 1.0
        self.stats = PipelineStats()
        #: stop after this much stream time (µs) since the first event (None: at the end
        #: of the stream); the clock of ``dvsstream run --duration``
        self.stop_after_us: Optional[int] = None
        #: predictions made on labelled windows, and how many of them were right
        self.labelled_windows = 0
        self.correct_windows = 0
        self._t0 = 0.0
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------- control
    def start(self) -> "Pipeline":
        warm_up()
        self._t0 = time.perf_counter()
        self._threads = [threading.Thread(target=self._guard(self._produce), name="dvsstream-source", daemon=True)]
        if self.classifier is not None:
            self._threads.append(threading.Thread(target=self._guard(self._consume), name="dvsstream-classifier",
                                                  daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads, close the source and any recording. Safe to call twice."""
        self._stop.set()
        self._paused.clear()
        with self._cond:
            self._cond.notify_all()
        try:
            self.source.close()
        except Exception:
            pass
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
        self.stop_recording()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the stream ended and every window was classified (or stopped)."""
        return self._finished.wait(timeout)

    def run(self) -> PipelineStats:
        """Start, wait for the end of the stream, stop; re-raises a thread's error."""
        self.start()
        try:
            while not self.wait(0.1):
                pass
        finally:
            self.stop()
        if self.error is not None:
            raise self.error
        return self.snapshot_stats()

    @property
    def running(self) -> bool:
        """Either thread still alive (False once stopped or finished)."""
        return any(t.is_alive() for t in self._threads)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def pause(self, paused: bool = True) -> None:
        """Hold the source thread between packets (recordings); a paced replay resumes
        at its pace without catching up."""
        if paused:
            self._paused.set()
        else:
            self._paused_since_clock = True
            self._paused.clear()
            pacer = getattr(self.source, "pacer", None)
            if pacer is not None:
                pacer.restart()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def seek(self, t_us: int) -> None:
        """Recordings: continue at stream time ``t_us``; binning and model state restart."""
        seek = getattr(self.source, "seek", None)
        if seek is None:
            raise ValueError(f"{type(self.source).__name__} cannot seek")
        seek(int(t_us))

    def start_recording(self, path, overwrite: bool = False) -> None:
        """Write every packet from now on to an HDF5 recording (none dropped)."""
        from dvsstream.io.recording import RecordingWriter

        if self._recorder is not None:
            raise ValueError(f"already recording to {self._recorder.path}")
        describe = getattr(self.source, "describe", None)
        writer = RecordingWriter(path, self.sensor_size, camera=getattr(self.source, "camera", ""),
                                 overwrite=overwrite,
                                 source=json.dumps(describe(), default=str) if describe else "")
        with self._rec_lock:
            self._recorder = writer

    def stop_recording(self) -> Optional[str]:
        with self._rec_lock:
            writer, self._recorder = self._recorder, None
        if writer is None:
            return None
        writer.close()
        return str(writer.path)

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    # ------------------------------------------------------------- threads
    def _guard(self, target):
        def run():
            try:
                target()
            except BaseException as exc:  # reported to the caller / shown by the GUI
                if not self._stop.is_set():
                    self.error = exc
                self._stop.set()
                with self._cond:
                    self._producer_done = True
                    self._cond.notify_all()
                self._finished.set()
        return run

    def _produce(self) -> None:
        for packet in self.source:
            if self._stop.is_set():
                break
            while self._paused.is_set() and not self._stop.is_set():
                time.sleep(0.01)
            t_recv = time.perf_counter()
            with self._rec_lock:
                rec = self._recorder
                if rec is not None:
                    rec.write(packet)
                    self._recorded += packet.size
            t_rec = time.perf_counter()
            if self._last_t is not None and packet["t"][0] < self._last_t:
                loops = getattr(self.source, "loops", 0)
                self._restart_stream(flush=loops != self._loops_seen)  # a loop ends as the stream would
                self._loops_seen = loops
            if self.stats.stream_start_us is None:
                self.stats.stream_start_us = int(packet["t"][0])
            packet, last = self._until_stop_time(packet)
            if not packet.size:
                break
            self._last_t = int(packet["t"][-1])
            if self.max_lag_us is not None and self._shed(packet, t_recv):
                continue
            windows = self._binner.push(packet)
            t_bin = time.perf_counter()
            if self.view is not None:
                self.view.push(packet)
            t_view = time.perf_counter()
            stage = self._stage_s
            stage["record"] += t_rec - t_recv
            stage["bin"] += t_bin - t_rec
            stage["view"] += t_view - t_bin
            self._rate_meter.append((t_recv, packet.size))
            self.stats.packets += 1
            for w in windows:
                self._enqueue(_Job(w, t_recv, self._generation))
            if last:
                break
        if self._shedding and self._last_t is not None:  # the stream ended while shed
            self._stop_shedding(self._last_t + 1)
        if not self._stop.is_set():
            t_recv = time.perf_counter()
            for w in self._binner.flush():
                self._enqueue(_Job(w, t_recv, self._generation))
        with self._cond:
            self._producer_done = True
            self._cond.notify_all()
        if self.classifier is None:
            self._finished.set()

    def _until_stop_time(self, packet: np.ndarray) -> tuple[np.ndarray, bool]:
        """``packet`` cut at :attr:`stop_after_us` of stream time after the first event
        (the events at or after it are not read), and whether that time is reached."""
        if self.stop_after_us is None:
            return packet, False
        end = self.stats.stream_start_us + self.stop_after_us
        if int(packet["t"][-1]) < end:
            return packet, False
        return packet[:int(np.searchsorted(packet["t"], end, side="left"))], True

    def _shed(self, packet: np.ndarray, now: float) -> bool:
        """Track the lag behind a real-time source; True when this packet is shed."""
        speed = getattr(self.source, "speed", None) or 1.0
        t_last = int(packet["t"][-1])
        if (self._clock is None or self._paused_since_clock or not self.stats.windows_classified
                or speed != self._clock_speed):
            # (re)start the reference: at the start, after a pause or a change of replay
            # speed, and until the first prediction (first calls load compiled kernels
            # and warm torch up)
            self._clock = (now, int(packet["t"][0]))
            self._clock_speed = speed
            self._paused_since_clock = False
        lag_us = (now - self._clock[0]) * 1e6 - (t_last - self._clock[1]) / speed
        if lag_us < 0:  # the source is ahead of our reference: it is the pace
            self._clock = (now, t_last)
            lag_us = 0.0
        self.stats.lag_ms = lag_us / 1e3
        if not self._shedding and lag_us > self.max_lag_us:
            self._shedding = True
            self._shed_from = int(packet["t"][0])
        elif self._shedding and lag_us < self.max_lag_us / 2:
            self._stop_shedding(int(packet["t"][0]))
            self._restart_stream()
        if self._shedding:
            self.stats.events_shed += packet.size
            self._rate_meter.append((now, packet.size))
        return self._shedding

    def _stop_shedding(self, t_us: int) -> None:
        """Shedding ends at stream time ``t_us``: the windows it cost are counted as
        skipped (``windows = classified + skipped`` still holds)."""
        self._shedding = False
        hops = max(0, (int(t_us) - self._shed_from) // self.binning.hop_us)
        self.stats.windows_skipped += int(hops)
        self.stats.windows += int(hops)

    def _restart_stream(self, flush: bool = False) -> None:
        """Time went backwards (a seek or a loop): new binners, fresh model state.
        ``flush`` (a loop): first the pending window of the stretch that ended, as at the
        end of a stream (a recording shorter than the window still gets its prediction)."""
        if flush:
            t_recv = time.perf_counter()
            for w in self._binner.flush():
                self._enqueue(_Job(w, t_recv, self._generation))
        for key, value in _binner_counts(self._binner).items():
            self._retired[key] += value
        self._binner = self.binning.binner(self.sensor_size)
        if self.view is not None:
            self.view = EventView(self.sensor_size, self.binning.window_us)
        with self._cond:  # queued windows of the old stretch are still classified
            self._generation += 1
        self.stats.restarts += 1
        self._clock = None

    def _enqueue(self, job: _Job) -> None:
        self.stats.windows += 1
        with self._cond:
            if self.classifier is None:
                return
            if self.drop_stale:
                if len(self._queue) >= self._queue_size:
                    self._queue.popleft()
                    self.stats.windows_skipped += 1
                    self._resync = True
            else:
                while len(self._queue) >= self._queue_size and not self._stop.is_set():
                    self._cond.wait(0.1)
            self._queue.append(job)
            self._cond.notify_all()

    def _consume(self) -> None:
        clf = self.classifier
        generation = 0
        while True:
            with self._cond:
                while not self._queue and not self._producer_done and not self._stop.is_set():
                    self._cond.wait(0.1)
                if self._stop.is_set() or (not self._queue and self._producer_done):
                    break
                job = self._queue.popleft()
                resync, self._resync = self._resync, False
                self._cond.notify_all()
            if job.generation != generation:
                clf.reset()
                generation = job.generation
            t0 = time.perf_counter()
            probs, steps, rate, attn = clf(job.window, resync=resync)
            t1 = time.perf_counter()
            self._stage_s["infer"] += t1 - t0
            w = job.window
            pred = Prediction(t_start=w.t_start, t_end=w.t_end, probs=probs,
                              latency_ms=(t1 - job.t_received) * 1e3, steps=steps, events=w.events,
                              label=self._label_at((w.t_start + w.t_end) // 2),
                              firing_rate=rate, attention=attn)
            with self._lock:
                self.predictions.append(pred)
                self.latest = pred
                self._latencies.append(pred.latency_ms)
                self._infer_ms.append((t1 - t0) * 1e3)
                self._hop_times.append(t1)
                self.stats.windows_classified += 1
                if pred.label is not None:
                    self.labelled_windows += 1
                    self.correct_windows += int(pred.top == pred.label)
            if self.on_prediction is not None:
                self.on_prediction(pred)
        self._finished.set()

    def recent_predictions(self, n: Optional[int] = None) -> list[Prediction]:
        """A copy of the last ``n`` predictions (all kept when None), oldest first."""
        with self._lock:
            preds = list(self.predictions)
        return preds if n is None else preds[-n:]

    def _label_at(self, t: int) -> Optional[int]:
        labels = self.labels
        if labels is None or not len(labels):
            return None
        hit = np.nonzero((labels["start"] <= t) & (t < labels["end"]))[0]
        return int(labels["label"][hit[0]]) if hit.size else None

    # ------------------------------------------------------------- readout
    def snapshot_stats(self) -> PipelineStats:
        """A consistent copy of the accounting and timing figures."""
        s = self.stats
        with self._lock:
            counts = {k: v + self._retired[k] for k, v in _binner_counts(self._binner).items()}
            src = getattr(self.source, "stats", None)
            src_oob = src.out_of_bounds if src is not None else 0
            s.events_binned = counts["binned"]
            s.events_out_of_bounds = src_oob + counts["out_of_bounds"]
            s.events_late = counts["late"]
            s.events_outside_roi = counts["outside_roi"]
            s.events_read = counts["events_in"] + src_oob + s.events_shed
            s.empty_windows = counts["empty"]
            s.recorded_events = self._recorded
            s.latency_ms = _percentiles(self._latencies)
            s.inference_ms = _percentiles(self._infer_ms)
            hops = list(self._hop_times)
            s.inference_rate = (len(hops) - 1) / (hops[-1] - hops[0]) if len(hops) > 1 and hops[-1] > hops[0] else 0.0
            meter = list(self._rate_meter)
            if len(meter) > 1 and meter[-1][0] > meter[0][0]:
                s.event_rate = sum(n for _, n in meter[1:]) / (meter[-1][0] - meter[0][0])
            s.stage_s = {k: round(v, 4) for k, v in self._stage_s.items()}
            s.stream_time_us = self._last_t
            s.wall_s = time.perf_counter() - self._t0 if self._t0 else 0.0
            if self.classifier is not None:
                s.energy_mj_per_window = self.classifier.energy_mj
            return PipelineStats(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in s.__dict__.items()})

    def snapshot(self) -> dict[str, Any]:
        """What a display needs, cheaply: the latest prediction, the event image
        ``[2, H, W]`` (a copy; None without ``event_view``), its end time, the stats."""
        view = self.view
        image, t_end = view.read() if view is not None else (None, None)
        return {
            "prediction": self.latest,
            "event_image": image,
            "event_t_end": t_end,
            "stats": self.snapshot_stats(),
            "finished": self.finished,
            "error": self.error,
        }
