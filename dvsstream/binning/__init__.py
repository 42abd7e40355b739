"""Events to time-step frames, with Numba kernels (``cache=True``).

Three entry points, all producing ``float32`` event *counts* per polarity:

* :func:`events_to_frames` -- a whole recording into ``[n_bins, 2, H, W]``
  (equal time bins, or the papers' equal-count split);
* :func:`batch_events_to_frames` -- many recordings in parallel (``prange``)
  into ``[S, n_bins, 2, H, W]``, for dataset preprocessing;
* :class:`StreamingBinner` -- live use: fed packets of any size, it emits
  sliding windows ``[T, C, H, W]`` causally from a ring of T bins.

And the one place that decides how a sensor feeds a model: :func:`geometry_for` (the
region and resize), :class:`BinningConfig` and :func:`live_binning` (the live window).

Modules: :mod:`~dvsstream.binning.kernels` (the Numba kernels alone),
:mod:`~dvsstream.binning.frames` (whole recordings), :mod:`~dvsstream.binning.streaming`
(the sliding window), :mod:`~dvsstream.binning.region` (where a region may lie and the
frame size it makes), :mod:`~dvsstream.binning.geometry` (sensor -> region -> model
input; the live window's configuration) and :mod:`~dvsstream.binning.clips` (a clip
longer or shorter than a model's window). Inside the package, import from them.

Conventions (see ``shared/docs/design.md``):

* Time bins are half-open ``[t0 + k*span/n, t0 + (k+1)*span/n)`` in exact
  integer arithmetic (bin of an event = ``(t - t0) * n // span``); the last bin
  is closed so the last event is counted.
* Count split: slice ``j`` holds events ``floor(N/T)*j .. floor(N/T)*(j+1) - 1``
  of the input (in input order), the remainder goes to the last slice; with
  ``N < T`` every event lands in the last slice (that is what the formula says).
  ``N`` counts all input events, in bounds or not, as the papers' code does.
* Every in-bounds event is counted exactly once. Events outside the sensor are
  not written; they are counted in :class:`BinStats`.

Polarity: channel 0 = OFF (``p == 0``), channel 1 = ON (``p != 0``), as tonic does.
No torch, no I/O here.
"""

from dvsstream.binning.frames import (
    BinStats,
    as_event_array,
    batch_events_to_frames,
    events_to_frames,
    region_frames,
)
from dvsstream.binning.geometry import (
    BinningConfig,
    Geometry,
    binning_geometry,
    binning_mismatch,
    check_window,
    default_binning,
    geometry_for,
    live_binning,
    trained_region,
)
from dvsstream.binning.kernels import range_kernel, time_bin_edges
from dvsstream.binning.region import (
    check_region,
    output_size,
    padded_crop,
    region_is_padded,
)
from dvsstream.binning.streaming import StreamingBinner, Window

__all__ = [
    "BinStats",
    "BinningConfig",
    "Geometry",
    "StreamingBinner",
    "Window",
    "as_event_array",
    "batch_events_to_frames",
    "binning_geometry",
    "binning_mismatch",
    "check_region",
    "check_window",
    "default_binning",
    "events_to_frames",
    "geometry_for",
    "live_binning",
    "output_size",
    "padded_crop",
    "range_kernel",
    "region_frames",
    "region_is_padded",
    "time_bin_edges",
    "trained_region",
]
