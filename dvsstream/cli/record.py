"""``dvsstream record``: a camera, a network stream, a synthetic stream or a file to HDF5."""

from __future__ import annotations

import argparse
import sys

from dvsstream.cli.args import (
    STREAM_CLOCK,
    add_filter_argument,
    filter_of,
    nonneg_float,
    positive_float,
    print_warnings,
    progress_bar,
)
from dvsstream.cli.validate import check_output_file, check_source
from dvsstream.errors import DvsstreamError
from dvsstream.fileio import is_uri


def _record(source_uri: str, out: str, duration: float | None, desc: str, force: bool,
            start_s: float | None = None, event_filter=None, **options) -> int:
    from dvsstream.io import open_source, start_source_at
    from dvsstream.io.record import record

    with open_source(source_uri, **options) as source:
        start_source_at(source, start_s, source_uri)
        with progress_bar(getattr(source, "n_events", None), desc=desc) as bar:
            try:
                summary = record(source, out, duration_s=duration, overwrite=force, event_filter=event_filter,
                                 progress=lambda s: bar.update(s["events"] - bar.n))
            except ValueError as exc:
                raise DvsstreamError(f"{source_uri}: {exc}") from None
        stats = source.stats
    print(f"wrote {summary['events']:,} events ({summary['duration_s']:.3f} s of stream) to {out}")
    print_filtered(summary)
    if summary["events"] == 0:
        print(f"warning: no events arrived in {summary['wall_s']:.1f} s (a still scene or a covered lens?); "
              f"{out} holds none", file=sys.stderr)
    if summary.get("interrupted"):
        print("stopped by Ctrl-C; the file holds everything received until then")
    print_warnings(stats)
    return 0


def print_filtered(summary: dict) -> None:
    """The line saying what ``--filter`` removed (nothing without a filter)."""
    if summary.get("filter", "none") != "none":
        seen = summary["events"] + summary["filtered"] + summary.get("outside_roi", 0)
        share = 100 * summary["filtered"] / seen if seen else 0.0
        print(f"--filter {summary['filter']} removed {summary['filtered']:,} events ({share:.1f} %)")


def run(args: argparse.Namespace) -> int:
    options = {}
    if args.speed is not None:
        options["speed"] = args.speed
    return _record(args.source, args.out, args.duration, "recording", args.force, start_s=args.start,
                   event_filter=filter_of(args), **options)


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream record`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("record", help="record a camera, network stream or file to HDF5")
    p.add_argument("--source", required=True, help="camera:, camera:SERIAL, tcp://host:port, unix://path or a file")
    p.add_argument("--out", required=True, help="the .h5 file to write")
    p.add_argument("--duration", type=positive_float, default=None,
                   help=f"seconds of stream time to record {STREAM_CLOCK} (default: until the end / Ctrl-C)")
    p.add_argument("--start", type=nonneg_float, default=None, metavar="S",
                   help="a recording: start S seconds after its first event (default 0)")
    p.add_argument("--speed", type=positive_float, default=None, help="for a file source: replay pace (1 = real time)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    add_filter_argument(p)
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_source(args.source)
    if args.speed is not None and is_uri(args.source):
        raise DvsstreamError(f"--speed applies to recordings only, not to {args.source} (a live source "
                             "comes at its own pace)")
    check_output_file(args.out, "--out recording", inputs=[args.source], force=args.force, kind="recording")

