"""Training on a dataset folder, what ``dvsstream train`` runs: :func:`train_on_dataset`
reads CIFAR10-DVS, DVS128 Gesture or a tonic set (``tonic:NAME``) from a local folder
(:mod:`dvsstream.datasets`), binned as the model needs (:func:`frame_spec_for`), builds the model (or fine-tunes one
from an ``init`` checkpoint, its outputs mapped to the dataset's class order) and trains
it with the papers' recipe (:func:`dvsstream.training.trainer.train`), under ``torchrun``
as one of several processes."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch
import torch.distributed as dist

from dvsstream.errors import DvsstreamError
from dvsstream.training.config import TrainConfig, TrainResult, resolve_amp
from dvsstream.training.distributed import DistInfo, close_distributed, init_distributed, resolve_device
from dvsstream.training.trainer import train

__all__ = ["DEFAULT_EPOCHS", "RECIPE_EPOCHS", "FewLabels", "frame_spec_for", "recipe_epochs", "train_on_dataset"]


@dataclass(frozen=True)
class FewLabels:
    """Fine-tune on ``per_class`` labelled samples per class of the train split, drawn
    with ``seed``; ``allow_fewer``: a smaller class gives all it has (else an error)."""

    per_class: int
    seed: int = 0
    allow_fewer: bool = False


def _few_labels(train_set, classes: Sequence[str], few: FewLabels, say: Callable[[str], Any]):
    """``(the chosen subset, what was chosen)``: see :func:`dvsstream.training.few_labels.choose_labelled`."""
    from torch.utils.data import Subset

    from dvsstream.training.few_labels import choose_labelled, targets_of

    choice = choose_labelled(targets_of(train_set), classes, few.per_class, few.seed, few.allow_fewer)
    subset = Subset(train_set, choice["indices"])
    subset.classes = list(classes)  # type: ignore[attr-defined]
    say(f"{len(subset)} labelled training samples: {few.per_class} per class of {len(train_set)} "
        f"(--label-seed {few.seed})")
    return subset, choice

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


def _refuse_missing_test(load_dataset: Callable, dataset: str, root: str | os.PathLike, spec) -> None:
    """One line when the test split of ``dataset`` under ``root`` holds no sample (the
    run would measure no accuracy), saying how to make one; only lists the files (no
    frame cache is made, nothing is written)."""
    from dvsstream.datasets.synth_layout import synth_output_near

    quiet = logging.getLogger("dvsstream.datasets")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the listing's "0 samples" warning: the refusal below says it
    try:
        n_test = len(load_dataset(dataset, root, split="test", spec=spec, cache_dir=False))
    finally:
        quiet.setLevel(level)
    if n_test > 0:
        return
    if synth_output_near(Path(root)) is not None:
        how = ("run dvsstream synth again with --samples-per-class 2 or more (50 for --preset quick; the last "
               "fifth of each class's samples form the test split)")
    elif dataset == "dvsgesture":
        how = "add the test folder of the layout (e.g. tonic's DVSGesture/ibmGestureTest/)"
    else:
        how = "give each class 10 or more recordings (the last tenth of each class is the test split)"
    raise DvsstreamError(f"--root {root}: the test split of {dataset} holds no samples, so no accuracy would be "
                         f"measured; {how}, or pass --no-test to train without one")


def _fine_tune_from(model, init: str, dataset: str, label_order: Optional[str], say: Callable[[str], Any]) -> None:
    """Start from the weights of the checkpoint ``init``: a model of the same family and
    input size. With another class count (or a pre-trained encoder) its encoder is loaded
    and the head is new (:func:`dvsstream.models.transfer.init_encoder`); with the same
    classes all of it, its outputs mapped to the dataset's class order (see
    :func:`_init_label_order`)."""
    from dvsstream.models import load_checkpoint
    from dvsstream.models.transfer import init_encoder

    transfer = init_encoder(model, init)
    if transfer.new:
        say(f"initialised: {transfer}")
        return
    report = load_checkpoint(model, init)
    say(f"initialised from {init} ({report})")
    order = _init_label_order(model, report, dataset, label_order, init)
    if order is not None:
        say(f"  its outputs were in {order['why']}; head permuted to the dataset's class order")


def _fit_batch(config: TrainConfig, mcfg, train_set, say: Callable[[str], Any]) -> TrainConfig:
    """``config`` with ``batch_size`` at most the training set (a note), refused in one
    line when a batch, and the batches the loader processes prepare ahead, would not
    fit the memory (:func:`dvsstream.training.memory.fit_batch`)."""
    from dvsstream.training.memory import fit_batch

    n = len(train_set)
    if n == 0:
        return config
    h, w = mcfg.img_size
    ahead = config.workers * config.prefetch * min(config.batch_size, n) * 4.0 * mcfg.T * mcfg.in_channels * h * w
    batch = fit_batch(config.batch_size, n, mcfg, True, "training", say, extra_bytes=ahead)
    return config if batch == config.batch_size else dataclasses.replace(config, batch_size=batch)


def _new_model(model_name: str, n_classes: int, seed: int, init: Optional[str], dataset: str,
               label_order: Optional[str], freeze_encoder: bool, meta: dict, say: Callable[[str], Any]):
    """The model to train: new (seeded), started from ``init`` (its encoder, or all of it
    for the same classes) and with a frozen encoder when asked; ``meta`` records both."""
    from dvsstream.models import create_model

    torch.manual_seed(seed)
    model = create_model(model_name, num_classes=n_classes)
    if init:  # fine-tune: start from these weights
        _fine_tune_from(model, init, dataset, label_order, say)
        meta["init"] = str(init)
    if freeze_encoder:
        model.freeze_encoder()
        meta["frozen_encoder"] = True
        say("the encoder is frozen: only the classifier head learns (a linear probe)")
    return model


def _warn_about_flips(dataset: str, config: TrainConfig, say: Callable[[str], Any]) -> None:
    """Random horizontal flips change what some datasets' samples mean: say so."""
    from dvsstream.datasets.names import loader_name

    if not config.hflip:
        return
    if loader_name(dataset) == "tonic:NMNIST":
        say("warning: random horizontal flips mirror N-MNIST's digits (a mirrored 2 is no digit); "
            "pass --no-hflip to avoid it")
    if loader_name(dataset) == "dvsgesture":
        say("warning: random horizontal flips mirror DVS128 Gesture's left-arm / right-arm classes "
            "without relabelling them (the papers' recipe does this); pass --no-hflip to avoid it")


def train_on_dataset(dataset: str, root: Union[str, os.PathLike], model_name: str, config: TrainConfig,
                     out_dir: Union[str, os.PathLike], *, device: Optional[str] = None, frames: str = "count",
                     convention: str = "spikingjelly", roi: Optional[Sequence[int]] = None,
                     resize: Optional[Sequence[int]] = None, cache_dir: Optional[str] = None,
                     limit: Optional[int] = None, init: Optional[str] = None,
                     label_order: Optional[str] = None, few_labels: Optional[FewLabels] = None,
                     freeze_encoder: bool = False, event_filter=None,
                     allow_no_test: bool = False) -> TrainResult:
    """Train the model ``model_name`` on ``dataset`` (``"cifar10dvs"``, ``"dvsgesture"`` or
    ``"tonic:NAME"``, see :func:`dvsstream.datasets.load.load_dataset`) from the folder
    ``root`` with ``config``; checkpoints and logs go to ``out_dir``. ``frames`` /
    ``convention`` / ``roi`` / ``resize``: the binning on the dataset's sensor (see
    :func:`frame_spec_for`); ``cache_dir``: the frame cache (None: the dataset's
    default); ``limit``: at most that many training samples; ``init``: fine-tune from
    this checkpoint (a pre-trained encoder, or a model trained on other classes: its
    encoder), whose outputs are in ``label_order`` (None: what the file says);
    ``few_labels``: train on that many labelled samples per class only;
    ``freeze_encoder``: train the head alone (a linear probe); ``event_filter``: the
    ``--filter`` every sample's events go through before the binning (kept in the
    checkpoint's frame spec, so ``eval`` filters the same way).
    ``allow_no_test``: train when the test split is empty (else a one-line refusal).
    Under ``torchrun`` the process group is initialised here and torn down at the end."""
    try:
        from dvsstream.datasets.load import load_dataset
    except ImportError as exc:
        raise DvsstreamError(f"dataset support is unavailable: {exc}") from None
    from dvsstream.models import get_config

    if label_order and not init:
        raise DvsstreamError("--label-order says how an --init checkpoint's outputs are ordered; "
                             "it needs --init CKPT (a new model is trained in the dataset's class order)")
    from dvsstream.datasets.names import dataset_sensor_size

    mcfg = get_config(model_name)
    spec = frame_spec_for(mcfg, frames, convention or "spikingjelly", roi, resize, dataset_sensor_size(dataset))
    if event_filter is not None:
        spec = dataclasses.replace(spec, noise_filter=str(event_filter))
    resolve_amp(config.amp, resolve_device(device))  # --amp fp16 on a CPU: one line before any work
    if not allow_no_test:  # before any file is written (frame cache, --out)
        _refuse_missing_test(load_dataset, dataset, root, spec)
    info, dev, initialised = init_distributed(device)
    say = print if info.is_main else (lambda s: None)
    try:
        train_set, test_set, classes = _load_splits(load_dataset, dataset, root, spec, cache_dir, limit, info, say)
        if config.event_augment():
            train_set.event_augment = config.event_augment()
            say(f"event augmentation of the training samples: {config.event_augment().to_dict()} "
                "(binned afresh every epoch)")
        meta = {"dataset": dataset, "frame_spec": dataclasses.asdict(spec), "root": str(root),
                "split_rule": train_set.info.get("split_rule")}
        meta["frame_spec"]["sensor_size"] = list(spec.sensor_size)
        if few_labels is not None:
            train_set, meta["few_labels"] = _few_labels(train_set, classes, few_labels, say)
        config = _fit_batch(config, mcfg, train_set, say)
        model = _new_model(model_name, len(classes), config.seed, init, dataset, label_order, freeze_encoder,
                           meta, say)
        _warn_about_flips(dataset, config, say)  # once the data and --init are known good (no line before an error)
        return train(model, train_set, test_set, config, out_dir, device=dev, log=print, classes=classes, meta=meta)
    finally:
        close_distributed(initialised)
