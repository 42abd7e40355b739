"""Attention taps: see what the spiking self-attention attends to, only when asked.

    with record_attention(model) as taps:
        logits = model(frames)            # or model.step(frame) repeatedly
    taps.attention[0]      # block 0: q @ k^T spike counts   [T, B, heads, N, N]
    taps.spatial[0]        # attention each key token receives, summed over queries,
                           # on the patch grid               [T, B, heads, h, w]
    taps.firing_rates      # {"patch_embed.proj_lif": 0.12, ...}  spikes / (neurons*steps)

Outside the ``with`` block nothing is recorded and SSA is free to use the cheaper
``q @ (k^T @ v)`` order (taps need the N x N map, so they force ``(q @ k^T) @ v``; the
result is identical either way). Calls made while tapping are concatenated along T, so
stepping T frames gives the same shapes as one T-step forward.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import Tensor, nn

from dvsstream.models.layers import SSA
from dvsstream.models.neurons import LIF

__all__ = ["AttentionTaps", "record_attention", "record_firing_rates"]


@dataclass
class AttentionTaps:
    """Recorded maps; filled while the context is active, readable after."""

    _attn: dict[int, list] = field(default_factory=dict)
    _lif: dict[str, list] = field(default_factory=dict)

    @property
    def attention(self) -> dict[int, Tensor]:
        """Block index -> spike attention ``q @ k^T`` ``[T, B, heads, N, N]``."""
        return {i: torch.cat([r["attn"] for r in recs]) for i, recs in self._attn.items() if recs}

    @property
    def spatial(self) -> dict[int, Tensor]:
        """Block index -> per-key-token attention on the patch grid ``[T, B, heads, h, w]``."""
        return {i: torch.cat([r["map"] for r in recs]) for i, recs in self._attn.items() if recs}

    @property
    def firing_rates(self) -> dict[str, float]:
        """LIF layer name -> spikes per neuron per time step over everything recorded."""
        out = {}
        for n, recs in self._lif.items():
            if recs:
                s = sum(r[0] for r in recs)
                c = sum(r[1] for r in recs)
                out[n] = s / c if c else 0.0
        return out

    def clear(self) -> None:
        for recs in list(self._attn.values()) + list(self._lif.values()):
            recs.clear()


def _ssa_blocks(model: nn.Module) -> dict[int, SSA]:
    blocks = getattr(model, "block", None)
    out = {}
    if blocks is not None:
        for i, blk in enumerate(blocks):
            if isinstance(getattr(blk, "attn", None), SSA):
                out[i] = blk.attn
    else:
        for i, m in enumerate(m for m in model.modules() if isinstance(m, SSA)):
            out[i] = m
    return out


@contextlib.contextmanager
def _tap_lifs(model: nn.Module, taps: AttentionTaps) -> Iterator[AttentionTaps]:
    """Point every LIF's ``record`` list into ``taps`` while active."""
    lifs = {n: m for n, m in model.named_modules() if isinstance(m, LIF)}
    try:
        for n, m in lifs.items():
            taps._lif[n] = []
            m.record = taps._lif[n]
        yield taps
    finally:
        for m in lifs.values():
            m.record = None


@contextlib.contextmanager
def record_firing_rates(model: nn.Module) -> Iterator[AttentionTaps]:
    """Record only the per-LIF-layer firing rates."""
    with _tap_lifs(model, AttentionTaps()) as taps:
        yield taps


@contextlib.contextmanager
def record_attention(model: nn.Module, firing_rates: bool = True) -> Iterator[AttentionTaps]:
    """Record every SSA block's attention maps (and LIF firing rates) while active."""
    ssas = _ssa_blocks(model)
    taps = AttentionTaps()
    try:
        for i, m in ssas.items():
            taps._attn[i] = []
            m.tap = taps._attn[i]
        if firing_rates:
            with _tap_lifs(model, taps):
                yield taps
        else:
            yield taps
    finally:
        for m in ssas.values():
            m.tap = None
