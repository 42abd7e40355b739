"""The window's playback: the redraw timer's :meth:`~PlaybackMixin.tick` (read the
pipeline's latest snapshot, draw what changed, never block), play / pause, speed, loop,
the seek bar and the end of the stream."""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
from PySide6 import QtCore, QtWidgets

from dvsstream.errors import DvsstreamError
from dvsstream.gui import state
from dvsstream.render import display

__all__ = ["FRAME_MS", "STATS_MS", "PlaybackMixin", "format_time"]

#: redraw period (ms): ~40 fps
FRAME_MS = 25
#: the figures in the status strip are refreshed this often (ms)
STATS_MS = 250


def format_time(us: Optional[float]) -> str:
    """Microseconds as ``mm:ss.s`` (``--:--.-`` for None)."""
    if us is None:
        return "--:--.-"
    s = max(0.0, us / 1e6)
    return f"{int(s // 60):02d}:{s % 60:04.1f}"


class PlaybackMixin:
    """:class:`~dvsstream.gui.qt.window.MainWindow`'s playback: the redraw, the Play
    button, speed and loop, and the seek bar."""

    def tick(self) -> None:
        """Read the latest snapshot and redraw what changed (never blocks)."""
        now = time.perf_counter()
        p = self.controller.pipeline
        if p is None:
            self._update_fps(now)
            if now - self._last_stats > STATS_MS / 1000:
                self._last_stats = now
                self.stats.set_rows(state.format_stats(None, self.display_fps))
            return
        if self.controller.generation != self._generation:
            self._on_built()
        snap = p.snapshot()
        image, t_end = snap["event_image"], snap["event_t_end"]
        frozen = self.controller.frozen
        new_frame = t_end != self._last_t_end and not frozen
        if new_frame:
            self._last_t_end = t_end
            self.event_view.update_events(image)
            self._frame_times.append(now)
            if self.first_frame_s is None and image is not None and image.any():
                self.first_frame_s = self.timings["first_frame"] = now - self.t_origin
                self.first_frame.emit(self.first_frame_s)
        pred = snap["prediction"]
        if pred is not None and pred is not self._last_pred and not frozen:
            self._last_pred = pred
            self._draw_prediction(p, pred)
        if new_frame and image is not None and t_end is not None:
            self._keep_for_clip(p, image, t_end - (snap["stats"].stream_start_us or 0))
        self._update_fps(now)
        if now - self._last_stats > STATS_MS / 1000:
            self._last_stats = now
            rate = pred.firing_rate if pred is not None else None
            self.stats.set_rows(state.format_stats(snap["stats"], self.display_fps, rate, self.first_frame_s))
            self._update_seek(snap["stats"].stream_time_us)
        self._check_end(p, snap)

    def _draw_prediction(self, p, pred) -> None:
        self.predictions.update_prediction(pred)
        looping = self.controller.kind == "file" and self.settings.loop
        self.history.update_history(p.recent_predictions(), self.controller.time_range() if looping else None)
        if pred.attention:
            self.attention.update_maps(display.attention_maps(pred.attention, self.attention.kind))
            if self._view_overlaps(pred):  # else (just after a loop) the heads keep the last scene
                self.attention.update_scene(display.crop_region(self.event_view.rgb, p.binning.roi,
                                                                channels_first=False))
            overlay = display.overlay_map(pred.attention) if self.settings.overlay else None
            self.event_view.update_overlay(overlay, display.overlay_levels(self.attention.head_dim))

    def _view_overlaps(self, pred) -> bool:
        """Do the events on screen overlap ``pred``'s window? Not just after the stream
        jumped back (a loop, a seek): the event view starts empty while the last window of
        the stretch before is still being drawn."""
        shown = self._last_t_end
        return isinstance(shown, (int, np.integer)) and shown >= pred.t_start

    def _update_fps(self, now: float) -> None:
        times = self._frame_times
        while times and now - times[0] > 1.0:
            times.pop(0)
        self.display_fps = float(len(times))

    def _update_seek(self, t_us: Optional[int]) -> None:
        rng = self.controller.time_range()
        if rng is None:
            self.time_label.setText(format_time(t_us) if t_us is not None else format_time(None))
            return
        if t_us is None or self._seeking:
            return
        rel = max(0, t_us - rng[0])
        self.time_label.setText(format_time(rel))
        self.seek_slider.blockSignals(True)
        self.seek_slider.setValue(int(rel // 1000))
        self.seek_slider.blockSignals(False)

    def _check_end(self, p, snap) -> None:
        err = snap["error"]
        if err is not None and err is not self._shown_error:
            self._shown_error = err
            text = str(err) if isinstance(err, DvsstreamError) else f"{type(err).__name__}: {err}"
            self.show_error(text, "The stream stopped",
                            "Press Play to start it again, or open another source (Source).")
        elif snap["finished"] and err is None and not self._shown_end:
            self._shown_end = True
            warnings = getattr(getattr(p.source, "stats", None), "warnings", None) or []
            ends = [w for w in warnings if "stream ended" in w]
            if ends:
                self.show_error(ends[-1])
            else:
                self.show_message("end of the stream — press Play to start again")
            self._update_play_button()

    def toggle_pause(self) -> None:
        p = self.controller.pipeline
        if p is None or p.finished:
            self.build(self.controller.source_uri or self._initial_source)
            return
        self.set_paused(not self.controller.paused)

    def set_paused(self, paused: bool) -> None:
        self.controller.set_paused(paused)
        self._update_play_button()
        if paused:
            self.show_message("paused" if not self.controller.frozen else
                              "display held (a live stream cannot wait; it goes on)")
        else:
            self.show_message(f"playing {state.source_title(self.controller.source_uri or '')}")

    def _update_play_button(self) -> None:
        p = self.controller.pipeline
        if p is None or p.finished:
            self.play_button.setText("▶ Play")
        else:
            self.play_button.setText("▶ Play" if self.controller.paused else "❚❚ Pause")

    def _speed_changed(self, value: float) -> None:
        self.controller.set_speed(value)

    def _loop_changed(self, on: bool) -> None:
        self.controller.set_loop(on)

    def seek_relative(self, seconds: float) -> None:
        p = self.controller.pipeline
        if p is None or self.controller.time_range() is None:
            return
        now = p.snapshot_stats().stream_time_us or self.controller.time_range()[0]
        self.controller.seek(int(now + seconds * 1e6))

    def _slider_moved(self, value: int) -> None:
        self.time_label.setText(format_time(value * 1000))

    def _slider_released(self) -> None:
        self._seeking = False
        rng = self.controller.time_range()
        if rng is not None:
            self.controller.seek(rng[0] + self.seek_slider.value() * 1000)

    def _slider_action(self, action: int) -> None:
        if action in (QtWidgets.QAbstractSlider.SliderAction.SliderPageStepAdd,
                      QtWidgets.QAbstractSlider.SliderAction.SliderPageStepSub):
            QtCore.QTimer.singleShot(0, self._guarded(self._slider_released))
