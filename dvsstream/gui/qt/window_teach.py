"""The window's Teach panel at work: record N seconds of a class from the current source
(camera, network stream or file) into the teach folder, list and remove classes, train in
the background while the stream runs, and swap the new model in when it is done.
Failures go to the red banner."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Optional

from PySide6 import QtCore, QtWidgets

from dvsstream.errors import DvsstreamError
from dvsstream.gui.qt.teach_panel import TeachPanel
from dvsstream.gui.teach import TeachFolder, TeachJob, check_class_name

__all__ = ["TeachMixin", "teach_in_background"]

#: how often the panel looks at a recording's countdown and the training's progress (ms)
POLL_MS = 200


def teach_in_background(root: Path, out: Path, progress, **options: Any) -> str:
    """What the Train button runs in its thread: ``dvsstream teach ROOT --out OUT`` with
    the defaults (``options``: other :class:`~dvsstream.training.teach.TeachConfig`
    fields); ``progress(fraction, line)`` follows its epochs. Returns the checkpoint."""
    from dvsstream.training.teach import TeachConfig, teach

    def say(line: str) -> None:
        m = _EPOCH.search(line)
        if m:
            progress(0.1 + 0.85 * int(m.group(1)) / max(1, int(m.group(2))), line.strip())
        elif line.strip():
            progress(0.05, line.strip())

    result = teach(TeachConfig(root=root, out=out, progress=False, **options), say=say)
    return str(result.checkpoint)


#: an epoch line of the training log ("epoch   3/15 ...")
_EPOCH = re.compile(r"epoch\s+(\d+)/(\d+)")


class TeachMixin:
    """:class:`~dvsstream.gui.qt.window.MainWindow`'s Teach panel (see the module docstring)."""

    def _build_teach(self) -> TeachPanel:
        self.teach = TeachPanel()
        self.teach_folder = TeachFolder(Path(self.controller.output_dir()) / "teach")
        self._teach_job: Optional[TeachJob] = None
        self._teach_stop_at: Optional[float] = None
        self._teach_recording: Optional[tuple[str, Path]] = None
        t = self.teach
        t.folder_button.clicked.connect(self._guarded(self.choose_teach_folder))
        t.record_button.clicked.connect(self._guarded(self._teach_record_clicked))
        t.remove_button.clicked.connect(self._guarded(self.remove_teach_class))
        t.train_button.clicked.connect(self._guarded(lambda: self.train_taught()))
        self._teach_timer = QtCore.QTimer(self)
        self._teach_timer.timeout.connect(self._guarded(self._teach_poll))
        self._teach_timer.start(POLL_MS)
        self.refresh_teach()
        return t

    # ---------------------------------------------------------------- the folder
    def set_teach_folder(self, root) -> None:
        self.teach_folder = TeachFolder(root)
        self.refresh_teach()

    def show_teach(self) -> None:
        """Scroll the control column to the Teach panel."""
        self.controls_scroll.ensureWidgetVisible(self.teach, 0, 0)

    def choose_teach_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder of class recordings",
                                                          str(self.teach_folder.root))
        if path:
            self.set_teach_folder(path)

    def refresh_teach(self) -> None:
        classes = self.teach_folder.classes()
        self.teach.folder_label.setText(str(self.teach_folder.root))
        self.teach.folder_label.setToolTip(str(self.teach_folder.root))
        self.teach.show_classes([(c.name, len(c.files), c.seconds) for c in classes])
        busy = self._teach_job is not None and not self._teach_job.done
        self.teach.train_button.setEnabled(not busy and len(classes) >= 2)
        if not busy and self._teach_recording is None:
            n = len(classes)
            self.teach.show_progress(None, "record at least 2 classes, then Train" if n < 2 else
                                     f"{n} classes ready: Train teaches a model in the background")

    def remove_teach_class(self) -> None:
        name = self.teach.selected_class()
        if name is None:
            raise DvsstreamError("select a class in the list first")
        aside = self.teach_folder.remove_class(name)
        self.show_message(f"class {name!r} removed (its recordings moved to {aside})")
        self.refresh_teach()

    # ---------------------------------------------------------------- recording
    def _teach_record_clicked(self, checked: bool) -> None:
        if checked:
            self.record_teach_class(self.teach.name_edit.text(), self.teach.seconds_spin.value())
        else:
            self.stop_teach_recording()

    def record_teach_class(self, name: str, seconds: float) -> Path:
        """Record ``seconds`` of the current source as class ``name`` (stopped by the poll)."""
        name = check_class_name(name)
        if self.controller.recording:
            raise DvsstreamError("a recording is running already; stop it first")
        path = self.teach_folder.new_recording(name)
        try:
            self.controller.start_recording(path)
        except DvsstreamError:
            self.teach.record_button.setChecked(False)
            raise
        self._teach_recording = (name, path)
        self._teach_stop_at = time.monotonic() + float(seconds)
        self.teach.record_button.setChecked(True)
        return path

    def stop_teach_recording(self) -> Optional[str]:
        if self._teach_recording is None:
            return None
        name, _ = self._teach_recording
        written = self.controller.stop_recording()
        self._teach_recording, self._teach_stop_at = None, None
        self.teach.record_button.setChecked(False)
        self.teach.record_button.setText("Record")
        self.show_message(f"recorded class {name!r}: {written}")
        self.refresh_teach()
        return written

    # ---------------------------------------------------------------- training
    def train_taught(self, out: Optional[Path] = None, runner: Any = None) -> TeachJob:
        """Start teaching the folder's classes in the background (``runner(root, out,
        progress)``: default :func:`teach_in_background`; ``out``: default a new
        ``taught-<folder>-<time>.pt`` in the window's output folder, with its report
        beside it); the model is swapped in when done."""
        if self._teach_job is not None and not self._teach_job.done:
            raise DvsstreamError("a model is being taught already; wait for it to finish")
        if self._teach_recording is not None:
            self.stop_teach_recording()
        root = self.teach_folder.root
        if out is None:  # beside the window's other outputs: never inside the class folders
            out = Path(self.controller.output_dir()) / f"taught-{root.name}-{time.strftime('%Y%m%d-%H%M%S')}.pt"
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        run = runner or teach_in_background
        self._teach_job = TeachJob(lambda progress: run(root, out, progress)).start()
        self.teach.train_button.setEnabled(False)
        self.teach.show_progress(0.0, "teaching…")
        return self._teach_job

    def _teach_poll(self) -> None:
        if self._teach_stop_at is not None:
            left = self._teach_stop_at - time.monotonic()
            if left <= 0:
                self.stop_teach_recording()
            else:
                self.teach.record_button.setText(f"Recording {self._teach_recording[0]}… {left:.0f} s")
        job = self._teach_job
        if job is None:
            return
        if not job.done:
            self.teach.show_progress(job.progress, job.text)
            return
        self._teach_job = None
        self.refresh_teach()
        if job.error:
            self.teach.show_progress(None, "teaching failed (see the banner)")
            self.show_error(job.error, "Teaching failed")
            return
        if self.set_checkpoint(str(job.result)):
            self.teach.show_progress(1.0, f"taught: {Path(str(job.result)).name} is the model now")
            self.show_message(f"the model taught from {self.teach_folder.root} is running: {job.result}")
