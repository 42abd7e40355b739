"""Training on a dataset folder, what ``dvsstream train`` runs: :func:`train_on_dataset`
reads CIFAR10-DVS, DVS128 Gesture or a tonic set (``tonic:NAME``) from a local folder
(:mod:`dvsstream.datasets`), binned as the model needs (:func:`frame_spec_for`), builds the model (or fine-tunes one
from an ``init`` checkpoint, its outputs mapped to the dataset's class order) and trains
it with the papers' recipe (:func:`dvsstream.training.trainer.train`), under ``torchrun``
as one of several processes."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Callable, Optional, Sequence, Union

import torch
import torch.distributed as dist

from dvsstream.errors import DvsstreamError
from dvsstream.training.config import TrainConfig, TrainResult, resolve_amp
from dvsstream.training.distributed import DistInfo, close_distributed, init_distributed, resolve_device
from dvsstream.training.trainer import train

__all__ = ["DEFAULT_EPOCHS", "RECIPE_EPOCHS", "frame_spec_for", "recipe_epochs", "train_on_dataset"]

#: the papers' epoch counts
RECIPE_EPOCHS = {"cifar10dvs": 106, "dvsgesture": 202}
#: the epochs of a dataset without a paper's recipe here (tonic:NMNIST, ...)
DEFAULT_EPOCHS = 100


def recipe_epochs(dataset: str) -> int:
    """The recipe's epochs for ``dataset`` (any accepted spelling: ``tonic:CIFAR10DVS`` is
    CIFAR10-DVS's 106), :data:`DEFAULT_EPOCHS` for a set without one."""
    from dvsstream.datasets.names import loader_name

    return RECIPE_EPOCHS.get(loader_name(dataset), DEFAULT_EPOCHS)


def frame_spec_for(config: Any, mode: str = "count", convention: str = "spikingjelly",
                   roi: Optional[Sequence[int]] = None, resize: Optional[Sequence[int]] = None,
                   sensor_size: Sequence[int] = (128, 128)):
    """The :class:`dvsstream.datasets.spec.FrameSpec` a model config needs: ``n_bins = T``, the
    dataset's ``sensor_size`` (``(width, height)``; 128x128 for CIFAR10-DVS and Gesture, see
    :func:`dvsstream.datasets.names.dataset_sensor_size`) brought to the model's input size by
    :meth:`~dvsstream.datasets.spec.FrameSpec.for_model` (pooled by a whole factor, else the
    nearest-bin resize of the largest centred region of the input's shape; a smaller sensor
    centred in zeros, or enlarged with ``resize``; ``roi`` / ``resize``: ``--roi`` /
    ``--resize``); ``mode`` ``"count"`` (the papers' equal-count split) or ``"time"``
    (equal time bins, what a live sliding window gives); ``convention``: the frames'
    orientation and polarity (see :mod:`dvsstream.datasets.release`)."""
    from dvsstream.datasets.spec import FrameSpec

    return FrameSpec.for_model(config, tuple(int(v) for v in sensor_size), mode, convention, roi, resize)


def _init_label_order(model, report, dataset: str, label_order: Optional[str], init: str) -> Optional[dict]:
    """An ``--init`` release checkpoint whose outputs follow spikingjelly's order: permute
    its head to the dataset's class order (what the saved checkpoint's class names say).
    Returns what was done, or None when nothing needed mapping."""
    from dvsstream.models.checkpoints import reorder_outputs
    from dvsstream.datasets.release import label_order_for, output_classes_for

    kind = ("dvsstream" if report.format == "dvsstream" else
            "release-trained" if report.release_trained else "state-dict")
    order, why, warning = label_order_for(dataset, label_order, kind, init)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    outputs = output_classes_for(dataset, order, model.num_classes)
    if outputs is None:
        return None
    reorder_outputs(model, outputs)
    return {"order": order, "why": why, "checkpoint_outputs": outputs}


def _load_splits(load_dataset: Callable, dataset: str, root: Union[str, os.PathLike], spec,
                 cache_dir: Optional[str], limit: Optional[int], info: DistInfo, say: Callable[[str], Any]):
    """``(train_set, test_set, classes)`` of ``dataset`` under ``root`` binned by
    ``spec`` (``limit``: at most that many training samples), read by ``load_dataset``
    (:func:`dvsstream.datasets.load.load_dataset`); rank 0 builds the frame cache
    first, the others then read it. Unreadable samples: one warning per split."""
    def load(split: str, limit: Optional[int]):
        return load_dataset(dataset, root, split=split, spec=spec, cache_dir=cache_dir, limit=limit)

    # rank 0 builds the frame cache first; the others then read it
    if info.distributed and not info.is_main:
        dist.barrier()
    train_set = load("train", limit)
    test_set = load("test", None)
    if info.distributed and info.is_main:
        dist.barrier()
    classes = list(train_set.classes)
    if list(test_set.classes) != classes:
        raise DvsstreamError(f"train and test splits disagree on the classes: {classes} vs {list(test_set.classes)}")
    for name, ds in (("train", train_set), ("test", test_set)):
        skipped = list(getattr(ds, "skipped", []) or [])
        if skipped:
            first = ", ".join(f"{p} ({why})" for p, why in skipped[:3])
            say(f"warning: skipped {len(skipped)} unreadable {name} sample(s): {first}{', ...' if len(skipped) > 3 else ''}")
    return train_set, test_set, classes


def _fine_tune_from(model, init: str, dataset: str, label_order: Optional[str], say: Callable[[str], Any]) -> None:
    """Start from the weights of the checkpoint ``init`` (same architecture and classes),
    its outputs mapped to the dataset's class order (see :func:`_init_label_order`)."""
    from dvsstream.models import load_checkpoint

    report = load_checkpoint(model, init)
    say(f"initialised from {init} ({report})")
    order = _init_label_order(model, report, dataset, label_order, init)
    if order is not None:
        say(f"  its outputs were in {order['why']}; head permuted to the dataset's class order")


def train_on_dataset(dataset: str, root: Union[str, os.PathLike], model_name: str, config: TrainConfig,
                     out_dir: Union[str, os.PathLike], *, device: Optional[str] = None, frames: str = "count",
                     convention: str = "spikingjelly", roi: Optional[Sequence[int]] = None,
                     resize: Optional[Sequence[int]] = None, cache_dir: Optional[str] = None,
                     limit: Optional[int] = None, init: Optional[str] = None,
                     label_order: Optional[str] = None) -> TrainResult:
    """Train the model ``model_name`` on ``dataset`` (``"cifar10dvs"``, ``"dvsgesture"`` or
    ``"tonic:NAME"``, see :func:`dvsstream.datasets.load.load_dataset`) from the folder
    ``root`` with ``config``; checkpoints and logs go to ``out_dir``. ``frames`` /
    ``convention`` / ``roi`` / ``resize``: the binning on the dataset's sensor (see
    :func:`frame_spec_for`); ``cache_dir``: the frame cache (None: the dataset's
    default); ``limit``: at most that many training samples; ``init``: fine-tune from
    this checkpoint, whose outputs are in ``label_order`` (None: what the file says).
    Under ``torchrun`` the process group is initialised here and torn down at the end."""
    try:
        from dvsstream.datasets.load import load_dataset
    except ImportError as exc:
        raise DvsstreamError(f"dataset support is unavailable: {exc}") from None
    from dvsstream.models import create_model, get_config

    if label_order and not init:
        raise DvsstreamError("--label-order says how an --init checkpoint's outputs are ordered; "
                             "it needs --init CKPT (a new model is trained in the dataset's class order)")
    from dvsstream.datasets.names import dataset_sensor_size, loader_name

    mcfg = get_config(model_name)
    spec = frame_spec_for(mcfg, frames, convention or "spikingjelly", roi, resize, dataset_sensor_size(dataset))
    resolve_amp(config.amp, resolve_device(device))  # --amp fp16 on a CPU: one line before any work
    info, dev, initialised = init_distributed(device)
    say = print if info.is_main else (lambda s: None)
    try:
        if loader_name(dataset) == "tonic:NMNIST" and config.hflip:
            say("warning: random horizontal flips mirror N-MNIST's digits (a mirrored 2 is no digit); "
                "pass --no-hflip to avoid it")
        if loader_name(dataset) == "dvsgesture" and config.hflip:
            say("warning: random horizontal flips mirror DVS128 Gesture's left-arm / right-arm classes "
                "without relabelling them (the papers' recipe does this); pass --no-hflip to avoid it")
        train_set, test_set, classes = _load_splits(load_dataset, dataset, root, spec, cache_dir, limit, info, say)
        torch.manual_seed(config.seed)
        model = create_model(model_name, num_classes=len(classes))
        if init:  # fine-tune: start from these weights (same architecture and classes)
            _fine_tune_from(model, init, dataset, label_order, say)
        meta = {"dataset": dataset, "frame_spec": dataclasses.asdict(spec), "root": str(root),
                "split_rule": train_set.info.get("split_rule")}
        meta["frame_spec"]["sensor_size"] = list(spec.sensor_size)
        return train(model, train_set, test_set, config, out_dir, device=dev, log=print, classes=classes, meta=meta)
    finally:
        close_distributed(initialised)
