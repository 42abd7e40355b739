#!/usr/bin/env python
"""Evaluate a checkpoint on DVS128 Gesture from a local folder, headless.

    python apps/eval_gesture.py --root DATA --checkpoint model.pt [--out eval-gesture]
    torchrun --nproc_per_node=4 apps/eval_gesture.py --root DATA --checkpoint model.pt

``DATA`` holds tonic's ``DVSGesture/ibmGestureTrain|ibmGestureTest/userNN_<lighting>/<label>.npy``
or the raw release ``DvsGesture/userNN_<lighting>.aedat`` + ``_labels.csv`` +
``trials_to_train.txt`` / ``trials_to_test.txt``; the test split is the official one
(users 24-29). Any ``dvsstream eval`` option can be added. Writes OUT/report.json,
OUT/confusion.png and OUT/samples.csv.
"""

import sys

from dvsstream.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", "eval-gesture"]
    sys.exit(main(["eval", "--dataset", "dvsgesture", *argv]))
