"""The fused multi-step LIF of :class:`~dvsstream.models.neurons.LIFMultiStep` for CUDA:
its forward and its backward each one generated kernel, from the recurrence written
out below in torch operations and compiled by ``torch.compile`` (Inductor; Triton on
CUDA, C++ on a CPU).

The operations are the CPU kernels' (``lif_kernels._lif_fwd_kernel`` and
``_lif_bwd_kernel``), per element and in the same order, with a detached hard reset
and the sigmoid surrogate::

    h = v + (x - v) / tau;  s = h >= th;  v = 0 where s else h;  u = alpha * (h - th)
    sg = sigmoid(u);  g_h = g_s * alpha * sg * (1 - sg) + (g_v where u < 0 else 0)
    g_x = g_h / tau;  g_v = g_h - g_x

The forward saves ``u`` (one tensor the size of ``x``), as the CPU kernel does. Half
precision inputs (autocast) are computed in float32 inside the kernel and stored in the
input's dtype. ``x`` is ``[T, M]`` (contiguous); T is unrolled in the generated code
(one compilation per T), M is a dynamic size (one compilation for every layer).

Compilation takes seconds to a minute on the first call of a process; later calls
reuse it. :func:`available` says whether this torch can compile for a device.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

__all__ = ["available", "lif_forward", "lif_backward"]


def _computed_in(x: Tensor) -> torch.dtype:
    """float32 for half-precision inputs, else their own dtype."""
    return torch.promote_types(x.dtype, torch.float32)


def _forward_eager(x: Tensor, v: Tensor, tau: float, th: float, alpha: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(s [T, M], v_last [M], u [T, M])`` of ``x [T, M]`` from ``v [M]``."""
    spikes, args = [], []
    xf, vf = x.to(_computed_in(x)), v.to(_computed_in(x))
    for t in range(x.shape[0]):
        h = vf + (xf[t] - vf) / tau
        fire = h >= th
        args.append(alpha * (h - th))
        spikes.append(fire)
        vf = torch.where(fire, torch.zeros_like(h), h)
    s = torch.stack(spikes).to(x.dtype)
    return s, vf.to(v.dtype), torch.stack(args).to(x.dtype)


def _backward_eager(u: Tensor, g_s: Tensor, g_v: Tensor, tau: float, alpha: float) -> tuple[Tensor, Tensor]:
    """``(g_x [T, M], g_v0 [M])`` from the saved ``u [T, M]``, the spikes' gradient
    ``g_s [T, M]`` and ``g_v [M]``, the gradient of ``v_last``."""
    grads = [None] * u.shape[0]
    dt = _computed_in(u)
    gvf = g_v.to(dt)
    for t in range(u.shape[0] - 1, -1, -1):
        ut = u[t].to(dt)
        sg = torch.sigmoid(ut)
        g_h = g_s[t].to(dt) * (alpha * sg * (1 - sg)) + torch.where(ut < 0, gvf, torch.zeros_like(gvf))
        g_x = g_h / tau
        grads[t] = g_x
        gvf = g_h - g_x
    return torch.stack(grads).to(u.dtype), gvf.to(g_v.dtype)


@functools.lru_cache(maxsize=None)
def _compiled(which: str):
    fn = _forward_eager if which == "forward" else _backward_eager
    return torch.compile(fn, dynamic=True, fullgraph=True)


def available(device: torch.device) -> bool:
    """Whether ``torch.compile`` can generate these kernels for ``device``: CUDA with
    Triton installed (the CUDA wheels bring it), or a CPU with a C++ compiler."""
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return False
        return True
    if device.type == "cpu":
        import shutil

        return shutil.which("c++") is not None or shutil.which("g++") is not None
    return False


def lif_forward(x: Tensor, v: Tensor, tau: float, th: float, alpha: float) -> tuple[Tensor, Tensor, Tensor]:
    """The compiled forward: ``(s, v_last, u)`` of ``x [T, M]`` (contiguous) from ``v [M]``."""
    return _compiled("forward")(x, v, float(tau), float(th), float(alpha))


def lif_backward(u: Tensor, g_s: Tensor, g_v: Tensor, tau: float, alpha: float) -> tuple[Tensor, Tensor]:
    """The compiled backward: ``(g_x, g_v0)`` (see the module docstring)."""
    return _compiled("backward")(u, g_s, g_v, float(tau), float(alpha))
