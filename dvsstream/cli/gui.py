"""``dvsstream gui``: the desktop window."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from dvsstream.cli.args import (
    OneLineParser,
    add_filter_argument,
    add_geometry_arguments,
    add_sensor_size_argument,
    add_trust_argument,
    device_name,
    filter_of,
    nonneg_float,
    positive_float,
    trust_named_checkpoints,
)
from dvsstream.cli.validate import (
    check_checkpoints,
    check_output_file,
    check_output_folder,
    check_settings_file,
    check_source,
)
from dvsstream.errors import DvsstreamError


def run(args: argparse.Namespace) -> int:
    return run_gui_from_args(args)


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream gui`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("gui", help="the desktop window: events, predictions and every head's spiking attention")
    add_gui_arguments(p)
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_source(args.source)
    check_checkpoints(args)
    inputs = [args.source, args.checkpoint]
    if args.screenshot is not None:
        check_output_file(args.screenshot, "--screenshot", inputs=inputs, force=args.force, kind="picture")
    if args.export_clip is not None:
        from dvsstream.render.writer import check_clip_output

        check_output_file(args.export_clip, "--export-clip", kind="clip")  # the suffix first, whatever --force
        check_clip_output(args.export_clip, overwrite=args.force)
        check_output_file(args.export_clip, "--export-clip", inputs=inputs)
    if getattr(args, "teach", None) is not None:
        check_output_folder(args.teach, "--teach", inputs=inputs)
    if args.settings is not None:
        check_settings_file(args.settings)
        check_output_file(args.settings, "--settings file", inputs=inputs)


def add_gui_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``dvsstream gui`` options (shared by the CLI and the scripts in ``apps/``)."""
    parser.add_argument("--source", default=None,
                        help="file, camera:[SERIAL], tcp://host:port or synthetic:… "
                             "(default: the last one, else the shipped gesture recording, looping)")
    parser.add_argument("--checkpoint", default=None, help="our checkpoint (default: the shipped gesture model)")
    add_trust_argument(parser)
    parser.add_argument("--speed", type=positive_float, default=None,
                        help="recordings: replay pace (default 1 = real time)")
    parser.add_argument("--start", type=nonneg_float, default=None, metavar="S",
                        help="a recording: start S seconds after its first event (default 0)")
    parser.add_argument("--screenshot", default=None, help="save a PNG of the window after --exit-after seconds")
    parser.add_argument("--exit-after", type=nonneg_float, default=None,
                        help="close the window after this many seconds")
    parser.add_argument("--teach", default=None, metavar="FOLDER",
                        help="open the Teach panel on this folder of class recordings (FOLDER/<class>/...; "
                             "made when missing): record classes, train, and the new model runs")
    parser.add_argument("--settings", default=None, help="settings file (default: the user's config folder)")
    parser.add_argument("--device", type=device_name, default=None, help="cpu, cuda (default: cuda when available)")
    parser.add_argument("--deterministic", action="store_true",
                        help="never skip a window: the same predictions as `dvsstream run` on a recording")
    parser.add_argument("--verbose", "-v", action="store_true", help="print the time to the first frame and the fps")
    parser.add_argument("--reset-settings", action="store_true",
                        help="start from the default settings (the old file is kept as .bak)")
    parser.add_argument("--export-clip", default=None, metavar="CLIP.mp4|CLIP.gif",
                        help="when the window closes, save the last 10 s shown as a clip")
    parser.add_argument("--force", action="store_true", help="--screenshot and --export-clip may replace existing files")
    add_geometry_arguments(parser)
    add_sensor_size_argument(parser)
    add_filter_argument(parser)
    return parser


def run_gui_from_args(args: argparse.Namespace) -> int:
    """``run_gui`` with an ``argparse`` namespace from :func:`add_gui_arguments` (or the
    CLI's own ``gui`` parser: missing options take their defaults)."""
    try:
        from dvsstream.gui.app import run_gui
    except ImportError as exc:
        raise DvsstreamError(f"the GUI needs PySide6 and pyqtgraph ({exc}); pip install PySide6-Essentials pyqtgraph") from None
    return run_gui(
        source=getattr(args, "source", None),
        checkpoint=getattr(args, "checkpoint", None),
        screenshot=getattr(args, "screenshot", None),
        exit_after=getattr(args, "exit_after", None),
        settings_path=getattr(args, "settings", None),
        speed=getattr(args, "speed", None),
        device=getattr(args, "device", None),
        deterministic=getattr(args, "deterministic", False),
        verbose=getattr(args, "verbose", False),
        reset_settings=getattr(args, "reset_settings", False),
        export_clip=getattr(args, "export_clip", None),
        force=getattr(args, "force", False),
        roi=getattr(args, "roi", None),
        resize=getattr(args, "resize", None),
        start_s=getattr(args, "start", None),
        sensor_size=getattr(args, "sensor_size", None),
        noise_filter=filter_of(args) if getattr(args, "filter", None) else None,
        teach_folder=getattr(args, "teach", None),
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The window with the options of ``dvsstream gui``, checked the same way (for ``apps/``)."""
    from dvsstream.cli.validate import check_arguments

    parser = OneLineParser(prog="dvsstream gui", description="The dvsstream desktop window.")
    add_gui_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    args.command = "gui"
    try:
        check_arguments(args)
        trust_named_checkpoints(args)
    except DvsstreamError as exc:
        print(f"dvsstream gui: {exc}", file=sys.stderr)
        return 2
    return run_gui_from_args(args)
