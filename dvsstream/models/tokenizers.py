"""The tokenizers of the Spikformer family: event frames ``[T, B, C_in, H, W]`` to tokens
``[T, B, N, dim]`` through convolution stages on image-like maps.

Maps are ``[T*B, C, H, W]`` in ``channels_last`` memory format (the 3x3 convolutions are
faster that way, and a channels-last map flattens to tokens for free). In eval mode the
large full-resolution front runs over groups of a few frames at a time, the LIF state
carried from group to group (:func:`_front_in_groups`): the same bits, the large maps in
cache.

* :class:`SPS`: Spikformer's spiking patch splitting (and Spikformer V2's stem);
* :class:`SpikingTokenizer`: Spikingformer's.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from dvsstream.models.fusion import FusableMixin, _flat, _tb
from dvsstream.models.neurons import LIF
from dvsstream.models.pooling import MaxPool3s2

__all__ = ["SPS", "SpikingTokenizer"]


def _front_in_groups(tokenizer: nn.Module, x: Tensor, T: int, B: int, n_front: int) -> Tensor:
    """``tokenizer._front(x, T, n_front)`` on ``x [T*B, C, H, W]``; in eval mode over groups
    of about ``tokenizer.chunk_samples`` frames (whole time steps), the LIF state carried
    from group to group, so that the large full-resolution maps stay in cache. Same bits
    as one call over all T."""
    step = max(1, tokenizer.chunk_samples // max(B, 1)) if tokenizer.chunk_samples else T
    if tokenizer.proj_bn.training or T <= step or n_front == 0:
        return tokenizer._front(x, T, n_front)
    return torch.cat([tokenizer._front(x[t0 * B:(t0 + step) * B], min(step, T - t0), n_front)
                      for t0 in range(0, T, step)])


def _maxpool() -> nn.MaxPool2d:
    return MaxPool3s2()


def _pooled(size: int, pools: Sequence[bool]) -> int:
    for p in pools:
        if p:
            size = (size + 2 * 1 - 3) // 2 + 1
    return size


# ----------------------------------------------------------------------------- Spikformer
class SPS(FusableMixin, nn.Module):
    """Spiking patch splitting: four ``Conv3x3 -> BN -> LIF -> MaxPool`` stages (channels
    ``dim/8, dim/4, dim/2, dim``) and the relative position embedding
    ``x + LIF(BN(Conv3x3(x)))``. Optional spiking convolutional stem (Spikformer V2):
    ``stem_depth`` x ``Conv3x3 -> BN -> LIF`` at full resolution before the first stage.

    In: ``[T, B, C_in, H, W]``. Out: tokens ``[T, B, N, dim]``, N = grid h * w.
    """

    def __init__(
        self,
        img_size: tuple[int, int],
        in_channels: int,
        dim: int,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        pools: Sequence[bool] = (True, True, True, True),
        rpe: bool = True,
        stem_depth: int = 0,
        stem_channels: int = 0,
    ) -> None:
        super().__init__()
        if dim % 8:
            raise ValueError(f"SPS needs dim divisible by 8, got {dim}")
        if len(pools) != 4:
            raise ValueError(f"SPS has four stages; pools must have 4 entries, got {pools}")
        self._fused = None
        self.img_size = img_size
        self.pools = tuple(bool(p) for p in pools)
        self.rpe = rpe
        self.stem_depth = stem_depth
        lif = lambda: LIF(tau, v_threshold, inplace=True)  # noqa: E731
        c_in = in_channels
        for j in range(stem_depth):
            c = stem_channels or dim // 8
            setattr(self, f"stem_conv{j}", nn.Conv2d(c_in, c, 3, 1, 1, bias=False))
            setattr(self, f"stem_bn{j}", nn.BatchNorm2d(c))
            setattr(self, f"stem_lif{j}", lif())
            c_in = c
        chans = [dim // 8, dim // 4, dim // 2, dim]
        for i, c in enumerate(chans):
            sfx = "" if i == 0 else str(i)
            setattr(self, f"proj_conv{sfx}", nn.Conv2d(c_in, c, 3, 1, 1, bias=False))
            setattr(self, f"proj_bn{sfx}", nn.BatchNorm2d(c))
            setattr(self, f"proj_lif{sfx}", lif())
            if self.pools[i]:
                setattr(self, f"maxpool{sfx}", _maxpool())
            c_in = c
        if rpe:
            self.rpe_conv = nn.Conv2d(dim, dim, 3, 1, 1, bias=False)
            self.rpe_bn = nn.BatchNorm2d(dim)
            self.rpe_lif = LIF(tau, v_threshold, inplace=True)
        self.grid = (_pooled(img_size[0], self.pools), _pooled(img_size[1], self.pools))

    def fuse_pairs(self) -> list[tuple[str, str]]:
        pairs = [(f"stem_conv{j}", f"stem_bn{j}") for j in range(self.stem_depth)]
        pairs += [("proj_conv", "proj_bn")] + [(f"proj_conv{i}", f"proj_bn{i}") for i in (1, 2, 3)]
        if self.rpe:
            pairs.append(("rpe_conv", "rpe_bn"))
        return pairs

    #: eval-mode inference runs the full-resolution front (stem + first ``chunk_stages``
    #: stages) over groups of about ``chunk_samples`` frames (time steps x batch) at a
    #: time, carrying the LIF state between groups. LIF is causal, so this is exactly the
    #: same computation; it keeps the large maps in cache (and oneDNN is much faster on a
    #: 2-channel input with a small batch). 0 disables.
    chunk_samples: int = 4
    chunk_stages: int = 2

    def _stage(self, i: int, x: Tensor, T: int) -> Tensor:
        sfx = "" if i == 0 else str(i)
        mods = self._modules
        pool = mods[f"maxpool{sfx}"] if self.pools[i] else None
        return self._maps_stage(f"proj_conv{sfx}", f"proj_bn{sfx}", mods[f"proj_lif{sfx}"], pool, x, T)

    def _front(self, x: Tensor, T: int, n_stages: int) -> Tensor:
        for j in range(self.stem_depth):
            x = self._maps_stage(f"stem_conv{j}", f"stem_bn{j}", self._modules[f"stem_lif{j}"], None, x, T)
        for i in range(n_stages):
            x = self._stage(i, x, T)
        return x

    def forward(self, x: Tensor) -> Tensor:
        T, B = x.shape[:2]
        x = _flat(x).contiguous(memory_format=torch.channels_last)
        n_front = min(self.chunk_stages, 4)
        x = _front_in_groups(self, x, T, B, n_front)
        for i in range(n_front, 4):
            x = self._stage(i, x, T)
        if self.rpe:
            x = x + self._maps_stage("rpe_conv", "rpe_bn", self.rpe_lif, None, x, T)
        return _to_tokens(x, T)


def _to_tokens(x: Tensor, T: int) -> Tensor:
    """``[T*B, C, h, w]`` -> ``[T, B, h*w, C]`` (free for channels_last input)."""
    TB, C, h, w = x.shape
    x = x.permute(0, 2, 3, 1).reshape(TB, h * w, C)
    return _tb(x, T)


# ----------------------------------------------------------------------------- Spikingformer
class SpikingTokenizer(FusableMixin, nn.Module):
    """Spikingformer tokenizer: ``Conv-BN``, then four ``LIF -> MaxPool -> Conv -> BN``
    (five convs, four pools, no RPE). Output is real-valued (membrane shortcut)."""

    def __init__(
        self,
        img_size: tuple[int, int],
        in_channels: int,
        dim: int,
        tau: float = 1.5,
        v_threshold: float = 1.0,
        pools: Sequence[bool] = (True, True, True, True),
    ) -> None:
        super().__init__()
        if dim % 8:
            raise ValueError(f"tokenizer needs dim divisible by 8, got {dim}")
        self._fused = None
        self.pools = tuple(bool(p) for p in pools)
        chans = [dim // 8, dim // 4, dim // 2, dim, dim]
        self.proj_conv = nn.Conv2d(in_channels, chans[0], 3, 1, 1, bias=False)
        self.proj_bn = nn.BatchNorm2d(chans[0])
        for i in range(1, 5):
            setattr(self, f"proj{i}_lif", LIF(tau, v_threshold, inplace=True))
            if self.pools[i - 1]:
                setattr(self, f"maxpool{i}", _maxpool())
            setattr(self, f"proj{i}_conv", nn.Conv2d(chans[i - 1], chans[i], 3, 1, 1, bias=False))
            setattr(self, f"proj{i}_bn", nn.BatchNorm2d(chans[i]))
        self.grid = (_pooled(img_size[0], self.pools), _pooled(img_size[1], self.pools))

    def fuse_pairs(self) -> list[tuple[str, str]]:
        return [("proj_conv", "proj_bn")] + [(f"proj{i}_conv", f"proj{i}_bn") for i in range(1, 5)]

    #: eval-mode inference runs the large-map front (the first ``chunk_stages`` units of
    #: :meth:`_unit`: the 128x128 and 64x64 convs with their LIF and pool) over groups of
    #: about ``chunk_samples`` frames at a time, carrying the LIF state between groups, as
    #: :class:`SPS` does: the same computation, with the large maps kept in cache. The
    #: later convs run on all frames at once (the same bits: per frame the same
    #: computation); at batch 1, 2 and 4 this split beat 1 unit per group by 9-22 ms and
    #: the former split (groups up to the 32x32 conv) by 7, 7 and 33 ms. 0 disables.
    chunk_samples: int = 4
    chunk_stages: int = 2

    def _unit(self, i: int, x: Tensor, T: int) -> Tensor:
        """Unit ``i`` (0..4) on ``[T*B, C, H, W]``: conv ``i`` and its BN, then (``i < 4``)
        stage ``i + 1``'s ``LIF -> MaxPool``; units 0..4 are the whole tokenizer."""
        conv = "proj_conv" if i == 0 else f"proj{i}_conv"
        bn = conv[: -len("conv")] + "bn"
        if i == 4:
            return self._cbn(conv, bn, x)
        mods = self._modules
        pool = mods[f"maxpool{i + 1}"] if self.pools[i] else None
        return self._maps_stage(conv, bn, mods[f"proj{i + 1}_lif"], pool, x, T)

    def _front(self, x: Tensor, T: int, n_units: int) -> Tensor:
        for i in range(n_units):
            x = self._unit(i, x, T)
        return x

    def forward(self, x: Tensor) -> Tensor:
        T, B = x.shape[:2]
        x = _flat(x).contiguous(memory_format=torch.channels_last)
        n_front = min(self.chunk_stages, 5)
        x = _front_in_groups(self, x, T, B, n_front)
        for i in range(n_front, 5):
            x = self._unit(i, x, T)
        return _to_tokens(x, T)
