"""Starting a model from another task's weights: :func:`init_encoder` (what ``train --init``
and ``teach --init`` do when the checkpoint's classes are not the model's).

Every encoder tensor (everything but the classifier ``head``) is loaded from a pre-trained
encoder (``pretrain``'s ``encoder.pt``), a pre-training run's ``last.pt`` (its ``encoder.``
tensors), or a trained classifier of the same family and input size; the head is kept
when its shape fits and is new otherwise. The checkpoint must be of the same family
(``variant``) and input (``img_size``, ``in_channels``) and hold every encoder tensor with
the model's shape: a one-line :class:`~dvsstream.models.checkpoints.CheckpointError` says
what differs otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from torch import Tensor

from dvsstream.models.checkpoints import CheckpointError, _read, _unwrap
from dvsstream.models.spikformer import Spikformer

__all__ = ["TransferReport", "init_encoder", "is_head"]


def is_head(name: str) -> bool:
    """Whether a state-dict entry belongs to the classifier head (new for a new task)."""
    return name == "head" or name.startswith("head.")


@dataclass
class TransferReport:
    """What :func:`init_encoder` did: ``loaded`` tensors (the encoder's, and the head's
    when it fitted), the ``new`` ones (the head's for a new class count), the source's
    ``kind`` (``pretrained-encoder``, ``pretraining run``, ``classifier``), its classes
    (when it had a head) and ``meta``."""

    source: str
    kind: str
    loaded: int = 0
    new: list[str] = field(default_factory=list)
    source_classes: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        head = ("a new classifier head" if self.new else "its classifier head too")
        theirs = f" (it had {self.source_classes} classes)" if self.source_classes and self.new else ""
        return f"{self.loaded} encoder tensors loaded from the {self.kind} {self.source}; {head}{theirs}"


def _encoder_tensors(obj: Mapping[str, Any], source: str) -> tuple[dict[str, Tensor], dict[str, Any], str]:
    """``(state dict, header, kind)`` of a checkpoint: a pre-training run's ``last.pt``
    holds the autoencoder's tensors, the encoder's under ``encoder.``."""
    header = dict(obj)
    sd = obj.get("state_dict")
    if isinstance(sd, Mapping) and any(k.startswith("encoder.") for k in sd):
        enc = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
        return enc, header, "pre-training run"
    tensors, fmt, header = _unwrap(obj, source)
    kind = str(header.get("meta", {}).get("kind", "")) if fmt == "dvsstream" else ""
    return tensors, header, ("pre-trained encoder" if kind == "pretrained-encoder"
                             else "classifier" if fmt == "dvsstream" else "release checkpoint")


def _check_family(model: Spikformer, header: Mapping[str, Any], source: str) -> None:
    """The checkpoint's config (ours) must name the model's family and input."""
    theirs, cfg = header.get("config") or {}, model.config
    if not theirs:
        return  # a release state dict: the tensor shapes decide
    name = header.get("model_name") or theirs.get("variant")
    if theirs.get("variant") != cfg.variant:
        raise CheckpointError(f"--init {source}: a {theirs.get('variant')} model ({name}), but "
                              f"{cfg.name or cfg.variant} is a {cfg.variant}; start from a checkpoint of the same "
                              "family")
    size = tuple(int(v) for v in theirs.get("img_size", ())) or None
    if size is not None and size != tuple(cfg.img_size):
        raise CheckpointError(f"--init {source}: made for {size[1]}x{size[0]} input, but {cfg.name or cfg.variant} "
                              f"takes {cfg.img_size[1]}x{cfg.img_size[0]}; pick the model of the checkpoint's size")
    for k in ("in_channels", "dim", "depth", "heads", "mixer", "stem_depth"):
        if k in theirs and theirs[k] != getattr(cfg, k):
            raise CheckpointError(f"--init {source}: {name} has {k.replace('_', ' ')} {theirs[k]!r} but "
                                  f"{cfg.name or cfg.variant} has {getattr(cfg, k)!r}; pick the checkpoint's model "
                                  f"(--model {name})")


def init_encoder(model: Spikformer, path: Union[str, os.PathLike], trusted: bool = False) -> TransferReport:
    """Load every encoder tensor of the checkpoint at ``path`` into ``model`` (and the
    head when it has the model's class count); see the module docstring. Raises
    :class:`CheckpointError` (one line) for another family or input size, or a missing or
    misshapen encoder tensor."""
    obj, source = _read(path, trusted)
    sd, header, kind = _encoder_tensors(obj, source)
    _check_family(model, header, source)
    own = model.state_dict()
    report = TransferReport(source=source, kind=kind, meta=dict(header.get("meta") or {}))
    head_w = sd.get("head.weight")
    report.source_classes = int(head_w.shape[0]) if head_w is not None else 0
    new_state: dict[str, Tensor] = {}
    for k, v in own.items():
        theirs = sd.get(k)
        if is_head(k):
            if theirs is not None and theirs.shape == v.shape:
                new_state[k] = theirs
            else:
                report.new.append(k)
            continue
        if theirs is None and k.endswith("num_batches_tracked"):
            continue
        if theirs is None or theirs.numel() != v.numel():
            what = "lacks" if theirs is None else f"has {k} of shape {tuple(theirs.shape)} for"
            raise CheckpointError(f"--init {source} {what} {k if theirs is None else 'the model'}'s "
                                  f"{tuple(v.shape)}: not an encoder of {model.config.name or model.config.variant}; "
                                  "start from a checkpoint of the same model")
        new_state[k] = theirs.reshape(v.shape)
    model.load_state_dict(new_state, strict=False)
    report.loaded = sum(1 for k in new_state if not is_head(k))
    model.refresh_fused()
    model.reset()
    return report
