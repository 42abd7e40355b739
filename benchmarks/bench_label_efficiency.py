"""Label efficiency of masked pre-training, and its throughput against ``train``'s.

For each data set: pre-train the encoder without labels on the training part, then
fine-tune with ``--labels`` labels per class, and train the same model from scratch on the
same labels, with the same recipe, epochs and held-out set. Then the same at full labels.
Prints held-out accuracies and the difference in points (pre-trained - scratch), averaged
over ``--seeds`` label draws.

Data:
* ``real``: the real recordings in ``../shared/data/real/`` cut into "which recording"
  classes (the ones of at least 5 s): windows of the first 80 % of each recording (in
  time) to learn from, of the last 20 % held out, all cut with the live binning;
* ``synth``: the emulator's gesture set (``dvsstream synth``), its train and test splits.

Throughput: samples/s of one pre-training epoch and of one training epoch of the same
model on the same windows, in this run (the ratio is what the issue's target reads).

    python benchmarks/bench_label_efficiency.py --data real --seeds 3

Measured 2026-12-06 (2-core machine, one torch thread, other jobs beside it; 3 label
draws, 200 pre-training epochs, the default): real 52.5 -> 74.5 % with 10 labels per
class (+22.1 points), full labels 67.6 -> 67.6 %; emulator's gestures 46.5 -> 62.6 %
(+16.2), full labels 25.8 -> 34.8 % (+9.1). Shorter pre-training transfers less: 60
epochs gave +22.5 (real) and +11.4 (gestures), 15 epochs +8.1 and +6.1. ``--norm log``
(log(1 + counts), 60 epochs) gave less than per-patch normalisation on the gestures.
About 15 min of pre-training per set at 200 epochs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT / ".." / "shared" / "data" / "real"

from dvsstream.binning.geometry import BinningConfig  # noqa: E402
from dvsstream.models import create_model  # noqa: E402
from dvsstream.models.masked import MaskedAutoencoder  # noqa: E402
from dvsstream.models.transfer import init_encoder  # noqa: E402
from dvsstream.training.config import TrainConfig  # noqa: E402
from dvsstream.training.few_labels import choose_labelled, targets_of  # noqa: E402
from dvsstream.training.pretrain import PretrainTrainer  # noqa: E402
from dvsstream.training.pretrain_data import decoder_for  # noqa: E402
from dvsstream.training.trainer import train  # noqa: E402

MODEL = "spikformer_dvs_tiny"
FEW_LR = 1e-3
NORM_FLOOR = 1e-6
TARGET_NORM = "patch"


def real_windows(hop_ms: float):
    """Train / held-out windows of the real recordings of at least 5 s, one class each."""
    from dvsstream.datasets.recordings import WindowSource, read_recording, recording_windows

    files = []
    for p in sorted(REAL.iterdir()):
        if p.suffix in (".aedat", ".aedat4", ".dat"):
            ev, _, _ = read_recording(p)
            if ev.size and (int(ev["t"][-1]) - int(ev["t"][0])) >= 5e6:
                files.append(p)
    classes = [p.stem for p in files]
    base = BinningConfig(400_000, 8, int(hop_ms * 1000))
    train = recording_windows([WindowSource(p, k, (0.0, 0.8)) for k, p in enumerate(files)], classes, base, (64, 64),
                              min_events=16)
    test = recording_windows([WindowSource(p, k, (0.8, 1.0)) for k, p in enumerate(files)], classes, base, (64, 64),
                             min_events=16)
    return train, test, classes


def synth_windows(samples_per_class: int, work: Path):
    """The emulator's gesture set: train and test splits, binned as the live window."""
    from dvsstream.datasets.load import load_dataset
    from dvsstream.models import get_config
    from dvsstream.synth.dataset import generate_gesture_set
    from dvsstream.training.train import frame_spec_for

    out = work / "synth"
    generate_gesture_set(out, samples_per_class=samples_per_class, duration_s=0.4, seed=5, formats=("tonic",),
                         workers=1)
    spec = frame_spec_for(get_config(MODEL), "time")
    train = load_dataset("dvsgesture", out / "tonic", "train", spec, cache_dir=False)
    test = load_dataset("dvsgesture", out / "tonic", "test", spec, cache_dir=False)
    return train, test, list(train.classes)


def pretrain(train_set, test_set, epochs: int, work: Path, target: str, log) -> tuple[Path, float]:
    torch.manual_seed(0)
    dec = decoder_for(64, 0.75, target)
    dec.norm_floor = NORM_FLOOR
    dec.norm = TARGET_NORM
    mae = MaskedAutoencoder(create_model(MODEL, num_classes=0), dec)
    config = TrainConfig(epochs=epochs, batch_size=16, lr=1e-3, weight_decay=0.05, warmup_epochs=min(5, epochs // 4),
                         mixup_alpha=0.0, mixup_until=0, label_smoothing=0.0, betas=(0.9, 0.95), hflip=False,
                         tensorboard=False)
    out = work / f"pre-{target}"
    result = PretrainTrainer(mae, train_set, test_set, config, out, log=log, classes=[]).run()
    return out / "encoder.pt", result.samples_per_s


def throughput(train_set, classes, work: Path, rounds: int = 2) -> tuple[float, float]:
    """Samples/s of one pre-training epoch and one training epoch of the same model on the
    same windows, alternated ``rounds`` times in this process (the best of each)."""
    pre, cls = [], []
    for k in range(rounds):
        torch.manual_seed(0)
        mae = MaskedAutoencoder(create_model(MODEL, num_classes=0), decoder_for(64))
        cfg = dict(epochs=1, batch_size=16, warmup_epochs=0, tensorboard=False, hflip=False, cache_frames="off")
        pre.append(PretrainTrainer(mae, train_set, None, TrainConfig(mixup_alpha=0.0, mixup_until=0, **cfg),
                                   work / f"tp-pre{k}", log=None, classes=[]).run().samples_per_s)
        torch.manual_seed(0)
        model = create_model(MODEL, num_classes=len(classes))
        cls.append(train(model, train_set, None, TrainConfig(mixup_until=0, **cfg), work / f"tp-cls{k}",
                         log=None, classes=classes).samples_per_s)
    return max(pre), max(cls)


def fine_tune(train_set, test_set, classes, init, indices, epochs: int, work: Path, tag: str) -> tuple[float, float]:
    torch.manual_seed(0)
    model = create_model(MODEL, num_classes=len(classes))
    if init is not None:
        init_encoder(model, init)
    subset = Subset(train_set, indices) if indices is not None else train_set
    few = indices is not None and len(indices) < 20 * len(classes)
    batch = 8 if few else 16
    lr = FEW_LR if few else 1e-3
    config = TrainConfig(epochs=epochs, batch_size=batch, lr=lr, warmup_epochs=max(1, epochs // 10),
                         mixup_until=0 if few else epochs // 2, hflip=False, tensorboard=False)
    result = train(model, subset, test_set, config, work / tag, log=None, classes=classes)
    return result.final_acc, result.samples_per_s


def run(data: str, args, work: Path) -> dict:
    if data == "real":
        train_set, test_set, classes = real_windows(args.hop_ms)
    else:
        train_set, test_set, classes = synth_windows(args.synth_per_class, work)
    print(f"[{data}] {len(classes)} classes; {len(train_set)} training, {len(test_set)} held-out samples", flush=True)
    pre_rate, train_rate = throughput(train_set, classes, work / data)
    print(f"[{data}] throughput in this run: pretrain {pre_rate:.1f} samples/s, train {train_rate:.1f} samples/s "
          f"(train / pretrain = {train_rate / pre_rate:.2f}x)", flush=True)
    t0 = time.perf_counter()
    if args.encoder:
        encoder = Path(args.encoder)
        print(f"[{data}] the encoder: {encoder} (not pre-trained here)", flush=True)
    else:
        encoder, _ = pretrain(train_set, test_set, args.pretrain_epochs, work / data, args.target,
                              log=lambda s: print(f"  {s}", flush=True) if "epoch" in s else None)
        print(f"[{data}] pre-trained {args.pretrain_epochs} epochs in {time.perf_counter() - t0:.0f} s", flush=True)
    targets = targets_of(train_set)
    rows = []
    for seed in range(args.seeds):
        idx = choose_labelled(targets, classes, args.labels, seed, allow_fewer=True)["indices"]
        scratch, _ = fine_tune(train_set, test_set, classes, None, idx, args.few_epochs, work / data, f"s{seed}")
        pre, _ = fine_tune(train_set, test_set, classes, encoder, idx, args.few_epochs, work / data, f"p{seed}")
        rows.append((scratch, pre))
        print(f"[{data}] {args.labels} labels/class, draw {seed}: scratch {100 * scratch:.1f} %, "
              f"pre-trained {100 * pre:.1f} %", flush=True)
    scratch_full, _ = fine_tune(train_set, test_set, classes, None, None, args.full_epochs, work / data, "sf")
    pre_full, _ = fine_tune(train_set, test_set, classes, encoder, None, args.full_epochs, work / data, "pf")
    few_s, few_p = (float(np.mean([r[i] for r in rows])) for i in (0, 1))
    out = {"data": data, "classes": len(classes), "train": len(train_set), "held_out": len(test_set),
           "labels_per_class": args.labels, "draws": args.seeds, "few_scratch": few_s, "few_pretrained": few_p,
           "few_gain_points": 100 * (few_p - few_s), "full_scratch": scratch_full, "full_pretrained": pre_full,
           "full_gain_points": 100 * (pre_full - scratch_full), "pretrain_samples_per_s": pre_rate,
           "train_samples_per_s": train_rate, "throughput_ratio": train_rate / pre_rate if pre_rate else None}
    print(f"[{data}] {args.labels} labels/class: scratch {100 * few_s:.1f} %, pre-trained {100 * few_p:.1f} % "
          f"-> {out['few_gain_points']:+.1f} points; full labels: scratch {100 * scratch_full:.1f} %, "
          f"pre-trained {100 * pre_full:.1f} % -> {out['full_gain_points']:+.1f} points", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", choices=("real", "synth", "both"), default="real")
    p.add_argument("--labels", type=int, default=10)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--pretrain-epochs", type=int, default=200,
                   help="pre-training epochs on the training part (real set: 15 give +8 points, 60 +22, 200 +22; "
                        "emulator's gestures: 15 give +6, 60 +11, 200 +16)")
    p.add_argument("--few-epochs", type=int, default=40)
    p.add_argument("--full-epochs", type=int, default=10)
    p.add_argument("--hop-ms", type=float, default=100.0)
    p.add_argument("--synth-per-class", type=int, default=30)
    p.add_argument("--target", choices=("window", "steps"), default="window")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--encoder", default=None, help="fine-tune this encoder.pt instead of pre-training one here")
    p.add_argument("--few-lr", type=float, default=1e-3, help="learning rate of the few-label runs")
    p.add_argument("--norm-floor", type=float, default=1e-6, help="variance floor of the per-patch target")
    p.add_argument("--norm", choices=("patch", "log"), default="patch",
                   help="the target's scaling: per patch, or log(1 + counts)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    global FEW_LR, NORM_FLOOR, TARGET_NORM
    FEW_LR, NORM_FLOOR, TARGET_NORM = args.few_lr, args.norm_floor, args.norm
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for data in (("real", "synth") if args.data == "both" else (args.data,)):
            results.append(run(data, args, Path(tmp)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
