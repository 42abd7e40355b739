"""Conv -> batch norm (-> LIF -> pool) stages, the one way every block of the Spikformer
family runs its convolutions, and batch-norm folding for inference.

:class:`FusableMixin` runs each ``conv -> BN`` pair (:meth:`FusableMixin._cbn`): in eval
mode with the batch norm folded into the conv where :func:`fuse_bn` stored folded weights,
a token stream ``[M, C_in]`` through a ``k=1`` conv as one GEMM, and a few rows (a live
step) through the faster ``W @ x^T`` orientation (:data:`small_rows`). In training,
:func:`set_recompute` makes each ``BN -> LIF`` one node that keeps only the conv's output
(:mod:`~dvsstream.models.bn_lif`). Maps are ``[T*B, C, H, W]`` (channels_last),
:func:`_tb` / :func:`_flat` view them as ``[T, B, C, H, W]`` and back.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dvsstream.models.bn_lif import bn_lif
from dvsstream.models.hooks import hooked
from dvsstream.models.neurons import LIF
from dvsstream.models.pooling import MaxPool3s2

__all__ = ["FusableMixin", "fuse_bn", "set_recompute", "small_rows", "unfuse_bn"]


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


def _bn(bn: nn.Module, x: Tensor) -> Tensor:
    """``bn(x)``; for an eval-mode batch norm without autograd or hooks, the same kernel
    called directly: ``nn.BatchNorm``'s and ``F.batch_norm``'s Python cost about 10 us a
    call, which a live step pays once per batch norm (a full forward once per T steps)."""
    if bn.training or torch.is_grad_enabled() or hooked(bn) or not isinstance(bn, nn.modules.batchnorm._BatchNorm):
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
            and isinstance(conv, nn.Conv2d) and conv.padding_mode == "zeros" and not hooked(conv)
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

    def folded(self) -> dict[str, tuple[Tensor, Tensor]]:
        """``{conv name: (weight, bias)}``: each of :meth:`fuse_pairs`' convs with its
        batch norm folded in (what :func:`fuse_bn` stores for :meth:`_cbn`)."""
        return {c: _fold(getattr(self, c).weight, getattr(self, c).bias, getattr(self, b)) for c, b in self.fuse_pairs()}

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
            m._fused = m.folded()
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
    """Undo :func:`fuse_bn`: every batch norm runs as its own module again."""
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


def _lif_pool(lif: LIF, pool: Optional[nn.Module], x: Tensor, T: int) -> Tensor:
    """``pool(lif(x))`` on frames ``x [T*B, C, H, W]`` (``pool`` None: the LIF alone). A
    :class:`MaxPool3s2` runs inside the LIF's compiled pass where that applies
    (:meth:`LIF.forward_maxpool`: inference on CPU, channels_last): the same values
    without writing the full-resolution spikes."""
    if pool is not None and type(pool) is MaxPool3s2 and not (hooked(lif) or hooked(pool)):
        y = lif.forward_maxpool(_tb(x, T))
        if y is not None:
            return _flat(y)
    x = _flat(lif(_tb(x, T)))
    return pool(x) if pool is not None else x
