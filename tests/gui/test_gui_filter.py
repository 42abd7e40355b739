"""The noise filter in the window: the Display box's control, the share of events
removed in the stats panel, the setting kept between runs; headless with pytest-qt."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import importlib.util
from pathlib import Path

import pytest

from dvsstream.gui import state
from dvsstream.gui.state import Settings
from dvsstream.stream.live import DEFAULT_RECORDING
from dvsstream.stream.stats import PipelineStats

GESTURES = Path(__file__).resolve().parents[2] / "recordings" / DEFAULT_RECORDING
HAVE_QT = all(importlib.util.find_spec(m) for m in ("PySide6", "pyqtgraph", "pytestqt"))
needs_qt = pytest.mark.skipif(not HAVE_QT, reason="PySide6, pyqtgraph and pytest-qt are needed")


@pytest.fixture(autouse=True)
def _private_settings(monkeypatch, tmp_path):
    monkeypatch.setenv(state.SETTINGS_ENV, str(tmp_path / "settings.json"))


def test_settings_keep_a_canonical_filter_and_drop_a_bad_one():
    assert Settings().noise_filter == "none"
    assert Settings(noise_filter="BA:2000, refractory:500").noise_filter == "ba:2000,refractory:500"
    assert Settings.from_dict({"noise_filter": "ba:0"}).noise_filter == "none"
    assert Settings.from_dict({"noise_filter": 17}).noise_filter == "none"
    assert Settings.from_dict(Settings(noise_filter="denoise:5000").to_dict()).noise_filter == "denoise:5000"


def test_the_stats_panel_names_the_filter_and_the_share_removed():
    assert dict(state.format_stats(PipelineStats()))["Noise filter"] == "off"
    stats = PipelineStats(filter="ba:2000", filter_removed_share=0.5349, events_filtered=10)
    assert dict(state.format_stats(stats))["Noise filter"] == "53.5 % removed · ba:2000"
    assert dict(state.format_stats(None))["Noise filter"] == "–"


def _make_window(qtbot, tmp_path, **settings):
    from dvsstream.gui.qt.window import MainWindow

    if not GESTURES.is_file():
        pytest.skip("shipped gesture recording missing")
    win = MainWindow(Settings(output_dir=str(tmp_path / "out"), **settings), tmp_path / "settings.json",
                     source=str(GESTURES))
    qtbot.addWidget(win)
    win.show()
    return win


@needs_qt
def test_the_display_control_filters_the_stream_and_shows_the_share(qtbot, tmp_path):
    from PySide6.QtCore import Qt

    win = _make_window(qtbot, tmp_path)
    qtbot.waitUntil(lambda: win._last_pred is not None, timeout=15_000)
    assert win.filter_combo.currentText() == "none" and win.stats.text("Noise filter") == "off"
    win.filter_combo.setEditText("ba:2000")
    qtbot.keyClick(win.filter_combo.lineEdit(), Qt.Key.Key_Return)
    pipe = win.controller.pipeline
    assert pipe.filter_spec == "ba:2000" and win.settings.noise_filter == "ba:2000"
    qtbot.waitUntil(lambda: pipe.snapshot_stats().events_filtered > 1000, timeout=10_000)
    qtbot.waitUntil(lambda: win.stats.text("Noise filter").endswith("% removed · ba:2000"), timeout=5_000)
    share = float(win.stats.text("Noise filter").split()[0])
    assert 0 < share < 100

    win.filter_combo.setEditText("ba:0")  # refused: the filter in use stays, the box shows it again
    qtbot.keyClick(win.filter_combo.lineEdit(), Qt.Key.Key_Return)
    assert "noise filter 'ba:0'" in win.last_error and pipe.filter_spec == "ba:2000"
    assert win.filter_combo.currentText() == "ba:2000"

    win.filter_combo.setCurrentIndex(win.filter_combo.findText("none"))
    win.filter_combo.activated.emit(win.filter_combo.currentIndex())
    assert pipe.filter_spec == "none"
    qtbot.waitUntil(lambda: win.stats.text("Noise filter") == "off", timeout=5_000)


@needs_qt
def test_the_filter_is_kept_between_runs(qtbot, tmp_path):
    from dvsstream.gui.qt.window import MainWindow

    win = _make_window(qtbot, tmp_path, noise_filter="refractory:1000")
    qtbot.waitUntil(lambda: win.controller.pipeline is not None, timeout=15_000)
    assert win.controller.pipeline.filter_spec == "refractory:1000"
    assert win.filter_combo.currentText() == "refractory:1000"
    win.close()
    saved = state.load_settings(tmp_path / "settings.json")
    assert saved.noise_filter == "refractory:1000"
    again = MainWindow(saved, tmp_path / "settings.json", autostart=False)
    qtbot.addWidget(again)
    assert again.filter_combo.currentText() == "refractory:1000"
