"""``dvsstream synth``: the synthetic gesture set, generated with the DVS emulator."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from dvsstream.cli.args import nonneg_int, positive_float, positive_int
from dvsstream.cli.validate import check_output_folder
from dvsstream.errors import DvsstreamError


def run(args: argparse.Namespace) -> int:
    """Generate the set (:func:`dvsstream.synth.dataset.generate_gesture_set`) and print
    a summary line; warnings on stderr."""
    from dvsstream.synth.dataset import generate_gesture_set, shipped_model_mismatch

    formats = ("hdf5", "tonic") if args.format == "both" else (args.format,)
    if args.workers < 1:
        raise DvsstreamError(f"--workers must be at least 1, got {args.workers}")
    mismatch = shipped_model_mismatch(args.duration)
    if mismatch:
        print(f"dvsstream: warning: {mismatch}", file=sys.stderr)
    s = generate_gesture_set(args.out, samples_per_class=args.samples_per_class, duration_s=args.duration,
                             seed=args.seed, formats=formats, workers=args.workers)
    for w in s["warnings"]:
        print(f"dvsstream: warning: {w}", file=sys.stderr)
    print(f"synth: {s['samples']} samples ({s['splits']['train']} train, {s['splits']['test']} test), "
          f"{s['events']} events ({s['events_per_sample']:.0f}/sample), {s['wall_s']:.1f} s "
          f"({s['samples_per_s']:.1f} samples/s) -> {', '.join(s['paths'].values())}")
    for line in next_steps(args.out, s["splits"]["test"] > 0, args.samples_per_class):
        print(line)
    return 0


def next_steps(out: str, has_test: bool, samples_per_class: int) -> list[str]:
    """The lines that end ``synth``'s output: the ``train`` and ``eval`` commands for the
    set in ``out`` (``train --preset quick`` into ``<out>-run``, ``eval`` of its
    ``best.pt`` into ``<out>-run/eval``), and a note when the set is smaller than the
    preset wants or has no test split."""
    from dvsstream.training.presets import QUICK_SYNTH_SAMPLES_PER_CLASS

    folder = Path(out)
    if folder.name in ("", ".", ".."):  # "." or "..": name the run folder after the real one
        folder = folder.resolve()
    run_dir = str(folder.with_name(folder.name + "-run"))
    q = shlex.quote
    train = f"dvsstream train --dataset dvsgesture --root {q(out)} --model spikformer_dvs_tiny --preset quick"
    train += f" --out {q(run_dir)}" if has_test else f" --no-test --out {q(run_dir)}"
    evaluate = (f"dvsstream eval --dataset dvsgesture --root {q(out)} --checkpoint {q(run_dir + '/best.pt')} "
                f"--out {q(run_dir + '/eval')}" + ("" if has_test else " --split train"))
    lines = ["next: train a model on this set (a few minutes on a CPU), then evaluate it:", f"  {train}",
             f"  {evaluate}"]
    if not has_test:
        lines.append("note: this set has no test split (one sample per class), so the model is evaluated on its "
                     "own training samples; --samples-per-class 2 or more makes one")
    elif samples_per_class < QUICK_SYNTH_SAMPLES_PER_CLASS:
        lines.append(f"note: --preset quick was measured on --samples-per-class {QUICK_SYNTH_SAMPLES_PER_CLASS}; "
                     f"with {samples_per_class} the accuracy is lower and noisier")
    return lines


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream synth`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("synth", help="generate the synthetic gesture set with the DVS emulator")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples-per-class", type=positive_int, default=20)
    p.add_argument("--duration", type=positive_float, default=0.4,
                   help="seconds per sample (default 0.4: the clips the shipped model was trained on)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--format", default="both", choices=("hdf5", "tonic", "both"))
    p.add_argument("--workers", type=positive_int, default=1, help="processes")
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_output_folder(args.out, "--out")

