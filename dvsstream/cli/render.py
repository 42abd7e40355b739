"""``dvsstream render``: a clip (MP4 or GIF) of a recording: events, attention, top class."""

from __future__ import annotations

import argparse
import sys

from dvsstream.cli.args import (
    add_trust_argument,
    at_most,
    device_name,
    nonneg_float,
    positive_float,
    progress_bar,
)
from dvsstream.cli.validate import check_checkpoints, check_input, check_output_file


def run(args: argparse.Namespace) -> int:
    """A clip (MP4 or GIF) of a recording: events, attention, top class, one frame per
    1/fps of stream time (dvsstream.render.recording.render_recording; torch and PyAV load there)."""
    from dvsstream.render.recording import render_recording
    from dvsstream.render.writer import DEFAULT_FPS
    from dvsstream.stream.live import source_or_default

    source = source_or_default(args.source, "SOURCE (a recording)")
    with progress_bar(None, unit="frame", desc="rendering") as bar:
        summary = render_recording(source, args.out, checkpoint=args.checkpoint, start_s=args.start,
                                   duration_s=args.duration, fps=DEFAULT_FPS if args.fps is None else args.fps,
                                   overwrite=args.force, device=args.device,
                                   progress=lambda n: bar.update(n - bar.n))
    size = summary.bytes / 1e6
    print(f"wrote {summary.frames} frames ({summary.duration_s:.2f} s of stream from {summary.start_s:g} s, "
          f"{summary.fps:g} fps, {summary.size[0]}x{summary.size[1]}, "
          f"{size:.2f} MB) to {summary.path} in {summary.wall_s:.1f} s")
    for w in summary.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream render`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("render", help="a clip (MP4 or GIF) of a recording: events, attention, top class")
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE",
                   help="a recording (default: the shipped recording recordings/gestures_waves_and_clap.h5)")
    p.add_argument("--out", required=True, help="the clip to write: .mp4 (H.264) or .gif")
    p.add_argument("--checkpoint", default=None, help="our checkpoint (default: the shipped gesture model)")
    add_trust_argument(p)
    p.add_argument("--start", type=nonneg_float, default=None, metavar="S",
                   help="from S seconds after the first event (default: the first prediction, one model window in)")
    p.add_argument("--duration", type=positive_float, default=None, help="seconds of stream (default: to the end)")
    p.add_argument("--fps", type=at_most(positive_float, 1000), default=None,
                   help="frames per second of stream time (default 20, at most 1000)")
    p.add_argument("--device", type=device_name, default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    if args.source is not None:
        check_input(args.source, "recording to render")
    check_checkpoints(args)
    from dvsstream.render.writer import check_clip_output

    check_output_file(args.out, "--out clip", kind="clip")  # the suffix first, whatever --force
    check_clip_output(args.out, overwrite=args.force)
    check_output_file(args.out, "--out clip", inputs=[args.source, args.checkpoint])

