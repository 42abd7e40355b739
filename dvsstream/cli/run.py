"""``dvsstream run``: the headless live classifier: predictions as they come and a JSON report."""

from __future__ import annotations

import argparse

from dvsstream.cli.args import (
    STREAM_CLOCK,
    add_geometry_arguments,
    add_sensor_size_argument,
    add_trust_argument,
    device_name,
    nonneg_float,
    positive_float,
    positive_int,
)
from dvsstream.cli.validate import check_checkpoints, check_output_file, check_source


def run(args: argparse.Namespace) -> int:
    from dvsstream.stream.live import run_live

    return run_live(args)


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream run`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("run", help="classify a live stream or a recording headless, printing predictions as they come")
    p.add_argument("--source", default=None,
                   help="recording path, camera:[SERIAL], tcp://HOST:PORT, unix://PATH or synthetic:... "
                        "(default: the shipped recording recordings/gestures_waves_and_clap.h5)")
    p.add_argument("--checkpoint", default=None, help="our checkpoint (default: the shipped gesture model)")
    add_trust_argument(p)
    p.add_argument("--window-ms", type=positive_float, default=None, help="window length (default: the checkpoint's)")
    p.add_argument("--hop-ms", type=positive_float, default=None, help="a prediction every HOP ms (default: the checkpoint's)")
    p.add_argument("--bins", type=positive_int, default=None, help="time bins T per window (default: the checkpoint's)")
    p.add_argument("--mode", default="step", choices=("step", "window"),
                   help="step: one new bin per hop with carried state (cheap); window: recompute all T bins")
    p.add_argument("--speed", type=positive_float, default=None,
                   help="recordings: replay pace (1 = real time); default: as fast as the pipeline allows")
    p.add_argument("--duration", type=positive_float, default=None,
                   help=f"stop after this many seconds of stream time {STREAM_CLOCK} (default: at the end)")
    p.add_argument("--start", type=nonneg_float, default=None, metavar="S",
                   help="a recording: start S seconds after its first event (default 0)")
    p.add_argument("--device", type=device_name, default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--json-out", default=None, help="write predictions and accounting to this JSON file")
    p.add_argument("--force", action="store_true", help="--json-out may replace an existing file")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    add_geometry_arguments(p)
    add_sensor_size_argument(p)
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_source(args.source)
    check_checkpoints(args)
    if args.json_out is not None:
        check_output_file(args.json_out, "--json-out report", inputs=[args.source, args.checkpoint],
                          force=args.force)

