"""The main window: controls on the left, events / attention / predictions in the
middle, a seek bar and the live figures at the bottom.

A :class:`~PySide6.QtCore.QTimer` (:data:`FRAME_MS`) reads ``pipeline.snapshot()`` and
redraws what changed into the views' existing items; the source, the binning and the
model run in the pipeline's own threads, so the GUI thread only draws. Only opening a
source or a checkpoint (fast) happens on the GUI thread.

This module builds the window and lays it out; what it does is split by concern into
mixins, one module each: :mod:`~dvsstream.gui.qt.window_messages` (status line and
banners), :mod:`~dvsstream.gui.qt.window_source` (opening sources, building the
pipeline), :mod:`~dvsstream.gui.qt.window_playback` (the redraw, play / pause, seeking),
:mod:`~dvsstream.gui.qt.window_model` (checkpoint, binning, region, attention) and
:mod:`~dvsstream.gui.qt.window_clips` (recordings, screenshots, clips).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Optional

from PySide6 import QtCore, QtGui, QtWidgets

from dvsstream.errors import DvsstreamError
from dvsstream.gui import state
from dvsstream.gui.controller import Controller
from dvsstream.gui.qt.attention import AttentionGrid
from dvsstream.gui.qt.controls import ControlPanel
from dvsstream.gui.qt.event_view import EventView
from dvsstream.gui.qt.panels import (
    ElidedLabel,
    HistoryStrip,
    PredictionPanel,
    StatsPanel,
)
from dvsstream.gui.qt.theme import STYLE, apply_theme
from dvsstream.gui.qt.window_clips import CLIP_SECONDS, ClipsMixin
from dvsstream.gui.qt.window_messages import MessagesMixin
from dvsstream.gui.qt.window_model import ModelMixin
from dvsstream.gui.qt.window_playback import FRAME_MS, PlaybackMixin, format_time
from dvsstream.gui.qt.window_source import SourceMixin
from dvsstream.gui.qt.window_teach import TeachMixin
from dvsstream.gui.state import Settings
from dvsstream.render.writer import ClipBuffer

__all__ = ["FRAME_MS", "HEADLESS_SCREEN", "MainWindow", "apply_theme", "clamp_to_screen", "fit_rect"]

#: Qt platforms without a screen (``QT_QPA_PLATFORM``), and the desktop the window is laid
#: out for there, ``(width, height)`` px: a 1280x720 screen, the smallest it is made for
HEADLESS_PLATFORMS = ("offscreen", "minimal")
HEADLESS_SCREEN = (1280, 720)


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


class MainWindow(MessagesMixin, SourceMixin, PlaybackMixin, ModelMixin, ClipsMixin, TeachMixin, QtWidgets.QMainWindow):
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
        self.time_label = QtWidgets.QLabel(format_time(None))
        self.time_label.setObjectName("time")
        self.seek_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.seek_slider.setEnabled(False)
        self.seek_slider.setToolTip("Seek in the recording (Left / Right: ±1 s)")
        self.seek_slider.sliderPressed.connect(lambda: setattr(self, "_seeking", True))
        self.seek_slider.sliderMoved.connect(self._slider_moved)
        self.seek_slider.sliderReleased.connect(self._guarded(self._slider_released))
        self.seek_slider.actionTriggered.connect(self._slider_action)
        self.end_label = QtWidgets.QLabel(format_time(None))
        self.end_label.setObjectName("time")
        seek.addWidget(self.time_label)
        seek.addWidget(self.seek_slider, 1)
        seek.addWidget(self.end_label)
        return seek

    def _place_on_screen(self) -> None:
        """The remembered geometry, or 1560x940; either clamped to the screen's available
        area (a window larger than a 1280x720 screen opened cut off). Without a real
        screen (the offscreen platform, whose pretend screen is 800x600), the area of
        :data:`HEADLESS_SCREEN`: screenshots show the layout of a 1280x720 desktop."""
        restored = False
        if self.settings.geometry:
            try:
                restored = self.restoreGeometry(QtCore.QByteArray.fromHex(self.settings.geometry.encode("ascii")))
            except (ValueError, TypeError):
                restored = False
        if not restored:
            self.resize(1560, 940)
        if QtGui.QGuiApplication.platformName() in HEADLESS_PLATFORMS:
            self.move(0, 0)
            clamp_to_screen(self, QtCore.QRect(0, 0, *HEADLESS_SCREEN))
            return
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
        self.filter_combo.activated.connect(self._guarded(self._filter_entered))
        self.filter_combo.lineEdit().returnPressed.connect(self._guarded(self._filter_entered))
        self.record_button.clicked.connect(self._guarded(self._record_clicked))
        self.screenshot_button.clicked.connect(self._guarded(lambda: self.save_screenshot()))
        self.clip_button.clicked.connect(self._guarded(lambda: self.save_clip_in_background()))
        self.output_button.clicked.connect(self._guarded(self.choose_output_dir))
        panel.layout().insertWidget(panel.layout().count() - 2, self._build_teach())  # above the keys
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
        self.filter_combo.setEditText(s.noise_filter)
        for w in (self.speed_spin, self.loop_check, self.mode_combo, self.kind_combo, self.overlay_check):
            w.blockSignals(False)
        self._fill_sources()
        self._show_output_dir()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt name)
        self.timer.stop()
        self._apply_timer.stop()
        self._teach_timer.stop()
        self.stop_teach_recording()
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
