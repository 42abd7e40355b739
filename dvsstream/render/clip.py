"""Clips you can share: a stream's events, attention and top class as MP4 or GIF.

Qt-free (numpy, Pillow, PyAV), like :mod:`dvsstream.gui.state`, so that the window's
"save clip" button, ``dvsstream gui --export-clip`` and the headless ``dvsstream render``
share one engine:

* :class:`ClipFrame` -- what one clip frame shows, stored compactly (event counts as
  ``uint8``, the attention on its patch grid): about ``2 * W * H`` bytes per frame.
* :func:`render_frame` -- a :class:`ClipFrame` -> ``uint8 [H', W', 3]`` picture: the
  events (:func:`~dvsstream.render.display.event_rgb`) with the attention over them
  (:func:`~dvsstream.render.display.blend_overlay`, the window's rule), scaled up by an
  integer factor, and beside them the top class, probability bars, the true label and
  the stream time, in DejaVu Sans.
* :class:`ClipBuffer` -- the last ``seconds`` of frames, sampled at ``fps`` by stream
  time; :meth:`ClipBuffer.export` writes them.
* :class:`ClipWriter` -- streams pictures into an MP4 (H.264, yuv420p) or a GIF,
  chosen by the suffix; written to a temporary file in the same folder and renamed, so
  a failure never leaves half a file nor destroys a previous one.
* :func:`render_recording` -- the headless ``dvsstream render``: the live pipeline on a
  recording, deterministic, one frame per ``1 / fps`` of stream time.

PyAV (with its own FFmpeg) and torch are imported only when a clip is written or a
recording rendered; nothing is downloaded.
"""

from __future__ import annotations

import functools
import math
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from dvsstream.errors import DvsstreamError
from dvsstream.render import display
from dvsstream.render.display import ACCENT, BACKGROUND, BAR, BAR_TRACK, MUTED, TEXT, TRUTH, WRONG  # the window's palette

__all__ = [
    "CLIP_FORMATS",
    "DEFAULT_FPS",
    "ClipBuffer",
    "ClipFrame",
    "ClipWriter",
    "RenderSummary",
    "check_clip_output",
    "render_frame",
    "render_recording",
]

#: clip formats by file suffix
CLIP_FORMATS = {".mp4": "mp4", ".gif": "gif"}
#: frames per second of stream time, by default
DEFAULT_FPS = 20.0
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
        :class:`~dvsstream.stream.pipeline.Prediction` (or None): its probabilities, true label
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


# ====================================================================== writing
def check_clip_output(path: os.PathLike | str, overwrite: bool = False) -> tuple[Path, str]:
    """Check an output path before any work: ``(path, "mp4" | "gif")``. Raises a
    one-line :class:`~dvsstream.errors.DvsstreamError` for another suffix, a missing
    folder, or an existing file without ``overwrite``."""
    path = Path(path)
    fmt = CLIP_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DvsstreamError(f"{path}: unknown clip format {path.suffix or '(no suffix)'!r}; "
                             "use .mp4 (H.264) or .gif")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DvsstreamError(f"{path}: the folder {folder} does not exist")
    if path.is_dir():
        raise DvsstreamError(f"{path}: is a folder, expected a clip file name")
    if path.exists() and not overwrite:
        raise DvsstreamError(f"{path} exists; pass --force to overwrite it")
    return path, fmt


class ClipWriter:
    """Streams ``uint8 [H, W, 3]`` pictures (all the same, even size) into an MP4
    (H.264, yuv420p, ``crf`` quality, moov atom first for the web) or a GIF (each frame
    with its own 256-colour palette, no dithering), by the suffix of ``path``.

    Frames go to a hidden temporary file beside ``path``; :meth:`close` renames it over
    ``path`` (``os.replace``), :meth:`abort` (or an exception inside ``with``) deletes
    it: a failure never leaves half a clip nor touches an existing file. ``fps``: frames
    per second of the clip (GIF delays are whole centiseconds: 20 fps is exact, 30 fps
    alternates 3 and 4 cs)."""

    def __init__(self, path: os.PathLike | str, fps: float = DEFAULT_FPS, overwrite: bool = False,
                 crf: int = 18) -> None:
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise DvsstreamError(f"the clip's frame rate must be positive, got {fps}")
        self.path, self.format = check_clip_output(path, overwrite)
        self.fps = float(fps)
        self.crf = int(crf)
        self.frames = 0
        self.size: Optional[tuple[int, int]] = None  # (width, height)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        self._container = None
        self._stream = None

    def _open(self, width: int, height: int) -> None:
        import av

        rate = Fraction(self.fps).limit_denominator(1001)
        if self.format == "mp4":
            self._container = av.open(str(self._tmp), "w", format="mp4", options={"movflags": "+faststart"})
            stream = self._container.add_stream("libx264", rate=rate)
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        else:
            self._container = av.open(str(self._tmp), "w", format="gif")
            stream = self._container.add_stream("gif", rate=rate)
            stream.pix_fmt = "pal8"
        stream.width, stream.height = width, height
        self._stream = stream
        self.size = (width, height)

    def write(self, rgb: np.ndarray) -> None:
        """Append one picture ``uint8 [H, W, 3]``."""
        import av

        rgb = np.ascontiguousarray(rgb, np.uint8)
        height, width = rgb.shape[:2]
        if self._container is None:
            if width % 2 or height % 2:
                raise ValueError(f"clip frames need even sizes, got {width}x{height}")
            self._open(width, height)
        elif (width, height) != self.size:
            raise ValueError(f"frame {self.frames} is {width}x{height}, the clip {self.size[0]}x{self.size[1]}")
        if self.format == "gif":
            frame = av.VideoFrame.from_ndarray(_palettized(rgb), format="pal8")
        else:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.frames  # in the encoder's time base, 1 / fps
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> int:
        """Finish the file and move it into place; returns the number of frames.
        Raises :class:`DvsstreamError` when no frame was written (nothing is created)."""
        if self._container is None:
            raise DvsstreamError(f"{self.path}: no frames to write")
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.frames

    def abort(self) -> None:
        """Drop the temporary file (the output, and any previous file there, untouched)."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception:
                pass
        try:
            self._tmp.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "ClipWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _palettized(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A picture -> ``(indices uint8 [H, W], palette ARGB uint8 [256, 4])`` for PyAV's
    ``pal8``: Pillow's fast-octree palette of this frame, no dithering (flat colours)."""
    from PIL import Image

    image = Image.fromarray(rgb).quantize(colors=256, method=Image.Quantize.FASTOCTREE,
                                          dither=Image.Dither.NONE)
    pal = np.asarray(image.getpalette() or [], np.uint8).reshape(-1, 3)[:256]
    argb = np.zeros((256, 4), np.uint8)
    argb[:, 0] = 255
    argb[: len(pal), 1:] = pal
    return np.asarray(image, np.uint8), argb


# ====================================================================== the last N seconds
class ClipBuffer:
    """The frames of the last ``seconds`` of stream time, sampled at ``fps``.

    :meth:`push` takes frames as often as they come (the window draws up to ~40 fps) and
    keeps one per ``1 / fps`` of stream time (the first in each slot); slots a slow
    display skipped repeat the previous frame (a reference, no copy), so a clip lasts
    as long as the stream time it covers at speed 1. Time going backwards (a seek, a
    loop) or jumping ahead by more than ``max_gap_s`` starts a new stretch: the clip
    shows a cut. A frame of another sensor size or class list empties the buffer.

    Memory: at most ``ceil(seconds * fps)`` compact :class:`ClipFrame` (``2 * W * H``
    bytes each: 10 s at 20 fps of a 128 x 128 sensor is 6.6 MB), never rendered pictures
    (``3 * W' * H'``, ~ 12 times more). Thread-safe: push from the display timer, export
    from another thread."""

    def __init__(self, seconds: float = 10.0, fps: float = DEFAULT_FPS, max_gap_s: float = 1.0) -> None:
        if not (seconds > 0 and fps > 0):
            raise ValueError(f"seconds and fps must be positive, got {seconds} and {fps}")
        self.seconds = float(seconds)
        self.fps = float(fps)
        self.max_gap_us = float(max_gap_s) * 1e6
        self._period_us = 1e6 / self.fps
        self._frames: deque[ClipFrame] = deque(maxlen=max(1, math.ceil(self.seconds * self.fps - 1e-9)))
        self._lock = threading.Lock()
        self._origin: Optional[int] = None  # stream µs of slot 0 of this stretch
        self._slot = -1
        self._latest: Optional[ClipFrame] = None

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def duration_s(self) -> float:
        """Seconds of clip held now (frames / fps)."""
        return len(self._frames) / self.fps

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._origin, self._slot, self._latest = None, -1, None

    def due(self, t_us: int) -> bool:
        """Would a frame at stream time ``t_us`` (µs) be kept? Lets a display skip
        building a :class:`ClipFrame` that :meth:`push` would drop."""
        with self._lock:
            last = self._latest
            if self._origin is None or last is None or t_us < last.t_us or t_us - last.t_us > self.max_gap_us:
                return True
            return int((t_us - self._origin) // self._period_us) > self._slot

    def push(self, frame: ClipFrame) -> bool:
        """Offer a frame; True when it was kept (it opened a new ``1 / fps`` slot)."""
        with self._lock:
            last = self._latest
            if last is not None and (last.events.shape != frame.events.shape
                                     or last.class_names != frame.class_names):
                self._frames.clear()
                self._origin, last = None, None
            if (self._origin is None or last is None or frame.t_us < last.t_us
                    or frame.t_us - last.t_us > self.max_gap_us):
                self._origin, self._slot = frame.t_us, -1  # a new stretch starts here
                last = None
            slot = int((frame.t_us - self._origin) // self._period_us)
            if slot <= self._slot:
                self._latest = frame
                return False
            if last is not None:
                for _ in range(min(slot - self._slot - 1, self._frames.maxlen)):
                    self._frames.append(last)
            self._frames.append(frame)
            self._slot, self._latest = slot, frame
            return True

    def frames(self) -> list[ClipFrame]:
        """A copy of the frames held, oldest first."""
        with self._lock:
            return list(self._frames)

    def export(self, path: os.PathLike | str, fps: Optional[float] = None, overwrite: bool = False,
               min_height: int = MIN_HEIGHT) -> int:
        """Write the frames held to ``path`` (``.mp4`` or ``.gif``); returns how many.
        ``fps``: playback rate (None: the sampling rate, i.e. real time; another value
        plays the same frames slower or faster). Raises a one-line
        :class:`~dvsstream.errors.DvsstreamError` for a bad path, an existing file
        without ``overwrite``, or an empty buffer."""
        frames = self.frames()
        writer = ClipWriter(path, self.fps if fps is None else fps, overwrite=overwrite)
        if not frames:
            raise DvsstreamError(f"{writer.path}: nothing to save yet (no frame in the last {self.seconds:g} s)")
        with writer:
            cache: dict[int, np.ndarray] = {}  # repeated frames are rendered once
            for f in frames:
                picture = cache.get(id(f))
                if picture is None:
                    cache.clear()
                    picture = cache[id(f)] = render_frame(f, min_height)
                writer.write(picture)
        return writer.frames


# ====================================================================== headless rendering
@dataclass
class RenderSummary:
    """What :func:`render_recording` wrote: ``frames`` at ``fps`` (``duration_s`` of clip
    = of stream time), ``size`` ``(width, height)`` px, ``bytes`` on disk, the stream
    stretch ``start_s .. start_s + duration_s`` (s since the first event), ``wall_s``."""

    path: str
    frames: int
    fps: float
    size: tuple[int, int]
    bytes: int
    start_s: float
    wall_s: float
    checkpoint: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


_END = object()


class _SampleTap:
    """Wraps a recording for :class:`~dvsstream.stream.pipeline.Pipeline` and takes the event
    image at each sample time ``t_k = t_first + k * 1e6 / fps`` (absolute µs).

    It runs in the pipeline's source thread. A packet is handed to the pipeline first;
    when the pipeline asks for the next one, it has binned that packet, updated its event
    view and queued the windows it closed. Sample ``k`` is taken once a packet reached
    ``t_k`` (every window ending at or before ``t_k`` is then queued): the view as it was
    at ``t_k`` -- after this packet if its bins end by ``t_k``, else before it (a silent
    gap) -- with the count of windows queued so far. Samples go to ``out`` (bounded: the
    pipeline waits for the encoder)."""

    def __init__(self, source, t_first: int, fps: float, n_max: Optional[int], out: queue.Queue,
                 abort: threading.Event) -> None:
        self._source = source
        self._t_first, self._period = int(t_first), 1e6 / fps
        self._n_max = n_max
        self._out, self._abort = out, abort
        self.pipe = None  # set once the pipeline is built
        self._k = 0

    def __getattr__(self, name: str) -> Any:  # sensor_size, labels, kind, speed, close, stats...
        return getattr(self._source, name)

    def _t(self, k: int) -> int:
        return self._t_first + round(k * self._period)

    def _put(self, item: Any) -> None:
        while not self._abort.is_set():
            try:
                self._out.put(item, timeout=0.1)
                return
            except queue.Full:
                pass

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            for packet in self._source:
                if self._n_max is not None and self._k >= self._n_max:
                    return
                t_last = int(packet["t"][-1])
                due = self._t(self._k) <= t_last
                before = self.pipe.view.read() if due else None
                yield packet
                if due:
                    after = self.pipe.view.read()
                    windows = self.pipe.stats.windows
                    while (self._n_max is None or self._k < self._n_max) and self._t(self._k) <= t_last:
                        t_k = self._t(self._k)
                        image = after[0] if after[1] is None or after[1] <= t_k else before[0]
                        self._put((self._k, t_k, image, windows))
                        self._k += 1
        finally:
            self._put(_END)


def _time_range(path: str) -> tuple[int, Optional[int]]:
    """A recording's first event time and, when its header knows it, its last (µs)."""
    from dvsstream.io import open_source

    with open_source(path) as src:
        end = src.end_time_us
        if src.start_time_us is not None:
            return int(src.start_time_us), None if end is None else int(end)
        for packet in src:
            return int(packet["t"][0]), None if end is None else int(end)
    raise DvsstreamError(f"{path}: the recording holds no events")


def _check_render(source: str, out: os.PathLike | str, start_s: float, duration_s: Optional[float],
                  fps: float, overwrite: bool) -> tuple[ClipWriter, int]:
    """Check :func:`render_recording`'s arguments (one-line errors, no torch): the
    writer for ``out`` and the recording's first event time (µs)."""
    if not (math.isfinite(start_s) and start_s >= 0):
        raise DvsstreamError(f"--start must be 0 or more seconds, got {start_s:g}")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise DvsstreamError(f"--duration must be a positive number of seconds, got {duration_s:g}")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise DvsstreamError(f"--fps must be a positive number of frames per second, got {fps:g}")
    writer = ClipWriter(out, fps, overwrite=overwrite)
    if not os.path.isfile(source):
        raise DvsstreamError(f"{source}: no such recording (render takes a recording file)")
    t0, t_last = _time_range(source)
    if t_last is not None and t0 + start_s * 1e6 > t_last:
        raise DvsstreamError(f"{source}: --start {start_s:g} s is past the end of the recording "
                             f"({(t_last - t0) / 1e6:.2f} s)")
    return writer, t0


def render_recording(source: str, out: os.PathLike | str, *, checkpoint: Optional[str] = None,
                     start_s: float = 0.0, duration_s: Optional[float] = None, fps: float = DEFAULT_FPS,
                     overwrite: bool = False, device: Optional[str] = None, min_height: int = MIN_HEIGHT,
                     progress: Optional[Callable[[int], None]] = None) -> RenderSummary:
    """Render a clip of a recording headless: the live pipeline as ``dvsstream run``
    runs it on a file (unpaced, nothing skipped: deterministic), with attention taps and
    the event view, one frame per ``1 / fps`` of stream time from ``start_s`` (seconds
    since the first event) for ``duration_s`` (None: to the last event).

    Reading starts one model window before ``start_s`` so that the first frame has a
    full window and a prediction (from 0: the window fills up during the first frames).
    ``progress(frames)`` is called after each frame. Raises a one-line
    :class:`~dvsstream.errors.DvsstreamError` on bad input."""
    wall0 = time.perf_counter()
    writer, t0 = _check_render(source, out, start_s, duration_s, fps, overwrite)  # before torch loads
    t_first = t0 + round(start_s * 1e6)
    from dvsstream.stream.live import REPLAY_PACKET_US
    from dvsstream.stream.pipeline import Pipeline, live_binning, load_classifier_model
    from dvsstream.io import open_source

    samples: queue.Queue = queue.Queue(maxsize=64)  # (k, t_k µs, event image, windows queued)
    preds: queue.Queue = queue.Queue()  # (t_end µs, probs, label, overlay) per prediction, in order
    abort = threading.Event()
    src = open_source(source, packet_us=REPLAY_PACKET_US)
    try:
        loaded = load_classifier_model(checkpoint, device=device)
        if start_s > 0:
            src.seek(max(t0, t_first - loaded.binning.window_us))
        n_max = None if duration_s is None else max(1, round(duration_s * fps))
        tap = _SampleTap(src, t_first, fps, n_max, samples, abort)
        pipe = Pipeline(tap, loaded, binning=live_binning(loaded, tap.sensor_size), mode="step", drop_stale=False,
                        attention=True, firing_rates=False, event_view=True, history=2, max_lag_ms=None,
                        on_prediction=lambda p: preds.put((p.t_end, p.probs, p.label, display.overlay_map(p.attention))))
    except ValueError as exc:
        src.close()
        raise DvsstreamError(f"{source}: {exc}") from None
    except BaseException:
        src.close()
        raise
    tap.pipe = pipe
    config = loaded.model.config
    frame_of = functools.partial(ClipFrame, class_names=tuple(pipe.class_names),
                                 levels=display.overlay_levels(config.dim // config.heads))

    def make_frame(t_k: int, image: np.ndarray, pred: Optional[tuple]) -> ClipFrame:
        image = display.crop_region(image, pipe.binning.roi)  # what the model sees, under its attention
        if pred is None:  # before the first prediction
            return frame_of(events=image, t_us=t_k - t0)
        return frame_of(events=image, t_us=t_k - t0, probs=pred[1], label=pred[2], attention=pred[3])

    pipe.start()
    try:
        _encode(pipe, samples, preds, writer, make_frame, min_height, progress)
        if not writer.frames:
            raise DvsstreamError(f"{source}: nothing to render from --start {start_s:g} s "
                                 "(past the last event)")
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        abort.set()
        pipe.stop()
    return RenderSummary(path=str(writer.path), frames=writer.frames, fps=float(fps), size=writer.size,
                         bytes=os.path.getsize(writer.path), start_s=float(start_s),
                         wall_s=time.perf_counter() - wall0, checkpoint=loaded.checkpoint,
                         warnings=list(src.stats.warnings))


def _encode(pipe, samples: queue.Queue, preds: queue.Queue, writer: ClipWriter,
            make_frame: Callable[[int, np.ndarray, Optional[tuple]], ClipFrame], min_height: int,
            progress: Optional[Callable[[int], None]]) -> None:
    """The main-thread half of :func:`render_recording`: pair each sample with the
    latest prediction whose window ends at or before it (all such windows were queued
    before the sample was taken: wait for their predictions), draw it, encode it."""
    received, pending, current = 0, deque(), None
    while True:
        item = _get(samples, pipe)
        if item is _END:
            break
        k, t_k, image, windows = item
        while received < windows:
            pred = _get(preds, pipe)
            if pred is _END:
                break
            pending.append(pred)
            received += 1
        while pending and pending[0][0] <= t_k:
            current = pending.popleft()
        writer.write(render_frame(make_frame(t_k, image, current), min_height))
        if progress is not None:
            progress(writer.frames)
    if pipe.error is not None:
        raise pipe.error


def _get(q: queue.Queue, pipe) -> Any:
    """The next item of ``q``, waiting; raises the pipeline's error if a thread died,
    returns ``_END`` if the pipeline finished and nothing more will come."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if pipe.error is not None:
                raise pipe.error
            if pipe.finished and not pipe.running:
                try:
                    return q.get_nowait()
                except queue.Empty:
                    return _END
