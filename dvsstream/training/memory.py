"""Memory of one training step: :func:`measure_step_memory` (forward, loss, backward of
a batch) counts the activations autograd keeps for the backward and, on CUDA, the peak
allocation (:class:`StepMemory`). Used by the benchmarks and by the ``recompute``
tests. :func:`estimate_sample_bytes` is its estimate before any work, from the model's
shape, and :func:`fit_batch` what ``train`` and ``eval`` do with the ``--batch-size``
they are given: at most the dataset, and refused (one line, the amount) when a batch
would not fit the memory."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor, nn

from dvsstream.datasets.augment import one_hot_smooth
from dvsstream.training.config import resolve_amp
from dvsstream.training.steps import forward_loss

__all__ = ["StepMemory", "estimate_sample_bytes", "fit_batch", "measure_step_memory"]

#: bytes of a training step per float of :func:`_step_elements`: the saved activations
#: (:func:`measure_step_memory` on the registered models: 2.5 to 4.2 floats, spikformer_dvs
#: 2.7, the tiny one 3.1) are about half of the step's growth of resident memory on a CPU
#: (measured 5.0 floats for spikformer_dvs at B=2, 7.8 for the tiny one at B=16)
TRAIN_FACTOR = 6.0
#: an inference forward (no autograd) holds about two stages' outputs at a time
EVAL_FACTOR = 2.0


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


def _step_elements(config) -> float:
    """Elements of one sample's activations over its ``T`` steps: the input, the first
    stage's ``dim/8`` maps twice, and the blocks' tokens x dim x 4."""
    h, w = config.img_size
    shift = sum(bool(p) for p in getattr(config, "pools", (True,) * 4))
    tokens = max(1, (h >> shift) * (w >> shift))
    per_step = config.in_channels * h * w + 2 * max(config.dim // 8, 1) * h * w + config.depth * tokens * config.dim * 4
    return float(config.T) * per_step


def estimate_sample_bytes(config, training: bool = True) -> float:
    """Estimated bytes one sample of a batch holds in a training step (``training``) or
    an inference forward, for a model of ``config`` (float32)."""
    return 4.0 * _step_elements(config) * (TRAIN_FACTOR if training else EVAL_FACTOR)


def fit_batch(batch_size: int, n_samples: int, config, training: bool, what: str, say=None,
              extra_bytes: float = 0.0) -> int:
    """The batch size to use: ``batch_size`` clamped to ``n_samples`` (a one-line note
    through ``say``), after a one-line refusal when such a batch (plus ``extra_bytes``)
    would need more memory than is available (:func:`dvsstream.heap.check_memory`)."""
    from dvsstream.heap import check_memory

    batch = max(1, min(int(batch_size), int(n_samples)))
    if batch < batch_size and say is not None:
        say(f"note: --batch-size {batch_size} is more than the {n_samples} {what} samples; using {batch}")
    need = batch * estimate_sample_bytes(config, training) + extra_bytes
    check_memory(need, f"--batch-size {batch} ({what}, {'a training step' if training else 'a forward'})",
                 "use a smaller --batch-size")
    return batch


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
