#!/usr/bin/env python
"""The desktop window on a live iniVation camera (DVS128 / DVXplorer / DAVIS through
dv-processing), classified by the shipped gesture model or your checkpoint.

    python apps/live_gui.py [--serial SN] [--checkpoint model.pt] [--device cuda]

Without a camera the window opens and says so; pick a recording or ``synthetic:``
in its Source box instead.
"""

import argparse
import sys

from dvsstream.gui import run_gui

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--serial", default="", help="the camera's serial number (default: the first one found)")
    parser.add_argument("--checkpoint", default=None, help="our checkpoint (default: the shipped gesture model)")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    args = parser.parse_args()
    sys.exit(run_gui(source=f"camera:{args.serial}", checkpoint=args.checkpoint, device=args.device))
