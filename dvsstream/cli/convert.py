"""``dvsstream convert``: any readable recording to dvsstream HDF5, keeping every event."""

from __future__ import annotations

import argparse
import sys

from dvsstream.cli.args import (
    add_filter_argument,
    add_sensor_size_argument,
    argument_type,
    filter_of,
    progress_bar,
)
from dvsstream.cli.validate import check_input, check_output_file
from dvsstream.errors import DvsstreamError
from dvsstream.events import parse_roi


def run(args: argparse.Namespace) -> int:
    """Every event kept: the sensor grows to hold events outside the declared one
    (:func:`dvsstream.io.record.convert`); written beside OUTPUT, renamed when complete."""
    from dvsstream.cli.record import print_filtered
    from dvsstream.io.record import convert

    roi = args.roi
    with progress_bar(None, desc="converting") as bar:
        try:
            summary = convert(args.input, args.output, overwrite=args.force, roi=roi, sensor_size=args.sensor_size,
                              event_filter=filter_of(args), progress=lambda s: bar.update(s["events"] + s["outside_roi"] - bar.n))
        except ValueError as exc:
            raise DvsstreamError(f"{args.input}: {exc}") from None
    cropped = (f" (the {roi[2]}x{roi[3]} region at ({roi[0]}, {roi[1]}); {summary['outside_roi']:,} events "
               "outside it not written)" if roi is not None else "")
    print(f"wrote {summary['events']:,} events ({summary['duration_s']:.3f} s of stream){cropped} to {args.output}")
    print_filtered(summary)
    if "sensor_grown_from" in summary:
        (w0, h0), (w, h) = summary["sensor_grown_from"], summary["sensor"]
        print(f"note: {summary['outside_declared']:,} events lie outside the {w0}x{h0} sensor the input declares; "
              f"the recording's sensor is {w}x{h} so that every event is kept (--roi 0,0,{w0},{h0} keeps the "
              "declared sensor only)", file=sys.stderr)
    for message in summary["warnings"]:
        print(f"warning: {message}", file=sys.stderr)
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream convert`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("convert", help="convert any readable recording to dvsstream HDF5")
    p.add_argument("input")
    p.add_argument("output", help="the .h5 file to write")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.add_argument("--roi", type=argument_type(parse_roi), default=None, metavar="X,Y,W,H",
                   help="keep only this region of the sensor (a WxH recording; the events outside are counted)")
    add_sensor_size_argument(p)
    add_filter_argument(p)
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_input(args.input, "recording to convert")
    check_output_file(args.output, "output", inputs=[args.input], force=args.force, kind="recording")

