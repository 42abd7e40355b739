#!/usr/bin/env python
"""Replay the shipped synthetic gesture recordings in the desktop window, classified
live by the shipped gesture model, with the true label beside each prediction.

    python apps/replay_gestures.py [--recording arm_rotations] [--speed 0.5]
    python apps/replay_gestures.py --screenshot shot.png --exit-after 5     # unattended

The same as `dvsstream gui --source recordings/gestures_<recording>.h5`.
"""

import argparse
import sys
from pathlib import Path

from _appargs import app_parser, parse_app_args

from dvsstream.cli.gui import add_gui_arguments, run_gui_from_args

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"

if __name__ == "__main__":
    names = sorted(p.stem.removeprefix("gestures_") for p in RECORDINGS.glob("gestures_*.h5"))
    parser = app_parser(add_gui_arguments(argparse.ArgumentParser(allow_abbrev=False)), __doc__)
    parser.add_argument("--recording", default="waves_and_clap", choices=names or None,
                        help="which shipped recording (default: waves_and_clap)")
    parser.set_defaults(speed=1.0)  # real time, whatever the window last used
    args = parse_app_args(parser, {"source": None},
                          hint="pick a shipped recording with --recording, or use `dvsstream gui --source FILE`")
    args.source = str(RECORDINGS / f"gestures_{args.recording}.h5")
    sys.exit(run_gui_from_args(args))
