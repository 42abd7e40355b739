"""Helpers for tests, benchmarks and demos that need a randomly initialised model
that behaves like a trained one (its neurons fire at realistic rates)."""

from __future__ import annotations

import torch
from torch import nn


def randomize_batchnorm(model: nn.Module, seed: int = 1) -> nn.Module:
    """Give every batch norm non-trivial statistics and affine parameters (in place),
    so that freshly initialised spiking layers fire at roughly 5-15 %.
    Returns the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.3, 0.3, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 2.0, generator=g)
                m.bias.uniform_(0.0, 1.2, generator=g)
    if hasattr(model, "refresh_fused"):
        model.refresh_fused()
    return model
