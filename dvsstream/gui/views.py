"""pyqtgraph widgets of the window. Each owns its graphics items, created once; an
``update*`` call only swaps data into them (``ImageItem.setImage`` with fixed levels,
``BarGraphItem.setOpts``), the pattern of pyqtgraph's ``VideoSpeedTest`` example.

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

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="#0f1115", foreground="#c9ced6")

__all__ = ["AttentionGrid", "EventView", "HistoryStrip", "PredictionPanel", "StatsPanel"]

#: colour map of the attention maps and the probability history
HEAT_CMAP = "inferno"
ACCENT = "#ffb000"
TRUTH = "#37d67a"
WRONG = "#ff5a5a"
MUTED = "#8a93a0"


def _title(text: str, size: str = "11pt") -> str:
    return f"<span style='color:#e6e9ee;font-size:{size};font-weight:600'>{text}</span>"


class _Label(pg.LabelItem):
    """A label that never forces its layout wider than the window: long text is
    clipped instead (pyqtgraph's LabelItem makes its text width the minimum width)."""

    def updateMin(self) -> None:  # noqa: N802 (pyqtgraph name)
        super().updateMin()
        self.setMinimumWidth(0)


def _add_label(layout, text: str, **where) -> _Label:
    label = _Label(text)
    layout.addItem(label, **where)
    return label


def _view_box(invert: bool = True) -> pg.ViewBox:
    vb = pg.ViewBox(lockAspect=True, invertY=invert, enableMenu=False)
    vb.setMouseEnabled(False, False)
    return vb


# ============================================================================ events
class EventView(pg.GraphicsLayoutWidget):
    """ON (red) / OFF (blue) event counts of the current window at full sensor
    resolution, with fixed levels; optionally the spatial attention on top (a
    translucent heat map stretched over the sensor)."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.ci.setContentsMargins(4, 4, 4, 4)
        self.label = _add_label(self.ci, _title("Events"), row=0, col=0)
        self.view = _view_box()
        self.addItem(self.view, row=1, col=0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setAutoDownsample(False)
        self.view.addItem(self.image)
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setLookupTable(self._overlay_lut())
        self.overlay.setZValue(10)
        self.overlay.setVisible(False)
        self.overlay.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_Plus)
        self.view.addItem(self.overlay)
        self.caption = _add_label(self.ci, "", row=2, col=0)
        self.sensor: Optional[tuple[int, int]] = None  # (width, height)
        self._rgb: Optional[np.ndarray] = None
        self.frames = 0  # images drawn
        self.set_sensor(128, 128)

    @staticmethod
    def _overlay_lut() -> np.ndarray:
        ramp = np.linspace(0.0, 1.0, 256)
        lut = np.zeros((256, 4), np.uint8)
        lut[:, 0] = 40 + 170 * ramp
        lut[:, 1] = 200 * ramp
        lut[:, 2] = 30 * ramp
        lut[:, 3] = 170 * ramp
        return lut

    def set_sensor(self, width: int, height: int, window_ms: Optional[float] = None) -> None:
        if self.sensor != (width, height):
            self.sensor = (int(width), int(height))
            self._rgb = state.event_rgb(None, out=np.empty((height, width, 3), np.uint8))
            self.image.setImage(self._rgb, autoLevels=False, levels=(0, 255))
            self.image.setRect(QtCore.QRectF(0, 0, width, height))
            self.overlay.setRect(QtCore.QRectF(0, 0, width, height))
            self.view.setRange(xRange=(0, width), yRange=(0, height), padding=0.01)
        when = f", last {window_ms:g} ms" if window_ms else ""
        self.label.setText(_title(f"Events {width}×{height}{when}"))
        self._caption()

    def _caption(self) -> None:
        overlay = "&nbsp; <span style='color:#c8a000'>■</span> attention" if self.overlay.isVisible() else ""
        self.caption.setText(f"<span style='color:{MUTED}'><span style='color:#ff4838'>■</span> ON &nbsp; "
                             f"<span style='color:#4096ff'>■</span> OFF {overlay}</span>")

    def update_events(self, image: Optional[np.ndarray]) -> None:
        """Draw ``[2, H, W]`` counts (None: blank)."""
        if image is not None and (self.sensor is None or image.shape[1:] != (self.sensor[1], self.sensor[0])):
            self.set_sensor(image.shape[2], image.shape[1])
        self._rgb = state.event_rgb(image, out=self._rgb)
        self.image.setImage(self._rgb, autoLevels=False, levels=(0, 255))
        self.frames += 1

    def update_overlay(self, spatial: Optional[np.ndarray], levels: tuple[float, float]) -> None:
        """The spatial attention ``[h, w]`` over the events (None: hidden)."""
        if spatial is None:
            if self.overlay.isVisible():
                self.overlay.setVisible(False)
                self._caption()
            return
        self.overlay.setImage(spatial, autoLevels=False, levels=levels)
        if self.sensor is not None:
            self.overlay.setRect(QtCore.QRectF(0, 0, *self.sensor))
        if not self.overlay.isVisible():
            self.overlay.setVisible(True)
            self._caption()

    def clear(self) -> None:
        self.update_events(None)
        self.update_overlay(None, (0, 1))


# ============================================================================ attention
class AttentionGrid(pg.GraphicsLayoutWidget):
    """Every block's spiking self-attention, one tile per head: the token-to-token
    ``q @ k^T`` matrix ``[N, N]`` or the attention each patch receives ``[h, w]``.
    Fixed colour levels (:func:`~dvsstream.gui.state.attention_levels`) and a colour bar.

    ``images[block][head]`` are the tiles' :class:`~pyqtgraph.ImageItem`\\ s."""

    KIND_TEXT = {
        "matrix": "token × token q·kᵀ (row: query, col: key)",
        "spatial": "attention each patch receives",
    }

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.ci.setContentsMargins(4, 4, 4, 4)
        self.images: list[list[pg.ImageItem]] = []
        self.views: list[pg.ViewBox] = []
        self.kind = "spatial"
        self.head_dim = 16
        self.levels = state.attention_levels(self.kind, self.head_dim)
        self._tile: Optional[tuple[int, int]] = None
        self._labels: list[pg.TextItem] = []
        self.bar: Optional[pg.ColorBarItem] = None
        self.title = None
        self.configure(0, 0, 16, "spatial")

    def configure(self, depth: int, heads: int, head_dim: int, kind: str,
                  tile: Optional[tuple[int, int]] = None) -> None:
        """(Re)create the tiles for a model with ``depth`` blocks of ``heads`` heads."""
        self.clear()
        self.kind, self.head_dim = kind, head_dim
        self.levels = state.attention_levels(kind, head_dim)
        self.images, self.views, self._labels = [], [], []
        self._tile = None
        n_text = f"{depth} block{'s' if depth != 1 else ''} × {heads} heads" if depth else "no model"
        self.title = _add_label(self.ci, _title(f"Self-attention · {n_text}") + "<br>"
                                   f"<span style='color:{MUTED}'>{self.KIND_TEXT[kind]}</span>",
                                   row=0, col=0)
        inner = self.addLayout(row=1, col=0)
        rows, cols = state.grid_shape(depth) if depth > 2 else (1, max(depth, 1))
        for b in range(depth):
            r, c = divmod(b, cols)
            if depth > 1:
                _add_label(inner, f"<span style='color:{MUTED}'>block {b}</span>", row=2 * r, col=c)
            vb = _view_box()
            inner.addItem(vb, row=2 * r + 1, col=c)
            self.views.append(vb)
            row_images = []
            for h in range(heads):
                img = pg.ImageItem(axisOrder="row-major")
                vb.addItem(img)
                row_images.append(img)
                text = pg.TextItem(f"head {h}", color="#e6e9ee", anchor=(0, 0), fill=(15, 17, 21, 150))
                font = QtGui.QFont()
                font.setPointSize(8)
                text.setFont(font)
                text.setZValue(5)
                vb.addItem(text)
                self._labels.append(text)
            self.images.append(row_images)
        all_images = [img for row in self.images for img in row]
        options = dict(values=self.levels, colorMap=HEAT_CMAP, interactive=False, width=12,
                       label="coincident spikes (q·k)", orientation="horizontal")
        try:
            self.bar = pg.ColorBarItem(colorMapMenu=False, **options)
        except TypeError:  # pyqtgraph < 0.13.4 has no colour map menu to switch off
            self.bar = pg.ColorBarItem(**options)
        if all_images:
            self.bar.setImageItem(all_images)
        self.addItem(self.bar, row=2, col=0)
        self.clear_maps(tile or (8, 8))

    def layout_tiles(self, tile: tuple[int, int]) -> None:
        """Place each block's head tiles (``tile`` = one map's ``(rows, cols)``, the shape
        of the images they hold now) in a grid."""
        self._tile = tile
        th, tw = tile
        gap = max(1.0, 0.08 * max(th, tw))
        k = 0
        for vb, row_images in zip(self.views, self.images):
            rows, cols = state.grid_shape(len(row_images))
            for h, img in enumerate(row_images):
                r, c = divmod(h, cols)
                x, y = c * (tw + gap), r * (th + gap)
                img.setRect(QtCore.QRectF(x, y, tw, th))
                self._labels[k].setPos(x, y)
                k += 1
            vb.setRange(xRange=(-gap / 2, cols * (tw + gap) - gap / 2),
                        yRange=(-gap / 2, rows * (th + gap) - gap / 2), padding=0)

    def clear_maps(self, tile: Optional[tuple[int, int]] = None) -> None:
        th, tw = tile or self._tile or (8, 8)
        for row_images in self.images:
            for img in row_images:
                img.setImage(np.zeros((th, tw), np.float32), autoLevels=False, levels=self.levels)
        self.layout_tiles((th, tw))

    def set_kind(self, kind: str) -> None:
        if kind != self.kind:
            self.configure(len(self.images), len(self.images[0]) if self.images else 0, self.head_dim, kind)

    def update_maps(self, maps: dict[int, np.ndarray]) -> None:
        """``maps``: block -> ``[heads, rows, cols]`` (from :func:`state.attention_maps`)."""
        for b, row_images in enumerate(self.images):
            arr = maps.get(b)
            if arr is None:
                continue
            for h, img in enumerate(row_images[: arr.shape[0]]):
                img.setImage(arr[h], autoLevels=False, levels=self.levels)
            if tuple(arr.shape[-2:]) != self._tile:  # setRect scales the image it holds
                self.layout_tiles(tuple(arr.shape[-2:]))

    def displayed_shape(self) -> Optional[tuple[int, ...]]:
        """Shape of one displayed tile (``(N, N)`` or ``(h, w)``), None without tiles."""
        for row_images in self.images:
            for img in row_images:
                return None if img.image is None else tuple(img.image.shape)
        return None


# ============================================================================ predictions
class PredictionPanel(QtWidgets.QWidget):
    """Top class and confidence, the true label when the recording has one (green when
    the top class matches it, red when not), and one probability bar per class (the top
    one in amber, the true one outlined in green)."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(2)
        self.top_label = QtWidgets.QLabel("–")
        self.top_label.setObjectName("topClass")
        self.top_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.truth_label = QtWidgets.QLabel("")
        self.truth_label.setObjectName("truth")
        self.truth_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        lay.addWidget(self.top_label)
        lay.addWidget(self.truth_label)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.ci.setContentsMargins(0, 4, 10, 0)
        lay.addWidget(self.plots, 1)

        self.bars_plot = self.plots.addPlot(row=0, col=0)
        _static_plot(self.bars_plot)
        self.bars_plot.setXRange(0, 1, padding=0)
        self.bars_plot.setLabel("bottom", "probability")
        self.bars_plot.showGrid(x=True, alpha=0.15)
        self.bars = pg.BarGraphItem(x0=np.zeros(1), y=np.zeros(1), height=0.72, width=np.zeros(1))
        self.bars_plot.addItem(self.bars)
        self.class_names: list[str] = []
        self.set_classes([])

    def set_classes(self, names: Sequence[str]) -> None:
        self.class_names = list(names)
        _class_axis(self.bars_plot, self.class_names)
        self.update_prediction(None)

    def update_prediction(self, pred) -> None:
        """Bars and headline of the latest :class:`~dvsstream.pipeline.Prediction` (or None)."""
        n = len(self.class_names)
        if pred is None or n == 0:
            m = max(n, 1)
            self.bars.setOpts(x0=np.zeros(m), y=np.arange(m), width=np.zeros(m))
            self.top_label.setText(f"<span style='font-size:20pt;font-weight:700;color:{MUTED}'>waiting…</span>")
            self.truth_label.setText("")
            return
        probs = np.asarray(pred.probs, np.float64)[:n]
        top = int(np.argmax(probs))
        brushes = [pg.mkBrush(ACCENT if i == top else "#4a90d9") for i in range(n)]
        pens = [pg.mkPen(TRUTH, width=2.5) if pred.label == i else pg.mkPen(None) for i in range(n)]
        self.bars.setOpts(x0=np.zeros(n), y=np.arange(n), width=probs, brushes=brushes, pens=pens)
        self.top_label.setText(
            f"<span style='font-size:20pt;font-weight:700;color:{ACCENT}'>{self.class_names[top]}</span>"
            f"<span style='font-size:16pt;color:#e6e9ee'>&nbsp;&nbsp;{probs[top] * 100:.0f} %</span>")
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

    def truth_text(self) -> str:
        """The true-label line as plain text ("" when there is none)."""
        return QtGui.QTextDocumentFragment.fromHtml(self.truth_label.text()).toPlainText()


class HistoryStrip(pg.GraphicsLayoutWidget):
    """The recent predictions: one column per prediction (newest at the right, the x
    axis in seconds from hop x index), one row per class, brightness = probability;
    the true label, when known, as a green line."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.ci.setContentsMargins(4, 4, 10, 4)
        self.title = _add_label(self.ci, _title("Recent predictions") + f"<span style='color:{MUTED}'>"
                                "&nbsp;&nbsp;brightness: probability · green: true label</span>", row=0, col=0)
        self.plot = self.addPlot(row=1, col=0)
        _static_plot(self.plot)
        self.plot.setLabel("bottom", "seconds ago (stream time)")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(pg.colormap.get(HEAT_CMAP).getLookupTable(nPts=256))
        self.plot.addItem(self.image)
        self.truth_curve = pg.PlotCurveItem(pen=pg.mkPen(TRUTH, width=2), connect="finite")
        self.truth_curve.setZValue(5)
        self.plot.addItem(self.truth_curve)
        self.class_names: list[str] = []
        self.hop_s = 0.05
        self.n_cols = 200
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

    def update_history(self, predictions: Sequence) -> None:
        n = max(1, len(self.class_names))
        probs, labels = state.history_arrays(predictions, n, self.n_cols)
        self.image.setImage(probs, autoLevels=False, levels=(0, 1))
        if np.isfinite(labels).any():
            x = (np.arange(self.n_cols) - self.n_cols + 0.5) * self.hop_s
            self.truth_curve.setData(x, labels)
        else:
            self.truth_curve.setData([], [])


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
