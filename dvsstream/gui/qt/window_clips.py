"""The window's outputs: recording the stream to HDF5, screenshots, and clips of the
last :data:`CLIP_SECONDS` shown (saved in a thread; on close with ``--export-clip``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

from PySide6 import QtWidgets

from dvsstream.errors import DvsstreamError
from dvsstream.render.clip import ClipFrame

__all__ = ["CLIP_SECONDS", "ClipsMixin"]

#: "Save clip" keeps this many seconds of stream time
CLIP_SECONDS = 10.0


class ClipsMixin:
    """:class:`~dvsstream.gui.qt.window.MainWindow`'s recordings, screenshots and clips
    (its :attr:`clip_buffer` holds what was shown)."""

    def _show_output_dir(self) -> None:
        out = self.settings.output_dir or str(Path.home() / "dvsstream")
        self.output_label.setText(f"to {out}")

    def _keep_for_clip(self, p, image, t_us: int) -> None:
        """Offer what is on screen to the clip buffer (only when it starts a new slot): the
        whole sensor's ``image`` with the model's region outlined, and the standing note."""
        if self.clip_buffer.due(t_us):
            self.clip_buffer.push(ClipFrame.from_prediction(
                image, t_us, p.class_names, self._last_pred, self.attention.head_dim, self.settings.overlay,
                region=p.binning.roi, note=self.predictions.domain_note))

    def _record_clicked(self, checked: bool) -> None:
        if checked != self.controller.recording:
            self.toggle_recording()
        self._update_record_button()

    def toggle_recording(self) -> Optional[Path]:
        """Start recording to a new HDF5 file in the output folder, or stop."""
        try:
            if self.controller.recording:
                path = self.controller.stop_recording()
                self.show_message(f"recorded to {path}")
                return Path(path) if path else None
            path = self.controller.start_recording()
            self.show_message(f"recording to {path} …")
            return path
        finally:
            self._update_record_button()

    def _update_record_button(self) -> None:
        on = self.controller.recording
        self.record_button.blockSignals(True)
        self.record_button.setChecked(on)
        self.record_button.setText("■ Stop recording" if on else "● Record")
        self.record_button.blockSignals(False)

    def save_screenshot(self, path: Optional[str | Path] = None) -> Path:
        """Save the window as PNG (default: a new file in the output folder)."""
        path = Path(path) if path is not None else self.controller.output_path("screenshot", ".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.grab().save(str(path), "PNG"):
            raise DvsstreamError(f"{path}: the screenshot could not be written")
        self.show_message(f"screenshot saved to {path}")
        return path

    def save_clip(self, path: Optional[str | Path] = None, overwrite: bool = False) -> Path:
        """Write the last :data:`CLIP_SECONDS` shown as MP4 or GIF (by the suffix; default:
        a new MP4 in the output folder) and return its path; blocks (~0.2 s per second)."""
        path = Path(path) if path is not None else self.controller.output_path("clip", ".mp4")
        n = self.clip_buffer.export(path, overwrite=overwrite)
        self.show_message(f"clip saved to {path} ({n} frames, {n / self.clip_buffer.fps:.1f} s)")
        return path

    def save_clip_in_background(self, path: Optional[str | Path] = None) -> None:
        """:meth:`save_clip` in a thread (the window keeps drawing); the status bar
        says when it is written, or the banner why not."""
        if self._clip_thread is not None and self._clip_thread.is_alive():
            self.show_message("a clip is being saved …")
            return
        path = Path(path) if path is not None else self.controller.output_path("clip", ".mp4")
        frames = len(self.clip_buffer)
        self.show_message(f"saving {frames / self.clip_buffer.fps:.1f} s to {path} …")

        def work() -> None:
            try:
                self.clip_buffer.export(path)
                self.clip_done.emit(str(path), "")
            except Exception as exc:  # reported in the banner by the GUI thread
                self.clip_done.emit(str(path), str(exc))

        self._clip_thread = threading.Thread(target=work, name="dvsstream-clip", daemon=True)
        self._clip_thread.start()

    def _clip_finished(self, path: str, error: str) -> None:
        if error:
            self.show_error(error, "The clip could not be saved", "Choose another output folder (Folder…).")
        else:
            self.show_message(f"clip saved to {path}")

    def choose_output_dir(self) -> None:
        start = self.settings.output_dir or str(Path.home())
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder for recordings and screenshots", start)
        if path:
            self.settings.output_dir = path
            self._show_output_dir()
