"""The window's source and pipeline lifecycle: the first build (a remembered source or
checkpoint that no longer loads replaced by the default, with a note), every rebuild
and what a failed one shows, and the Source panel (recordings, cameras, network)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

from PySide6 import QtCore, QtWidgets

from dvsstream.errors import DvsstreamError
from dvsstream.gui import state
from dvsstream.gui.qt.window_playback import FRAME_MS, format_time

__all__ = ["SourceMixin"]


class SourceMixin:
    """:class:`~dvsstream.gui.qt.window.MainWindow`'s source: :meth:`start`,
    :meth:`build`, :meth:`open_source` and the Source panel's slots."""

    def _fill_sources(self) -> None:
        combo = self.source_combo
        combo.blockSignals(True)
        combo.clear()
        seen = set()

        def add(text, uri):
            if uri not in seen:
                seen.add(uri)
                combo.addItem(text, uri)

        import dvsstream

        recordings = Path(dvsstream.__file__).resolve().parents[1] / "recordings"
        if recordings.is_dir():
            for path in sorted(recordings.glob("*.h5")):
                add(path.name, str(path))
        for uri in self.settings.recent_sources:
            if state.source_kind(uri) != "file" or Path(uri).is_file():  # a moved file is not offered
                add(state.source_title(uri), uri)
        add("synthetic rotating bar", "synthetic:")
        for serial, model in self._cameras:
            add(f"camera {model} {serial}", f"camera:{serial}")
        add("first camera", "camera:")
        current = self.controller.source_uri
        if current is not None:
            if current not in seen:
                add(state.source_title(current), current)
            combo.setCurrentIndex(combo.findData(current))
        if self._attempted is not None and current is None:
            combo.setEditText(self._attempted)  # what was asked for, to correct it
        combo.lineEdit().setCursorPosition(0)  # a long name shows its start, not its end
        combo.setToolTip(f"{current or self._attempted or ''}\n"
                         "A recording, camera:[SERIAL], tcp://host:port or synthetic:… (Enter to open)")
        combo.blockSignals(False)

    def start(self) -> None:
        """Build the first pipeline (deferred so that the window is on screen first).
        A source or checkpoint remembered from an earlier run that no longer loads is
        replaced by the default, with a note; one given on the command line is not."""
        self.timings["start"] = time.perf_counter() - self.t_origin
        self.event_view.setFocus()  # not a text field: Space, A, Q reach the shortcuts
        remembered_ckpt = self._initial_checkpoint is ... and self.settings.checkpoint is not None
        remembered_source = self._initial_source is None and self.settings.source is not None
        self._held_lines = []
        ok = self.build(self._initial_source, self._initial_checkpoint)
        if not ok and remembered_ckpt and self._model_failed:
            self._forget("checkpoint", self.settings.checkpoint, "the shipped model")
            self.settings.checkpoint = self.settings.window_ms = self.settings.hop_ms = self.settings.T = None
            ok = self.build(self._initial_source, None)
        if not ok and remembered_source and not self._model_failed:
            self._forget("source", self.settings.source, "the shipped recording")
            self.settings.source = None
            ok = self.build(None)
        held, self._held_lines = self._held_lines, None
        for line in held:  # the failures that were not replaced by a default
            if line in self.errors:
                print(f"dvsstream gui: {line}", file=sys.stderr, flush=True)
        self.timings.setdefault("pipeline", time.perf_counter() - self.t_origin)
        self.timer.start(FRAME_MS)

    def _forget(self, what: str, value: str, instead: str) -> None:
        """The remembered ``what`` (``value``) just failed: not a failure of this run, a
        note; the caller clears the setting and builds with the default."""
        reason = self.last_error or "it failed"
        self.clear_error()
        if self._last_failure in self.errors:
            self.errors.remove(self._last_failure)
        self.show_note(f"The {what} remembered from the last session ({value}) could not be used "
                       f"({reason}); {instead} is used instead, and the setting is forgotten.")

    def build(self, source: Optional[str] = None, checkpoint: Any = ...) -> bool:
        """(Re)build the pipeline; on failure show why, keep what runs, return False."""
        ckpt = self.settings.checkpoint if checkpoint is ... else checkpoint
        self._model_failed = False
        self._build_checkpoint = ckpt
        try:
            self.controller.load_model(ckpt)
        except (DvsstreamError, ValueError) as exc:
            self._model_failed = True
            self._failed(source, str(exc), "The model could not be loaded",
                         "Choose another checkpoint (Model › Checkpoint…) or press Shipped.")
            return False
        try:
            self.controller.build(source, ckpt)
        except (DvsstreamError, ValueError) as exc:
            self._failed(source, str(exc), "The source could not be opened" if self.controller.pipeline is None
                         else "Could not switch to that source; the previous one goes on",
                         "Open another recording, camera or network address (Source), then press Play.")
            return False
        self._attempted = None
        self.clear_error()
        self._on_built()
        return True

    def _failed(self, source: Optional[str], text: str, headline: str, todo: str) -> None:
        self.show_error(text, headline, todo)
        self._attempted = source or self.settings.source or state.default_source()
        if self.controller.pipeline is None:
            self._show_without_stream(text)
        self._fill_sources()

    def _show_without_stream(self, reason: str) -> None:
        """Nothing runs: show the model in use (its classes, heads and binning) when it
        loaded, else "no model"; the event view says why there is no stream."""
        self.event_view.set_source_text(f"no stream: {reason}")
        self.event_view.clear()
        loaded = binning = None
        if not self._model_failed:
            try:
                loaded = self.controller.load_model(self._build_checkpoint)
                binning = self.controller.binning_for(loaded)
            except (DvsstreamError, ValueError):
                loaded = None
        if loaded is None:
            self._show_no_model()
        else:
            self._show_model(loaded, binning, loaded.class_names)
        self._update_play_button()

    def _on_built(self) -> None:
        c = self.controller
        p, loaded = c.pipeline, c.loaded
        b = p.binning
        self._show_model(loaded, b, p.class_names)
        self.event_view.set_sensor(p.sensor_size.width, p.sensor_size.height, window_ms=b.window_us / 1000)
        self.event_view.set_region(b.roi)
        self.event_view.update_overlay(None, (0, 1))
        self._last_pred = None
        self._last_t_end = object()
        self._shown_error = None
        self._shown_end = False
        self._generation = c.generation
        rng = c.time_range()
        self.seek_slider.setEnabled(rng is not None)
        if rng is not None:
            self.seek_slider.setRange(0, max(1, (rng[1] - rng[0]) // 1000))
            self.seek_slider.setPageStep(1000)
            self.end_label.setText(format_time(rng[1] - rng[0]))
        else:
            self.seek_slider.setRange(0, 0)
            self.end_label.setText("live")
        self.speed_spin.setEnabled(c.kind == "file")
        self.loop_check.setEnabled(c.kind == "file")
        self._update_play_button()
        self._update_record_button()
        self.setWindowTitle(f"dvsstream — {state.source_title(c.source_uri)}")
        self._fill_sources()
        camera = getattr(p.source, "camera", None)
        self.event_view.set_source_text(state.source_title(c.source_uri) + (f" · {camera}" if camera else ""))
        self.predictions.set_domain_note(state.domain_note(loaded.synthetic_only, c.kind, camera))
        self.show_message(f"playing {state.source_title(c.source_uri)}")

    def _source_chosen(self, index: int) -> None:
        uri = self.source_combo.itemData(index)
        if uri and uri != self.controller.source_uri:
            self.open_source(uri)

    def _source_typed(self) -> None:
        text = self.source_combo.currentText().strip()
        idx = self.source_combo.findText(text)
        uri = self.source_combo.itemData(idx) if idx >= 0 else text
        if uri:
            self.open_source(uri)

    def _connect_network(self) -> None:
        uri = self.network_edit.text().strip() or self.network_edit.placeholderText()
        if "://" not in uri:
            uri = f"tcp://{uri}"
        self.open_source(uri)

    def open_source(self, uri: str) -> bool:
        """Switch to another source (a bad one shows an error; the stream goes on)."""
        self.show_message(f"opening {uri} …")
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        return self.build(uri)

    def open_file_dialog(self) -> None:
        start = str(Path(self.controller.source_uri).parent) if self.controller.kind == "file" else str(Path.home())
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open an event recording", start,
            "Event recordings (*.aedat4 *.aedat *.aedat3 *.h5 *.hdf5 *.npy *.raw *.dat);;All files (*)")
        if path:
            self.open_source(path)

    def refresh_cameras(self) -> None:
        from dvsstream.io.camera import list_cameras

        self._cameras = list_cameras()
        self._fill_sources()
        if self._cameras:
            self.show_message("cameras: " + ", ".join(f"{m} {s}" for s, m in self._cameras))
        else:
            self.show_message("no iniVation camera found (dv-processing discover)")
