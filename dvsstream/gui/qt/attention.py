"""The attention grid: every block's spiking self-attention, one tile per head (the
attention each patch receives over the events, or the token-to-token matrix), with
fixed colour levels and a colour bar."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from dvsstream.gui.qt.panels import Panel
from dvsstream.gui.qt.plots import HEAT_CMAP, MUTED, grid_lines
from dvsstream.render import display

__all__ = ["AttentionGrid", "heat_lut"]

#: the event image under the spatial attention of each head: this share of its brightness
SCENE_UNDER_HEADS = 0.45


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
                    lx, ly = grid_lines(g, g, th, tw, x, y)
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

