"""The GUI's engine room, without Qt: opens the source and the model, builds, starts,
rebuilds and stops the :class:`~dvsstream.stream.pipeline.Pipeline`, and forwards playback
controls (pause, seek, speed, loop, recording) to it.

The window calls these methods from its controls and reads :attr:`Controller.pipeline`
from its timer. Every method that can fail for a user-facing reason raises
:class:`~dvsstream.errors.DvsstreamError` (or ``ValueError`` for bad numbers) with a
one-line message, and leaves the running pipeline as it was.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from dvsstream.errors import DvsstreamError, SourceError
from dvsstream.gui.state import Settings, default_source, source_kind, source_options

__all__ = ["Controller", "HISTORY_SECONDS", "absolute_source", "gui_torch_threads", "preload"]

#: the prediction history strip covers this much stream time
HISTORY_SECONDS = 10.0


def gui_torch_threads(cpus: Optional[int] = None) -> int:
    """Intra-op threads for the model while the GUI runs: the cores left after the GUI
    and the source thread, at most 4. On 2 cores this is 1: with 2 threads torch's
    spinning OpenMP worker took a core from the GUI and the classifier's p95 latency
    went from 14 ms to 230 ms, dropping a quarter of the windows (shipped model)."""
    import os

    cpus = cpus or os.cpu_count() or 2
    return max(1, min(4, cpus - 2))

_preloads: dict[tuple[str, Optional[str]], tuple[threading.Thread, dict]] = {}


def _checkpoint_key(checkpoint: Optional[str]) -> str:
    """The checkpoint's absolute path ("" for the shipped model)."""
    return str(Path(checkpoint).expanduser().absolute()) if checkpoint else ""


def absolute_source(uri: str) -> str:
    """A file source as an absolute path (settings must work from any folder); other
    URIs unchanged."""
    if source_kind(uri) != "file":
        return uri
    return str(Path(uri).expanduser().absolute())


def preload(checkpoint: Optional[str] = None, device: Optional[str] = None) -> None:
    """Start importing torch, loading ``checkpoint`` and loading the binning kernels in a
    background thread, while Qt builds the window (saves ~0.5 s to the first frame). A
    :class:`Controller` asked for the same checkpoint and device takes the result."""
    key = (_checkpoint_key(checkpoint), device)
    if key in _preloads:
        return
    box: dict = {}

    def work() -> None:
        try:
            from dvsstream.stream.pipeline import load_classifier_model

            box["loaded"] = load_classifier_model(key[0] or None, device=device)
        except BaseException as exc:  # the controller loads again and reports it
            box["error"] = exc
        try:
            from dvsstream.stream.pipeline import warm_up

            warm_up()
        except Exception:
            pass

    thread = threading.Thread(target=work, name="dvsstream-gui-preload", daemon=True)
    _preloads[key] = (thread, box)
    thread.start()


def _take_preloaded(key: str, device: Optional[str]):
    entry = _preloads.pop((key, device), None)
    if entry is None:
        return None
    thread, box = entry
    thread.join()
    return box.get("loaded")


class Controller:
    """Source + model + pipeline lifecycle for one window.

    ``settings``: shared with the window (the controller updates ``source`` and
    ``checkpoint`` on success). ``device``: for the model (default: CUDA when present).
    ``deterministic``: never skip a window (the source waits for the classifier).
    Models are cached by checkpoint path: a rebuild with new binning reuses the loaded
    model (the old pipeline is stopped first, so they never run at once).
    """

    def __init__(self, settings: Settings, device: Optional[str] = None, deterministic: bool = False) -> None:
        self.settings = settings
        self.device = device
        #: wait for the classifier instead of skipping windows or shedding load (the
        #: same predictions as ``dvsstream run`` on the same recording)
        self.deterministic = bool(deterministic)
        self.pipeline = None  # dvsstream.stream.pipeline.Pipeline
        self.loaded = None  # dvsstream.stream.pipeline.LoadedModel
        self.source_uri: Optional[str] = None
        self.generation = 0  # +1 on every successful build: views reset
        self.build_s: Optional[float] = None
        self._models: dict[str, Any] = {}
        self._torch_threads_before: Optional[int] = None
        #: ``--start S``: a recording opened by the first build starts S seconds after its
        #: first event (past the end: a one-line error); later opens start at 0
        self.start_s: Optional[float] = None
        self.frozen = False  # live sources: the display is held, the stream goes on
        #: the region ``(x0, y0, w, h)`` of the sensor and the size the model sees (None:
        #: :func:`~dvsstream.binning.geometry.geometry_for`'s default for each source)
        self.roi: Optional[tuple[int, int, int, int]] = None
        self.resize: Optional[tuple[int, int]] = None
        #: ``--sensor-size``: the sensor of the Prophesee, .npy and AEDAT 2.0 recordings opened whose
        #: header states none (other sources state their own)
        self.sensor_size: Optional[tuple[int, int]] = None

    # ------------------------------------------------------------------ model
    def load_model(self, checkpoint: Optional[str] = None):
        """The :class:`~dvsstream.stream.pipeline.LoadedModel` of a checkpoint (None: shipped), cached."""
        from dvsstream.stream.pipeline import load_classifier_model

        key = _checkpoint_key(checkpoint)
        if key not in self._models:
            if key and not Path(key).is_file():
                raise DvsstreamError(f"{key}: no such checkpoint file")
            loaded = _take_preloaded(key, self.device)
            if loaded is not None:
                self._models[key] = loaded
                return loaded
            try:
                self._models[key] = load_classifier_model(key or None, device=self.device)
            except DvsstreamError:
                raise
            except Exception as exc:  # torch.load / config errors: one line for the window
                raise DvsstreamError(f"{key or 'shipped model'}: cannot be loaded as a checkpoint ({exc})") from None
        return self._models[key]

    # ------------------------------------------------------------------ binning
    def binning_for(self, loaded, sensor_size=None):
        """The live binning: the checkpoint's, with the settings' window / hop / T
        where given, and the region of ``sensor_size`` that feeds the model
        (:attr:`roi` / :attr:`resize`, else :func:`~dvsstream.binning.geometry.geometry_for`)."""
        from dvsstream.stream.pipeline import pipeline_binning

        s = self.settings
        try:
            return pipeline_binning(loaded, sensor_size, window_ms=s.window_ms or None, hop_ms=s.hop_ms or None,
                                    n_bins=s.T or None, roi=self.roi, resize=self.resize)
        except ValueError as exc:
            raise DvsstreamError(str(exc)) from None

    def check_binning(self) -> None:
        """Raise the reason when the settings' window / hop / T cannot be used."""
        loaded = self.loaded or self.load_model(self.settings.checkpoint)
        sensor = self.pipeline.sensor_size if self.pipeline is not None else None
        self.binning_for(loaded, sensor)

    # ------------------------------------------------------------------ lifecycle
    def build(self, source: Optional[str] = None, checkpoint: Any = ...) -> None:
        """(Re)build and start the pipeline for ``source`` (default: the settings',
        else the shipped recording) and ``checkpoint`` (default: the settings').

        Opens the new source and model first; only when both are fine is the old
        pipeline stopped and replaced (a bad file keeps the current stream running)."""
        from dvsstream.stream.pipeline import Pipeline

        t0 = time.perf_counter()
        uri = absolute_source(source if source is not None else (self.settings.source or default_source()))
        ckpt = self.settings.checkpoint if checkpoint is ... else checkpoint
        ckpt = _checkpoint_key(ckpt) or None
        loaded = self.load_model(ckpt)
        new_source = self._open(uri)
        try:
            try:
                binning = self.binning_for(loaded, new_source.sensor_size)
            except DvsstreamError as exc:
                raise DvsstreamError(f"{uri}: {exc}") from None
            was_paused = self.paused
            self.stop()
            history = int(HISTORY_SECONDS * 1e6 / binning.hop_us) + 20
            pipeline = Pipeline(new_source, loaded, binning=binning, mode=self.settings.mode,
                                drop_stale=not self.deterministic,
                                max_lag_ms=None if self.deterministic else "auto",
                                attention=True, energy_every_s=1.0, event_view=True, history=history,
                                event_filter=self.settings.noise_filter)
        except BaseException:
            new_source.close()
            raise
        self._limit_torch_threads()
        self.pipeline, self.loaded, self.source_uri = pipeline, loaded, uri
        self.frozen = False
        self.set_paused(was_paused)
        pipeline.start()
        self.generation += 1
        self.settings.checkpoint = ckpt
        if self.settings.source is not None or uri != absolute_source(default_source()):
            self.settings.source = uri
        self.settings.remember_source(uri)
        self.build_s = time.perf_counter() - t0

    def rebuild(self) -> None:
        """Build again with the current source and settings (new window / hop / T / mode)."""
        self.build(self.source_uri)

    def _open(self, uri: str):
        from dvsstream.io import open_source, start_source_at

        try:
            options = source_options(uri, self.settings.speed, self.settings.loop)
            if self.sensor_size is not None and source_kind(uri) == "file":
                from dvsstream.io import SIZED_BY_USER, detect_format

                if detect_format(uri) in SIZED_BY_USER:
                    options["sensor_size"] = self.sensor_size
            source = open_source(uri, **options)
        except DvsstreamError:
            raise
        except (OSError, ValueError, TypeError) as exc:
            raise SourceError(f"{uri}: cannot be opened ({exc})") from None
        start_s, self.start_s = self.start_s, None
        try:
            start_source_at(source, start_s, uri)
        except BaseException:
            source.close()
            raise
        return source

    def stop(self) -> None:
        """Stop the pipeline (and any recording); the views keep their last image."""
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline = None

    def close(self) -> None:
        """Stop, and give torch back the thread count it had before the first build."""
        self.stop()
        if self._torch_threads_before is not None:
            import torch

            torch.set_num_threads(self._torch_threads_before)
            self._torch_threads_before = None

    def _limit_torch_threads(self) -> None:
        import torch

        if self._torch_threads_before is None:
            self._torch_threads_before = torch.get_num_threads()
        want = min(self._torch_threads_before, gui_torch_threads())
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)

    # ------------------------------------------------------------------ playback
    @property
    def file_source(self):
        """The :class:`~dvsstream.io.base.FileSource` being replayed, or None."""
        from dvsstream.io.base import FileSource

        src = self.pipeline.source if self.pipeline is not None else None
        return src if isinstance(src, FileSource) else None

    @property
    def kind(self) -> Optional[str]:
        return source_kind(self.source_uri) if self.source_uri else None

    def time_range(self) -> Optional[tuple[int, int]]:
        """``(start_us, end_us)`` of the recording being replayed, else None."""
        src = self.file_source
        if src is None or src.start_time_us is None or src.end_time_us is None:
            return None
        return int(src.start_time_us), int(src.end_time_us)

    def replay_position_s(self) -> Optional[float]:
        """Seconds after the first event of the recording being replayed that the stream
        has reached (within the recording when it loops); None for live sources, before
        the first packet, or at its very end (a rebuild then starts it again)."""
        rng = self.time_range()
        if rng is None or self.pipeline is None:
            return None
        t = self.pipeline.snapshot_stats().stream_time_us
        if t is None:
            return None
        span, offset = rng[1] - rng[0], int(t) - rng[0]
        if span > 0 and offset > span:
            offset %= span
        return offset / 1e6 if 0 < offset < span else None

    def keep_position(self) -> None:
        """The next :meth:`build` of the same recording continues where the replay is now
        (a new model or region need not restart the file); nothing for live sources."""
        self.start_s = self.replay_position_s()

    def set_paused(self, paused: bool) -> None:
        """Recordings: hold the replay (stream time stops). Live sources cannot wait (a
        camera keeps sending): the stream goes on and only the display is held
        (:attr:`frozen`)."""
        if self.pipeline is None:
            return
        if self.file_source is not None:
            self.pipeline.pause(paused)
            self.frozen = False
        else:
            self.frozen = bool(paused)

    @property
    def paused(self) -> bool:
        return self.pipeline is not None and (self.pipeline.paused or self.frozen)

    def set_speed(self, speed: float) -> None:
        """Replay pace of recordings (1 = real time); takes effect at once."""
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.settings.speed = float(speed)
        src = self.file_source
        if src is not None:
            src.speed = float(speed)  # the pipeline's lag clock follows the new pace

    def set_filter(self, text: str) -> str:
        """Filter the events with ``text`` (``--filter`` syntax; ``none``: no filter) from
        the next packet on; returns its canonical text. A bad one raises
        :class:`DvsstreamError` and changes nothing."""
        from dvsstream.filters import parse_filter

        spec = parse_filter(text, option="noise filter")
        self.settings.noise_filter = str(spec)
        if self.pipeline is not None:
            self.pipeline.set_filter(spec)
        return str(spec)

    def set_loop(self, loop: bool) -> None:
        self.settings.loop = bool(loop)
        src = self.file_source
        if src is not None:
            src.loop = bool(loop)

    def seek(self, t_us: int) -> None:
        """Recordings: continue at stream time ``t_us`` (clamped to the recording)."""
        rng = self.time_range()
        if rng is None or self.pipeline is None:
            raise DvsstreamError("only recordings can seek")
        self.pipeline.seek(int(min(max(t_us, rng[0]), rng[1])))

    # ------------------------------------------------------------------ outputs
    def output_dir(self) -> Path:
        path = Path(self.settings.output_dir).expanduser() if self.settings.output_dir else Path.home() / "dvsstream"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def output_path(self, prefix: str, suffix: str) -> Path:
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        path = self.output_dir() / f"{prefix}_{stamp}{suffix}"
        n = 1
        while path.exists():
            path = self.output_dir() / f"{prefix}_{stamp}_{n}{suffix}"
            n += 1
        return path

    def start_recording(self, path=None) -> Path:
        """Record every packet from now on to HDF5 (default: a new file in the output folder)."""
        if self.pipeline is None:
            raise DvsstreamError("nothing to record: no stream is running")
        path = Path(path) if path is not None else self.output_path("recording", ".h5")
        try:
            self.pipeline.start_recording(path, overwrite=True)
        except DvsstreamError:
            raise
        except OSError as exc:
            raise DvsstreamError(f"{path}: cannot record ({exc.strerror or exc})") from None
        return path

    def stop_recording(self) -> Optional[str]:
        return self.pipeline.stop_recording() if self.pipeline is not None else None

    @property
    def recording(self) -> bool:
        return self.pipeline is not None and self.pipeline.recording
