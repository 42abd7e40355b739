"""``dvsstream eval``: a checkpoint evaluated on CIFAR10-DVS, DVS128 Gesture or a tonic set
(``tonic:NAME``) from a local folder."""

from __future__ import annotations

import argparse

from dvsstream.cli.args import (
    add_filter_argument,
    add_geometry_arguments,
    add_trust_argument,
    dataset_name,
    device_name,
    filter_of,
    nonneg_int,
    positive_int,
)
from dvsstream.cli.validate import (
    check_checkpoints,
    check_input_folder,
    check_output_file,
    check_output_folder,
)


def run(args: argparse.Namespace) -> int:
    """The command line to :func:`dvsstream.training.evaluate.evaluate_dataset`; its
    exit status."""
    from dvsstream.training.evaluate import EvalConfig, evaluate_dataset

    return evaluate_dataset(EvalConfig(
        dataset=args.dataset, root=args.root, checkpoint=args.checkpoint, out=args.out, model=args.model,
        split=args.split, device=args.device, batch_size=args.batch_size, limit=args.limit, workers=args.workers,
        cache_dir=args.cache_dir, convention=args.convention, label_order=args.label_order, export=args.export,
        roi=args.roi, resize=args.resize, noise_filter=str(filter_of(args)) if args.filter else None,
    ))


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``dvsstream eval`` parser, added to the subcommands ``sub``."""
    p = sub.add_parser("eval", help="evaluate a checkpoint on CIFAR10-DVS, DVS128 Gesture or a tonic set "
                                         "(tonic:NAME) from a local folder")
    p.add_argument("--dataset", required=True, type=dataset_name, metavar="NAME",
                   help="cifar10dvs, dvsgesture or tonic:NAME (NMNIST, NCALTECH101, CIFAR10DVS, DVSGesture, ASLDVS, "
                        "POKERDVS, DVSLip) in tonic's save_to layout under --root")
    p.add_argument("--root", required=True, help="folder holding the dataset (see README)")
    p.add_argument("--checkpoint", required=True, help="our checkpoint or the original release's state dict")
    add_trust_argument(p)
    p.add_argument("--model", default=None, help="model name (default: from the checkpoint)")
    p.add_argument("--split", default="test", choices=("test", "train", "all"))
    p.add_argument("--device", type=device_name, default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate at most N samples")
    p.add_argument("--workers", type=nonneg_int, default=0, help="data-loading worker processes")
    p.add_argument("--cache-dir", default=None, help="where binned frames are cached (default: ROOT/.dvsstream-cache)")
    p.add_argument("--convention", default=None, choices=("spikingjelly", "native"),
                   help="orientation and polarity of the frames: the releases' (spikingjelly, default) or "
                        "dvsstream's readers' (native)")
    p.add_argument("--label-order", default=None, choices=("spikingjelly", "dataset"),
                   help="class order of a release checkpoint's outputs (default: spikingjelly's for a file saved by "
                        "a release's train.py, the dataset's for a bare state dict)")
    p.add_argument("--export", default=None, metavar="CKPT",
                   help="also save the model as a dvsstream checkpoint (outputs in the dataset's order, class "
                        "names, frame spec) for dvsstream run / gui")
    p.add_argument("--force", action="store_true",
                   help="--export may replace an existing file, and --out may be a folder holding other files")
    p.add_argument("--out", required=True, help="folder for report.json, confusion.png, samples.csv")
    add_geometry_arguments(p)
    add_filter_argument(p)
    p.set_defaults(func=run, check=check)
    return p


def check(args: argparse.Namespace) -> None:
    """Before any work: one line and exit status 2 on bad input."""
    check_input_folder(args.root, "--root")
    check_checkpoints(args)
    inputs = [args.root, getattr(args, "checkpoint", None), getattr(args, "init", None)]
    if getattr(args, "cache_dir", None) is not None:
        check_output_folder(args.cache_dir, "--cache-dir", inputs=inputs)
    if getattr(args, "export", None) is not None:
        check_output_file(args.export, "--export checkpoint", inputs=inputs, force=getattr(args, "force", False),
                          kind="checkpoint")
    check_output_folder(args.out, "--out", inputs=inputs, own=args.command, force=getattr(args, "force", False),
                        keep=[getattr(args, "cache_dir", None), getattr(args, "export", None)])

