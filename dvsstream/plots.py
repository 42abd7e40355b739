"""Dependency-free PNG images for headless reports (zlib + struct; no matplotlib, no Qt).

* :func:`write_png` -- an ``uint8 [H, W, 3]`` (or ``[H, W]``) array to a PNG file;
* :func:`confusion_image` / :func:`write_confusion_png` -- a confusion matrix as coloured
  cells (row-normalised: each true class's row sums to 1, colour = share, a perceptual
  dark-blue -> yellow ramp), counts written in the cells, class indices along both axes
  and, optionally, class names beside the rows; drawn with a built-in 5x7 pixel font.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

__all__ = ["write_png", "confusion_image", "write_confusion_png", "colormap"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_png(path, image: np.ndarray) -> Path:
    """Write an 8-bit grey ``[H, W]`` or RGB ``[H, W, 3]`` array as a PNG."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        color_type, channels = 0, 1
    elif img.ndim == 3 and img.shape[2] == 3:
        color_type, channels = 2, 3
    else:
        raise ValueError(f"expected [H, W] or [H, W, 3], got shape {img.shape}")
    h, w = img.shape[:2]
    raw = np.zeros((h, 1 + w * channels), np.uint8)  # filter byte 0 (None) per row
    raw[:, 1:] = img.reshape(h, w * channels)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    payload = PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b"")
    path = Path(path)
    path.write_bytes(payload)
    return path


# ------------------------------------------------------------------ colours
_STOPS = np.array([  # dark blue -> teal -> green -> yellow (viridis-like, perceptually ordered)
    [68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37],
], dtype=np.float64)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> ``uint8`` RGB (``[..., 3]``)."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float64)), 0.0, 1.0) * (len(_STOPS) - 1)
    i = np.minimum(v.astype(int), len(_STOPS) - 2)
    f = (v - i)[..., None]
    return np.rint(_STOPS[i] * (1 - f) + _STOPS[i + 1] * f).astype(np.uint8)


# ------------------------------------------------------------------ a 5x7 font
# each glyph: 7 rows of 5 pixels ('#' on)
_FONT_SRC = {
    "0": " ### #   ##  ### # ### #  ##   # ### ", "1": "  #   ##    #    #    #    #   ### ",
    "2": " ### #   #    #   #   #   #    #####", "3": "#####   #   #     #    ##   # ### ",
    "4": "   #   ##  # # #  # #####   #    # ", "5": "######    ####     #    ##   # ### ",
    "6": "  ##  #   #    #### #   ##   # ### ", "7": "#####    #   #   #   #    #    #   ",
    "8": " ### #   ##   # ### #   ##   # ### ", "9": " ### #   ##   # ####    #   #  ##  ",
    "A": " ### #   ##   #######   ##   ##   #", "B": "#### #   ##   ##### #   ##   ##### ",
    "C": " ### #   ##    #    #    #   # ### ", "D": "###  #  # #   ##   ##   ##  # ###  ",
    "E": "######    #    #### #    #    #####", "F": "######    #    #### #    #    #    ",
    "G": " ### #   ##    # ####   ##   # ####", "H": "#   ##   ##   #######   ##   ##   #",
    "I": " ###   #    #    #    #    #   ### ", "J": "  ###   #    #    #    ##  # ##  ",
    "K": "#   ##  # # #  ##   # #  #  # #   #", "L": "#    #    #    #    #    #    #####",
    "M": "#   ### ### # ##   ##   ##   ##   #", "N": "#   ##   ###  ## # ##  ###   ##   #",
    "O": " ### #   ##   ##   ##   ##   # ### ", "P": "#### #   ##   ##### #    #    #    ",
    "Q": " ### #   ##   ##   ## # ##  #  ## #", "R": "#### #   ##   ##### # #  #  # #   #",
    "S": " ####    #     ###     #    #####  ", "T": "#####  #    #    #    #    #    #  ",
    "U": "#   ##   ##   ##   ##   ##   # ### ", "V": "#   ##   ##   ##   ##   # # #   #  ",
    "W": "#   ##   ##   ## # ## # ## # # # # ", "X": "#   ##   # # #   #   # # #   ##   #",
    "Y": "#   ##   # # #   #    #    #    #  ", "Z": "#####    #   #   #   #   #    #####",
    " ": " " * 35, "-": "               #####               ", ".": " " * 30 + "  #  ",
    "%": "##   ##  #   #   #   #   #  ##   ##", "(": "   #   #   #    #    #     #     # ",
    ")": " #     #     #    #    #   #   #   ", "_": " " * 30 + "#####",
    "/": "         #   #   #   #   #         ", ":": "      ##   ##        ##   ##       ",
    "?": " ### #   #    #   #   #         #  ",
}
_FONT = {}
for _ch, _bits in _FONT_SRC.items():
    _bits = _bits.ljust(35)[:35]
    _FONT[_ch] = np.array([c == "#" for c in _bits], bool).reshape(7, 5)
_GLYPH_W, _GLYPH_H = 6, 8  # with one pixel of spacing


def _text_width(text: str, scale: int) -> int:
    return len(text) * _GLYPH_W * scale


def _draw_text(img: np.ndarray, x: int, y: int, text: str, color, scale: int = 1) -> None:
    """Draw ``text`` with its top-left corner at (x, y); clipped to the image."""
    h, w = img.shape[:2]
    for k, ch in enumerate(text):
        glyph = _FONT.get(ch.upper(), _FONT["?"])
        if scale > 1:
            glyph = glyph.repeat(scale, 0).repeat(scale, 1)
        gx = x + k * _GLYPH_W * scale
        ys, xs = np.nonzero(glyph)
        ys, xs = ys + y, xs + gx
        keep = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        img[ys[keep], xs[keep]] = color


# ------------------------------------------------------------------ confusion matrix
def confusion_image(
    matrix,
    labels: Optional[Sequence[str]] = None,
    cell: Optional[int] = None,
    title: Optional[str] = None,
    scale: int = 2,
) -> np.ndarray:
    """Render a confusion matrix (rows = true class, columns = predicted) as an RGB array.

    Colour: the row-normalised share (each true class's row sums to 1; an empty row stays
    dark). Counts are written in cells wide enough for them. ``labels``: class names drawn
    beside the rows as ``"<index> <name>"`` (indices only when None)."""
    m = np.asarray(matrix, dtype=np.int64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {m.shape}")
    n = m.shape[0]
    digits = max(1, len(str(int(m.max()) if m.size else 0)))
    if cell is None:
        cell = max(20, _text_width("0" * digits, scale) + 6, _GLYPH_H * scale + 6)
    names = [f"{i} {labels[i]}"[:18] if labels is not None else str(i) for i in range(n)]
    gh = _GLYPH_H * scale
    pad = 8
    left = pad + max(_text_width(s, scale) for s in names) + pad if n else pad
    top = pad + (gh + pad if title else 0) + gh + pad  # title, "predicted" caption
    top_idx = top + gh + 4  # column indices under the caption
    width = left + n * cell + pad
    height = top_idx + n * cell + pad + gh + pad  # bottom: "rows: true class"
    img = np.full((height, max(width, _text_width(title or "", scale) + 2 * pad, 300), 3), 255, np.uint8)
    dark = (30, 30, 30)
    if title:
        _draw_text(img, pad, pad, title, dark, scale)
    _draw_text(img, left, top - gh, "predicted", dark, scale)
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros(m.shape, np.float64), where=rows > 0)
    colors = colormap(share)
    for i in range(n):
        y0 = top_idx + i * cell
        _draw_text(img, pad, y0 + (cell - gh) // 2, names[i], dark, scale)
        for j in range(n):
            x0 = left + j * cell
            img[y0:y0 + cell - 1, x0:x0 + cell - 1] = colors[i, j]
            text = str(int(m[i, j]))
            if m[i, j] and _text_width(text, scale) <= cell - 2:
                light = share[i, j] < 0.6  # dark cells get white text
                _draw_text(img, x0 + (cell - _text_width(text, scale)) // 2 + scale, y0 + (cell - gh) // 2 + scale,
                           text, (255, 255, 255) if light else (0, 0, 0), scale)
    for j in range(n):
        text = str(j)
        _draw_text(img, left + j * cell + (cell - _text_width(text, scale)) // 2 + scale, top + 2, text, dark, scale)
    _draw_text(img, pad, top_idx + n * cell + pad, "rows: true class", dark, scale)
    return img


def write_confusion_png(path, matrix, labels: Optional[Sequence[str]] = None, title: Optional[str] = None,
                        scale: int = 2) -> Path:
    """:func:`confusion_image` written to ``path`` as a PNG."""
    return write_png(path, confusion_image(matrix, labels, title=title, scale=scale))
