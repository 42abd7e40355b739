#!/usr/bin/env python
"""Replay the shipped synthetic gesture recordings in the desktop window, classified
live by the shipped gesture model, with the true label beside each prediction.

    python apps/replay_gestures.py [--recording arm_rotations] [--speed 0.5]
"""

import argparse
import sys
from pathlib import Path

from dvsstream.gui import run_gui

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"

if __name__ == "__main__":
    names = sorted(p.stem.removeprefix("gestures_") for p in RECORDINGS.glob("gestures_*.h5"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--recording", default="waves_and_clap", choices=names or None,
                        help="which shipped recording (default: waves_and_clap)")
    parser.add_argument("--speed", type=float, default=1.0, help="replay pace (1 = real time)")
    parser.add_argument("--checkpoint", default=None, help="our checkpoint (default: the shipped gesture model)")
    args = parser.parse_args()
    source = RECORDINGS / f"gestures_{args.recording}.h5"
    sys.exit(run_gui(source=str(source), checkpoint=args.checkpoint, speed=args.speed))
