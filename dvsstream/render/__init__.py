"""Clips for talks and papers (MP4 / GIF), drawn without Qt: the events with the
attention over them, the top class and probability bars.

* :mod:`~dvsstream.render.display` -- the window's palette and display arrays (event
  colours, attention overlays), shared with the Qt window
* :mod:`~dvsstream.render.clip` -- one clip frame: :class:`ClipFrame`, :func:`render_frame`
* :mod:`~dvsstream.render.writer` -- MP4 / GIF files: :class:`ClipWriter`,
  :class:`ClipBuffer` (the last seconds of a stream), :func:`check_clip_output`
* :mod:`~dvsstream.render.recording` -- the headless ``dvsstream render``:
  :func:`render_recording`

Importing this package imports neither torch nor PyAV; writing a clip imports PyAV,
rendering a recording torch.
"""

from dvsstream.render.clip import ClipFrame, render_frame
from dvsstream.render.recording import RenderSummary, render_recording
from dvsstream.render.writer import CLIP_FORMATS, DEFAULT_FPS, ClipBuffer, ClipWriter, check_clip_output

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
