"""The ``dvsstream`` command: one module per verb (``dvsstream.cli.info`` ...
``dvsstream.cli.synth``), each with its parser, its checks and its call into the
library; shared option types and groups in :mod:`~dvsstream.cli.args`, shared checks in
:mod:`~dvsstream.cli.validate`.

Subcommands import what they need lazily, so that ``dvsstream info`` starts in
well under two seconds (no torch, no tonic). A :class:`DvsstreamError` becomes a
one-line message and exit status 2, Ctrl-C exit status 130; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from dvsstream import __version__
from dvsstream.cli.args import OneLineParser, trust_named_checkpoints
from dvsstream.cli.validate import check_arguments
from dvsstream.errors import DvsstreamError

# ------------------------------------------------------------------ parser
#: the verbs, in the order ``--help`` lists them: each module has ``add_parser(sub)``,
#: ``check(args)`` (before any work) and ``run(args) -> exit status``
VERBS = ("info", "convert", "record", "replay", "run", "render", "gui", "eval", "train", "pretrain", "teach", "synth")


def build_parser() -> argparse.ArgumentParser:
    """The ``dvsstream`` parser: one subcommand per module of :data:`VERBS`."""
    parser = OneLineParser(
        prog="dvsstream",
        description="Event-camera (DVS) streams: inspect, convert, record, replay, classify.",
    )
    parser.add_argument("--version", action="version", version=f"dvsstream {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for verb in VERBS:
        importlib.import_module(f"dvsstream.cli.{verb}").add_parser(sub)
    return parser


#: OpenMP threads that sleep when they wait instead of spinning: on a CPU shared with other
#: work (the window, a camera, other jobs) torch's spinning threads made `teach` 2.4-3x
#: slower (140-175 s against 64 s for 5 classes x 30 s on 2 busy cores). A user's own
#: OMP_WAIT_POLICY is kept. Set before torch (and its OpenMP runtime) loads.
OMP_WAIT_POLICY = "PASSIVE"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dvsstream ARGV``: the exit status (0, 2 for bad input, 130 for Ctrl-C)."""
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a bad argument (2, one line printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        check_arguments(args)  # before any work: one line and exit 2 on bad input
        trust_named_checkpoints(args)
        return args.func(args)
    except DvsstreamError as exc:
        print(f"dvsstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dvsstream: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
