"""The optimiser and its learning-rate curve: :func:`build_optimizer` (AdamW, weight
decay on weights only) and :class:`WarmupCosine` (set per iteration: linear warm-up,
then half a cosine)."""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import nn

__all__ = ["WarmupCosine", "build_optimizer"]


class WarmupCosine:
    """Per-iteration learning rate: linear from ``warmup_lr`` to ``lr`` over
    ``warmup_steps``, then half a cosine from ``lr`` to ``min_lr`` at ``total_steps - 1``.

    Sets every parameter group's ``lr`` for the coming iteration; :meth:`step` after each
    optimiser step. ``state_dict`` holds the iteration count only (the curve is a
    function of the configuration).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int,
                 lr: float, warmup_lr: float = 1e-5, min_lr: float = 1e-5) -> None:
        self.optimizer = optimizer
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, int(warmup_steps))
        self.lr, self.warmup_lr, self.min_lr = float(lr), float(warmup_lr), float(min_lr)
        self.last_step = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_lr + (self.lr - self.warmup_lr) * step / self.warmup_steps
        span = max(1, self.total_steps - 1 - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def get_last_lr(self) -> float:
        return self.lr_at(self.last_step)

    def _apply(self) -> None:
        value = self.lr_at(self.last_step)
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self.last_step, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_step = int(state["last_step"])
        self._apply()


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, fused: Optional[bool] = None,
                    betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW with weight decay on weights (``ndim >= 2``) and none on biases / norms;
    frozen parameters (``requires_grad`` False) are left out.
    ``fused``: the fused kernel (None: when every parameter is on CUDA)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    if fused is None:
        fused = bool(decay or no_decay) and all(p.is_cuda for p in decay + no_decay)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=tuple(betas), eps=1e-8,
                             fused=fused or None)
