"""The report figures (:mod:`dvsstream.training.plots`): the numbers behind them, what each
figure shows (its texts, bars and histograms), the PNG files, atomic writes, and that
matplotlib is used without pyplot, without the user's backend and without Qt."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from dvsstream.training.plots import (
    REPORT_PLOTS,
    confidence_figure,
    confidence_histogram,
    confusion_figure,
    per_class_figure,
    row_normalise,
    save_figure,
    write_report_plots,
)

LONG = ["Hand clapping", "Right hand clockwise", "Left hand counter clockwise"]
#: rows = true class: 12 of 15 right (80 %), 1 of 200 wrong (0.5 %: shown as <1 %), a class without samples
MATRIX = np.array([[12, 3, 0], [1, 199, 0], [0, 0, 0]])


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_row_normalise():
    share = row_normalise(MATRIX)
    assert share[0].tolist() == [0.8, 0.2, 0.0]
    assert share[1] == pytest.approx([0.005, 0.995, 0.0])
    assert np.isnan(share[2]).all()  # no samples: undefined, not 0
    assert np.allclose(np.nansum(share, axis=1), [1, 1, 0])
    for bad in (np.zeros((2, 3)), np.zeros((0, 0)), [[1, -1], [0, 0]], [[0.5, 0], [0, 1]]):
        with pytest.raises(ValueError):
            row_normalise(bad)


def test_confidence_histogram_counts_every_sample():
    rng = np.random.default_rng(0)
    conf = np.r_[rng.uniform(0, 1, 500), 0.0, 1.0, np.float32(1.0)]
    ok = rng.random(conf.size) < 0.7
    edges, n_ok, n_bad = confidence_histogram(conf, ok, bins=10)
    assert edges.tolist() == pytest.approx(np.linspace(0, 1, 11).tolist())
    assert n_ok.sum() == ok.sum() and n_bad.sum() == (~ok).sum() and n_ok.sum() + n_bad.sum() == conf.size
    assert (n_ok + n_bad)[-1] == np.sum(conf >= 0.9)  # 1.0 falls in the last bin, not outside
    assert (n_ok + n_bad)[0] == np.sum(conf < 0.1)
    with pytest.raises(ValueError):
        confidence_histogram([0.5, 1.5], [True, False])
    with pytest.raises(ValueError):
        confidence_histogram([0.5], [True, False])


def test_confusion_figure_names_counts_shares_colour_bar():
    fig = confusion_figure(MATRIX, LONG, title="gestures test")
    ax, colour_bar = fig.axes  # the matrix and its colour bar
    texts = _texts(ax)
    assert "12\n80 %" in texts and "3\n20 %" in texts  # count and row-normalised share
    assert "1\n<1 %" in texts and "199\n>99 %" in texts  # never "0 %" or "100 %" when not so
    assert texts.count("0") == 2 and "no samples" in texts  # zeros plain, an empty class said so
    assert [t.get_text() for t in ax.get_xticklabels()] == LONG
    assert [t.get_text() for t in ax.get_yticklabels()] == LONG
    assert all(t.get_rotation() == 40 for t in ax.get_xticklabels())  # long names stay readable
    assert ax.get_title() == "gestures test\naccuracy 98.14 % (211/215)"
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert "row-normalised" in colour_bar.get_ylabel()
    image = ax.get_images()[0].get_array()
    assert image[0].tolist() == pytest.approx([80, 20, 0]) and image.mask[2].all()
    with pytest.raises(ValueError):
        confusion_figure(MATRIX, LONG[:2])


def test_confusion_figure_without_samples():
    fig = confusion_figure(np.zeros((2, 2), int))
    assert fig.axes[0].get_title() == "accuracy n/a (no samples)"
    assert _texts(fig.axes[0]) == ["no samples", "no samples"]


def test_per_class_figure_bars_values_counts():
    fig = per_class_figure(MATRIX, LONG)
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([80.0, 99.5, 0.0])
    texts = _texts(ax)
    assert texts == ["80.0 %  (12/15)", "99.5 %  (199/200)", "no samples"]
    assert [t.get_text() for t in ax.get_yticklabels()] == LONG
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # first class on top
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["overall 98.14 %"]  # 211/215
    assert ax.get_xlim() == (0, 100)


def test_confidence_figure_two_histograms_and_legend():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.1, 1, 300)
    ok = conf + rng.normal(0, 0.2, 300) > 0.5
    fig = confidence_figure(conf, ok, bins=20, num_classes=10)
    ax = fig.axes[0]
    filled = [p for p in ax.patches if p.get_label() and not p.get_label().startswith("_")]
    assert [p.get_label().split(" (")[0] for p in filled] == ["correct", "wrong"]
    got_ok, got_bad = (p.get_data().values for p in filled)
    assert got_ok.sum() == ok.sum() and got_bad.sum() == (~ok).sum() and got_ok.sum() + got_bad.sum() == 300
    _, want_ok, want_bad = confidence_histogram(conf, ok, 20)
    assert got_ok.tolist() == want_ok.tolist() and got_bad.tolist() == want_bad.tolist()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == f"correct ({ok.sum()}, mean {conf[ok].mean():.2f})"
    assert legend[1] == f"wrong ({(~ok).sum()}, mean {conf[~ok].mean():.2f})"
    assert legend[2].startswith("1/10")


def test_write_report_plots_pngs(tmp_path):
    import matplotlib.image

    rng = np.random.default_rng(2)
    paths = write_report_plots(tmp_path, MATRIX, LONG, rng.uniform(0.3, 1, 217), rng.random(217) < 0.9, title="t")
    assert {k: p.name for k, p in paths.items()} == REPORT_PLOTS
    sizes = {}
    for key, path in paths.items():
        pixels = matplotlib.image.imread(path)
        sizes[key] = pixels.shape[1], pixels.shape[0]
        assert pixels.shape[2] == 4 and pixels[..., :3].std() > 0.05  # a picture, not a blank page
    assert sizes["confidence"] == (750, 450)
    assert sizes["per_class_accuracy"] == (750, 300)  # 3 classes: the smallest height, 3 inches
    w, h = sizes["confusion"]
    assert 600 <= w <= 900 and 500 <= h <= 800
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(REPORT_PLOTS.values())  # no temporary file


def test_save_figure_is_atomic(tmp_path):
    path = tmp_path / "confusion.png"
    path.write_bytes(b"previous")
    fig = confusion_figure(MATRIX)

    def broken(tmp, **_):
        with open(tmp, "wb") as f:
            f.write(b"half a PNG")
        raise RuntimeError("renderer failed")

    fig.savefig = broken
    with pytest.raises(RuntimeError):
        save_figure(fig, path)
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["confusion.png"]
    save_figure(confusion_figure(MATRIX), path)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_no_pyplot_no_qt_no_user_backend(tmp_path):
    """Importing the module loads no matplotlib (the CLI starts fast); drawing uses Agg
    even when the user's backend is Qt, and never loads pyplot or Qt."""
    code = (
        "import sys, numpy as np\n"
        "import dvsstream.training.plots as p\n"
        "assert 'matplotlib' not in sys.modules\n"
        f"p.write_report_plots({str(tmp_path)!r}, np.eye(3, dtype=int), 'abc', [0.5, 0.6, 0.9], [1, 1, 0])\n"
        "import matplotlib\n"
        "print(','.join(sorted(m for m in ('matplotlib.pyplot', 'PySide6', 'PyQt5', 'PyQt6') if m in sys.modules)))\n"
    )
    env = {**os.environ, "MPLBACKEND": "QtAgg", "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ""
    assert (tmp_path / "confusion.png").stat().st_size > 1000
