"""The desktop GUI: Qt-free state helpers, then the window driven headless with
pytest-qt (``QT_QPA_PLATFORM=offscreen``) on the shipped model and recordings."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

from dvsstream.gui import state
from dvsstream.render import display
from dvsstream.gui.state import Settings
from dvsstream.stream.live import DEFAULT_RECORDING

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
GESTURES = RECORDINGS / DEFAULT_RECORDING


# ============================================================================ state (no Qt)
def test_event_rgb_fixed_levels_and_colours():
    img = np.zeros((2, 4, 5), np.float32)
    img[1, 0, 0] = 100.0  # ON, far above the level
    img[1, 0, 1] = display.EVENT_LEVEL  # ON, at the level: the same colour
    img[0, 1, 0] = 1.0  # one OFF event: visible, dimmer
    img[:, 2, 0] = 2.0  # mixed
    rgb = display.event_rgb(img)
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == display.EVENT_ON == tuple(rgb[0, 1])
    assert tuple(rgb[3, 4]) == display.EVENT_BACKGROUND
    off = rgb[1, 0].astype(int)
    assert off[2] > off[0] and off[2] > display.EVENT_BACKGROUND[2] + 40
    mixed = rgb[2, 0].astype(int)
    assert mixed[0] > 100 and mixed[2] > 100  # purple: both red and blue
    # fixed levels: a pixel's colour does not depend on the rest of the frame
    img2 = img.copy()
    img2[1, 3, 3] = 1e6
    assert np.array_equal(display.event_rgb(img2)[1, 0], rgb[1, 0])
    blank = display.event_rgb(None, out=np.empty((3, 3, 3), np.uint8))
    assert (blank == np.array(display.EVENT_BACKGROUND, np.uint8)).all()


def test_attention_maps_kinds_and_levels():
    heads, n, h, w = 4, 16, 4, 4
    attn = {0: {"matrix": np.ones((heads, n, n)), "spatial": np.full((heads, h, w), 32.0)},
            1: {"matrix": np.zeros((heads, n, n)), "spatial": np.zeros((heads, h, w))}}
    m = display.attention_maps(attn, "matrix")
    s = display.attention_maps(attn, "spatial")
    assert sorted(m) == [0, 1] and m[0].shape == (heads, n, n) and s[0].shape == (heads, h, w)
    assert np.allclose(s[0], 32.0 / (h * w))  # summed over queries -> mean over queries
    assert display.attention_maps(None, "matrix") == {}
    assert display.overlay_map(attn).shape == (h, w) and np.allclose(display.overlay_map(attn, block=0), 2.0)
    assert display.attention_levels("matrix", 16) == (0.0, 8.0)
    assert display.attention_levels("spatial", 16) == (0.0, 4.0)
    assert [display.grid_shape(k) for k in (0, 1, 2, 4, 5, 8, 16)] == [
        (0, 0), (1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (4, 4)]


class _P:
    def __init__(self, probs, label, t_end, t_start=None):
        self.probs, self.label, self.t_end = np.asarray(probs), label, t_end
        self.t_start = t_end - 400_000 if t_start is None else t_start


def test_history_arrays_newest_last_with_labels():
    preds = [_P([1, 0, 0], 0, 1_000_000), _P([0, 1, 0], None, 1_050_000), _P([0, 0.5, 0.5], 2, 1_100_000)]
    probs, labels, marks = state.history_arrays(preds, 3, 5, 50_000)
    assert probs.shape == (3, 5) and labels.shape == (5,) and marks == []
    assert np.array_equal(probs[:, :2], np.zeros((3, 2)))
    assert np.array_equal(probs[:, 2], [1, 0, 0]) and np.array_equal(probs[:, 4], [0, 0.5, 0.5])
    assert np.isnan(labels[:2]).all() and labels[2] == 0 and np.isnan(labels[3]) and labels[4] == 2
    probs, _, _ = state.history_arrays(preds, 3, 2, 50_000)  # only the last two fit
    assert np.array_equal(probs[:, 1], [0, 0.5, 0.5])
    gap = preds[:1] + [_P([0, 0, 1], None, 1_150_000)]  # 150 ms later: two empty columns between
    probs, _, _ = state.history_arrays(gap, 3, 5, 50_000)
    assert np.array_equal(probs[:, 1], [1, 0, 0]) and not probs[:, 2:4].any() and probs[2, 4] == 1


def test_settings_roundtrip_and_tolerant_load(tmp_path):
    path = tmp_path / "sub" / "gui.json"
    s = Settings(source="synthetic:", speed=2.5, hop_ms=100, attention_kind="matrix", overlay=False)
    s.remember_source("a.h5")
    s.remember_source("synthetic:")
    assert state.save_settings(s, path) == path
    back = state.load_settings(path)
    assert back == s and back.recent_sources == ["synthetic:", "a.h5"]
    path.write_text('{"speed": "fast", "mode": "bogus", "T": 4, "unknown": 1}')
    odd = state.load_settings(path)
    assert odd.speed == 1.0 and odd.mode == "step" and odd.T == 4
    path.write_text("not json")
    assert state.load_settings(path) == Settings()
    assert state.load_settings(tmp_path / "missing.json") == Settings()


def test_settings_path_env(monkeypatch, tmp_path):
    monkeypatch.setenv(state.SETTINGS_ENV, str(tmp_path / "x.json"))
    assert state.default_settings_path() == tmp_path / "x.json"


def test_source_options():
    assert state.source_kind("camera:") == "camera" and state.source_kind("tcp://h:1") == "network"
    assert state.source_options("rec.h5", speed=2, loop=False) == {"speed": 2.0, "loop": False, "packet_us": 1000}
    assert state.source_options("synthetic:") == {"realtime": True, "duration_s": None}
    assert state.source_options("synthetic:realtime=0,duration=3") == {}
    assert state.source_options("camera:") == {}
    assert Path(state.default_source()) == GESTURES  # the shipped recording, not the synthetic fallback


def test_format_stats_names():
    from dvsstream.stream.stats import PipelineStats

    st = PipelineStats(event_rate=12_345.0, inference_rate=20.0, latency_ms={"p50": 4.0, "p95": 9.5},
                       windows=10, windows_skipped=1, energy_mj_per_window=0.027, stream_time_us=1_500_000)
    rows = dict(state.format_stats(st, 40.0, 0.1, 1.25))
    assert rows["Events"] == "12.35 kev/s" and rows["Display"] == "40 fps"
    assert rows["Latency"] == "p50 4.0 · p95 9.5 ms" and rows["Dropped"] == "1 of 10 windows"
    st2 = PipelineStats(windows=10, windows_skipped=1, events_shed=2_500, lag_ms=12.4,
                        stream_time_us=1_718_924_387_360_000, stream_start_us=1_718_924_385_000_000)
    rows2 = dict(state.format_stats(st2))
    assert rows2["Dropped"] == "1/10 windows · 2.50 kev shed" and rows2["Lag"] == "12 ms"
    assert rows2["Stream time"] == "2.36 s"  # since the first event (cameras stamp epoch µs)
    assert rows["Firing rate"] == "10.0 %" and rows["Energy"].startswith("27.0 µJ")
    assert rows["Stream time"] == "1.50 s" and rows["First frame"] == "1.25 s"
    assert dict(state.format_stats(None))["Events"] == "–"


# ============================================================================ the window
HAVE_QT = all(importlib.util.find_spec(m) for m in ("PySide6", "pyqtgraph", "pytestqt"))
needs_qt = pytest.mark.skipif(not HAVE_QT, reason="PySide6, pyqtgraph and pytest-qt are needed")
if HAVE_QT:
    from PySide6.QtCore import Qt as QtKey


@pytest.fixture(autouse=True)
def _private_settings(monkeypatch, tmp_path):
    """Never touch the user's settings file or home folder."""
    monkeypatch.setenv(state.SETTINGS_ENV, str(tmp_path / "settings.json"))


def _make_window(qtbot, tmp_path, source=None, **settings):
    from dvsstream.gui.qt.window import MainWindow

    if source is None:
        if not GESTURES.is_file():
            pytest.skip("shipped gesture recording missing")
        source = str(GESTURES)
    s = Settings(output_dir=str(tmp_path / "out"), **settings)
    win = MainWindow(s, tmp_path / "settings.json", source=source)
    qtbot.addWidget(win)
    win.show()
    return win


def _wait_prediction(qtbot, win, timeout=15_000):
    qtbot.waitUntil(lambda: win._last_pred is not None, timeout=timeout)
    return win._last_pred


@pytest.fixture
def window(qtbot, tmp_path):
    win = _make_window(qtbot, tmp_path)
    _wait_prediction(qtbot, win)
    return win


@needs_qt
def test_window_plays_shipped_recording(window, qtbot):
    win = window
    p = win.controller.pipeline
    assert p is not None and not p.finished and win.last_error is None
    qtbot.waitUntil(lambda: p.snapshot_stats().windows_classified >= 3, timeout=10_000)
    rgb = win.event_view.image.image
    assert rgb.shape == (128, 128, 3)
    assert (rgb != np.array(display.EVENT_BACKGROUND, np.uint8)).any(axis=-1).sum() > 50  # events drawn
    assert win.first_frame_s is not None and win.event_view.frames > 0
    assert win.predictions.top_label.text() and "waiting" not in win.predictions.top_label.text()
    qtbot.waitUntil(lambda: win.stats.text("Inference") not in ("", "–", "0.0 /s"), timeout=5_000)
    assert "fps" in win.stats.text("Display")
    hist = win.history.image.image
    assert hist.shape[0] == len(p.class_names) and hist[:, -1].sum() > 0.99  # newest column


@needs_qt
def test_window_keeps_refcounts(window, qtbot):
    """PySide6-Essentials 6.12.0 loses references to None and True on every repaint of
    a pyqtgraph item; on Python 3.11 (not immortal) the window aborted after ~50 s with
    "Fatal Python error: none_dealloc". Draw a few hundred real frames and check that
    neither count fell (6.12.0: about -50 per frame for None)."""
    import gc
    import sys

    from PySide6 import QtWidgets

    win = window
    app = QtWidgets.QApplication.instance()

    def frames(n: int) -> None:
        for _ in range(n):
            qtbot.wait(8)  # lets the stream move on: each tick draws a new frame
            win.tick()
            win.repaint()
            app.processEvents()

    frames(30)  # warm caches (fonts, pixmaps)
    gc.collect()
    none0, true0, false0 = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    drawn0 = win.event_view.frames
    frames(300)
    gc.collect()
    drawn = win.event_view.frames - drawn0
    drift = {"None": sys.getrefcount(None) - none0, "True": sys.getrefcount(True) - true0,
             "False": sys.getrefcount(False) - false0}
    assert drawn >= 150, f"only {drawn} event frames drawn"
    assert all(d > -drawn for d in drift.values()), f"references lost over {drawn} frames: {drift}"


@needs_qt
def test_attention_grid_has_heads_times_depth_maps_and_switches_kind(window, qtbot):
    win = window
    cfg = win.controller.loaded.model.config
    grid = win.attention
    assert len(grid.images) == cfg.depth
    assert all(len(row) == cfg.heads for row in grid.images)
    assert sum(len(row) for row in grid.images) == cfg.depth * cfg.heads
    attn = win._last_pred.attention
    h, w = attn[0]["spatial"].shape[-2:]
    n = attn[0]["matrix"].shape[-1]
    assert n == h * w
    win.set_attention_kind("spatial")
    assert grid.displayed_shape() == (h, w)
    qtbot.keyClick(win, "A")  # the shortcut switches to the token matrix
    assert win.settings.attention_kind == "matrix"
    assert grid.displayed_shape() == (n, n)
    assert len(grid.images) == cfg.depth and all(len(row) == cfg.heads for row in grid.images)
    assert grid.levels == display.attention_levels("matrix", cfg.dim // cfg.heads)
    qtbot.keyClick(win, "A")
    assert grid.displayed_shape() == (h, w)
    # every head shows its own map of the latest prediction
    maps = display.attention_maps(win._last_pred.attention, "spatial")
    for b, row in enumerate(grid.images):
        for k, img in enumerate(row):
            assert np.allclose(img.image, maps[b][k])


@needs_qt
def test_pause_stops_stream_time(window, qtbot):
    win = window
    p = win.controller.pipeline
    win.play_button.click()
    assert p.paused and "Play" in win.play_button.text()
    time.sleep(0.1)
    t0 = p.snapshot_stats().stream_time_us
    qtbot.wait(400)
    assert p.snapshot_stats().stream_time_us == t0
    qtbot.keyClick(win, " ")  # Space resumes
    assert not p.paused
    qtbot.waitUntil(lambda: p.snapshot_stats().stream_time_us > t0, timeout=3_000)


@needs_qt
def test_hop_change_rebuilds_pipeline(window, qtbot):
    win = window
    old = win.controller.pipeline
    assert old.binning.hop_us == 50_000
    win.hop_spin.setValue(100)
    assert win.apply_binning()
    new = win.controller.pipeline
    assert new is not old and not old.running
    assert new.binning.hop_us == 100_000 and new.binning.window_us == 400_000 and new.binning.n_bins == 8
    assert win.settings.hop_ms == 100
    qtbot.waitUntil(lambda: len(new.predictions) > 0, timeout=10_000)
    assert new.predictions[-1].t_end - new.predictions[-1].t_start == 400_000
    # an impossible hop (not a multiple of the 50 ms bin) is refused with a message
    win.hop_spin.setValue(30)
    assert not win.apply_binning()
    assert win.controller.pipeline is new and "multiple" in win.last_error
    assert "multiple" in win.message.text()


@needs_qt
def test_speed_reaches_file_source(window):
    win = window
    src = win.controller.file_source
    assert src is not None and src.speed == 1.0 and src.loop
    win.speed_spin.setValue(2.5)
    assert src.speed == 2.5 and win.settings.speed == 2.5
    win.loop_check.setChecked(False)
    assert src.loop is False


@needs_qt
def test_seek_moves_stream_time(window, qtbot):
    win = window
    p = win.controller.pipeline
    start, end = win.controller.time_range()
    assert end - start > 7_000_000 and win.seek_slider.isEnabled()
    win.controller.seek(start + 6_000_000)
    qtbot.waitUntil(lambda: (p.snapshot_stats().stream_time_us or 0) >= start + 6_000_000, timeout=5_000)
    qtbot.keyClick(win, QtKey.Key_Left)
    qtbot.waitUntil(lambda: (p.snapshot_stats().stream_time_us or 0) < start + 5_800_000, timeout=5_000)


@needs_qt
def test_true_label_shows_for_labelled_recording(window, qtbot):
    win = window
    qtbot.waitUntil(lambda: win._last_pred.label is not None, timeout=5_000)
    pred = win._last_pred
    text = win.predictions.truth_text()
    assert "true label" in text and win.controller.pipeline.class_names[pred.label] in text
    assert np.isfinite(win.history.truth_curve.getData()[1]).any()


@needs_qt
def test_bad_file_shows_error_and_keeps_playing(window, tmp_path):
    win = window
    before = win.controller.pipeline
    assert win.open_source(str(tmp_path / "nope.h5")) is False
    assert "no such file" in win.last_error and "no such file" in win.message.text()
    assert win.controller.pipeline is before and not before.finished
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is no recording")
    assert win.open_source(str(junk)) is False and "unknown format" in win.last_error


@needs_qt
def test_bad_source_at_start_does_not_raise(qtbot, tmp_path):
    win = _make_window(qtbot, tmp_path, source=str(tmp_path / "missing.aedat4"))
    qtbot.waitUntil(lambda: win.last_error is not None, timeout=10_000)
    assert "no such file" in win.last_error and win.controller.pipeline is None
    qtbot.wait(100)  # the redraw timer runs without a pipeline
    win.toggle_pause()  # retrying shows the error again, still no exception
    assert "no such file" in win.last_error


@needs_qt
def test_synthetic_source_has_no_true_label(qtbot, tmp_path):
    win = _make_window(qtbot, tmp_path, source="synthetic:rate=50000")
    _wait_prediction(qtbot, win)
    assert win.controller.kind == "synthetic" and not win.seek_slider.isEnabled()
    assert "no true label" in win.predictions.truth_text()


@needs_qt
def test_record_and_screenshot_shortcuts(window, qtbot, tmp_path):
    from dvsstream.io.hdf5 import RecordingReader

    win = window
    qtbot.keyClick(win, "r", QtKey.KeyboardModifier.ControlModifier)
    assert win.controller.recording and "Stop" in win.record_button.text()
    qtbot.wait(300)
    qtbot.keyClick(win, "r", QtKey.KeyboardModifier.ControlModifier)
    assert not win.controller.recording
    files = list((tmp_path / "out").glob("recording_*.h5"))
    assert len(files) == 1
    with RecordingReader(files[0]) as rec:
        assert rec.n_events > 0
    qtbot.keyClick(win, "s", QtKey.KeyboardModifier.ControlModifier)
    shots = list((tmp_path / "out").glob("screenshot_*.png"))
    assert len(shots) == 1 and shots[0].stat().st_size > 10_000


@needs_qt
def test_settings_saved_and_restored(qtbot, tmp_path):
    from dvsstream.gui.qt.window import MainWindow

    win = _make_window(qtbot, tmp_path)
    _wait_prediction(qtbot, win)
    win.speed_spin.setValue(1.5)
    win.overlay_check.setChecked(False)
    win.set_attention_kind("matrix")
    win.hop_spin.setValue(100)
    assert win.apply_binning()
    win.close()
    saved = state.load_settings(tmp_path / "settings.json")
    assert saved.speed == 1.5 and saved.overlay is False and saved.attention_kind == "matrix"
    assert saved.hop_ms == 100 and saved.window_ms is None and saved.T is None  # only what differs
    assert saved.source is None and saved.geometry  # None: the default recording, as started
    assert saved.recent_sources[0] == str(GESTURES)
    again = MainWindow(saved, tmp_path / "settings.json", autostart=False)
    qtbot.addWidget(again)
    assert again.speed_spin.value() == 1.5 and not again.overlay_check.isChecked()
    assert again.kind_combo.currentData() == "matrix"
    assert again.controller.binning_for(again.controller.load_model(None)).hop_us == 100_000


@needs_qt
def test_run_gui_screenshot_and_exit(qtbot, tmp_path):
    from PySide6 import QtGui

    from dvsstream.gui.app import run_gui

    if not GESTURES.is_file():
        pytest.skip("shipped gesture recording missing")
    shot = tmp_path / "s.png"
    code = run_gui(source=str(GESTURES), screenshot=shot, exit_after=2, settings_path=tmp_path / "g.json")
    assert code == 0 and shot.is_file()
    img = QtGui.QImage(str(shot))
    assert img.width() >= 800 and img.height() >= 500
    small = img.scaled(64, 40)
    colours = {small.pixel(x, y) for x in range(64) for y in range(40)}
    assert len(colours) > 50  # a real picture, not a blank window
    assert (tmp_path / "g.json").is_file()


@needs_qt
def test_main_parses_arguments(monkeypatch):
    from dvsstream.cli import gui as gui_verb
    from dvsstream.gui import app

    seen = {}
    monkeypatch.setattr(app, "run_gui", lambda **kw: seen.update(kw) or 0)
    assert gui_verb.main(["--source", "synthetic:", "--speed", "2", "--screenshot", "x.png", "--exit-after", "3",
                         "--settings", "s.json", "--verbose"]) == 0
    assert seen["source"] == "synthetic:" and seen["speed"] == 2.0 and seen["exit_after"] == 3.0
    assert seen["screenshot"] == "x.png" and seen["settings_path"] == "s.json" and seen["verbose"]


@needs_qt
def test_mode_and_T_changes_rebuild(window, qtbot):
    win = window
    win.mode_combo.setCurrentIndex(win.mode_combo.findData("window"))
    p = win.controller.pipeline
    assert win.settings.mode == "window" and p.classifier.mode == "window"
    win.t_spin.setValue(4)
    win.hop_spin.setValue(100)
    assert win.apply_binning()
    p = win.controller.pipeline
    assert (p.binning.n_bins, p.binning.hop_us, p.binning.bin_us) == (4, 100_000, 100_000)
    qtbot.waitUntil(lambda: len(p.predictions) > 0, timeout=10_000)
    assert p.predictions[-1].steps == 4  # window mode: all T bins every hop


@needs_qt
def test_end_of_recording_then_play_restarts(qtbot, tmp_path):
    win = _make_window(qtbot, tmp_path, loop=False, speed=40.0)
    qtbot.waitUntil(lambda: win.controller.pipeline is not None and win.controller.pipeline.finished,
                    timeout=10_000)
    qtbot.waitUntil(lambda: "end of the stream" in win.last_message, timeout=2_000)
    assert win.last_error is None and "Play" in win.play_button.text()
    first = win.controller.pipeline
    win.play_button.click()
    assert win.controller.pipeline is not first and not win.controller.pipeline.finished


@needs_qt
def test_bad_checkpoint_is_refused(window, tmp_path):
    win = window
    before = win.controller.pipeline
    assert win.set_checkpoint(str(tmp_path / "nope.pt")) is False
    assert "no such checkpoint" in win.last_error
    assert win.settings.checkpoint is None and win.controller.pipeline is before
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert win.set_checkpoint(str(junk)) is False and win.controller.pipeline is before
    assert "junk.pt" in win.last_error


@needs_qt
def test_a_new_model_or_region_continues_the_recording_where_it_was(qtbot, tmp_path):
    """Switching the model (as the Teach panel does when its model is ready) or the region
    rebuilds the pipeline; a recording goes on from where it was, not from its start."""
    from dvsstream.models.checkpoints import shipped_checkpoint

    win = _make_window(qtbot, tmp_path, speed=4.0)
    c = win.controller
    qtbot.waitUntil(lambda: (c.replay_position_s() or 0.0) > 1.5, timeout=15_000)
    start = c.time_range()[0]
    for switch in (lambda: win.set_checkpoint(str(shipped_checkpoint("gesture_tiny"))),
                   lambda: win.set_region(None)):
        reached = c.replay_position_s()
        old = c.pipeline
        assert switch() is True and c.pipeline is not old and c.start_s is None
        qtbot.waitUntil(lambda: c.pipeline.snapshot_stats().stream_time_us is not None, timeout=10_000)
        first = c.pipeline.snapshot_stats().stream_time_us - start
        assert first >= reached * 1e6 - 100_000, (first, reached)
    # a refused model changes nothing and leaves no start behind for the next build
    assert win.set_checkpoint(str(tmp_path / "nope.pt")) is False and c.start_s is None


@needs_qt
def test_pausing_a_live_stream_holds_only_the_display(qtbot, tmp_path):
    win = _make_window(qtbot, tmp_path, source="synthetic:rate=50000")
    _wait_prediction(qtbot, win)
    p = win.controller.pipeline
    win.set_paused(True)
    assert win.controller.paused and win.controller.frozen and not p.paused
    frames, t0 = win.event_view.frames, p.snapshot_stats().stream_time_us
    qtbot.wait(300)
    assert win.event_view.frames == frames  # display held
    assert p.snapshot_stats().stream_time_us > t0  # the stream went on
    win.set_paused(False)
    qtbot.waitUntil(lambda: win.event_view.frames > frames, timeout=3_000)


def test_gui_state_and_controller_import_no_qt():
    import subprocess
    import sys

    code = ("import sys, dvsstream.gui, dvsstream.gui.state, dvsstream.gui.controller; "
            "print(','.join(m for m in ('PySide6', 'pyqtgraph', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@needs_qt
def test_gui_and_headless_run_give_the_same_predictions(qtbot, tmp_path):
    """Both replay the shipped recording deterministically (no window skipped): the
    window's pipeline and `dvsstream run` predict the same classes with the same
    probabilities for the same windows."""
    from dvsstream.gui.qt.window import MainWindow
    from dvsstream.stream.live import RunConfig, classify_stream

    s = Settings(output_dir=str(tmp_path / "out"), loop=False, speed=8.0)
    win = MainWindow(s, tmp_path / "settings.json", source=str(GESTURES), deterministic=True)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.controller.pipeline is not None and win.controller.pipeline.finished,
                    timeout=30_000)
    pipe = win.controller.pipeline
    stats = pipe.snapshot_stats()
    assert stats.windows_skipped == 0 and stats.events_shed == 0
    gui = pipe.recent_predictions()
    report = classify_stream(str(GESTURES), RunConfig(device="cpu"))
    run = report["predictions"]
    assert len(gui) == len(run) == report["windows_classified"] > 100
    assert [p.t_end for p in gui] == [r["t_end_us"] for r in run]
    np.testing.assert_allclose(np.array([p.probs for p in gui]), np.array([r["probs"] for r in run]), atol=2e-5)


# ============================================================================ issue 11: failures, settings, layout
def _damaged_copy(tmp_path) -> Path:
    """The shipped recording with its second events chunk (3.4-6.8 s) overwritten."""
    import h5py

    if not GESTURES.is_file():
        pytest.skip("shipped gesture recording missing")
    path = tmp_path / "damaged.h5"
    data = bytearray(GESTURES.read_bytes())
    with h5py.File(GESTURES, "r") as f:
        offset = f["events/x"].id.get_chunk_info(1).byte_offset
    data[offset:offset + 256] = bytes(range(256))
    path.write_bytes(bytes(data))
    return path


@needs_qt
def test_damaged_recording_shows_banner_and_stderr(qtbot, tmp_path, capfd):
    """A real failing source: the HDF5 reader hits the damaged chunk mid-replay; the
    banner says what stopped, why and what to do, and stderr gets the same line."""
    win = _make_window(qtbot, tmp_path, source=str(_damaged_copy(tmp_path)), speed=4.0, loop=False)
    qtbot.waitUntil(lambda: win.error_banner.isVisible(), timeout=20_000)
    banner = win.error_text.text()
    assert "The stream stopped" in banner and "damaged" in banner and "Press Play" in banner
    assert "damaged" in win.message.text()
    err = capfd.readouterr().err
    assert err.count("dvsstream gui: The stream stopped:") == 1 and "damaged.h5" in err
    assert win.errors and win.controller.pipeline.finished


@needs_qt
def test_refused_connection_exits_2_unattended(qtbot, tmp_path, capfd):
    """A refused TCP connection at start: banner, one stderr line, exit status 2, and the
    panels say there is no stream while the model in use is still shown."""
    import socket

    from dvsstream.gui.app import run_gui

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = run_gui(source=f"tcp://127.0.0.1:{port}", exit_after=2, settings_path=tmp_path / "g.json",
                   screenshot=tmp_path / "s.png")
    assert code == 2
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("dvsstream gui:")]
    assert len(lines) == 1 and "The source could not be opened" in lines[0] and str(port) in lines[0]
    saved = state.load_settings(tmp_path / "g.json")
    assert saved.source is None and f"tcp://127.0.0.1:{port}" not in saved.recent_sources  # never saved


@needs_qt
def test_missing_checkpoint_shows_no_model_and_exits_2(qtbot, tmp_path, capfd):
    from dvsstream.gui.app import run_gui
    from dvsstream.gui.qt.window import MainWindow

    win = MainWindow(Settings(output_dir=str(tmp_path)), tmp_path / "g.json", checkpoint=str(tmp_path / "no.pt"))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.error_banner.isVisible(), timeout=10_000)
    assert "The model could not be loaded" in win.error_text.text() and "no such checkpoint" in win.last_error
    assert win.checkpoint_label.text().startswith("none") and win.model_label.text() == "no model"
    assert not win.window_spin.isEnabled() and win.window_spin.text().strip() == "–"
    assert "no model" in win.attention.frame.title.text() and "no model" in win.predictions.top_label.text()
    win.close()
    assert state.load_settings(tmp_path / "g.json").checkpoint is None  # a failed checkpoint is not saved
    code = run_gui(checkpoint=str(tmp_path / "no.pt"), exit_after=1, settings_path=tmp_path / "g2.json")
    assert code == 2 and "no such checkpoint" in capfd.readouterr().err


@needs_qt
def test_settings_round_trip_from_another_folder(qtbot, tmp_path, monkeypatch):
    """A source opened by a relative path is remembered absolutely: the window started
    from another folder plays the same file."""
    import shutil

    from dvsstream.gui.qt.window import MainWindow

    if not GESTURES.is_file():
        pytest.skip("shipped gesture recording missing")
    here, there = tmp_path / "a", tmp_path / "b"
    here.mkdir()
    there.mkdir()
    shutil.copy(GESTURES, here / "mine.h5")
    monkeypatch.chdir(here)
    win = MainWindow(Settings(output_dir=str(tmp_path)), tmp_path / "g.json", source="mine.h5")
    qtbot.addWidget(win)
    win.show()
    _wait_prediction(qtbot, win)
    win.close()
    saved = state.load_settings(tmp_path / "g.json")
    assert saved.source == str(here / "mine.h5") and saved.recent_sources[0] == str(here / "mine.h5")
    monkeypatch.chdir(there)
    again = MainWindow(saved, tmp_path / "g.json")
    qtbot.addWidget(again)
    again.show()
    _wait_prediction(qtbot, again)
    assert again.controller.source_uri == str(here / "mine.h5") and not again.errors
    assert again.source_combo.currentText() == "mine.h5"
    again.close()


@needs_qt
def test_stale_settings_fall_back_with_a_note(qtbot, tmp_path, capfd):
    """A remembered source and checkpoint that no longer exist: the defaults play, a
    note says so, the stale values are forgotten, and it is not a failure."""
    from dvsstream.gui.app import run_gui

    if not GESTURES.is_file():
        pytest.skip("shipped gesture recording missing")
    path = tmp_path / "g.json"
    stale = Settings(source=str(tmp_path / "gone.h5"), checkpoint=str(tmp_path / "gone.pt"), hop_ms=100)
    stale.remember_source(str(tmp_path / "gone.h5"))
    state.save_settings(stale, path)
    code = run_gui(exit_after=4, settings_path=path, screenshot=tmp_path / "s.png")
    err = capfd.readouterr().err
    assert code == 0, err
    assert err.count("note: The checkpoint remembered") == 1 and err.count("note: The source remembered") == 1
    assert str(tmp_path / "gone.pt") in err and str(tmp_path / "gone.h5") in err  # the note names them
    assert "could not be loaded:" not in err and "could not be opened:" not in err  # not reported as failures
    healed = state.load_settings(path)
    assert healed.source is None and healed.checkpoint is None and healed.hop_ms is None
    from dvsstream.gui.qt.window import MainWindow

    win = MainWindow(state.load_settings(path), None)
    qtbot.addWidget(win)
    assert win.source_combo.findData(str(tmp_path / "gone.h5")) == -1  # a moved file is not offered


@needs_qt
def test_stale_source_note_in_window(qtbot, tmp_path):
    from dvsstream.gui.qt.window import MainWindow

    if not GESTURES.is_file():
        pytest.skip("shipped gesture recording missing")
    win = MainWindow(Settings(source=str(tmp_path / "gone.h5"), output_dir=str(tmp_path)), None)
    qtbot.addWidget(win)
    win.show()
    _wait_prediction(qtbot, win)
    assert win.note_banner.isVisible() and "gone.h5" in win.note_text.text()
    assert not win.error_banner.isVisible() and not win.errors
    assert win.controller.source_uri == str(GESTURES.resolve())


@needs_qt
def test_reset_settings_keeps_the_old_file(qtbot, tmp_path):
    from dvsstream.gui.app import run_gui

    path = tmp_path / "g.json"
    state.save_settings(Settings(speed=3.0, attention_kind="matrix"), path)
    before = path.read_bytes()
    assert run_gui(exit_after=1, settings_path=path, reset_settings=True) == 0
    assert (tmp_path / "g.json.bak").read_bytes() == before
    assert state.load_settings(path).speed == 1.0 and state.load_settings(path).attention_kind == "spatial"


@needs_qt
def test_geometry_fits_a_1280x720_screen(qtbot, tmp_path):
    """The default size and a restored 1900x1200 geometry both end up inside a 1280x720
    screen's available area (title bar included)."""
    from PySide6 import QtCore

    from dvsstream.gui.qt.window import MainWindow, clamp_to_screen, fit_rect

    avail = QtCore.QRect(0, 0, 1280, 690)  # 1280x720 less a 30 px panel
    assert fit_rect(QtCore.QRect(100, 50, 1560, 940), avail) == QtCore.QRect(0, 0, 1280, 690)
    assert fit_rect(QtCore.QRect(900, 500, 600, 400), avail) == QtCore.QRect(680, 290, 600, 400)
    win = MainWindow(Settings(), None, autostart=False)
    qtbot.addWidget(win)
    win.resize(1900, 1200)
    win.move(300, 200)
    clamp_to_screen(win, avail)
    assert avail.contains(win.frameGeometry()) and win.width() <= 1280
    win.show()
    qtbot.waitExposed(win)
    assert win.minimumSizeHint().width() <= 1280 and win.minimumSizeHint().height() <= 690
    win.resize(1280, 690)
    assert win.width() == 1280 and win.height() == 690  # the layout can shrink that far
    saved = bytes(win.saveGeometry().toHex()).decode("ascii")
    again = MainWindow(Settings(geometry=saved), None, autostart=False)
    qtbot.addWidget(again)
    screen = again.screen().availableGeometry()
    assert again.width() <= screen.width() and again.height() <= screen.height()


@needs_qt
def test_long_titles_are_elided_with_tooltips(qtbot):
    from dvsstream.gui.qt.panels import ElidedLabel

    label = ElidedLabel("Events · 128×128 sensor · last 400 ms of a very long recording name.aedat4")
    qtbot.addWidget(label)
    label.resize(120, 20)
    label.show()
    qtbot.waitExposed(label)
    assert label.shown_text().endswith("…") and label.text().startswith("Events")
    assert label.toolTip() == label.text()
    label.resize(2000, 20)
    qtbot.wait(10)
    assert label.shown_text() == label.text() and label.toolTip() == ""


@needs_qt
def test_panels_readable_predictions_and_attention(window, qtbot):
    """Per-class values with a 0 tick, the overlay in the legend's colour, head maps
    over the events, patch-coordinate ticks, no true-label legend without labels."""
    win = window
    qtbot.waitUntil(lambda: any(t for t in win.predictions.value_texts()), timeout=5_000)
    values = win.predictions.value_texts()
    assert len(values) == len(win.controller.pipeline.class_names) and all(v.endswith("%") for v in values)
    ticks = win.predictions.bars_plot.getAxis("bottom")._tickLevels[0]
    assert (0.0, "0") in ticks
    assert np.array_equal(win.event_view.overlay.lut, display.overlay_lut())
    legend = win.event_view.frame.legend.text()
    assert display.hex_colour(display.overlay_swatches(6)[-1]) in legend and "both in one pixel" in legend
    qtbot.waitUntil(lambda: win.attention.scenes[0][0].image is not None
                    and win.attention.scenes[0][0].image.shape[0] > 1, timeout=5_000)
    assert win.attention.scenes[0][0].image.any()  # the events under head 0
    top = win.attention.plots[0].getAxis("top")._tickLevels[0]
    assert [label for _, label in top][:2] == ["0", "2"]
    assert "shared spikes" in win.attention.bar.axis.labelText
    assert "pads the border" in win.attention.frame.toolTip()
    assert "true label" in win.history.frame.legend.text()  # the shipped recording is labelled


@needs_qt
def test_matrix_view_has_patch_row_ticks(window, qtbot):
    win = window
    win.set_attention_kind("matrix")
    h, w = win.controller.loaded.model.grid
    qtbot.waitUntil(lambda: win.attention.displayed_shape() == (h * w, h * w), timeout=5_000)
    left = win.attention.plots[0].getAxis("left")._tickLevels[0]
    top = win.attention.plots[0].getAxis("top")._tickLevels[0]
    assert left[0] == (0, "0") and left[1][0] == 2 * w  # every other patch row starts there
    rows, cols = display.grid_shape(len(win.attention.images[0]))
    assert len(left) // rows == len(top) // cols > 0  # every row and column of head tiles has ticks


def test_history_marks_loops_one_recording_apart():
    """A 0.59 s recording looping with a 400 ms window and a 50 ms hop: after each loop the
    model warms up for a window, so only 4 predictions (and the flushed end) per loop; the
    marks are one recording apart on the strip's seconds axis, not 5 columns (0.25 s)."""
    start, end, hop = 10_000_000, 10_590_000, 50_000
    one_loop = [start + 400_000 + k * hop for k in range(4)] + [start + 600_000]  # the flushed end
    preds = [_P(np.ones(2) / 2, None, t, t - 400_000 if t < start + 600_000 else start + 200_000)
             for _ in range(4) for t in one_loop]
    x, restarts = state.history_timeline(preds, hop, (start, end))
    assert np.all(np.diff(x) > 0) and np.diff(restarts) == pytest.approx([end - start] * 2)
    _, _, marks = state.history_arrays(preds, 2, 200, hop, (start, end))
    assert len(marks) == 3 and np.diff(marks) == pytest.approx([0.59, 0.59])
    assert all(-10.0 <= m <= 0 for m in marks)
    # a seek back (its window starts far from the recording's start): one hop on, a mark
    seek = [_P(np.ones(2) / 2, None, t) for t in (start + 500_000, start + 550_000, start + 450_000)]
    x, restarts = state.history_timeline(seek, hop, (start, end))
    assert list(np.diff(x)) == [hop, hop] and restarts == [int(x[1]) + hop // 2]


def test_domain_note_only_for_synthetic_models_on_real_data():
    assert state.domain_note(True, "camera") and state.domain_note(True, "network")
    assert state.domain_note(True, "file", "DVS128_0279")
    assert state.domain_note(True, "file", "dvsstream-synth") is None
    assert state.domain_note(True, "synthetic") is None and state.domain_note(False, "camera") is None


@needs_qt
def test_domain_note_on_a_real_recording(qtbot, tmp_path, real_data):
    win = _make_window(qtbot, tmp_path, source=str(real_data("dvSave-2024_06_20_15_59_41.aedat4")))
    _wait_prediction(qtbot, win, timeout=20_000)
    assert win.predictions.domain_label.isVisible() and "synthetic" in win.predictions.domain_label.text()
    win.open_source(str(GESTURES))
    assert not win.predictions.domain_label.isVisible()


@needs_qt
def test_save_clip_frame_count_and_size(window, qtbot, tmp_path):
    import av

    win = window
    fps = win.clip_buffer.fps
    qtbot.waitUntil(lambda: len(win.clip_buffer) >= 2 * fps, timeout=15_000)
    win.set_paused(True)
    n = len(win.clip_buffer)
    out = win.save_clip(tmp_path / "clip.mp4")
    with av.open(str(out)) as box:
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    assert len(frames) == n and abs(len(frames) / fps - n / fps) < 1e-9
    assert frames[0].shape[0] >= 384 and frames[0].shape[0] % 2 == 0 and frames[0].shape[1] % 2 == 0
    with pytest.raises(Exception, match="exists"):
        win.save_clip(out)  # never replaced without asking
    win.save_clip_in_background(tmp_path / "bg.gif")
    qtbot.waitUntil(lambda: (tmp_path / "bg.gif").is_file() and "clip saved" in win.last_message, timeout=20_000)


@needs_qt
def test_export_clip_option(qtbot, tmp_path, capfd):
    from dvsstream.gui.app import run_gui

    if not GESTURES.is_file():
        pytest.skip("shipped gesture recording missing")
    out = tmp_path / "c.gif"
    assert run_gui(exit_after=3, settings_path=tmp_path / "g.json", export_clip=out) == 0
    assert out.is_file() and out.stat().st_size > 10_000
    before = out.read_bytes()
    assert run_gui(exit_after=1, settings_path=tmp_path / "g.json", export_clip=out) == 2  # exists
    assert "pass --force" in capfd.readouterr().err and out.read_bytes() == before
    assert run_gui(exit_after=1, settings_path=tmp_path / "g.json", export_clip=tmp_path / "c.avi") == 2


def test_no_display_is_one_line_not_an_abort(tmp_path):
    """Without a screen Qt aborts the process (status 134); the command says why instead."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(HOME=str(tmp_path), DVSSTREAM_GUI_SETTINGS=str(tmp_path / "g.json"))
    proc = subprocess.run([sys.executable, "-m", "dvsstream.cli", "gui", "--exit-after", "1"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("dvsstream gui: no display") and len(proc.stderr.strip().splitlines()) == 1


# ============================================================================ the region
def test_fit_region_keeps_the_model_aspect_inside_the_sensor():
    pytest.importorskip("pyqtgraph")
    from dvsstream.gui.qt.event_view import fit_region

    assert fit_region(40.4, 0.2, 200.3, 187.0, (320, 240), (64, 64)) == (40, 0, 200, 200)  # width leads
    assert fit_region(100, 50, 300, 300, (320, 240), (64, 64)) == (80, 0, 240, 240)  # shrunk, moved in
    assert fit_region(10, 10, 20, 20, (320, 240), (64, 64)) == (10, 10, 64, 64)  # at least the input
    assert fit_region(0, 0, 200, 10, (346, 260), (64, 48)) == (0, 0, 200, 150)  # a 4:3 input
    assert fit_region(-5, 300, 128, 128, (320, 240), (64, 64)) == (0, 112, 128, 128)


@needs_qt
def test_region_resized_by_its_handle_feeds_the_model(qtbot, tmp_path, real_data):
    """Dragging the outline's corner handle on the real DVXplorer recording: the region
    keeps the model's square shape, the pipeline is rebuilt on it (BinningConfig.roi, the
    binner's region) and predictions go on coming."""
    from PySide6 import QtCore

    win = _make_window(qtbot, tmp_path, source=str(real_data("dvxplorer_sample.aedat4")), loop=True)
    _wait_prediction(qtbot, win, timeout=60_000)
    ev = win.event_view
    assert win.controller.pipeline.binning.roi == (40, 0, 240, 240) and ev.region_item.isVisible()
    handle = ev.region_handle
    assert handle in [h["item"] for h in ev.region_item.handles]
    ev.region_item.movePoint(handle, QtCore.QPointF(200.0, 160.0), finish=True)  # the corner to (200, 160)
    qtbot.waitUntil(lambda: win.controller.pipeline.binning.roi == (40, 0, 160, 160), timeout=10_000)
    ev.region_item.movePoint(handle, QtCore.QPointF(250.0, 180.0), finish=True)  # 210 x 180: not square
    qtbot.waitUntil(lambda: win.controller.pipeline.binning.roi != (40, 0, 160, 160), timeout=10_000)
    p = win.controller.pipeline
    x0, y0, w, h = p.binning.roi
    assert (x0, y0) == (40, 0) and w == h and 180 <= w <= 210  # the model's square shape kept
    assert not win.errors and p.binning.frame_size((320, 240)) == (64, 64)
    assert tuple(ev.region_item.size()) == (w, h) and tuple(ev.region_item.pos()) == (40, 0)
    win._last_pred = None
    pred = _wait_prediction(qtbot, win, timeout=20_000)
    assert pred.probs.shape == (len(p.class_names),) and abs(float(pred.probs.sum()) - 1) < 1e-4
    assert win.controller.pipeline is p  # the prediction comes from the resized region's pipeline
    # a handle dragged past the sensor is held at its edge: the region stays
    ev.region_item.movePoint(handle, QtCore.QPointF(400.0, 400.0), finish=True)
    qtbot.wait(300)
    assert win.controller.pipeline.binning.roi == (40, 0, w, h) and not win.errors


@needs_qt
def test_sensor_size_reaches_a_prophesee_recording(qtbot, tmp_path, real_data):
    """gui --sensor-size: the real N-CARS DAT file (no geometry in its header) is shown
    and binned as a 120x100 sensor; the default region is the centred 100x100 square."""
    win = _make_window(qtbot, tmp_path, source=str(real_data("ncars_sample.dat")))
    win.controller.sensor_size = (120, 100)  # before the first build, as run_gui sets it
    qtbot.waitUntil(lambda: win.controller.pipeline is not None, timeout=30_000)
    assert win.event_view.sensor == (120, 100) and not win.errors
    assert win.controller.pipeline.binning.roi == (10, 0, 100, 100)
