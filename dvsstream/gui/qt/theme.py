"""The window's look: a dark Fusion palette and the style sheet of its widgets."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

__all__ = ["STYLE", "apply_theme"]

STYLE = """
QMainWindow, QWidget { background: #15181e; color: #d6dae0; }
QGroupBox { border: 1px solid #2b303a; border-radius: 6px; margin-top: 14px; padding: 8px 6px 6px 6px;
            font-weight: 600; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #9fb3c8; }
QPushButton { background: #262b35; border: 1px solid #363c48; border-radius: 4px; padding: 4px 10px; }
QPushButton:hover { background: #2f3542; }
QPushButton:checked { background: #8a2b2b; border-color: #c44; }
QPushButton#play:checked { background: #2b5d8a; border-color: #4a90d9; }
QComboBox, QLineEdit, QAbstractSpinBox { background: #1d2129; border: 1px solid #363c48; border-radius: 4px;
            padding: 2px 4px; }
QAbstractSpinBox { padding-right: 18px; }
QAbstractSpinBox::up-button, QAbstractSpinBox::down-button { subcontrol-origin: border; width: 16px;
            background: #2c323d; border-left: 1px solid #363c48; }
QAbstractSpinBox::up-button { subcontrol-position: top right; border-top-right-radius: 4px; }
QAbstractSpinBox::down-button { subcontrol-position: bottom right; border-bottom-right-radius: 4px; }
QAbstractSpinBox::up-button:hover, QAbstractSpinBox::down-button:hover { background: #3a4250; }
QAbstractSpinBox::up-arrow { width: 0; height: 0; border-left: 4px solid transparent;
            border-right: 4px solid transparent; border-bottom: 5px solid #d6dae0; }
QAbstractSpinBox::down-arrow { width: 0; height: 0; border-left: 4px solid transparent;
            border-right: 4px solid transparent; border-top: 5px solid #d6dae0; }
QAbstractSpinBox::up-arrow:disabled, QAbstractSpinBox::down-arrow:disabled { border-bottom-color: #59616d;
            border-top-color: #59616d; }
QPushButton:disabled, QComboBox:disabled, QLineEdit:disabled, QSpinBox:disabled, QDoubleSpinBox:disabled,
QCheckBox:disabled, QLabel:disabled { color: #59616d; }
QLabel#statName { color: #8a93a0; }
QLabel#statValue { color: #eef1f5; font-size: 10pt; font-weight: 600; }
QLabel#message { padding: 2px 6px; }
QLabel#time { color: #aab3bf; font-family: monospace; }
QLabel#panelTitle { color: #e6e9ee; font-size: 11pt; font-weight: 600; }
QLabel#panelSubtitle, QLabel#panelLegend { color: #8a93a0; }
QLabel#keys { color: #aab3bf; }
QLabel#domain { color: #ffcf66; background: #3a2f12; border: 1px solid #6b5420; border-radius: 4px; padding: 3px 6px; }
QFrame#errorBanner { background: #4a1d1f; border: 1px solid #a33a3a; border-radius: 5px; }
QFrame#noteBanner { background: #3a2f12; border: 1px solid #6b5420; border-radius: 5px; }
QFrame#errorBanner QLabel, QFrame#noteBanner QLabel { background: transparent; color: #f3f4f6; }
QFrame#errorBanner QPushButton, QFrame#noteBanner QPushButton { background: transparent; border: none; padding: 0 6px; }
QSplitter::handle { background: #20242c; }
QSplitter::handle:hover { background: #3a4250; }
QScrollArea { border: none; }
QStatusBar { background: #1a1e25; }
"""


def _dark_palette() -> QtGui.QPalette:
    pal = QtGui.QPalette()
    c = QtGui.QColor
    pal.setColor(QtGui.QPalette.ColorRole.Window, c("#15181e"))
    pal.setColor(QtGui.QPalette.ColorRole.WindowText, c("#d6dae0"))
    pal.setColor(QtGui.QPalette.ColorRole.Base, c("#1d2129"))
    pal.setColor(QtGui.QPalette.ColorRole.AlternateBase, c("#20242c"))
    pal.setColor(QtGui.QPalette.ColorRole.Text, c("#d6dae0"))
    pal.setColor(QtGui.QPalette.ColorRole.Button, c("#262b35"))
    pal.setColor(QtGui.QPalette.ColorRole.ButtonText, c("#d6dae0"))
    pal.setColor(QtGui.QPalette.ColorRole.Highlight, c("#4a90d9"))
    pal.setColor(QtGui.QPalette.ColorRole.HighlightedText, c("#ffffff"))
    pal.setColor(QtGui.QPalette.ColorRole.ToolTipBase, c("#262b35"))
    pal.setColor(QtGui.QPalette.ColorRole.ToolTipText, c("#d6dae0"))
    return pal


def apply_theme(app: QtWidgets.QApplication) -> None:
    """Fusion style with a dark palette (matches the pyqtgraph views)."""
    app.setStyle("Fusion")
    app.setPalette(_dark_palette())
