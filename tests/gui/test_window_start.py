"""A window that says why it cannot start, and the offscreen window laid out as on a
1280x720 desktop.

The platform check runs ``ldd`` on a real shared object: a stand-in for Qt's xcb plugin,
compiled here, that links a library which is then deleted (as ``libxcb-cursor0`` is
absent from a fresh Debian), and Qt's own plugin as installed."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dvsstream.gui.platform_check import (
    debian_package,
    missing_libraries,
    platform_problem,
    plugin_dirs,
)

ROOT = Path(__file__).resolve().parents[2]
needs_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's xcb plugin is Linux's")


def _compile_plugin(folder: Path, keep_library: bool, name: str = "xcb") -> Path:
    """``folder/platforms/libq<name>.so``: a shared object that links
    ``libdvsstream-gone.so.7`` (kept in ``folder/lib`` with ``keep_library``, else deleted)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a stand-in plugin")
    lib, platforms = folder / "lib", folder / "platforms"
    lib.mkdir(parents=True)
    platforms.mkdir()
    (folder / "gone.c").write_text("int dvsstream_gone(void) { return 7; }\n")
    (folder / "plugin.c").write_text("int dvsstream_gone(void);\nint plugin_entry(void) { return dvsstream_gone(); }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib / "libdvsstream-gone.so.7"),
                    "-Wl,-soname,libdvsstream-gone.so.7", str(folder / "gone.c")], check=True)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(platforms / f"libq{name}.so"), str(folder / "plugin.c"),
                    "-L", str(lib), "-l:libdvsstream-gone.so.7"], check=True)
    if not keep_library:
        (lib / "libdvsstream-gone.so.7").unlink()
    return platforms / f"libq{name}.so"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "LD_LIBRARY"))}
    env.update(extra)
    return env


def test_debian_package_names():
    assert debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libxcb-keysyms.so.1") == "libxcb-keysyms1"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libxcb-xinput.so.0") == "libxcb-xinput0"  # Debian's rule
    assert debian_package("libdvsstream-gone.so.7") == "libdvsstream-gone7"


@needs_linux
def test_a_plugin_with_a_missing_library_is_named_with_its_package(tmp_path):
    plugin = _compile_plugin(tmp_path, keep_library=False)
    env = _env(QT_QPA_PLATFORM="xcb", QT_QPA_PLATFORM_PLUGIN_PATH=str(plugin.parent), DISPLAY=":99")
    assert plugin_dirs(env)[0] == plugin.parent
    assert missing_libraries(plugin, env) == ["libdvsstream-gone.so.7"]
    problem = platform_problem(env)
    assert problem is not None and "\n" not in problem
    assert "libdvsstream-gone.so.7" in problem and "apt-get install libdvsstream-gone7" in problem
    assert "QT_QPA_PLATFORM=offscreen" in problem


@needs_linux
def test_the_same_plugin_with_its_library_found_passes(tmp_path):
    """The check is the loader's: the library back on the search path, no complaint (a
    platform of another name: xcb's check also asks an X server)."""
    plugin = _compile_plugin(tmp_path, keep_library=True, name="dvsfake")
    env = _env(QT_QPA_PLATFORM="dvsfake", QT_QPA_PLATFORM_PLUGIN_PATH=str(plugin.parent),
               LD_LIBRARY_PATH=str(tmp_path / "lib"))
    assert missing_libraries(plugin, env) == []
    assert platform_problem(env) is None
    # Qt tries each platform named: one that loads is enough
    broken = _compile_plugin(tmp_path / "broken", keep_library=False)
    env = _env(QT_QPA_PLATFORM="xcb;offscreen", QT_QPA_PLATFORM_PLUGIN_PATH=str(broken.parent))
    assert platform_problem(env) is None


@needs_linux
def test_gui_exits_2_naming_the_libraries_instead_of_aborting(tmp_path):
    """Without the check Qt loads the plugin, fails and aborts the process (134)."""
    plugin = _compile_plugin(tmp_path / "qt", keep_library=False)
    env = _env(QT_QPA_PLATFORM="xcb", QT_QPA_PLATFORM_PLUGIN_PATH=str(plugin.parent), DISPLAY=":99",
               HOME=str(tmp_path), PYTHONPATH=str(ROOT), DVSSTREAM_GUI_SETTINGS=str(tmp_path / "g.json"))
    proc = subprocess.run([sys.executable, "-m", "dvsstream", "gui", "--exit-after", "1"], env=env,
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dvsstream gui: Qt's xcb platform plugin cannot load")
    assert "libdvsstream-gone.so.7" in lines[0] and "libdvsstream-gone7" in lines[0]


@needs_linux
def test_the_installed_xcb_plugin_is_judged_by_the_loader():
    """Qt's own xcb plugin: every library the check calls missing really fails to load,
    and when it calls none missing the plugin itself loads."""
    import ctypes

    pytest.importorskip("PySide6")
    env = _env(QT_QPA_PLATFORM="xcb")
    plugin = next((d / "libqxcb.so" for d in plugin_dirs(env) if (d / "libqxcb.so").is_file()), None)
    if plugin is None:
        pytest.skip("this PySide6 has no xcb plugin")
    missing = missing_libraries(plugin, env)
    problem = platform_problem(env)
    if not missing:
        assert problem is None or "system libraries" not in problem  # at most: no X server here
        return
    for name in missing:
        with pytest.raises(OSError):
            ctypes.CDLL(name)
        assert name in problem and debian_package(name) in problem


def _no_server(display: str = ":97") -> str:
    if Path(f"/tmp/.X11-unix/X{display[1:]}").exists():
        pytest.skip(f"an X server runs at {display}")
    return display


@needs_linux
def test_no_x_server_at_display_is_one_line_not_an_abort(tmp_path):
    """DISPLAY set but no X server there (a stale ssh -X, Xvfb not started): Qt's xcb
    plugin aborts the process (134) after "could not connect to display"."""
    from dvsstream.gui.platform_check import x_display_problem

    display = _no_server()
    assert x_display_problem({"DISPLAY": display}) == f"no X server answers at DISPLAY={display}"
    env = _env(DISPLAY=display, HOME=str(tmp_path), PYTHONPATH=str(ROOT), DVSSTREAM_GUI_SETTINGS=str(tmp_path / "g"))
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run([sys.executable, "-m", "dvsstream", "gui", "--exit-after", "1"], env=env,
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dvsstream gui: Qt's xcb platform"), lines


@needs_linux
def test_a_running_x_server_passes():
    """Under Xvfb (xvfb-run) the check finds the server (and, there, every library)."""
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed")
    code = ("from dvsstream.gui.platform_check import x_display_problem, platform_problem as p; "
            "print(x_display_problem(), '|', p())")
    proc = subprocess.run(["xvfb-run", "-a", sys.executable, "-c", code], env=_env(PYTHONPATH=str(ROOT)),
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    x_problem, problem = (part.strip() for part in proc.stdout.strip().rsplit("\n", 1)[-1].split("|"))
    assert x_problem == "None"
    assert problem == "None" or "system libraries" in problem  # only missing libraries could stop it there


# ============================================================================ offscreen
def test_offscreen_screenshot_is_1280x720_without_qt_noise(tmp_path):
    """``QT_QPA_PLATFORM=offscreen dvsstream gui --screenshot`` (what the no-display message
    suggests): the layout of a 1280x720 desktop, and none of Qt's propagateSizeHints lines."""
    pytest.importorskip("PySide6")
    from PIL import Image

    shot = tmp_path / "s.png"
    env = _env(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "dvsstream", "gui", "--source", "synthetic:", "--screenshot",
                           str(shot), "--exit-after", "2", "--settings", str(tmp_path / "g.json")],
                          env=env, check=False, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "propagateSizeHints" not in proc.stderr
    with Image.open(shot) as picture:
        assert picture.size == (1280, 720)


def test_offscreen_window_is_1280x720(qtbot):
    pytest.importorskip("pyqtgraph")
    from dvsstream.gui.qt.window import HEADLESS_SCREEN, MainWindow
    from dvsstream.gui.state import Settings

    win = MainWindow(Settings(), None, autostart=False)
    qtbot.addWidget(win)
    assert (win.width(), win.height()) == HEADLESS_SCREEN == (1280, 720)


# ============================================================================ a short recording looping
def test_looping_a_short_recording_marks_each_loop_and_keeps_the_heads(qtbot, tmp_path, real_data):
    """The 0.59 s DVXplorer file looping (every window classified): the history's "loop"
    marks are one recording apart, the head panels' event pictures are never blanked by a
    loop, and a clip saved from the window shows the whole 320x240 sensor with the region
    outlined and the synthetic-only caveat."""
    pytest.importorskip("pyqtgraph")
    import numpy as np

    from dvsstream.gui.qt.window import MainWindow
    from dvsstream.gui.state import Settings
    from dvsstream.render import display

    path = real_data("dvxplorer_sample.aedat4")
    win = MainWindow(Settings(loop=True), None, source=str(path), deterministic=True)
    qtbot.addWidget(win)
    scenes: list[int] = []
    draw = win._draw_prediction

    def spy(p, pred):
        draw(p, pred)
        scene = win.attention.scenes[0][0].image
        scenes.append(int(np.count_nonzero(scene != 0)) if scene is not None else 0)

    win._draw_prediction = spy
    win.show()
    qtbot.waitUntil(lambda: len(win.history.mark_positions()) >= 3, timeout=120_000)
    start, end = win.controller.time_range()
    marks = win.history.mark_positions()
    assert np.diff(marks) == pytest.approx((end - start) / 1e6, abs=1e-3)  # 0.59 s, not 5 columns
    assert min(scenes[1:]) > 0.5 * max(scenes)  # no head panel emptied just after a loop
    clip = win.clip_buffer.frames()[-1]
    assert clip.events.shape == (2, 240, 320) and clip.region == (40, 0, 240, 240)
    assert clip.note and "synthetic" in clip.note
    assert display.domain_note(True, "file", "DVXplorer") == clip.note
    win.close()
