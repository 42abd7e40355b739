"""Start the desktop window: ``run_gui()`` from Python, ``python -m dvsstream.gui.app``
or ``dvsstream gui`` from a shell.

``--screenshot PNG --exit-after S`` saves the window after ``S`` seconds and exits 0:
unattended runs and tests (pyqtgraph's ``VideoSpeedTest`` idea of a flag that lets the
app run by itself). ``--verbose`` prints the time to the first drawn event frame and
the display rate.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["add_gui_arguments", "main", "process_age_s", "run_gui", "run_gui_from_args"]


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
) -> int:
    """Open the window and run the Qt event loop until it closes; returns the exit code.

    ``source``: any :func:`~dvsstream.sources.open_source` URI (default: the last one
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
    print the time to the first frame and the display rate.

    With a ``QApplication`` already running (a notebook, pytest-qt) the window runs in
    a local event loop until it closes.
    """
    t_origin = time.perf_counter()
    age0 = process_age_s()
    from dvsstream.gui import state
    from dvsstream.gui.controller import preload

    path = Path(settings_path) if settings_path is not None else state.default_settings_path()
    settings = state.load_settings(path)
    preload(checkpoint if checkpoint is not None else settings.checkpoint, device)

    from PySide6 import QtCore, QtWidgets

    from dvsstream.gui.window import MainWindow, apply_theme

    app = QtWidgets.QApplication.instance()
    owns_app = app is None
    if owns_app:
        app = QtWidgets.QApplication(sys.argv[:1])
        app.setApplicationName("dvsstream")
        apply_theme(app)
    if speed is not None:
        if speed <= 0:
            print(f"dvsstream gui: --speed must be positive, got {speed}", file=sys.stderr)
            return 2
        settings.speed = float(speed)
    win = MainWindow(settings, path if save_settings else None, source=source, checkpoint=checkpoint,
                     device=device, deterministic=deterministic, t_origin=t_origin)
    result = {"code": 0}

    def report_first(seconds: float) -> None:
        if verbose:
            since = f" ({age0 + seconds:.2f} s since the process started)" if age0 is not None else ""
            print(f"dvsstream gui: first event frame after {seconds:.2f} s{since}; "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in win.timings.items()), flush=True)

    win.first_frame.connect(report_first)

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

    if exit_after is not None:
        QtCore.QTimer.singleShot(int(max(0.0, exit_after) * 1000), finish)
    elif screenshot is not None:
        win.first_frame.connect(lambda _s: QtCore.QTimer.singleShot(1000, finish))
    win.show()
    if owns_app:
        _close_on_ctrl_c(win)
        app.exec()
    else:  # inside another application (tests, a notebook): wait for this window
        loop = QtCore.QEventLoop()
        win.destroyed.connect(loop.quit)
        win.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose, True)
        if win.isVisible():
            loop.exec()
    return result["code"]


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


def add_gui_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``dvsstream gui`` options (shared by the CLI and ``python -m dvsstream.gui.app``)."""
    parser.add_argument("--source", default=None,
                        help="file, camera:[SERIAL], tcp://host:port or synthetic:… "
                             "(default: the last one, else the shipped gesture recording, looping)")
    parser.add_argument("--checkpoint", default=None, help="our checkpoint (default: the shipped gesture model)")
    parser.add_argument("--speed", type=float, default=None, help="recordings: replay pace (default 1 = real time)")
    parser.add_argument("--screenshot", default=None, help="save a PNG of the window after --exit-after seconds")
    parser.add_argument("--exit-after", type=float, default=None, help="close the window after this many seconds")
    parser.add_argument("--settings", default=None, help="settings file (default: the user's config folder)")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    parser.add_argument("--deterministic", action="store_true",
                        help="never skip a window: the same predictions as `dvsstream run` on a recording")
    parser.add_argument("--verbose", "-v", action="store_true", help="print the time to the first frame and the fps")
    return parser


def run_gui_from_args(args: argparse.Namespace) -> int:
    """``run_gui`` with an ``argparse`` namespace from :func:`add_gui_arguments` (or the
    CLI's own ``gui`` parser: missing options take their defaults)."""
    return run_gui(
        source=getattr(args, "source", None),
        checkpoint=getattr(args, "checkpoint", None),
        screenshot=getattr(args, "screenshot", None),
        exit_after=getattr(args, "exit_after", None),
        settings_path=getattr(args, "settings", None),
        speed=getattr(args, "speed", None),
        device=getattr(args, "device", None),
        deterministic=getattr(args, "deterministic", False),
        verbose=getattr(args, "verbose", False),
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="dvsstream gui", description="The dvsstream desktop window.")
    add_gui_arguments(parser)
    return run_gui_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
