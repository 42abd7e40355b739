"""``dvsstream synth``: the synthetic gesture set, generated with the DVS emulator."""

from __future__ import annotations

import argparse

from dvsstream.cli.args import nonneg_int, positive_float, positive_int
from dvsstream.cli.validate import check_output_folder


def run(args: argparse.Namespace) -> int:
    from dvsstream.synth.dataset import run_synth

    return run_synth(args)


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
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_output_folder(args.out, "--out")

