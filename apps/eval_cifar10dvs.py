#!/usr/bin/env python
"""Evaluate a checkpoint on CIFAR10-DVS from a local folder, headless.

    python apps/eval_cifar10dvs.py --root DATA --checkpoint model.pt [--out eval-cifar10dvs]
    torchrun --nproc_per_node=4 apps/eval_cifar10dvs.py --root DATA --checkpoint model.pt

``DATA`` holds ``CIFAR10DVS/<class>/*.aedat4`` (tonic's layout); the test split is the
last 10 % of each class. Any ``dvsstream eval`` option can be added (``--split``,
``--model`` for a release state dict, ``--limit``, ``--device``, ``--batch-size``, ...).
Writes OUT/report.json, OUT/confusion.png and OUT/samples.csv.
"""

import sys

from dvsstream.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", "eval-cifar10dvs"]
    sys.exit(main(["eval", "--dataset", "cifar10dvs", *argv]))
