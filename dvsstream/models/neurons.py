"""Leaky integrate-and-fire neurons for time-major tensors ``[T, B, ...]``.

Numerics follow spikingjelly's ``LIFNode`` with ``v_reset=0``, ``decay_input=True`` (the
setting of every Spikformer-family release)::

    h[t] = v[t-1] + (x[t] - v[t-1]) / tau        # charge (a division, as the release does)
    s[t] = (h[t] - v_th >= 0)                    # heaviside, spikingjelly 2.0: x >= 0 -> 1
    v[t] = h[t] * (1 - s[t])                     # hard reset to 0

Training uses the sigmoid surrogate gradient ``alpha * sig(alpha x) * (1 - sig(alpha x))``
with ``alpha = 4`` and a detached reset. Inference (no autograd) takes a fused in-place
path that writes far less memory than the reference implementation; both paths produce
bitwise-identical spikes and voltages.

A :class:`LIF` module keeps its membrane potential ``v`` between calls, so a sequence can
be fed all at once (``[T, B, ...]``) or step by step (``[1, B, ...]`` per call, see
:meth:`LIF.step`) with identical results. :meth:`LIF.reset` clears the state.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["LIF", "SigmoidSpike", "lif_multistep", "lif_multistep_inference", "spike_fn"]


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
    """

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
            s, v = lif_multistep(x, v, self.tau, self.v_threshold, self.alpha, self.detach_reset)
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

    def step(self, x_t: Tensor) -> Tensor:
        """One time step: ``x_t`` ``[B, ...]`` -> spikes ``[B, ...]``, state carried."""
        return self.forward(x_t.unsqueeze(0))[0]


def reset_net(module: nn.Module) -> None:
    """Reset every LIF state below ``module``."""
    for m in module.modules():
        if isinstance(m, LIF):
            m.reset()
