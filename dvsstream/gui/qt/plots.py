"""What the pyqtgraph views share: pyqtgraph's global options (set once, on import:
row-major images, no antialiasing, the dark background), the window's palette as hex
strings for rich text and pens, and the lines of a patch grid.

Images are row-major with row 0 at the top (``imageAxisOrder='row-major'``, inverted
y axes), as on the sensor.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from dvsstream.render import display

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="#0f1115", foreground="#c9ced6")

__all__ = ["ACCENT", "BAR", "BAR_TRACK", "HEAT_CMAP", "MUTED", "TRUTH", "WRONG", "grid_lines"]

#: colour map of the attention maps and the probability history
HEAT_CMAP = "inferno"
ACCENT = display.hex_colour(display.ACCENT)
TRUTH = display.hex_colour(display.TRUTH)
WRONG = display.hex_colour(display.WRONG)
MUTED = display.hex_colour(display.MUTED)
BAR = display.hex_colour(display.BAR)
BAR_TRACK = display.hex_colour(display.BAR_TRACK)


def grid_lines(h: int, w: int, height: float, width: float, x0: float = 0.0, y0: float = 0.0):
    """Segment end points ``(x, y)`` of the inner lines of an ``h x w`` grid over a
    ``width x height`` rectangle at ``(x0, y0)`` (for ``PlotCurveItem(connect="pairs")``)."""
    xs, ys = [], []
    for c in range(1, w):
        x = x0 + c * width / w
        xs += [x, x]
        ys += [y0, y0 + height]
    for r in range(1, h):
        y = y0 + r * height / h
        xs += [x0, x0 + width]
        ys += [y, y]
    return np.asarray(xs, np.float64), np.asarray(ys, np.float64)

