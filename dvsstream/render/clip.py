"""One clip frame, drawn without Qt: a stream's events, attention and top class as a picture.

Qt-free (numpy, Pillow), like :mod:`dvsstream.gui.state`, so that the window's "save
clip" button, ``dvsstream gui --export-clip`` and the headless ``dvsstream render`` share
one engine (writing: :mod:`~dvsstream.render.writer`; the headless render:
:mod:`~dvsstream.render.recording`):

* :class:`ClipFrame` -- what one clip frame shows, stored compactly (event counts as
  ``uint8``, the attention on its patch grid): about ``2 * W * H`` bytes per frame.
* :func:`render_frame` -- a :class:`ClipFrame` -> ``uint8 [H', W', 3]`` picture: the
  events (:func:`~dvsstream.render.display.event_rgb`) with the attention over them
  (:func:`~dvsstream.render.display.blend_overlay`, the window's rule), scaled up by an
  integer factor, and beside them the top class, probability bars, the true label and
  the stream time, in DejaVu Sans.

Pillow is imported only when a frame is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from dvsstream.render import display
from dvsstream.render.display import ACCENT, BACKGROUND, BAR, BAR_TRACK, MUTED, TEXT, TRUTH, WRONG  # the window's palette

__all__ = [
    "ClipFrame",
    "render_frame",
]

#: the event image is scaled up by an integer factor to at least this many pixels tall
MIN_HEIGHT = 384
#: at most this many classes get a bar each (in their fixed order); more: the top few
MAX_BARS = 12
TOP_BARS = 5


# ====================================================================== one frame
@dataclass(frozen=True, eq=False)
class ClipFrame:
    """What one clip frame shows, stored compactly (the constructor copies and converts).

    ``events``: ON/OFF counts ``[2, H, W]`` of the event window (channel 0 OFF, 1 ON, as
    ``Pipeline.snapshot()["event_image"]``), kept as ``uint8`` (counts clipped at 255; the
    display saturates at :data:`~dvsstream.render.display.EVENT_LEVEL`). ``t_us``: stream time,
    µs since the stream's first event. ``class_names``: the model's classes.
    ``probs``: ``float32 [classes]``, or None before the first prediction. ``label``: the
    true class, or None when unknown. ``attention``: spatial attention ``float32 [h, w]``
    on the patch grid (:func:`~dvsstream.render.display.overlay_map`), or None for no overlay;
    ``levels``: its colour levels (:func:`~dvsstream.render.display.overlay_levels`)."""

    events: np.ndarray
    t_us: int
    class_names: tuple[str, ...] = ()
    probs: Optional[np.ndarray] = None
    label: Optional[int] = None
    attention: Optional[np.ndarray] = None
    levels: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        ev = np.asarray(self.events)
        if ev.ndim != 3 or ev.shape[0] != 2:
            raise ValueError(f"events must be [2, H, W] ON/OFF counts, got shape {ev.shape}")
        compact = ev.astype(np.uint8) if ev.dtype == np.uint8 else np.clip(ev, 0, 255).astype(np.uint8)
        object.__setattr__(self, "events", compact)
        object.__setattr__(self, "t_us", int(self.t_us))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if self.probs is not None:
            object.__setattr__(self, "probs", np.array(self.probs, np.float32).reshape(-1))
        if self.label is not None:
            object.__setattr__(self, "label", int(self.label))
        if self.attention is not None:
            object.__setattr__(self, "attention", np.array(self.attention, np.float32))
        object.__setattr__(self, "levels", (float(self.levels[0]), float(self.levels[1])))

    @classmethod
    def from_prediction(cls, event_image: Optional[np.ndarray], t_us: int, class_names: Sequence[str],
                        prediction: Any = None, head_dim: int = 16, overlay: bool = True,
                        sensor_hw: Optional[tuple[int, int]] = None) -> "ClipFrame":
        """A frame from what the window draws: ``event_image [2, H, W]`` (None: an empty
        ``sensor_hw`` image), ``t_us`` (µs since the stream's first event), and the latest
        :class:`~dvsstream.stream.classifier.Prediction` (or None): its probabilities, true label
        and, with ``overlay``, its last block's spatial attention at the window's levels
        for ``head_dim`` (the model's ``dim // heads``)."""
        if event_image is None:
            if sensor_hw is None:
                raise ValueError("no event image and no sensor_hw to make an empty one")
            event_image = np.zeros((2,) + tuple(sensor_hw), np.uint8)
        attention = None
        if prediction is not None and overlay:
            attention = display.overlay_map(getattr(prediction, "attention", None))
        return cls(events=event_image, t_us=t_us, class_names=tuple(class_names),
                   probs=None if prediction is None else prediction.probs,
                   label=None if prediction is None else prediction.label,
                   attention=attention, levels=display.overlay_levels(head_dim))


# ====================================================================== drawing
@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False):
    """DejaVu Sans (shipped with matplotlib, found without importing it) at ``size`` px;
    Pillow's own scalable default font when matplotlib is absent."""
    from PIL import ImageFont

    spec = find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        for root in spec.submodule_search_locations:
            path = Path(root) / "mpl-data" / "fonts" / "ttf" / name
            if path.is_file():
                return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=2048)
def _stamp(text: str, size: int, bold: bool = False, max_width: Optional[int] = None):
    """``text`` rendered once as an anti-aliased mask: ``(mask "L" image, (dx, dy)
    offset of its ink from the text origin, advance width px)``; shortened with an
    ellipsis to fit ``max_width`` px. Cached: class names, percentages and legends
    repeat in every frame."""
    from PIL import Image, ImageDraw

    font = _font(size, bold)
    if max_width is not None and font.getlength(text) > max_width:
        while text and font.getlength(text + "…") > max_width:
            text = text[:-1]
        text += "…"
    x0, y0, x1, y1 = font.getbbox(text)
    mask = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)))
    ImageDraw.Draw(mask).text((-x0, -y0), text, font=font, fill=255)
    return mask, (x0, y0), font.getlength(text)


class _Painter:
    """Draws on a PIL RGB image in a unit ``u`` (pixels per 1/384 of the height)."""

    def __init__(self, picture, u: float) -> None:
        from PIL import ImageDraw

        self.picture, self.u = picture, u
        self.draw = ImageDraw.Draw(picture)

    def px(self, v: float) -> int:
        return round(v * self.u)

    def text(self, x: float, y: float, text: str, size: float, colour, bold: bool = False,
             max_width: Optional[float] = None, left: Optional[tuple[float, Any]] = None) -> float:
        """Draw ``text`` (``size`` in units) with its top-left at ``(x, y)`` px; returns
        its advance width in px. ``left=(x_split, colour)``: the part of the text left of
        ``x_split`` in that colour (text over the end of a bar)."""
        mask, (dx, dy), width = _stamp(text, max(7, self.px(size)), bold,
                                       None if max_width is None else int(max_width))
        at = (round(x) + dx, round(y) + dy)
        self.picture.paste(colour, at, mask)
        if left is not None and left[0] > at[0]:
            part = mask.crop((0, 0, min(mask.width, round(left[0]) - at[0]), mask.height))
            self.picture.paste(left[1], at, part)
        return width

    def box(self, x0: float, y0: float, x1: float, y1: float, fill=None, outline=None, width: int = 1) -> None:
        self.draw.rectangle((round(x0), round(y0), round(x1) - 1, round(y1) - 1), fill=fill, outline=outline,
                            width=width)


def _even(n: int) -> int:
    return n + (n % 2)


def clip_geometry(sensor_hw: tuple[int, int], min_height: int = MIN_HEIGHT) -> tuple[int, int, int, int]:
    """``(scale, image_height, panel_width, total_width)`` in pixels for a ``[H, W]``
    sensor: the event image scaled by the smallest integer reaching ``min_height``, the
    text panel beside it; totals are even (H.264 with yuv420p needs that)."""
    h, w = int(sensor_hw[0]), int(sensor_hw[1])
    scale = max(1, math.ceil(min_height / h))
    image_h = h * scale
    panel_w = round(300 * image_h / 384)
    return scale, _even(image_h), panel_w, _even(w * scale + panel_w)


def _name(names: Sequence[str], i: int) -> str:
    return names[i] if 0 <= i < len(names) else f"class {i}"


def _bar_rows(frame: ClipFrame) -> list[int]:
    """The classes that get a bar: all (fixed order, so bars do not jump in a video)
    when there are at most :data:`MAX_BARS`, else the :data:`TOP_BARS` most probable."""
    n = len(frame.probs)
    if n <= MAX_BARS:
        return list(range(n))
    return [int(i) for i in np.argsort(-frame.probs, kind="stable")[:TOP_BARS]]


def _draw_panel(pen: _Painter, frame: ClipFrame, x0: int, width: int, height: int) -> None:
    """The text panel (``x0 .. x0 + width`` px, full ``height``): stream time, top class
    and its probability, true label, probability bars, colour legend."""
    pad = pen.px(14)
    x, w = x0 + pad, width - 2 * pad
    y = pad
    pen.text(x, y, f"t = {frame.t_us / 1e6:.2f} s", 15, MUTED)
    y += pen.px(28)
    if frame.probs is None or not len(frame.probs):
        pen.text(x, y, "waiting for the first window…", 15, MUTED, max_width=w)
    else:
        top = int(np.argmax(frame.probs))
        pen.text(x, y, _name(frame.class_names, top), 24, ACCENT, bold=True, max_width=w)
        y += pen.px(34)
        pen.text(x, y, f"{100 * frame.probs[top]:.0f} %", 20, TEXT)
        if frame.label is not None:
            tx = x + pen.px(62)
            ok = frame.label == top
            tx += pen.text(tx, y + pen.px(6), "true: ", 13, MUTED)
            tx += pen.text(tx, y + pen.px(6), _name(frame.class_names, frame.label), 13, TRUTH, bold=True,
                           max_width=x + w - tx - pen.px(20))
            pen.text(tx + pen.px(5), y + pen.px(5), "✔" if ok else "✘", 14, TRUTH if ok else WRONG)
        y += pen.px(36)
        _draw_bars(pen, frame, top, x, y, w, height - pad - pen.px(26) - y)
    _draw_legend(pen, x, height - pad - pen.px(14))


def _draw_bars(pen: _Painter, frame: ClipFrame, top: int, x: int, y: int, w: int, space: int) -> None:
    """One row per class: a track, a bar as long as the probability (the top class in the
    accent colour, the true class outlined), the name over it and the percentage."""
    rows = _bar_rows(frame)
    row_h = max(8, min(pen.px(26), space // max(1, len(rows))))
    bar_h = max(6, row_h - max(2, pen.px(4)))
    size = min(13.0, (bar_h - 5) / pen.u)
    for r, i in enumerate(rows):
        y0 = y + r * row_h
        p = float(frame.probs[i])
        pen.box(x, y0, x + w, y0 + bar_h, fill=BAR_TRACK)
        if p > 0:
            pen.box(x, y0, x + max(1, round(p * w)), y0 + bar_h, fill=ACCENT if i == top else BAR)
        if frame.label == i:
            pen.box(x, y0, x + w, y0 + bar_h, outline=TRUTH, width=max(1, pen.px(2)))
        ty = y0 + (bar_h - pen.px(size)) / 2 - pen.px(1)
        pct = f"{100 * p:.0f} %"
        pct_w = _stamp(pct, max(7, pen.px(size)))[2]
        on_bar = (x + round(p * w), (0, 0, 0)) if i == top else None  # dark over the accent bar
        pen.text(x + pen.px(5), ty, _name(frame.class_names, i), size, TEXT, max_width=w - pct_w - pen.px(16),
                 left=on_bar)
        pen.text(x + w - pct_w - pen.px(5), ty, pct, size, TEXT, left=on_bar)


def _draw_legend(pen: _Painter, x: float, y: float) -> None:
    """``■ ON  ■ OFF  ■ attention`` in the display's colours (the attention swatch at its
    strongest, over the background, as :func:`~dvsstream.render.display.blend_overlay` draws it)."""
    items = (("ON", display.EVENT_ON), ("OFF", display.EVENT_OFF), ("attention", display.overlay_swatches(2)[-1]))
    box = pen.px(11)
    for text, colour in items:
        pen.box(x, y + pen.px(2), x + box, y + pen.px(2) + box, fill=tuple(colour))
        x += box + pen.px(5)
        x += pen.text(x, y, text, 13, MUTED) + pen.px(14)


def render_frame(frame: ClipFrame, min_height: int = MIN_HEIGHT) -> np.ndarray:
    """Compose one clip picture ``uint8 [H', W', 3]`` (even sizes).

    Left: the events (ON red, OFF blue; :func:`~dvsstream.render.display.event_rgb`) with the
    attention tinting them (:func:`~dvsstream.render.display.blend_overlay`: the window's rule),
    scaled up with nearest neighbour by the smallest integer factor that makes them at
    least ``min_height`` pixels tall. Right: stream time, top class and its probability,
    the true label when known (✔ / ✘), one bar per class, a colour legend."""
    from PIL import Image

    h, w = frame.events.shape[1:]
    scale, image_h, panel_w, total_w = clip_geometry((h, w), min_height)
    rgb = display.event_rgb(frame.events)
    if frame.attention is not None:
        rgb = display.blend_overlay(rgb, frame.attention, frame.levels)
    picture = Image.new("RGB", (total_w, image_h), BACKGROUND)
    picture.paste(Image.fromarray(rgb).resize((w * scale, h * scale), Image.Resampling.NEAREST), (0, 0))
    _draw_panel(_Painter(picture, image_h / 384), frame, w * scale, total_w - w * scale, image_h)
    return np.asarray(picture)
