"""Noise-filter throughput against tonic and dv-processing, measured in the same run.

    python benchmarks/bench_filters.py [--repeat 5] [--packet-us 10000]

On every real recording in ``../shared/data/real/`` (all of them concatenated, one after
the other, each with its own filter state, and per recording), times:

* ``ba:2000`` (8 neighbours) vs ``dv_processing.noise.BackgroundActivityNoiseFilter``
  (``accept`` + ``generateEvents`` on an EventStore made beforehand, not timed);
* ``denoise:2000`` (4 neighbours) vs ``tonic.functional.denoise_numpy``;
* ``refractory:1000`` vs ``tonic.functional.refractory_period_numpy``;
* ``ba:2000`` fed 10 ms packets (the live path) vs one call.

Every pair's output is checked equal before it is timed. Medians of ``--repeat`` runs
after one warm-up; ratios are peer time / ours.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
from pathlib import Path

import numpy as np

from bench_binning import median_time  # the same timing rule (median of repeats after a warm-up)

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real"


def load(path):
    from dvsstream.io import open_source

    with open_source(path) as source:
        return np.concatenate(list(source)), tuple(source.sensor_size)


def as_tonic(ev):
    out = np.zeros(ev.size, np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i2")]))
    for f in "txyp":
        out[f] = ev[f]
    return out


def dv_store(ev):
    import dv_processing as dv

    store = dv.EventStore()
    for t, x, y, p in ev.tolist():
        store.push_back(t, x, y, bool(p))
    return store


def dv_filter(store, size, window_us):
    import dv_processing as dv

    flt = dv.noise.BackgroundActivityNoiseFilter(size, datetime.timedelta(microseconds=window_us))
    flt.accept(store)
    return flt.generateEvents()


def ours(spec, ev, size):
    from dvsstream.filters import parse_filter

    return parse_filter(spec).build(size)(ev)


def check(a, b, what):
    names = ("timestamp", "x", "y") if "timestamp" in (b.dtype.names or ()) else ("t", "x", "y")
    same = a.size == b.size and all(np.array_equal(a[f].astype(np.int64), b[n].astype(np.int64))
                                    for f, n in zip("txy", names))
    if not same:
        raise SystemExit(f"{what}: outputs differ ({a.size} vs {b.size} events)")


def bench_one(name, ev, size, repeat, packet_us):
    """Return ``(n_events, {pair: (peer_s, ours_s)})`` for one recording."""
    from tonic.functional import denoise_numpy, refractory_period_numpy

    tev, store = as_tonic(ev), dv_store(ev)
    check(ours("ba:2000", ev, size), dv_filter(store, size, 2000).numpy(), f"{name} ba")
    check(ours("denoise:2000", ev, size), denoise_numpy(tev, 2000), f"{name} denoise")
    check(ours("refractory:1000", ev, size), refractory_period_numpy(tev, 1000), f"{name} refractory")
    cuts = np.searchsorted(ev["t"], np.arange(ev["t"][0], ev["t"][-1] + packet_us, packet_us))
    packets = [ev[a:b] for a, b in itertools.pairwise(cuts)]

    def live():
        from dvsstream.filters import parse_filter

        f = parse_filter("ba:2000").build(size)
        return [f(p) for p in packets]

    tonic_repeat = max(1, repeat // 3)
    return ev.size, {
        "ba:2000 vs dv-processing": (median_time(lambda: dv_filter(store, size, 2000), repeat),
                                     median_time(lambda: ours("ba:2000", ev, size), repeat)),
        "denoise:2000 vs tonic": (median_time(lambda: denoise_numpy(tev, 2000), tonic_repeat),
                                  median_time(lambda: ours("denoise:2000", ev, size), repeat)),
        "refractory:1000 vs tonic": (median_time(lambda: refractory_period_numpy(tev, 1000), tonic_repeat),
                                     median_time(lambda: ours("refractory:1000", ev, size), repeat)),
        f"ba:2000 one call vs {packet_us // 1000} ms packets": (
            median_time(lambda: ours("ba:2000", ev, size), repeat), median_time(live, repeat)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--packet-us", type=int, default=10_000)
    args = ap.parse_args()
    files = sorted(p for p in REAL.glob("*") if p.suffix in (".aedat4", ".aedat", ".dat"))
    if not files:
        raise SystemExit(f"no real recordings in {REAL}")
    totals: dict[str, list[float]] = {}
    n_total = 0
    for path in files:
        ev, size = load(path)
        n, pairs = bench_one(path.name, ev, size, args.repeat, args.packet_us)
        n_total += n
        cells = []
        for pair, (peer_s, ours_s) in pairs.items():
            acc = totals.setdefault(pair, [0.0, 0.0])
            acc[0] += peer_s
            acc[1] += ours_s
            cells.append(f"{pair.split()[0]} {peer_s / ours_s:6.1f}x")
        print(f"{path.name:36s} {n:8,d} events {size[0]}x{size[1]}: " + "  ".join(cells))
    print(f"all {len(files)} recordings, {n_total:,} events (outputs equal to the peer's in every pair); "
          "A vs B: time of A, of B, ratio A / B:")
    for pair, (peer_s, ours_s) in totals.items():
        print(f"  {pair:36s} {peer_s * 1e3:8.1f} ms ({n_total / peer_s / 1e6:6.1f} M ev/s) vs "
              f"{ours_s * 1e3:7.1f} ms ({n_total / ours_s / 1e6:6.1f} M ev/s)  ratio {peer_s / ours_s:6.1f}x")


if __name__ == "__main__":
    main()
