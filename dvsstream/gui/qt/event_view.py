"""The event view: the sensor's ON / OFF events of the current window, the spatial
attention over them, the model's patch grid and the region it sees (an outline to drag).

Like every view it owns its graphics items, created once; an ``update*`` call only swaps
data into them (the pattern of pyqtgraph's ``VideoSpeedTest`` example). Images are
row-major with row 0 at the top, as on the sensor.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from dvsstream.gui.qt.panels import Panel
from dvsstream.gui.qt.plots import MUTED, grid_lines
from dvsstream.render import display

__all__ = ["EventView", "event_legend", "fit_region"]

ON_HEX, OFF_HEX = display.hex_colour(display.EVENT_ON), display.hex_colour(display.EVENT_OFF)


def _swatch(colour: str, text: str) -> str:
    return f"<span style='color:{colour}'>■</span>&nbsp;{text}"


def event_legend(overlay: bool) -> str:
    """The event view's legend (HTML): ON, OFF, both, and the attention ramp."""
    both = display.hex_colour(display.event_rgb(np.ones((2, 1, 1), np.float32) * display.EVENT_LEVEL)[0, 0])
    parts = [_swatch(ON_HEX, "ON (brighter)"), _swatch(OFF_HEX, "OFF (darker)"),
             _swatch(both, "both in one pixel")]
    text = " &nbsp; ".join(parts)
    if overlay:
        ramp = "".join(f"<span style='color:{display.hex_colour(c)}'>█</span>" for c in display.overlay_swatches(6)[1:])
        text += f"<br>attention over the events: low {ramp} high (the model's window, mean of its heads)"
    return f"<span style='color:{MUTED}'>{text}</span>"


def _view_box(invert: bool = True) -> pg.ViewBox:
    vb = pg.ViewBox(lockAspect=True, invertY=invert, enableMenu=False)
    vb.setMouseEnabled(False, False)
    return vb


def fit_region(x: float, y: float, w: float, h: float, sensor: tuple[int, int],
               model_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A dragged outline ``(x, y, w, h)`` (sensor pixels, fractional) as the region the
    model can see: whole pixels, the aspect ratio of ``model_size = (width, height)``
    (the width leads; the largest region of that ratio when it does not fit), at least
    the model's size (a smaller region would leave input pixels no event reaches), at
    most the sensor, and inside it (moved back in, the top-left corner kept when it
    can be). Returns ``(x0, y0, w, h)``."""
    sw, sh = (int(v) for v in sensor)
    mw, mh = (int(v) for v in model_size)
    w = max(int(round(w)), mw)
    h = max(int(round(w * mh / mw)), mh)
    scale = min(1.0, sw / w, sh / h)
    if scale < 1.0:
        w, h = max(int(w * scale), mw), max(int(h * scale), mh)
        w, h = min(w, sw), min(h, sh)
    x0 = min(max(int(round(x)), 0), sw - w)
    y0 = min(max(int(round(y)), 0), sh - h)
    return x0, y0, w, h


class EventView(pg.GraphicsLayoutWidget):
    """ON (red) / OFF (blue) event counts of the current window at full sensor
    resolution, with fixed levels; optionally the spatial attention on top (a
    translucent yellow over each patch of the model's grid, :func:`display.overlay_lut`,
    the colours of its legend) and the patch grid as faint lines."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.frame = Panel(self, "Events")
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.view = _view_box()
        self.addItem(self.view, row=0, col=0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setAutoDownsample(False)
        self.view.addItem(self.image)
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setLookupTable(display.overlay_lut())
        self.overlay.setZValue(10)
        self.overlay.setVisible(False)
        self.view.addItem(self.overlay)
        self.grid = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen((255, 255, 255, 34), width=1))
        self.grid.setZValue(11)
        self.view.addItem(self.grid)
        #: the region the model sees, outlined; drag it to move the region, drag its
        #: bottom-right handle to resize it (the top-left corner stays, the aspect ratio
        #: stays the model input's: see :func:`fit_region`)
        self.region_item = pg.ROI((0, 0), (1, 1), movable=True, resizable=False, rotatable=False,
                                  pen=pg.mkPen("#e6e9ee", width=1.5, style=QtCore.Qt.PenStyle.DashLine),
                                  translateSnap=True, scaleSnap=True, snapSize=1.0)
        self.region_handle = self.region_item.addScaleHandle((1, 1), (0, 0), lockAspect=True)
        self.region_item.setZValue(12)
        self.region_item.setVisible(False)
        self.region_item.setToolTip("The region of the sensor the model sees: drag it to move it, "
                                    "drag its corner to resize it")
        self.view.addItem(self.region_item)
        self.region: Optional[tuple[int, int, int, int]] = None  # (x0, y0, w, h); None: the whole sensor
        self.sensor: Optional[tuple[int, int]] = None  # (width, height)
        self.patch_grid: Optional[tuple[int, int]] = None  # (rows, cols) of the model's tokens
        self._rgb: Optional[np.ndarray] = None
        self.frames = 0  # images drawn
        self.set_sensor(128, 128)

    def set_sensor(self, width: int, height: int, window_ms: Optional[float] = None) -> None:
        if self.sensor != (width, height):
            self.sensor = (int(width), int(height))
            self._rgb = display.event_rgb(None, out=np.empty((height, width, 3), np.uint8))
            self.image.setImage(self._rgb, autoLevels=False, levels=(0, 255))
            self.image.setRect(QtCore.QRectF(0, 0, width, height))
            self.overlay.setRect(QtCore.QRectF(0, 0, width, height))
            self.view.setRange(xRange=(0, width), yRange=(0, height), padding=0.01)
            self._draw_grid()
        when = f" · last {window_ms:g} ms" if window_ms else ""
        self.frame.title.setText(f"Events · {width}×{height} sensor{when}")
        self._legend()

    def set_source_text(self, text: str) -> None:
        """What is being shown (the source's name, or why nothing is), as the subtitle."""
        self.frame.set_subtitle(text)

    def set_patch_grid(self, grid: Optional[tuple[int, int]]) -> None:
        """The model's token grid ``(rows, cols)`` drawn as faint lines (None: none)."""
        self.patch_grid = tuple(grid) if grid else None
        self._draw_grid()

    def set_region(self, roi: Optional[tuple[int, int, int, int]]) -> None:
        """The region ``(x0, y0, w, h)`` the model sees (None: the whole sensor): outlined
        when it is not the whole sensor; the attention and the patch grid are drawn over it."""
        self.region = tuple(int(v) for v in roi) if roi is not None else None
        x0, y0, w, h = self._region_rect()
        whole = self.sensor is not None and (x0, y0, w, h) == (0, 0, *self.sensor)
        self.region_item.blockSignals(True)
        self.region_item.setPos((x0, y0), update=False)
        self.region_item.setSize((w, h), update=False)
        if self.sensor is not None:  # the sensor, and the region where it reaches past the edge
            self.region_item.maxBounds = QtCore.QRectF(0, 0, *self.sensor).united(QtCore.QRectF(x0, y0, w, h))
        self.region_item.stateChanged(finish=False)
        self.region_item.blockSignals(False)
        self.region_item.setVisible(not whole)
        self.overlay.setRect(QtCore.QRectF(x0, y0, w, h))
        self._draw_grid()

    def _region_rect(self) -> tuple[int, int, int, int]:
        if self.region is not None:
            return self.region
        w, h = self.sensor or (1, 1)
        return 0, 0, w, h

    def _draw_grid(self) -> None:
        if self.patch_grid is None or self.sensor is None:
            self.grid.setData([], [])
            return
        x0, y0, w, h = self._region_rect()
        xs, ys = grid_lines(*self.patch_grid, height=h, width=w, x0=x0, y0=y0)
        self.grid.setData(xs, ys)

    def _legend(self) -> None:
        self.frame.set_legend(event_legend(self.overlay.isVisible()))

    def update_events(self, image: Optional[np.ndarray]) -> None:
        """Draw ``[2, H, W]`` counts (None: blank)."""
        if image is not None and (self.sensor is None or image.shape[1:] != (self.sensor[1], self.sensor[0])):
            self.set_sensor(image.shape[2], image.shape[1])
        self._rgb = display.event_rgb(image, out=self._rgb)
        self.image.setImage(self._rgb, autoLevels=False, levels=(0, 255))
        self.frames += 1

    @property
    def rgb(self) -> Optional[np.ndarray]:
        """The event picture on screen, ``uint8 [H, W, 3]``."""
        return self._rgb

    def update_overlay(self, spatial: Optional[np.ndarray], levels: tuple[float, float]) -> None:
        """The spatial attention ``[h, w]`` over the events (None: hidden)."""
        if spatial is None:
            if self.overlay.isVisible():
                self.overlay.setVisible(False)
                self._legend()
            return
        self.overlay.setImage(spatial, autoLevels=False, levels=levels)
        if self.sensor is not None:
            self.overlay.setRect(QtCore.QRectF(*self._region_rect()))
        if not self.overlay.isVisible():
            self.overlay.setVisible(True)
            self._legend()

    def clear(self) -> None:
        self.update_events(None)
        self.update_overlay(None, (0, 1))

