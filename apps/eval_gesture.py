#!/usr/bin/env python
"""Evaluate a checkpoint on DVS128 Gesture from a local folder, headless.

    python apps/eval_gesture.py --root DATA --checkpoint model.pt [--out eval-gesture]
    torchrun --nproc_per_node=4 apps/eval_gesture.py --root DATA --checkpoint model.pt

DATA holds tonic's DVSGesture/ibmGestureTrain|ibmGestureTest/userNN_<lighting>/<label>.npy
or the raw release DvsGesture/userNN_<lighting>.aedat + _labels.csv + trials_to_train.txt
and trials_to_test.txt; the test split is the official one (users 24-29). Writes
OUT/report.json, OUT/samples.csv and the figures OUT/confusion.png,
OUT/per_class_accuracy.png and OUT/confidence.png. The same as `dvsstream eval
--dataset dvsgesture`.
"""

import sys

from _appargs import app_parser, parse_app_args, set_default, subcommand_parser

from dvsstream.cli import build_parser, main

DATASET, OUT = "dvsgesture", "eval-gesture"

if __name__ == "__main__":
    parser = app_parser(subcommand_parser(build_parser(), "eval"), __doc__)
    set_default(parser, "out", OUT, help=f"folder for the report, the CSV and the figures (default: {OUT})")
    args = parse_app_args(parser, {"dataset": DATASET}, hint="use apps/eval_cifar10dvs.py or "
                          "`dvsstream eval --dataset ...` for another dataset")
    sys.exit(main(["eval", *sys.argv[1:], "--dataset", DATASET, "--out", args.out]))
