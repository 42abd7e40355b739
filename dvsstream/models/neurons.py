"""Leaky integrate-and-fire neurons for time-major tensors ``[T, B, ...]``.

Numerics follow spikingjelly's ``LIFNode`` with ``v_reset=0``, ``decay_input=True`` (the
setting of every Spikformer-family release)::

    h[t] = v[t-1] + (x[t] - v[t-1]) / tau        # charge (a division, as the release does)
    s[t] = (h[t] - v_th >= 0)                    # heaviside, spikingjelly 2.0: x >= 0 -> 1
    v[t] = h[t] * (1 - s[t])                     # hard reset to 0

Training uses the sigmoid surrogate gradient ``alpha * sig(alpha x) * (1 - sig(alpha x))``
with ``alpha = 4`` and a detached reset; :class:`LIFMultiStep` computes it as one autograd
node over all T (:func:`lif_multistep` is the slow, per-step reference). Inference (no
autograd) takes a fused in-place path that writes far less memory than the reference
implementation (on CPU one compiled pass, numba: :mod:`~dvsstream.models.lif_kernels`);
all paths produce bitwise-identical spikes and voltages.

A :class:`LIF` module keeps its membrane potential ``v`` between calls, so a sequence can
be fed all at once (``[T, B, ...]``) or step by step (``[1, B, ...]`` per call, see
:meth:`LIF.step`) with identical results. :meth:`LIF.reset` clears the state.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import Tensor, nn

from dvsstream.models.lif_kernels import (
    backward_compiled,
    backward_cpu,
    forward_compiled,
    forward_cpu,
    frames_last,
    inference_cpu,
    kernel_ok,
    lif_pool_kernel,
)

__all__ = [
    "LIF",
    "LIFMultiStep",
    "SigmoidSpike",
    "lif_multistep",
    "lif_multistep_fused",
    "lif_multistep_inference",
    "lif_maxpool_inference",
    "spike_fn",
]


class SigmoidSpike(torch.autograd.Function):
    """Heaviside forward (``x >= 0``), sigmoid-derivative backward (surrogate gradient)."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(ctx.alpha * x)
        return grad * (ctx.alpha * sg * (1.0 - sg)), None


def spike_fn(x: Tensor, alpha: float = 4.0) -> Tensor:
    """Heaviside spike of ``x`` (``x >= 0``) with a sigmoid surrogate gradient."""
    return SigmoidSpike.apply(x, alpha)


def lif_multistep(
    x: Tensor,
    v: Optional[Tensor] = None,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    alpha: float = 4.0,
    detach_reset: bool = True,
) -> tuple[Tensor, Tensor]:
    """Differentiable LIF over ``x`` ``[T, ...]`` from potential ``v`` (zeros when None).

    The slow, obviously-correct reference: one autograd graph node per operation and
    step. :func:`lif_multistep_fused` is the same computation as one autograd node.
    Returns ``(spikes [T, ...], v_last [...])``.
    """
    if v is None:
        v = torch.zeros_like(x[0])
    spikes = []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / tau
        s = spike_fn(h - v_threshold, alpha)
        r = s.detach() if detach_reset else s
        v = h * (1.0 - r)
        spikes.append(s)
    return torch.stack(spikes), v


def lif_multistep_inference(
    x: Tensor,
    v: Optional[Tensor] = None,
    tau: float = 2.0,
    v_threshold: float | Tensor = 1.0,
    inplace: bool = False,
    scratch: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """LIF without autograd, fused over T with in-place kernels.

    With ``inplace=True`` the spikes are written into ``x`` itself (the caller must own
    it, e.g. a batch-norm output; it also serves as scratch). Bitwise the same as
    :func:`lif_multistep`. ``scratch`` (optional, not needed in place) is a buffer like
    ``x[0]`` to reuse for the charged potential.
    Returns ``(spikes, v_last)``; ``v`` is updated in place when given.
    """
    if x.shape[0] > 1 and x.numel() >= kernel_min_numel and kernel_ok(x):
        return inference_cpu(x, v, tau, float(v_threshold), inplace)
    xs = x.unbind(0)
    if v is None:
        v = torch.zeros_like(xs[0])
    if not isinstance(v_threshold, Tensor):
        # a 0-dim tensor in x's dtype compares faster than a Python scalar (no wrapping)
        v_threshold = torch.tensor(v_threshold, dtype=x.dtype, device=x.device)
    if inplace:
        for xt in xs:
            _lif_step(xt, v, None, xt, tau, v_threshold)
        return x, v
    out = torch.empty_like(x)
    # scratch in the same memory layout as the time slices (e.g. channels_last), so that
    # every op below is one straight vectorised pass
    h = scratch if scratch is not None else torch.empty_like(xs[0])
    for xt, s in zip(xs, out.unbind(0)):
        _lif_step(xt, v, h, s, tau, v_threshold)
    return out, v


def _lif_step(xt: Tensor, v: Tensor, h: Optional[Tensor], s: Tensor, tau: float, v_threshold: Tensor) -> None:
    """One inference step: spikes into ``s``, the new potential into ``v`` (in place).

    ``h`` is scratch for the charged potential. With ``h=None`` (``s`` must then be
    ``xt``, which is overwritten) the charged potential is formed in ``v`` itself and
    ``x - v`` in ``xt``: the same operations on the same values, with two live buffers
    instead of three (a live step touches less cold memory). 4 passes when 1/tau is a
    power of two (tau = 2), 5 otherwise.
    """
    d = xt if h is None else h
    torch.sub(xt, v, out=d)
    hv = v if h is None else h  # where the charged potential h goes
    if math.frexp(tau)[0] == 0.5:  # tau is a power of two: x / tau == x * (1/tau)
        torch.add(v, d, alpha=1.0 / tau, out=hv)  # v + (x - v) * (1/tau): the product is exact
    else:
        torch.add(d.div_(tau), v, out=hv)  # ((x - v) / tau) + v: addition commutes exactly
    torch.ge(hv, v_threshold, out=s)  # spikes as 0/1 in x's dtype
    torch.addcmul(hv, hv, s, value=-1.0, out=v)  # hard reset: h - h*s is exact (s in {0,1})


class LIFMultiStep(torch.autograd.Function):
    """LIF over all T steps as one autograd node (the gradient of :func:`lif_multistep`).

    Forward runs the recurrence without autograd and saves one tensor the size of ``x``
    (input dtype): on CPU in float32 / float64 with a detached reset, one compiled pass
    (:func:`~dvsstream.models.lif_kernels._lif_fwd_kernel`) saving the surrogate's argument ``u = alpha * (h - v_th)``;
    on CUDA (detached reset) one generated kernel doing the same (:func:`fused_kernel`);
    elsewhere (half precision on CPU, ``detach_reset=False``) the in-place torch kernels
    of the inference path, saving the charged potentials ``h``. The spikes and reset
    masks ``1 - s`` follow from either (``s = h >= v_th``, ``u >= 0``). Backward, with
    ``g_s[t]`` the incoming spike gradient and ``g_v`` the gradient reaching ``v[t]``
    (``v_last``'s for the last step)::

        g_h[t]   = g_s[t] * sg'(h[t] - v_th) + g_v * (1 - s[t])  # detach_reset: s detached
                   (- g_v * h[t] * sg'(h[t] - v_th) without detach_reset)
        g_x[t]   = g_h[t] / tau                                  # h = v + (x - v) / tau
        g_v[t-1] = g_h[t] - g_h[t] / tau

    with ``sg'(u) = alpha * sig(alpha u) * (1 - sig(alpha u))`` evaluated with the same
    operations as :class:`SigmoidSpike`. CPU: torch's sigmoid of ``u`` for all T, then
    one compiled pass (:func:`~dvsstream.models.lif_kernels._lif_bwd_kernel`). CUDA (detached reset): the same
    recurrences as kernels generated by ``torch.compile`` (Triton; see
    :mod:`~dvsstream.models.lif_compiled`), saving ``u`` too. Elsewhere: the surrogate
    term for all T at once, then a three-operation recurrence a step.
    """

    @staticmethod
    def forward(ctx, x: Tensor, v: Optional[Tensor], tau: float, v_threshold: float,  # type: ignore[override]
                alpha: float, detach_reset: bool) -> tuple[Tensor, Tensor]:
        ctx.tau, ctx.v_threshold, ctx.alpha, ctx.detach_reset = tau, v_threshold, alpha, detach_reset
        ctx.has_v = v is not None
        ctx.kernel = fused_kernel(x, detach_reset)
        s, v_new, saved = lif_forward_saving(ctx.kernel, x, v, tau, v_threshold, alpha)
        ctx.save_for_backward(saved)
        return s, v_new

    @staticmethod
    def backward(ctx, g_s: Tensor, g_v_last: Optional[Tensor]):  # type: ignore[override]
        (saved,) = ctx.saved_tensors
        g_x, g_v = lif_backward_from(ctx.kernel, saved, g_s, g_v_last, ctx.tau, ctx.v_threshold, ctx.alpha,
                                     ctx.detach_reset)
        return g_x, (g_v if ctx.has_v else None), None, None, None, None


def lif_forward_saving(kernel: str, x: Tensor, v: Optional[Tensor], tau: float, v_threshold: float,
                       alpha: float) -> tuple[Tensor, Tensor, Tensor]:
    """:class:`LIFMultiStep`'s forward by ``kernel`` (see :func:`fused_kernel`), without
    autograd: ``(spikes, v_last, saved)``, ``saved`` what :func:`lif_backward_from` takes
    (the surrogate's argument ``u = alpha * (h - th)`` for the numba and compiled
    kernels, the potentials ``h`` for torch's), all shaped as ``x`` ``[T, ...]``."""
    if kernel == "numba":
        return forward_cpu(x, v, tau, v_threshold, alpha)
    if kernel == "compiled":
        return forward_compiled(x, v, tau, v_threshold, alpha)
    h = torch.empty_like(x)
    s = torch.empty_like(x)
    v_new = torch.zeros_like(x[0]) if v is None else v.clone()
    th = torch.tensor(v_threshold, dtype=x.dtype, device=x.device)
    for xt, ht, st in zip(x.unbind(0), h.unbind(0), s.unbind(0)):
        _lif_step(xt, v_new, ht, st, tau, th)
    return s, v_new, h


def lif_backward_from(kernel: str, saved: Tensor, g_s: Tensor, g_v_last: Optional[Tensor], tau: float,
                      v_threshold: float, alpha: float, detach_reset: bool) -> tuple[Tensor, Tensor]:
    """:class:`LIFMultiStep`'s backward from :func:`lif_forward_saving`'s ``saved``:
    ``(g_x, g_v_initial)``."""
    if kernel == "numba":
        return backward_cpu(saved, g_s, g_v_last, tau, alpha)
    if kernel == "compiled":
        return backward_compiled(saved, g_s, g_v_last, tau, alpha)
    return _bwd_torch(saved, g_s, g_v_last, tau, v_threshold, alpha, detach_reset)


def _bwd_torch(h: Tensor, g_s: Tensor, g_v_last: Optional[Tensor], tau: float, v_threshold: float,
               alpha: float, detach_reset: bool) -> tuple[Tensor, Tensor]:
    """:class:`LIFMultiStep`'s backward in torch operations (any device and dtype):
    the surrogate term for all T at once, then the recurrence, three operations a step."""
    sg = torch.sigmoid(alpha * (h - v_threshold))
    one_minus = torch.rsub(sg, 1.0)
    surr = sg.mul_(alpha).mul_(one_minus)  # alpha * sg * (1 - sg), SigmoidSpike's order
    g_h = torch.mul(g_s, surr)
    keep = one_minus.copy_(h < v_threshold)  # 1 - s, in h's dtype
    if not detach_reset:
        keep.sub_(h * surr)  # v = h * (1 - s) with s attached: dv/dh = (1 - s) - h * sg'
    del surr
    g_v = g_v_last.clone() if g_v_last is not None else torch.zeros_like(h[0])
    tmp = torch.empty_like(h[0])
    for t in range(h.shape[0] - 1, -1, -1):
        gh = g_h[t]
        gh.addcmul_(g_v, keep[t])
        torch.div(gh, tau, out=tmp)
        torch.sub(gh, tmp, out=g_v)
    return g_h.div_(tau), g_v


def lif_maxpool_inference(x: Tensor, v: Optional[Tensor] = None, tau: float = 2.0,
                          v_threshold: float = 1.0) -> tuple[Tensor, Tensor]:
    """LIF over ``x`` ``[T, B, C, H, W]`` then ``max_pool2d(kernel 3, stride 2, padding 1)``
    of each step's spikes, in one compiled CPU pass (no autograd; ``x`` float32 / float64
    in channels_last frames, see :func:`~dvsstream.models.lif_kernels.frames_last`). The same bits as
    :func:`lif_multistep_inference` followed by the pool, without writing the
    full-resolution spikes. ``v`` ``[B, C, H, W]``: the potential to start from (zeros
    when None), updated in place when given. Returns ``(pooled spikes [T, B, C, Ho, Wo]``
    in channels_last frames, ``v_last [B, C, H, W]``: ``v`` itself when given, else
    channels_last``)``, ``Ho = (H + 1) // 2``."""
    if not (kernel_ok(x) and frames_last(x)):
        raise ValueError("lif_maxpool_inference needs a CPU float32 / float64 [T, B, C, H, W] in channels_last frames")
    T, B, C, H, W = x.shape
    Ho, Wo = (H + 1) // 2, (W + 1) // 2
    v_p = torch.zeros(B, H, W, C, dtype=x.dtype) if v is None else v.permute(0, 2, 3, 1)
    v_k = v_p if v_p.is_contiguous() and v_p.dtype == x.dtype else v_p.contiguous().to(x.dtype)
    out = torch.empty(T, B, Ho, Wo, C, dtype=x.dtype)
    typ = np.float32 if x.dtype == torch.float32 else np.float64
    xa = x.detach().permute(0, 1, 3, 4, 2).reshape(T, B, H, W * C).numpy()
    lif_pool_kernel(xa, v_k.view(B, H, W * C).numpy(), out.view(T, B, Ho, Wo * C).numpy(), C, typ(tau),
                     typ(v_threshold))
    if v is None:
        v = v_k.permute(0, 3, 1, 2)
    elif v_k is not v_p:
        v.copy_(v_k.permute(0, 3, 1, 2))
    return out.permute(0, 1, 4, 2, 3), v


#: the inference path runs the compiled CPU kernel from this many elements (``T * M``) on;
#: smaller calls (a live step) keep the torch operations, whose set-up costs less
kernel_min_numel: int = 1 << 15


#: the kernels of :class:`LIFMultiStep` (detached reset): ``"auto"`` (CPU float32 / float64:
#: the Numba kernels; CUDA: :mod:`~dvsstream.models.lif_compiled`'s generated ones when
#: torch can compile there; else torch operations), or ``"numba"``, ``"compiled"``,
#: ``"torch"`` to force one where it applies (tests, benchmarks)
fused_kernels: str = "auto"


def fused_kernel(x: Tensor, detach_reset: bool) -> str:
    """Which kernels :class:`LIFMultiStep` runs for ``x``: ``"numba"``, ``"compiled"`` or
    ``"torch"`` (see :data:`fused_kernels`; a kernel that does not apply to ``x`` falls
    back to ``"torch"``)."""
    if not detach_reset or x.dim() < 2 or x.shape[0] == 0 or x[0].numel() == 0:
        return "torch"
    choice = fused_kernels
    if choice == "auto":
        choice = "numba" if kernel_ok(x) else "compiled" if x.is_cuda else "torch"
    if choice == "numba" and kernel_ok(x):
        return "numba"
    if choice == "compiled" and x.dtype.is_floating_point:
        from dvsstream.models.lif_compiled import available

        if available(x.device):
            return "compiled"
    return "torch"


def lif_multistep_fused(
    x: Tensor,
    v: Optional[Tensor] = None,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    alpha: float = 4.0,
    detach_reset: bool = True,
) -> tuple[Tensor, Tensor]:
    """:func:`lif_multistep` as one autograd node (:class:`LIFMultiStep`): the same spikes
    and potentials bit for bit, the same gradients up to float round-off, one saved
    tensor the size of ``x`` and a fraction of the time. ``x`` ``[T, ...]``, ``v`` like
    ``x[0]`` (zeros when None). Returns ``(spikes [T, ...], v_last [...])``."""
    return LIFMultiStep.apply(x, v, float(tau), float(v_threshold), float(alpha), bool(detach_reset))


class LIF(nn.Module):
    """Multi-step LIF layer with explicit state.

    Args:
        tau: membrane time constant (> 1).
        v_threshold: firing threshold.
        alpha: sigmoid surrogate sharpness.
        detach_reset: do not propagate gradient through the reset.
        inplace: in inference, overwrite the input with the spikes (the input must be a
            temporary the caller no longer needs).

    ``forward(x)`` takes ``[T, B, ...]`` and continues from the stored potential (zeros
    after :meth:`reset`). When ``self.record`` is a list (set by taps / energy), each call
    appends ``(spike_count, numel)`` of its output.

    With autograd, :func:`lif_multistep_fused` runs the layer (one graph node over T);
    setting ``fused_autograd = False`` (on the class or an instance) selects the
    per-step reference :func:`lif_multistep` instead, for checks.
    """

    #: autograd path: the fused :class:`LIFMultiStep` (True) or the reference (False)
    fused_autograd: bool = True

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        alpha: float = 4.0,
        detach_reset: bool = True,
        inplace: bool = False,
    ) -> None:
        super().__init__()
        if tau <= 1.0:
            raise ValueError(f"LIF tau must be > 1, got {tau}")
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.alpha = float(alpha)
        self.detach_reset = detach_reset
        self.inplace = inplace
        self.v: Optional[Tensor] = None
        self.record: Optional[list] = None
        self._scratch: Optional[Tensor] = None  # reused buffer of the inference path
        self._th: Optional[Tensor] = None  # the threshold as a 0-dim tensor
        self._fast: Optional[tuple] = None  # (stride, dtype, device) of the last checked step

    def extra_repr(self) -> str:
        return f"tau={self.tau}, v_threshold={self.v_threshold}, alpha={self.alpha}"

    def reset(self) -> None:
        """Forget the membrane potential (next call starts from zeros)."""
        self.__dict__["v"] = None

    def forward(self, x: Tensor) -> Tensor:
        state = self.__dict__  # plain attributes: skip nn.Module.__setattr__ (hot in step())
        v = state["v"]
        if v is not None and v.shape != x.shape[1:]:
            raise ValueError(
                f"LIF state has shape {tuple(v.shape)} but the input step has "
                f"{tuple(x.shape[1:])}; call reset() between inputs of different shapes"
            )
        if torch.is_grad_enabled() and (x.requires_grad or (v is not None and v.requires_grad)):
            multistep = lif_multistep_fused if self.fused_autograd else lif_multistep
            s, v = multistep(x, v, self.tau, self.v_threshold, self.alpha, self.detach_reset)
            state["_scratch"] = state["_fast"] = None
        else:
            if v is not None and (
                v.requires_grad or (v.is_inference() and not torch.is_inference_mode_enabled())
            ):
                v = v.detach().clone()
            x0 = x[0]
            inplace = self.inplace
            h = None if inplace else state["_scratch"]  # the in-place update needs no scratch
            if (
                v is not None and x.shape[0] == 1 and state["_fast"] == (x.stride(), x.dtype, x.device)
                and (inplace or (h is not None and (torch.is_inference_mode_enabled() or not h.is_inference())))
            ):
                # a live step with scratch and threshold already checked for this shape,
                # layout, dtype and device: one update (the loop below, minus its set-up)
                s = x if inplace else torch.empty_like(x)
                _lif_step(x0, v, h, x0 if inplace else s[0], self.tau, state["_th"])
                state["v"] = v
                if state["record"] is not None:
                    state["record"].append((s.sum().item(), s.numel()))
                return s
            if not inplace and (
                h is None or h.shape != x0.shape or h.stride() != x0.stride() or h.dtype != x0.dtype
                or h.device != x0.device or (h.is_inference() and not torch.is_inference_mode_enabled())
            ):
                h = state["_scratch"] = torch.empty_like(x0)
            th = state["_th"]
            if th is None or th.dtype != x.dtype or th.device != x.device:
                th = state["_th"] = torch.tensor(self.v_threshold, dtype=x.dtype, device=x.device)
            s, v = lif_multistep_inference(x, v, self.tau, th, self.inplace, h)
            # the next single step with this layout, dtype and device (and a stored v of
            # the same shape, checked on entry) can skip the set-up
            state["_fast"] = (x.stride(), x.dtype, x.device) if x.shape[0] == 1 else None
        state["v"] = v
        if state["record"] is not None:
            state["record"].append((s.detach().sum().item(), s.numel()))
        return s

    def forward_maxpool(self, x: Tensor) -> Optional[Tensor]:
        """``max_pool2d(kernel 3, stride 2, padding 1)`` of each step of ``forward(x)``,
        ``x`` ``[T, B, C, H, W]``, in one compiled pass (:func:`lif_maxpool_inference`),
        the state carried as :meth:`forward` carries it. Returns None, having done
        nothing, where that pass does not apply (autograd, a recording layer, another
        device, dtype or memory layout, fewer than ``kernel_min_numel`` elements, a
        stored state of another shape): the caller then runs :meth:`forward` and the pool."""
        state = self.__dict__
        v = state["v"]
        if (
            state["record"] is not None or x.numel() < kernel_min_numel or not kernel_ok(x)
            or not frames_last(x) or (v is not None and v.shape != x.shape[1:])
            or (torch.is_grad_enabled() and (x.requires_grad or (v is not None and v.requires_grad)))
        ):
            return None
        if v is not None and (v.requires_grad or (v.is_inference() and not torch.is_inference_mode_enabled())):
            v = v.detach().clone()  # as forward: a state from autograd or inference mode is not updated in place
        s, state["v"] = lif_maxpool_inference(x, v, self.tau, self.v_threshold)
        state["_fast"] = None
        return s

    def step(self, x_t: Tensor) -> Tensor:
        """One time step: ``x_t`` ``[B, ...]`` -> spikes ``[B, ...]``, state carried."""
        return self.forward(x_t.unsqueeze(0))[0]


def reset_net(module: nn.Module) -> None:
    """Reset every LIF state below ``module``."""
    for m in module.modules():
        if isinstance(m, LIF):
            m.reset()
