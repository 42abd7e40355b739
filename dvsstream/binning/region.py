"""The region rule: where a region ``roi = (x0, y0, w, h)`` (sensor pixels) may lie on a
sensor, the ``(width, height)`` of the frames it makes, and how frames are cut to it.

Along each axis a region lies inside the sensor; what a model sees (``padded``) may
instead span the whole sensor and more, zeros past its edge. The streaming binner, the
whole-recording frames and the model geometry (:mod:`~dvsstream.binning.geometry`) all
apply these rules; this module sits below them. Sizes are ``(width, height)``, frames
``[..., H, W]``. Numpy only.
"""

from __future__ import annotations

import numpy as np

from dvsstream.events import sensor_size_of

__all__ = ["check_region", "output_size", "padded_crop", "region_is_padded", "spans_sensor"]


def check_region(roi, sensor_size, padded: bool = False) -> tuple[int, int, int, int]:
    """``roi = (x0, y0, w, h)`` as ints when it lies inside ``sensor_size``; otherwise
    ``ValueError`` with a one-line reason. With ``padded`` (what a model sees: zeros
    past the sensor's edge), along each axis the region may instead span the whole
    sensor and more: a sensor smaller than a model's input sits inside the region."""
    x0, y0, rw, rh = (int(v) for v in roi)
    w, h = sensor_size_of(sensor_size)
    if rw <= 0 or rh <= 0:
        raise ValueError(f"region {rw}x{rh} at ({x0}, {y0}): the width and height must be > 0")

    def fits(start: int, length: int, extent: int) -> bool:
        return _inside(start, length, extent) or (padded and start <= 0 and start + length >= extent)

    if not (fits(x0, rw, w) and fits(y0, rh, h)):
        hint = "; along each axis it must lie inside the sensor or span all of it" if padded else ""
        raise ValueError(f"region {rw}x{rh} at ({x0}, {y0}) is not inside the {w}x{h} sensor{hint}")
    return x0, y0, rw, rh


def _inside(start: int, length: int, extent: int) -> bool:
    """Whether ``[start, start + length)`` lies within ``[0, extent)``."""
    return start >= 0 and start + length <= extent


def region_is_padded(roi, sensor_size) -> bool:
    """Whether the region ``roi = (x0, y0, w, h)`` (None: the whole sensor) reaches past
    the edge of the ``sensor_size`` sensor."""
    if roi is None:
        return False
    x0, y0, rw, rh = (int(v) for v in roi)
    w, h = sensor_size_of(sensor_size)
    return not (_inside(x0, rw, w) and _inside(y0, rh, h))


def spans_sensor(roi, sensor_size) -> tuple[bool, bool]:
    """Along x and along y, whether the region ``roi = (x0, y0, w, h)`` (None: the whole
    sensor) is exactly the sensor's whole extent (what :func:`output_size` may enlarge)."""
    w, h = sensor_size_of(sensor_size)
    if roi is None:
        return True, True
    x0, y0, rw, rh = (int(v) for v in roi)
    return (x0 == 0 and rw == w), (y0 == 0 and rh == h)


def output_size(rw: int, rh: int, downsample: int, size: tuple[int, int] | None,
                spans: tuple[bool, bool] = (False, False)) -> tuple[int, int]:
    """Frame ``(width, height)`` of a ``rw x rh`` region: ``size`` when given, else the
    region pooled by ``downsample`` (which must divide it). ``size`` is at most the region
    (a larger frame would have pixels no event reaches), except along an axis where the
    region is the sensor's whole extent (``spans``, see :func:`spans_sensor`): a sensor
    smaller than the frame may be enlarged there (each sensor pixel lands in exactly one
    frame pixel, every event kept; the pixels between stay empty)."""
    if size is not None:
        out_w, out_h = (int(v) for v in size)
        if out_w < 1 or out_h < 1:
            raise ValueError(f"--resize {out_w}x{out_h} must be at least 1x1")
        if (out_w > rw and not spans[0]) or (out_h > rh and not spans[1]):
            raise ValueError(f"frames of {out_w}x{out_h} (the model's input or --resize) are larger than the "
                             f"{rw}x{rh} region (--roi); choose a size at most the region's (or a larger region)")
        return out_w, out_h
    if rw % downsample or rh % downsample:
        raise ValueError(f"the {rw}x{rh} region does not divide into blocks of {downsample}x{downsample} "
                         f"(--downsample {downsample}); choose a pooling that divides both sides")
    return rw // downsample, rh // downsample


def padded_crop(frames: np.ndarray, x0: int, y0: int, rw: int, rh: int) -> np.ndarray:
    """``frames[..., y0:y0 + rh, x0:x0 + rw]``, zeros where the region lies past the
    frames' edge (a view when it does not)."""
    height, width = frames.shape[-2:]
    if x0 >= 0 and y0 >= 0 and x0 + rw <= width and y0 + rh <= height:
        return frames[..., y0:y0 + rh, x0:x0 + rw]
    out = np.zeros(frames.shape[:-2] + (rh, rw), frames.dtype)
    xs, ys = max(x0, 0), max(y0, 0)
    xe, ye = min(x0 + rw, width), min(y0 + rh, height)
    out[..., ys - y0:ye - y0, xs - x0:xe - x0] = frames[..., ys:ye, xs:xe]
    return out
