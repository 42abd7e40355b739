"""How a sample's events become frames: :class:`FrameSpec` (bins, sensor, the region and
size the model sees, orientation convention; also the key of the frame cache),
:func:`frames_from_events` and :func:`pool_frames`.

Each sample's events become frames exactly as spikingjelly's
``integrate_events_by_fixed_frames_number`` makes them (``FrameSpec.mode``: ``"count"`` =
``split_by="number"``, the papers' equal-count split; ``"time"`` = ``split_by="time"``;
see :func:`dvsstream.datasets.release.spikingjelly_frames`), then sum-pooled by
``FrameSpec.downsample``: ``float32 [T, 2, H, W]``.

Orientation and polarity follow ``FrameSpec.convention`` (default ``"spikingjelly"``, the
frames every released checkpoint expects; ``"native"``: dvsstream's readers'), chosen so
that one recording gives the same frames in every layout; :mod:`dvsstream.datasets.release`
writes down each layout's convention, and what is verified.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Optional, Sequence

import numpy as np

from dvsstream.errors import DvsstreamError
from dvsstream.filters import parse_filter
from dvsstream.datasets.release import CONVENTIONS, DEFAULT_CONVENTION, spikingjelly_frames

__all__ = ["FrameSpec", "frames_from_events", "pool_frames", "SPLIT_BY"]

#: ``FrameSpec.mode`` -> spikingjelly's ``split_by``
SPLIT_BY = {"count": "number", "time": "time"}


@dataclass(frozen=True)
class FrameSpec:
    """How a sample's events become frames (and the key of the frame cache).

    n_bins: time steps T. mode: ``"count"`` (equal event counts per bin, the papers'
    preprocessing; the remainder goes to the last bin) or ``"time"`` (equal time bins over
    the sample's first..last event). sensor_size: ``(width, height)`` of the events; events
    outside it are not counted. downsample: sum-pool factor (2: 128x128 -> 64x64); must
    divide both sensor dimensions. convention: ``"spikingjelly"`` (the releases'
    orientation and polarity, default) or ``"native"`` (dvsstream's readers'); see
    :mod:`dvsstream.datasets.release`. roi: the region ``(x0, y0, w, h)`` of the frames (in
    ``convention``'s coordinates) the model sees (None: all of them); size: the ``(width,
    height)`` that region is resized to (None: the region pooled by ``downsample``), applied
    exactly as the streaming binner applies them (:func:`dvsstream.binning.region_frames`:
    every event of the region in exactly one pixel; integer ratios pool, others take the
    nearest-bin resize); ``size`` excludes ``downsample`` > 1. Frames: ``float32 [n_bins,
    2, H, W]`` (``size``, or the region's ``h/d, w/d``), bit-identical to spikingjelly's
    ``integrate_events_by_fixed_frames_number`` (``split_by="number"`` for ``"count"``,
    ``"time"`` for ``"time"``; the count split counts every event of the sample, inside
    the region or not) before the region and the pooling.
    noise_filter: a ``--filter`` (canonical text, ``"none"`` by default) the sample's
    events go through before the binning (:mod:`dvsstream.filters`, on ``sensor_size``:
    events outside it are removed); the count split then counts the events it keeps.
    """

    n_bins: int = 16
    mode: str = "count"
    sensor_size: tuple[int, int] = (128, 128)
    downsample: int = 1
    convention: str = DEFAULT_CONVENTION
    roi: Optional[tuple[int, int, int, int]] = None
    size: Optional[tuple[int, int]] = None
    noise_filter: str = "none"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensor_size", tuple(int(s) for s in self.sensor_size)[:2])
        object.__setattr__(self, "noise_filter", str(parse_filter(self.noise_filter)))
        if int(self.n_bins) < 1:
            raise DvsstreamError(f"FrameSpec: n_bins must be >= 1, got {self.n_bins}")
        if self.mode not in ("count", "time"):
            raise DvsstreamError(f"FrameSpec: mode must be 'count' or 'time', got {self.mode!r}")
        self._check_geometry()
        d = int(self.downsample)
        w, h = self.region[2:]
        if d < 1 or w % d or h % d:
            raise DvsstreamError(f"FrameSpec: downsample {self.downsample} must be >= 1 and divide {w}x{h}")
        if self.convention not in CONVENTIONS:
            raise DvsstreamError(f"FrameSpec: convention must be one of {', '.join(CONVENTIONS)}, "
                                 f"got {self.convention!r}")

    def _check_geometry(self) -> None:
        from dvsstream.binning.region import check_region, output_size, spans_sensor

        roi, size = self.roi, self.size
        try:
            if roi is not None:
                roi = check_region(roi, self.sensor_size, padded=True)
                object.__setattr__(self, "roi", roi)
            if size is not None:
                size = tuple(int(v) for v in size)[:2]
                object.__setattr__(self, "size", size)
                if int(self.downsample) != 1:
                    raise ValueError(f"size {size[0]}x{size[1]} and downsample {self.downsample} both set; "
                                     "give one of them")
                output_size(*self.region[2:], 1, size, spans_sensor(self.region, self.sensor_size))
        except ValueError as exc:
            raise DvsstreamError(f"FrameSpec: {exc}") from None

    @property
    def region(self) -> tuple[int, int, int, int]:
        """``(x0, y0, w, h)`` of the frames the model sees (the whole sensor when no ``roi``)."""
        return self.roi if self.roi is not None else (0, 0, *self.sensor_size)

    @property
    def frame_shape(self) -> tuple[int, int, int, int]:
        """``(T, 2, H, W)`` of the frames."""
        if self.size is not None:
            w, h = self.size
            return (int(self.n_bins), 2, h, w)
        w, h = self.region[2:]
        return (int(self.n_bins), 2, h // self.downsample, w // self.downsample)

    def tag(self) -> str:
        w, h = self.sensor_size
        tag = f"T{self.n_bins}-{self.mode}-{w}x{h}-d{self.downsample}-{self.convention}"
        if self.roi is not None:
            tag += "-roi{}_{}_{}x{}".format(*self.roi)
        if self.size is not None:
            tag += "-to{}x{}".format(*self.size)
        if self.noise_filter != "none":  # a folder name: ba:2000,refractory:500 -> ba2000+refractory500
            tag += "-" + self.noise_filter.replace(":", "").replace(",", "+")
        return tag

    def to_dict(self) -> dict[str, Any]:
        d = {"n_bins": int(self.n_bins), "mode": self.mode, "sensor_size": list(self.sensor_size),
             "downsample": int(self.downsample), "convention": self.convention}
        if self.roi is not None:  # only when set: the cache keys of older specs stay valid
            d["roi"] = list(self.roi)
        if self.size is not None:
            d["size"] = list(self.size)
        if self.noise_filter != "none":
            d["noise_filter"] = self.noise_filter
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FrameSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        tuples = ("sensor_size", "roi", "size")
        return cls(**{k: (tuple(v) if k in tuples and v is not None else v) for k, v in d.items() if k in known})

    @classmethod
    def for_model(cls, config, sensor_size: tuple[int, int] = (128, 128), mode: str = "count",
                  convention: str = DEFAULT_CONVENTION, roi: Optional[Sequence[int]] = None,
                  resize: Optional[Sequence[int]] = None) -> "FrameSpec":
        """The spec that feeds a model: ``T`` bins from ``sensor_size`` to the model's
        ``img_size`` (``(H, W)``) by :func:`dvsstream.binning.geometry_for`: pooled by a
        whole factor when the sensor is one of the input (128x128 -> 64x64: ``downsample``
        2), else the largest centred region of the input's shape resized to it; ``roi`` /
        ``resize`` (``--roi`` / ``--resize``) override it. A bad region or size raises
        :class:`DvsstreamError` (one line)."""
        h, w = (int(s) for s in config.img_size)
        base = cls(n_bins=int(config.T), mode=mode, sensor_size=tuple(int(s) for s in sensor_size),
                   convention=convention)
        return base._fed_to((w, h), roi, resize)

    def with_geometry(self, model_size: Sequence[int], roi: Optional[Sequence[int]] = None,
                      resize: Optional[Sequence[int]] = None) -> "FrameSpec":
        """This spec with ``--roi`` / ``--resize`` applied for a model of input ``model_size
        = (width, height)`` (both None: unchanged)."""
        if roi is None and resize is None:
            return self
        return self._fed_to(model_size, roi, resize)

    def on_sensor(self, sensor_size: Sequence[int], model_size: Sequence[int], roi: Optional[Sequence[int]] = None,
                  resize: Optional[Sequence[int]] = None) -> "FrameSpec":
        """This spec's bins and convention on another sensor ``sensor_size``, with the
        geometry that feeds a model of input ``model_size = (width, height)`` from it."""
        base = dataclasses.replace(self, sensor_size=tuple(int(v) for v in sensor_size), roi=None, size=None,
                                   downsample=1)
        return base._fed_to(model_size, roi, resize)

    def _fed_to(self, model_size: Sequence[int], roi: Optional[Sequence[int]],
                resize: Optional[Sequence[int]]) -> "FrameSpec":
        """This spec with the geometry (:func:`dvsstream.binning.geometry_for`) that feeds
        a model of input ``model_size = (width, height)``: a whole-factor pooling of the
        sensor, or a region resized to the input. One line (DvsstreamError) when none can."""
        from dvsstream.binning import geometry_for

        try:
            geo = geometry_for(model_size, self.sensor_size, roi, resize)
        except ValueError as exc:
            raise DvsstreamError(str(exc)) from None
        if geo.roi is None:
            return dataclasses.replace(self, roi=None, size=None, downsample=self.sensor_size[0] // geo.size[0])
        return dataclasses.replace(self, roi=geo.roi, size=geo.size, downsample=1)


def frames_from_events(events: np.ndarray, spec: FrameSpec, parallel: bool = True,
                       augment: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Bin one sample's events exactly as spikingjelly's
    ``integrate_events_by_fixed_frames_number`` does (``mode`` "count" = ``split_by``
    "number", "time" = "time"; Numba), after the spec's noise filter and then ``augment``
    (events -> events, e.g. :class:`~dvsstream.datasets.event_augment.EventAugment`), then
    keep the spec's region and pool or resize it (:func:`pool_frames`): ``float32``
    :attr:`FrameSpec.frame_shape`."""
    w, h = spec.sensor_size
    if spec.noise_filter != "none":
        events = parse_filter(spec.noise_filter).build((w, h))(events)
    if augment is not None:
        events = augment(events)
    frames = spikingjelly_frames(events, SPLIT_BY[spec.mode], spec.n_bins, w, h, parallel=parallel)
    return pool_frames(frames, spec)


def pool_frames(frames: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """``[T, 2, H, W]`` frames of the whole sensor to the spec's: its region resized to
    ``spec.size`` (:func:`dvsstream.binning.region_frames`), or sum-pooled by
    ``spec.downsample``: ``float32`` :attr:`FrameSpec.frame_shape`."""
    if spec.roi is not None or spec.size is not None:
        from dvsstream.binning import region_frames

        frames = region_frames(frames, spec.roi, spec.size)
    d = spec.downsample
    if d > 1:
        t, c, h, w = frames.shape
        frames = frames.reshape(t, c, h // d, d, w // d, d).sum(axis=(3, 5), dtype=np.float32)
    return np.ascontiguousarray(frames, dtype=np.float32)
