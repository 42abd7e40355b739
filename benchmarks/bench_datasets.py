"""Dataset layouts: cold (read + bin + cache write) and warm (cache) samples/s.

    python benchmarks/bench_datasets.py [--per-class 8] [--events 200000] [--bins 16] [--keep DIR]

Builds, in a temporary folder, the same CIFAR10-DVS-sized clips (about 1.3 s and
``--events`` events each, cut from a real DVS128 recording of ../shared/data/real when
present, else synthetic) in every layout dvsstream reads:

* CIFAR10-DVS: tonic's ``.aedat4``, the original ``.aedat``, spikingjelly's
  ``extract/``, ``events_np/`` (compressed npz, its default) and
  ``frames_number_T_split_by_number/``;
* DVS128 Gesture: the raw AEDAT 3.1 release (segments of one file per user), tonic's
  ``.npy``, spikingjelly's ``events_np/`` and frames;

then, for each, opens the "all" split (T bins, 128x128, the releases' spikingjelly
convention) and times one pass without a cache (read + bin), one with an empty cache
(cold: every sample read and binned, its cache entry written) and one more with a new
dataset object (warm: from the cache). One process, the machine's Numba threads;
samples/s = samples / wall.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "dvSave-2024_06_20_15_59_41.aedat4"
CLASSES = ("airplane", "cat")


_REAL_EVENTS: list = []


def _real() -> np.ndarray:
    """The real recording's events (read once)."""
    if not _REAL_EVENTS:
        from dvsstream.io import open_file

        with open_file(REAL) as src:
            _REAL_EVENTS.append(np.concatenate(list(src)))
    return _REAL_EVENTS[0]


def clip_events(n: int, seed: int) -> np.ndarray:
    """``n`` events over ~1.3 s: the real recording's first ``n`` events time-scaled to
    1.3 s (rolled by ``seed``), or synthetic blobs when the recording is absent."""
    from dvsstream.events import EVENT_DTYPE

    ev = np.zeros(n, EVENT_DTYPE)
    rng = np.random.default_rng(seed)
    if REAL.is_file():
        real = np.roll(_real(), -seed * 1000)[:n]
        real = real[np.argsort(real["t"], kind="stable")]
        t = (real["t"] - real["t"][0]).astype(np.float64)
        ev["t"] = (t * (1_300_000 / max(t[-1], 1))).astype(np.int64)
        for k in "xyp":
            ev[k] = real[k]
    else:
        ev["t"] = np.sort(rng.integers(0, 1_300_000, n))
        ev["x"] = np.clip(rng.normal(64, 20, n), 0, 127)
        ev["y"] = np.clip(rng.normal(64, 20, n), 0, 127)
        ev["p"] = rng.integers(0, 2, n)
    return ev


def sj_events(ev: np.ndarray) -> dict:
    """The spikingjelly-convention arrays of ``ev`` written as an original .aedat (upright
    -> chip addresses -> x = 127 - y_raw, y = 127 - x_raw, p = 1 - p_raw: the transpose)."""
    return {"t": ev["t"] & 0xFFFFFFFF, "x": ev["y"].astype(np.int64), "y": ev["x"].astype(np.int64),
            "p": ev["p"].astype(np.int64)}


def build_cifar(root: Path, per_class: int, n_events: int, T: int) -> dict[str, Path]:
    from dvsstream.datasets.spec import FrameSpec, frames_from_events
    from dvsstream.datasets.release import _event_array
    from dvsstream.io.aedat2 import write_aedat2
    from dvsstream.io.aedat4 import write_aedat4

    roots = {k: root / k for k in ("tonic-aedat4", "original-aedat", "sj-extract", "sj-events_np", "sj-frames")}
    spec = FrameSpec(n_bins=T)
    for label, cls in enumerate(CLASSES):
        for i in range(per_class):
            ev = clip_events(n_events, 10 * label + i)
            name = f"cifar10_{cls}_{i}"
            d = roots["tonic-aedat4"] / "CIFAR10DVS" / cls
            d.mkdir(parents=True, exist_ok=True)
            write_aedat4(d / f"{name}.aedat4", ev, (128, 128))
            for key, sub in (("original-aedat", Path("CIFAR10DVS") / cls), ("sj-extract", Path("extract") / cls)):
                (roots[key] / sub).mkdir(parents=True, exist_ok=True)
                write_aedat2(roots[key] / sub / f"{name}.aedat", ev)
            sj = sj_events(ev)
            d = roots["sj-events_np"] / "events_np" / cls
            d.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(d / f"{name}.npz", **sj)
            d = roots["sj-frames"] / f"frames_number_{T}_split_by_number" / cls
            d.mkdir(parents=True, exist_ok=True)
            frames = frames_from_events(_event_array(sj["t"], sj["x"], sj["y"], sj["p"]), spec)
            np.savez_compressed(d / f"{name}.npz", frames=frames.astype(np.float64))  # as spikingjelly saves
    return roots


def build_gesture(root: Path, per_class: int, n_events: int, T: int) -> dict[str, Path]:
    from dvsstream.datasets.spec import FrameSpec, frames_from_events
    from dvsstream.io.aedat3 import write_aedat31
    from dvsstream.io.base import LABEL_DTYPE

    roots = {k: root / k for k in ("raw-aedat3.1", "tonic-npy", "sj-events_np", "sj-frames")}
    spec = FrameSpec(n_bins=T)
    raw = roots["raw-aedat3.1"] / "DvsGesture"
    raw.mkdir(parents=True)
    names = []
    for u in range(per_class):  # one user file holds one segment of each class
        name = f"user{u + 1:02d}_led"
        parts, labels, t0 = [], [], 1_000_000
        for label in range(11):
            ev = clip_events(n_events, 100 * u + label)
            ev["t"] += t0
            parts.append(ev)
            labels.append((int(ev["t"][0]), int(ev["t"][-1]) + 1, label))
            d = roots["tonic-npy"] / "DVSGesture" / "ibmGestureTrain" / name
            d.mkdir(parents=True, exist_ok=True)
            np.save(d / f"{label}.npy", np.stack([ev["x"], ev["y"], ev["p"], (ev["t"] - t0) // 1000], 1).astype(np.float64))
            for key, sub in (("sj-events_np", "events_np"), ("sj-frames", f"frames_number_{T}_split_by_number")):
                d = roots[key] / sub / "train" / str(label)
                d.mkdir(parents=True, exist_ok=True)
                if key == "sj-events_np":
                    np.savez_compressed(d / f"{name}_0.npz", t=ev["t"], x=ev["x"], y=ev["y"], p=ev["p"])
                else:
                    np.savez_compressed(d / f"{name}_0.npz", frames=frames_from_events(ev, spec).astype(np.float64))
            t0 = int(ev["t"][-1]) + 200_000
        write_aedat31(raw / f"{name}.aedat", np.concatenate(parts), np.array(labels, dtype=LABEL_DTYPE))
        names.append(f"{name}.aedat")
    (raw / "trials_to_train.txt").write_text("\n".join(names) + "\n")
    (raw / "trials_to_test.txt").write_text("")
    for key in ("sj-events_np", "sj-frames"):
        sub = "events_np" if key == "sj-events_np" else f"frames_number_{T}_split_by_number"
        (roots[key] / sub / "test").mkdir(parents=True, exist_ok=True)
    (roots["tonic-npy"] / "DVSGesture" / "ibmGestureTest").mkdir(parents=True, exist_ok=True)
    return roots


def measure(dataset: str, root: Path, T: int) -> tuple[int, float, float, float, str]:
    """``(samples, read + bin samples/s, cold samples/s, warm samples/s, layout)`` for the
    all split: without a cache, then filling an empty cache, then from it."""
    from dvsstream.datasets.load import load_dataset
    from dvsstream.datasets.spec import FrameSpec

    cache = root / ".bench-cache"
    shutil.rmtree(cache, ignore_errors=True)
    spec = FrameSpec(n_bins=T)
    d = load_dataset(dataset, root, "all", spec, cache_dir=False)
    t0 = time.perf_counter()
    for i in range(len(d)):
        d.get(i)
    nocache = time.perf_counter() - t0
    d = load_dataset(dataset, root, "all", spec, cache_dir=cache)
    t0 = time.perf_counter()
    for i in range(len(d)):
        assert d.get(i)[0] is not None, d.get(i)[2]
    cold = time.perf_counter() - t0
    d2 = load_dataset(dataset, root, "all", spec, cache_dir=cache)
    t0 = time.perf_counter()
    for i in range(len(d2)):
        d2.get(i)
    warm = time.perf_counter() - t0
    assert d2.event_reads == 0
    return len(d), len(d) / nocache, len(d) / cold, len(d2) / warm, d.info["layout"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-class", type=int, default=8, help="CIFAR10-DVS clips per class (2 classes); Gesture users")
    ap.add_argument("--events", type=int, default=200_000, help="events per clip (~1.3 s)")
    ap.add_argument("--bins", type=int, default=16)
    ap.add_argument("--keep", default=None, help="build the folders here and keep them")
    args = ap.parse_args()
    import logging

    logging.getLogger("dvsstream.datasets").setLevel(logging.ERROR)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-datasets-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        cifar = build_cifar(base / "cifar10dvs", args.per_class, args.events, args.bins)
        gesture = build_gesture(base / "dvsgesture", max(1, args.per_class // 4), args.events, args.bins)
        print(f"built the layouts in {time.perf_counter() - t0:.1f} s ({args.events:,} events per ~1.3 s clip, "
              f"T={args.bins}, 128x128, source: {'real DVS128 recording' if REAL.is_file() else 'synthetic'})")
        print(f"{'dataset':<11} {'layout':<58} {'samples':>7} {'read+bin/s':>10} {'cold /s':>8} {'warm /s':>8}")
        for dataset, roots in (("cifar10dvs", cifar), ("dvsgesture", gesture)):
            for key, root in roots.items():
                n, nocache, cold, warm, layout = measure(dataset, root, args.bins)
                print(f"{dataset:<11} {layout[:58]:<58} {n:>7} {nocache:>10.1f} {cold:>8.1f} {warm:>8.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
