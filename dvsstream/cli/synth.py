"""``dvsstream synth``: the synthetic gesture set (``--kind gestures``, the default) or
unlabelled recordings of varied scenes for pre-training (``--kind scenes``), generated
with the DVS emulator."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from dvsstream.cli.args import argument_type, nonneg_int, positive_float, positive_int
from dvsstream.cli.validate import check_output_folder, check_set_size
from dvsstream.errors import DvsstreamError


def run(args: argparse.Namespace) -> int:
    """Generate the set (:func:`dvsstream.synth.dataset.generate_gesture_set`) and print
    a summary line; warnings on stderr."""
    from dvsstream.synth.dataset import generate_gesture_set, shipped_model_mismatch

    if args.kind == "scenes":
        return run_scenes(args)
    _gesture_defaults(args)
    formats = _formats(args)
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


def _formats(args: argparse.Namespace) -> tuple:
    return ("hdf5", "tonic") if args.format == "both" else (args.format,)


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
    p = sub.add_parser("synth", help="generate the synthetic gesture set (or, --kind scenes, unlabelled "
                                     "recordings of varied scenes) with the DVS emulator")
    p.add_argument("--kind", default="gestures", choices=("gestures", "scenes"),
                   help="gestures: the labelled gesture set (default); scenes: unlabelled recordings of moving "
                        "shapes, textures and hands for pre-training (out/scene_0000.h5 ...)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples-per-class", type=positive_int, default=None, help="gestures: default 20")
    p.add_argument("--duration", type=positive_float, default=None,
                   help="seconds per sample (gestures, default 0.4: the clips the shipped model was trained on) "
                        f"or per recording (scenes, default {SCENE_DURATION_S:g})")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--format", default=None, choices=("hdf5", "tonic", "both"), help="gestures: default both")
    p.add_argument("--recordings", type=positive_int, default=None,
                   help=f"scenes: how many recordings (default {SCENE_RECORDINGS})")
    p.add_argument("--sensor-size", type=argument_type(parse_sizes), default=None, metavar="WxH[,WxH...]",
                   help="scenes: the sensor, or several used in turn (default 128x128; e.g. 128x128,346x260)")
    p.add_argument("--workers", type=positive_int, default=1, help="processes")
    p.add_argument("--force", action="store_true", help="--out may be a folder holding other files")
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_output_folder(args.out, "--out", own="synth", force=args.force)
    check_kind_options(args)
    if args.kind == "gestures":
        _gesture_defaults(args)
        check_set_size(args.out, args.samples_per_class, args.duration, _formats(args), args.workers)


# ------------------------------------------------------------------ --kind scenes
SCENE_RECORDINGS = 100
SCENE_DURATION_S = 10.0
_GESTURE_ONLY = {"samples_per_class": "--samples-per-class", "format": "--format"}
_SCENES_ONLY = {"recordings": "--recordings", "sensor_size": "--sensor-size"}


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"128x128,346x260"`` -> ``[(128, 128), (346, 260)]``; ``ValueError`` (one line) otherwise."""
    from dvsstream.events import parse_size

    sizes = [parse_size(part) for part in str(text).split(",") if part.strip()]
    if not sizes:
        raise ValueError(f"{text!r}: give WIDTHxHEIGHT, e.g. 128x128, or several separated by commas")
    for w, h in sizes:
        if not (8 <= w <= 4096 and 8 <= h <= 4096):
            raise ValueError(f"size {w}x{h}: width and height must lie in 8..4096")
    return sizes


def check_kind_options(args: argparse.Namespace) -> None:
    """Options of the other ``--kind`` are refused (one line), not ignored."""
    wrong = _SCENES_ONLY if args.kind == "gestures" else _GESTURE_ONLY
    for attr, option in wrong.items():
        if getattr(args, attr, None) is not None:
            raise DvsstreamError(f"{option} is not an option of --kind {args.kind} (it belongs to --kind "
                                 f"{'scenes' if args.kind == 'gestures' else 'gestures'})")


def _gesture_defaults(args: argparse.Namespace) -> None:
    args.samples_per_class = 20 if args.samples_per_class is None else args.samples_per_class
    args.format = "both" if args.format is None else args.format
    args.duration = 0.4 if args.duration is None else args.duration


def run_scenes(args: argparse.Namespace) -> int:
    """Write the scenes (:func:`dvsstream.synth.scenes.write_scene_recordings`) and print
    a summary line."""
    from dvsstream.synth.scenes import write_scene_recordings

    duration = SCENE_DURATION_S if args.duration is None else args.duration
    s = write_scene_recordings(args.out, SCENE_RECORDINGS if args.recordings is None else args.recordings, duration,
                               seed=args.seed, sensor_size=args.sensor_size or [(128, 128)], workers=args.workers)
    print(f"synth: {s['recordings']} scene recordings of {duration:g} s, {s['events']} events "
          f"({s['events_per_s'] / 1e3:.1f}k ev/s on average, {s['rate_min'] / 1e3:.1f}k-{s['rate_max'] / 1e3:.1f}k "
          f"per recording), {s['wall_s']:.1f} s ({s['realtime']:.1f}x real time) -> {s['out']}")
    return 0
