"""Binning throughput against tonic, measured in the same run.

    python benchmarks/bench_binning.py [--events 5000000] [--repeat 7]

Prints, for 5 M events into ``[16, 2, 128, 128]``:
* ``events_to_frames`` time mode, all Numba threads and one thread, vs
  ``tonic.transforms.ToFrame(n_time_bins=16)`` on the same events (ratio; the
  issue's target is >= 40x with the machine's cores);
* count mode vs ``ToFrame(n_event_bins=16)``;
* the streaming binner fed 1,000-event packets (target >= 20 M events/s);
* ``batch_events_to_frames`` on 64 recordings of 50 k events vs a loop over tonic.
Medians of ``--repeat`` runs after one warm-up (the Numba cache makes the
warm-up cheap after the first run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numba
import numpy as np


def median_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def synthetic_events(n: int, duration_us: int, seed: int = 0) -> np.ndarray:
    from dvsstream.events import make_events

    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, duration_us, n)), rng.integers(0, 128, n),
                       rng.integers(0, 128, n), rng.integers(0, 2, n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    from tonic.transforms import ToFrame

    from dvsstream.binning import StreamingBinner, batch_events_to_frames, events_to_frames

    n = args.events
    ev = synthetic_events(n, 5 * n)  # 0.2 M events/s: a busy DVS128 scene
    tonic_ev = np.zeros(n, np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "<i2"), ("t", "<i8")]))
    for f in "txyp":
        tonic_ev[f] = ev[f]
    cores = numba.get_num_threads()
    print(f"machine: {os.cpu_count()} CPUs, numba threads {cores}; {n:,} events, [16, 2, 128, 128]")

    tonic_time = median_time(lambda: ToFrame(sensor_size=(128, 128, 2), n_time_bins=16)(tonic_ev), args.repeat)
    ours = median_time(lambda: events_to_frames(ev, (128, 128), 16, "time"), args.repeat)
    ours_1 = median_time(lambda: events_to_frames(ev, (128, 128), 16, "time", parallel=False), args.repeat)
    print(f"time mode   tonic ToFrame(n_time_bins=16) {tonic_time * 1e3:8.1f} ms  ({n / tonic_time / 1e6:6.1f} M ev/s)")
    print(f"            dvsstream, {cores} threads       {ours * 1e3:8.1f} ms  ({n / ours / 1e6:6.1f} M ev/s)"
          f"  ratio {tonic_time / ours:5.1f}x  (target >= 40x)")
    print(f"            dvsstream, 1 thread        {ours_1 * 1e3:8.1f} ms  ({n / ours_1 / 1e6:6.1f} M ev/s)"
          f"  ratio {tonic_time / ours_1:5.1f}x")

    tonic_count = median_time(lambda: ToFrame(sensor_size=(128, 128, 2), n_event_bins=16)(tonic_ev), args.repeat)
    ours_count = median_time(lambda: events_to_frames(ev, (128, 128), 16, "count"), args.repeat)
    print(f"count mode  tonic ToFrame(n_event_bins=16) {tonic_count * 1e3:7.1f} ms; dvsstream "
          f"{ours_count * 1e3:.1f} ms  ratio {tonic_count / ours_count:5.1f}x")

    # streaming at the DVS128's peak rate (1 M ev/s): a window every 10 ms of stream
    ev_1m = synthetic_events(n, n)
    packets = [ev_1m[i:i + 1000] for i in range(0, n, 1000)]
    for cfg in (dict(window_us=160_000, n_bins=16, hop_us=10_000),
                dict(window_us=160_000, n_bins=16, hop_us=10_000, emit="new"),
                dict(window_us=80_000, n_bins=8, hop_us=10_000, downsample=2)):
        StreamingBinner((128, 128), **cfg).push(packets[0])  # compile / load cache

        def stream(cfg=cfg):
            binner = StreamingBinner((128, 128), **cfg)
            return sum(len(binner.push(p)) for p in packets)

        t = median_time(stream, max(args.repeat // 2, 1))
        print(f"streaming   1,000-event packets at 1 M ev/s, {cfg}: {n / t / 1e6:6.1f} M ev/s, "
              f"{stream()} windows  (target >= 20 M ev/s)")

    recs = [synthetic_events(50_000, 1_000_000, seed=s) for s in range(64)]
    tonic_recs = []
    for r in recs:
        tr = np.zeros(r.size, tonic_ev.dtype)
        for f in "txyp":
            tr[f] = r[f]
        tonic_recs.append(tr)
    to_frame = ToFrame(sensor_size=(128, 128, 2), n_event_bins=16)
    t_tonic = median_time(lambda: [to_frame(r) for r in tonic_recs], 3)
    t_batch = median_time(lambda: batch_events_to_frames(recs, (128, 128), 16, "count"), 3)
    print(f"batch       64 x 50k events, count split: tonic loop {t_tonic * 1e3:.0f} ms, "
          f"batch_events_to_frames {t_batch * 1e3:.0f} ms  ratio {t_tonic / t_batch:5.1f}x")


if __name__ == "__main__":
    main()
