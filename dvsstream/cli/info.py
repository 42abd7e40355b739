"""``dvsstream info``: format, camera, resolution, the region a model would see, events, duration
and rates of a recording (streamed: bounded memory)."""

from __future__ import annotations

import argparse
import sys

from dvsstream.cli.args import (
    add_geometry_arguments,
    add_sensor_size_argument,
    argument_type,
    fmt_rate,
    positive_int,
    print_warnings,
    progress_bar,
)
from dvsstream.cli.validate import check_input
from dvsstream.errors import DvsstreamError
from dvsstream.events import parse_size


def run(args: argparse.Namespace) -> int:
    from dvsstream.events import EventRateMeter
    from dvsstream.io import open_source

    meter = EventRateMeter(bin_us=args.peak_bin_us)
    with open_source(args.file, sensor_size=args.sensor_size) as source:
        info = source.describe()
        view = _model_view((info["width"], info["height"]), args)  # a region that cannot be: before any output
        print(f"file:        {args.file}")
        print(f"format:      {info['format']}")
        print(f"camera:      {info['camera'] or '(not recorded)'}")
        print(f"resolution:  {info['width']} x {info['height']}")
        print(view)
        sys.stdout.flush()
        with progress_bar(getattr(source, "n_events", None), desc="reading") as bar:
            for packet in source:
                meter.update(packet)
                bar.update(packet.size)
        stats = source.stats
        labels = getattr(source, "labels", None)
    print(f"events:      {meter.events:,}")
    if meter.t_first is not None:
        print(f"time:        {meter.t_first} .. {meter.t_last} µs")
    print(f"duration:    {meter.duration_s:.3f} s")
    print(f"mean rate:   {fmt_rate(meter.mean_rate)}")
    print(f"peak rate:   {fmt_rate(meter.peak_rate)} (busiest {args.peak_bin_us / 1000:g} ms)")
    if labels is not None:
        print(f"labels:      {len(labels)} labelled segment(s)")
    if stats.out_of_bounds or stats.out_of_order:
        print(f"repaired:    {stats.out_of_bounds:,} out of bounds (dropped), "
              f"{stats.out_of_order:,} out of order (re-sorted)")
    print_warnings(stats)
    return 0


def _model_view(sensor_size, args: argparse.Namespace) -> str:
    """The "model sees" line: the region of the sensor a model of ``--model-size`` (default: the shipped model's
    64x64) would see, and how it is scaled; or why that region cannot be used."""
    from dvsstream.binning import geometry_for

    size = args.model_size
    try:
        geometry = geometry_for(size, sensor_size, args.roi, args.resize)
        text = geometry.describe(sensor_size)
    except ValueError as exc:
        if args.roi is not None or args.resize is not None:  # what the user asked for cannot be
            raise DvsstreamError(f"{args.file}: {exc}") from None
        text = f"nothing: {exc}"  # the file is still described
    return f"model sees:  {text} (a {size[0]}x{size[1]} model; --roi / --resize to change)"


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream info`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("info", help="format, camera, resolution, events, duration and rates of a recording")
    p.add_argument("file")
    p.add_argument("--peak-bin-us", type=positive_int, default=10_000, help="bin for the peak rate (µs, default 10 ms)")
    p.add_argument("--model-size", type=argument_type(parse_size), default=(64, 64), metavar="WxH",
                   help="the input of the model whose view to show (default 64x64: the shipped model)")
    add_geometry_arguments(p)
    add_sensor_size_argument(p)
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_input(args.file, "recording")

