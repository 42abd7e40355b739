"""Speed and event rates of the synthetic scenes (dvsstream.synth.scenes).

    python benchmarks/bench_scenes.py [--recordings 12] [--duration 2] [--seed 31]

Prints, per sensor size (128x128, 320x240, 346x260): recording seconds generated per CPU
second of this process (CPU time, so that other work on the machine does not distort it),
and the event rates of the recordings (median, 10th and 90th percentiles, max, events/s).
The peer measured in the same run: the gesture stick figure of dvsstream.synth.dataset
(128x128, one sample per class), its recording seconds per CPU second and its rate; the
ratio says what the variety costs. For reference, the real DVS128 recordings in
``../shared/data/real/`` have 6-65 k events/s (a walking person ~8 k, hand gestures
31-65 k) and the DVXplorer sample (320x240) ~190 k.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dvsstream.synth.dataset import generate_sample
from dvsstream.synth.scenes import generate_scene


def cpu_timed(fn):
    t = time.process_time()
    out = fn()
    return out, time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=12)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=31)
    args = ap.parse_args()
    generate_scene(0, 0, 0.1)  # Numba compilation (or cache load) outside the timings
    generate_sample(0, 0, 0, 0.1)

    (gest, gest_cpu) = cpu_timed(lambda: [generate_sample(c, 0, args.seed, args.duration)[0] for c in range(11)])
    gest_speed = 11 * args.duration / gest_cpu
    gest_rate = np.median([g.size / args.duration for g in gest])
    print(f"gestures 128x128 (peer): {gest_speed:.1f} s of recording per CPU second, median {gest_rate / 1e3:.0f}k ev/s")
    for size in [(128, 128), (320, 240), (346, 260)]:
        rates, cpu = [], 0.0
        for i in range(args.recordings):
            (ev, _), dt = cpu_timed(lambda i=i, size=size: generate_scene(args.seed, i, args.duration, size))
            cpu += dt
            rates.append(ev.size / args.duration)
        speed = args.recordings * args.duration / cpu
        p50, p10, p90 = np.percentile(rates, [50, 10, 90]) / 1e3
        print(f"scenes {size[0]}x{size[1]}: {speed:.1f} s of recording per CPU second ({speed / gest_speed:.2f}x the "
              f"gestures'), rates median {p50:.0f}k, p10 {p10:.0f}k, p90 {p90:.0f}k, max {max(rates) / 1e3:.0f}k ev/s")


if __name__ == "__main__":
    main()
