"""The window's model: the Model panel (checkpoint, window / hop / T, mode), the region
of the sensor the model sees, the attention kind and the overlay over the events."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6 import QtWidgets

from dvsstream.errors import DvsstreamError
from dvsstream.gui.controller import HISTORY_SECONDS
from dvsstream.render import display

__all__ = ["APPLY_DELAY_MS", "ModelMixin"]

#: window / hop / T edits are applied after this quiet time (ms)
APPLY_DELAY_MS = 500


class ModelMixin:
    """:class:`~dvsstream.gui.qt.window.MainWindow`'s model: what the Model panel, the
    status bar and the attention grid show, and the slots that change the model, its
    binning, its region or the attention drawn."""

    def _show_no_model(self) -> None:
        for spin in (self.window_spin, self.hop_spin, self.t_spin):
            spin.blockSignals(True)
            spin.setSpecialValueText("–")
            spin.setValue(spin.minimum())
            spin.blockSignals(False)
            spin.setEnabled(False)
        self.attention.configure(0, 0, 16, self.settings.attention_kind)
        self.predictions.set_classes([])
        self.predictions.set_domain_note(None)
        self.history.set_classes([])
        self.checkpoint_label.setText("none (the checkpoint did not load)")
        self.model_label.setText("no model")

    def _show_model(self, loaded, b, class_names) -> None:
        """The Model panel, the status bar, the attention grid and the class lists show
        the model and binning in use."""
        from dvsstream.models import shipped_checkpoint

        cfg = loaded.model.config
        for spin, value in ((self.window_spin, b.window_us // 1000), (self.hop_spin, b.hop_us // 1000),
                            (self.t_spin, b.n_bins)):
            spin.blockSignals(True)
            spin.setSpecialValueText("")
            spin.setEnabled(True)
            spin.setValue(int(value))
            spin.blockSignals(False)
        self.attention.configure(cfg.depth, cfg.heads, cfg.dim // cfg.heads, self.settings.attention_kind,
                                 grid=tuple(loaded.model.grid))
        self.event_view.set_patch_grid(tuple(loaded.model.grid))
        self.predictions.set_classes(class_names)
        self.history.set_classes(class_names, hop_s=b.hop_us / 1e6, history_s=HISTORY_SECONDS)
        shipped = Path(loaded.checkpoint).resolve() == Path(shipped_checkpoint()).resolve()
        self.checkpoint_label.setText("shipped gesture model" if shipped else Path(loaded.checkpoint).name)
        self.checkpoint_label.setToolTip(loaded.checkpoint)
        self.model_label.setText(f"{cfg.name or cfg.variant} · {cfg.img_size[1]}×{cfg.img_size[0]} · "
                                 f"T={b.n_bins} · {b.window_us / 1000:g}/{b.hop_us / 1000:g} ms · "
                                 f"{self.settings.mode} · {loaded.device}")

    def _binning_edited(self, *_):
        self._apply_timer.start(APPLY_DELAY_MS)

    def apply_binning(self) -> bool:
        """Rebuild with the window / hop / T in the spin boxes (when they changed)."""
        self._apply_timer.stop()
        s = self.settings
        old = (s.window_ms, s.hop_ms, s.T)
        s.window_ms, s.hop_ms, s.T = self.window_spin.value(), self.hop_spin.value(), self.t_spin.value()
        p = self.controller.pipeline
        if p is not None and (p.binning.window_us, p.binning.hop_us, p.binning.n_bins) == (
                s.window_ms * 1000, s.hop_ms * 1000, s.T):
            return True
        try:
            self.controller.check_binning()
        except (DvsstreamError, ValueError) as exc:
            s.window_ms, s.hop_ms, s.T = old
            self.show_error(str(exc))
            return False
        return self.build(self.controller.source_uri)

    def _mode_changed(self, index: int) -> None:
        mode = self.mode_combo.itemData(index)
        if mode != self.settings.mode:
            self.settings.mode = mode
            if self.controller.pipeline is not None:
                self.build(self.controller.source_uri)

    def choose_checkpoint(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Choose a checkpoint", str(Path.home()),
                                                        "PyTorch checkpoints (*.pt *.pth *.tar);;All files (*)")
        if path:
            self.set_checkpoint(path)

    def set_checkpoint(self, path: Optional[str]) -> bool:
        """Switch model (None: the shipped one); window / hop / T go back to its defaults.
        A recording goes on from where it is."""
        s = self.settings
        old = (s.checkpoint, s.window_ms, s.hop_ms, s.T)
        s.window_ms = s.hop_ms = s.T = None
        self.controller.keep_position()
        if self.build(self.controller.source_uri or self._initial_source, checkpoint=path):
            return True
        self.controller.start_s = None
        s.checkpoint, s.window_ms, s.hop_ms, s.T = old
        return False

    def _region_dragged(self, item) -> None:
        """The outline was moved or resized: the model sees the region under it from now on
        (whole pixels, the model input's aspect ratio, inside the sensor: ``fit_region``)."""
        from dvsstream.gui.qt.event_view import fit_region

        p = self.controller.pipeline
        sensor = self.event_view.sensor
        if p is None or sensor is None:
            return
        (x, y), (w, h) = item.pos(), item.size()
        roi = fit_region(x, y, w, h, sensor, p.binning.frame_size(sensor))
        if roi == p.binning.roi:
            self.event_view.set_region(roi)  # snap the outline back onto the region in use
            return
        self.set_region(roi)

    def set_region(self, roi: Optional[tuple[int, int, int, int]]) -> bool:
        """The region of the sensor the model sees (None: the default for the source);
        rebuilds the pipeline (a recording goes on from where it is), or says why not and
        keeps the old region."""
        old = self.controller.roi
        self.controller.roi = tuple(roi) if roi is not None else None
        self.controller.keep_position()
        if self.build(self.controller.source_uri):
            return True
        self.controller.start_s = None
        self.controller.roi = old
        if self.controller.pipeline is not None:
            self.event_view.set_region(self.controller.pipeline.binning.roi)
        return False

    def _kind_changed(self, index: int) -> None:
        self.set_attention_kind(self.kind_combo.itemData(index))

    def set_attention_kind(self, kind: str) -> None:
        self.settings.attention_kind = kind
        idx = self.kind_combo.findData(kind)
        if idx != self.kind_combo.currentIndex():
            self.kind_combo.blockSignals(True)
            self.kind_combo.setCurrentIndex(idx)
            self.kind_combo.blockSignals(False)
        self.attention.set_kind(kind)
        if self._last_pred is not None and self._last_pred.attention:
            self.attention.update_maps(display.attention_maps(self._last_pred.attention, kind))

    def toggle_attention_kind(self) -> None:
        self.set_attention_kind("matrix" if self.settings.attention_kind == "spatial" else "spatial")

    def _filter_entered(self, *_) -> None:
        self.set_noise_filter(self.filter_combo.currentText())

    def set_noise_filter(self, text: str) -> bool:
        """Filter the events with ``text`` (``--filter`` syntax) from now on; a bad one is
        refused with its reason and the filter in use stays (the box shows it again)."""
        try:
            shown = self.controller.set_filter(text)
        except DvsstreamError as exc:
            self.show_error(str(exc), "Noise filter")
            shown, ok = self.settings.noise_filter, False
        else:
            ok = True
        self.filter_combo.setEditText(shown)
        return ok

    def _overlay_changed(self, on: bool) -> None:
        self.settings.overlay = bool(on)
        if not on:
            self.event_view.update_overlay(None, (0, 1))
        elif self._last_pred is not None:
            self._draw_prediction(self.controller.pipeline, self._last_pred)
