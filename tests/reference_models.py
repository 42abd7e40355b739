"""A plain re-statement of the original Spikformer DVS release's forward pass.

For checks and benchmarks only: written the way the release's ``cifar10dvs/model.py``
computes (``[T, B, C, N]`` layout, ``Conv1d(k=1)``, ``(q @ k^T) @ v``, the same
``.contiguous()`` copies), with a pluggable multi-step LIF factory so that it can run on a
straightforward pure-PyTorch LIF (default) or on spikingjelly's ``LIFNode(step_mode="m")``
(the benchmark). Only the parameters the release actually uses are defined; module names
are the release's, so ``reference.load_state_dict(ours.state_dict())`` works.

Supports the Spikformer variant (``SpikformerConfig.variant == "spikformer"``) and, as
:class:`ReferenceSpikingformer`, the Spikingformer variant (the Spikingformer release's
``cifar10-dvs/model.py``: ``LIF -> Conv -> BN`` everywhere, membrane shortcut).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from dvsstream.models.spikformer import SpikformerConfig

__all__ = ["SimpleLIF", "ReferenceSpikformer", "ReferenceSpikingformer", "reference_model"]


class SimpleLIF(nn.Module):
    """The textbook multi-step LIF (hard reset to 0, decay_input), no tricks."""

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0) -> None:
        super().__init__()
        self.tau, self.v_threshold = tau, v_threshold

    def forward(self, x: Tensor) -> Tensor:
        v = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            h = v + (x[t] - v) / self.tau
            s = (h - self.v_threshold >= 0).to(x.dtype)
            v = s * 0.0 + (1.0 - s) * h
            out.append(s)
        return torch.stack(out)


LifFactory = Callable[..., nn.Module]


def _default_lif(tau: float = 2.0, v_threshold: float = 1.0) -> nn.Module:
    return SimpleLIF(tau, v_threshold)


class _MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, lif: LifFactory, tau: float) -> None:
        super().__init__()
        self.fc1_conv = nn.Conv1d(dim, hidden, 1)
        self.fc1_bn = nn.BatchNorm1d(hidden)
        self.fc1_lif = lif(tau=tau)
        self.fc2_conv = nn.Conv1d(hidden, dim, 1)
        self.fc2_bn = nn.BatchNorm1d(dim)
        self.fc2_lif = lif(tau=tau)
        self.hidden = hidden

    def forward(self, x: Tensor) -> Tensor:
        T, B, C, N = x.shape
        x = self.fc1_conv(x.flatten(0, 1))
        x = self.fc1_bn(x).reshape(T, B, self.hidden, N).contiguous()
        x = self.fc1_lif(x)
        x = self.fc2_conv(x.flatten(0, 1))
        x = self.fc2_bn(x).reshape(T, B, C, N).contiguous()
        return self.fc2_lif(x)


class _SSA(nn.Module):
    def __init__(self, dim: int, heads: int, scale: float, attn_th: float, lif: LifFactory, tau: float) -> None:
        super().__init__()
        self.heads, self.scale = heads, scale
        for n in "qkv":
            setattr(self, f"{n}_conv", nn.Conv1d(dim, dim, 1, bias=False))
            setattr(self, f"{n}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{n}_lif", lif(tau=tau))
        self.attn_lif = lif(tau=tau, v_threshold=attn_th)
        self.proj_conv = nn.Conv1d(dim, dim, 1)
        self.proj_bn = nn.BatchNorm1d(dim)
        self.proj_lif = lif(tau=tau)

    def _qkv(self, n: str, x: Tensor, T: int, B: int, C: int, N: int) -> Tensor:
        y = getattr(self, f"{n}_bn")(getattr(self, f"{n}_conv")(x)).reshape(T, B, C, N).contiguous()
        y = getattr(self, f"{n}_lif")(y)
        return y.transpose(-1, -2).reshape(T, B, N, self.heads, C // self.heads).permute(0, 1, 3, 2, 4).contiguous()

    def _attend(self, x: Tensor) -> Tensor:
        """Spiking self-attention of ``x [T, B, C, N]``: the attention LIF's spikes, ``[T*B, C, N]``."""
        T, B, C, N = x.shape
        xf = x.flatten(0, 1)
        q, k, v = (self._qkv(n, xf, T, B, C, N) for n in "qkv")
        attn = q @ k.transpose(-2, -1)
        x = (attn @ v) * self.scale
        x = x.transpose(3, 4).reshape(T, B, C, N).contiguous()
        return self.attn_lif(x).flatten(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        T, B, C, N = x.shape
        x = self._attend(x)
        return self.proj_lif(self.proj_bn(self.proj_conv(x)).reshape(T, B, C, N))


class _Block(nn.Module):
    def __init__(self, attn: nn.Module, mlp: nn.Module) -> None:
        super().__init__()
        self.attn, self.mlp = attn, mlp

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class _SPS(nn.Module):
    def __init__(self, cfg: SpikformerConfig, lif: LifFactory) -> None:
        super().__init__()
        d, tau = cfg.dim, cfg.tau
        chans = [cfg.in_channels, d // 8, d // 4, d // 2, d]
        self.pools = cfg.pools
        for i in range(4):
            sfx = "" if i == 0 else str(i)
            setattr(self, f"proj_conv{sfx}", nn.Conv2d(chans[i], chans[i + 1], 3, 1, 1, bias=False))
            setattr(self, f"proj_bn{sfx}", nn.BatchNorm2d(chans[i + 1]))
            setattr(self, f"proj_lif{sfx}", lif(tau=tau))
            setattr(self, f"maxpool{sfx}", nn.MaxPool2d(3, 2, 1))
        self.rpe_conv = nn.Conv2d(d, d, 3, 1, 1, bias=False)
        self.rpe_bn = nn.BatchNorm2d(d)
        self.rpe_lif = lif(tau=tau)

    def forward(self, x: Tensor) -> Tensor:
        T, B = x.shape[:2]
        x = x.flatten(0, 1)
        for i in range(4):
            sfx = "" if i == 0 else str(i)
            x = getattr(self, f"proj_conv{sfx}")(x)
            x = getattr(self, f"proj_bn{sfx}")(x)
            x = x.reshape(T, B, *x.shape[1:]).contiguous()
            x = getattr(self, f"proj_lif{sfx}")(x).flatten(0, 1).contiguous()
            if self.pools[i]:
                x = getattr(self, f"maxpool{sfx}")(x)
        h, w = x.shape[-2:]
        r = self.rpe_bn(self.rpe_conv(x)).reshape(T, B, -1, h, w).contiguous()
        r = self.rpe_lif(r).flatten(0, 1)
        x = x + r
        return x.reshape(T, B, -1, h * w).contiguous()


class ReferenceSpikformer(nn.Module):
    """Release-structured Spikformer (DVS): ``[B, T, C, H, W]`` -> logits."""

    #: the release variant this class builds, and its tokenizer, attention and MLP
    variant = "spikformer"
    parts = (_SPS, _SSA, _MLP)

    def __init__(self, cfg: SpikformerConfig, lif: Optional[LifFactory] = None) -> None:
        super().__init__()
        if cfg.variant != self.variant:
            raise ValueError(f"{type(self).__name__} implements the {self.variant!r} variant only")
        lif = lif or _default_lif
        self.config = cfg
        tokenizer, attention, mlp = self.parts
        self.patch_embed = tokenizer(cfg, lif)
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.block = nn.ModuleList(
            _Block(
                attention(cfg.dim, cfg.heads, cfg.attn_scale, cfg.attn_threshold, lif, cfg.tau),
                mlp(cfg.dim, hidden, lif, cfg.tau),
            )
            for _ in range(cfg.depth)
        )
        self.head = nn.Linear(cfg.dim, cfg.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for m in self.modules():  # spikingjelly nodes keep state between calls
            if m is not self and hasattr(m, "reset") and callable(m.reset):
                m.reset()
        x = x.permute(1, 0, 2, 3, 4)
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return self.head(x.mean(3).mean(0))


class _SpikingMLP(nn.Module):
    def __init__(self, dim: int, hidden: int, lif: LifFactory, tau: float) -> None:
        super().__init__()
        self.mlp1_lif = lif(tau=tau)
        self.mlp1_conv = nn.Conv1d(dim, hidden, 1)
        self.mlp1_bn = nn.BatchNorm1d(hidden)
        self.mlp2_lif = lif(tau=tau)
        self.mlp2_conv = nn.Conv1d(hidden, dim, 1)
        self.mlp2_bn = nn.BatchNorm1d(dim)
        self.hidden = hidden

    def forward(self, x: Tensor) -> Tensor:
        T, B, C, N = x.shape
        x = self.mlp1_lif(x)
        x = self.mlp1_conv(x.flatten(0, 1))
        x = self.mlp1_bn(x).reshape(T, B, self.hidden, N).contiguous()
        x = self.mlp2_lif(x)
        x = self.mlp2_conv(x.flatten(0, 1))
        return self.mlp2_bn(x).reshape(T, B, C, N).contiguous()


class _SpikingSSA(_SSA):
    """Spikingformer's SSA: a LIF on the incoming (real-valued) stream first, no LIF
    after the projection's batch norm."""

    def __init__(self, dim: int, heads: int, scale: float, attn_th: float, lif: LifFactory, tau: float) -> None:
        super().__init__(dim, heads, scale, attn_th, lif, tau)
        self.proj_lif = lif(tau=tau)

    def forward(self, x: Tensor) -> Tensor:
        T, B, C, N = x.shape
        x = self._attend(self.proj_lif(x))  # Spikingformer: the LIF before the attention
        return self.proj_bn(self.proj_conv(x)).reshape(T, B, C, N)


class _SpikingTokenizer(nn.Module):
    def __init__(self, cfg: SpikformerConfig, lif: LifFactory) -> None:
        super().__init__()
        d, tau = cfg.dim, cfg.tau
        chans = [d // 8, d // 4, d // 2, d, d]
        self.pools = cfg.pools
        self.proj_conv = nn.Conv2d(cfg.in_channels, chans[0], 3, 1, 1, bias=False)
        self.proj_bn = nn.BatchNorm2d(chans[0])
        for i in range(1, 5):
            setattr(self, f"proj{i}_lif", lif(tau=tau))
            setattr(self, f"maxpool{i}", nn.MaxPool2d(3, 2, 1))
            setattr(self, f"proj{i}_conv", nn.Conv2d(chans[i - 1], chans[i], 3, 1, 1, bias=False))
            setattr(self, f"proj{i}_bn", nn.BatchNorm2d(chans[i]))

    def forward(self, x: Tensor) -> Tensor:
        T, B = x.shape[:2]
        x = self.proj_bn(self.proj_conv(x.flatten(0, 1)))
        for i in range(1, 5):
            x = x.reshape(T, B, *x.shape[1:]).contiguous()
            x = getattr(self, f"proj{i}_lif")(x).flatten(0, 1).contiguous()
            if self.pools[i - 1]:
                x = getattr(self, f"maxpool{i}")(x)
            x = getattr(self, f"proj{i}_bn")(getattr(self, f"proj{i}_conv")(x))
        return x.reshape(T, B, x.shape[1], -1).contiguous()  # [T, B, C, N]


class ReferenceSpikingformer(ReferenceSpikformer):
    """Release-structured Spikingformer (DVS): ``[B, T, C, H, W]`` -> logits."""

    variant = "spikingformer"
    parts = (_SpikingTokenizer, _SpikingSSA, _SpikingMLP)


def reference_model(cfg: SpikformerConfig, lif: Optional[LifFactory] = None) -> ReferenceSpikformer:
    """The release-structured model of ``cfg.variant`` ('spikformer' or 'spikingformer')."""
    for cls in (ReferenceSpikformer, ReferenceSpikingformer):
        if cls.variant == cfg.variant:
            return cls(cfg, lif)
    raise ValueError(f"no release-structured reference for the {cfg.variant!r} variant")
