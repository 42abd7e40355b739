"""Report figures for ``dvsstream eval``, drawn with matplotlib (the field's standard).

* :func:`confusion_figure` -- the confusion matrix: class names on both axes, the count
  and the row-normalised share in every cell, a colour bar, the overall accuracy;
* :func:`per_class_figure` -- accuracy of every class as horizontal bars, with the value
  and the sample count printed, and the overall accuracy as a line;
* :func:`confidence_figure` -- histograms of the confidence (max softmax probability) of
  the correct and of the wrong predictions, overlaid;
* :func:`save_figure` -- a figure to a PNG, atomically; :func:`write_report_plots` -- all
  three next to ``report.json``.

The numbers behind them are plain numpy (:func:`row_normalise`,
:func:`confidence_histogram`). matplotlib is imported inside the functions, so importing
this module (and so starting the CLI) stays cheap, and only through its object-oriented
API -- :class:`~matplotlib.figure.Figure` with a
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` -- never pyplot: the user's
default backend and pyplot's global figures are left alone, nothing opens a window, Qt
is never imported, and figures can be drawn from any thread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from dvsstream.fileio import replace_atomically

if TYPE_CHECKING:  # for the annotations only: importing matplotlib costs ~0.5 s
    from matplotlib.figure import Figure

__all__ = [
    "REPORT_PLOTS",
    "confidence_figure",
    "confidence_histogram",
    "confusion_figure",
    "per_class_figure",
    "row_normalise",
    "save_figure",
    "write_report_plots",
]

#: the files :func:`write_report_plots` writes, by figure
REPORT_PLOTS = {
    "confusion": "confusion.png",
    "per_class_accuracy": "per_class_accuracy.png",
    "confidence": "confidence.png",
}
DPI = 100  # a figure of W x H inches is a PNG of 100 W x 100 H pixels
CMAP = "viridis"  # perceptually ordered, readable in grey and by colour-blind readers


# ------------------------------------------------------------------ the numbers
def _square(matrix) -> np.ndarray:
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"expected a square confusion matrix [C, C] with C >= 1, got shape {m.shape}")
    if np.any(m < 0) or not np.all(np.equal(np.mod(m, 1), 0)):
        raise ValueError("a confusion matrix holds non-negative whole counts")
    return m.astype(np.int64)


def _names(classes: Optional[Sequence[str]], n: int) -> list[str]:
    if classes is None:
        return [str(i) for i in range(n)]
    if len(classes) != n:
        raise ValueError(f"{len(classes)} class names for a {n}x{n} confusion matrix")
    return [str(c) for c in classes]


def row_normalise(matrix) -> np.ndarray:
    """Each true class's share of its predictions: ``matrix [C, C]`` counts (rows = true
    class, columns = predicted) -> ``float64 [C, C]`` whose rows sum to 1; NaN in the
    rows of classes without samples (their share is undefined, not 0)."""
    m = _square(matrix).astype(np.float64)
    rows = m.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, m / rows, np.nan)


def confidence_histogram(confidence, correct, bins: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histogram the confidence of correct and of wrong predictions.

    ``confidence``: ``[N]`` max softmax probability of every prediction (in [0, 1]);
    ``correct``: ``[N]`` bool. Returns ``(edges [bins + 1], correct_counts [bins],
    wrong_counts [bins])``: equal bins over [0, 1], each half-open but the last, which
    holds 1.0, so the counts sum to ``N``."""
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    ok = np.asarray(correct, dtype=bool).ravel()
    if conf.shape != ok.shape:
        raise ValueError(f"{conf.size} confidences but {ok.size} correct flags")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if conf.size and not (np.all(np.isfinite(conf)) and conf.min() >= -1e-6 and conf.max() <= 1 + 1e-6):
        raise ValueError("confidences are probabilities: finite and in [0, 1]")
    conf = np.clip(conf, 0.0, 1.0)  # float32 softmax may give 1 + 1 ulp
    edges = np.linspace(0.0, 1.0, bins + 1)
    return edges, np.histogram(conf[ok], edges)[0], np.histogram(conf[~ok], edges)[0]


def _percent(share: float) -> str:
    """``0.8`` -> ``"80 %"``; never ``"0 %"`` for a share above 0 or ``"100 %"`` below 1."""
    text = f"{100 * share:.0f}"
    if text == "0" and share > 0:
        return "<1 %"
    if text == "100" and share < 1:
        return ">99 %"
    return f"{text} %"


def _accuracy_line(matrix: np.ndarray) -> str:
    total = int(matrix.sum())
    if total == 0:
        return "accuracy n/a (no samples)"
    correct = int(np.trace(matrix))
    return f"accuracy {100 * correct / total:.2f} % ({correct}/{total})"


# ------------------------------------------------------------------ the figures
def _figure(width_in: float, height_in: float) -> "Figure":
    """A Figure on its own Agg canvas (never pyplot's, never the default backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def confusion_figure(matrix, classes: Optional[Sequence[str]] = None, title: Optional[str] = None) -> "Figure":
    """The confusion matrix as a Figure.

    ``matrix``: ``[C, C]`` counts, rows = true class, columns = predicted. Colour: the
    row-normalised share (0-100 %, :func:`row_normalise`; grey for a class without
    samples, whose row says so). Every other cell holds its count and, when not 0, its
    share (``"12\\n80 %"``).
    ``classes``: C names for both axes (column names rotated, so long names stay
    readable); indices when None. The title is ``title`` over the overall accuracy.
    About ``0.62 C + 4`` inches wide: 1047 x 977 pixels for DVS128 Gesture's 11 classes."""
    import matplotlib

    m = _square(matrix)
    n = m.shape[0]
    names = _names(classes, n)
    share = row_normalise(m)
    longest = max(len(s) for s in names)
    fig = _figure(max(6.0, 0.62 * n + 0.07 * longest + 2.6), max(5.0, 0.62 * n + 0.05 * longest + 2.2))
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps[CMAP].with_extremes(bad="#d0d0d0")
    image = ax.imshow(np.ma.masked_invalid(100 * share), cmap=cmap, vmin=0, vmax=100)
    fontsize = float(np.clip(110 / n, 5, 10))
    for i in range(n):
        if not m[i].any():
            ax.text((n - 1) / 2, i, "no samples", ha="center", va="center", fontsize=fontsize, style="italic")
            continue
        for j in range(n):
            count, s = int(m[i, j]), share[i, j]
            text = f"{count}\n{_percent(s)}" if count else "0"
            r, g, b, _ = cmap(s)  # the cell's colour
            dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize if count else fontsize * 0.85,
                    color="white" if dark else "black", alpha=1.0 if count else 0.6)
    ax.set_xticks(range(n), labels=names, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels=names)
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class (row-normalised, %)")
    ax.set_title("\n".join(filter(None, [title, _accuracy_line(m)])))
    return fig


def per_class_figure(matrix, classes: Optional[Sequence[str]] = None, title: Optional[str] = None) -> "Figure":
    """Accuracy of every class as horizontal bars (first class on top), from ``matrix
    [C, C]`` counts (rows = true class). Each bar is labelled with its accuracy and
    ``(correct/samples)``; a class without samples says so; a dashed line marks the
    overall accuracy. 7.5 inches wide, about ``0.4 C + 1.6`` high."""
    m = _square(matrix)
    n = m.shape[0]
    names = _names(classes, n)
    totals = m.sum(axis=1)
    hits = np.diag(m)
    acc = np.divide(100.0 * hits, totals, out=np.zeros(n), where=totals > 0)  # % (0 where no sample)
    fig = _figure(7.5, max(3.0, 0.4 * n + 1.6))
    ax = fig.add_subplot()
    ax.barh(np.arange(n), acc, height=0.7, color="#3b6fb6")
    for i in range(n):
        if totals[i] == 0:
            ax.text(1, i, "no samples", va="center", ha="left", fontsize=9, color="#606060", style="italic")
            continue
        text = f"{acc[i]:.1f} %  ({hits[i]}/{totals[i]})"
        inside = acc[i] >= 45
        ax.text(acc[i] - 1 if inside else acc[i] + 1, i, text, va="center", ha="right" if inside else "left",
                fontsize=9, color="white" if inside else "black")
    if m.sum():
        overall = 100 * np.trace(m) / m.sum()
        ax.axvline(overall, color="#d62728", linestyle="--", linewidth=1.2, zorder=0.5,  # behind bars and text
                   label=f"overall {overall:.2f} %")
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
    ax.set_yticks(np.arange(n), labels=names)
    ax.set_ylim(n - 0.5, -0.5)  # first class on top
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(f"{title}\nper-class accuracy" if title else "per-class accuracy", loc="left")
    return fig


def confidence_figure(confidence, correct, bins: int = 20, title: Optional[str] = None,
                      num_classes: Optional[int] = None) -> "Figure":
    """Overlaid histograms of the confidence (max softmax probability, ``[N]`` in [0, 1])
    of the correct and of the wrong predictions (``correct``: ``[N]`` bool), on
    :func:`confidence_histogram`'s ``bins`` equal bins; the legend gives each group's size
    and mean confidence. ``num_classes``: mark ``1 / C``, the least a max softmax
    probability can be. 7.5 x 4.5 inches."""
    from matplotlib.colors import to_rgba

    edges, n_ok, n_bad = confidence_histogram(confidence, correct, bins)
    conf = np.clip(np.asarray(confidence, dtype=np.float64).ravel(), 0, 1)
    ok = np.asarray(correct, dtype=bool).ravel()
    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot()
    groups = ((n_ok, conf[ok], "correct", "#1f77b4"), (n_bad, conf[~ok], "wrong", "#ff7f0e"))
    for counts, group, name, colour in groups:  # translucent fills, so an overlap shows both
        mean = f", mean {group.mean():.2f}" if group.size else ""
        ax.stairs(counts, edges, fill=True, facecolor=to_rgba(colour, 0.35), edgecolor=colour, linewidth=1.5,
                  label=f"{name} ({group.size}{mean})")
    for counts, _, _, colour in groups:  # both outlines over both fills
        ax.stairs(counts, edges, color=colour, linewidth=1.5)
    if num_classes:
        ax.axvline(1 / num_classes, color="#707070", linestyle=":", linewidth=1.2,
                   label=f"1/{num_classes}: the lowest possible")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(1, int(max(n_ok.max(initial=0), n_bad.max(initial=0)))) * 1.1)
    ax.set_xlabel("confidence: max softmax probability")
    ax.set_ylabel("predictions")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    head = "confidence of correct and wrong predictions"
    ax.set_title(f"{title}\n{head}" if title else head, loc="left")
    return fig


# ------------------------------------------------------------------ files
def save_figure(fig: "Figure", path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG of ``figsize x DPI`` pixels to ``path``, atomically."""
    path = Path(path)
    return replace_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))


def write_report_plots(
    out: str | os.PathLike,
    matrix,
    classes: Sequence[str],
    confidence,
    correct,
    title: Optional[str] = None,
) -> dict[str, Path]:
    """Draw and write the three report figures into the folder ``out`` (which must
    exist) under the names of :data:`REPORT_PLOTS`; returns their paths by figure.
    ``matrix``: ``[C, C]`` counts; ``confidence`` / ``correct``: ``[N]`` per prediction."""
    out = Path(out)
    figures = {
        "confusion": lambda: confusion_figure(matrix, classes, title),
        "per_class_accuracy": lambda: per_class_figure(matrix, classes, title),
        "confidence": lambda: confidence_figure(confidence, correct, title=title, num_classes=len(classes)),
    }
    return {key: save_figure(draw(), out / REPORT_PLOTS[key]) for key, draw in figures.items()}
