"""Writing clips: MP4 (H.264) or GIF files of rendered frames, and the buffer of the
last seconds of a stream that the window's "save clip" exports.

* :func:`check_clip_output` -- an output path checked before any work.
* :class:`ClipWriter` -- streams pictures into an MP4 (H.264, yuv420p) or a GIF,
  chosen by the suffix; written to a temporary file in the same folder and renamed, so
  a failure never leaves half a file nor destroys a previous one.
* :class:`ClipBuffer` -- the last ``seconds`` of :class:`~dvsstream.render.clip.ClipFrame`,
  sampled at ``fps`` by stream time; :meth:`ClipBuffer.export` draws
  (:func:`~dvsstream.render.clip.render_frame`) and writes them.

PyAV (with its own FFmpeg) and Pillow are imported only when a clip is written; nothing
is downloaded.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

from dvsstream.errors import DvsstreamError
from dvsstream.render.clip import MIN_HEIGHT, ClipFrame, render_frame

__all__ = [
    "CLIP_FORMATS",
    "DEFAULT_FPS",
    "ClipBuffer",
    "ClipWriter",
    "check_clip_output",
]

#: clip formats by file suffix
CLIP_FORMATS = {".mp4": "mp4", ".gif": "gif"}
#: frames per second of stream time, by default
DEFAULT_FPS = 20.0


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
