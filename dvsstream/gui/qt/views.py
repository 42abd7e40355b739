"""pyqtgraph widgets of the window. Each owns its graphics items, created once; an
``update*`` call only swaps data into them (``ImageItem.setImage`` with fixed levels,
``BarGraphItem.setOpts``), the pattern of pyqtgraph's ``VideoSpeedTest`` example.

Every view sits in a :class:`Panel` (its :attr:`frame`): a title line that is elided to
the width it gets (the whole text in its tooltip), a subtitle, and a legend below.

The arrays they draw come from :mod:`dvsstream.gui.state` (Qt-free, tested alone).
Images are row-major with row 0 at the top (``imageAxisOrder='row-major'``, inverted
y axes), as on the sensor.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from dvsstream.gui import state
from dvsstream.render import display

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="#0f1115", foreground="#c9ced6")

__all__ = ["AttentionGrid", "ElidedLabel", "EventView", "HistoryStrip", "Panel", "PredictionPanel", "StatsPanel"]

#: colour map of the attention maps and the probability history
HEAT_CMAP = "inferno"
ACCENT = display.hex_colour(display.ACCENT)
TRUTH = display.hex_colour(display.TRUTH)
WRONG = display.hex_colour(display.WRONG)
MUTED = display.hex_colour(display.MUTED)
BAR = display.hex_colour(display.BAR)
BAR_TRACK = display.hex_colour(display.BAR_TRACK)
#: the event image under the spatial attention of each head: this share of its brightness
SCENE_UNDER_HEADS = 0.45

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


class ElidedLabel(QtWidgets.QLabel):
    """Plain text that never widens its layout: elided to the width it gets (``mode``:
    where the dots go), the whole text in the tooltip when it does not fit.
    :meth:`text` returns the whole text."""

    def __init__(self, text: str = "", parent: Optional[QtWidgets.QWidget] = None,
                 mode: QtCore.Qt.TextElideMode = QtCore.Qt.TextElideMode.ElideRight) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt name)
        self._full = str(text)
        self._elide()

    def text(self) -> str:
        return self._full

    def shown_text(self) -> str:
        """What is on screen (elided)."""
        return super().text()

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        return QtCore.QSize(10, super().minimumSizeHint().height())

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(10, self.contentsRect().width())
        shown = self.fontMetrics().elidedText(self._full, self._mode, width)
        if shown != super().text():
            super().setText(shown)
        self.setToolTip(self._full if shown != self._full else "")


class Panel(QtWidgets.QFrame):
    """A view with a title (bold, elided), a subtitle (muted, elided) above it and a
    legend (rich text, wrapped) below it."""

    def __init__(self, body: QtWidgets.QWidget, title: str = "", parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("panel")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(1)
        self.title = ElidedLabel(title)
        self.title.setObjectName("panelTitle")
        self.subtitle = ElidedLabel("")
        self.subtitle.setObjectName("panelSubtitle")
        self.subtitle.setVisible(False)
        self.legend = QtWidgets.QLabel("")
        self.legend.setObjectName("panelLegend")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.legend.setVisible(False)
        lay.addWidget(self.title)
        lay.addWidget(self.subtitle)
        lay.addWidget(body, 1)
        lay.addWidget(self.legend)

    def set_subtitle(self, text: str) -> None:
        self.subtitle.setText(text)
        self.subtitle.setVisible(bool(text))

    def set_legend(self, html: str) -> None:
        if html != self.legend.text():
            self.legend.setText(html)
        self.legend.setVisible(bool(html))


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


def _grid_lines(h: int, w: int, height: float, width: float, x0: float = 0.0, y0: float = 0.0):
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


# ============================================================================ events
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
        xs, ys = _grid_lines(*self.patch_grid, height=h, width=w, x0=x0, y0=y0)
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


# ============================================================================ attention
def heat_lut(translucent: bool, n: int = 256) -> np.ndarray:
    """RGBA ``uint8 [n, 4]`` of the attention maps: the colour bar's map (inferno);
    ``translucent``: opacity rising from 0 (the scene under it shows) to 1."""
    lut = np.empty((n, 4), np.uint8)
    lut[:, :3] = pg.colormap.get(HEAT_CMAP).getLookupTable(nPts=n, alpha=False)
    lut[:, 3] = np.round(255 * np.sqrt(np.linspace(0.0, 1.0, n))) if translucent else 255
    return lut


def _patch_ticks(tile: tuple[int, int], grid: Optional[tuple[int, int]], kind: str, n_tiles: int,
                 gap: float, axis: int) -> list[tuple[float, str]]:
    """Tick marks in patch coordinates along one axis (0: x, 1: y) of ``n_tiles`` tiles:
    ``spatial``: a tick per patch column/row at the cell's centre; ``matrix``: a tick
    where each patch row's tokens start (token ``r * w`` for row ``r``)."""
    size = tile[1] if axis == 0 else tile[0]
    if kind == "matrix" and grid is not None:
        w = grid[1]
        marks = [(r * w, str(r)) for r in range(grid[0])]
    else:
        marks = [(i + 0.5, str(i)) for i in range(size)]
    step = max(1, int(np.ceil(len(marks) / 4)))
    marks = marks[::step]
    return [(t * (size + gap) + pos, label) for t in range(n_tiles) for pos, label in marks]


class AttentionGrid(pg.GraphicsLayoutWidget):
    """Every block's spiking self-attention, one tile per head: the attention each patch
    receives ``[h, w]`` drawn over a faint copy of the events on the same patch grid, or
    the token-to-token ``q @ k^T`` matrix ``[N, N]`` with patch-row ticks. Fixed colour
    levels (:func:`~dvsstream.render.display.attention_levels`) and a colour bar.

    ``images[block][head]`` are the tiles' heat :class:`~pyqtgraph.ImageItem`\\ s,
    ``scenes[block][head]`` the event images under them (spatial kind)."""

    KIND_TEXT = {
        "matrix": "token × token: spikes a query token (row) shares with a key token (column)",
        "spatial": "where each head looks: the attention each patch receives, over the events",
    }
    BAR_LABEL = {"matrix": "shared spikes", "spatial": "attention (shared spikes)"}
    HELP = {
        "matrix": ("Row i, column j: how many spikes of query token i coincide with key token j "
                   "(q·kᵀ of binary spikes; no softmax). Tokens are numbered in reading order of "
                   "the patch grid: token r·w + c is patch (r, c); ticks mark where each patch row starts."),
        "spatial": ("Each tile: what a patch receives from all queries (mean of q·kᵀ over the queries, "
                    "averaged over the model's window), drawn over the events on the same grid. "
                    "Edge cells can light up without events: the model's tokenizer pads the border of "
                    "its patch grid, so border patches always look different to it. That is the "
                    "checkpoint, not the scene."),
    }

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.frame = Panel(self, "Self-attention")
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.images: list[list[pg.ImageItem]] = []
        self.scenes: list[list[pg.ImageItem]] = []
        self.plots: list[pg.PlotItem] = []
        self.kind = "spatial"
        self.head_dim = 16
        self.patch_grid: Optional[tuple[int, int]] = None
        self.levels = display.attention_levels(self.kind, self.head_dim)
        self._tile: Optional[tuple[int, int]] = None
        self._labels: list[pg.TextItem] = []
        self._grid_curves: list[pg.PlotCurveItem] = []
        self._rects: list[list[QtCore.QRectF]] = []
        self.bar: Optional[pg.ColorBarItem] = None
        self.configure(0, 0, 16, "spatial")

    def configure(self, depth: int, heads: int, head_dim: int, kind: str,
                  grid: Optional[tuple[int, int]] = None) -> None:
        """(Re)create the tiles for a model with ``depth`` blocks of ``heads`` heads on
        a ``grid = (rows, cols)`` patch grid."""
        self.clear()
        self.kind, self.head_dim = kind, head_dim
        self.patch_grid = tuple(grid) if grid else self.patch_grid
        self.levels = display.attention_levels(kind, head_dim)
        self.images, self.scenes, self.plots, self._labels, self._grid_curves = [], [], [], [], []
        self._tile = None
        n_text = f"{depth} block{'s' if depth != 1 else ''} × {heads} heads" if depth else "no model"
        self.frame.title.setText(f"Self-attention · {n_text}")
        self.frame.set_subtitle(self.KIND_TEXT[kind] if depth else "")
        self.frame.setToolTip(self.HELP[kind])
        cols = display.grid_shape(depth)[1] if depth > 2 else max(depth, 1)
        for b in range(depth):
            r, c = divmod(b, cols)
            self.addItem(self._block_plot(b, heads, depth), row=r, col=c)
        self._add_colour_bar(row=(depth - 1) // cols + 1 if depth else 0, cols=cols)
        self.clear_maps(self._default_tile())

    def _block_plot(self, block: int, heads: int, depth: int) -> pg.PlotItem:
        plot = pg.PlotItem(enableMenu=False)
        plot.setMouseEnabled(False, False)
        plot.hideButtons()
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.hideAxis("bottom")
        plot.showAxis("top")
        small = QtGui.QFont()
        small.setPointSize(7)
        for name in ("top", "left"):
            axis = plot.getAxis(name)
            axis.setStyle(tickFont=small, tickLength=-3)
            axis.setTextPen(MUTED)
        if depth > 1:
            plot.setTitle(f"<span style='color:{MUTED};font-size:8pt'>block {block}</span>")
        self.plots.append(plot)
        row_images, row_scenes = [], []
        translucent = self.kind == "spatial"
        for h in range(heads):
            if translucent:
                scene = pg.ImageItem(axisOrder="row-major")
                plot.addItem(scene)
                row_scenes.append(scene)
            img = pg.ImageItem(axisOrder="row-major")
            img.setLookupTable(heat_lut(translucent))
            img.setZValue(2)
            plot.addItem(img)
            row_images.append(img)
            text = pg.TextItem(f"head {h}", color="#e6e9ee", anchor=(0, 0), fill=(15, 17, 21, 150))
            font = QtGui.QFont()
            font.setPointSize(7)
            text.setFont(font)
            text.setZValue(5)
            plot.addItem(text)
            self._labels.append(text)
        curve = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen((255, 255, 255, 40), width=1))
        curve.setZValue(4)
        plot.addItem(curve)
        self._grid_curves.append(curve)
        self.images.append(row_images)
        self.scenes.append(row_scenes)
        return plot

    def _add_colour_bar(self, row: int, cols: int) -> None:
        options = dict(values=self.levels, colorMap=HEAT_CMAP, interactive=False, width=10,
                       label=self.BAR_LABEL[self.kind], orientation="horizontal")
        try:
            self.bar = pg.ColorBarItem(colorMapMenu=False, **options)
        except TypeError:  # pyqtgraph < 0.13.4 has no colour map menu to switch off
            self.bar = pg.ColorBarItem(**options)
        self.bar.setToolTip(self.HELP[self.kind])
        self.addItem(self.bar, row=row, col=0, colspan=max(1, cols))

    def _default_tile(self) -> tuple[int, int]:
        if self.patch_grid is None:
            return (8, 8)
        h, w = self.patch_grid
        return (h * w, h * w) if self.kind == "matrix" else (h, w)

    def layout_tiles(self, tile: tuple[int, int]) -> None:
        """Place each block's head tiles (``tile`` = one map's ``(rows, cols)``, the shape
        of the images they hold now) in a grid, with ticks in patch coordinates."""
        self._tile = tile
        th, tw = tile
        gap = max(1.0, 0.08 * max(th, tw))
        k = 0
        self._rects = []
        for plot, row_images, row_scenes, curve in zip(self.plots, self.images, self.scenes, self._grid_curves):
            self._rects.append([])
            rows, cols = display.grid_shape(len(row_images))
            xs, ys = [], []
            for h, img in enumerate(row_images):
                r, c = divmod(h, cols)
                x, y = c * (tw + gap), r * (th + gap)
                rect = QtCore.QRectF(x, y, tw, th)
                self._rects[-1].append(rect)
                img.setRect(rect)
                if row_scenes:
                    row_scenes[h].setRect(rect)
                self._labels[k].setPos(x, y)
                k += 1
                if self.kind == "matrix" and self.patch_grid is not None:
                    g = self.patch_grid[0]
                    lx, ly = _grid_lines(g, g, th, tw, x, y)
                    xs.append(lx)
                    ys.append(ly)
            curve.setData(np.concatenate(xs) if xs else [], np.concatenate(ys) if ys else [])
            plot.getAxis("top").setTicks([_patch_ticks(tile, self.patch_grid, self.kind, cols, gap, 0), []])
            plot.getAxis("left").setTicks([_patch_ticks(tile, self.patch_grid, self.kind, rows, gap, 1), []])
            plot.setRange(xRange=(-gap / 2, cols * (tw + gap) - gap / 2),
                          yRange=(-gap / 2, rows * (th + gap) - gap / 2), padding=0)

    def clear_maps(self, tile: Optional[tuple[int, int]] = None) -> None:
        th, tw = tile or self._tile or (8, 8)
        for row_images in self.images:
            for img in row_images:
                img.setImage(np.zeros((th, tw), np.float32), autoLevels=False, levels=self.levels)
        for row_scenes in self.scenes:
            for scene in row_scenes:
                scene.setImage(np.zeros((1, 1, 3), np.uint8), autoLevels=False, levels=(0, 255))
        self.layout_tiles((th, tw))

    def set_kind(self, kind: str) -> None:
        if kind != self.kind:
            self.configure(len(self.images), len(self.images[0]) if self.images else 0, self.head_dim, kind)

    def update_maps(self, maps: dict[int, np.ndarray]) -> None:
        """``maps``: block -> ``[heads, rows, cols]`` (from :func:`display.attention_maps`)."""
        for b, row_images in enumerate(self.images):
            arr = maps.get(b)
            if arr is None:
                continue
            for h, img in enumerate(row_images[: arr.shape[0]]):
                img.setImage(arr[h], autoLevels=False, levels=self.levels)
            if tuple(arr.shape[-2:]) != self._tile:  # setRect scales the image it holds
                self.layout_tiles(tuple(arr.shape[-2:]))

    def update_scene(self, rgb: Optional[np.ndarray]) -> None:
        """The event picture ``uint8 [H, W, 3]`` under every spatial tile, dimmed to
        :data:`SCENE_UNDER_HEADS` (a no-op for the token matrix)."""
        if rgb is None or not any(self.scenes):
            return
        n_tiles = sum(len(s) for s in self.scenes)
        stride = max(1, int(np.ceil(max(rgb.shape[:2]) / (128 if n_tiles <= 4 else 64))))
        dim = (rgb[::stride, ::stride].astype(np.float32) * SCENE_UNDER_HEADS).astype(np.uint8)
        for row_scenes, rects in zip(self.scenes, self._rects):
            for scene, rect in zip(row_scenes, rects):
                reshape = scene.image is None or scene.image.shape != dim.shape
                scene.setImage(dim, autoLevels=False, levels=(0, 255))
                if reshape:  # setRect scales the image it holds
                    scene.setRect(rect)

    def displayed_shape(self) -> Optional[tuple[int, ...]]:
        """Shape of one displayed tile (``(N, N)`` or ``(h, w)``), None without tiles."""
        for row_images in self.images:
            for img in row_images:
                return None if img.image is None else tuple(img.image.shape)
        return None


# ============================================================================ predictions
class PredictionPanel(QtWidgets.QWidget):
    """Top class and confidence, the true label when the recording has one (green when
    the top class matches it, red when not), one probability bar per class (the top one
    in amber, the true one outlined in green) on a full-length track with its value in
    per cent, and a note when the model is used outside the data it was trained on."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.frame = Panel(self, "Prediction")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(2, 0, 2, 0)
        lay.setSpacing(2)
        self.top_label = QtWidgets.QLabel("–")
        self.top_label.setObjectName("topClass")
        self.top_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.top_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.truth_label = QtWidgets.QLabel("")
        self.truth_label.setObjectName("truth")
        self.truth_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.truth_label.setWordWrap(True)
        self.domain_label = QtWidgets.QLabel("")
        self.domain_label.setObjectName("domain")
        self.domain_label.setWordWrap(True)
        self.domain_label.setVisible(False)
        lay.addWidget(self.top_label)
        lay.addWidget(self.truth_label)
        lay.addWidget(self.domain_label)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.ci.setContentsMargins(0, 4, 10, 0)
        lay.addWidget(self.plots, 1)

        self.bars_plot = self.plots.addPlot(row=0, col=0)
        _static_plot(self.bars_plot)
        self.bars_plot.setXRange(-0.05, 1.16, padding=0)  # room for the "0" and "100 %" labels
        axis = self.bars_plot.getAxis("bottom")
        axis.setTicks([[(0.0, "0"), (0.5, "50 %"), (1.0, "100 %")], [(0.25, ""), (0.75, "")]])
        self.bars_plot.setLabel("bottom", "probability")
        self.bars_plot.showGrid(x=True, alpha=0.15)
        self.tracks = pg.BarGraphItem(x0=np.zeros(1), y=np.zeros(1), height=0.72, width=np.ones(1),
                                      brush=pg.mkBrush(BAR_TRACK), pen=pg.mkPen(None))
        self.bars_plot.addItem(self.tracks)
        self.bars = pg.BarGraphItem(x0=np.zeros(1), y=np.zeros(1), height=0.72, width=np.zeros(1))
        self.bars.setZValue(1)
        self.bars_plot.addItem(self.bars)
        self.values: list[pg.TextItem] = []
        self.class_names: list[str] = []
        self.set_classes([])

    def set_classes(self, names: Sequence[str]) -> None:
        self.class_names = list(names)
        _class_axis(self.bars_plot, self.class_names)
        m = max(len(self.class_names), 1)
        self.tracks.setOpts(x0=np.zeros(m), y=np.arange(m), width=np.full(m, 1.0 if self.class_names else 0.0))
        for item in self.values:
            self.bars_plot.removeItem(item)
        self.values = []
        font = QtGui.QFont()
        font.setPointSize(8)
        for i in range(len(self.class_names)):
            text = pg.TextItem("", color="#e6e9ee", anchor=(0, 0.5))
            text.setFont(font)
            text.setZValue(3)
            text.setPos(0.01, i)
            self.bars_plot.addItem(text)
            self.values.append(text)
        self.update_prediction(None)

    def set_domain_note(self, text: Optional[str]) -> None:
        """A standing note above the bars (None: hidden): the model meets data unlike
        what it was trained on."""
        self.domain_label.setText(f"⚠ {text}" if text else "")
        self.domain_label.setVisible(bool(text))

    def update_prediction(self, pred) -> None:
        """Bars and headline of the latest :class:`~dvsstream.stream.pipeline.Prediction` (or None)."""
        n = len(self.class_names)
        if pred is None or n == 0:
            m = max(n, 1)
            self.bars.setOpts(x0=np.zeros(m), y=np.arange(m), width=np.zeros(m))
            for text in self.values:
                text.setText("")
            self.top_label.setText(f"<span style='font-size:20pt;font-weight:700;color:{MUTED}'>"
                                   f"{'waiting…' if n else 'no model'}</span>")
            self.truth_label.setText("")
            return
        probs = np.asarray(pred.probs, np.float64)[:n]
        top = int(np.argmax(probs))
        brushes = [pg.mkBrush(ACCENT if i == top else BAR) for i in range(n)]
        pens = [pg.mkPen(TRUTH, width=2.5) if pred.label == i else pg.mkPen(None) for i in range(n)]
        self.bars.setOpts(x0=np.zeros(n), y=np.arange(n), width=probs, brushes=brushes, pens=pens)
        for i, (text, p) in enumerate(zip(self.values, probs)):
            inside = p > 0.6  # a long bar holds its value at its end, a short one has it after
            text.setText(_percent(p))
            text.setColor("#15181e" if inside else "#e6e9ee")
            text.setAnchor((1, 0.5) if inside else (0, 0.5))
            text.setPos(float(p) - 0.015 if inside else float(p) + 0.015, i)
        name, value = self.class_names[top], f"{probs[top] * 100:.0f} %"
        pt = self._headline_pt(f"{name}  {value}")
        self.top_label.setToolTip(f"{name}  {value}")
        self.top_label.setText(
            f"<span style='font-size:{pt}pt;font-weight:700;color:{ACCENT}'>{name}</span>"
            f"<span style='font-size:{max(10, pt - 4)}pt;color:#e6e9ee'>&nbsp;&nbsp;{value}</span>")
        if pred.label is not None and 0 <= pred.label < n:
            ok = pred.label == top
            mark = (f"<span style='color:{TRUTH}'>✔ correct</span>" if ok
                    else f"<span style='color:{WRONG}'>✘ wrong</span>")
            self.truth_label.setText(
                f"<span style='font-size:12pt;color:{MUTED}'>true label: </span>"
                f"<span style='font-size:12pt;color:{TRUTH};font-weight:600'>{self.class_names[pred.label]}</span>"
                f"<span style='font-size:12pt'>&nbsp;&nbsp;{mark}</span>")
        else:
            self.truth_label.setText(f"<span style='font-size:12pt;color:{MUTED}'>no true label in this stream</span>")

    def _headline_pt(self, text: str, largest: int = 20, smallest: int = 11) -> int:
        """The largest bold point size (down to ``smallest``) at which ``text`` fits the
        headline's width (long class names shrink instead of being cut)."""
        width = max(50, self.top_label.width() - 8)
        font = QtGui.QFont(self.top_label.font())
        font.setBold(True)
        for pt in range(largest, smallest, -1):
            font.setPointSize(pt)
            if QtGui.QFontMetrics(font).horizontalAdvance(text) <= width:
                return pt
        return smallest

    def truth_text(self) -> str:
        """The true-label line as plain text ("" when there is none)."""
        return QtGui.QTextDocumentFragment.fromHtml(self.truth_label.text()).toPlainText()

    def value_texts(self) -> list[str]:
        """The per-class values as shown ("37 %")."""
        return [t.toPlainText() for t in self.values]


def _percent(p: float) -> str:
    """A probability for a bar: whole per cent, "<1 %" for a small non-zero one."""
    if 0 < p < 0.005:
        return "<1 %"
    return f"{p * 100:.0f} %"


class HistoryStrip(pg.GraphicsLayoutWidget):
    """The recent predictions: one column per prediction (newest at the right, the x
    axis in seconds from hop x index), one row per class, brightness = probability;
    the true label, when known, as a green line; a dashed line where the stream jumped
    back (a looping recording started again, or a seek)."""

    MAX_MARKS = 8

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.frame = Panel(self, "Recent predictions")
        self.ci.setContentsMargins(2, 2, 10, 2)
        self.plot = self.addPlot(row=0, col=0)
        _static_plot(self.plot)
        self.plot.setLabel("bottom", "seconds ago (stream time)")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(pg.colormap.get(HEAT_CMAP).getLookupTable(nPts=256))
        self.plot.addItem(self.image)
        self.truth_curve = pg.PlotCurveItem(pen=pg.mkPen(TRUTH, width=2), connect="finite")
        self.truth_curve.setZValue(5)
        self.plot.addItem(self.truth_curve)
        self.marks: list[pg.InfiniteLine] = []
        for _ in range(self.MAX_MARKS):
            line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#e6e9ee", width=1.5, style=QtCore.Qt.PenStyle.DashLine),
                                   label="loop", labelOpts={"position": 0.06, "color": "#e6e9ee"})
            line.setZValue(6)
            line.setVisible(False)
            self.plot.addItem(line)
            self.marks.append(line)
        self.class_names: list[str] = []
        self.hop_s = 0.05
        self.n_cols = 200
        self.has_labels = False
        self.loops_shown = 0
        self.set_classes([])

    def set_classes(self, names: Sequence[str], hop_s: float = 0.05, history_s: float = 10.0) -> None:
        self.class_names = list(names)
        n = max(1, len(self.class_names))
        self.hop_s = hop_s
        self.n_cols = max(2, int(round(history_s / hop_s)))
        _class_axis(self.plot, self.class_names)
        span = self.n_cols * hop_s
        self.plot.setXRange(-span, 0, padding=0)
        self.image.setImage(np.zeros((n, self.n_cols), np.float32), autoLevels=False, levels=(0, 1))
        self.image.setRect(QtCore.QRectF(-span, -0.5, span, n))
        self.truth_curve.setData([], [])
        self._show_marks([])
        self._legend(False, False)

    def _legend(self, labels: bool, jumps: bool) -> None:
        self.has_labels = labels
        parts = ["brightness: probability"]
        if labels:
            parts.append(f"<span style='color:{TRUTH}'>━</span> true label")
        if jumps:
            parts.append("┆ the stream started again here (a loop or a seek)")
        self.frame.set_legend(f"<span style='color:{MUTED}'>" + " &nbsp;·&nbsp; ".join(parts) + "</span>")

    def _show_marks(self, columns: Sequence[int]) -> None:
        columns = list(columns)[-self.MAX_MARKS:]
        for k, (line, col) in enumerate(zip(self.marks, columns)):
            line.setValue((col - self.n_cols) * self.hop_s)
            line.label.setVisible(k == len(columns) - 1)  # one "loop" word, on the newest
            line.setVisible(True)
        for line in self.marks[len(columns):]:
            line.setVisible(False)
        self.loops_shown = len(columns)

    def update_history(self, predictions: Sequence) -> None:
        n = max(1, len(self.class_names))
        probs, labels = state.history_arrays(predictions, n, self.n_cols)
        self.image.setImage(probs, autoLevels=False, levels=(0, 1))
        labelled = bool(np.isfinite(labels).any())
        if labelled:
            x = (np.arange(self.n_cols) - self.n_cols + 0.5) * self.hop_s
            self.truth_curve.setData(x, labels)
        else:
            self.truth_curve.setData([], [])
        shown = self.loops_shown
        self._show_marks(state.history_breaks(predictions, self.n_cols))
        if labelled != self.has_labels or bool(shown) != bool(self.loops_shown):
            self._legend(labelled, bool(self.loops_shown))


def _static_plot(plot: pg.PlotItem) -> None:
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(False, False)
    plot.hideButtons()
    plot.invertY(True)


def _class_axis(plot: pg.PlotItem, names: Sequence[str]) -> None:
    """Class names as the left axis, row ``i`` = class ``i`` from the top."""
    axis = plot.getAxis("left")
    axis.setTicks([[(i, name) for i, name in enumerate(names)]])
    axis.setStyle(tickLength=0)
    metrics = QtGui.QFontMetrics(axis.font())
    axis.setWidth(max([metrics.horizontalAdvance(name) for name in names] + [20]) + 14)
    plot.setYRange(-0.5, max(1, len(names)) - 0.5, padding=0)


# ============================================================================ stats
class StatsPanel(QtWidgets.QGroupBox):
    """The live figures as ``name  value`` rows (event rate, display fps, inference
    rate, latency, dropped windows, firing rate, energy, stream time, first frame)."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__("Live", parent)
        self.setObjectName("stats")
        self._layout = QtWidgets.QGridLayout(self)
        self._layout.setContentsMargins(10, 6, 10, 6)
        self._layout.setHorizontalSpacing(14)
        self._layout.setVerticalSpacing(3)
        self._layout.setColumnStretch(1, 1)
        self.values: dict[str, QtWidgets.QLabel] = {}

    def set_rows(self, rows: Sequence[tuple[str, str]]) -> None:
        for name, value in rows:
            label = self.values.get(name)
            if label is None:
                row = len(self.values)
                title = QtWidgets.QLabel(name)
                title.setObjectName("statName")
                label = QtWidgets.QLabel()
                label.setObjectName("statValue")
                self._layout.addWidget(title, row, 0)
                self._layout.addWidget(label, row, 1)
                self.values[name] = label
            if label.text() != value:
                label.setText(value)

    def text(self, name: str) -> str:
        label = self.values.get(name)
        return label.text() if label is not None else ""
