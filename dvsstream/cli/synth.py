"""``dvsstream synth``: the synthetic gesture set, generated with the DVS emulator."""

from __future__ import annotations

import argparse
import sys

from dvsstream.cli.args import nonneg_int, positive_float, positive_int
from dvsstream.cli.validate import check_output_folder, check_set_size
from dvsstream.errors import DvsstreamError


def run(args: argparse.Namespace) -> int:
    """Generate the set (:func:`dvsstream.synth.dataset.generate_gesture_set`) and print
    a summary line; warnings on stderr."""
    from dvsstream.synth.dataset import generate_gesture_set, shipped_model_mismatch

    formats = _formats(args)
    if args.workers < 1:
        raise DvsstreamError(f"--workers must be at least 1, got {args.workers}")
    mismatch = shipped_model_mismatch(args.duration)
    if mismatch:
        print(f"dvsstream: warning: {mismatch}", file=sys.stderr)
    s = generate_gesture_set(args.out, samples_per_class=args.samples_per_class, duration_s=args.duration,
                             seed=args.seed, formats=formats, workers=args.workers)
    for w in s["warnings"]:
        print(f"dvsstream: warning: {w}", file=sys.stderr)
    print(f"synth: {s['samples']} samples ({s['splits']['train']} train, {s['splits']['test']} test), "
          f"{s['events']} events ({s['events_per_sample']:.0f}/sample), {s['wall_s']:.1f} s "
          f"({s['samples_per_s']:.1f} samples/s) -> {', '.join(s['paths'].values())}")
    return 0


def _formats(args: argparse.Namespace) -> tuple:
    return ("hdf5", "tonic") if args.format == "both" else (args.format,)


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream synth`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("synth", help="generate the synthetic gesture set with the DVS emulator")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples-per-class", type=positive_int, default=20)
    p.add_argument("--duration", type=positive_float, default=0.4,
                   help="seconds per sample (default 0.4: the clips the shipped model was trained on)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--format", default="both", choices=("hdf5", "tonic", "both"))
    p.add_argument("--workers", type=positive_int, default=1, help="processes")
    p.add_argument("--force", action="store_true", help="--out may be a folder holding other files")
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_output_folder(args.out, "--out", own="synth", force=args.force)
    check_set_size(args.out, args.samples_per_class, args.duration, _formats(args), args.workers)

