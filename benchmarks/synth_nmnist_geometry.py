"""Centred in zeros or enlarged? The tiny model on a synthetic N-MNIST-like set, both ways.

    python benchmarks/synth_nmnist_geometry.py --out DIR [--train-per-class 30]
        [--test-per-class 10] [--epochs 6] [--seed 0]

Writes a synthetic set in tonic's N-MNIST layout (``DIR/data/NMNIST/Train|Test/<digit>/*.bin``,
ATIS 5-byte events, 34x34): each sample is a digit drawn with PIL (DejaVu Sans, random
size, rotation and offset) moved along N-MNIST's three saccades (the path tonic's
``stabilize`` undoes: 105 ms each) and turned into events by dvsstream's DVS pixel
emulator (:mod:`dvsstream.synth.emulator`). Then, with the same seed and recipe,
``dvsstream train --dataset tonic:NMNIST`` twice for ``spikformer_dvs_tiny`` (64x64
input): the 34x34 sensor centred in zeros (the default) and ``--resize 64x64`` (enlarged,
every event kept), each followed by ``dvsstream eval`` of its last checkpoint on the Test
split. Prints one line per geometry and writes ``DIR/summary.json``.

This is not N-MNIST: the digits are a font's, the motion is ideal and the pixel model
is an emulator. It says which geometry the tiny model learns better from *this* data in
a few CPU epochs, nothing about real N-MNIST accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tonic_writer import atis_bytes  # noqa: E402

from dvsstream.synth.emulator import frames_to_events  # noqa: E402

SCALE = 4  # digits drawn at 4x and averaged down: sub-pixel motion
SACCADE_US = 105_000
STEP_US = 1_500


def _font(size: int):
    from PIL import ImageFont

    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def digit_image(digit: int, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 (at ``SCALE``) digit, white on black, float in [0, 1]."""
    from PIL import Image, ImageDraw

    side = 28 * SCALE
    img = Image.new("L", (side, side), 0)
    size = int(rng.integers(18, 25)) * SCALE
    centre = (side / 2 + rng.uniform(-2, 2) * SCALE, side / 2 + rng.uniform(-2, 2) * SCALE)
    ImageDraw.Draw(img).text(centre, str(digit), fill=255, font=_font(size), anchor="mm")
    img = img.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    return np.asarray(img, np.float32) / 255.0


def saccade_offset(t_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """N-MNIST's three saccades (px): (0, 0) -> (3.5, 7) -> (7, 0) -> (0, 0), 105 ms each."""
    f = np.clip(t_us / SACCADE_US, 0, 3)
    dx = np.where(f < 1, 3.5 * f, np.where(f < 2, 3.5 + 3.5 * (f - 1), 7 - 7 * (f - 2)))
    dy = np.where(f < 1, 7 * f, np.where(f < 2, 7 - 7 * (f - 1), 0 * f))
    return dx, dy


def sample_events(digit: int, seed: int) -> np.ndarray:
    """One synthetic N-MNIST recording: the digit moved along the saccades, emulated."""
    rng = np.random.default_rng(seed)
    img = digit_image(digit, rng)
    times = np.arange(0, 3 * SACCADE_US + 1, STEP_US, dtype=np.int64)
    dx, dy = saccade_offset(times)
    canvas = 34 * SCALE
    frames = np.empty((times.size, 34, 34), np.float32)
    for i in range(times.size):
        big = np.zeros((canvas, canvas), np.float32)
        x0, y0 = int(round(dx[i] * SCALE)), int(round(dy[i] * SCALE))
        h = min(img.shape[0], canvas - y0)
        w = min(img.shape[1], canvas - x0)
        big[y0:y0 + h, x0:x0 + w] = img[:h, :w]
        frames[i] = big.reshape(34, SCALE, 34, SCALE).mean(axis=(1, 3))
    intensity = 0.05 + 0.9 * frames
    return frames_to_events(intensity, times, (34, 34), seed=seed, noise_rate_hz=0.5)


def write_set(data: Path, train: int, test: int, seed: int) -> dict:
    counts = {"Train": 0, "Test": 0}
    events = []
    for part, per_class in (("Train", train), ("Test", test)):
        for d in range(10):
            folder = data / "NMNIST" / part / str(d)
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                ev = sample_events(d, seed * 1_000_003 + (0 if part == "Train" else 500_000) + 1000 * d + k)
                (folder / f"{k:05d}.bin").write_bytes(atis_bytes(ev["x"], ev["y"], ev["t"], ev["p"]))
                counts[part] += 1
                events.append(ev.size)
    return {**counts, "events_per_sample_median": float(np.median(events))}


def dvsstream(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "dvsstream", *args], check=True, env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--train-per-class", type=int, default=30)
    ap.add_argument("--test-per-class", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = args.out / "data"
    t0 = time.perf_counter()
    made = write_set(data, args.train_per_class, args.test_per_class, args.seed)
    print(f"wrote {made} in {time.perf_counter() - t0:.0f} s", flush=True)
    summary = {"set": made, "epochs": args.epochs, "model": "spikformer_dvs_tiny", "runs": {}}
    for name, extra in (("centred in zeros", []), ("--resize 64x64", ["--resize", "64x64"])):
        run = args.out / ("run-" + ("centred" if not extra else "resized"))
        common = ["--dataset", "tonic:NMNIST", "--root", str(data), "--device", "cpu",
                  "--cache-dir", str(args.out / "cache"), *extra]
        t0 = time.perf_counter()
        dvsstream("train", *common, "--model", "spikformer_dvs_tiny", "--epochs", str(args.epochs),
                  "--warmup-epochs", "1", "--mixup-until", "0", "--no-hflip", "--batch-size", "16",
                  "--seed", str(args.seed), "--out", str(run))
        dvsstream("eval", *common, "--checkpoint", str(run / "last.pt"), "--out", str(run / "eval"))
        result = json.loads((run / "result.json").read_text())
        report = json.loads((run / "eval" / "report.json").read_text())
        summary["runs"][name] = {
            "test_accuracy_last_epoch": report["accuracy"], "best_test_acc": result["best_test_acc"],
            "best_epoch": result["best_epoch"], "history": [r["test_acc"] for r in result["history"]],
            "frame_spec": report["frame_spec"], "wall_s": time.perf_counter() - t0,
        }
        print(f"{name}: test accuracy after {args.epochs} epochs {report['accuracy']:.3f} "
              f"(best {result['best_test_acc']:.3f} at epoch {result['best_epoch']}), "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
