"""The window's panels: :class:`Panel` (a view with an elided title, a subtitle and a
legend; every view sits in one, its :attr:`frame`), :class:`ElidedLabel`, the
prediction bars, the history of recent predictions and the live figures.

The arrays they draw come from :mod:`dvsstream.gui.state` (Qt-free, tested alone).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from dvsstream.gui import state
from dvsstream.gui.qt.plots import (
    ACCENT,
    BAR,
    BAR_TRACK,
    HEAT_CMAP,
    MUTED,
    TRUTH,
    WRONG,
)

__all__ = ["ElidedLabel", "HistoryStrip", "Panel", "PredictionPanel", "StatsPanel"]


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
        self.domain_note = ""
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
        self.domain_note = text or ""  # the clips show it too
        self.domain_label.setText(f"⚠ {text}" if text else "")
        self.domain_label.setVisible(bool(text))

    def update_prediction(self, pred) -> None:
        """Bars and headline of the latest :class:`~dvsstream.stream.classifier.Prediction` (or None)."""
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

    def _show_marks(self, xs: Sequence[float]) -> None:
        """Dashed lines at ``xs`` (seconds on the strip's axis), one "loop" word on the newest."""
        xs = list(xs)[-self.MAX_MARKS:]
        for k, (line, x) in enumerate(zip(self.marks, xs)):
            line.setValue(x)
            line.label.setVisible(k == len(xs) - 1)
            line.setVisible(True)
        for line in self.marks[len(xs):]:
            line.setVisible(False)
        self.loops_shown = len(xs)

    def mark_positions(self) -> list[float]:
        """Where the "stream started again" lines are (seconds on the axis), oldest first."""
        return [line.value() for line in self.marks if line.isVisible()]

    def update_history(self, predictions: Sequence, recording: Optional[tuple[int, int]] = None) -> None:
        """Draw the recent predictions, one column per hop of stream time
        (:func:`~dvsstream.gui.state.history_arrays`; ``recording``: the looping recording's
        ``(start_us, end_us)``, so that its loops are marked one recording apart)."""
        n = max(1, len(self.class_names))
        probs, labels, marks = state.history_arrays(predictions, n, self.n_cols, round(self.hop_s * 1e6), recording)
        self.image.setImage(probs, autoLevels=False, levels=(0, 1))
        labelled = bool(np.isfinite(labels).any())
        if labelled:
            x = (np.arange(self.n_cols) - self.n_cols + 0.5) * self.hop_s
            self.truth_curve.setData(x, labels)
        else:
            self.truth_curve.setData([], [])
        shown = self.loops_shown
        self._show_marks(marks)
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
