"""Start the desktop window: ``run_gui()`` from Python, ``dvsstream gui`` from a shell
(its options and checks are in :mod:`dvsstream.cli.gui`).

``--screenshot PNG --exit-after S`` saves the window after ``S`` seconds and exits (0, or
2 when something failed: the banner's text is on stderr): unattended runs and tests
(pyqtgraph's ``VideoSpeedTest`` idea of a flag that lets the app run by itself).
``--verbose`` prints the time to the first drawn event frame and the display rate.

Importing this module imports no Qt; :func:`run_gui` does. It never imports the CLI.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Optional

__all__ = ["process_age_s", "run_gui"]


def process_age_s() -> Optional[float]:
    """Seconds since this process started (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def run_gui(
    source: Optional[str] = None,
    checkpoint: Optional[str] = None,
    *,
    screenshot: Optional[str | os.PathLike] = None,
    exit_after: Optional[float] = None,
    settings_path: Optional[str | os.PathLike] = None,
    speed: Optional[float] = None,
    device: Optional[str] = None,
    deterministic: bool = False,
    verbose: bool = False,
    save_settings: bool = True,
    reset_settings: bool = False,
    export_clip: Optional[str | os.PathLike] = None,
    force: bool = False,
    roi: Optional[tuple[int, int, int, int]] = None,
    resize: Optional[tuple[int, int]] = None,
    start_s: Optional[float] = None,
    sensor_size: Optional[tuple[int, int]] = None,
    noise_filter: str | None = None,
    teach_folder: Optional[str | os.PathLike] = None,
) -> int:
    """Open the window and run the Qt event loop until it closes; returns the exit code.
    ``start_s``: a recording starts this many seconds after its first event.

    ``source``: any :func:`~dvsstream.io.open_source` URI (default: the last one
    used, else the shipped gesture recording looping in real time). ``checkpoint``: our
    checkpoint (default: the last one, else the shipped gesture model). ``speed``:
    replay pace of recordings. ``settings_path``: the JSON settings file (default:
    ``$DVSSTREAM_GUI_SETTINGS`` or the user's config folder); ``save_settings=False``
    reads it but leaves it unchanged. ``screenshot`` with ``exit_after``: save a PNG of
    the window after that many seconds, then exit (0, or 1 when the PNG could not be
    written); ``screenshot`` alone: 1 s after the first frame; ``exit_after`` alone:
    just close. ``device``: for the model (default: CUDA when present).
    ``deterministic``: never skip a window or shed load -- the source waits for the
    classifier, so a recording gives exactly the predictions of ``dvsstream run``. ``verbose``:
    print the time to the first frame and the display rate. ``reset_settings``: start from
    the defaults (the old file is kept beside it as ``.bak``). ``export_clip``: save the
    last seconds shown as MP4/GIF when the window closes (an existing file only with
    ``force``). ``roi`` ``(x0, y0, w, h)`` / ``resize`` ``(w, h)``: the region of the
    sensor the model sees and its size (default: the largest centred region of the
    model's shape when the sensor does not pool exactly to it). ``sensor_size`` ``(w, h)``:
    the sensor of the Prophesee and ``.npy`` recordings opened whose header states none.
    ``noise_filter``: a ``--filter`` (text or spec) in place of the settings' one.
    ``teach_folder``: the Teach panel's folder (scrolled into view). Failures (a source
    or checkpoint that does not load, a stream that stops with an error) are shown in a
    banner and printed to stderr; an unattended run (``screenshot`` or ``exit_after``)
    that saw one returns 2. With a ``QApplication`` already running (a notebook,
    pytest-qt) the window runs in a local event loop until it closes.
    """
    t_origin = time.perf_counter()
    age0 = process_age_s()
    from dvsstream.gui import state
    from dvsstream.gui.controller import preload

    path = Path(settings_path) if settings_path is not None else state.default_settings_path()
    problem = _check_arguments(speed, export_clip, force)
    if problem:
        print(f"dvsstream gui: {problem}", file=sys.stderr)
        return 2
    settings = _load_settings(path, reset_settings, speed=speed, noise_filter=noise_filter)
    app, owns_app, no_display = _running_application()
    if no_display:
        print(f"dvsstream gui: {no_display}", file=sys.stderr)
        return 2
    # the model loads (torch imports) in the background while the window is built
    preload(checkpoint if checkpoint is not None else settings.checkpoint, device)
    if owns_app:
        app = _new_application()
    win = _open_window(settings, path if save_settings else None, source=source, checkpoint=checkpoint,
                       device=device, deterministic=deterministic, t_origin=t_origin, roi=roi, resize=resize,
                       start_s=start_s, sensor_size=sensor_size, export_clip=export_clip,
                       teach_folder=teach_folder)
    unattended = screenshot is not None or exit_after is not None
    result = _schedule_the_end(win, screenshot, exit_after, verbose, age0)
    win.show()
    _exec(app, owns_app, win)
    if unattended and win.errors:
        return 2
    return result["code"]


def _load_settings(path: Path, reset: bool, speed: float | None = None, noise_filter=None):
    """The settings in ``path`` (:class:`~dvsstream.gui.state.Settings`); ``reset``: start
    from the defaults, the old file kept beside it (said on stderr); ``speed`` and
    ``noise_filter`` (not None) replace the file's."""
    from dvsstream.gui import state

    if reset:
        kept = state.reset_settings(path)
        print("dvsstream gui: settings reset to the defaults" + (f" (the old ones are in {kept})" if kept else ""),
              file=sys.stderr)
    settings = state.load_settings(path)
    if speed is not None:
        settings.speed = float(speed)
    if noise_filter is not None:
        settings.noise_filter = str(noise_filter)
    return settings


def _running_application():
    """``(app, owns_app, no_display)``: the ``QApplication`` already running (a notebook,
    pytest-qt) or None, whether this run must create its own, and why it cannot (no
    screen: :func:`_no_display`; system libraries Qt's platform plugin needs are missing:
    :func:`~dvsstream.gui.platform_check.platform_problem`) or None. The window's
    modules (Qt, pyqtgraph) are imported here, before the model starts loading in the background."""
    from PySide6 import QtWidgets

    import dvsstream.gui.qt.window  # noqa: F401

    app = QtWidgets.QApplication.instance()
    owns_app = app is None
    no_display = None
    if owns_app:
        from dvsstream.gui.platform_check import platform_problem

        no_display = _no_display() or platform_problem()
    return app, owns_app, no_display


def _new_application():
    """This run's ``QApplication``, named and themed."""
    from PySide6 import QtWidgets

    from dvsstream.gui.qt.window import apply_theme

    _quiet_qt_messages()
    app = QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("dvsstream")
    apply_theme(app)
    return app


#: Qt's messages that tell a user nothing (the offscreen platform has no window manager to
#: pass a window's size hints to); the others go to stderr as Qt prints them
SILENCED_QT_MESSAGES = ("This plugin does not support propagateSizeHints()",)


def _quiet_qt_messages() -> None:
    """Install a Qt message handler that drops :data:`SILENCED_QT_MESSAGES` and hands every
    other message to the handler before it (or prints it as Qt's default one does)."""
    from PySide6 import QtCore

    previous = None

    def handler(mode, context, message: str) -> None:
        if message.strip() in SILENCED_QT_MESSAGES:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            sys.stderr.write(QtCore.qFormatLogMessage(mode, context, message) + "\n")

    previous = QtCore.qInstallMessageHandler(handler)


def _open_window(settings, settings_path: Optional[Path], *, start_s: Optional[float],
                 sensor_size: Optional[tuple[int, int]], export_clip: Optional[str | os.PathLike],
                 teach_folder: Optional[str | os.PathLike] = None, **options):
    """The :class:`~dvsstream.gui.qt.window.MainWindow` (``options``: its keyword
    arguments), not shown yet; its first build (a zero-delay timer) opens the source."""
    from dvsstream.gui.qt.window import MainWindow

    win = MainWindow(settings, settings_path, **options)
    win.controller.start_s = start_s  # the first build (a zero-delay timer) opens the source
    win.controller.sensor_size = sensor_size
    if export_clip is not None:
        win.export_clip_on_close = Path(export_clip)
    if teach_folder is not None:
        win.set_teach_folder(teach_folder)
        win.show_teach()
    return win


def _schedule_the_end(win, screenshot, exit_after: Optional[float], verbose: bool, age0: Optional[float]) -> dict:
    """Connect what ends an unattended run (``exit_after`` seconds, or 1 s after the first
    frame with ``screenshot`` alone) and, with ``verbose``, the first frame's report.
    Returns the result the finisher fills in (``{"code": 0}`` until it says otherwise)."""
    from PySide6 import QtCore

    result = {"code": 0}
    if verbose:
        win.first_frame.connect(lambda seconds: _print_first_frame(win, seconds, age0))
    finish = _finisher(win, screenshot, verbose, result)
    if exit_after is not None:
        QtCore.QTimer.singleShot(int(max(0.0, exit_after) * 1000), finish)
    elif screenshot is not None:
        win.first_frame.connect(lambda _s: QtCore.QTimer.singleShot(1000, finish))
    return result


def _print_first_frame(win, seconds: float, age0: Optional[float]) -> None:
    since = f" ({age0 + seconds:.2f} s since the process started)" if age0 is not None else ""
    print(f"dvsstream gui: first event frame after {seconds:.2f} s{since}; "
          + ", ".join(f"{k} {v:.2f} s" for k, v in win.timings.items()), flush=True)


def _finisher(win, screenshot, verbose: bool, result: dict):
    """The end of an unattended run: save the screenshot (``result["code"]`` 1 when it
    cannot be written), say how it went with ``verbose``, close (2 after a failure)."""
    def finish() -> None:
        if screenshot is not None:
            try:
                saved = win.save_screenshot(screenshot)
                if verbose:
                    print(f"dvsstream gui: screenshot saved to {saved}", flush=True)
            except Exception as exc:
                print(f"dvsstream gui: {exc}", file=sys.stderr)
                result["code"] = 1
        if verbose:
            ff = f"{win.first_frame_s:.2f} s" if win.first_frame_s is not None else "none"
            print(f"dvsstream gui: display {win.display_fps:.0f} fps, first frame {ff}"
                  + (f", error: {win.last_error}" if win.last_error else ""), flush=True)
        win.close()
        if win.errors:
            result["code"] = 2
    return finish


def _exec(app, owns_app: bool, win) -> None:
    """Run until ``win`` closes: the application's event loop, or inside another
    application (tests, a notebook) a local loop."""
    from PySide6 import QtCore

    if owns_app:
        _close_on_ctrl_c(win)
        app.exec()
        return
    loop = QtCore.QEventLoop()
    win.destroyed.connect(loop.quit)
    win.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose, True)
    if win.isVisible():
        loop.exec()


def _no_display() -> Optional[str]:
    """Why Qt would abort the process for want of a screen (Linux without ``DISPLAY`` or
    ``WAYLAND_DISPLAY`` and no ``QT_QPA_PLATFORM`` chosen), or None."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display to open the window on (DISPLAY is not set); run it on a desktop, under "
            "xvfb-run, or with QT_QPA_PLATFORM=offscreen together with --screenshot / --exit-after")


def _check_arguments(speed: Optional[float], export_clip, force: bool) -> Optional[str]:
    """The reason the options cannot be used (one line), or None."""
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        return f"--speed must be a positive number, got {speed}"
    if export_clip is not None:
        from dvsstream.errors import DvsstreamError
        from dvsstream.render.writer import check_clip_output

        try:
            check_clip_output(export_clip, overwrite=force)
        except DvsstreamError as exc:
            return str(exc)
    return None


def _close_on_ctrl_c(win) -> None:
    """Ctrl+C in the terminal closes the window (settings saved, pipeline stopped).
    Python runs signal handlers only between bytecodes, so a timer wakes it up."""
    import signal
    import threading

    from PySide6 import QtCore

    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, lambda *_: win.close())
    wake = QtCore.QTimer(win)
    wake.timeout.connect(lambda: None)
    wake.start(250)

