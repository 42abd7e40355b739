"""A DVS pixel model: intensity frames in, events out (numpy + Numba, no torch).

The model follows the usual idealised DVS pixel (as in ESIM / v2e, simplified):

* Each pixel sees the **log intensity** ``L = ln(I + eps)`` of a linear
  intensity ``I`` in ``(0, 1]`` (``eps`` keeps black pixels finite).
* Each pixel keeps the reference ``ref`` it was last reset to. When
  ``L - ref`` reaches ``+theta_on`` it emits an ON event and moves ``ref`` up by
  ``theta_on``; when it reaches ``-theta_off``, an OFF event and ``ref`` moves
  down. A change of several thresholds between two frames gives as many
  events, with timestamps **linearly interpolated** between the two frame
  times (``L`` is assumed to change linearly in between).
* ``theta_on`` / ``theta_off`` are drawn per pixel, once, from normal
  distributions around the nominal values (``threshold_sigma``, clipped to at
  least ``min_threshold``): the fixed-pattern mismatch of real sensors.
* **Refractory period**: after a pixel emits an event it emits nothing for
  ``refractory_us``; crossings in that time are lost (the reference still
  moves, as the pixel is held in reset and then restarts from the current
  level). Applies to signal and noise events alike.
* **Background activity**: each pixel fires spontaneously as a Poisson process
  with its own rate (log-normally spread around ``noise_rate_hz``), polarity ON
  with probability ``noise_on_fraction``. Noise events do not move the
  reference.
* **Hot pixels**: ``n_hot_pixels`` random pixels fire at ``hot_pixel_rate_hz``
  (again Poisson, random polarity).

Units: times are int64 **microseconds**; thresholds are in natural-log
intensity units (0.2 ~ a 22 % contrast step); rates in **Hz per pixel**.
Frames are ``[height, width]`` arrays, row 0 at the top; event ``x`` is the
column, ``y`` the row. Output events are :data:`~dvsstream.events.EVENT_DTYPE`
arrays, time-sorted within a call and across consecutive calls.

Use :class:`Emulator` (``reset(first_frame, t_us)``, then ``step(frame, t_us)``
or ``run(frames, times_us)`` for a block of frames, which is faster), or the
one-shot :func:`frames_to_events`. Everything random comes from the ``seed``,
so a run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numba as nb
import numpy as np

from dvsstream.events import EVENT_DTYPE, empty_events, sensor_size_of

__all__ = ["EmulatorParams", "Emulator", "frames_to_events"]


@dataclass(frozen=True)
class EmulatorParams:
    """Parameters of the pixel model (units in the field comments)."""

    theta_on: float = 0.2  #: nominal ON threshold, ln-intensity units
    theta_off: float = 0.2  #: nominal OFF threshold, ln-intensity units
    threshold_sigma: float = 0.03  #: per-pixel spread (std) of both thresholds
    min_threshold: float = 0.01  #: thresholds are clipped to at least this
    refractory_us: int = 500  #: dead time after each event of a pixel, µs
    noise_rate_hz: float = 0.1  #: mean background-activity rate per pixel, Hz
    noise_rate_spread: float = 0.5  #: sigma of ln(rate) across pixels (log-normal)
    noise_on_fraction: float = 0.5  #: probability that a noise event is ON
    n_hot_pixels: int = 0  #: pixels firing at ``hot_pixel_rate_hz``
    hot_pixel_rate_hz: float = 100.0  #: rate of a hot pixel, Hz
    eps: float = 1e-3  #: added to the intensity before the log

    def validate(self) -> None:
        if self.theta_on <= 0 or self.theta_off <= 0:
            raise ValueError("thresholds must be positive")
        if self.threshold_sigma < 0 or self.min_threshold <= 0:
            raise ValueError("threshold_sigma must be >= 0 and min_threshold > 0")
        if self.refractory_us < 0:
            raise ValueError("refractory_us must be >= 0")
        if self.noise_rate_hz < 0 or self.hot_pixel_rate_hz < 0 or self.n_hot_pixels < 0:
            raise ValueError("noise rates and the hot pixel count must be >= 0")
        if not 0.0 <= self.noise_on_fraction <= 1.0:
            raise ValueError("noise_on_fraction must be in [0, 1]")
        if self.eps <= 0:
            raise ValueError("eps must be positive")


# ===================================================================== kernels
@nb.njit(cache=True, nogil=True)
def _grow(a, n):
    out = np.empty(max(2 * a.size, n), a.dtype)
    out[: a.size] = a
    return out


@nb.njit(cache=True, nogil=True)
def _crossings(frames, times, t_prev, eps, prev_int, prev_log, ref, th_on, th_off):
    """Threshold crossings of a block of frames.

    ``frames`` [n, H, W] linear intensity, ``times`` [n] µs, ``t_prev`` the
    time of the frame whose intensity is ``prev_int`` and log ``prev_log``
    (both updated in place, as is the reference ``ref``). Pixels whose
    intensity did not change cost one comparison. Returns unsorted candidate events ``(t, x, y, p)``
    (sorted in time per pixel)."""
    n, h, w = frames.shape
    cap = 4096
    ot = np.empty(cap, np.int64)
    ox = np.empty(cap, np.uint16)
    oy = np.empty(cap, np.uint16)
    op = np.empty(cap, np.uint8)
    k = 0
    t0 = t_prev
    for f in range(n):
        t1 = times[f]
        dt = float(t1 - t0)
        for y in range(h):
            for x in range(w):
                v = frames[f, y, x]
                if v == prev_int[y, x]:
                    continue  # unchanged: |l - ref| < theta already holds
                prev_int[y, x] = v
                l0 = prev_log[y, x]
                l1 = np.float32(np.log(v + eps))
                prev_log[y, x] = l1
                r = ref[y, x]
                d = l1 - r
                if d >= th_on[y, x]:
                    th = th_on[y, x]
                    m = int(d / th)
                    pol = 1
                elif d <= -th_off[y, x]:
                    th = -th_off[y, x]
                    m = int(d / th)
                    pol = 0
                else:
                    continue
                if k + m > ot.size:
                    need = k + m
                    ot = _grow(ot, need)
                    ox = _grow(ox, need)
                    oy = _grow(oy, need)
                    op = _grow(op, need)
                dl = l1 - l0
                for j in range(1, m + 1):
                    level = r + j * th
                    if dl != 0.0:
                        frac = (level - l0) / dl
                        if frac < 0.0:
                            frac = 0.0
                        elif frac > 1.0:
                            frac = 1.0
                    else:
                        frac = 1.0
                    ot[k] = t0 + np.int64(np.floor(frac * dt + 0.5))
                    ox[k] = x
                    oy[k] = y
                    op[k] = pol
                    k += 1
                ref[y, x] = r + m * th
        t0 = t1
    return ot[:k], ox[:k], oy[:k], op[:k]


@nb.njit(cache=True, nogil=True)
def _refractory_filter(t, x, y, last_t, refractory_us):
    """Keep-mask over time-sorted events: drop an event closer than
    ``refractory_us`` to the previous *emitted* event of its pixel
    (``last_t`` [H, W] carries across calls, updated in place)."""
    keep = np.ones(t.size, np.bool_)
    for i in range(t.size):
        yy = y[i]
        xx = x[i]
        if t[i] - last_t[yy, xx] < refractory_us:
            keep[i] = False
        else:
            last_t[yy, xx] = t[i]
    return keep


# ===================================================================== emulator
class Emulator:
    """Stateful DVS emulator for one sensor.

    Parameters
    ----------
    sensor_size: ``(width, height)``.
    params: an :class:`EmulatorParams`; keyword arguments override its fields
        (``Emulator((128, 128), theta_on=0.25, noise_rate_hz=0.5, seed=3)``).
    seed: seeds the threshold mismatch, the noise rates, the hot pixels and
        the noise events.

    Call :meth:`reset` with the first frame before :meth:`step` / :meth:`run`.
    """

    def __init__(self, sensor_size=(128, 128), params: EmulatorParams | None = None, *, seed=None, **overrides):
        params = params or EmulatorParams()
        if overrides:
            params = replace(params, **overrides)
        params.validate()
        self.params = params
        self.sensor_size = sensor_size_of(sensor_size)
        w, h = self.sensor_size
        rng = np.random.default_rng(seed)
        self._rng = rng
        p = params
        self.theta_on = np.maximum(rng.normal(p.theta_on, p.threshold_sigma, (h, w)), p.min_threshold).astype(np.float32)
        self.theta_off = np.maximum(rng.normal(p.theta_off, p.threshold_sigma, (h, w)), p.min_threshold).astype(np.float32)
        if p.noise_rate_hz > 0:
            rate = p.noise_rate_hz * np.exp(rng.normal(-0.5 * p.noise_rate_spread**2, p.noise_rate_spread, h * w))
        else:
            rate = np.zeros(h * w)
        n_hot = min(int(p.n_hot_pixels), h * w)
        self.hot_pixels = rng.choice(h * w, n_hot, replace=False) if n_hot else np.zeros(0, np.int64)
        rate[self.hot_pixels] = p.hot_pixel_rate_hz
        self.noise_rate = rate.reshape(h, w)  #: per-pixel noise rate, Hz
        self._rate_total = float(rate.sum())
        self._rate_cdf = np.cumsum(rate) / self._rate_total if self._rate_total > 0 else None
        self._ref: np.ndarray | None = None
        self._prev_log: np.ndarray | None = None
        self._last_event = np.full((h, w), np.iinfo(np.int64).min // 2, np.int64)
        self._t: int | None = None

    # ------------------------------------------------------------------ API
    def reset(self, first_frame: np.ndarray, t_us: int) -> None:
        """Start (or restart) at ``first_frame`` (``[H, W]`` linear intensity)
        seen at ``t_us``: every pixel's reference becomes its log intensity."""
        frame = self._check_frame(first_frame)
        self._prev_int = frame.copy()
        self._prev_log = np.log(frame + np.float32(self.params.eps)).astype(np.float32)
        self._ref = self._prev_log.copy()
        self._last_event[:] = np.iinfo(np.int64).min // 2
        self._t = int(t_us)

    def step(self, frame: np.ndarray, t_us: int) -> np.ndarray:
        """Events between the previous frame and ``frame`` seen at ``t_us``."""
        return self.run(np.asarray(frame)[None], np.array([t_us], np.int64))

    def run(self, frames: np.ndarray, times_us) -> np.ndarray:
        """Events for a block of frames ``[n, H, W]`` seen at increasing
        ``times_us`` [n] (all after the previous frame). Time-sorted
        :data:`EVENT_DTYPE`; signal events lie in ``[t_prev, t_last]``, noise
        events in ``[t_prev, t_last)``."""
        if self._ref is None:
            raise RuntimeError("Emulator.reset(first_frame, t_us) must be called first")
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim == 2:
            frames = frames[None]
        w, h = self.sensor_size
        if frames.ndim != 3 or frames.shape[1:] != (h, w):
            raise ValueError(f"frames must be [n, {h}, {w}], got {frames.shape}")
        times = np.asarray(times_us, dtype=np.int64).reshape(-1)
        if times.size != frames.shape[0]:
            raise ValueError(f"{frames.shape[0]} frames but {times.size} times")
        if times.size == 0:
            return empty_events()
        if times[0] < self._t or np.any(np.diff(times) < 0):
            raise ValueError("frame times must not decrease")
        if not (np.all(np.isfinite(frames)) and frames.min() >= 0):
            raise ValueError("frames must hold finite, non-negative linear intensities")
        frames = np.ascontiguousarray(frames)
        t, x, y, p = _crossings(frames, times, np.int64(self._t), np.float32(self.params.eps),
                                self._prev_int, self._prev_log, self._ref, self.theta_on, self.theta_off)
        nt, nx, ny, npol = self._noise(self._t, int(times[-1]))
        if nt.size:
            t = np.concatenate([t, nt])
            x = np.concatenate([x, nx])
            y = np.concatenate([y, ny])
            p = np.concatenate([p, npol])
        order = np.argsort(t, kind="stable")
        t, x, y, p = t[order], x[order], y[order], p[order]
        if self.params.refractory_us > 0:
            keep = _refractory_filter(t, x, y, self._last_event, np.int64(self.params.refractory_us))
            t, x, y, p = t[keep], x[keep], y[keep], p[keep]
        self._t = int(times[-1])
        ev = np.empty(t.size, EVENT_DTYPE)
        ev["t"] = t
        ev["x"] = x
        ev["y"] = y
        ev["p"] = p
        return ev

    # ------------------------------------------------------------ internals
    def _check_frame(self, frame) -> np.ndarray:
        frame = np.asarray(frame, dtype=np.float32)
        w, h = self.sensor_size
        if frame.shape != (h, w):
            raise ValueError(f"a frame must be [{h}, {w}] (height, width), got {frame.shape}")
        if not (np.all(np.isfinite(frame)) and frame.min() >= 0):
            raise ValueError("a frame must hold finite, non-negative linear intensities")
        return frame

    def _noise(self, t0: int, t1: int):
        """Poisson background activity and hot pixels in ``[t0, t1)``."""
        span = t1 - t0
        if span <= 0 or self._rate_cdf is None:
            z = np.zeros(0, np.int64)
            return z, z.astype(np.uint16), z.astype(np.uint16), z.astype(np.uint8)
        rng = self._rng
        n = int(rng.poisson(self._rate_total * span * 1e-6))
        idx = np.searchsorted(self._rate_cdf, rng.random(n), side="right")
        idx = np.minimum(idx, self._rate_cdf.size - 1)
        w = self.sensor_size.width
        t = t0 + rng.integers(0, span, n, dtype=np.int64)
        p = (rng.random(n) < self.params.noise_on_fraction).astype(np.uint8)
        return t, (idx % w).astype(np.uint16), (idx // w).astype(np.uint16), p


def frames_to_events(frames, times_us, sensor_size=None, params: EmulatorParams | None = None, *,
                     seed=None, **overrides) -> np.ndarray:
    """One-shot conversion: ``frames`` [n, H, W] (linear intensity, n >= 1)
    seen at ``times_us`` [n] (µs) -> time-sorted :data:`EVENT_DTYPE` events.
    The first frame sets the references (it produces no events)."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must be [n >= 1, H, W], got {frames.shape}")
    if sensor_size is None:
        sensor_size = (frames.shape[2], frames.shape[1])
    emu = Emulator(sensor_size, params, seed=seed, **overrides)
    times = np.asarray(times_us, dtype=np.int64)
    emu.reset(frames[0], int(times[0]))
    return emu.run(frames[1:], times[1:])
