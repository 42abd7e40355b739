"""The compiled kernels of the LIF neurons (:mod:`~dvsstream.models.neurons`) on CPU, and
the glue that hands torch tensors to them and to the generated CUDA kernels
(:mod:`~dvsstream.models.lif_compiled`).

The Numba kernels run the recurrence of :mod:`~dvsstream.models.neurons` over arrays
``[T, M]`` (time first, ``M`` the elements of one step), chunk by chunk of elements:

* :func:`_lif_fwd_kernel`: the training forward, saving the surrogate's argument
  ``u = alpha * (h - th)``; :func:`_lif_bwd_kernel`: its backward;
* :func:`_lif_inf_kernel`: inference (no autograd), in place or not;
* :func:`lif_pool_kernel`: inference followed by a 3x3, stride-2 max pool, channels last.

Their operations are the torch path's, per element and in the same order: the same bits.
The wrappers (:func:`forward_cpu`, :func:`backward_cpu`, :func:`inference_cpu`,
:func:`forward_compiled`, :func:`backward_compiled`) take tensors ``[T, ...]`` in any
dense layout (contiguous, channels_last, ...): they permute them so that memory order is
time first then the rest, run the kernel on that ``[T, M]`` view and return results in
the input's dim order.
"""

from __future__ import annotations

from typing import Optional

import numba as nb
import numpy as np
import torch
from torch import Tensor

__all__ = [
    "backward_compiled",
    "backward_cpu",
    "forward_compiled",
    "forward_cpu",
    "frames_last",
    "inference_cpu",
    "kernel_ok",
    "lif_pool_kernel",
]

# ----------------------------------------------------------------------------- CPU kernels
# One thread each, on purpose: numba's parallel (OpenMP) layer aborts a forked child that
# runs a parallel kernel after its parent did (DataLoader workers, which bin with numba,
# are forked every epoch while training runs these kernels in the parent). The kernels
# stream memory once; a fork-safe parallel layer (TBB) would be the way to add threads.
#: elements per chunk of the CPU kernels (a chunk's state stays in L1 over the T steps)
_CHUNK = 2048


@nb.njit(cache=True, nogil=True)
def _lif_fwd_kernel(x, v, u, s, tau, th, alpha):  # pragma: no cover - compiled
    """``x, u, s [T, M]``, ``v [M]`` (updated in place), scalars in x's dtype: the charge
    ``h = v + (x - v) / tau`` (a true division, as the reference), ``s = h >= th``,
    ``v = 0 where s else h``, and the surrogate's argument ``u = alpha * (h - th)`` (what
    the backward needs; ``u < 0`` exactly when ``h < th``). Chunk by chunk of
    elements; a chunk's potentials stay in a local buffer over the T steps (local
    slices let the loops vectorise)."""
    T, M = x.shape
    one = tau / tau  # 1 and 0 in the arrays' dtype: selects, not branches (vectorised)
    zero = one - one
    vc = np.empty(_CHUNK, x.dtype)
    for c in range((M + _CHUNK - 1) // _CHUNK):
        lo = c * _CHUNK
        hi = min(lo + _CHUNK, M)
        n = hi - lo
        vc[:n] = v[lo:hi]
        for t in range(T):
            xt = x[t, lo:hi]
            ut = u[t, lo:hi]
            st = s[t, lo:hi]
            for j in range(n):
                vj = vc[j]
                hh = vj + (xt[j] - vj) / tau
                ut[j] = alpha * (hh - th)
                fire = hh >= th
                st[j] = one if fire else zero
                vc[j] = zero if fire else hh
        v[lo:hi] = vc[:n]


@nb.njit(cache=True, nogil=True)
def _lif_inf_kernel(x, v, s, tau, th):  # pragma: no cover - compiled
    """:func:`_lif_fwd_kernel` without the saved argument; ``s`` may be ``x`` itself.

    ``x, s [T, M]``, ``v [M]`` (updated in place). Branch-free (selects), so that the
    element loop vectorises. In place (``s`` is ``x``) the spikes of a step go to a chunk
    buffer first and are copied over ``x`` after: a loop that reads and writes the same
    array fails LLVM's overlap check and runs scalar, branching on every spike (~7x
    slower at realistic firing rates)."""
    T, M = x.shape
    one = tau / tau  # 1 and 0 in the arrays' dtype
    zero = one - one
    in_place = s.ctypes.data == x.ctypes.data
    vc = np.empty(_CHUNK, x.dtype)
    sb = np.empty(_CHUNK, x.dtype)
    for c in range((M + _CHUNK - 1) // _CHUNK):
        lo = c * _CHUNK
        hi = min(lo + _CHUNK, M)
        n = hi - lo
        vc[:n] = v[lo:hi]
        for t in range(T):
            xt = x[t, lo:hi]
            st = s[t, lo:hi]
            out = sb if in_place else st
            for j in range(n):
                vj = vc[j]
                hh = vj + (xt[j] - vj) / tau
                fire = hh >= th
                vc[j] = zero if fire else hh
                out[j] = one if fire else zero
            if in_place:
                for j in range(n):
                    st[j] = sb[j]
        v[lo:hi] = vc[:n]


@nb.njit(inline="always")
def _mx(p, q):  # pragma: no cover - compiled
    """max of two spikes as a select (vectorises; exact on 0 / 1)."""
    return q if q > p else p


@nb.njit(inline="always")
def _lif_row(xr, vr, sr, tau, th, one, zero):  # pragma: no cover - compiled
    """One step of :func:`_lif_inf_kernel`'s recurrence on one row: ``xr`` in, ``vr``
    updated, spikes into ``sr`` (all ``[W*C]``, distinct arrays)."""
    for e in range(xr.shape[0]):
        vj = vr[e]
        hh = vj + (xr[e] - vj) / tau
        fire = hh >= th
        vr[e] = zero if fire else hh
        sr[e] = one if fire else zero


@nb.njit(inline="always")
def _max2(a, b, out):  # pragma: no cover - compiled
    """``out = max(a, b)`` elementwise (1-D, the same length)."""
    for e in range(out.shape[0]):
        out[e] = _mx(a[e], b[e])


@nb.njit(inline="always")
def _max3(a, b, c, out):  # pragma: no cover - compiled
    """``out = max(a, b, c)`` elementwise (1-D, the same length)."""
    for e in range(out.shape[0]):
        out[e] = _mx(_mx(a[e], b[e]), c[e])


@nb.njit(inline="always")
def _rowmax(s0, s1, p, m, odd, first):  # pragma: no cover - compiled
    """``m`` = max of a pooling window's rows: ``s0`` (row 2i), ``s1`` (row 2i+1, when
    ``odd``: it exists) and ``p`` (row 2i-1, unless ``first``), all ``[W*C]``."""
    if odd and not first:
        _max3(p, s0, s1, m)
    elif odd:
        _max2(s0, s1, m)
    elif not first:
        _max2(p, s0, m)
    else:
        m[:] = s0


@nb.njit(inline="always")
def _colmax(m, o, C, W, Wo):  # pragma: no cover - compiled
    """``o[j] = max(m[2j-1], m[2j], m[2j+1])`` over the columns that exist, ``m`` a row
    ``[W*C]`` and ``o`` ``[Wo*C]`` (channels innermost; a column is C values)."""
    m2 = m.reshape(W, C)
    o2 = o.reshape(Wo, C)
    if W > 1:
        _max2(m2[0], m2[1], o2[0])
    else:
        o2[0] = m2[0]
    mid = Wo if W % 2 == 0 else Wo - 1  # columns 1..mid-1 have both neighbours
    for j in range(1, mid):
        _max3(m2[2 * j - 1], m2[2 * j], m2[2 * j + 1], o2[j])
    if mid < Wo and Wo > 1:
        _max2(m2[2 * mid - 1], m2[2 * mid], o2[mid])


@nb.njit(cache=True, nogil=True)
def lif_pool_kernel(x, v, out, C, tau, th):  # pragma: no cover - compiled
    """LIF (:func:`_lif_inf_kernel`'s operations) then a 3x3, stride-2, padding-1 max
    pool of the spikes, channels last: ``x [T, B, H, W*C]`` in, ``v [B, H, W*C]``
    updated in place, ``out [T, B, Ho, Wo*C]`` the pooled spikes. Output row by output
    row, all T steps of its input rows 2i and 2i+1 (row 2i-1's spikes are kept from the
    previous output row), so the full-resolution spikes are never written."""
    T, B, H, WC = x.shape
    W = WC // C
    Ho = out.shape[2]
    Wo = out.shape[3] // C
    one = tau / tau  # 1 and 0 in the arrays' dtype
    zero = one - one
    odd_rows = np.empty((2, T, WC), x.dtype)  # spikes of row 2i+1, alternating with i
    s0 = np.empty(WC, x.dtype)
    m = np.empty(WC, x.dtype)
    for b in range(B):
        for i in range(Ho):
            r = 2 * i
            odd = r + 1 < H
            for t in range(T):
                _lif_row(x[t, b, r], v[b, r], s0, tau, th, one, zero)
                s1 = odd_rows[i % 2, t]
                if odd:
                    _lif_row(x[t, b, r + 1], v[b, r + 1], s1, tau, th, one, zero)
                _rowmax(s0, s1, odd_rows[(i + 1) % 2, t], m, odd, i == 0)
                _colmax(m, out[t, b, i], C, W, Wo)


@nb.njit(cache=True, nogil=True)
def _lif_bwd_kernel(u, sg, gs, gv, gx, tau, alpha):  # pragma: no cover - compiled
    """Reverse recurrence of :class:`~dvsstream.models.neurons.LIFMultiStep` (detached
    reset) over ``[T, M]`` arrays: ``u`` the surrogate's argument, ``sg = sigmoid(u)``, ``gs`` the spikes'
    gradient, ``gx`` the input's (written). ``gv [M]`` holds the gradient of ``v_last``
    on entry and of the initial ``v`` on exit."""
    T, M = u.shape
    one = tau / tau  # 1 and 0 in the arrays' dtype (a float64 literal would promote float32)
    zero = one - one
    gc = np.empty(_CHUNK, u.dtype)
    for c in range((M + _CHUNK - 1) // _CHUNK):
        lo = c * _CHUNK
        hi = min(lo + _CHUNK, M)
        n = hi - lo
        gc[:n] = gv[lo:hi]
        for t in range(T - 1, -1, -1):
            ut = u[t, lo:hi]
            sgt = sg[t, lo:hi]
            gst = gs[t, lo:hi]
            gxt = gx[t, lo:hi]
            for j in range(n):
                sj = sgt[j]
                surr = alpha * sj * (one - sj)
                gh = gst[j] * surr + (gc[j] if ut[j] < zero else zero)
                g = gh / tau
                gxt[j] = g
                gc[j] = gh - g
        gv[lo:hi] = gc[:n]


# ----------------------------------------------------------------------------- tensors in, tensors out
def kernel_ok(x: Tensor) -> bool:
    """Whether the compiled CPU kernels take ``x`` (CPU, float32 / float64, T >= 1)."""
    return x.is_cpu and x.dtype in (torch.float32, torch.float64) and x.dim() >= 2 and x.shape[0] > 0 and x[0].numel() > 0



def _order(x: Tensor) -> tuple[list[int], list[int]]:
    """A permutation of ``x``'s dims (time first) under which a dense ``x`` (contiguous,
    channels_last, ...) is contiguous, and its inverse."""
    st = x.stride()
    inner = sorted(range(1, x.dim()), key=lambda d: (-st[d], d))
    perm = [0] + inner
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return perm, inv


def _flat(t: Tensor, perm: list[int]) -> Tensor:
    """``t`` ``[T, ...]`` permuted by ``perm`` as a contiguous ``[T, M]`` tensor (a view
    when ``t`` already has that layout)."""
    return t.detach().permute(perm).contiguous().view(t.shape[0], -1)


def _as_2d(t: Tensor, perm: list[int]) -> np.ndarray:
    """:func:`_flat` as the NumPy array the compiled kernels take."""
    return _flat(t, perm).numpy()


def _flat_state(v: Optional[Tensor], perm: list[int], like: Tensor) -> Tensor:
    """A fresh contiguous ``[M]`` copy of ``v`` (shaped like ``like[0]``) in ``perm``'s
    order, in ``like``'s dtype and device (zeros when None): the kernels update it."""
    if v is None:
        return torch.zeros(like[0].numel(), dtype=like.dtype, device=like.device)
    sub = [p - 1 for p in perm[1:]]
    return v.detach().permute(sub).to(like.dtype).clone(memory_format=torch.contiguous_format).view(-1)


def _unflat(t: Tensor, shape_p: tuple, inv: list[int]) -> Tensor:
    """A ``[T, M]`` tensor (or a state ``[M]``) in the permuted order back in the
    original dim order (a view)."""
    if t.dim() == 1:
        return t.view(shape_p[1:]).permute([i - 1 for i in inv[1:]])
    return t.view(shape_p).permute(inv)


def _like(shape_p: tuple, inv: list[int], dtype: torch.dtype) -> Tensor:
    """An empty tensor, contiguous in the permuted order, returned in the original dim order."""
    return torch.empty(shape_p, dtype=dtype).permute(inv)


def forward_cpu(x: Tensor, v: Optional[Tensor], tau: float, v_threshold: float,
                alpha: float) -> tuple[Tensor, Tensor, Tensor]:
    """Forward of :class:`~dvsstream.models.neurons.LIFMultiStep` in one compiled pass:
    ``(s, v_last, u)`` with ``u = alpha * (h - v_threshold)``."""
    perm, inv = _order(x)
    shape_p = tuple(x.shape[p] for p in perm)
    xa = _as_2d(x, perm)
    s, h = _like(shape_p, inv, x.dtype), _like(shape_p, inv, x.dtype)
    v_p = _flat_state(v, perm, x)
    typ = xa.dtype.type
    _lif_fwd_kernel(xa, v_p.numpy(), _as_2d(h, perm), _as_2d(s, perm), typ(tau), typ(v_threshold), typ(alpha))
    return s, _unflat(v_p, shape_p, inv), h


def backward_cpu(u: Tensor, g_s: Tensor, g_v_last: Optional[Tensor], tau: float, alpha: float) -> tuple[Tensor, Tensor]:
    """Backward of :class:`~dvsstream.models.neurons.LIFMultiStep` (detached reset) from
    ``u = alpha * (h - th)``: torch's vectorised sigmoid of ``u`` (the surrogate's own
    function), then one compiled pass for the rest. Returns ``(g_x, g_v_initial)``."""
    perm, inv = _order(u)
    shape_p = tuple(u.shape[p] for p in perm)
    g_v = _flat_state(g_v_last, perm, u)
    g_x = _like(shape_p, inv, u.dtype)
    sg = torch.sigmoid(u)
    typ = np.float32 if u.dtype == torch.float32 else np.float64
    _lif_bwd_kernel(_as_2d(u, perm), _as_2d(sg, perm), _as_2d(g_s.to(u.dtype), perm), g_v.numpy(),
                    _as_2d(g_x, perm), typ(tau), typ(alpha))
    return g_x, _unflat(g_v, shape_p, inv)


def inference_cpu(x: Tensor, v: Optional[Tensor], tau: float, v_threshold: float,
                  inplace: bool) -> tuple[Tensor, Tensor]:
    """:func:`~dvsstream.models.neurons.lif_multistep_inference` in one compiled pass (the
    same operations per element, so the same bits). ``v`` is updated in place when given."""
    perm, inv = _order(x)
    shape_p = tuple(x.shape[p] for p in perm)
    xp = x.permute(perm)
    if inplace and not xp.is_contiguous():
        inplace = False
    xa = _as_2d(x, perm)
    s = x if inplace else _like(shape_p, inv, x.dtype)
    sub = [p - 1 for p in perm[1:]]
    v_p = torch.zeros(shape_p[1:], dtype=x.dtype) if v is None else v.permute(sub)
    v_k = v_p if v_p.is_contiguous() and v_p.dtype == x.dtype else v_p.contiguous().to(x.dtype)
    typ = xa.dtype.type
    _lif_inf_kernel(xa, v_k.view(-1).numpy(), xa if inplace else _as_2d(s, perm), typ(tau), typ(v_threshold))
    if v is None:
        v = v_k.permute([i - 1 for i in inv[1:]])
    elif v_k is not v_p:
        v.copy_(v_k.permute([i - 1 for i in inv[1:]]))
    return s, v


def frames_last(x: Tensor) -> bool:
    """Whether ``x [T, B, C, H, W]`` lies in memory as ``[T, B, H, W, C]`` (channels_last
    frames, e.g. a channels_last ``[T*B, C, H, W]`` convolution output viewed per step)."""
    return x.dim() == 5 and x.permute(0, 1, 3, 4, 2).is_contiguous()


def forward_compiled(x: Tensor, v: Optional[Tensor], tau: float, v_threshold: float,
                     alpha: float) -> tuple[Tensor, Tensor, Tensor]:
    """Forward of :class:`~dvsstream.models.neurons.LIFMultiStep` by the generated kernel:
    ``(s, v_last, u)``, in ``x``'s layout."""
    from dvsstream.models.lif_compiled import lif_forward

    perm, inv = _order(x)
    shape_p = tuple(x.shape[p] for p in perm)
    s, v_last, u = lif_forward(_flat(x, perm), _flat_state(v, perm, x), tau, v_threshold, alpha)
    return _unflat(s, shape_p, inv), _unflat(v_last, shape_p, inv), _unflat(u, shape_p, inv)


def backward_compiled(u: Tensor, g_s: Tensor, g_v_last: Optional[Tensor], tau: float,
                      alpha: float) -> tuple[Tensor, Tensor]:
    """Backward of :class:`~dvsstream.models.neurons.LIFMultiStep` by the generated
    kernel: ``(g_x, g_v_initial)``."""
    from dvsstream.models.lif_compiled import lif_backward

    perm, inv = _order(u)
    shape_p = tuple(u.shape[p] for p in perm)
    g_x, g_v = lif_backward(_flat(u, perm), _flat(g_s.to(u.dtype), perm), _flat_state(g_v_last, perm, u), tau, alpha)
    return _unflat(g_x, shape_p, inv), _unflat(g_v, shape_p, inv)

