"""Live pipeline under load: replay at 1 M events/s and overload at 10 M events/s.

Runs the pipeline configured as the GUI runs it (attention taps, firing rates, energy
estimate once a second, full-resolution event view, stale windows dropped) with the
shipped gesture model on the CPU, while a "display" thread polls ``snapshot()`` at 60 Hz
as the GUI's timer does. Prints, per scenario and mode (step vs window, measured in the
same run): predictions per second, event-to-prediction latency p50/p95, windows skipped,
event accounting, display updates per second (new event images seen by the poller),
``snapshot()`` cost p95 (what the GUI thread pays per frame) and peak RSS.

    python benchmarks/bench_pipeline.py [--seconds 6] [--modes step window]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dvsstream.stream.pipeline import Pipeline, load_classifier_model, pipeline_binning  # noqa: E402
from dvsstream.io.hdf5 import RecordingWriter  # noqa: E402
from dvsstream.io import open_source  # noqa: E402
from dvsstream.io.synthetic import SyntheticSource  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class DisplayPoller(threading.Thread):
    """Polls ``pipeline.snapshot()`` at ``fps`` like the GUI timer; counts new images."""

    def __init__(self, pipe: Pipeline, fps: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.pipe, self.period = pipe, 1.0 / fps
        self.calls_ms: list[float] = []
        self.updates = 0
        self.rss_peak = 0.0
        self.stop_flag = threading.Event()

    def run(self) -> None:
        last_t = None
        while not self.stop_flag.is_set():
            t0 = time.perf_counter()
            snap = self.pipe.snapshot()
            self.calls_ms.append((time.perf_counter() - t0) * 1e3)
            if snap["event_t_end"] is not None and snap["event_t_end"] != last_t:
                self.updates += 1
                last_t = snap["event_t_end"]
            self.rss_peak = max(self.rss_peak, rss_mb())
            time.sleep(max(0.0, self.period - (time.perf_counter() - t0)))


def write_recording(path: Path, rate: float, seconds: float) -> int:
    src = SyntheticSource(rate=rate, duration_s=seconds, seed=7, realtime=False)  # as fast as it goes
    with RecordingWriter(path, src.sensor_size, overwrite=True) as w:
        for packet in src:
            w.write(packet)
        return w.n_events


def scenario(name: str, source, loaded, mode: str) -> dict:
    loaded.model.reset()
    pipe = Pipeline(source, loaded, binning=pipeline_binning(loaded, source.sensor_size), mode=mode, drop_stale=True,
                    attention=True, energy_every_s=1.0, event_view=True, history=1000)
    poller = DisplayPoller(pipe)
    t0 = time.perf_counter()
    pipe.start()
    poller.start()
    pipe.wait()
    wall = time.perf_counter() - t0
    poller.stop_flag.set()
    poller.join()
    pipe.stop()
    if pipe.error:
        raise pipe.error
    s = pipe.snapshot_stats()
    stream_s = (s.stream_time_us or 0) / 1e6
    calls = np.asarray(poller.calls_ms)
    row = dict(
        scenario=name, mode=mode, wall_s=wall, stream_s=stream_s,
        event_rate=s.events_read / wall, preds_per_s=s.windows_classified / wall,
        lat_p50=s.latency_ms.get("p50", float("nan")), lat_p95=s.latency_ms.get("p95", float("nan")),
        infer_p50=s.inference_ms.get("p50", float("nan")),
        skipped=s.windows_skipped, windows=s.windows, accounted=s.events_read == s.events_binned + s.events_out_of_bounds + s.events_late + s.events_shed,
        shed=s.events_shed, steady=s.inference_rate,
        events=s.events_read, display_ups=poller.updates / wall, snap_p95=float(np.percentile(calls, 95)),
        rss_peak=poller.rss_peak,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--modes", nargs="+", default=["step", "window"])
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    loaded = load_classifier_model(device="cpu")
    print(f"model: {loaded.checkpoint} ({loaded.binning})")
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "bar_1M.h5"
        n = write_recording(rec, 1e6, args.seconds)
        print(f"recording: {n:,} events over {args.seconds:g} s (1 M ev/s), replayed at speed 1, 1 ms packets")
        rows = []
        # warm-up (numba cache, torch first-call costs)
        scenario("warmup", open_source(rec, speed=4, packet_us=1000), loaded, "step")
        for mode in args.modes:
            rows.append(scenario("replay 1M ev/s", open_source(rec, speed=1, packet_us=1000), loaded, mode))
        for mode in args.modes:
            src = SyntheticSource(rate=1e7, duration_s=args.seconds, realtime=True, seed=3)
            rows.append(scenario("synthetic 10M ev/s", src, loaded, mode))
    hdr = (f"{'scenario':20s} {'mode':6s} {'ev/s in':>9s} {'stream/wall':>11s} {'pred/s':>6s} {'steady':>6s} {'lat p50':>7s} "
           f"{'lat p95':>7s} {'inf p50':>7s} {'skipped':>11s} {'acct':>4s} {'shed ev':>9s} {'disp/s':>6s} {'snap p95':>8s} {'RSS MB':>6s}")
    print(hdr)
    for r in rows:
        print(f"{r['scenario']:20s} {r['mode']:6s} {r['event_rate'] / 1e6:7.2f} M {r['stream_s'] / r['wall_s']:11.2f} "
              f"{r['preds_per_s']:6.1f} {r['steady']:6.1f} {r['lat_p50']:7.1f} {r['lat_p95']:7.1f} {r['infer_p50']:7.1f} "
              f"{r['skipped']:5d}/{r['windows']:5d} {'ok' if r['accounted'] else 'LOST':>4s} "
              f"{r['shed']:9,d} {r['display_ups']:6.1f} {r['snap_p95']:8.2f} {r['rss_peak']:6.0f}")
    print("pred/s: predictions over the whole run (the first needs a full window); steady: over the last 64; "
          "shed ev: events read and recorded but not binned while the pipeline lagged a real-time source")
    print("latency: ms from the packet closing a window to its logits; disp/s: new event images seen by a "
          "60 Hz poller; snap p95: ms per snapshot() call (GUI thread cost)")


if __name__ == "__main__":
    main()
