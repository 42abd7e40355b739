"""Event-frame augmentations of the Spikformer DVS recipe, on batches ``[B, T, C, H, W]``.

The papers' releases (``SNNAugmentWide`` in the Spikformer CIFAR10-DVS code) apply, per
sample, a random horizontal flip and then **one** op drawn uniformly from

=============  =====================================================
``identity``   nothing
``shear_x``    shear along x, factor uniform in [-0.3, 0.3]
``translate_x`` shift along x, uniform in [-5, 5] px (rounded to whole pixels)
``translate_y`` shift along y, uniform in [-5, 5] px (rounded to whole pixels)
``rotate``     rotation about the image centre, uniform in [-30, 30] degrees
``cutout``     a zeroed square of side uniform in [1, 30] px at a random centre
=============  =====================================================

with nearest-neighbour resampling and zero fill (event counts are never interpolated).

Two more augmentations, off in the papers' recipe and on in ``teach``'s (a few seconds
per class, tested later on other recordings: the object nearer or farther, a brighter
or busier scene):

=============  =====================================================
``zoom``       an op (in :data:`EXTRA_OPS`): scale about the image centre by a factor
               log-uniform in [1 / ``zoom``, ``zoom``]
``keep_events`` after the op, every sample keeps a share of its events uniform in
               [``keep_events``, 1] (binomial thinning of the counts: what a slower or
               less contrasted scene gives)
=============  =====================================================
Pixel amounts (translation, cutout side) are given for a 128-pixel-wide sensor
(``reference_size``) and scale with the actual width, so a 64x64 model sees the same
relative shifts as the papers' 128x128 one.

The same op with the same parameters transforms every time step and both polarity
channels of a sample. Everything is plain torch, runs on the batch's device, and draws
its random numbers from an optional CPU :class:`torch.Generator` (reproducible, and its
state can be checkpointed).

:func:`mixup` mixes a batch with its reverse (timm's ``Mixup`` in batch mode), on soft
targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "OPS",
    "EXTRA_OPS",
    "AugmentConfig",
    "augment_batch",
    "hflip",
    "affine",
    "shear_x",
    "translate",
    "rotate",
    "cutout",
    "zoom",
    "thin_events",
    "mixup",
    "one_hot_smooth",
]

OPS = ("identity", "shear_x", "translate_x", "translate_y", "rotate", "cutout")
#: ops outside the papers' recipe (see the module docstring)
EXTRA_OPS = ("zoom",)


@dataclass(frozen=True)
class AugmentConfig:
    """The augmentation policy (defaults: the papers' recipe).

    ``hflip``: mirror each sample left-right with probability 0.5 (turn off for DVS128
    Gesture, whose left-arm / right-arm classes it would swap without relabelling).
    ``ops``: the ops one is drawn from per sample (a subset of :data:`OPS` and
    :data:`EXTRA_OPS`). ``zoom``: the largest scale factor of the ``zoom`` op (> 1).
    ``keep_events``: the smallest share of events a sample keeps (None: no thinning).
    """

    hflip: bool = True
    ops: tuple[str, ...] = OPS
    shear: float = 0.3
    translate_px: float = 5.0
    rotate_deg: float = 30.0
    cutout_px: tuple[float, float] = (1.0, 30.0)
    reference_size: int = 128
    zoom: float = 1.5
    keep_events: Optional[float] = None

    def __post_init__(self) -> None:
        bad = [op for op in self.ops if op not in OPS + EXTRA_OPS]
        if bad or not self.ops:
            raise ValueError(f"unknown augmentation op(s) {bad}; choose from {OPS + EXTRA_OPS}")
        if not self.zoom >= 1.0:
            raise ValueError(f"the zoom factor must be at least 1, got {self.zoom}")
        if self.keep_events is not None and not 0.0 < self.keep_events <= 1.0:
            raise ValueError(f"keep_events must be in (0, 1], got {self.keep_events}")


# ------------------------------------------------------------------ helpers
def _as5d(x: Tensor) -> tuple[Tensor, bool]:
    if x.dim() == 5:
        return x, False
    if x.dim() == 4:
        return x.unsqueeze(0), True
    raise ValueError(f"expected frames [B, T, C, H, W] or [T, C, H, W], got shape {tuple(x.shape)}")


def _per_sample(v, n: int) -> Tensor:
    t = torch.as_tensor(v, dtype=torch.float64)
    return t.expand(n).clone() if t.dim() == 0 else t.reshape(n)


def _uniform(n: int, lo: float, hi: float, g: Optional[torch.Generator]) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


# ------------------------------------------------------------------ geometric ops
def affine(x: Tensor, inv: Tensor) -> Tensor:
    """Resample frames through per-sample **inverse** affine maps in pixel units.

    ``inv``: ``[B, 2, 3]`` (float64 or float32); an output pixel at centred coordinates
    ``(u, v)`` (origin at the image centre, x right, y down) takes the input value at
    ``inv @ (u, v, 1)``. Nearest neighbour, zeros outside. ``x``: ``[B, T, C, H, W]``.
    """
    x5, squeeze = _as5d(x)
    b, t, c, h, w = x5.shape
    inv = torch.as_tensor(inv, dtype=torch.float64).reshape(b, 2, 3)
    # centred pixel coordinates p = S n with S = diag(W/2, H/2) (align_corners=False)
    s = torch.tensor([w / 2.0, h / 2.0], dtype=torch.float64)
    theta = torch.empty(b, 2, 3, dtype=torch.float64)
    theta[:, :, :2] = inv[:, :, :2] * s.view(1, 1, 2) / s.view(1, 2, 1)
    theta[:, :, 2] = inv[:, :, 2] / s.view(1, 2)
    dtype = x5.dtype if x5.dtype in (torch.float32, torch.float64) else torch.float32
    theta = theta.to(device=x5.device, dtype=dtype)
    flat = x5.reshape(b, t * c, h, w)
    grid = F.affine_grid(theta, [b, t * c, h, w], align_corners=False)
    out = F.grid_sample(flat.to(dtype), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    out = out.to(x5.dtype).reshape(b, t, c, h, w)
    return out[0] if squeeze else out


def _eye(n: int) -> Tensor:
    m = torch.zeros(n, 2, 3, dtype=torch.float64)
    m[:, 0, 0] = 1.0
    m[:, 1, 1] = 1.0
    return m


def shear_x(x: Tensor, factor) -> Tensor:
    """Shear along x by ``factor`` (scalar or one per sample): ``out(u, v) = in(u + f v, v)``."""
    x5, squeeze = _as5d(x)
    inv = _eye(x5.shape[0])
    inv[:, 0, 1] = _per_sample(factor, x5.shape[0])
    out = affine(x5, inv)
    return out[0] if squeeze else out


def translate(x: Tensor, dx, dy) -> Tensor:
    """Shift by ``(dx, dy)`` pixels (rounded to whole pixels; content moves right / down
    for positive values); vacated pixels are zero."""
    x5, squeeze = _as5d(x)
    n = x5.shape[0]
    inv = _eye(n)
    inv[:, 0, 2] = -torch.round(_per_sample(dx, n))
    inv[:, 1, 2] = -torch.round(_per_sample(dy, n))
    out = affine(x5, inv)
    return out[0] if squeeze else out


def rotate(x: Tensor, degrees) -> Tensor:
    """Rotate about the image centre by ``degrees`` (counter-clockwise as displayed,
    y pointing down, like torchvision)."""
    x5, squeeze = _as5d(x)
    n = x5.shape[0]
    a = torch.deg2rad(_per_sample(degrees, n))
    cos, sin = torch.cos(a), torch.sin(a)
    # snap to exact values so that multiples of 90 degrees are exact pixel permutations
    cos = torch.where(cos.abs() < 1e-12, torch.zeros_like(cos), cos)
    sin = torch.where(sin.abs() < 1e-12, torch.zeros_like(sin), sin)
    inv = torch.zeros(n, 2, 3, dtype=torch.float64)
    # displayed counter-clockwise with y down: out = R(-a) in  ->  in = R(a) out
    inv[:, 0, 0], inv[:, 0, 1] = cos, -sin
    inv[:, 1, 0], inv[:, 1, 1] = sin, cos
    out = affine(x5, inv)
    return out[0] if squeeze else out


def zoom(x: Tensor, factor) -> Tensor:
    """Scale about the image centre by ``factor`` (scalar or one per sample; > 1 enlarges:
    ``out(u, v) = in(u / f, v / f)``). Nearest neighbour: shrinking keeps one input pixel
    of each block, it does not sum them."""
    x5, squeeze = _as5d(x)
    f = _per_sample(factor, x5.shape[0])
    inv = _eye(x5.shape[0])
    inv[:, 0, 0], inv[:, 1, 1] = 1.0 / f, 1.0 / f
    out = affine(x5, inv)
    return out[0] if squeeze else out


def thin_events(x: Tensor, keep, generator: Optional[torch.Generator] = None) -> Tensor:
    """Keep each event of the count frames ``x`` with probability ``keep`` (scalar or one
    per sample): ``Binomial(round(count), keep)`` per pixel, drawn from ``generator``
    (CPU). Counts stay whole numbers; ``x``'s dtype and device are kept."""
    x5, squeeze = _as5d(x)
    b = x5.shape[0]
    counts = torch.clamp(torch.round(x5.detach().to("cpu", torch.float32)), min=0)
    p = _per_sample(keep, b).to(torch.float32).view(b, 1, 1, 1, 1).expand_as(counts)
    kept = torch.binomial(counts, p.contiguous(), generator=generator)
    out = kept.to(device=x5.device, dtype=x5.dtype)
    return out[0] if squeeze else out


def hflip(x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Mirror left-right (the last axis); with ``mask`` ``[B]`` (bool) only those samples."""
    if mask is None:
        return x.flip(-1)
    x5, squeeze = _as5d(x)
    m = mask.to(device=x5.device, dtype=torch.bool).view(-1, 1, 1, 1, 1)
    out = torch.where(m, x5.flip(-1), x5)
    return out[0] if squeeze else out


def cutout(x: Tensor, cx, cy, size) -> Tensor:
    """Zero a ``size`` x ``size`` square centred at pixel ``(cx, cy)`` (clipped at the
    borders) in every time step and channel. Scalars or one value per sample."""
    x5, squeeze = _as5d(x)
    b, _, _, h, w = x5.shape
    size = torch.clamp(torch.round(_per_sample(size, b)), min=0)
    cx, cy = _per_sample(cx, b), _per_sample(cy, b)
    x0 = torch.floor(cx - size / 2)
    y0 = torch.floor(cy - size / 2)
    dev = x5.device
    cols = torch.arange(w, device=dev).view(1, w)
    rows = torch.arange(h, device=dev).view(1, h)
    x0, y0, size = (v.to(dev, torch.float32).view(b, 1) for v in (x0, y0, size))
    in_x = (cols >= x0) & (cols < x0 + size)  # [B, W]
    in_y = (rows >= y0) & (rows < y0 + size)  # [B, H]
    hole = (in_y.unsqueeze(2) & in_x.unsqueeze(1)).view(b, 1, 1, h, w)
    out = x5.masked_fill(hole, 0)
    return out[0] if squeeze else out


# ------------------------------------------------------------------ the policy
def augment_batch(
    x: Tensor, config: AugmentConfig = AugmentConfig(), generator: Optional[torch.Generator] = None
) -> Tensor:
    """Random flip (if ``config.hflip``) then one random op per sample, the same for all
    time steps and channels of that sample, then the thinning (``config.keep_events``).
    ``x``: ``[B, T, C, H, W]`` (any device).
    Random numbers come from ``generator`` (CPU) or torch's global generator.
    Returns a new tensor; ``x`` is not modified."""
    x5, squeeze = _as5d(x)
    b, _, _, h, w = x5.shape
    g = generator
    scale = w / float(config.reference_size)
    out = x5
    if config.hflip:
        flip = torch.rand(b, generator=g) < 0.5
        if bool(flip.any()):
            out = hflip(out, flip)
    # draw everything up front, in a fixed order, so that the stream of random numbers
    # does not depend on which ops were chosen
    op_idx = torch.randint(len(config.ops), (b,), generator=g)
    mag = _uniform(b, -1.0, 1.0, g)
    u1 = torch.rand(b, generator=g, dtype=torch.float64)
    u2 = torch.rand(b, generator=g, dtype=torch.float64)
    ops = [config.ops[i] for i in op_idx.tolist()]

    inv = _eye(b)
    geometric = torch.zeros(b, dtype=torch.bool)
    holes = []
    for i, op in enumerate(ops):
        m = float(mag[i])
        if op == "shear_x":
            inv[i, 0, 1] = m * config.shear
        elif op == "translate_x":
            inv[i, 0, 2] = -round(m * config.translate_px * scale)
        elif op == "translate_y":
            inv[i, 1, 2] = -round(m * config.translate_px * scale)
        elif op == "rotate":
            a = math.radians(m * config.rotate_deg)
            inv[i, 0, 0], inv[i, 0, 1] = math.cos(a), -math.sin(a)
            inv[i, 1, 0], inv[i, 1, 1] = math.sin(a), math.cos(a)
        elif op == "zoom":
            f = config.zoom ** m
            inv[i, 0, 0], inv[i, 1, 1] = 1.0 / f, 1.0 / f
        elif op == "cutout":
            lo, hi = config.cutout_px
            side = (lo + (hi - lo) * (abs(m))) * scale
            holes.append((i, float(u1[i]) * w, float(u2[i]) * h, max(1.0, side)))
            continue
        else:
            continue
        geometric[i] = True
    if bool(geometric.any()):
        idx = geometric.nonzero().flatten()
        moved = affine(out[idx.to(out.device)], inv[idx])
        out = out.clone() if out is x5 else out
        out[idx.to(out.device)] = moved
    if holes:
        idx = torch.tensor([i for i, *_ in holes])
        cut = cutout(out[idx.to(out.device)], [c[1] for c in holes], [c[2] for c in holes], [c[3] for c in holes])
        out = out.clone() if out is x5 else out
        out[idx.to(out.device)] = cut
    if config.keep_events is not None:  # drawn last: the streams above are the papers' recipe's
        keep = _uniform(b, config.keep_events, 1.0, g)
        out = thin_events(out, keep, g)
    if out is x5:
        out = x5.clone()
    return out[0] if squeeze else out


# ------------------------------------------------------------------ targets and mixup
def one_hot_smooth(labels: Tensor, num_classes: int, smoothing: float = 0.0) -> Tensor:
    """Label-smoothed one-hot targets ``[B, classes]`` (the same distribution as
    ``cross_entropy(label_smoothing=smoothing)``: ``smoothing / classes`` everywhere,
    plus ``1 - smoothing`` on the true class)."""
    off = smoothing / num_classes
    t = torch.full((labels.shape[0], num_classes), off, device=labels.device, dtype=torch.float32)
    return t.scatter_(1, labels.view(-1, 1).long(), 1.0 - smoothing + off)


def mixup(
    x: Tensor, targets: Tensor, alpha: float = 0.5, generator: Optional[torch.Generator] = None
) -> tuple[Tensor, Tensor, float]:
    """Mix each sample with the batch reversed: ``lam * x + (1 - lam) * x.flip(0)``,
    the same for the soft ``targets`` ``[B, classes]``; ``lam ~ Beta(alpha, alpha)``
    (drawn from ``generator``). Returns ``(x, targets, lam)``."""
    g1 = torch._standard_gamma(torch.full((2,), float(alpha), dtype=torch.float64), generator)
    lam = float(g1[0] / (g1[0] + g1[1]))
    xm = x.mul(lam).add_(x.flip(0), alpha=1.0 - lam)
    tm = targets.mul(lam).add_(targets.flip(0), alpha=1.0 - lam)
    return xm, tm, lam
