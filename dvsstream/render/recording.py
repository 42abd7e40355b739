"""The headless ``dvsstream render``: a clip of a recording, drawn from the live pipeline.

:func:`render_recording` runs :class:`~dvsstream.stream.pipeline.Pipeline` on a recording
(unpaced, nothing skipped: deterministic), takes the event view at each ``1 / fps`` of
stream time (:class:`_SampleTap`, in the pipeline's source thread), pairs each sample with
the latest prediction, draws it (:func:`~dvsstream.render.clip.render_frame`) and encodes
it (:class:`~dvsstream.render.writer.ClipWriter`) on the calling thread. Torch and PyAV
are imported only when a recording is rendered.
"""

from __future__ import annotations

import functools
import math
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import numpy as np

from dvsstream.errors import DvsstreamError
from dvsstream.render import display
from dvsstream.render.clip import MIN_HEIGHT, ClipFrame, render_frame
from dvsstream.render.writer import DEFAULT_FPS, ClipWriter

__all__ = [
    "RenderSummary",
    "render_recording",
]


@dataclass
class RenderSummary:
    """What :func:`render_recording` wrote: ``frames`` at ``fps`` (``duration_s`` of clip
    = of stream time), ``size`` ``(width, height)`` px, ``bytes`` on disk, the stream
    stretch ``start_s .. start_s + duration_s`` (s since the first event), ``wall_s``."""

    path: str
    frames: int
    fps: float
    size: tuple[int, int]
    bytes: int
    start_s: float
    wall_s: float
    checkpoint: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


_END = object()


class _SampleTap:
    """Wraps a recording for :class:`~dvsstream.stream.pipeline.Pipeline` and takes the event
    image at each sample time ``t_k = t_first + k * 1e6 / fps`` (absolute µs).

    It runs in the pipeline's source thread. A packet is handed to the pipeline first;
    when the pipeline asks for the next one, it has binned that packet, updated its event
    view and queued the windows it closed. Sample ``k`` is taken once a packet reached
    ``t_k`` (every window ending at or before ``t_k`` is then queued): the view as it was
    at ``t_k`` -- after this packet if its bins end by ``t_k``, else before it (a silent
    gap) -- with the count of windows queued so far. Samples go to ``out`` (bounded: the
    pipeline waits for the encoder)."""

    def __init__(self, source, t_first: int, fps: float, n_max: Optional[int], out: queue.Queue,
                 abort: threading.Event) -> None:
        self._source = source
        self._t_first, self._period = int(t_first), 1e6 / fps
        self._n_max = n_max
        self._out, self._abort = out, abort
        self.pipe = None  # set once the pipeline is built
        self._k = 0

    def __getattr__(self, name: str) -> Any:  # sensor_size, labels, kind, speed, close, stats...
        return getattr(self._source, name)

    def _t(self, k: int) -> int:
        return self._t_first + round(k * self._period)

    def _put(self, item: Any) -> None:
        while not self._abort.is_set():
            try:
                self._out.put(item, timeout=0.1)
                return
            except queue.Full:
                pass

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            for packet in self._source:
                if self._n_max is not None and self._k >= self._n_max:
                    return
                t_last = int(packet["t"][-1])
                due = self._t(self._k) <= t_last
                before = self.pipe.view.read() if due else None
                yield packet
                if due:
                    after = self.pipe.view.read()
                    windows = self.pipe.stats.windows
                    while (self._n_max is None or self._k < self._n_max) and self._t(self._k) <= t_last:
                        t_k = self._t(self._k)
                        image = after[0] if after[1] is None or after[1] <= t_k else before[0]
                        self._put((self._k, t_k, image, windows))
                        self._k += 1
        finally:
            self._put(_END)


def _time_range(path: str) -> tuple[int, Optional[int]]:
    """A recording's first event time and, when its header knows it, its last (µs)."""
    from dvsstream.io import open_source

    with open_source(path) as src:
        end = src.end_time_us
        if src.start_time_us is not None:
            return int(src.start_time_us), None if end is None else int(end)
        for packet in src:
            return int(packet["t"][0]), None if end is None else int(end)
    raise DvsstreamError(f"{path}: the recording holds no events")


def _check_render(source: str, out: os.PathLike | str, start_s: float, duration_s: Optional[float],
                  fps: float, overwrite: bool) -> tuple[ClipWriter, tuple[int, Optional[int]]]:
    """Check :func:`render_recording`'s arguments (one-line errors, no torch; ``start_s``
    0 when the clip starts at the first prediction): the writer for ``out`` and the
    recording's first and (when its header knows it) last event time (µs)."""
    if not (math.isfinite(start_s) and start_s >= 0):
        raise DvsstreamError(f"--start must be 0 or more seconds, got {start_s:g}")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise DvsstreamError(f"--duration must be a positive number of seconds, got {duration_s:g}")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise DvsstreamError(f"--fps must be a positive number of frames per second, got {fps:g}")
    writer = ClipWriter(out, fps, overwrite=overwrite)
    if not os.path.isfile(source):
        raise DvsstreamError(f"{source}: no such recording (render takes a recording file)")
    t0, t_last = _time_range(source)
    if t_last is not None and t0 + start_s * 1e6 > t_last:
        raise DvsstreamError(f"{source}: --start {start_s:g} s is past the end of the recording "
                             f"({(t_last - t0) / 1e6:.2f} s)")
    return writer, (t0, t_last)


def _first_prediction_frame(t0: int, t_last: Optional[int], window_us: int, fps: float) -> int:
    """The time (µs) of a clip's first frame when it starts at the first prediction: the
    first frame time ``t0 + k / fps`` at or after the first full window's end
    (``t0 + window_us``: the binner's windows start at the first event); ``t0`` when the
    recording ends before that."""
    k = math.ceil(window_us * fps / 1e6 - 1e-9)
    t = t0 + round(k * 1e6 / fps)
    return t0 if t_last is not None and t > t_last else t


def render_recording(source: str, out: os.PathLike | str, *, checkpoint: Optional[str] = None,
                     start_s: Optional[float] = None, duration_s: Optional[float] = None, fps: float = DEFAULT_FPS,
                     overwrite: bool = False, device: Optional[str] = None, min_height: int = MIN_HEIGHT,
                     progress: Optional[Callable[[int], None]] = None) -> RenderSummary:
    """Render a clip of a recording headless: the live pipeline as ``dvsstream run``
    runs it on a file (unpaced, nothing skipped: deterministic), with attention taps and
    the event view, one frame per ``1 / fps`` of stream time from ``start_s`` (seconds
    since the first event; None: from the first prediction, one model window in) for
    ``duration_s`` (None: to the last event). A frame shows the whole sensor with the
    region the model sees outlined, and the window's caveat when a synthetic-only model
    meets a real recording (:func:`~dvsstream.render.display.domain_note`).

    Reading starts one model window before ``start_s`` so that the first frame has a
    full window and a prediction (from 0: the window fills up during the first frames).
    ``progress(frames)`` is called after each frame. Raises a one-line
    :class:`~dvsstream.errors.DvsstreamError` on bad input."""
    wall0 = time.perf_counter()
    from_prediction = start_s is None
    start_s = 0.0 if start_s is None else start_s
    writer, (t0, t_last) = _check_render(source, out, start_s, duration_s, fps, overwrite)  # before torch loads
    t_first = t0 + round(start_s * 1e6)
    from dvsstream.stream.live import REPLAY_PACKET_US
    from dvsstream.stream.pipeline import Pipeline, load_classifier_model, pipeline_binning
    from dvsstream.io import open_source

    samples: queue.Queue = queue.Queue(maxsize=64)  # (k, t_k µs, event image, windows queued)
    preds: queue.Queue = queue.Queue()  # (t_end µs, probs, label, overlay) per prediction, in order
    abort = threading.Event()
    src = open_source(source, packet_us=REPLAY_PACKET_US)
    try:
        loaded = load_classifier_model(checkpoint, device=device)
        if start_s > 0:
            src.seek(max(t0, t_first - loaded.binning.window_us))
        n_max = None if duration_s is None else max(1, round(duration_s * fps))
        if from_prediction:
            t_first = _first_prediction_frame(t0, t_last, loaded.binning.window_us, fps)
            start_s = (t_first - t0) / 1e6
        tap = _SampleTap(src, t_first, fps, n_max, samples, abort)
        pipe = Pipeline(tap, loaded, binning=pipeline_binning(loaded, tap.sensor_size), mode="step", drop_stale=False,
                        attention=True, firing_rates=False, event_view=True, history=2, max_lag_ms=None,
                        on_prediction=lambda p: preds.put((p.t_end, p.probs, p.label, display.overlay_map(p.attention))))
    except ValueError as exc:
        src.close()
        raise DvsstreamError(f"{source}: {exc}") from None
    except BaseException:
        src.close()
        raise
    tap.pipe = pipe
    config = loaded.model.config
    note = display.domain_note(loaded.synthetic_only, "file", getattr(src, "camera", None)) or ""
    frame_of = functools.partial(ClipFrame, class_names=tuple(pipe.class_names), region=pipe.binning.roi,
                                 levels=display.overlay_levels(config.dim // config.heads), note=note)

    def make_frame(t_k: int, image: np.ndarray, pred: Optional[tuple]) -> ClipFrame:
        if pred is None:  # before the first prediction
            return frame_of(events=image, t_us=t_k - t0)
        return frame_of(events=image, t_us=t_k - t0, probs=pred[1], label=pred[2], attention=pred[3])

    pipe.start()
    try:
        _encode(pipe, samples, preds, writer, make_frame, min_height, progress)
        if not writer.frames:
            raise DvsstreamError(f"{source}: nothing to render from --start {start_s:g} s "
                                 "(past the last event)")
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        abort.set()
        pipe.stop()
    return RenderSummary(path=str(writer.path), frames=writer.frames, fps=float(fps), size=writer.size,
                         bytes=os.path.getsize(writer.path), start_s=float(start_s),
                         wall_s=time.perf_counter() - wall0, checkpoint=loaded.checkpoint,
                         warnings=list(src.stats.warnings))


def _encode(pipe, samples: queue.Queue, preds: queue.Queue, writer: ClipWriter,
            make_frame: Callable[[int, np.ndarray, Optional[tuple]], ClipFrame], min_height: int,
            progress: Optional[Callable[[int], None]]) -> None:
    """The main-thread half of :func:`render_recording`: pair each sample with the
    latest prediction whose window ends at or before it (all such windows were queued
    before the sample was taken: wait for their predictions), draw it, encode it."""
    received, pending, current = 0, deque(), None
    while True:
        item = _get(samples, pipe)
        if item is _END:
            break
        k, t_k, image, windows = item
        while received < windows:
            pred = _get(preds, pipe)
            if pred is _END:
                break
            pending.append(pred)
            received += 1
        while pending and pending[0][0] <= t_k:
            current = pending.popleft()
        writer.write(render_frame(make_frame(t_k, image, current), min_height))
        if progress is not None:
            progress(writer.frames)
    if pipe.error is not None:
        raise pipe.error


def _get(q: queue.Queue, pipe) -> Any:
    """The next item of ``q``, waiting; raises the pipeline's error if a thread died,
    returns ``_END`` if the pipeline finished and nothing more will come."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if pipe.error is not None:
                raise pipe.error
            if pipe.finished and not pipe.running:
                try:
                    return q.get_nowait()
                except queue.Empty:
                    return _END
