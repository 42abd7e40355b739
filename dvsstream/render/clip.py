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

#: the region's outline (the window's dashed white) and the standing note's colours
#: (the window's amber note: ``gui.qt.theme``)
OUTLINE = (230, 233, 238)
NOTE_FILL, NOTE_EDGE, NOTE_TEXT = (58, 47, 18), (107, 84, 32), (255, 207, 102)

__all__ = [
    "ClipFrame",
    "bar_layout",
    "legend_items",
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
    on the patch grid (:func:`~dvsstream.render.display.overlay_map`) of the region the
    model sees, or None for no overlay; ``levels``: its colour levels
    (:func:`~dvsstream.render.display.overlay_levels`). ``region``: that region
    ``(x0, y0, w, h)`` in sensor pixels, outlined over the whole sensor as the window
    draws it (None: the whole sensor). ``note``: a standing caveat shown above the bars
    (:func:`~dvsstream.render.display.domain_note`; "" for none)."""

    events: np.ndarray
    t_us: int
    class_names: tuple[str, ...] = ()
    probs: Optional[np.ndarray] = None
    label: Optional[int] = None
    attention: Optional[np.ndarray] = None
    levels: tuple[float, float] = (0.0, 1.0)
    region: Optional[tuple[int, int, int, int]] = None
    note: str = ""

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
        if self.region is not None:
            object.__setattr__(self, "region", tuple(int(v) for v in self.region))
        object.__setattr__(self, "note", str(self.note or ""))

    @classmethod
    def from_prediction(cls, event_image: Optional[np.ndarray], t_us: int, class_names: Sequence[str],
                        prediction: Any = None, head_dim: int = 16, overlay: bool = True,
                        sensor_hw: Optional[tuple[int, int]] = None,
                        region: Optional[tuple[int, int, int, int]] = None, note: str = "") -> "ClipFrame":
        """A frame from what the window draws: ``event_image [2, H, W]`` of the whole sensor
        (None: an empty ``sensor_hw`` image), ``t_us`` (µs since the stream's first event),
        the ``region`` the model sees and the window's ``note``, and the latest
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
                   attention=attention, levels=display.overlay_levels(head_dim), region=region, note=note)


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


def _wrap(text: str, size: int, width: float, bold: bool = False) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``width`` px at ``size`` px."""
    font = _font(size, bold)
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(lines[-1] + " " + word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _draw_note(pen: _Painter, note: str, x: float, y: float, w: float) -> float:
    """The standing caveat in a framed amber box (as the window's); returns its height px."""
    size = max(7, pen.px(11.5))
    lines = _wrap(f"⚠ {note}", size, w - pen.px(12))
    line_h = round(size * 1.25)
    height = len(lines) * line_h + pen.px(8)
    pen.box(x, y, x + w, y + height, fill=NOTE_FILL, outline=NOTE_EDGE, width=1)
    for i, line in enumerate(lines):
        pen.text(x + pen.px(6), y + pen.px(4) + i * line_h, line, 11.5, NOTE_TEXT)
    return height


def _draw_panel(pen: _Painter, frame: ClipFrame, x0: int, width: int, height: int) -> list[dict[str, Any]]:
    """The text panel (``x0 .. x0 + width`` px, full ``height``): stream time, top class
    and its probability, true label, the standing note, probability bars, colour legend.
    Returns the bars' :func:`bar_layout` (none before the first prediction)."""
    rows: list[dict[str, Any]] = []
    pad = pen.px(14)
    x, w = x0 + pad, width - 2 * pad
    y = pad
    pen.text(x, y, f"t = {frame.t_us / 1e6:.2f} s", 15, MUTED)
    y += pen.px(28)
    if frame.probs is None or not len(frame.probs):
        pen.text(x, y, "waiting for the first window…", 15, MUTED, max_width=w)
        if frame.note:
            _draw_note(pen, frame.note, x, y + pen.px(30), w)
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
        if frame.note:
            y += _draw_note(pen, frame.note, x, y - pen.px(4), w) + pen.px(4)
        rows = _draw_bars(pen, frame, top, x, y, w, height - pad - pen.px(26) - y)
    _draw_legend(pen, x, height - pad - pen.px(14))
    return rows


def _value_width(pen: _Painter, size: float) -> int:
    """The width px of the values' column: "100 %" at ``size`` units and a gap."""
    return round(_stamp("100 %", max(7, pen.px(size)))[2]) + pen.px(8)


def bar_layout(pen: _Painter, frame: ClipFrame, x: int, y: int, w: int, space: int) -> list[dict[str, Any]]:
    """Where :func:`_draw_bars` puts each class's row, in px: ``{"class", "track", "bar",
    "value", "size"}`` with boxes ``(x0, y0, x1, y1)``. The bars fill a track that ends
    before the values' column, so that a value is never drawn over a bar, at any length;
    ``value`` is the box its text lies in (right-aligned in that column)."""
    rows = _bar_rows(frame)
    row_h = max(8, min(pen.px(26), space // max(1, len(rows))))
    bar_h = max(6, row_h - max(2, pen.px(4)))
    size = min(13.0, (bar_h - 5) / pen.u)
    track_w = w - _value_width(pen, size)
    out = []
    for r, i in enumerate(rows):
        y0 = y + r * row_h
        p = float(frame.probs[i])
        value_w = round(_stamp(_percent(p), max(7, pen.px(size)))[2])
        out.append({"class": i, "size": size, "track": (x, y0, x + track_w, y0 + bar_h),
                    "bar": (x, y0, x + (max(1, round(p * track_w)) if p > 0 else 0), y0 + bar_h),
                    "value": (x + w - value_w, y0, x + w, y0 + bar_h)})
    return out


def _percent(p: float) -> str:
    """A probability as on the window's bars: whole per cent, "<1 %" for a small non-zero one."""
    return "<1 %" if 0 < p < 0.005 else f"{100 * p:.0f} %"


def _draw_bars(pen: _Painter, frame: ClipFrame, top: int, x: int, y: int, w: int,
               space: int) -> list[dict[str, Any]]:
    """One row per class: a track, a bar as long as the probability (the top class in the
    accent colour, the true class outlined), the name over it, and the percentage in a
    column of its own right of the track (:func:`bar_layout`, returned)."""
    rows = bar_layout(pen, frame, x, y, w, space)
    for row in rows:
        i, size = row["class"], row["size"]
        tx0, ty0, tx1, ty1 = row["track"]
        pen.box(tx0, ty0, tx1, ty1, fill=BAR_TRACK)
        if row["bar"][2] > row["bar"][0]:
            pen.box(*row["bar"], fill=ACCENT if i == top else BAR)
        if frame.label == i:
            pen.box(tx0, ty0, tx1, ty1, outline=TRUTH, width=max(1, pen.px(2)))
        ty = ty0 + (ty1 - ty0 - pen.px(size)) / 2 - pen.px(1)
        on_bar = (row["bar"][2], (0, 0, 0)) if i == top else None  # dark over the accent bar
        pen.text(tx0 + pen.px(5), ty, _name(frame.class_names, i), size, TEXT, max_width=tx1 - tx0 - pen.px(10),
                 left=on_bar)
        pen.text(row["value"][0], ty, _percent(float(frame.probs[i])), size, ACCENT if i == top else TEXT)
    return rows


def legend_items() -> tuple[tuple[str, tuple[int, int, int]], ...]:
    """The clip legend's ``(text, colour)`` swatches: ON, OFF, both polarities in one
    pixel (the mix :func:`~dvsstream.render.display.event_rgb` draws at full brightness,
    half ON and half OFF) and the attention at its strongest over the background (as
    :func:`~dvsstream.render.display.blend_overlay` draws it)."""
    both = display.event_rgb(np.full((2, 1, 1), display.EVENT_LEVEL / 2, np.float32))[0, 0]
    return (("ON", tuple(display.EVENT_ON)), ("OFF", tuple(display.EVENT_OFF)),
            ("both", tuple(int(v) for v in both)), ("attention", display.overlay_swatches(2)[-1]))


def _draw_legend(pen: _Painter, x: float, y: float) -> None:
    """``■ ON  ■ OFF  ■ both  ■ attention`` in the display's colours (:func:`legend_items`)."""
    box = pen.px(11)
    for text, colour in legend_items():
        pen.box(x, y + pen.px(2), x + box, y + pen.px(2) + box, fill=tuple(colour))
        x += box + pen.px(4)
        x += pen.text(x, y, text, 13, MUTED) + pen.px(11)


def _dashed_outline(draw, x0: int, y0: int, x1: int, y1: int, colour, width: int, dash: int) -> None:
    """A dashed rectangle with corners ``(x0, y0)`` and ``(x1, y1)`` (inclusive px), as the
    window outlines the region."""
    for a in range(x0, x1 + 1, 2 * dash):
        b = min(a + dash - 1, x1)
        draw.rectangle((a, y0, b, y0 + width - 1), fill=colour)
        draw.rectangle((a, y1 - width + 1, b, y1), fill=colour)
    for a in range(y0, y1 + 1, 2 * dash):
        b = min(a + dash - 1, y1)
        draw.rectangle((x0, a, x0 + width - 1, b), fill=colour)
        draw.rectangle((x1 - width + 1, a, x1, b), fill=colour)


def render_frame(frame: ClipFrame, min_height: int = MIN_HEIGHT, layout: Optional[dict] = None) -> np.ndarray:
    """Compose one clip picture ``uint8 [H', W', 3]`` (even sizes).

    Left: the whole sensor's events (ON red, OFF blue; :func:`~dvsstream.render.display.event_rgb`)
    with the attention tinting the region the model sees
    (:func:`~dvsstream.render.display.blend_overlay`: the window's rule), that region
    outlined (dashed) when it is not the whole sensor, scaled up with nearest neighbour by
    the smallest integer factor that makes them at least ``min_height`` pixels tall.
    Right: stream time, top class and its probability, the true label when known
    (✔ / ✘), the standing note, one bar per class with its value beside it, a colour legend.
    ``layout``: a dict that receives ``"bars"``, where each bar and value went
    (:func:`bar_layout`, picture pixels)."""
    from PIL import Image

    h, w = frame.events.shape[1:]
    scale, image_h, panel_w, total_w = clip_geometry((h, w), min_height)
    rgb = display.event_rgb(frame.events)
    if frame.attention is not None:
        rgb = display.blend_overlay_region(rgb, frame.attention, frame.levels, frame.region)
    picture = Image.new("RGB", (total_w, image_h), BACKGROUND)
    picture.paste(Image.fromarray(rgb).resize((w * scale, h * scale), Image.Resampling.NEAREST), (0, 0))
    pen = _Painter(picture, image_h / 384)
    if frame.region is not None and tuple(frame.region) != (0, 0, w, h):
        x0, y0, rw, rh = frame.region
        xa, ya = max(0, x0) * scale, max(0, y0) * scale
        xb, yb = min(w, x0 + rw) * scale - 1, min(h, y0 + rh) * scale - 1
        if xb > xa and yb > ya:
            _dashed_outline(pen.draw, xa, ya, xb, yb, OUTLINE, max(1, pen.px(1.5)), max(3, pen.px(6)))
    rows = _draw_panel(pen, frame, w * scale, total_w - w * scale, image_h)
    if layout is not None:
        layout["bars"] = rows
    return np.asarray(picture)
