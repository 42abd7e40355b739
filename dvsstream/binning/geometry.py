"""Sensor -> region -> model input, and the live window: the one place these rules are
decided.

* :class:`Geometry` / :func:`geometry_for`: the region of a sensor (``roi = (x0, y0, w,
  h)``, sensor pixels) and the ``(width, height)`` it is resized to that feed a model;
* :class:`BinningConfig`: how a live stream is cut for a model, in time (a window of
  ``n_bins`` bins, a hop; µs) and in space (the region and its size or pooling), and the
  :class:`~dvsstream.binning.streaming.StreamingBinner` that cuts it;
* :func:`live_binning`: a checkpoint's binning on a given sensor (:func:`trained_region`:
  the region it was trained on; :func:`default_binning` when it states none);
* the checks and words around them: :func:`check_window`, :func:`binning_mismatch`,
  :func:`binning_geometry`.

Where a region may lie on a sensor and what frame size it makes is
:mod:`~dvsstream.binning.region`'s rule, below this module. No torch, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from dvsstream.binning.region import check_region, output_size, region_is_padded, spans_sensor
from dvsstream.binning.streaming import StreamingBinner
from dvsstream.errors import DvsstreamError

__all__ = [
    "BinningConfig",
    "Geometry",
    "binning_geometry",
    "binning_mismatch",
    "check_window",
    "default_binning",
    "geometry_for",
    "live_binning",
    "trained_region",
]


# ============================================================== the model's region
@dataclass(frozen=True)
class Geometry:
    """Where a model's input comes from on a sensor: the region ``roi = (x0, y0, w, h)``
    (sensor pixels, None: the whole sensor) resized to ``size = (width, height)``."""

    roi: tuple[int, int, int, int] | None
    size: tuple[int, int]

    def describe(self, sensor_size) -> str:
        w, h = (int(v) for v in sensor_size)
        x0, y0, rw, rh = self.roi if self.roi is not None else (0, 0, w, h)
        (ow, oh) = self.size
        pooled = rw % ow == 0 and rh % oh == 0 and rw // ow == rh // oh
        scale = f"{rw / ow:.3g}:1" if rw * oh == rh * ow else f"{rw / ow:.3g}:1 x {rh / oh:.3g}:1"
        if (rw, rh) == (ow, oh):
            scaling = f"not scaled, {ow}x{oh}"
        elif rw < ow or rh < oh:
            scaling = f"enlarged {scale} (nearest pixel, every event kept) to {ow}x{oh}"
        else:
            scaling = f"{f'pooled by {rw // ow}' if pooled else f'resized {scale} (nearest bin)'} to {ow}x{oh}"
        region = "the whole sensor" if (x0, y0, rw, rh) == (0, 0, w, h) else f"region {rw}x{rh} at ({x0}, {y0})"
        if region_is_padded(self.roi, (w, h)):
            region += " (past the sensor's edge: zeros there)"
        return f"{w}x{h} sensor, {region}, {scaling}"


def geometry_for(model_size: tuple[int, int], sensor_size, roi: Sequence[int] | None = None,
                 resize: Sequence[int] | None = None) -> Geometry:
    """The region and size that feed a model of input ``model_size = (width, height)``
    from ``sensor_size``. Default: the whole sensor when it is an integer multiple of
    the input (128x128 -> 64x64: pooled by 2), else the largest centred region with the
    input's aspect ratio, resized to the input (320x240 -> the centred 240x240 ->
    64x64), but never enlarged: a sensor narrower or lower than the input sits centred
    in an input-sized region, zeros past its edge (78x42 -> 64x64 at (7, -11)), unless
    ``resize`` is given: then the whole small sensor is resized to the input, enlarged
    along an axis where it is smaller (34x34 -> 64x64: each sensor pixel lands in one
    input pixel, every event kept, nearest pixel; 78x42 -> 64x64: x shrunk, y enlarged).
    ``roi`` / ``resize`` override it (along each axis a region lies inside the sensor or
    spans all of it: :func:`~dvsstream.binning.region.check_region` with ``padded``). Raises
    ``ValueError`` (one line) for another region or one smaller than the input, or a
    size the model does not take (the streaming binner's rules: ``info``, ``run`` and
    the window agree)."""
    w, h = (int(v) for v in sensor_size)
    mw, mh = (int(v) for v in model_size)
    size = tuple(int(v) for v in resize) if resize is not None else (mw, mh)
    if tuple(size) != (mw, mh):
        raise ValueError(f"--resize {size[0]}x{size[1]} does not match the model's {mw}x{mh} input")
    if roi is not None:
        region = check_region(roi, (w, h), padded=True)
    elif resize is not None and (w < mw or h < mh):
        return Geometry((0, 0, w, h), size)  # a small sensor enlarged: every event kept
    elif w % mw == 0 and h % mh == 0 and w // mw == h // mh:
        return Geometry(None, size)
    else:
        scale = max(1.0, min(w / mw, h / mh))
        rw, rh = int(mw * scale), int(mh * scale)
        region = ((w - rw) // 2, (h - rh) // 2, rw, rh)
    output_size(region[2], region[3], 1, size, spans_sensor(region, (w, h)))  # the binner's rule
    return Geometry(region, size)


# ============================================================== the live window
@dataclass(frozen=True)
class BinningConfig:
    """How a live stream is cut for the model: a ``window_us`` window of ``n_bins`` time
    bins, a new window every ``hop_us``; in space, the region ``roi = (x0, y0, w, h)``
    of the sensor (None: all of it) either sum-pooled by ``downsample`` or, with
    ``size = (width, height)``, resized to that (integer pooling or the nearest-bin
    resize: every event of the region lands in exactly one frame pixel)."""

    window_us: int
    n_bins: int
    hop_us: int
    downsample: int = 1
    roi: Optional[tuple[int, int, int, int]] = None
    size: Optional[tuple[int, int]] = None

    def __post_init__(self) -> None:
        if self.n_bins < 1 or self.window_us <= 0 or self.window_us % self.n_bins:
            raise ValueError(f"window ({self.window_us} µs) must be a positive multiple of T={self.n_bins} bins")
        bin_us = self.window_us // self.n_bins
        if self.hop_us <= 0 or self.hop_us % bin_us or self.hop_us > self.window_us:
            raise ValueError(
                f"hop ({self.hop_us} µs) must be a multiple of the bin length {bin_us} µs "
                f"(window / T) and at most the window ({self.window_us} µs)"
            )
        if self.roi is not None:
            object.__setattr__(self, "roi", tuple(int(v) for v in self.roi))
        if self.size is not None:
            object.__setattr__(self, "size", tuple(int(v) for v in self.size))

    @property
    def bin_us(self) -> int:
        return self.window_us // self.n_bins

    def binner(self, sensor_size, **options: Any) -> StreamingBinner:
        return StreamingBinner(sensor_size, self.window_us, self.n_bins, self.hop_us,
                               downsample=self.downsample, roi=self.roi, size=self.size, **options)

    def frame_size(self, sensor_size) -> tuple[int, int]:
        """``(width, height)`` of the frames this binning makes from ``sensor_size``."""
        w, h = (int(v) for v in sensor_size)
        rw, rh = (self.roi[2], self.roi[3]) if self.roi is not None else (w, h)
        return self.size if self.size is not None else (rw // self.downsample, rh // self.downsample)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(window_us=self.window_us, n_bins=self.n_bins, hop_us=self.hop_us,
                                   downsample=self.downsample)
        if self.roi is not None:
            out["roi"] = list(self.roi)
        if self.size is not None:
            out["size"] = list(self.size)
        return out

    def replace(self, window_ms: Optional[float] = None, hop_ms: Optional[float] = None,
                n_bins: Optional[int] = None, downsample: Optional[int] = None,
                geometry: Optional[Geometry] = None) -> "BinningConfig":
        """This binning with the given parts changed (times in ms; None keeps a part;
        ``geometry`` sets the region and size, and the pooling to 1).
        Raises ``ValueError`` saying why when they do not fit together."""
        return BinningConfig(
            window_us=self.window_us if window_ms is None else int(round(window_ms * 1000)),
            n_bins=self.n_bins if n_bins is None else int(n_bins),
            hop_us=self.hop_us if hop_ms is None else int(round(hop_ms * 1000)),
            downsample=(1 if geometry is not None else self.downsample if downsample is None else int(downsample)),
            roi=self.roi if geometry is None else geometry.roi,
            size=self.size if geometry is None else geometry.size,
        )


def trained_region(meta: dict, sensor_size) -> Optional[tuple[int, int, int, int]]:
    """The region ``(x0, y0, w, h)`` a checkpoint's model was trained on (its meta's
    ``frame_spec.roi``, as ``train --roi`` stores it), in the readers' coordinates, when
    it was trained on events of this ``sensor_size``; None otherwise. The releases'
    CIFAR10-DVS frames are the transpose of ours (:mod:`dvsstream.datasets.release`), so a
    region in that convention is transposed back."""
    spec = meta.get("frame_spec") if isinstance(meta, dict) else None
    if not isinstance(spec, dict) or spec.get("roi") is None:
        return None
    if tuple(int(v) for v in spec.get("sensor_size") or ()) != tuple(int(v) for v in sensor_size):
        return None
    x0, y0, w, h = (int(v) for v in spec["roi"])
    if spec.get("convention") == "spikingjelly" and "cifar" in str(meta.get("dataset", "")).lower():
        return (y0, x0, h, w)
    return (x0, y0, w, h)


def live_binning(base: BinningConfig, model_size: Sequence[int], meta: dict, sensor_size=None, *,
                 window_ms: Optional[float] = None, hop_ms: Optional[float] = None, n_bins: Optional[int] = None,
                 roi: Optional[Sequence[int]] = None, resize: Optional[Sequence[int]] = None) -> BinningConfig:
    """A checkpoint's live binning ``base`` with the given parts changed (None keeps one)
    and the geometry that feeds its model, of input ``model_size = (width, height)``, from
    ``sensor_size`` (:func:`geometry_for`; ``base``'s own pooling when the sensor is
    unknown). Without ``roi`` and ``resize`` the region the model was trained on
    (:func:`trained_region` of the checkpoint's ``meta``) is used when it fits, so that
    ``run`` and the window see what ``train --roi`` taught. Raises ``ValueError`` (one
    line) when the given parts do not fit."""
    geometry = None
    if sensor_size is not None:
        trained = trained_region(meta, sensor_size) if roi is None and resize is None else None
        try:
            geometry = geometry_for(model_size, sensor_size, trained, None) if trained else None
        except ValueError:
            geometry = None  # a stored region this model cannot take: the default below
        if geometry is None:
            geometry = geometry_for(model_size, sensor_size, roi, resize)
    return base.replace(window_ms=window_ms, hop_ms=hop_ms, n_bins=n_bins, geometry=geometry)


def default_binning(n_bins: int) -> BinningConfig:
    """A window of ``n_bins`` bins of 50 ms, hop one bin: the live binning of a checkpoint
    whose meta states none (the geometry: :func:`live_binning`)."""
    return BinningConfig(window_us=50_000 * n_bins, n_bins=n_bins, hop_us=50_000)


def check_window(window_ms: float, bins: int, hop_ms: float, to_us: Callable[[float], int] = int) -> None:
    """A sliding window of ``bins`` bins of whole µs, hopping by whole bins, at most a
    window (``to_us``: how the consumer turns ms * 1000 into µs, ``int`` or ``round``)."""
    window_us, hop_us = int(to_us(window_ms * 1000)), int(to_us(hop_ms * 1000))
    if window_us < bins or window_us % bins:
        raise DvsstreamError(f"--window-ms {window_ms:g} does not split into --bins {bins} bins of whole "
                             "microseconds; choose a window that is a multiple of the bins")
    bin_us = window_us // bins
    if hop_us < bin_us or hop_us % bin_us or hop_us > window_us:
        raise DvsstreamError(f"--hop-ms {hop_ms:g} must be a multiple of the bin length {bin_us / 1000:g} ms "
                             f"(--window-ms / --bins) and at most --window-ms {window_ms:g}")


def binning_mismatch(trained: BinningConfig, binning: BinningConfig) -> list[str]:
    """One line for each way ``binning`` differs from ``trained`` (the checkpoint's
    binning): the number of bins T and the window length."""
    lines = []
    if binning.n_bins != trained.n_bins:
        lines.append(f"--bins {binning.n_bins} differs from the T={trained.n_bins} bins the checkpoint was trained "
                     "with; accuracy may drop (leave --bins out to use the checkpoint's)")
    if binning.window_us != trained.window_us:
        lines.append(f"--window-ms {binning.window_us / 1000:g} differs from the {trained.window_us / 1000:g} ms window "
                     "the checkpoint was trained with; accuracy may drop (leave --window-ms out to use the "
                     "checkpoint's)")
    return lines


def binning_geometry(binning: BinningConfig, sensor_size) -> str:
    """The region of ``sensor_size`` a binning feeds the model, in words."""
    return Geometry(binning.roi, tuple(binning.frame_size(sensor_size))).describe(sensor_size)
