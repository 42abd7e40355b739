"""The window's Teach panel: record classes from the running source into a teach folder,
list and remove them, train with the real ``teach`` in the background while the stream
runs, and swap the new model in (a real Qt window, offscreen)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dvsstream.gui import state
from dvsstream.gui.state import Settings
from dvsstream.gui.teach import TeachFolder, check_class_name
from dvsstream.errors import DvsstreamError

HAVE_QT = all(importlib.util.find_spec(m) for m in ("PySide6", "pyqtgraph", "pytestqt"))
needs_qt = pytest.mark.skipif(not HAVE_QT, reason="PySide6, pyqtgraph and pytest-qt are needed")
GESTURES = Path(__file__).resolve().parents[2] / "recordings" / "gestures_waves_and_clap.h5"


@pytest.fixture(autouse=True)
def _private_settings(monkeypatch, tmp_path):
    monkeypatch.setenv(state.SETTINGS_ENV, str(tmp_path / "settings.json"))


def test_teach_folder_lists_classes_and_moves_removed_ones_aside(tmp_path):
    from dvsstream.events import EVENT_DTYPE
    from dvsstream.io.hdf5 import RecordingWriter
    import numpy as np

    folder = TeachFolder(tmp_path / "teach")
    assert folder.classes() == []
    path = folder.new_recording("wave")
    ev = np.zeros(100, EVENT_DTYPE)
    ev["t"] = np.linspace(0, 3_000_000, 100).astype(np.int64)
    with RecordingWriter(path, (128, 128), "test") as w:
        w.write(ev)
    (tmp_path / "teach" / "clap").mkdir()
    rows = folder.classes()
    assert [r.name for r in rows] == ["clap", "wave"]
    assert rows[1].files == (path,) and rows[1].seconds == pytest.approx(3.0)
    aside = folder.remove_class("wave")
    assert (aside / path.name).is_file() and aside.parent.name == ".removed"  # the recording is kept
    assert [r.name for r in folder.classes()] == ["clap"]  # hidden folders are no class
    for bad in ("", "  ", "a/b", ".hidden"):
        with pytest.raises(DvsstreamError):
            check_class_name(bad)


@needs_qt
def test_teach_panel_records_trains_and_swaps_the_model(qtbot, tmp_path):
    from dvsstream.gui.qt.window import MainWindow
    from dvsstream.gui.qt.window_teach import teach_in_background

    if not GESTURES.is_file():
        pytest.skip("shipped gesture recording missing")
    win = MainWindow(Settings(output_dir=str(tmp_path / "out")), tmp_path / "settings.json", source=str(GESTURES),
                     deterministic=True)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win._last_pred is not None, timeout=30_000)
    win.set_teach_folder(tmp_path / "teach")
    assert not win.teach.train_button.isEnabled()  # fewer than two classes
    for name in ("waves", "clap", "extra"):
        win.record_teach_class(name, 3.0)
        qtbot.waitUntil(lambda: win._teach_recording is None, timeout=30_000)
    rows = {c.name: c for c in win.teach_folder.classes()}
    assert sorted(rows) == ["clap", "extra", "waves"] and all(c.seconds > 2.0 for c in rows.values())
    assert win.teach.class_list.count() == 3 and win.teach.train_button.isEnabled()
    win.teach.class_list.item(1).setSelected(True)  # "extra"
    win.remove_teach_class()
    assert [c.name for c in win.teach_folder.classes()] == ["clap", "waves"]
    assert any((tmp_path / "teach" / ".removed").iterdir())
    # train with the real teach (a few epochs) while the stream goes on
    pipeline = win.controller.pipeline
    before = pipeline.snapshot_stats().windows_classified
    job = win.train_taught(runner=lambda root, out, progress: teach_in_background(
        root, out, progress, epochs=2, from_scratch=True))
    qtbot.waitUntil(lambda: job.done, timeout=600_000)
    assert job.error is None, job.error
    assert pipeline.snapshot_stats().windows_classified > before  # classified all along
    qtbot.waitUntil(lambda: win._teach_job is None, timeout=5_000)
    assert win.controller.loaded.class_names == ["clap", "waves"]
    assert Path(win.controller.loaded.checkpoint) == Path(job.result)
    assert Path(job.result).parent == tmp_path / "out"  # the window's output folder, not a class folder
    assert [c.name for c in win.teach_folder.classes()] == ["clap", "waves"]
    qtbot.waitUntil(lambda: win.controller.pipeline.snapshot_stats().windows_classified > 0, timeout=30_000)
    assert "taught" in win.teach.status.text() and win.last_error is None
