"""Memory of one training step: :func:`measure_step_memory` (forward, loss, backward of
a batch) counts the activations autograd keeps for the backward and, on CUDA, the peak
allocation (:class:`StepMemory`). Used by the benchmarks and by the ``recompute``
tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor, nn

from dvsstream.datasets.augment import one_hot_smooth
from dvsstream.training.config import resolve_amp
from dvsstream.training.steps import forward_loss

__all__ = ["StepMemory", "measure_step_memory"]


@dataclass
class StepMemory:
    """Memory of one training step (forward + backward) of a batch.

    ``saved_bytes``: the tensors autograd saved for the backward (distinct storages,
    parameters and the input left out): the activation memory the step holds at the end
    of its forward. ``peak_bytes``: on CUDA ``torch.cuda.max_memory_allocated`` during the
    step above what was allocated before it (activations, gradients, workspace); on CPU
    equal to ``saved_bytes``. ``step_s``: the step's wall time (seconds).
    """

    device: str
    batch: int
    saved_bytes: int
    peak_bytes: int
    step_s: float


def measure_step_memory(model: nn.Module, frames: Tensor, labels: Optional[Tensor] = None,
                        amp: Union[None, bool, str, torch.dtype] = None, channels_last: bool = False) -> StepMemory:
    """Peak activation memory of one training step of ``model`` (in train mode, on its
    device) on ``frames [B, T, C, H, W]`` (``labels [B]``: default all 0): forward,
    loss, backward; the gradients are left in ``.grad`` (zero them before a real step).
    ``amp``: as :class:`TrainConfig`'s ``amp`` or a dtype."""
    p0 = next(model.parameters())
    dev = p0.device
    dtype = amp if isinstance(amp, torch.dtype) else resolve_amp(amp if amp is not None else "off", dev)
    frames = frames.to(dev).float()
    labels = torch.zeros(frames.shape[0], dtype=torch.long, device=dev) if labels is None else labels.to(dev)
    targets = one_hot_smooth(labels, int(model.config.num_classes), 0.1)
    skip = {p.untyped_storage().data_ptr() for p in model.parameters()} | {frames.untyped_storage().data_ptr()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in skip and ptr not in seen:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    model.train()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else 0
    t0 = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = forward_loss(model, frames, targets, dtype, channels_last)
    loss.backward()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    step_s = time.perf_counter() - t0
    saved = sum(seen.values())
    peak = torch.cuda.max_memory_allocated(dev) - before if dev.type == "cuda" else saved
    return StepMemory(str(dev), int(frames.shape[0]), int(saved), int(peak), step_s)
