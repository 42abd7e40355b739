"""``dvsstream teach ROOT --out model.pt``: a model for your own classes, one folder of
recordings per class (see :mod:`dvsstream.training.teach` and
:mod:`dvsstream.training.teach_data` for the rules and the recipe)."""

from __future__ import annotations

import argparse

from dvsstream.cli.args import (
    add_geometry_arguments,
    add_sensor_size_argument,
    add_trust_argument,
    at_most,
    device_name,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    window_ms,
)
from dvsstream.cli.validate import (
    check_checkpoints,
    check_input_folder,
    check_output_file,
    check_window_memory,
)
from dvsstream.errors import DvsstreamError

#: the most training windows an epoch draws (``--epoch-windows``): the draw is held in memory
MAX_EPOCH_WINDOWS = 1_000_000


def teach_config(args: argparse.Namespace):
    """The :class:`~dvsstream.training.teach.TeachConfig` of the options."""
    from dvsstream.training.teach import TeachConfig

    return TeachConfig(
        root=args.root, out=args.out, model=args.model, init=args.init, from_scratch=args.from_scratch,
        report_dir=args.report_dir, window_ms=args.window_ms, hop_ms=args.hop_ms, bins=args.bins, roi=args.roi,
        resize=args.resize, sensor_size=args.sensor_size, min_events=args.min_events,
        background_from_quiet=args.background_from_quiet, background_name=args.background_name,
        skip_unreadable=args.skip_unreadable, epochs=args.epochs, patience=args.patience,
        min_epochs=args.min_epochs,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, epoch_windows=args.epoch_windows,
        augment=not args.no_augment, hflip=args.hflip, device=args.device, seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    """The command line to :func:`dvsstream.training.teach.teach`; exit status 0."""
    from dvsstream.training.teach import teach

    teach(teach_config(args))
    return 0


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input (the class folders
    themselves are checked by the library, still before anything is written)."""
    from pathlib import Path

    from dvsstream.training.teach import report_dir_for

    check_input_folder(args.root, "ROOT")
    check_checkpoints(args)  # --init: a readable file, before the recordings are read
    # a checkpoint's name (.pt): --force never replaces a recording or a user's notes with one
    out = check_output_file(args.out, "--out checkpoint", inputs=[args.init], force=args.force, kind="checkpoint")
    if Path(args.root).resolve() in out.resolve().parents:
        raise DvsstreamError(f"--out {out}: inside ROOT {args.root} (it would be read as part of the classes next "
                             "time); write it elsewhere")
    report = report_dir_for(args.out, args.report_dir)
    if Path(args.root).resolve() in (report.resolve(), *report.resolve().parents):
        raise DvsstreamError(f"the report folder {report}: inside ROOT {args.root} (it would become a class folder); "
                             "give --report-dir a folder elsewhere")
    if report.exists() and not report.is_dir():
        raise DvsstreamError(f"the report folder {report}: is a file; give --report-dir a folder")
    if report.exists() and any(report.iterdir()) and not args.force:
        raise DvsstreamError(f"the report folder {report}: already exists; choose another --out or --report-dir, "
                             "or pass --force to replace its files")
    if not report.exists() and not report.parent.is_dir():
        raise DvsstreamError(f"--report-dir {report}: its folder {report.parent} does not exist; create it first")
    if args.init is not None and args.from_scratch:
        raise DvsstreamError("--init and --from-scratch contradict each other; give one")
    if not args.background_name.strip():
        raise DvsstreamError("--background-name is empty; give the \"nothing\" class a name")
    check_window_memory(args.model, args.bins)


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream teach`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("teach", help="teach a model your own classes from a few recordings (one folder per class)")
    p.add_argument("root", metavar="ROOT",
                   help="ROOT/<class name>/ holds each class's recordings (any format, any camera); ROOT/_background/ "
                        "the optional \"nothing\" class. Class names that differ only in case, spaces, _ or - are "
                        "refused (they would be one label)")
    p.add_argument("--out", required=True, help="the checkpoint to write (class names and live binning inside)")
    p.add_argument("--force", action="store_true", help="replace an existing --out and the report's files")
    p.add_argument("--report-dir", default=None,
                   help="folder for report.json, windows.csv, log.csv and the figures (default: <out stem>_report "
                        "beside --out)")
    p.add_argument("--model", default="spikformer_dvs_tiny")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="start from this encoder (a pretrain encoder.pt or a classifier of the same model); "
                        "default: the shipped pre-trained encoder when there is one, else from scratch")
    p.add_argument("--from-scratch", action="store_true", help="start from random weights")
    add_trust_argument(p)
    p.add_argument("--window-ms", type=window_ms, default=None,
                   help="the live window (default: the model's T bins of 50 ms, 400 ms for the tiny model; at most "
                        "an hour)")
    p.add_argument("--hop-ms", type=positive_float, default=None,
                   help="a new window every HOP ms, in training and live (default: one bin, 50 ms)")
    p.add_argument("--bins", type=positive_int, default=None, help="time bins per window (default: the model's T)")
    p.add_argument("--min-events", type=nonneg_int, default=16,
                   help="leave out windows with fewer events (default 16; not for the \"nothing\" class)")
    p.add_argument("--background-from-quiet", action="store_true",
                   help="the quiet windows of every recording (under 10%% of its median window's events) make the "
                        "\"nothing\" class (with ROOT/_background/ if there is one)")
    p.add_argument("--background-name", default="nothing", help="the \"nothing\" class's name (default: nothing)")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="leave out recordings that cannot be read (default: stop, naming the file)")
    add_sensor_size_argument(p)
    p.add_argument("--epochs", type=positive_int, default=25, help="at most this many epochs (default 25)")
    p.add_argument("--patience", type=positive_int, default=8,
                   help="stop after this many epochs without a better held-out result (default 8)")
    p.add_argument("--min-epochs", type=nonneg_int, default=15,
                   help="never stop early before this epoch (default 15)")
    p.add_argument("--epoch-windows", type=at_most(positive_int, MAX_EPOCH_WINDOWS), default=None,
                   help="training windows drawn per epoch, the same number from every class (default 48 per class; "
                        "at most a million: every epoch draws them all at once)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default 4e-3)")
    p.add_argument("--weight-decay", type=nonneg_float, default=0.06)
    p.add_argument("--no-augment", action="store_true",
                   help="no random shear, shift, rotation, cutout, zoom or event thinning")
    p.add_argument("--hflip", action="store_true",
                   help="also mirror windows left/right at random (off by default: left and right may matter)")
    p.add_argument("--device", type=device_name, default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    add_geometry_arguments(p)
    p.set_defaults(func=run, check=check)
    return p
