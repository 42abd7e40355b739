"""Drawing for :mod:`dvsstream.synth.scenes`: procedural textures, shape coverage
masks (sprites) and the Numba kernel that composes a frame from a background, sprites
under affine transforms and an illumination field. No torch, no Qt.

Conventions: images are ``[rows, columns]`` float32, pixel ``(row y, column x)`` covers
``[x, x+1) x [y, y+1)``; lengths are in image pixels unless a ``px`` (image pixels per
sprite pixel) says otherwise; textures lie in ``[-1, 1]`` (0 = flat).
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["GLYPHS", "MIN_INTENSITY", "TEXTURES", "capsule_mask", "draw_frames", "shape_mask", "texture"]

TEXTURES = ("flat", "grating", "checker", "dots", "noise")
GLYPHS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
MIN_INTENSITY = 0.002  #: the darkest linear intensity drawn
_SS = 4  # super-sampling of the sprite coverage


def texture(d: dict, h: int, w: int, px: float = 1.0) -> np.ndarray:
    """Texture ``float32 [h, w]`` in ``[-1, 1]`` (0 = flat) from its description ``d``;
    ``px``: image pixels per texture pixel (lengths in ``d`` are image pixels)."""
    kind = d["kind"]
    if kind == "flat":
        return np.zeros((h, w), np.float32)
    rng = np.random.default_rng(d["seed"])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) * px
    if kind == "grating":
        a = d["angle"]
        s = np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / d["period"] + d["phase"])
        out = np.clip(s * d["period"] / 4, -1, 1) if d["square"] else s
    elif kind == "checker":
        a, c = d["angle"], d["cell"]
        u, v = xx * np.cos(a) + yy * np.sin(a), -xx * np.sin(a) + yy * np.cos(a)
        out = np.clip(np.sin(np.pi * u / c) * np.sin(np.pi * v / c) * c, -1, 1)
    elif kind == "dots":
        c = d["cell"]
        gy, gx = int(np.ceil(h * px / c)) + 1, int(np.ceil(w * px / c)) + 1
        radius = rng.uniform(0.12, 0.3, (gy, gx)) * c
        off = rng.uniform(0, 1, (2, gy, gx)) * (c - 2 * radius) + radius
        on = rng.random((gy, gx)) < d["density"]
        iy, ix = (yy // c).astype(np.int64), (xx // c).astype(np.int64)
        dist = np.hypot(xx - (ix * c + off[0, iy, ix]), yy - (iy * c + off[1, iy, ix]))
        cov = np.clip(radius[iy, ix] + 0.5 - dist, 0, 1) * on[iy, ix]
        out = d["sign"] * (2 * cov - 1)
    else:  # smooth noise: white noise low-passed by a Gaussian (FFT), ~unit std
        sig = d["sigma"] / px
        f = np.fft.rfft2(rng.normal(size=(h, w)))
        ky, kx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
        noise = np.fft.irfft2(f * np.exp(-2 * (np.pi * sig) ** 2 * (kx**2 + ky**2)), s=(h, w))
        out = np.clip(noise / max(float(noise.std()), 1e-9) / 2.0, -1, 1)
    return out.astype(np.float32)


def _inside_polygon(x: np.ndarray, y: np.ndarray, vertices) -> np.ndarray:
    v = np.asarray(vertices, np.float64)
    inside = np.zeros(x.shape, bool)
    j = len(v) - 1
    for i in range(len(v)):
        (xi, yi), (xj, yj) = v[i], v[j]
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < xc)
        j = i
    return inside


def _glyph_mask(char: str, side: int, radius: float) -> np.ndarray | None:
    """Coverage of ``char`` in PIL's default (scalable) font, ``[side, side]``; None
    where Pillow has no scalable default font."""
    try:
        from PIL import Image, ImageDraw, ImageFont

        font = ImageFont.load_default(size=max(4, round(2.6 * radius * _SS)))
        img = Image.new("L", (side * _SS, side * _SS), 0)
        ImageDraw.Draw(img).text((side * _SS / 2, side * _SS / 2), char, fill=255, font=font, anchor="mm")
    except (ImportError, TypeError, ValueError, OSError):
        return None
    a = np.asarray(img, np.float32) / 255.0
    return a.reshape(side, _SS, side, _SS).mean((1, 3))


def shape_mask(shape: dict, px: float) -> np.ndarray:
    """Coverage ``float32 [side, side]`` of a shape centred in its sprite; ``px`` image
    pixels per sprite pixel."""
    kind, r = shape["kind"], shape["radius"] / px
    extent = r * (1.45 if kind in ("rectangle", "glyph") else 1.3 if kind == "blob" else 1.0)
    side = 2 * int(np.ceil(extent)) + 4
    if kind == "glyph":
        m = _glyph_mask(shape["char"], side, r)
        if m is not None:
            return m
        kind, shape = "polygon", {**shape, "vertices": [[r * px * np.cos(a), r * px * np.sin(a)]
                                                        for a in np.arange(6) * np.pi / 3]}
    c = (np.arange(side * _SS) + 0.5) / _SS - side / 2
    y, x = np.meshgrid(c, c, indexing="ij")
    rr = np.hypot(x, y)
    if kind == "disc":
        m = rr <= r
    elif kind == "ellipse":
        m = (x / r) ** 2 + (y / (r * shape["ratio"])) ** 2 <= 1
    elif kind == "rectangle":
        m = (np.abs(x) <= shape["half"][0] / px) & (np.abs(y) <= shape["half"][1] / px)
    elif kind == "ring":
        m = (rr <= r) & (rr >= shape["inner"] / px)
    elif kind == "bar":  # a capsule along x
        hw = shape["half_width"] / px
        m = np.hypot(np.maximum(np.abs(x) - (r - hw), 0), y) <= hw
    elif kind == "blob":
        th = np.arctan2(y, x)
        edge = 0.8 + sum(a * np.cos(k * th + p) for k, (a, p) in enumerate(shape["harmonics"], start=2))
        m = rr <= r * edge
    else:  # triangle, polygon, star
        m = _inside_polygon(x, y, np.asarray(shape["vertices"]) / px)
    return m.astype(np.float32).reshape(side, _SS, side, _SS).mean((1, 3))


def capsule_mask(length: float, width: float) -> np.ndarray:
    """A bar of ``length`` x ``width`` image pixels along x, rounded ends."""
    return shape_mask({"kind": "bar", "radius": length / 2, "half_width": width / 2}, 1.0)


@nb.njit(cache=True, nogil=True)
def _draw_part(img, alpha, value, off, sh, sw, cx, cy, ang, sc):
    """Alpha-blend one sprite (``sh`` x ``sw`` at ``off``; coverage 0 on its border),
    centred at ``(cx, cy)``, rotated by ``ang`` and scaled by ``sc``, into ``img``
    (bilinear sampling)."""
    h, w = img.shape
    c = np.cos(ang)
    s = np.sin(ang)
    ex = abs(c) * 0.5 * sw * sc + abs(s) * 0.5 * sh * sc
    ey = abs(s) * 0.5 * sw * sc + abs(c) * 0.5 * sh * sc
    xa = max(int(np.floor(cx - ex - 1.0)), 0)
    xb = min(int(np.ceil(cx + ex + 1.0)), w - 1)
    ya = max(int(np.floor(cy - ey - 1.0)), 0)
    yb = min(int(np.ceil(cy + ey + 1.0)), h - 1)
    inv = 1.0 / sc
    umax = sw - 1.0
    vmax = sh - 1.0
    for y in range(ya, yb + 1):
        py = y + 0.5 - cy
        for x in range(xa, xb + 1):
            px = x + 0.5 - cx
            u = (c * px + s * py) * inv + 0.5 * sw - 0.5
            v = (-s * px + c * py) * inv + 0.5 * sh - 0.5
            if u < 0.0 or v < 0.0 or u >= umax or v >= vmax:
                continue  # only the sprite's empty border (and beyond) is sampled there
            x0 = int(u)
            y0 = int(v)
            fx = u - x0
            fy = v - y0
            i = off + y0 * sw + x0
            w00 = (1.0 - fx) * (1.0 - fy)
            w01 = fx * (1.0 - fy)
            w10 = (1.0 - fx) * fy
            w11 = fx * fy
            a = w00 * alpha[i] + w01 * alpha[i + 1] + w10 * alpha[i + sw] + w11 * alpha[i + sw + 1]
            if a <= 0.0:
                continue
            val = w00 * value[i] + w01 * value[i + 1] + w10 * value[i + sw] + w11 * value[i + sw + 1]
            img[y, x] = img[y, x] * (1.0 - a) + val * a


@nb.njit(cache=True, nogil=True)
def _shifted(bg, ox, oy, base):
    """``base [H, W]`` = ``bg`` seen from offset ``(ox, oy)`` px (bilinear; the same
    weights everywhere since the shift is uniform; indices clamped to ``bg``)."""
    h, w = base.shape
    bh, bw = bg.shape
    ix = int(np.floor(ox))
    iy = int(np.floor(oy))
    fx = ox - ix
    fy = oy - iy
    for y in range(h):
        y0 = min(max(y + iy, 0), bh - 1)
        y1 = min(max(y + iy + 1, 0), bh - 1)
        for x in range(w):
            x0 = min(max(x + ix, 0), bw - 1)
            x1 = min(max(x + ix + 1, 0), bw - 1)
            base[y, x] = ((1.0 - fy) * ((1.0 - fx) * bg[y0, x0] + fx * bg[y0, x1])
                          + fy * ((1.0 - fx) * bg[y1, x0] + fx * bg[y1, x1]))


@nb.njit(cache=True, nogil=True)
def draw_frames(bg, margin, camera, gain, illum, alpha, value, sprite_shape, part_sprite, parts, base, last, out):
    """Frames ``out [n, H, W]``: the background at the camera offset (``base`` caches it
    while the camera is still; ``last`` [2] its offset), the parts back to front, times
    the illumination and the gain, clipped to ``[MIN_INTENSITY, 1]``."""
    n = out.shape[0]
    h, w = base.shape
    for f in range(n):
        ox = camera[f, 0] + margin
        oy = camera[f, 1] + margin
        if ox != last[0] or oy != last[1]:
            _shifted(bg, ox, oy, base)
            last[0] = ox
            last[1] = oy
        img = out[f]
        img[:, :] = base
        for k in range(part_sprite.size):
            sp = part_sprite[k]
            _draw_part(img, alpha, value, sprite_shape[sp, 0], sprite_shape[sp, 1], sprite_shape[sp, 2],
                       parts[f, k, 0], parts[f, k, 1], parts[f, k, 2], parts[f, k, 3])
        g = gain[f]
        for y in range(h):
            for x in range(w):
                v = img[y, x] * illum[y, x] * g
                img[y, x] = min(max(v, MIN_INTENSITY), 1.0)
