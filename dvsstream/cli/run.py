"""``dvsstream run``: the headless live classifier: predictions as they come and a JSON report."""

from __future__ import annotations

import argparse
import sys

from dvsstream.cli.args import (
    STREAM_CLOCK,
    add_filter_argument,
    add_geometry_arguments,
    add_sensor_size_argument,
    add_trust_argument,
    device_name,
    filter_of,
    nonneg_float,
    positive_float,
    positive_int,
    window_ms,
)
from dvsstream.cli.validate import check_checkpoints, check_output_file, check_source


def run_config(args: argparse.Namespace):
    """The :class:`~dvsstream.stream.live.RunConfig` of ``dvsstream run``'s options."""
    from dvsstream.stream.live import RunConfig

    return RunConfig(checkpoint=args.checkpoint, device=args.device, window_ms=args.window_ms, hop_ms=args.hop_ms,
                     bins=args.bins, mode=args.mode, speed=args.speed, duration_s=args.duration,
                     start_s=args.start, roi=args.roi, resize=args.resize, sensor_size=args.sensor_size,
                     event_filter=filter_of(args))


def run(args: argparse.Namespace) -> int:
    """``dvsstream run``: predictions as they come (stdout; none with ``--quiet``), the
    summary line, the ``--json-out`` report; exit status 0."""
    from dvsstream.fileio import temporary_beside
    from dvsstream.stream.live import classify_stream, format_prediction, format_summary, source_or_default, write_json

    source = source_or_default(args.source)  # the options were checked by validate.check_arguments
    t0_box: list = []

    def show(pred, class_names) -> None:
        if not t0_box:
            t0_box.append(pred.t_start)
        print(format_prediction(pred, class_names, t0_box[0]), flush=True)

    # predictions go to a hidden JSON Lines file beside the report as they come (bounded
    # memory however long the stream); the report is assembled from it, then it goes
    spill = temporary_beside(args.json_out) if args.json_out else None
    try:
        report = classify_stream(
            source, run_config(args), on_prediction=None if args.quiet else show,
            on_start=lambda line: print(line, file=sys.stderr if args.quiet else sys.stdout, flush=True),
            predictions_file=spill, keep_predictions=False,
        )
        if args.json_out:
            write_json(report, args.json_out, spill)
    finally:
        if spill is not None and spill.exists():
            spill.unlink()
    print(format_summary(report), file=sys.stderr if args.quiet else sys.stdout)
    if args.json_out:
        print(f"report: {args.json_out}", file=sys.stderr if args.quiet else sys.stdout)
    for w in report["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream run`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("run", help="classify a live stream or a recording headless, printing predictions as they come")
    p.add_argument("--source", default=None,
                   help="recording path, camera:[SERIAL], tcp://HOST:PORT, unix://PATH or synthetic:... "
                        "(default: the shipped recording recordings/gestures_waves_and_clap.h5)")
    p.add_argument("--checkpoint", default=None, help="our checkpoint (default: the shipped gesture model)")
    add_trust_argument(p)
    p.add_argument("--window-ms", type=window_ms, default=None,
                   help="window length (ms; default: the checkpoint's; at most an hour)")
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
    add_filter_argument(p)
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_source(args.source)
    check_checkpoints(args)
    if args.json_out is not None:
        check_output_file(args.json_out, "--json-out report", inputs=[args.source, args.checkpoint],
                          force=args.force, kind="report")

