"""How events and attention look, for the window and the clips alike (no Qt): the
palette, events as RGB, the attention overlay's colours and levels, and the region a
model sees cut out of the sensor image. Image arrays are row-major (``[rows, cols]``,
row 0 at the top)."""

from __future__ import annotations

import math
from typing import Optional, Sequence
import numpy as np


#: attention view kinds: the token-to-token ``q @ k^T`` matrix ``[N, N]`` per head, or
#: the attention every patch receives on the patch grid ``[h, w]`` per head
ATTENTION_KINDS = ("matrix", "spatial")

#: event display: counts per pixel at or above this are drawn at full colour
EVENT_LEVEL = 4.0
#: background, ON and OFF colours of the event display (RGB)
EVENT_BACKGROUND = (18, 20, 26)
EVENT_ON = (255, 72, 56)
EVENT_OFF = (64, 150, 255)
#: the window's palette (RGB), shared by the views and the clips
BACKGROUND = (15, 17, 21)
TEXT = (230, 233, 238)
MUTED = (138, 147, 160)
ACCENT = (255, 176, 0)  # the top class
BAR = (74, 144, 217)  # the other classes
BAR_TRACK = (34, 38, 46)  # a probability bar's empty part
TRUTH = (55, 214, 122)  # the true label
WRONG = (255, 90, 90)
#: attention drawn over the events: this colour, its opacity rising with the attention
#: from 0 at the lower level to :data:`OVERLAY_MAX_ALPHA` at the upper one
OVERLAY_COLOUR = (255, 214, 0)
OVERLAY_MAX_ALPHA = 0.6


# ====================================================================== display arrays
def event_rgb(image: Optional[np.ndarray], level: float = EVENT_LEVEL,
              out: Optional[np.ndarray] = None) -> np.ndarray:
    """ON/OFF counts ``[2, H, W]`` (channel 0 OFF, 1 ON, as the binner emits) ->
    ``uint8 [H, W, 3]``: dark background, ON red, OFF blue, a mix purple.

    Fixed levels: a pixel's brightness saturates at ``level`` events (square-root ramp,
    so that single events stay visible) and never depends on the rest of the frame; its
    hue is the share of ON events."""
    if image is None:
        shape = out.shape if out is not None else (1, 1, 3)
        res = out if out is not None else np.empty(shape, np.uint8)
        res[...] = EVENT_BACKGROUND
        return res
    off = np.asarray(image[0], np.float32)
    on = np.asarray(image[1], np.float32)
    total = on + off
    # brightness from the total count, hue from the ON share: mixed pixels are purple
    bright = np.sqrt(np.clip(total, 0.0, level) / level)
    share = np.divide(on, total, out=np.zeros_like(total), where=total > 0)
    bg = np.asarray(EVENT_BACKGROUND, np.float32)
    col_on = np.asarray(EVENT_ON, np.float32) - bg
    col_off = np.asarray(EVENT_OFF, np.float32) - bg
    rgb = bg + bright[..., None] * (share[..., None] * col_on + (1.0 - share[..., None]) * col_off)
    res = out if out is not None and out.shape == rgb.shape else np.empty(rgb.shape, np.uint8)
    np.clip(rgb, 0, 255, out=rgb)
    res[...] = rgb
    return res


def attention_levels(kind: str, head_dim: int) -> tuple[float, float]:
    """Fixed colour levels of the attention maps, in coincident spikes ``q . k``.

    ``matrix``: a query/key pair of binary spike vectors of ``head_dim`` channels
    coincides in at most ``head_dim`` channels; the scale ends at ``head_dim / 2``.
    ``spatial``: the mean over queries of what each key receives (see
    :func:`attention_maps`); the scale ends at ``head_dim / 4``. (The shipped model,
    head_dim 16: 99.9 % of matrix values are <= 7, spatial values <= 4.5.)"""
    if kind == "matrix":
        return 0.0, max(1.0, head_dim / 2)
    return 0.0, max(0.5, head_dim / 4)


def hex_colour(rgb: Sequence[int]) -> str:
    """``(r, g, b)`` -> ``"#rrggbb"``."""
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb[:3]))


def overlay_lut(n: int = 256) -> np.ndarray:
    """RGBA lookup table ``uint8 [n, 4]`` of the attention overlay: one colour
    (:data:`OVERLAY_COLOUR`), opacity ramping from 0 to :data:`OVERLAY_MAX_ALPHA`."""
    lut = np.empty((n, 4), np.uint8)
    lut[:, :3] = OVERLAY_COLOUR
    lut[:, 3] = np.round(np.linspace(0.0, OVERLAY_MAX_ALPHA * 255, n))
    return lut


def overlay_swatches(n: int = 5, background: Sequence[int] = EVENT_BACKGROUND) -> list[tuple[int, int, int]]:
    """The overlay's colour over ``background`` at ``n`` evenly spaced levels, low to
    high: what the legend shows, the same blend as :func:`blend_overlay` draws."""
    row = np.empty((1, n, 3), np.uint8)
    row[...] = background
    blended = blend_overlay(row, np.linspace(0.0, 1.0, n)[None, :], (0.0, 1.0))
    return [tuple(int(v) for v in px) for px in blended[0]]


def crop_region(image: Optional[np.ndarray], roi: Optional[Sequence[int]], channels_first: bool = True):
    """The part of an image in the region ``roi = (x0, y0, w, h)`` (None: all of it):
    ``[C, H, W]`` (``channels_first``) or ``[H, W, C]`` -> the same layout cropped (a
    view; a copy with zeros where the region reaches past the image's edge, as the
    model sees it)."""
    if image is None or roi is None:
        return image
    from dvsstream.binning import padded_crop

    x0, y0, w, h = (int(v) for v in roi)
    if channels_first:
        return padded_crop(image, x0, y0, w, h)
    return np.moveaxis(padded_crop(np.moveaxis(image, -1, 0), x0, y0, w, h), 0, -1)


def upsample_nearest(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """A patch-grid map ``[h, w]`` -> ``[height, width]``: each output pixel takes the
    cell it lies in (cell ``floor(i * h / height)``), the cells tiling the image exactly."""
    h, w = grid.shape[-2:]
    rows = (np.arange(height) * h) // height
    cols = (np.arange(width) * w) // width
    return grid[..., rows[:, None], cols[None, :]]


def blend_overlay(rgb: np.ndarray, spatial: Optional[np.ndarray], levels: tuple[float, float]) -> np.ndarray:
    """The attention ``spatial [h, w]`` (patch grid) over an event image ``rgb uint8
    [H, W, 3]``: a new ``uint8 [H, W, 3]``, each patch tinted with :data:`OVERLAY_COLOUR`
    at an opacity that rises linearly from 0 at ``levels[0]`` to :data:`OVERLAY_MAX_ALPHA`
    at ``levels[1]`` (clipped). The window's overlay and the clips use this one rule."""
    if spatial is None:
        return rgb.copy()
    lo, hi = float(levels[0]), float(levels[1])
    norm = np.clip((np.asarray(spatial, np.float32) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    alpha = upsample_nearest(norm, rgb.shape[0], rgb.shape[1])[..., None] * OVERLAY_MAX_ALPHA
    col = np.asarray(OVERLAY_COLOUR, np.float32)
    out = rgb.astype(np.float32) * (1.0 - alpha) + col * alpha
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def blend_overlay_region(rgb: np.ndarray, spatial: Optional[np.ndarray], levels: tuple[float, float],
                         roi: Optional[Sequence[int]]) -> np.ndarray:
    """:func:`blend_overlay` over the region ``roi = (x0, y0, w, h)`` of the whole sensor's
    picture ``rgb uint8 [H, W, 3]`` (None: all of it): the attention's patch grid tiles the
    region the model sees, as in the window; the rest of the sensor is left as it is (a new
    array)."""
    if roi is None or spatial is None:
        return blend_overlay(rgb, spatial, levels)
    x0, y0, w, h = (int(v) for v in roi)
    height, width = rgb.shape[:2]
    blended = blend_overlay(crop_region(rgb, roi, channels_first=False), spatial, levels)
    out = rgb.copy()
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
    if xa < xb and ya < yb:
        out[ya:yb, xa:xb] = blended[ya - y0:yb - y0, xa - x0:xb - x0]
    return out


def domain_note(synthetic_only: bool, kind: Optional[str], camera: Optional[str] = None) -> Optional[str]:
    """The standing note when a model trained only on synthetic data (its checkpoint's
    metadata says so) meets real sensor data: a camera, a network stream or a recording
    not made by dvsstream's emulator (``camera`` as the file names it). None otherwise.
    The window shows it above its bars, the clips above theirs."""
    if not synthetic_only:
        return None
    synthetic = kind == "synthetic" or (kind == "file" and str(camera or "").startswith("dvsstream"))
    if synthetic:
        return None
    return ("Trained on synthetic stick figures only (its checkpoint says so): "
            "on real sensor data its predictions are not reliable.")


def overlay_levels(head_dim: int) -> tuple[float, float]:
    """Fixed levels of the attention drawn over the events (the spatial map averaged over
    heads and the window's steps): ``head_dim / 8`` is full opacity. (The shipped model,
    head_dim 16: the 99th percentile of the overlay is 1.9 on its recordings; at
    ``head_dim / 4`` the moving arms were drawn at under 10 % opacity.)"""
    return 0.0, max(0.25, head_dim / 8)


def attention_maps(attention: Optional[dict[int, dict[str, np.ndarray]]], kind: str) -> dict[int, np.ndarray]:
    """A prediction's attention -> block -> ``[heads, rows, cols]`` float32 maps.

    ``matrix``: ``q @ k^T`` per head ``[heads, N, N]`` (row = query token, column = key
    token). ``spatial``: what each key token receives, **averaged** over the N queries
    (the taps sum it) ``[heads, h, w]`` on the patch grid, so both kinds count
    coincident spikes per query/key pair; averaged over the window's T steps
    (``spatial_window``) when the prediction has it, else over the steps just run."""
    if not attention:
        return {}
    out = {}
    for block, maps in sorted(attention.items()):
        if kind == "matrix":
            out[block] = np.asarray(maps["matrix"], np.float32)
        else:
            spatial = np.asarray(maps.get("spatial_window", maps["spatial"]), np.float32)
            n_tokens = spatial.shape[-1] * spatial.shape[-2]
            out[block] = spatial / float(n_tokens)
    return out


def grid_shape(n: int) -> tuple[int, int]:
    """``(rows, cols)`` of a near-square grid for ``n`` tiles, never taller than wide."""
    if n <= 0:
        return 0, 0
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def overlay_map(attention: Optional[dict[int, dict[str, np.ndarray]]], block: int = -1) -> Optional[np.ndarray]:
    """The spatial attention of one block (default: the last), averaged over heads and
    queries, ``[h, w]`` on the patch grid; None without attention."""
    maps = attention_maps(attention, "spatial")
    if not maps:
        return None
    keys = sorted(maps)
    return maps[keys[block]].mean(0)
