"""``dvsstream replay``: a recording replayed headless through the streaming binner, with progress and
a summary."""

from __future__ import annotations

import argparse
import time

from dvsstream.cli.args import (
    add_sensor_size_argument,
    fmt_rate,
    nonneg_float,
    positive_float,
    positive_int,
    print_warnings,
    window_ms,
)
from dvsstream.cli.validate import check_input
from dvsstream.errors import DvsstreamError
from dvsstream.heap import check_memory


def run(args: argparse.Namespace) -> int:
    from dvsstream.binning import StreamingBinner
    from dvsstream.events import EventRateMeter
    from dvsstream.io import open_file, start_source_at

    meter = EventRateMeter()
    windows = 0
    start = time.perf_counter()
    last_print = start
    with open_file(args.file, speed=args.speed, loop=False,  # paced: 10 ms packets
                   sensor_size=args.sensor_size) as source:
        start_source_at(source, args.start, args.file)
        w, h = source.sensor_size
        check_memory(4.0 * 2 * args.bins * 2 * (w // args.downsample or 1) * (h // args.downsample or 1),
                     f"--bins {args.bins} of the {w}x{h} sensor",  # a window of float32 frames, twice
                     "use fewer --bins" + (" or a smaller --sensor-size" if args.sensor_size else "")
                     + " or a larger --downsample")
        try:
            binner = StreamingBinner(source.sensor_size, int(args.window_ms * 1000), args.bins,
                                     int(args.hop_ms * 1000), downsample=args.downsample)
        except ValueError as exc:
            raise DvsstreamError(f"{args.file}: {exc}") from None
        total = getattr(source, "n_events", None)
        for packet in source:
            meter.update(packet)
            windows += len(binner.push(packet))
            now = time.perf_counter()
            if now - last_print >= args.progress_s:
                last_print = now
                share = f" ({100 * meter.events / total:5.1f} %)" if total else ""
                print(f"  t = {meter.duration_s:8.3f} s  {meter.events:>12,} events{share}  "
                      f"wall {now - start:7.2f} s", flush=True)
        windows += len(binner.flush())
        stats = source.stats
    wall = time.perf_counter() - start
    speed = meter.duration_s / wall if wall > 0 else float("inf")
    print(f"replayed {meter.events:,} events, {meter.duration_s:.3f} s of recording in {wall:.3f} s "
          f"(x{speed:.2f} real time; {fmt_rate(meter.events / wall if wall else 0)})")
    b = binner.stats
    print(f"binned into {windows:,} windows of {list(binner.frame_shape)} every {args.hop_ms:g} ms: "
          f"{b.binned:,} events binned, {b.out_of_bounds + stats.out_of_bounds:,} out of bounds, "
          f"{b.out_of_window:,} late")
    print_warnings(stats)
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream replay`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("replay", help="replay a recording headless, printing progress and a summary")
    p.add_argument("file")
    p.add_argument("--speed", type=positive_float, default=None, help="1 = real time, 2 = twice as fast; default: as fast as possible")
    p.add_argument("--start", type=nonneg_float, default=None, metavar="S",
                   help="start S seconds after the recording's first event (default 0)")
    p.add_argument("--progress-s", type=positive_float, default=1.0, help="seconds between progress lines")
    p.add_argument("--window-ms", type=window_ms, default=160.0, help="sliding window length (ms; at most an hour)")
    p.add_argument("--bins", type=positive_int, default=16, help="time bins T per window")
    p.add_argument("--hop-ms", type=positive_float, default=10.0, help="hop between windows (ms; a multiple of window/bins)")
    p.add_argument("--downsample", type=positive_int, default=1, help="spatial down-sampling factor (2: 128 -> 64)")
    add_sensor_size_argument(p)
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    from dvsstream.binning import check_window  # numba: only for the verbs that bin

    check_input(args.file, "recording")
    check_window(args.window_ms, args.bins, args.hop_ms)

