"""Soak test of the desktop window: the real window replays a recording, looping, for N
minutes and prints once a minute what would show a slow death -- resident memory,
display and inference rates, and the drift of the reference counts of None, True and
False (PySide6-Essentials 6.12.0 lost ~7 references to None per image repaint, which
aborted the window after ~50 s on Python 3.11).

    python benchmarks/soak_gui.py --minutes 30                      # offscreen
    xvfb-run -s "-screen 0 1280x720x24" env QT_QPA_PLATFORM=xcb python benchmarks/soak_gui.py

The last line compares the last minute with the first: RSS growth (MB and %) and the
refcount drift per drawn frame (0 when healthy). Exit status 1 when RSS grew by more
than ``--max-rss-growth-mb`` after the first minute or a refcount fell by more than
one per frame.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def refcounts() -> dict[str, int]:
    return {"None": sys.getrefcount(None), "True": sys.getrefcount(True), "False": sys.getrefcount(False)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    parser.add_argument("--source", default=None, help="recording to loop (default: the shipped gesture recording)")
    parser.add_argument("--checkpoint", default=None, help="model (default: the shipped one)")
    parser.add_argument("--report-s", type=float, default=60.0, help="seconds between lines (default 60)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=30.0,
                        help="fail when RSS grows more than this after the first report (default 30)")
    args = parser.parse_args(argv)

    from PySide6 import QtCore, QtWidgets

    from dvsstream.gui.state import Settings, default_source
    from dvsstream.gui.qt.window import MainWindow, apply_theme

    app = QtWidgets.QApplication(sys.argv[:1])
    apply_theme(app)
    source = args.source or default_source()
    settings = Settings(loop=True, speed=1.0, output_dir=str(Path.home() / "dvsstream"))
    win = MainWindow(settings, None, source=source, checkpoint=args.checkpoint)
    win.resize(1280, 720)
    win.show()
    print(f"soak: {Path(source).name} looping, {args.minutes:g} min, Qt platform "
          f"{QtWidgets.QApplication.platformName()}, PySide6 {_pyside_version()}, Python {sys.version.split()[0]}",
          flush=True)
    print(f"{'min':>5} {'RSS MB':>8} {'maxRSS MB':>9} {'fps':>5} {'frames':>8} {'infer/s':>7} "
          f"{'skipped':>8} {'dNone':>7} {'dTrue':>6} {'dFalse':>6}", flush=True)
    t0 = time.perf_counter()
    rows: list[dict] = []
    base = {"frames": 0, "refs": None}

    def report() -> None:
        gc.collect()
        now = time.perf_counter() - t0
        refs = refcounts()
        if base["refs"] is None:
            base["refs"] = refs
            base["frames"] = win.event_view.frames
        p = win.controller.pipeline
        st = p.snapshot_stats() if p is not None else None
        row = {"min": now / 60, "rss": rss_mb(), "fps": win.display_fps, "frames": win.event_view.frames,
               "infer": st.inference_rate if st else 0.0, "skipped": st.windows_skipped if st else 0,
               **{k: refs[k] - base["refs"][k] for k in refs}}
        rows.append(row)
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
        print(f"{row['min']:5.1f} {row['rss']:8.1f} {max_rss:9.1f} {row['fps']:5.0f} {row['frames']:8d} "
              f"{row['infer']:7.1f} {row['skipped']:8d} {row['None']:7d} {row['True']:6d} {row['False']:6d}"
              + (f"  error: {win.last_error}" if win.last_error else ""), flush=True)
        if now >= args.minutes * 60:
            win.close()
            app.quit()

    timer = QtCore.QTimer()
    timer.timeout.connect(report)
    timer.start(int(args.report_s * 1000))
    QtCore.QTimer.singleShot(5000, report)  # the baseline, once the stream runs
    app.exec()
    return _verdict(rows, base["frames"], args.max_rss_growth_mb)


def _verdict(rows: list[dict], frames0: int, max_growth_mb: float) -> int:
    if len(rows) < 3:
        print("soak: too short for a verdict (run at least 2 report periods)")
        return 0
    first, last = rows[1], rows[-1]
    growth = last["rss"] - first["rss"]
    frames = max(1, last["frames"] - frames0)
    drift = {k: last[k] / frames for k in ("None", "True", "False")}
    print(f"soak: {last['min']:.1f} min, {frames} frames drawn, RSS {first['rss']:.1f} -> {last['rss']:.1f} MB "
          f"({growth:+.1f} MB, {growth / first['rss'] * 100:+.1f} %) since minute {first['min']:.1f}; "
          "refcount drift per frame " + ", ".join(f"{k} {v:+.3f}" for k, v in drift.items()), flush=True)
    ok = growth <= max_growth_mb and all(v > -1.0 for v in drift.values())
    print("soak: " + ("PASS" if ok else "FAIL"), flush=True)
    return 0 if ok else 1


def _pyside_version() -> str:
    import PySide6

    return PySide6.__version__


if __name__ == "__main__":
    sys.exit(main())
