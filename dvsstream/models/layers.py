"""Building blocks of the Spikformer family, with the releases' module names.

Layout conventions (time first, as in the releases):

* image-like maps: ``[T*B, C, H, W]`` in ``channels_last`` memory format (the 3x3
  convolutions are faster that way; a channels-last map flattens to tokens for free);
* token streams: ``[T, B, N, C]`` (token-major). The releases keep ``[T, B, C, N]`` and
  run ``Conv1d(k=1)``; a ``k=1`` convolution over channels is the same linear map, which we
  apply as one GEMM over ``T*B*N`` rows with the release's ``Conv1d`` weight (so state dicts
  keep the release's names and shapes).

Every conv / linear followed by a batch norm goes through :meth:`FusableMixin._cbn`, which
in eval mode can use batch-norm-folded weights (see :func:`fuse_bn`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as _module_hooks

from dvsstream.models.bn_lif import bn_lif
from dvsstream.models.neurons import LIF
from dvsstream.models.pooling import MaxPool3s2

__all__ = [
    "SPS",
    "SSA",
    "MLP",
    "Block",
    "TokenMixer",
    "SpikingTokenizer",
    "SpikingSSA",
    "SpikingMLP",
    "SpikingBlock",
    "fuse_bn",
    "set_recompute",
    "unfuse_bn",
]


# ----------------------------------------------------------------------------- helpers
def _fold(conv_w: Tensor, conv_b: Optional[Tensor], bn: nn.BatchNorm1d) -> tuple[Tensor, Tensor]:
    """Fold an eval-mode batch norm into the preceding conv / linear (computed in float64)."""
    w = conv_w.detach().double()
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    b = conv_b.detach().double() if conv_b is not None else torch.zeros_like(scale)
    w = w * scale.view(-1, *([1] * (w.dim() - 1)))
    b = (b - bn.running_mean.double()) * scale + bn.bias.detach().double()
    w = w.to(conv_w.dtype)
    if w.dim() == 4 and w.shape[-1] > 1:
        w = w.contiguous(memory_format=torch.channels_last)  # oneDNN is faster with it
    return w, b.to(conv_w.dtype)


#: token GEMMs with at most this many rows (a live step: ``B*N`` rows) run as
#: ``W @ x^T`` (output ``[C_out, rows]``, handed back transposed) on CPU in float32: for a
#: short, wide ``x`` that orientation is ~1.2-1.4x faster in MKL than ``x @ W^T`` (and
#: gave the same float32 bits for the models' shapes where measured). Float64 (the
#: bit-exact step vs forward tests), autograd, other devices and a full forward's T*B*N
#: rows keep ``F.linear``. 0 disables.
small_rows: int = 256


def _small(x: Tensor) -> bool:
    return x.shape[0] <= small_rows and x.dtype == torch.float32 and x.is_cpu and not torch.is_grad_enabled()


def _linear(x: Tensor, w: Tensor, b: Optional[Tensor]) -> Tensor:
    """``F.linear(x, w, b)`` for a token matrix ``x`` ``[rows, C_in]``; see :data:`small_rows`
    (the result may then be a transposed view, i.e. channel-major memory)."""
    if _small(x):
        y = torch.mm(w, x.t()) if b is None else torch.addmm(b.unsqueeze(1), w, x.t())
        return y.t()
    return F.linear(x, w, b)


def _hooked(m: nn.Module) -> bool:
    """Whether calling ``m`` would run forward hooks (then it must be called as a module)."""
    return bool(
        m._forward_hooks or m._forward_pre_hooks
        or _module_hooks._global_forward_hooks or _module_hooks._global_forward_pre_hooks
    )


def _bn(bn: nn.Module, x: Tensor) -> Tensor:
    """``bn(x)``; for an eval-mode batch norm without autograd or hooks, the same kernel
    called directly: ``nn.BatchNorm``'s and ``F.batch_norm``'s Python cost about 10 us a
    call, which a live step pays once per batch norm (a full forward once per T steps)."""
    if bn.training or torch.is_grad_enabled() or _hooked(bn) or not isinstance(bn, nn.modules.batchnorm._BatchNorm):
        return bn(x)
    p, b = bn._parameters, bn._buffers  # (attribute access on a module: ~1 us each)
    if b.get("running_mean") is None:
        return bn(x)
    return torch.batch_norm(
        x, p["weight"], p["bias"], b["running_mean"], b["running_var"], False, 0.0, bn.eps, torch.backends.cudnn.enabled
    )


class FusableMixin:
    """Runs ``conv -> BN`` pairs, optionally with the batch norm folded into the conv."""

    _fused: Optional[dict]
    #: training: each conv's ``BN -> LIF`` as one node keeping only the conv's output
    #: (:mod:`~dvsstream.models.bn_lif`; less memory, more time); see :func:`set_recompute`
    recompute: bool = False
    #: when a dict (set by :func:`dvsstream.models.energy.energy_report`), every conv call
    #: adds ``[calls, input nonzeros, input elements, MACs]`` under the conv's name
    _meter: Optional[dict] = None

    def _cbn(self, conv_name: str, bn_name: str, x: Tensor) -> Tensor:
        if self._meter is not None:
            out = self._cbn_impl(conv_name, bn_name, x)
            conv = getattr(self, conv_name)
            k = conv.weight[0].numel()  # C_in/groups * kernel area
            rec = self._meter.setdefault(conv_name, [0, 0, 0, 0])
            rec[0] += 1
            rec[1] += int((x != 0).sum().item())
            rec[2] += x.numel()
            rec[3] += out.numel() * k
            return out
        return self._cbn_impl(conv_name, bn_name, x)

    def _cbn_impl(self, conv_name: str, bn_name: str, x: Tensor) -> Tensor:
        mods = self._modules  # type: ignore[attr-defined]  # (getattr on a module: ~1 us)
        conv = mods[conv_name]
        bn = mods[bn_name]
        fused = self._fused.get(conv_name) if (self._fused and not bn.training) else None
        pointwise = not isinstance(conv, nn.Conv2d) or conv.kernel_size == (1, 1)
        if pointwise and x.dim() == 2:
            # token stream [M, C_in]: a k=1 conv is a linear map
            if fused is not None:
                return _linear(x, fused[0].flatten(1), fused[1])
            if _small(x):  # batch norm over [1, C, rows]: contiguous, same values
                w, b = conv.weight.flatten(1), conv.bias
                y = torch.mm(w, x.t()) if b is None else torch.addmm(b.unsqueeze(1), w, x.t())
                return _bn(bn, y.unsqueeze(0))[0].t()
            return _bn(bn, self._conv(conv_name, x))
        if fused is not None:
            return F.conv2d(x, fused[0], fused[1], conv.stride, conv.padding, conv.dilation, conv.groups)
        if (
            x.dtype == torch.float32 and x.is_cpu and not torch.is_grad_enabled()
            and isinstance(conv, nn.Conv2d) and conv.padding_mode == "zeros" and not _hooked(conv)
        ):
            # inference: the weight in channels_last, as the folded one (faster, same values)
            w = self._cl_weight(conv_name, conv.weight)
            return _bn(bn, F.conv2d(x, w, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups))
        return _bn(bn, conv(x))

    def _conv(self, conv_name: str, x: Tensor) -> Tensor:
        """The conv alone, as training runs it: a token stream ``[M, C_in]`` through a
        ``k=1`` conv as one linear map, a map through the module."""
        conv = self._modules[conv_name]  # type: ignore[attr-defined]
        if x.dim() == 2 and (not isinstance(conv, nn.Conv2d) or conv.kernel_size == (1, 1)):
            return F.linear(x, conv.weight.flatten(1), conv.bias)
        return conv(x)

    def _cbn_lif(self, conv_name: str, bn_name: str, lif: LIF, x: Tensor, lead: tuple[int, ...]) -> Tensor:
        """``lif(y.view(*lead, *y.shape[1:]))`` with ``y = self._cbn(conv_name, bn_name, x)``:
        ``lead`` splits the rows, ``(T, B)`` for maps ``[T*B, C, H, W]``, ``(T, B, N)`` for
        tokens ``[T*B*N, C]``. Training with :attr:`recompute` keeps only the conv's output
        for the batch norm and the LIF together (:func:`~dvsstream.models.bn_lif.bn_lif`)."""
        bn = self._modules[bn_name]  # type: ignore[attr-defined]
        if self.recompute and bn.training and torch.is_grad_enabled() and self._meter is None:
            y = self._conv(conv_name, x)
            return bn_lif(bn, lif, y, (*lead, *y.shape[1:]))
        y = self._cbn(conv_name, bn_name, x)
        return lif(y.view(*lead, *y.shape[1:]))

    def _maps_stage(self, conv_name: str, bn_name: str, lif: LIF, pool: Optional[nn.Module], x: Tensor,
                    T: int) -> Tensor:
        """``pool(lif(bn(conv(x))))`` on maps ``[T*B, C, H, W]`` (``pool`` None: none): in
        training through :meth:`_cbn_lif`, otherwise through :func:`_lif_pool` (the LIF
        and the pool in one compiled pass where that applies)."""
        if self.training:
            x = _flat(self._cbn_lif(conv_name, bn_name, lif, x, (T, x.shape[0] // T)))
            return pool(x) if pool is not None else x
        return _lif_pool(lif, pool, self._cbn(conv_name, bn_name, x), T)

    def _cl_weight(self, conv_name: str, w: Tensor) -> Tensor:
        """A channels_last copy of a conv weight, rebuilt when the weight changes."""
        if w.is_contiguous(memory_format=torch.channels_last):
            return w
        cache = self.__dict__.setdefault("_cl_weights", {})
        key = (w.data_ptr(), w._version, w.dtype)
        hit = cache.get(conv_name)
        if hit is None or hit[0] != key:
            hit = cache[conv_name] = (key, w.detach().contiguous(memory_format=torch.channels_last))
        return hit[1]

    def fuse_pairs(self) -> list[tuple[str, str]]:
        """``(conv, bn)`` attribute pairs: by default every ``X_conv`` with an ``X_bn``."""
        names = dict(self.named_children())  # type: ignore[attr-defined]
        return [
            (n, n[: -len("_conv")] + "_bn")
            for n, m in names.items()
            if isinstance(m, (nn.Conv1d, nn.Conv2d)) and n.endswith("_conv") and n[: -len("_conv")] + "_bn" in names
        ]


def fuse_bn(model: nn.Module) -> nn.Module:
    """Fold every eval-mode batch norm into its conv for inference (same math up to float
    rounding). Recompute after loading new weights; :func:`unfuse_bn` undoes it."""
    for m in model.modules():
        if isinstance(m, FusableMixin):
            m._fused = {c: _fold(getattr(m, c).weight, getattr(m, c).bias, getattr(m, b)) for c, b in m.fuse_pairs()}
            if isinstance(m, SSA):
                f = m._fused
                m._fused["qkv"] = (
                    torch.cat([f[n][0].flatten(1) for n in ("q_conv", "k_conv", "v_conv")]),
                    torch.cat([f[n][1] for n in ("q_conv", "k_conv", "v_conv")]),
                )
    return model


def set_recompute(model: nn.Module, on: bool) -> nn.Module:
    """Train ``model`` keeping, for each conv's ``BN -> LIF``, only the conv's output and
    recomputing the rest in the backward (``on``), or keeping what autograd keeps. The
    same numbers either way, bit for bit; see :mod:`~dvsstream.models.bn_lif`."""
    for m in model.modules():
        if isinstance(m, FusableMixin):
            m.recompute = bool(on)
    return model


def unfuse_bn(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, FusableMixin):
            m._fused = None
    return model


def _tb(x: Tensor, T: int) -> Tensor:
    """``[T*B, ...]`` -> ``[T, B, ...]`` as a view (works for channels_last too)."""
    return x.view(T, x.shape[0] // T, *x.shape[1:])


def _flat(x: Tensor) -> Tensor:
    """``[T, B, ...]`` -> ``[T*B, ...]`` as a view."""
    y = x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
    if y.dim() == 4 and y.shape[0] == 1 and y.stride(1) == 1 and y.is_contiguous(memory_format=torch.channels_last):
        # a single frame: give the (size-1) batch dim its canonical stride, otherwise
        # max-pool / conv do not recognise channels_last and take a 10x slower path
        C, H, W = y.shape[1:]
        y = y.as_strided(y.shape, (C * H * W, 1, W * C, C))
    return y


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


def _lif_pool(lif: LIF, pool: Optional[nn.Module], x: Tensor, T: int) -> Tensor:
    """``pool(lif(x))`` on frames ``x [T*B, C, H, W]`` (``pool`` None: the LIF alone). A
    :class:`MaxPool3s2` runs inside the LIF's compiled pass where that applies
    (:meth:`LIF.forward_maxpool`: inference on CPU, channels_last): the same values
    without writing the full-resolution spikes."""
    if pool is not None and type(pool) is MaxPool3s2 and not (_hooked(lif) or _hooked(pool)):
        y = lif.forward_maxpool(_tb(x, T))
        if y is not None:
            return _flat(y)
    x = _flat(lif(_tb(x, T)))
    return pool(x) if pool is not None else x


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


class SSA(FusableMixin, nn.Module):
    """Spiking self-attention (Spikformer). In / out: ``[T, B, N, C]``.

    ``q, k, v = LIF(BN(Conv1d_k1(x)))``; per head ``y = (q k^T) v * scale``;
    ``LIF(th=attn_threshold)``; ``LIF(BN(Conv1d_k1 with bias))``. No softmax, so
    ``(q k^T) v == q (k^T v)`` exactly (integer sums in float): the cheaper order is used
    (``matmul_order="auto"``) unless attention is being tapped.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        scale: float = 0.25,
        attn_threshold: float = 0.5,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        grid: tuple[int, int] = (8, 8),
        matmul_order: str = "auto",
        spike_driven: bool = False,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        if matmul_order not in ("auto", "nn", "dd"):
            raise ValueError(f"matmul_order must be 'auto', 'nn' or 'dd', got {matmul_order!r}")
        self._fused = None
        self.dim, self.heads, self.scale = dim, heads, scale
        self.grid = grid
        self.matmul_order = matmul_order
        self.spike_driven = spike_driven  # Spikingformer: LIF first, no LIF after proj
        lif = lambda th=v_threshold: LIF(tau, th, inplace=True)  # noqa: E731
        if spike_driven:
            self.proj_lif = LIF(tau, v_threshold, inplace=False)  # input is the residual stream
        for n in "qkv":
            setattr(self, f"{n}_conv", nn.Conv1d(dim, dim, 1, bias=False))
            setattr(self, f"{n}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{n}_lif", lif())
        self.attn_lif = lif(attn_threshold)
        self.proj_conv = nn.Conv1d(dim, dim, 1, bias=True)
        self.proj_bn = nn.BatchNorm1d(dim)
        if not spike_driven:
            self.proj_lif = lif()
        self.tap: Optional[list] = None
        self.last_order: Optional[str] = None

    def fuse_pairs(self) -> list[tuple[str, str]]:
        return [("q_conv", "q_bn"), ("k_conv", "k_bn"), ("v_conv", "v_bn"), ("proj_conv", "proj_bn")]

    def forward(self, x: Tensor) -> Tensor:
        T, B, N, C = x.shape
        h, d = self.heads, C // self.heads
        if self.spike_driven:
            x = self.proj_lif(x)
        xf = x.reshape(T * B * N, C)
        qkv = self._fused.get("qkv") if (self._fused and not self.q_bn.training) else None
        if qkv is not None and self._meter is None:  # one GEMM for q, k and v (folded BNs)
            y = _linear(xf, qkv[0], qkv[1]).view(T, B, N, 3, C)
            q = self.q_lif(y[:, :, :, 0])
            k = self.k_lif(y[:, :, :, 1])
            v = self.v_lif(y[:, :, :, 2])
        elif self._meter is None and self._fused is None and _small(xf) and (w_qkv := self._qkv_weight()) is not None:
            # unfused, few rows (a live step): one GEMM with the three weights stacked
            # (channel-major out, as _cbn's small-row path), then each batch norm
            y = torch.mm(w_qkv, xf.t())  # [3C, rows]
            q = self.q_lif(_bn(self.q_bn, y[:C].unsqueeze(0))[0].t().view(T, B, N, C))
            k = self.k_lif(_bn(self.k_bn, y[C : 2 * C].unsqueeze(0))[0].t().view(T, B, N, C))
            v = self.v_lif(_bn(self.v_bn, y[2 * C :].unsqueeze(0))[0].t().view(T, B, N, C))
        else:
            q = self._cbn_lif("q_conv", "q_bn", self.q_lif, xf, (T, B, N))
            k = self._cbn_lif("k_conv", "k_bn", self.k_lif, xf, (T, B, N))
            v = self._cbn_lif("v_conv", "v_bn", self.v_lif, xf, (T, B, N))
        order = self.matmul_order
        if order == "auto":
            order = "dd" if d < N else "nn"
        if self.tap is not None:
            order = "nn"
        self.last_order = order
        if order == "dd" and T * B == 1 and q.dtype not in (torch.float16, torch.bfloat16) and all(
            t.stride(2) == 1 and t.stride(3) == N for t in (q, k, v)
        ):
            # one frame with q, k, v channel-major ([C, N] in memory: the small-row GEMM's
            # output, see small_rows): per head (q (k^T v))^T = (k^T v)^T q^T as two plain
            # batched products on [h, d, N] views, giving y channel-major too (what the
            # proj GEMM wants) with no copies. Same exact integer sums as below.
            qt, kt, vt = q[0, 0].t().view(h, d, N), k[0, 0].t().view(h, d, N), v[0, 0].t().view(h, d, N)
            y = torch.bmm(torch.bmm(kt, vt.transpose(1, 2)).transpose(1, 2), qt).mul_(self.scale)
            y = y.view(C, N).t().view(T, B, N, C)
        else:
            q = q.view(T, B, N, h, d).transpose(2, 3)
            k = k.view(T, B, N, h, d).transpose(2, 3)
            v = v.view(T, B, N, h, d).transpose(2, 3)
            dtype = q.dtype
            if dtype in (torch.float16, torch.bfloat16):
                # integer sums up to N*d are exact in float32, not in half precision
                q, k, v = q.float(), k.float(), v.float()
            if order == "nn":
                attn = q @ k.transpose(-2, -1)  # [T, B, h, N, N]
                y = attn @ v
                if self.tap is not None:
                    self._record(attn)
            else:
                y = q @ (k.transpose(-2, -1) @ v)  # [T, B, h, N, d]
            y = (y * self.scale).to(dtype)
            y = y.transpose(2, 3).reshape(T, B, N, C)
        y = self.attn_lif(y)
        if self.spike_driven:
            return self._cbn("proj_conv", "proj_bn", y.view(T * B * N, C)).view(T, B, N, C)
        return self._cbn_lif("proj_conv", "proj_bn", self.proj_lif, y.view(T * B * N, C), (T, B, N))

    def _qkv_weight(self) -> Optional[Tensor]:
        """``cat(W_q, W_k, W_v)`` ``[3C, C]`` (None if the convs have biases), rebuilt when
        any of them changes."""
        mods = self._modules
        ps = (mods["q_conv"]._parameters, mods["k_conv"]._parameters, mods["v_conv"]._parameters)
        if any(p.get("bias") is not None for p in ps):
            return None
        ws = tuple(p["weight"] for p in ps)
        key = tuple((w.data_ptr(), w._version, w.dtype) for w in ws)
        cached = self.__dict__.get("_qkv_cat")
        if cached is None or cached[0] != key:
            cached = self.__dict__["_qkv_cat"] = (key, torch.cat([w.detach().flatten(1) for w in ws]))
        return cached[1]

    def _record(self, attn: Tensor) -> None:
        T, B, h, N, _ = attn.shape
        gh, gw = self.grid
        received = attn.sum(dim=-2)  # attention each key token receives, summed over queries
        spatial = received.view(T, B, h, gh, gw) if gh * gw == N else received
        self.tap.append({"attn": attn.detach(), "map": spatial.detach()})  # type: ignore[union-attr]


class MLP(FusableMixin, nn.Module):
    """``LIF(BN(fc1)) -> LIF(BN(fc2))`` with k=1 convs (Spikformer). ``[T, B, N, C]``."""

    def __init__(self, dim: int, hidden: int, tau: float = 2.0, v_threshold: float = 1.0) -> None:
        super().__init__()
        self._fused = None
        self.hidden = hidden
        self.fc1_conv = nn.Conv1d(dim, hidden, 1)
        self.fc1_bn = nn.BatchNorm1d(hidden)
        self.fc1_lif = LIF(tau, v_threshold, inplace=True)
        self.fc2_conv = nn.Conv1d(hidden, dim, 1)
        self.fc2_bn = nn.BatchNorm1d(dim)
        self.fc2_lif = LIF(tau, v_threshold, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        T, B, N, C = x.shape
        x = self._cbn_lif("fc1_conv", "fc1_bn", self.fc1_lif, x.reshape(T * B * N, C), (T, B, N))
        return self._cbn_lif("fc2_conv", "fc2_bn", self.fc2_lif, x.reshape(T * B * N, self.hidden), (T, B, N))


class TokenMixer(nn.Module):
    """Attention-free token mixing (Spikformer with linear transforms): an
    unparameterised transform of the ``[N, C]`` token matrix followed by a LIF.

    * ``"fft"``: real part of the 1-D FFT over tokens;
    * ``"fft2d"``: real part of the 2-D FFT over (tokens, channels);
    * ``"haar"``: one level of the orthonormal 2-D Haar transform over (tokens, channels)
      (N and C must be even).
    """

    def __init__(self, mixer: str, num_tokens: int, dim: int, tau: float = 2.0, v_threshold: float = 1.0) -> None:
        super().__init__()
        if mixer not in ("fft", "fft2d", "haar"):
            raise ValueError(f"mixer must be 'fft', 'fft2d' or 'haar', got {mixer!r}")
        self.mixer = mixer
        if mixer == "haar":
            if num_tokens % 2 or dim % 2:
                raise ValueError(f"haar mixing needs an even token count and dim, got N={num_tokens}, C={dim}")
            self.register_buffer("haar_n", _haar_matrix(num_tokens), persistent=False)
            self.register_buffer("haar_c", _haar_matrix(dim), persistent=False)
        self.mix_lif = LIF(tau, v_threshold, inplace=True)
        self.tap: Optional[list] = None

    _meter: Optional[dict] = None

    def forward(self, x: Tensor) -> Tensor:
        if self._meter is not None:
            T, B, N, C = x.shape
            per_row = {"fft": N * max(1.0, math.log2(N)), "fft2d": N * C * max(1.0, math.log2(N * C)) / N, "haar": 2 * (N + C) / 2}
            rec = self._meter.setdefault("mixer", [0, 0, 0, 0])
            rec[0] += 1
            rec[1] += int((x != 0).sum().item())
            rec[2] += x.numel()
            # approximate additions of the fast transform: ~N log2 N per column (FFT),
            # 2 per element per dimension (one-level Haar)
            rec[3] += int(T * B * C * per_row[self.mixer]) if self.mixer != "haar" else int(2 * x.numel())
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # no half FFT on CPU
        if self.mixer == "fft":
            y = torch.fft.fft(xf, dim=2).real.to(x.dtype)
        elif self.mixer == "fft2d":
            y = torch.fft.fft2(xf, dim=(2, 3)).real.to(x.dtype)
        else:
            hn = self.haar_n.to(x.dtype)
            hc = self.haar_c.to(x.dtype)
            y = torch.matmul(torch.matmul(hn, x), hc.t())
        return self.mix_lif(y.contiguous())


def _haar_matrix(n: int) -> Tensor:
    """Orthonormal one-level Haar analysis matrix ``[n, n]``: first n/2 rows average pairs,
    last n/2 rows difference them, both scaled by 1/sqrt(2)."""
    m = torch.zeros(n, n, dtype=torch.float64)
    s = 1.0 / math.sqrt(2.0)
    for i in range(n // 2):
        m[i, 2 * i] = s
        m[i, 2 * i + 1] = s
        m[n // 2 + i, 2 * i] = s
        m[n // 2 + i, 2 * i + 1] = -s
    return m.float()


class Block(nn.Module):
    """Spikformer encoder block: ``x = x + attn(x); x = x + mlp(x)`` (attn: SSA or a mixer)."""

    def __init__(self, attn: nn.Module, mlp: nn.Module) -> None:
        super().__init__()
        self.attn = attn
        self.mlp = mlp

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        x = x + self.mlp(x)
        return x


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


class SpikingMLP(FusableMixin, nn.Module):
    """Spikingformer MLP: ``LIF -> fc -> BN -> LIF -> fc -> BN`` (real-valued output)."""

    def __init__(self, dim: int, hidden: int, tau: float = 1.5, v_threshold: float = 1.0) -> None:
        super().__init__()
        self._fused = None
        self.hidden = hidden
        self.mlp1_lif = LIF(tau, v_threshold, inplace=False)
        self.mlp1_conv = nn.Conv1d(dim, hidden, 1)
        self.mlp1_bn = nn.BatchNorm1d(hidden)
        self.mlp2_lif = LIF(tau, v_threshold, inplace=True)
        self.mlp2_conv = nn.Conv1d(hidden, dim, 1)
        self.mlp2_bn = nn.BatchNorm1d(dim)

    def fuse_pairs(self) -> list[tuple[str, str]]:
        return [("mlp1_conv", "mlp1_bn"), ("mlp2_conv", "mlp2_bn")]

    def forward(self, x: Tensor) -> Tensor:
        T, B, N, C = x.shape
        x = self.mlp1_lif(x)
        x = self._cbn("mlp1_conv", "mlp1_bn", x.reshape(T * B * N, C)).view(T, B, N, self.hidden)
        x = self.mlp2_lif(x)
        return self._cbn("mlp2_conv", "mlp2_bn", x.reshape(T * B * N, self.hidden)).view(T, B, N, C)


SpikingBlock = Block
SpikingSSA = SSA
