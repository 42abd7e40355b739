"""The one rule for a clip whose length differs from the window a model was trained on.

Time bins stretch with the clip: a model trained on 400 ms windows of 8 bins (50 ms
each) sees 250 ms bins in 2 s clips, and its accuracy drops. ``synth`` (the clips it
writes against the shipped model's window) and ``eval`` (a dataset's clips against the
checkpoint's window) both warn by :func:`clip_mismatch`. No torch, no numba.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["CLIP_TOLERANCE", "clip_mismatch"]

#: clips within this share of the trained window pass without a warning
CLIP_TOLERANCE = 0.15


def clip_mismatch(clip_s: float, window_s: float, n_bins: int, trained: str, advice: str) -> Optional[str]:
    """One line when clips of ``clip_s`` seconds differ by more than
    :data:`CLIP_TOLERANCE` from ``window_s``, the window (s) of ``n_bins`` time bins that
    ``trained`` (the model, in words) was trained on; None when they match. ``advice``:
    how to make matching clips."""
    if abs(clip_s - window_s) <= CLIP_TOLERANCE * window_s:
        return None
    return (f"the clips last about {clip_s:.2f} s but {trained} was trained on {window_s:g} s windows: its "
            f"{n_bins} time bins are {1000 * clip_s / n_bins:.0f} ms here instead of "
            f"{1000 * window_s / n_bins:.0f} ms and accuracy may drop ({advice})")
