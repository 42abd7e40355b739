"""Soak test of a headless ``dvsstream run``: a real dv-processing ``NetworkWriter`` on
loopback serves a real recording in an endless loop at its own pace (as a camera would),
and ``dvsstream run --source tcp://... --json-out`` classifies it for N minutes. Once a
minute the run's resident memory (RSS, MB) is printed; at the end the slope of RSS after
the warm-up (least squares over the samples after ``--warmup-min``, MB per minute) is
compared with the run's mean RSS and the benchmark ends PASS or FAIL.

    python benchmarks/soak_run.py --minutes 30
    python benchmarks/soak_run.py --minutes 10 --source ../shared/data/real/dvSave-2024_06_20_15_59_41.aedat4

The default source is the busiest real DVS128 recording in ../shared/data/real (about
65 k events/s, 5.4 s, served about 11 times a minute), else the shipped gesture recording.
The peer measured in the same run is the RSS right after the warm-up: the last line gives
the growth after it as a ratio of it. Exit status 1 on FAIL (slope above
``--max-slope-mb-min``, the run failing, or a report whose predictions do not match its
count of classified windows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "data" / "real" / "dvSave-2024_06_20_15_59_41.aedat4"
SHIPPED = ROOT / "recordings" / "gestures_waves_and_clap.h5"

#: a NetworkWriter child: serves events.npy forever, each loop shifted by the recording's
#: length (+ one packet), pacing ~10 ms packets to the wall clock; killed by the parent
WRITER = r"""
import os, sys, time
import numpy as np
import dv_processing as dv
port, events_path, width, height = sys.argv[1:5]
ev = np.load(events_path)
stream = dv.io.Stream.EventStream(0, "events", "SOAK_LOOPBACK", (int(width), int(height)))
writer = dv.io.NetworkWriter("127.0.0.1", int(port), stream)
print("ready", flush=True)
while writer.getClientCount() == 0:
    time.sleep(0.005)
t = ev["t"] - ev["t"][0]
span = int(t[-1]) + 10_000
edges = np.searchsorted(t, np.arange(10_000, span + 10_000, 10_000))
wall0, loop = time.perf_counter(), 0
while True:
    lo = 0
    for hi in edges:
        part = ev[lo:hi]
        offset = loop * span
        due = wall0 + (offset + (int(t[hi - 1]) if hi > lo else 0)) / 1e6
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if hi > lo:
            store = dv.EventStore()
            for ti, x, y, p in zip((t[lo:hi] + offset + 1).tolist(), part["x"].tolist(), part["y"].tolist(),
                                   part["p"].tolist()):
                store.push_back(ti, x, y, bool(p))
            writer.writeEvents(store)
        lo = hi
    loop += 1
"""


def rss_mb(pid: int) -> float | None:
    """Resident set size of process ``pid`` in MB (``/proc/PID/statm``), None once gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(minute, MB)`` samples, MB per minute (0 for fewer than 2)."""
    if len(samples) < 2:
        return 0.0
    m = np.array(samples, dtype=np.float64)
    return float(np.polyfit(m[:, 0], m[:, 1], 1)[0])


def start_writer(source: Path, tmp: Path) -> tuple[subprocess.Popen, int, tuple[int, int]]:
    """Read ``source`` whole, start the looping NetworkWriter child; (process, port, sensor)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from dvwriter import free_port

    from dvsstream.io import open_source

    with open_source(source) as src:
        events = np.concatenate(list(src))
        size = tuple(src.sensor_size)
    np.save(tmp / "events.npy", events)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(port), str(tmp / "events.npy"), *map(str, size)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    proc.stdout.close()
    if line.strip() != "ready":
        proc.kill()
        proc.wait()
        raise SystemExit(f"soak: the NetworkWriter did not start ({line!r})")
    rate = events.size / max((int(events["t"][-1]) - int(events["t"][0])) / 1e6, 1e-6)
    print(f"soak: {source.name} ({events.size:,} events, {rate / 1e3:.1f} k ev/s, {size[0]}x{size[1]}) "
          f"served in a loop on tcp://127.0.0.1:{port}", flush=True)
    return proc, port, size


def watch(run: subprocess.Popen, sample_s: float) -> list[tuple[float, float]]:
    """RSS samples ``(minute, MB)`` of ``run`` every ``sample_s`` until it ends; a line a minute."""
    samples: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    next_line = 1.0
    while run.poll() is None:
        time.sleep(sample_s)
        now = (time.perf_counter() - t0) / 60
        mb = rss_mb(run.pid)
        if mb is None or run.poll() is not None:
            break
        samples.append((now, mb))
        if now >= next_line:
            print(f"  {now:5.1f} min  RSS {mb:7.1f} MB", flush=True)
            next_line += 1.0
    return samples


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    parser.add_argument("--source", type=Path, default=None, help="recording to serve (default: see above)")
    parser.add_argument("--warmup-min", type=float, default=None,
                        help="minutes left out of the slope (default: 2, or a fifth of a shorter run)")
    parser.add_argument("--max-slope-mb-min", type=float, default=0.5, help="PASS threshold (default 0.5 MB/min)")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    args = parser.parse_args(argv)
    source = args.source or (REAL if REAL.is_file() else SHIPPED)
    warmup = args.warmup_min if args.warmup_min is not None else min(2.0, args.minutes / 5)

    with tempfile.TemporaryDirectory(prefix="dvsstream-soak-") as tmp_name:
        tmp = Path(tmp_name)
        writer, port, _ = start_writer(source, tmp)
        report = tmp / "report.json"
        # stderr to a file, not a pipe: a pipe nobody reads for 30 minutes fills up and
        # blocks the run (warnings, a shedding notice per episode)
        err_path = tmp / "run.stderr"
        try:
            with open(err_path, "w") as err_file:
                run = subprocess.Popen([sys.executable, "-m", "dvsstream.cli", "run", "--source",
                                        f"tcp://127.0.0.1:{port}", "--quiet", "--device", "cpu", "--json-out",
                                        str(report), "--duration", str(args.minutes * 60)],
                                       stdout=subprocess.DEVNULL, stderr=err_file, text=True)
                samples = watch(run, args.sample_s)
                run.wait()
            err = err_path.read_text()
        finally:
            writer.kill()
            writer.wait()
        return verdict(run.returncode, err, report, samples, warmup, args.max_slope_mb_min)


def verdict(rc: int, err: str, report: Path, samples, warmup: float, max_slope: float) -> int:
    """Print the figures and PASS / FAIL; the exit status."""
    after = [s for s in samples if s[0] >= warmup]
    slope = slope_mb_per_min(after)
    problems = []
    if rc != 0:
        problems.append(f"dvsstream run exited {rc}: {err.strip().splitlines()[-1:] or ''}")
    n_pred = classified = None
    if report.is_file():
        data = json.loads(report.read_text())
        n_pred, classified = len(data["predictions"]), data["windows_classified"]
        print(f"report: {n_pred:,} predictions, {data['windows_classified']:,} windows classified, "
              f"{data['windows_skipped']:,} skipped, {data['events_read']:,} events read, "
              f"{report.stat().st_size / 1e6:.1f} MB of JSON", flush=True)
        if n_pred != classified:
            problems.append(f"the report holds {n_pred} predictions for {classified} classified windows")
    elif rc == 0:
        problems.append("no report written")
    if after:
        base, last = after[0][1], after[-1][1]
        print(f"RSS after warm-up ({warmup:g} min): {base:.1f} MB -> {last:.1f} MB at {after[-1][0]:.1f} min "
              f"(x{last / base:.3f}); slope {slope:+.3f} MB/min over {len(after)} samples "
              f"(peak {max(m for _, m in samples):.1f} MB)", flush=True)
    else:
        problems.append("no RSS samples after the warm-up (run longer)")
    if slope > max_slope:
        problems.append(f"RSS grows {slope:.3f} MB/min (> {max_slope:g})")
    print("FAIL: " + "; ".join(problems) if problems else f"PASS (slope <= {max_slope:g} MB/min)", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
