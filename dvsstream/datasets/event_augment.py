"""Event-level augmentations of a training sample, as tonic defines them: drop events,
spatial jitter, time jitter (:class:`EventAugment`; ``train --drop-event``,
``--spatial-jitter``, ``--time-jitter-us``; all off by default, so the papers' recipe is
unchanged).

Each op draws from a :class:`numpy.random.RandomState` in the order tonic's functional
implementations draw from NumPy's global one, so that with the same seed a sample gets
exactly tonic's result (the tests check it event for event):

==================  ===================================================================
drop events (p)     ``int(p * n + 0.5)`` events chosen uniformly without replacement
                    are removed (``tonic.transforms.DropEvent(p)``)
spatial jitter      ``x, y += N(0, [[var, 0], [0, var]])`` (one
(var, px²)          ``multivariate_normal`` draw per event), cast back to whole pixels
                    toward zero as tonic's int16 fields are; events jittered off the
                    sensor are removed (``SpatialJitter(var_x=var, var_y=var,
                    clip_outliers=True)``: the binning has no pixel for them)
time jitter         ``t += N(0, std)`` cast toward zero, events at ``t < 0`` removed,
(std, µs)           then sorted by time, stably (``TimeJitter(std, clip_negative=True,
                    sort_timestamps=True)``: unsorted, the papers' equal-count split
                    would not see the jitter at all)
==================  ===================================================================

Applied in this order (tonic's ``Compose([DropEvent, SpatialJitter, TimeJitter])``), to a
sample's events after the noise filter and before the binning. No torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from dvsstream.errors import DvsstreamError

__all__ = ["EventAugment", "drop_events", "spatial_jitter", "time_jitter"]

#: the largest spatial variance (px²) and time deviation (µs) accepted
MAX_SPATIAL_VAR = 10_000.0
MAX_TIME_STD_US = 10_000_000.0


def drop_events(events: np.ndarray, p: float, rs: np.random.RandomState) -> np.ndarray:
    """``events`` without ``int(p * n + 0.5)`` of them chosen uniformly (tonic's
    ``drop_event_numpy``); the order of the others is kept."""
    n = events.shape[0]
    dropped = rs.choice(n, int(p * n + 0.5), replace=False)
    return np.delete(events, dropped, axis=0)


def spatial_jitter(events: np.ndarray, sensor_size, var_x: float, var_y: float, rs: np.random.RandomState,
                   sigma_xy: float = 0.0) -> np.ndarray:
    """``x, y`` moved by a Gaussian draw per event, truncated toward zero to whole
    pixels; events off the ``(width, height)`` sensor removed (tonic's
    ``spatial_jitter_numpy`` with ``clip_outliers=True``). A new array."""
    shifts = rs.multivariate_normal([0, 0], [[var_x, sigma_xy], [sigma_xy, var_y]], len(events))
    x = np.trunc(events["x"] + shifts[:, 0])
    y = np.trunc(events["y"] + shifts[:, 1])
    keep = (x >= 0) & (x < sensor_size[0]) & (y >= 0) & (y < sensor_size[1])
    out = events[keep]
    out["x"] = x[keep]
    out["y"] = y[keep]
    return out


def time_jitter(events: np.ndarray, std_us: float, rs: np.random.RandomState) -> np.ndarray:
    """``t`` moved by ``N(0, std_us)`` per event, truncated toward zero; events before 0
    removed; sorted by time, stably (tonic's ``time_jitter_numpy`` with
    ``clip_negative=True, sort_timestamps=True``). A new array."""
    t = np.trunc(events["t"] + rs.normal(0, std_us, len(events))).astype(np.int64)
    keep = t >= 0
    out = events[keep]
    out["t"] = t[keep]
    return out[np.argsort(out["t"], kind="stable")]


@dataclass(frozen=True)
class EventAugment:
    """The event-level augmentation of a training sample: ``drop_p`` (a share, 0 <= p <
    1), ``spatial_var`` (px², both axes), ``time_std_us`` (µs); 0 turns an op off."""

    drop_p: float = 0.0
    spatial_var: float = 0.0
    time_std_us: float = 0.0

    def __post_init__(self) -> None:
        for value, option, top, closed in ((self.drop_p, "--drop-event", 1.0, False),
                                           (self.spatial_var, "--spatial-jitter", MAX_SPATIAL_VAR, True),
                                           (self.time_std_us, "--time-jitter-us", MAX_TIME_STD_US, True)):
            ok = isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value and (
                value <= top if closed else value < top)
            if not ok:
                bound = f"<= {top:g}" if closed else f"< {top:g}"
                raise DvsstreamError(f"{option} {value}: must be a number >= 0 and {bound} (0: off)")

    def __bool__(self) -> bool:
        return bool(self.drop_p or self.spatial_var or self.time_std_us)

    def to_dict(self) -> dict:
        return asdict(self)

    def __call__(self, events: np.ndarray, sensor_size, seed: int) -> np.ndarray:
        """The augmented copy of one sample's ``events`` on a ``(width, height)`` sensor,
        drawn from ``RandomState(seed)``."""
        rs = np.random.RandomState(seed)
        if self.drop_p:
            events = drop_events(events, self.drop_p, rs)
        if self.spatial_var:
            events = spatial_jitter(events, sensor_size, self.spatial_var, self.spatial_var, rs)
        if self.time_std_us:
            events = time_jitter(events, self.time_std_us, rs)
        return events
