"""``reconstruction.png``: what masked pre-training sees and rebuilds, drawn with
matplotlib's object-oriented API (no pyplot, no window, no Qt).

One row per sample: the input window (event counts summed over time, ON red / OFF blue),
what the encoder saw (the masked patches greyed), the target (per-patch normalised counts
of the masked patches) and the decoder's reconstruction of them. A user sees the
reconstructions sharpen from epoch to epoch.
"""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from dvsstream.fileio import replace_atomically

__all__ = ["polarity_image", "save_reconstruction_figure"]


def polarity_image(counts: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``[2, H, W]`` counts (or normalised values) -> an RGB image ``[H, W, 3]`` in [0, 1]:
    ON (channel 1) red, OFF (channel 0) blue on white, each scaled to its 99th percentile
    of positive values; ``mask [H, W]`` (1: masked) greys those pixels."""
    off, on = (np.clip(counts[i], 0, None) for i in (0, 1))
    img = np.ones(counts.shape[1:] + (3,), np.float32)
    for channel, rgb in ((on, (0.85, 0.1, 0.1)), (off, (0.1, 0.3, 0.9))):
        positive = channel[channel > 0]
        scale = float(np.percentile(positive, 99)) if positive.size else 1.0
        a = np.clip(channel / max(scale, 1e-6), 0, 1)[..., None]
        img = img * (1 - a) + np.asarray(rgb, np.float32) * a
    if mask is not None:
        img = np.where(mask[..., None] > 0, img * 0.35 + 0.45, img)
    return img


def save_reconstruction_figure(parts: dict[str, np.ndarray], path: Union[str, os.PathLike], title: str) -> None:
    """Write the figure of ``parts`` (``input``, ``masked``, ``target``, ``prediction``:
    ``[B, 2, H, W]``; ``mask``: ``[B, H, W]``) to ``path`` (PNG, replaced atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mask = parts["mask"]
    rows = parts["input"].shape[0]
    columns = (("input window", parts["input"], None), ("what the encoder saw", parts["masked"], mask),
               ("target (masked patches)", parts["target"] * mask[:, None], None),
               ("reconstruction", parts["prediction"] * mask[:, None], None))
    fig = Figure(figsize=(2.2 * len(columns), 2.2 * rows + 0.5), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, len(columns), squeeze=False)
    for r in range(rows):
        for c, (name, values, shade) in enumerate(columns):
            ax = axes[r][c]
            ax.imshow(polarity_image(values[r], None if shade is None else shade[r]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    replace_atomically(path, lambda tmp: fig.savefig(tmp, format="png"))
