"""The Spikformer family's max pool, ``MaxPool2d(3, stride=2, padding=1)``, for training
and inference.

Training saves far less than torch's pool: :class:`MaxPool3s2Function` keeps one byte per
output value (which of the 3x3 window's cells won, 0..8 in raster order) where
``torch.max_pool2d`` keeps its whole input (float) and an int64 index per output: with
four inputs per output in float32, 1 byte instead of 24. Values and the winner on ties
(the first maximum in the window's raster order, NaN wins) are torch's own: the forward
is torch's pool, its int64 indices turned into the codes. The gradient on CPU float32 /
float64 is one compiled pass (numba, one thread, see :mod:`dvsstream.models.lif_kernels`)
summing a cell's windows from 0 in output raster order, as torch's CPU kernel does: bit
for bit its result. Elsewhere (CUDA, half precision) the codes become indices again for
torch's own backward kernel.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["MaxPool3s2", "MaxPool3s2Function", "maxpool3s2"]


@nb.njit(cache=True, nogil=True)
def _codes_kernel(idx, code, W):  # pragma: no cover - compiled
    """torch's pool indices ``idx [N, Ho, Wo, C]`` (int64, ``r * W + c`` in the input
    plane) as window cells ``code`` (uint8, same shape): ``3 * dr + dc`` with
    ``r = 2i - 1 + dr``, ``c = 2j - 1 + dc`` for output ``(i, j)``. For ``W >= 3`` the
    offset from the window's first cell, ``dr * W + dc``, splits by comparisons (branch-
    free, vectorised); narrower maps divide."""
    N, Ho, Wo, C = idx.shape
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                ix = idx[n, i, j]
                co = code[n, i, j]
                if W >= 3:
                    base = (2 * i - 1) * W + 2 * j - 1  # the window's (maybe padded) first cell
                    for e in range(C):
                        d = ix[e] - base
                        dr = (d >= W) + (d >= 2 * W)
                        co[e] = np.uint8(3 * dr + d - dr * W)
                else:
                    for e in range(C):
                        r = ix[e] // W
                        co[e] = np.uint8(3 * (r - 2 * i + 1) + ix[e] - r * W - 2 * j + 1)


@nb.njit(cache=True, nogil=True)
def _pool_bwd_kernel(g_out, code, g_in, zero):  # pragma: no cover - compiled
    """``g_in [N, H, W, C]`` (every value written) from ``g_out`` and ``code``
    ``[N, Ho, Wo, C]``: each input cell sums, from ``zero`` (0 in the arrays' dtype) and
    in output raster order, the gradients of the (at most four) windows it won. Adding
    ``zero`` for a window it lost changes no bit, and keeps the loop branch-free."""
    N, H, W, C = g_in.shape
    Ho, Wo = g_out.shape[1], g_out.shape[2]
    acc = np.empty(C, g_in.dtype)
    cd = np.empty(C, np.int32)  # a window's codes, widened (vectorises, as in the forward)
    for n in range(N):
        for r in range(H):
            i_lo, i_hi = r // 2, min((r + 1) // 2, Ho - 1)  # the windows holding row r
            for c in range(W):
                j_lo, j_hi = c // 2, min((c + 1) // 2, Wo - 1)
                for e in range(C):
                    acc[e] = zero
                for i in range(i_lo, i_hi + 1):
                    for j in range(j_lo, j_hi + 1):
                        k = np.int32(3 * (r - 2 * i + 1) + c - 2 * j + 1)  # this cell in window (i, j)
                        gv = g_out[n, i, j]
                        co = code[n, i, j]
                        for e in range(C):
                            cd[e] = co[e]
                        for e in range(C):
                            acc[e] += gv[e] if cd[e] == k else zero
                gi = g_in[n, r, c]
                for e in range(C):
                    gi[e] = acc[e]


def _nhwc(t: Tensor) -> np.ndarray:
    """``[N, C, H, W]`` as an ``[N, H, W, C]`` array view (contiguous for channels_last)."""
    return t.detach().permute(0, 2, 3, 1).numpy()


def _format(x: Tensor) -> torch.memory_format:
    """channels_last when ``x`` is laid out so, else the default (contiguous) format."""
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def _kernel_ok(t: Tensor) -> bool:
    """Whether the compiled passes take ``t`` (CPU float32 / float64, or torch's indices)."""
    return t.is_cpu and t.dtype in (torch.float32, torch.float64, torch.int64)


def _window_rows_cols(shape: torch.Size, device: torch.device) -> tuple[Tensor, Tensor]:
    """The first row ``2i - 1`` ``[Ho, 1]`` and first column ``2j - 1`` ``[Wo]`` of each
    output's (possibly padded) window."""
    Ho, Wo = shape[-2:]
    return 2 * torch.arange(Ho, device=device).unsqueeze(1) - 1, 2 * torch.arange(Wo, device=device) - 1


def _codes_torch(idx: Tensor, W: int) -> Tensor:
    """:func:`_codes_kernel` in torch operations (any device): ``3 * dr + dc``."""
    r0, c0 = _window_rows_cols(idx.shape, idx.device)
    r = torch.div(idx, W, rounding_mode="floor")
    return (3 * (r - r0) + (idx - r * W - c0)).to(torch.uint8)


def _indices_torch(code: Tensor, W: int) -> Tensor:
    """torch's int64 pool indices back from the codes (the inverse of :func:`_codes_torch`)."""
    r0, c0 = _window_rows_cols(code.shape, code.device)
    dr = torch.div(code.long(), 3, rounding_mode="floor")
    return (r0 + dr) * W + c0 + (code.long() - 3 * dr)


class MaxPool3s2Function(torch.autograd.Function):
    """``max_pool2d(x, 3, 2, 1)`` on ``[N, C, H, W]``, saving only the winners' codes
    (uint8) for the backward. See the module docstring."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        out, idx = torch.ops.aten.max_pool2d_with_indices(x, [3, 3], [2, 2], [1, 1])
        W = x.shape[-1]
        if _kernel_ok(idx):
            code = torch.empty(idx.shape, dtype=torch.uint8, memory_format=_format(idx))
            _codes_kernel(_nhwc(idx), _nhwc(code), W)
        else:
            code = _codes_torch(idx, W)
        del idx
        ctx.save_for_backward(code)
        ctx.in_shape, ctx.fmt = tuple(x.shape), _format(x)
        return out

    @staticmethod
    def backward(ctx, g_out: Tensor) -> Tensor:  # type: ignore[override]
        (code,) = ctx.saved_tensors
        g_in = torch.empty(ctx.in_shape, dtype=g_out.dtype, device=g_out.device, memory_format=ctx.fmt)
        if not _kernel_ok(g_out):  # torch's kernel reads only the shape and layout of g_in here
            idx = _indices_torch(code, ctx.in_shape[-1])
            return torch.ops.aten.max_pool2d_with_indices_backward(g_out, g_in, [3, 3], [2, 2], [1, 1], [1, 1],
                                                                   False, idx)
        g_out = g_out.contiguous(memory_format=_format(code))
        zero = np.zeros(1, dtype=_nhwc(g_out).dtype)[0]  # 0 in the gradient's dtype
        _pool_bwd_kernel(_nhwc(g_out), _nhwc(code), _nhwc(g_in), zero)
        return g_in


def maxpool3s2(x: Tensor) -> Tensor:
    """``max_pool2d(x, 3, 2, 1)`` with autograd for ``[N, C, H, W]``: :class:`MaxPool3s2Function`
    (one byte saved per output); other shapes take torch's pool."""
    if x.dim() == 4 and x.numel() > 0:
        return MaxPool3s2Function.apply(x)
    return torch.max_pool2d(x, 3, 2, 1)


class MaxPool3s2(nn.MaxPool2d):
    """``MaxPool2d(3, stride=2, padding=1)``. Without autograd and for even H, W it runs
    as two separable strided maxima (no index tensor is written): same values, faster.
    A single small map (a live step below full resolution) takes the native kernel,
    which is faster there than the separable form's eight small ops. With autograd it
    is :func:`maxpool3s2` (one byte saved per output)."""

    #: a batch of one with at most this many elements uses the native kernel
    native_numel: int = 1 << 18
    #: training saves the winners' codes (:func:`maxpool3s2`), not torch's input + indices
    save_codes: bool = True

    def __init__(self) -> None:
        super().__init__(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        if torch.is_grad_enabled() and x.requires_grad:
            return maxpool3s2(x) if self.save_codes else super().forward(x)
        if x.dim() != 4 or H % 2 or W % 2 or H < 2 or W < 2 or (x.shape[0] == 1 and x.numel() <= self.native_numel):
            return torch.max_pool2d(x, 3, 2, 1)  # F.max_pool2d minus its Python wrapper
        # rows: out[i] = max(x[2i-1], x[2i], x[2i+1]), the out-of-range row -1 skipped
        a = torch.maximum(x[:, :, 0::2, :], x[:, :, 1::2, :])
        torch.maximum(a[:, :, 1:, :], x[:, :, 1 : H - 1 : 2, :], out=a[:, :, 1:, :])
        o = torch.maximum(a[:, :, :, 0::2], a[:, :, :, 1::2])
        torch.maximum(o[:, :, :, 1:], a[:, :, :, 1 : W - 1 : 2], out=o[:, :, :, 1:])
        return o
