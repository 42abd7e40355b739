"""``dvsstream pretrain``: masked-reconstruction pre-training of a model's encoder on
unlabelled event data (a folder of recordings, or a dataset's train split)."""

from __future__ import annotations

import argparse

from dvsstream.cli.args import (
    add_filter_argument,
    add_geometry_arguments,
    add_sensor_size_argument,
    at_most,
    device_name,
    filter_of,
    finite_float,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    window_ms,
)
from dvsstream.cli.args import dataset_name as _dataset_name
from dvsstream.cli.validate import (
    check_input_folder,
    check_output_folder,
    check_window_memory,
)
from dvsstream.errors import DvsstreamError

#: the widest and deepest decoder ``--decoder-dim`` / ``--decoder-depth`` build (MAE's is 512
#: wide and 8 deep; both at most: about 3e8 weights, 1.2 GB; larger ones are typos that
#: failed to allocate, with a traceback, or took hours to build)
MAX_DECODER_DIM = 1024
MAX_DECODER_DEPTH = 24


def run(args: argparse.Namespace) -> int:
    """The command line to :func:`dvsstream.training.pretrain_data.pretrain_on_data`; exit status 0."""
    from dvsstream.models import get_config
    from dvsstream.training.config import TrainConfig
    from dvsstream.training.pretrain_data import (
        PretrainData,
        decoder_for,
        pretrain_on_data,
    )

    data = PretrainData(args.dataset, args.root, window_ms=args.window_ms, bins=args.bins, roi=args.roi,
                        resize=args.resize, sensor_size=args.sensor_size, skip_unreadable=args.skip_unreadable,
                        frames=args.frames, cache_dir=args.cache_dir, limit=args.limit, min_events=args.min_events,
                        noise_filter=filter_of(args) if args.filter else None)
    decoder = decoder_for(get_config(args.model).dim, args.mask_ratio, args.target, args.decoder_dim,
                          args.decoder_depth)
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs, mixup_alpha=0.0, mixup_until=0, label_smoothing=0.0,
        augment=not args.no_augment, hflip=not args.no_hflip, workers=args.workers, seed=args.seed,
        resume=args.resume, progress=True, amp=args.amp, channels_last=args.channels_last,
        recompute=args.recompute, cache_frames=args.cache_frames, memory_budget_mb=args.memory_budget_mb,
        betas=(0.9, 0.95),
    )
    pretrain_on_data(data, args.model, decoder, config, args.out, device=args.device)
    return 0


def unlabelled_data(text: str) -> str:
    """``--dataset``: ``folder`` or a dataset name ``train`` takes."""
    return "folder" if text == "folder" else _dataset_name(text)


unlabelled_data.__name__ = "dataset"


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    if not 0.0 < args.mask_ratio < 1.0:  # before torch loads (the library's DecoderConfig says the same)
        raise DvsstreamError(f"--mask-ratio {args.mask_ratio:g} must lie between 0 and 1 (exclusive); "
                             "MAE's default is 0.75")
    if args.dataset != "folder" and (args.window_ms is not None or args.bins is not None):
        raise DvsstreamError(f"--window-ms and --bins are for --dataset folder; {args.dataset} is binned as "
                             "train bins it (--frames)")
    check_input_folder(args.root, "--root")
    # a train run's folder (last.pt, log.csv) or a user's is not replaced without --force
    check_output_folder(args.out, "--out", inputs=[args.root], own="pretrain", force=args.force,
                        keep=[args.cache_dir])
    if args.cache_dir is not None:
        check_output_folder(args.cache_dir, "--cache-dir", inputs=[args.root])
    if args.dataset == "folder":
        check_window_memory(args.model, args.bins)


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream pretrain`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("pretrain", help="pre-train a model's encoder on unlabelled events (masked reconstruction)")
    p.add_argument("--dataset", required=True, type=unlabelled_data, metavar="folder|DATASET",
                   help="folder: every recording under --root, in any format; or a dataset train reads "
                        "(cifar10dvs, dvsgesture, tonic:NAME: its train split, labels ignored)")
    p.add_argument("--root", required=True)
    p.add_argument("--model", default="spikformer_dvs")
    p.add_argument("--mask-ratio", type=finite_float, default=0.75,
                   help="share of the token patches masked in every window (default 0.75, MAE's)")
    p.add_argument("--target", default="window", choices=("window", "steps"),
                   help="what is reconstructed: each masked patch's counts over the window (default) or per "
                        "time step")
    p.add_argument("--decoder-dim", type=at_most(positive_int, MAX_DECODER_DIM), default=None,
                   help="decoder width (default: 256 for full-size encoders, twice the encoder's for narrow ones; "
                        f"at most {MAX_DECODER_DIM})")
    p.add_argument("--decoder-depth", type=at_most(positive_int, MAX_DECODER_DEPTH), default=None,
                   help=f"decoder blocks (default: 4 for full-size encoders, 2 for narrow ones; at most "
                        f"{MAX_DECODER_DEPTH})")
    p.add_argument("--window-ms", type=window_ms, default=None,
                   help="--dataset folder: the live window (default: the model's T bins of 50 ms; at most an hour)")
    p.add_argument("--bins", type=positive_int, default=None, help="--dataset folder: time bins per window "
                                                                    "(default: the model's T)")
    p.add_argument("--min-events", type=nonneg_int, default=16,
                   help="--dataset folder: leave out windows with fewer events (default 16)")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="leave out recordings that cannot be read (default: stop, naming the file)")
    add_sensor_size_argument(p)
    p.add_argument("--frames", default="time", choices=("count", "time"),
                   help="a dataset's bins: equal time (default, as a live window) or equal event count")
    p.add_argument("--epochs", type=positive_int, default=100)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--weight-decay", type=nonneg_float, default=0.05)
    p.add_argument("--warmup-epochs", type=nonneg_int, default=5)
    p.add_argument("--no-augment", action="store_true", help="no flips or random affine ops")
    p.add_argument("--no-hflip", action="store_true", help="never mirror left/right")
    p.add_argument("--device", type=device_name, default=None)
    p.add_argument("--workers", type=nonneg_int, default=0, help="data loader processes")
    p.add_argument("--cache-frames", default="auto", choices=("auto", "on", "off"))
    p.add_argument("--memory-budget-mb", type=nonneg_float, default=2048.0)
    p.add_argument("--amp", default="auto", choices=("auto", "off", "fp16", "bf16"))
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--recompute", action="store_true")
    p.add_argument("--limit", type=positive_int, default=None, help="a dataset: at most N training samples")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--out", required=True, help="folder for encoder.pt, last.pt, reconstruction.png and the log "
                                                "(new, empty or an earlier pretrain output, unless --force)")
    p.add_argument("--force", action="store_true", help="write into an --out folder that holds other files "
                                                        "(those of the same names are replaced)")
    add_geometry_arguments(p)
    add_filter_argument(p)
    p.set_defaults(func=run, check=check)
    return p
