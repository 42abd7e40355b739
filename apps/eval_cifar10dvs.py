#!/usr/bin/env python
"""Evaluate a checkpoint on CIFAR10-DVS from a local folder, headless.

    python apps/eval_cifar10dvs.py --root DATA --checkpoint model.pt [--out eval-cifar10dvs]
    torchrun --nproc_per_node=4 apps/eval_cifar10dvs.py --root DATA --checkpoint model.pt

DATA holds CIFAR10DVS/<class>/*.aedat4 (tonic's layout); the test split is the last
10 % of each class. Writes OUT/report.json, OUT/samples.csv and the figures
OUT/confusion.png, OUT/per_class_accuracy.png and OUT/confidence.png. The same as
`dvsstream eval --dataset cifar10dvs`.
"""

import sys

from _appargs import app_parser, parse_app_args, set_default, subcommand_parser

from dvsstream.cli import build_parser, main

DATASET, OUT = "cifar10dvs", "eval-cifar10dvs"

if __name__ == "__main__":
    parser = app_parser(subcommand_parser(build_parser(), "eval"), __doc__)
    set_default(parser, "out", OUT, help=f"folder for the report, the CSV and the figures (default: {OUT})")
    args = parse_app_args(parser, {"dataset": DATASET}, hint="use apps/eval_gesture.py or "
                          "`dvsstream eval --dataset ...` for another dataset")
    sys.exit(main(["eval", *sys.argv[1:], "--dataset", DATASET, "--out", args.out]))
