#!/usr/bin/env python
"""The desktop window on a live iniVation camera (DVS128 / DVXplorer / DAVIS through
dv-processing), classified by the shipped gesture model or your checkpoint.

    python apps/live_gui.py [--serial SN] [--checkpoint model.pt] [--device cuda]
    python apps/live_gui.py --screenshot shot.png --exit-after 5     # unattended

Without a camera the window opens and says so; pick a recording or synthetic: in its
Source box instead. The same as `dvsstream gui --source camera:[SN]`.
"""

import argparse
import sys

from _appargs import app_parser, parse_app_args

from dvsstream.cli.gui import add_gui_arguments, run_gui_from_args

if __name__ == "__main__":
    parser = app_parser(add_gui_arguments(argparse.ArgumentParser(allow_abbrev=False)), __doc__)
    parser.add_argument("--serial", default="", help="the camera's serial number (default: the first one found)")
    # a camera sets the pace: no replay speed, nothing to wait for
    args = parse_app_args(parser, {"source": None, "speed": None, "deterministic": False},
                          hint="a camera runs at its own pace; for a recording use "
                          "apps/replay_gestures.py or `dvsstream gui --source FILE`")
    args.source = f"camera:{args.serial}"
    sys.exit(run_gui_from_args(args))
