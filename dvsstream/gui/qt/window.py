"""The main window: controls on the left, events / attention / predictions in the
middle, a seek bar and the live figures at the bottom.

A :class:`~PySide6.QtCore.QTimer` (:data:`FRAME_MS`) reads ``pipeline.snapshot()`` and
redraws what changed into the views' existing items; the source, the binning and the
model run in the pipeline's own threads, so the GUI thread only draws. Only opening a
source or a checkpoint (fast) happens on the GUI thread.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Optional

from PySide6 import QtCore, QtGui, QtWidgets

from dvsstream.errors import DvsstreamError
from dvsstream.gui import state
from dvsstream.render import display
from dvsstream.gui.controller import HISTORY_SECONDS, Controller
from dvsstream.render.clip import ClipFrame
from dvsstream.render.writer import ClipBuffer
from dvsstream.gui.state import Settings
from dvsstream.gui.qt.controls import ControlPanel
from dvsstream.gui.qt.theme import STYLE, apply_theme
from dvsstream.gui.qt.views import AttentionGrid, ElidedLabel, EventView, HistoryStrip, PredictionPanel, StatsPanel

__all__ = ["FRAME_MS", "MainWindow", "apply_theme", "clamp_to_screen", "fit_rect"]

#: redraw period (ms): ~40 fps
FRAME_MS = 25
#: the figures in the status strip are refreshed this often (ms)
STATS_MS = 250
#: window / hop / T edits are applied after this quiet time (ms)
APPLY_DELAY_MS = 500
#: "Save clip" keeps this many seconds of stream time
CLIP_SECONDS = 10.0

def _format_time(us: Optional[float]) -> str:
    if us is None:
        return "--:--.-"
    s = max(0.0, us / 1e6)
    return f"{int(s // 60):02d}:{s % 60:04.1f}"


def _html(text: str) -> str:
    """Plain text for a rich-text label."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit_rect(want: QtCore.QRect, avail: QtCore.QRect) -> QtCore.QRect:
    """``want`` shrunk to fit ``avail`` and moved inside it."""
    width = min(want.width(), avail.width())
    height = min(want.height(), avail.height())
    x = min(max(want.x(), avail.x()), avail.x() + avail.width() - width)
    y = min(max(want.y(), avail.y()), avail.y() + avail.height() - height)
    return QtCore.QRect(x, y, width, height)


def clamp_to_screen(win: QtWidgets.QWidget, avail: QtCore.QRect) -> None:
    """Resize and move ``win`` so that its frame (title bar included) lies in ``avail``."""
    frame, inner = win.frameGeometry(), win.geometry()
    extra_w, extra_h = frame.width() - inner.width(), frame.height() - inner.height()
    want = QtCore.QRect(frame.x(), frame.y(), inner.width() + extra_w, inner.height() + extra_h)
    fitted = fit_rect(want, avail)
    if fitted != want:
        win.resize(max(1, fitted.width() - extra_w), max(1, fitted.height() - extra_h))
        win.move(fitted.x(), fitted.y())


class MainWindow(QtWidgets.QMainWindow):
    """The dvsstream desktop window.

    ``settings`` / ``settings_path``: what to start with and where to remember it
    (None: don't save). ``source`` / ``checkpoint``: override the settings for this run.
    ``t_origin``: ``time.perf_counter()`` the time to first frame is counted from.

    Attributes for tests and unattended runs: :attr:`controller`, :attr:`first_frame_s`
    (seconds from ``t_origin`` to the first drawn non-empty event frame),
    :attr:`display_fps`, :attr:`last_message` / :attr:`last_error`.
    """

    first_frame = QtCore.Signal(float)
    clip_done = QtCore.Signal(str, str)  # path, error ("" when saved)

    def __init__(
        self,
        settings: Optional[Settings] = None,
        settings_path: Optional[str | Path] = None,
        *,
        source: Optional[str] = None,
        checkpoint: Optional[str] = None,
        device: Optional[str] = None,
        deterministic: bool = False,
        t_origin: Optional[float] = None,
        autostart: bool = True,
        roi: Optional[tuple[int, int, int, int]] = None,
        resize: Optional[tuple[int, int]] = None,
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.settings_path = settings_path
        # what the command line asked for: saved in the settings only once it has loaded
        self._initial_source = source
        self._initial_checkpoint: Any = checkpoint if checkpoint is not None else ...
        if checkpoint is not None and checkpoint != self.settings.checkpoint:
            self.settings.window_ms = self.settings.hop_ms = self.settings.T = None
        self.controller = Controller(self.settings, device=device, deterministic=deterministic)
        self.controller.roi, self.controller.resize = roi, resize
        self.t_origin = t_origin if t_origin is not None else time.perf_counter()
        self.first_frame_s: Optional[float] = None
        #: seconds from ``t_origin``: "window" (built), "start" (event loop running),
        #: "pipeline" (first pipeline started), "first_frame"
        self.timings: dict[str, float] = {}
        self.display_fps = 0.0
        self.last_message = ""
        self.last_error: Optional[str] = None
        #: every failure shown in the banner this session (unattended runs exit 2)
        self.errors: list[str] = []
        #: notes shown (stale settings replaced by the defaults, ...)
        self.notes: list[str] = []
        self._generation = -1
        self._last_t_end: Any = object()
        self._last_pred = None
        self._shown_error = None
        self._shown_end = False
        self._frame_times: list[float] = []
        self._last_stats = 0.0
        self._seeking = False
        self._cameras: list[tuple[str, str]] = []
        self._attempted: Optional[str] = None  # a source that failed to open
        self._model_failed = False  # the last build failed on the checkpoint
        self._last_failure: Optional[str] = None  # the last line shown in the banner
        self._held_lines: Optional[list[str]] = None  # stderr lines held back during start()
        self._build_checkpoint: Optional[str] = None  # the checkpoint the last build asked for
        #: the last :data:`CLIP_SECONDS` of what the window showed, for "Save clip"
        self.clip_buffer = ClipBuffer(seconds=CLIP_SECONDS)
        #: save a clip there when the window closes (``dvsstream gui --export-clip``)
        self.export_clip_on_close: Optional[Path] = None
        self._clip_thread: Optional[threading.Thread] = None

        self.setWindowTitle("dvsstream")
        self.setStyleSheet(STYLE)
        self._build_ui()
        self._build_actions()
        self._restore_controls()
        self._place_on_screen()

        self.clip_done.connect(self._clip_finished)
        self.event_view.region_item.sigRegionChangeFinished.connect(self._guarded(self._region_dragged))
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._guarded(self.tick))
        self._apply_timer = QtCore.QTimer(self)
        self._apply_timer.setSingleShot(True)
        self._apply_timer.timeout.connect(self._guarded(self.apply_binning))
        self.timings["window"] = time.perf_counter() - self.t_origin
        if autostart:
            QtCore.QTimer.singleShot(0, self._guarded(self.start))

    # ================================================================== UI
    def _build_ui(self) -> None:
        central = QtWidgets.QWidget()
        outer = QtWidgets.QHBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 4)
        outer.setSpacing(6)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(self._build_controls())
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedWidth(scroll.widget().width() + 14)
        self.controls_scroll = scroll
        outer.addWidget(scroll)

        main = QtWidgets.QVBoxLayout()
        main.setSpacing(4)
        self.error_banner, self.error_text = self._banner("errorBanner", "⚠")
        self.note_banner, self.note_text = self._banner("noteBanner", "ℹ")
        main.addWidget(self.error_banner)
        main.addWidget(self.note_banner)

        self.event_view = EventView()
        self.attention = AttentionGrid()
        self.predictions = PredictionPanel()
        self.history = HistoryStrip()
        self.stats = StatsPanel()
        self.top_split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        for view in (self.event_view, self.attention, self.predictions):
            self.top_split.addWidget(view.frame)
        self.top_split.setStretchFactor(0, 3)
        self.top_split.setStretchFactor(1, 3)
        self.top_split.setStretchFactor(2, 2)
        self.bottom_split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.bottom_split.addWidget(self.history.frame)
        self.bottom_split.addWidget(self.stats)
        self.bottom_split.setStretchFactor(0, 3)
        self.bottom_split.setStretchFactor(1, 1)
        self.main_split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.main_split.addWidget(self.top_split)
        self.main_split.addWidget(self.bottom_split)
        self.main_split.setStretchFactor(0, 3)
        self.main_split.setStretchFactor(1, 2)
        for split in (self.top_split, self.bottom_split, self.main_split):
            split.setChildrenCollapsible(False)
            split.setHandleWidth(6)
        for view in (self.event_view, self.attention):
            view.frame.setMinimumSize(200, 200)
        self.predictions.frame.setMinimumWidth(250)
        self.stats.setMinimumWidth(290)
        self.history.frame.setMinimumHeight(140)
        main.addWidget(self.main_split, 1)
        main.addLayout(self._build_seek_bar())
        outer.addLayout(main, 1)
        self.setCentralWidget(central)

        self.message = ElidedLabel("")
        self.message.setObjectName("message")
        self.statusBar().addWidget(self.message, 1)
        self.model_label = ElidedLabel("")
        self.model_label.setStyleSheet("color:#7d8796")
        self.model_label.setMinimumWidth(200)
        self.statusBar().addPermanentWidget(self.model_label, 1)
        self.stats.set_rows(state.format_stats(None))

    def _banner(self, name: str, icon: str) -> tuple[QtWidgets.QFrame, QtWidgets.QLabel]:
        """A hidden strip above the views: an icon, a wrapped message, a close button."""
        frame = QtWidgets.QFrame()
        frame.setObjectName(name)
        lay = QtWidgets.QHBoxLayout(frame)
        lay.setContentsMargins(8, 4, 4, 4)
        mark = QtWidgets.QLabel(icon)
        mark.setStyleSheet("font-size: 14pt")
        text = QtWidgets.QLabel("")
        text.setWordWrap(True)
        text.setTextFormat(QtCore.Qt.TextFormat.RichText)
        text.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QtWidgets.QPushButton("✕")
        close.setToolTip("Hide this message")
        close.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        close.clicked.connect(frame.hide)
        lay.addWidget(mark, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        lay.addWidget(text, 1)
        lay.addWidget(close, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        frame.setVisible(False)
        return frame, text

    def _build_seek_bar(self) -> QtWidgets.QHBoxLayout:
        seek = QtWidgets.QHBoxLayout()
        self.time_label = QtWidgets.QLabel(_format_time(None))
        self.time_label.setObjectName("time")
        self.seek_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.seek_slider.setEnabled(False)
        self.seek_slider.setToolTip("Seek in the recording (Left / Right: ±1 s)")
        self.seek_slider.sliderPressed.connect(lambda: setattr(self, "_seeking", True))
        self.seek_slider.sliderMoved.connect(self._slider_moved)
        self.seek_slider.sliderReleased.connect(self._guarded(self._slider_released))
        self.seek_slider.actionTriggered.connect(self._slider_action)
        self.end_label = QtWidgets.QLabel(_format_time(None))
        self.end_label.setObjectName("time")
        seek.addWidget(self.time_label)
        seek.addWidget(self.seek_slider, 1)
        seek.addWidget(self.end_label)
        return seek

    def _place_on_screen(self) -> None:
        """The remembered geometry, or 1560x940; either clamped to the screen's available
        area (a window larger than a 1280x720 screen opened cut off)."""
        restored = False
        if self.settings.geometry:
            try:
                restored = self.restoreGeometry(QtCore.QByteArray.fromHex(self.settings.geometry.encode("ascii")))
            except (ValueError, TypeError):
                restored = False
        if not restored:
            self.resize(1560, 940)
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        if screen is not None:
            clamp_to_screen(self, screen.availableGeometry())

    def _build_controls(self) -> QtWidgets.QWidget:
        """The control column (:class:`~dvsstream.gui.qt.controls.ControlPanel`); its
        widgets become attributes of the window and are connected here."""
        panel = ControlPanel(CLIP_SECONDS)
        for name in ControlPanel.WIDGETS:
            setattr(self, name, getattr(panel, name))
        self.source_combo.activated.connect(self._guarded(self._source_chosen))
        self.source_combo.lineEdit().returnPressed.connect(self._guarded(self._source_typed))
        self.open_button.clicked.connect(self._guarded(self.open_file_dialog))
        self.cameras_button.clicked.connect(self._guarded(self.refresh_cameras))
        self.network_edit.returnPressed.connect(self._guarded(self._connect_network))
        self.connect_button.clicked.connect(self._guarded(self._connect_network))
        self.play_button.clicked.connect(self._guarded(self.toggle_pause))
        self.speed_spin.valueChanged.connect(self._guarded(self._speed_changed))
        self.loop_check.toggled.connect(self._guarded(self._loop_changed))
        self.checkpoint_button.clicked.connect(self._guarded(self.choose_checkpoint))
        self.shipped_button.clicked.connect(self._guarded(lambda: self.set_checkpoint(None)))
        for spin in (self.window_spin, self.hop_spin, self.t_spin):
            spin.valueChanged.connect(self._binning_edited)
        self.mode_combo.currentIndexChanged.connect(self._guarded(self._mode_changed))
        self.kind_combo.currentIndexChanged.connect(self._guarded(self._kind_changed))
        self.overlay_check.toggled.connect(self._guarded(self._overlay_changed))
        self.record_button.clicked.connect(self._guarded(self._record_clicked))
        self.screenshot_button.clicked.connect(self._guarded(lambda: self.save_screenshot()))
        self.clip_button.clicked.connect(self._guarded(lambda: self.save_clip_in_background()))
        self.output_button.clicked.connect(self._guarded(self.choose_output_dir))
        return panel

    def _build_actions(self) -> None:
        def action(key, slot, text):
            act = QtGui.QAction(text, self)
            act.setShortcut(QtGui.QKeySequence(key))
            act.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
            act.triggered.connect(self._guarded(slot))
            self.addAction(act)
            return act

        self.actions_by_name = {
            "play": action("Space", self.toggle_pause, "Play / pause"),
            "open": action("Ctrl+O", self.open_file_dialog, "Open recording"),
            "screenshot": action("Ctrl+S", lambda: self.save_screenshot(), "Screenshot"),
            "record": action("Ctrl+R", self.toggle_recording, "Record"),
            "clip": action("Ctrl+E", lambda: self.save_clip_in_background(), "Save clip"),
            "attention": action("A", self.toggle_attention_kind, "Attention kind"),
            "back": action("Left", lambda: self.seek_relative(-1.0), "Seek -1 s"),
            "forward": action("Right", lambda: self.seek_relative(1.0), "Seek +1 s"),
            "quit": action("Q", self.close, "Quit"),
        }

    def _restore_controls(self) -> None:
        s = self.settings
        for w in (self.speed_spin, self.loop_check, self.mode_combo, self.kind_combo, self.overlay_check):
            w.blockSignals(True)
        self.speed_spin.setValue(s.speed)
        self.loop_check.setChecked(s.loop)
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(s.mode)))
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(s.attention_kind)))
        self.overlay_check.setChecked(s.overlay)
        for w in (self.speed_spin, self.loop_check, self.mode_combo, self.kind_combo, self.overlay_check):
            w.blockSignals(False)
        self._fill_sources()
        self._show_output_dir()

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

    def _show_output_dir(self) -> None:
        out = self.settings.output_dir or str(Path.home() / "dvsstream")
        self.output_label.setText(f"to {out}")

    # ================================================================== errors
    def _guarded(self, fn):
        """Run a slot; a user-facing error becomes a message, a bug a message plus a
        traceback on stderr. The window never dies of a slot."""
        def run(*args):
            try:
                return fn(*args)
            except (DvsstreamError, ValueError) as exc:
                self.show_error(str(exc))
            except Exception as exc:  # a bug: keep the window alive, say what happened
                text = f"{type(exc).__name__}: {exc}"
                if text != self.last_error:  # a failing redraw would repeat it 40 times a second
                    traceback.print_exc(file=sys.stderr)
                    self.show_error(text)
        return run

    def show_message(self, text: str) -> None:
        self.last_message = text
        self.message.setStyleSheet("color:#aab3bf")
        self.message.setText(text)

    def show_error(self, text: str, headline: str = "Something went wrong", todo: str = "") -> None:
        """A failure: the red banner above the views says what failed (``headline``),
        why (``text``) and what to do (``todo``); the same line goes to stderr (once) and
        the status bar. Unattended runs that saw one exit with status 2."""
        line = f"{headline}: {str(text).rstrip('.')}" + (f". {todo}" if todo else "")
        self.last_message = self.last_error = text
        self.message.setStyleSheet("color:#ff6b6b; font-weight:600")
        self.message.setText(f"⚠ {line}")
        self.error_text.setText(f"<b>{_html(headline)}</b><br>{_html(text)}"
                                + (f"<br><span style='color:#ffd2d2'>{_html(todo)}</span>" if todo else ""))
        self.error_banner.setVisible(True)
        self._last_failure = line
        if line not in self.errors:
            self.errors.append(line)
            if self._held_lines is not None:  # start(): a remembered setting may still be replaced
                self._held_lines.append(line)
            else:
                print(f"dvsstream gui: {line}", file=sys.stderr, flush=True)

    def show_note(self, text: str) -> None:
        """Something the user should know that is not a failure (a stale setting was
        replaced by the default, ...): the amber banner, and stderr once."""
        self.note_text.setText(_html(text))
        self.note_banner.setVisible(True)
        if text not in self.notes:
            self.notes.append(text)
            print(f"dvsstream gui: note: {text}", file=sys.stderr, flush=True)

    def clear_error(self) -> None:
        self.error_banner.setVisible(False)

    # ================================================================== lifecycle
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
            self.end_label.setText(_format_time(rng[1] - rng[0]))
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

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt name)
        self.timer.stop()
        self._apply_timer.stop()
        if self.export_clip_on_close is not None:
            path, self.export_clip_on_close = self.export_clip_on_close, None
            try:
                self.save_clip(path, overwrite=True)  # checked before the window opened
            except DvsstreamError as exc:
                self.show_error(str(exc), "The clip could not be saved")
        if self._clip_thread is not None:
            self._clip_thread.join()
        self.save_settings()
        self.controller.close()
        super().closeEvent(event)

    def save_settings(self) -> Optional[Path]:
        if self.settings_path is None:
            return None
        self.settings.geometry = bytes(self.saveGeometry().toHex()).decode("ascii")
        p, loaded = self.controller.pipeline, self.controller.loaded
        if p is not None and loaded is not None:  # remember what ran, not a half-typed edit
            b, base = p.binning, loaded.binning
            self.settings.window_ms = None if b.window_us == base.window_us else b.window_us / 1000
            self.settings.hop_ms = None if b.hop_us == base.hop_us else b.hop_us / 1000
            self.settings.T = None if b.n_bins == base.n_bins else b.n_bins
        return state.save_settings(self.settings, self.settings_path)

    # ================================================================== the redraw
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
            self._keep_for_clip(p, display.crop_region(image, p.binning.roi),
                                t_end - (snap["stats"].stream_start_us or 0))
        self._update_fps(now)
        if now - self._last_stats > STATS_MS / 1000:
            self._last_stats = now
            rate = pred.firing_rate if pred is not None else None
            self.stats.set_rows(state.format_stats(snap["stats"], self.display_fps, rate, self.first_frame_s))
            self._update_seek(snap["stats"].stream_time_us)
        self._check_end(p, snap)

    def _keep_for_clip(self, p, image, t_us: int) -> None:
        """Offer what is on screen to the clip buffer (only when it starts a new slot)."""
        if self.clip_buffer.due(t_us):
            self.clip_buffer.push(ClipFrame.from_prediction(
                image, t_us, p.class_names, self._last_pred, self.attention.head_dim, self.settings.overlay))

    def _draw_prediction(self, p, pred) -> None:
        self.predictions.update_prediction(pred)
        self.history.update_history(p.recent_predictions())
        if pred.attention:
            self.attention.update_maps(display.attention_maps(pred.attention, self.attention.kind))
            self.attention.update_scene(display.crop_region(self.event_view.rgb, p.binning.roi, channels_first=False))
            overlay = display.overlay_map(pred.attention) if self.settings.overlay else None
            self.event_view.update_overlay(overlay, display.overlay_levels(self.attention.head_dim))

    def _update_fps(self, now: float) -> None:
        times = self._frame_times
        while times and now - times[0] > 1.0:
            times.pop(0)
        self.display_fps = float(len(times))

    def _update_seek(self, t_us: Optional[int]) -> None:
        rng = self.controller.time_range()
        if rng is None:
            self.time_label.setText(_format_time(t_us) if t_us is not None else _format_time(None))
            return
        if t_us is None or self._seeking:
            return
        rel = max(0, t_us - rng[0])
        self.time_label.setText(_format_time(rel))
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

    # ================================================================== controls
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

    def _speed_changed(self, value: float) -> None:
        self.controller.set_speed(value)

    def _loop_changed(self, on: bool) -> None:
        self.controller.set_loop(on)

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
        """Switch model (None: the shipped one); window / hop / T go back to its defaults."""
        s = self.settings
        old = (s.checkpoint, s.window_ms, s.hop_ms, s.T)
        s.window_ms = s.hop_ms = s.T = None
        if self.build(self.controller.source_uri or self._initial_source, checkpoint=path):
            return True
        s.checkpoint, s.window_ms, s.hop_ms, s.T = old
        return False

    def _region_dragged(self, item) -> None:
        """The outline was moved or resized: the model sees the region under it from now on
        (whole pixels, the model input's aspect ratio, inside the sensor: ``fit_region``)."""
        from dvsstream.gui.qt.views import fit_region

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
        rebuilds the pipeline, or says why not and keeps the old region."""
        old = self.controller.roi
        self.controller.roi = tuple(roi) if roi is not None else None
        if self.build(self.controller.source_uri):
            return True
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

    def _overlay_changed(self, on: bool) -> None:
        self.settings.overlay = bool(on)
        if not on:
            self.event_view.update_overlay(None, (0, 1))
        elif self._last_pred is not None:
            self._draw_prediction(self.controller.pipeline, self._last_pred)

    def seek_relative(self, seconds: float) -> None:
        p = self.controller.pipeline
        if p is None or self.controller.time_range() is None:
            return
        now = p.snapshot_stats().stream_time_us or self.controller.time_range()[0]
        self.controller.seek(int(now + seconds * 1e6))

    def _slider_moved(self, value: int) -> None:
        self.time_label.setText(_format_time(value * 1000))

    def _slider_released(self) -> None:
        self._seeking = False
        rng = self.controller.time_range()
        if rng is not None:
            self.controller.seek(rng[0] + self.seek_slider.value() * 1000)

    def _slider_action(self, action: int) -> None:
        if action in (QtWidgets.QAbstractSlider.SliderAction.SliderPageStepAdd,
                      QtWidgets.QAbstractSlider.SliderAction.SliderPageStepSub):
            QtCore.QTimer.singleShot(0, self._guarded(self._slider_released))

    # ------------------------------------------------------------------ outputs
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
