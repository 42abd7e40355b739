"""Saving and loading weights: our format and the original releases' state dicts.

Our format (``torch.save`` of a dict)::

    {"format": "dvsstream.spikformer/1", "model_name": ..., "config": {...},
     "num_classes": ..., "state_dict": {...}, "meta": {...}}

:func:`load_checkpoint` also accepts a release checkpoint: a bare state dict, or one
wrapped as ``{"model": ...}`` / ``{"state_dict": ...}`` / ``{"state_dict_ema": ...}``, with
or without DDP's ``module.`` prefix. Release parameters the model never uses
(``pos_embed``, the ``norm*`` LayerNorms) are ignored and reported. Release 1x1
``Conv2d`` weights ``[out, in, 1, 1]`` load into our ``Conv1d`` ``[out, in, 1]``.

A file saved by a release's own ``train.py`` -- the dict with ``model``, ``optimizer``,
``lr_scheduler``, ``epoch`` and ``args`` (a pickled ``argparse.Namespace``) -- is
recognised as *release-trained* (:attr:`LoadReport.release_trained`, its arguments in
:attr:`LoadReport.release_args`). Files are unpickled with torch's ``weights_only``
unpickler, which allows tensors and plain containers; the one class added to it is
``argparse.Namespace``. Its outputs follow spikingjelly's ``DatasetFolder`` class order;
:func:`reorder_outputs` maps them to the dataset's (see
:func:`dvsstream.datasets.release.spikingjelly_output_classes`).
"""

from __future__ import annotations

import argparse
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from dvsstream.errors import DvsstreamError
from dvsstream.models.spikformer import Spikformer, SpikformerConfig

__all__ = ["FORMAT", "CheckpointError", "LoadReport", "save_checkpoint", "load_checkpoint", "load_model",
           "release_training_args", "reorder_outputs", "trust_file"]

FORMAT = "dvsstream.spikformer/1"

#: release keys that no forward pass uses (tolerated, reported)
_UNUSED_RELEASE = re.compile(r"(^|\.)(pos_embed|norm\d*|norm_layer)(\.|$)|(^|\.)num_batches_tracked$")


class CheckpointError(DvsstreamError):
    """A checkpoint does not fit the model (classes, architecture) or is not a checkpoint."""


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did."""

    source: str
    format: str  # "dvsstream" or "release"
    loaded: int = 0
    ignored: list[str] = field(default_factory=list)  # unused release parameters
    meta: dict[str, Any] = field(default_factory=dict)
    release_trained: bool = False  # saved by a release's train.py (model/optimizer/.../args)
    release_args: dict[str, Any] = field(default_factory=dict)  # its argparse arguments

    def __str__(self) -> str:
        ign = f"; ignored {len(self.ignored)} unused release entries ({', '.join(self.ignored[:4])}{', ...' if len(self.ignored) > 4 else ''})" if self.ignored else ""
        kind = "release-trained, " if self.release_trained else ""
        return f"loaded {self.loaded} tensors from {self.source} ({kind}{self.format} format){ign}"


#: the keys of the dict a release's train.py saves
RELEASE_TRAINING_KEYS = ("model", "optimizer", "lr_scheduler", "epoch", "args")


def release_training_args(obj: Any) -> Optional[dict[str, Any]]:
    """The ``args`` of a checkpoint saved by a release's own ``train.py`` (the dict with
    ``model``, ``optimizer``, ``lr_scheduler``, ``epoch`` and an ``argparse.Namespace``
    ``args``) as a dict of its plain values; None for anything else."""
    if not isinstance(obj, Mapping) or not all(k in obj for k in RELEASE_TRAINING_KEYS):
        return None
    args = obj["args"]
    if not isinstance(args, argparse.Namespace):
        return None
    plain = (str, int, float, bool, type(None))
    return {k: (v if isinstance(v, plain) else repr(v)) for k, v in vars(args).items()}


def reorder_outputs(model: Spikformer, output_classes: Sequence[int]) -> None:
    """Permute the classifier head so that output ``c`` is dataset class ``c``, given
    ``output_classes[k]`` = the class of the model's output ``k`` (e.g. spikingjelly's
    ``DatasetFolder`` order). Each logit is the same dot product as before, moved."""
    head = model.head
    n = head.weight.shape[0]
    order = [int(c) for c in output_classes]
    if sorted(order) != list(range(n)):
        raise CheckpointError(f"output order {order} is not a permutation of the model's {n} classes")
    index = torch.tensor(order)
    with torch.no_grad():
        w, b = head.weight.detach().clone(), head.bias.detach().clone() if head.bias is not None else None
        head.weight[index] = w
        if b is not None:
            head.bias[index] = b
    model.refresh_fused()


def save_checkpoint(model: Spikformer, path: Union[str, os.PathLike], **meta: Any) -> None:
    """Write ``model`` (weights + the config to rebuild it) to ``path``; ``meta`` is kept
    alongside (epoch, accuracy, dataset, ...)."""
    cfg: SpikformerConfig = model.config
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(
        {
            "format": FORMAT,
            "model_name": cfg.name or cfg.variant,
            "config": cfg.to_dict(),
            "num_classes": cfg.num_classes,
            "state_dict": state,
            "meta": meta,
        },
        os.fspath(path),
    )


#: files the user said to trust (``--trust-checkpoint``): fully unpickled by :func:`_read`
_TRUSTED: set[str] = set()


def trust_file(path: Union[str, os.PathLike]) -> None:
    """Unpickle ``path`` fully from now on in this process (``--trust-checkpoint``):
    it may hold any Python object -- and run code when loaded, so only for a file the
    user trusts. Other files keep the ``weights_only`` unpickler."""
    _TRUSTED.add(os.path.realpath(os.fspath(path)))


#: how a ``torch.save`` file starts: a zip archive (torch >= 1.6) or a bare pickle
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


def _looks_like_torch_file(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return any(head.startswith(m) for m in _TORCH_MAGIC)


def _read(
    path_or_state: Union[str, os.PathLike, Mapping[str, Any]], trusted: bool = False
) -> tuple[Mapping[str, Any], str]:
    """-> ``(the unpickled dict, its name)``; one-line :class:`CheckpointError` in our own
    words for a missing file, a folder, a file that is no PyTorch checkpoint, a damaged
    one, or one holding Python objects that only ``--trust-checkpoint`` reads."""
    if isinstance(path_or_state, Mapping):
        return path_or_state, "<state dict>"
    path = os.fspath(path_or_state)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path}: is a folder, not a checkpoint file")
    trusted = trusted or os.path.realpath(path) in _TRUSTED
    try:
        torch_file = _looks_like_torch_file(path)
    except OSError as e:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({e.strerror or type(e).__name__})") from None
    if not torch_file:
        raise CheckpointError(f"cannot read checkpoint {path}: not a PyTorch checkpoint (not a file written by "
                              "torch.save)")
    try:
        # timm-style training checkpoints (the releases') also pickle their argparse args
        # torch's own warnings (a pickle protocol its weights-only unpickler was not written
        # for, ...) name its source files; what matters reaches the user as our one line
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as e:  # damaged archive (torch raises OSError too), or a pickle with arbitrary objects
        raise CheckpointError(_load_failure(path, e, trusted)) from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: a PyTorch file holding a {type(obj).__name__}, not a checkpoint "
                              "(a dict of weights)")
    return obj, path


def _load_failure(path: str, exc: BaseException, trusted: bool) -> str:
    """Why ``torch.load`` refused ``path``, in our words (never PyTorch's own text)."""
    text = str(exc)
    if not trusted and ("Weights only load failed" in text or "weights_only" in text):
        return (f"cannot read checkpoint {path}: it holds Python objects besides weights; if you trust the "
                "file (unpickling it may run code), pass --trust-checkpoint")
    return f"cannot read checkpoint {path}: a damaged or cut-short PyTorch checkpoint; save it again"


def _unwrap(obj: Mapping[str, Any], source: str) -> tuple[dict[str, Tensor], str, dict[str, Any]]:
    """-> (state dict, format, our-format header)."""
    if obj.get("format") == FORMAT:
        return dict(obj["state_dict"]), "dvsstream", dict(obj)
    for key in ("model", "state_dict", "model_state_dict", "state_dict_ema", "model_ema"):
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, Tensor) for v in inner.values()):
            obj = inner
            break
    tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f"{source} holds no tensors (keys: {', '.join(list(obj)[:6])}); not a model checkpoint")
    # strip DDP / torch.compile prefixes
    for prefix in ("module.", "_orig_mod."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    return tensors, "release", {}


def _check_architecture(cfg: SpikformerConfig, own: Mapping[str, Tensor], sd: Mapping[str, Any], fmt: str,
                        header: Mapping[str, Any], source: str) -> None:
    """Raise :class:`CheckpointError` when the checkpoint's class count (its header's
    ``num_classes`` or the rows of ``head.weight``) or, for our format, its config's
    ``variant / dim / depth / heads / mixer`` differ from the model's (``cfg``, its
    state dict ``own``)."""
    # class count first: the most common mismatch, and the clearest message
    head_w = sd.get("head.weight")
    mine = f"{cfg.num_classes} classes of {cfg.name or cfg.variant}"
    if header.get("num_classes") is not None and header["num_classes"] != cfg.num_classes:
        theirs = header.get("model_name") or header.get("config", {}).get("variant", "?")
        raise CheckpointError(
            f"{source}: a checkpoint for {header['num_classes']} classes of {theirs}, but the model has "
            f"{mine}; build it with num_classes={header['num_classes']}"
        )
    if head_w is not None and "head.weight" in own and head_w.shape[0] != own["head.weight"].shape[0]:
        raise CheckpointError(
            f"{source}: a checkpoint for {head_w.shape[0]} classes, but the model has {mine}; "
            f"build it with num_classes={head_w.shape[0]}"
        )
    if fmt == "dvsstream":
        theirs = header.get("config", {})
        for k in ("variant", "dim", "depth", "heads", "mixer"):
            if k in theirs and theirs[k] != getattr(cfg, k):
                name = header.get("model_name") or theirs.get("variant")
                raise CheckpointError(
                    f"{source} is a {name} with {k} {theirs[k]!r} but the model ({cfg.name or cfg.variant}) has "
                    f"{k} {getattr(cfg, k)!r}; use the checkpoint's own model (--model {name})"
                )


def load_checkpoint(
    model: Spikformer,
    path_or_state_dict: Union[str, os.PathLike, Mapping[str, Any]],
    strict: bool = True,
    trusted: bool = False,
) -> LoadReport:
    """Load weights into ``model`` from our checkpoint or a release state dict.

    Raises :class:`CheckpointError` (one line) on a class-count mismatch, a missing or
    misshapen parameter (architecture mismatch), or unexpected parameters (``strict``).
    Files are read with ``weights_only`` unpickling unless ``trusted=True``.
    Returns a :class:`LoadReport` listing ignored unused release entries.
    """
    obj, source = _read(path_or_state_dict, trusted)
    release_args = release_training_args(obj)
    sd, fmt, header = _unwrap(obj, source)
    report = LoadReport(source=source, format=fmt, meta=dict(header.get("meta", {})),
                        release_trained=release_args is not None, release_args=release_args or {})
    own = model.state_dict()
    cfg = model.config
    _check_architecture(cfg, own, sd, fmt, header, source)

    new: dict[str, Tensor] = {}
    unexpected = []
    for k, v in sd.items():
        if k in own:
            if v.shape != own[k].shape:
                if v.numel() == own[k].numel() and v.squeeze().shape == own[k].squeeze().shape and v.dim() > own[k].dim():
                    v = v.reshape(own[k].shape)  # 1x1 Conv2d -> Conv1d
                else:
                    raise CheckpointError(
                        f"{source}: {k} has shape {tuple(v.shape)} but the model expects "
                        f"{tuple(own[k].shape)} (architecture mismatch: checkpoint vs {cfg.name or cfg.variant} of "
                        f"dim {cfg.dim}, depth {cfg.depth}, input {cfg.img_size[1]}x{cfg.img_size[0]})"
                    )
            new[k] = v
        elif _UNUSED_RELEASE.search(k):
            report.ignored.append(k)
        else:
            unexpected.append(k)
    missing = [k for k in own if k not in new and not k.endswith("num_batches_tracked")]
    if missing:
        raise CheckpointError(
            f"{source} lacks {len(missing)} of the model's parameters (e.g. {', '.join(missing[:3])}): "
            f"architecture mismatch between the checkpoint and {cfg.name or cfg.variant} "
            f"(depth {cfg.depth}, dim {cfg.dim})"
        )
    if unexpected and strict:
        raise CheckpointError(
            f"{source} has {len(unexpected)} parameters the model does not have (e.g. "
            f"{', '.join(unexpected[:3])}): architecture mismatch with {cfg.name or cfg.variant} "
            f"(depth {cfg.depth}); use a checkpoint of that model"
        )
    report.ignored += unexpected
    model.load_state_dict(new, strict=False)
    report.loaded = len(new)
    model.refresh_fused()
    model.reset()
    return report


def load_model(path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu",
               trusted: bool = False, **overrides: Any) -> Spikformer:
    """Build the model described by one of our checkpoints and load its weights
    (``trusted``: unpickle fully, see :func:`trust_file`)."""
    obj, source = _read(path, trusted)
    if obj.get("format") != FORMAT:
        tensors = [v for v in obj.values() if isinstance(v, Tensor)] or [
            v for inner in obj.values() if isinstance(inner, Mapping) for v in inner.values() if isinstance(v, Tensor)]
        what = "a release state dict" if tensors else "not a model checkpoint (no weights inside)"
        raise CheckpointError(
            f"{source}: {what}, not a dvsstream checkpoint; convert it with "
            f"`dvsstream eval --dataset D --root DIR --checkpoint {source} --model NAME --export OUT.pt --out DIR`"
        )
    cfg = SpikformerConfig.from_dict(dict(obj["config"]))
    if overrides:
        import dataclasses

        cfg = dataclasses.replace(cfg, **overrides)
    model = Spikformer(cfg)
    try:
        load_checkpoint(model, obj)
    except CheckpointError as exc:
        raise CheckpointError(str(exc).replace("<state dict>", source)) from None
    return model.to(map_location)


def checkpoint_meta(path: Union[str, os.PathLike]) -> dict[str, Any]:
    """The ``meta`` saved with one of our checkpoints (e.g. ``classes``,
    ``live_binning``, ``frame_spec``); ``{}`` for release state dicts."""
    obj, _ = _read(path)
    return dict(obj.get("meta") or {}) if isinstance(obj, Mapping) else {}


#: checkpoints shipped inside the package (``dvsstream/data/<name>.pt``, each with a
#: model card ``<name>.md`` beside it)
SHIPPED_MODELS = ("gesture_tiny", "pretrained_tiny")


def shipped_checkpoint(name: str = "gesture_tiny") -> Path:
    """Path of a checkpoint shipped with the package (see its model card, same name,
    ``.md``). ``gesture_tiny``: the tiny preset trained on the synthetic gesture set --
    not a model of the real DVS128 Gesture data. ``pretrained_tiny``: the tiny preset's
    encoder, pre-trained without labels on emulated scenes (no classifier head)."""
    if name not in SHIPPED_MODELS:
        raise CheckpointError(f"no shipped model {name!r}; shipped: {', '.join(SHIPPED_MODELS)}")
    path = Path(__file__).resolve().parent.parent / "data" / f"{name}.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: the shipped checkpoint is missing (a broken install?)")
    return path
