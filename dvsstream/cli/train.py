"""``dvsstream train``: a model trained with the papers' recipe (torchrun for several GPUs)."""

from __future__ import annotations

import argparse

from dvsstream.cli.args import (
    add_filter_argument,
    add_geometry_arguments,
    add_trust_argument,
    at_most,
    dataset_name,
    device_name,
    filter_of,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
)
from dvsstream.cli.eval import check as eval_check  # the same checks: --root, --init, --cache-dir, --out
from dvsstream.training.presets import PRESETS, apply_preset, defer_to_preset


def run(args: argparse.Namespace) -> int:
    """The command line to :func:`dvsstream.training.train.train_on_dataset`: the
    recipe's :class:`~dvsstream.training.config.TrainConfig` with the options'
    overrides (epochs: the recipe's for the dataset unless ``--epochs``); exit status 0."""
    from dvsstream.training.config import TrainConfig
    from dvsstream.training.train import FewLabels, recipe_epochs, train_on_dataset

    apply_preset(args)
    epochs = args.epochs if args.epochs is not None else recipe_epochs(args.dataset)
    config = TrainConfig(
        epochs=epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs, mixup_until=args.mixup_until, hflip=not args.no_hflip,
        drop_event=args.drop_event, spatial_jitter=args.spatial_jitter, time_jitter_us=args.time_jitter_us,
        workers=args.workers, seed=args.seed, resume=args.resume, progress=True,
        amp=args.amp, channels_last=args.channels_last, recompute=args.recompute,
        prefetch=args.prefetch, cache_frames=args.cache_frames, memory_budget_mb=args.memory_budget_mb,
    )
    train_on_dataset(args.dataset, args.root, args.model, config, args.out, device=args.device, frames=args.frames,
                     convention=args.convention, roi=args.roi, resize=args.resize,
                     cache_dir=args.cache_dir, limit=args.limit, init=args.init, label_order=args.label_order,
                     few_labels=(FewLabels(args.labels_per_class, args.label_seed, args.allow_fewer_labels)
                                 if args.labels_per_class else None),
                     freeze_encoder=args.freeze_encoder,
                     event_filter=filter_of(args) if args.filter else None,
                     allow_no_test=args.no_test)
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream train`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("train", help="train a model with the papers' recipe (torchrun for several GPUs)")
    p.add_argument("--dataset", required=True, type=dataset_name, metavar="NAME",
                   help="cifar10dvs, dvsgesture or tonic:NAME (NMNIST, NCALTECH101, CIFAR10DVS, DVSGesture, ASLDVS, "
                        "POKERDVS, DVSLip) in tonic's save_to layout under --root")
    p.add_argument("--root", required=True)
    p.add_argument("--preset", default="paper", choices=tuple(PRESETS),
                   help="paper (default): the papers' recipe (spikformer_dvs, 202 or 106 epochs, 10 warm-up, "
                        "lr 1e-3, batch 16, mixup until 75); quick: a few minutes on a CPU for dvsstream synth's "
                        "set (spikformer_dvs_tiny, 40 epochs, 2 warm-up, lr 3e-3, no mixup, --no-hflip, "
                        "--frames time); options given override the preset's")
    p.add_argument("--model", default="spikformer_dvs")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="default: the recipe's (106 CIFAR10-DVS, 202 Gesture; 100 for other tonic sets)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--weight-decay", type=nonneg_float, default=0.06)
    p.add_argument("--warmup-epochs", type=nonneg_int, default=10)
    p.add_argument("--mixup-until", type=nonneg_int, default=75, help="last epoch with mixup")
    p.add_argument("--no-hflip", action="store_true", help="never mirror left/right (right for Gesture's left/right classes)")
    p.add_argument("--drop-event", type=at_most(nonneg_float, 0.99), default=0.0, metavar="P",
                   help="event augmentation: drop this share of each training sample's events (tonic's DropEvent; "
                        "default 0: off, the papers' recipe)")
    p.add_argument("--spatial-jitter", type=at_most(nonneg_float, 10_000), default=0.0, metavar="VAR",
                   help="event augmentation: move each event by a Gaussian of this variance in px^2 on both axes "
                        "(tonic's SpatialJitter; default 0: off)")
    p.add_argument("--time-jitter-us", type=at_most(nonneg_float, 10_000_000), default=0.0, metavar="STD",
                   help="event augmentation: move each event's time by a Gaussian of this deviation in us "
                        "(tonic's TimeJitter; default 0: off)")
    p.add_argument("--frames", default="count", choices=("count", "time"),
                   help="T bins of equal event count (the papers') or of equal time (as a live window)")
    p.add_argument("--device", type=device_name, default=None)
    p.add_argument("--workers", type=nonneg_int, default=0,
                   help="data loader processes (default 0: batches are read in the training process)")
    p.add_argument("--prefetch", type=positive_int, default=2, help="batches each loader process prepares ahead")
    p.add_argument("--cache-frames", default="auto", choices=("auto", "on", "off"),
                   help="hold the binned frames in memory (no file I/O after the first read); "
                        "auto: when they fit --memory-budget-mb")
    p.add_argument("--memory-budget-mb", type=nonneg_float, default=2048.0,
                   help="memory for --cache-frames auto, per process (default 2048 MiB)")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "fp16", "bf16"),
                   help="mixed precision: auto = fp16 with a grad scaler on CUDA, none on CPU; bf16 on CUDA or CPU")
    p.add_argument("--channels-last", action="store_true", help="conv weights and frames channels-last")
    p.add_argument("--recompute", action="store_true",
                   help="keep less for the backward (each batch norm + LIF recomputed): about 40%% less "
                        "activation memory for about 13%% more time on a CPU; the same numbers")
    p.add_argument("--limit", type=positive_int, default=None, help="use at most N training samples")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="fine-tune: start from this checkpoint's weights (a pretrain encoder.pt, or a model of "
                        "the same family and input size; with other classes its encoder, and a new head)")
    p.add_argument("--labels-per-class", type=positive_int, default=None, metavar="N",
                   help="train on N labelled samples per class of the train split (a fixed, seeded choice)")
    p.add_argument("--label-seed", type=nonneg_int, default=0, help="the seed of --labels-per-class's choice")
    p.add_argument("--allow-fewer-labels", action="store_true",
                   help="--labels-per-class: classes with fewer samples give all they have (default: an error)")
    p.add_argument("--freeze-encoder", action="store_true",
                   help="train the classifier head alone (a linear probe; best with --init)")
    add_trust_argument(p)
    p.add_argument("--convention", default="spikingjelly", choices=("spikingjelly", "native"),
                   help="orientation and polarity of the frames (default: the releases', spikingjelly's)")
    p.add_argument("--label-order", default=None, choices=("spikingjelly", "dataset"),
                   help="class order of an --init release checkpoint's outputs (its head is permuted to the dataset's)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--out", required=True, help="folder for checkpoints and the training log")
    p.add_argument("--force", action="store_true", help="--out may be a folder holding other files")
    p.add_argument("--no-test", action="store_true",
                   help="train even when the data has no test split (no accuracy is measured)")
    add_geometry_arguments(p)
    add_filter_argument(p)
    p.set_defaults(func=run, check=check)
    defer_to_preset(p)  # --preset fills the options it sets that were not given
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: ``--preset``'s values for the options not given, then ``eval``'s
    checks (``--root``, ``--init``, ``--cache-dir``, ``--out``)."""
    apply_preset(args)
    eval_check(args)
