"""The window's control column: source, playback, model and binning, display, output
and the list of keys. Widgets only: :class:`~dvsstream.gui.qt.window.MainWindow` connects
them to what they do."""

from __future__ import annotations

from typing import Optional

from PySide6 import QtCore, QtWidgets

from dvsstream.gui.qt.panels import ElidedLabel

__all__ = ["FILTER_CHOICES", "ControlPanel"]

#: the noise filters offered in the Display box (any --filter text may be typed)
FILTER_CHOICES = ("none", "ba:2000", "ba:10000", "denoise:5000", "refractory:1000", "ba:2000,refractory:1000")


class ControlPanel(QtWidgets.QWidget):
    """The controls, 290 px wide, as attributes named in :attr:`WIDGETS`.

    ``clip_seconds``: what "Save clip" keeps (for its tooltip and the key list)."""

    WIDGETS = ("source_combo", "open_button", "cameras_button", "network_edit", "connect_button",
               "play_button", "speed_spin", "loop_check", "checkpoint_label", "checkpoint_button",
               "shipped_button", "window_spin", "hop_spin", "t_spin", "mode_combo", "kind_combo",
               "overlay_check", "filter_combo", "record_button", "screenshot_button", "clip_button", "output_label",
               "output_button")

    def __init__(self, clip_seconds: float, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self._source_box())
        lay.addWidget(self._playback_box())
        lay.addWidget(self._model_box())
        lay.addWidget(self._display_box())
        lay.addWidget(self._output_box(clip_seconds))
        lay.addWidget(self._keys_box(clip_seconds))
        lay.addStretch(1)
        for button in self.findChildren(QtWidgets.QPushButton):
            button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.setFixedWidth(290)

    def _source_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Source")
        g = QtWidgets.QGridLayout(box)
        self.source_combo = QtWidgets.QComboBox()
        self.source_combo.setEditable(True)
        self.source_combo.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.source_combo.setToolTip("A recording, camera:[SERIAL], tcp://host:port or synthetic:… (Enter to open)")
        self.source_combo.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source_combo.setMinimumContentsLength(18)
        g.addWidget(self.source_combo, 0, 0, 1, 2)
        self.open_button = QtWidgets.QPushButton("Open file…")
        self.open_button.setToolTip("Open a recording (Ctrl+O)")
        self.cameras_button = QtWidgets.QPushButton("Find cameras")
        self.cameras_button.setToolTip("List connected iniVation cameras (dv-processing)")
        g.addWidget(self.open_button, 1, 0)
        g.addWidget(self.cameras_button, 1, 1)
        self.network_edit = QtWidgets.QLineEdit()
        self.network_edit.setPlaceholderText("tcp://127.0.0.1:7777")
        self.connect_button = QtWidgets.QPushButton("Connect")
        g.addWidget(self.network_edit, 2, 0)
        g.addWidget(self.connect_button, 2, 1)
        return box

    def _playback_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Playback")
        g = QtWidgets.QGridLayout(box)
        self.play_button = QtWidgets.QPushButton("▶ Play")
        self.play_button.setObjectName("play")
        self.play_button.setToolTip("Play / pause (Space)")
        g.addWidget(self.play_button, 0, 0, 1, 2)
        g.addWidget(QtWidgets.QLabel("Speed"), 1, 0)
        self.speed_spin = QtWidgets.QDoubleSpinBox()
        self.speed_spin.setRange(0.05, 50.0)
        self.speed_spin.setDecimals(2)
        self.speed_spin.setSingleStep(0.25)
        self.speed_spin.setSuffix(" ×")
        self.speed_spin.setToolTip("Replay pace of recordings (1 = real time)")
        g.addWidget(self.speed_spin, 1, 1)
        self.loop_check = QtWidgets.QCheckBox("Loop recordings")
        g.addWidget(self.loop_check, 2, 0, 1, 2)
        return box

    def _model_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Model")
        g = QtWidgets.QGridLayout(box)
        self.checkpoint_label = ElidedLabel("shipped gesture model", mode=QtCore.Qt.TextElideMode.ElideMiddle)
        g.addWidget(self.checkpoint_label, 0, 0, 1, 2)
        self.checkpoint_button = QtWidgets.QPushButton("Checkpoint…")
        self.shipped_button = QtWidgets.QPushButton("Shipped")
        self.shipped_button.setToolTip("Back to the shipped gesture model")
        g.addWidget(self.checkpoint_button, 1, 0)
        g.addWidget(self.shipped_button, 1, 1)
        self.window_spin = QtWidgets.QSpinBox()
        self.window_spin.setRange(1, 60_000)
        self.window_spin.setSingleStep(50)
        self.window_spin.setSuffix(" ms")
        self.hop_spin = QtWidgets.QSpinBox()
        self.hop_spin.setRange(1, 60_000)
        self.hop_spin.setSingleStep(10)
        self.hop_spin.setSuffix(" ms")
        self.t_spin = QtWidgets.QSpinBox()
        self.t_spin.setRange(1, 256)
        for row, (name, spin, tip) in enumerate((
                ("Window", self.window_spin, "Length of the window the model sees"),
                ("Hop", self.hop_spin, "A prediction every hop (a multiple of window / T)"),
                ("T bins", self.t_spin, "Time bins (steps) per window"))):
            g.addWidget(QtWidgets.QLabel(name), 2 + row, 0)
            spin.setToolTip(tip)
            spin.setKeyboardTracking(False)
            g.addWidget(spin, 2 + row, 1)
        g.addWidget(QtWidgets.QLabel("Mode"), 5, 0)
        self.mode_combo = QtWidgets.QComboBox()
        self.mode_combo.addItem("step (carry state)", "step")
        self.mode_combo.addItem("window (recompute)", "window")
        self.mode_combo.setToolTip("step: only the new bins per hop, LIF state carried; window: all T bins from reset")
        g.addWidget(self.mode_combo, 5, 1)
        return box

    def _display_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Display")
        g = QtWidgets.QGridLayout(box)
        g.addWidget(QtWidgets.QLabel("Attention"), 0, 0)
        self.kind_combo = QtWidgets.QComboBox()
        self.kind_combo.addItem("spatial map (h×w)", "spatial")
        self.kind_combo.addItem("token matrix (N×N)", "matrix")
        self.kind_combo.setToolTip("Switch with A")
        g.addWidget(self.kind_combo, 0, 1)
        self.overlay_check = QtWidgets.QCheckBox("Attention over events")
        g.addWidget(self.overlay_check, 1, 0, 1, 2)
        g.addWidget(QtWidgets.QLabel("Noise filter"), 2, 0)
        self.filter_combo = QtWidgets.QComboBox()
        self.filter_combo.setEditable(True)
        self.filter_combo.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.filter_combo.addItems(FILTER_CHOICES)
        self.filter_combo.setToolTip("Events go through it before the model and the display (Enter to apply): "
                                     "ba:T keeps an event when one of its 8 neighbours fired within T µs, "
                                     "denoise:T the same with 4 (tonic's), refractory:T drops an event when its "
                                     "pixel fired within T µs; chain with commas")
        g.addWidget(self.filter_combo, 2, 1)
        return box

    def _output_box(self, clip_seconds: float) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Output")
        g = QtWidgets.QGridLayout(box)
        self.record_button = QtWidgets.QPushButton("● Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record the stream to HDF5 (Ctrl+R)")
        self.screenshot_button = QtWidgets.QPushButton("Screenshot")
        self.screenshot_button.setToolTip("Save the window as PNG (Ctrl+S)")
        self.clip_button = QtWidgets.QPushButton("Save clip")
        self.clip_button.setToolTip(f"Save the last {clip_seconds:g} s as MP4: events, attention and the "
                                    "top class (Ctrl+E)")
        g.addWidget(self.record_button, 0, 0)
        g.addWidget(self.screenshot_button, 0, 1)
        g.addWidget(self.clip_button, 2, 0, 1, 2)
        self.output_label = ElidedLabel("", mode=QtCore.Qt.TextElideMode.ElideMiddle)
        self.output_label.setStyleSheet("color:#8a93a0")
        self.output_button = QtWidgets.QPushButton("Folder…")
        g.addWidget(self.output_label, 1, 0)
        g.addWidget(self.output_button, 1, 1)
        return box

    def _keys_box(self, clip_seconds: float) -> QtWidgets.QGroupBox:
        rows = (("Space", "play / pause"), ("← →", "seek ∓1 s"), ("A", "attention kind"),
                ("Ctrl+O", "open recording"), ("Ctrl+S", "screenshot"), ("Ctrl+R", "record"),
                ("Ctrl+E", f"save the last {clip_seconds:g} s as a clip"), ("Q", "quit"))
        keys = QtWidgets.QLabel(
            "<table style='font-size:9pt'>"
            + "".join(f"<tr><td style='padding-right:12px;color:#e6e9ee'><b>{k}</b></td><td>{v}</td></tr>"
                      for k, v in rows)
            + "</table>")
        keys.setObjectName("keys")
        box = QtWidgets.QGroupBox("Keys")
        QtWidgets.QVBoxLayout(box).addWidget(keys)
        return box
