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

This module owns the loaded model (:func:`load_classifier_model`), the binning its
checkpoint asks for on a given sensor (:func:`pipeline_binning`, which hands the
checkpoint's parts to the one geometry rule, :func:`dvsstream.binning.geometry.live_binning`)
and the :class:`Pipeline`'s threads; the model's side is :mod:`~dvsstream.stream.classifier`,
the accounting :mod:`~dvsstream.stream.stats`, the display's event image
:mod:`~dvsstream.stream.event_image`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch

from dvsstream.binning.geometry import BinningConfig, default_binning, live_binning
from dvsstream.errors import DvsstreamError
from dvsstream.binning.streaming import StreamingBinner, Window
from dvsstream.events import EVENT_DTYPE, SensorSize
from dvsstream.models.spikformer import Spikformer
from dvsstream.io.base import is_realtime
from dvsstream.stream.classifier import Classifier, Prediction
from dvsstream.stream.event_image import EventImage
from dvsstream.stream.filtering import LiveFilter
from dvsstream.stream.recorder import StreamRecorder
from dvsstream.stream.stats import LagClock, PipelineMeters, PipelineStats

__all__ = ["LoadedModel", "Pipeline", "check_frame_size", "load_classifier_model", "pipeline_binning", "warm_up"]


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
    from dvsstream.models.checkpoints import checkpoint_meta, load_model, shipped_checkpoint
    from dvsstream.models.device import prepare_for_inference

    path = str(checkpoint) if checkpoint else str(shipped_checkpoint())
    model = load_model(path)
    meta = checkpoint_meta(path)
    if model.num_classes < 1:
        raise DvsstreamError(f"{path}: a pre-trained encoder without a classifier (from dvsstream pretrain); "
                             f"fine-tune it on your classes first (dvsstream teach ROOT --init {path}, or "
                             f"dvsstream train ... --init {path})")
    prepare_for_inference(model, device=device)
    names = [str(c) for c in meta.get("classes") or []]
    if len(names) != model.num_classes:
        names = [f"class {i}" for i in range(model.num_classes)]
    live = meta.get("live_binning")
    binning = BinningConfig(**live) if live else default_binning(model.config.T)
    dev = next(model.parameters()).device
    return LoadedModel(model=model, class_names=names, binning=binning, checkpoint=path, device=dev, meta=meta)


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


def pipeline_binning(loaded: Optional[LoadedModel], sensor_size, **parts: Any) -> BinningConfig:
    """The binning of a pipeline on a ``sensor_size`` ``(width, height)`` sensor: the
    checkpoint's live binning with ``parts`` changed (``window_ms``, ``hop_ms``,
    ``n_bins``, ``roi``, ``resize``; None keeps one) and the geometry that feeds its model
    (:func:`dvsstream.binning.geometry.live_binning`, given the checkpoint's binning, input
    size and meta); without a model (view and record only) windows of 400 ms in 8 bins, a
    hop of 50 ms, over the whole sensor. Raises ``ValueError`` (one line) when the parts do
    not fit or no region of the sensor fits the model."""
    if loaded is None:
        return default_binning(8)
    model_size = (int(loaded.model.config.img_size[1]), int(loaded.model.config.img_size[0]))
    return live_binning(loaded.binning, model_size, loaded.meta, sensor_size, **parts)


def check_frame_size(loaded: LoadedModel, binning: BinningConfig, sensor_size: SensorSize) -> None:
    """Raise ``ValueError`` (one line) when ``binning`` does not make the frames the
    model takes (``img_size``) from a ``sensor_size`` sensor."""
    want = (int(loaded.model.config.img_size[1]), int(loaded.model.config.img_size[0]))
    have = binning.frame_size(sensor_size)
    if want != tuple(have):
        raise ValueError(
            f"the model takes {want[0]}x{want[1]} frames but the binning makes {have[0]}x{have[1]} "
            f"from the {sensor_size.width}x{sensor_size.height} sensor; "
            "choose a region and size with --roi / --resize, or a matching checkpoint"
        )


def _label_at(labels: Optional[np.ndarray], t: int) -> Optional[int]:
    """The label of a recording's label track (``start``, ``end``, ``label`` rows, µs)
    at stream time ``t``, or None (no track, or no labelled stretch there)."""
    if labels is None or not len(labels):
        return None
    hit = np.nonzero((labels["start"] <= t) & (t < labels["end"]))[0]
    return int(labels["label"][hit[0]]) if hit.size else None


@dataclass
class _Job:
    window: Window
    t_received: float
    generation: int


class Pipeline:
    """Source -> binner -> classifier, on two threads, with bounded queues.

    ``source``: an open :class:`~dvsstream.io.base.EventSource` (the pipeline closes
    it). ``loaded``: from :func:`load_classifier_model`, or None for no classifier (view
    and record only). ``binning``: the binning decided by the caller (for a model:
    :func:`pipeline_binning` on this source's sensor); None: the same, decided here.
    ``drop_stale``: skip stale windows under overload (counted) instead of making the
    source wait. ``queue_size``: windows waiting for the classifier at most.
    ``on_prediction``: called in the classifier thread with each :class:`Prediction`.
    ``history``: predictions kept for :attr:`predictions` (None: all; a headless run that
    streams them elsewhere through ``on_prediction`` keeps a few, so that memory stays
    bounded however long the stream).
    ``max_lag_ms``: shed load when a real-time source runs this far ahead ("auto": one
    window for real-time sources, never for unpaced replays; None: never).
    ``event_filter``: a ``--filter`` (:class:`~dvsstream.filters.FilterSpec` or its text;
    :meth:`set_filter` changes it while running): the noise filters every packet goes
    through after the recorder (which keeps every event) and before the binner and the
    view; the events removed are counted in ``events_filtered``.
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
        event_filter=None,
    ) -> None:
        self.source = source
        self.loaded = loaded
        self.sensor_size = SensorSize(*source.sensor_size)
        if binning is None:
            binning = pipeline_binning(loaded, self.sensor_size)
        self.binning = binning
        if loaded is not None:
            check_frame_size(loaded, binning, self.sensor_size)
        self.classifier = (Classifier(loaded, mode=mode, attention=attention, firing_rates=firing_rates,
                                      energy_every_s=energy_every_s) if loaded is not None else None)
        self.class_names = list(loaded.class_names) if loaded is not None else []
        self.labels = getattr(source, "labels", None)
        self.drop_stale = drop_stale
        self.on_prediction = on_prediction
        self.view = EventImage(self.sensor_size, binning.window_us) if event_view else None

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
        self._meters = PipelineMeters(history)
        self._generation = 0
        self._binner = binning.binner(self.sensor_size)
        self._last_t: Optional[int] = None
        self._loops_seen = 0  # the source's loop count at the last packet (FileSource.loops)
        self._recorder = StreamRecorder(source, self.sensor_size)
        self._filter = LiveFilter(event_filter, self.sensor_size)
        if max_lag_ms == "auto":
            max_lag_ms = binning.window_us / 1e3 if is_realtime(source) else None
        self.max_lag_us = None if max_lag_ms is None else float(max_lag_ms) * 1e3
        self._clock = LagClock()
        self._shedding = False
        self._shed_from: Optional[int] = None
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
            self._clock.paused = True
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
        self._recorder.start(path, overwrite=overwrite)

    def stop_recording(self) -> Optional[str]:
        """Close the recording; its path, or None when none was being written."""
        return self._recorder.stop()

    @property
    def recording(self) -> bool:
        return self._recorder.active

    def set_filter(self, event_filter) -> None:
        """Filter with ``event_filter`` (``--filter`` text or spec; None or ``"none"``: no
        filter) from the next packet on, with a fresh history."""
        self._filter.set(event_filter)

    @property
    def filter_spec(self) -> str:
        """The ``--filter`` text of the filter in use (``"none"``)."""
        return self._filter.spec

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
            self._recorder.write(packet)
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
            n_read = packet.size
            packet = self._filter(packet)
            windows = self._binner.push(packet)
            t_bin = time.perf_counter()
            if self.view is not None:
                self.view.push(packet)
            t_view = time.perf_counter()
            stage = self._meters.stage_s
            stage["record"] += t_rec - t_recv
            stage["bin"] += t_bin - t_rec
            stage["view"] += t_view - t_bin
            self._meters.rate_meter.append((t_recv, n_read))
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
        lag_us = self._clock.lag_us(packet, now, speed, warming=not self.stats.windows_classified)
        self.stats.lag_ms = lag_us / 1e3
        if not self._shedding and lag_us > self.max_lag_us:
            self._shedding = True
            self._shed_from = int(packet["t"][0])
        elif self._shedding and lag_us < self.max_lag_us / 2:
            self._stop_shedding(int(packet["t"][0]))
            self._restart_stream()
        if self._shedding:
            self.stats.events_shed += packet.size
            self._meters.rate_meter.append((now, packet.size))
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
        self._meters.retire(self._binner)
        self._binner = self.binning.binner(self.sensor_size)
        self._filter.reset()
        if self.view is not None:
            self.view = EventImage(self.sensor_size, self.binning.window_us)
        with self._cond:  # queued windows of the old stretch are still classified
            self._generation += 1
        self.stats.restarts += 1
        self._clock.reset()

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
            self._meters.stage_s["infer"] += t1 - t0
            w = job.window
            pred = Prediction(t_start=w.t_start, t_end=w.t_end, probs=probs,
                              latency_ms=(t1 - job.t_received) * 1e3, steps=steps, events=w.events,
                              label=_label_at(self.labels, (w.t_start + w.t_end) // 2),
                              firing_rate=rate, attention=attn)
            with self._lock:
                self.predictions.append(pred)
                self.latest = pred
                self._meters.latencies.append(pred.latency_ms)
                self._meters.infer_ms.append((t1 - t0) * 1e3)
                self._meters.hop_times.append(t1)
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

    # ------------------------------------------------------------- readout
    def snapshot_stats(self) -> PipelineStats:
        """A consistent copy of the accounting and timing figures."""
        s = self.stats
        with self._lock:
            src = getattr(self.source, "stats", None)
            self._filter.fill(s)
            self._meters.fill(s, self._binner, src.out_of_bounds if src is not None else 0)
            s.recorded_events = self._recorder.events
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
