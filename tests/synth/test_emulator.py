"""The DVS pixel model (dvsstream.synth.emulator)."""

from __future__ import annotations

import numpy as np
import pytest

from dvsstream.synth.emulator import Emulator, EmulatorParams, frames_to_events
from dvsstream.events import EVENT_DTYPE, is_sorted

QUIET = dict(noise_rate_hz=0.0, n_hot_pixels=0, refractory_us=0)


def _expected_count(emu, i0, i1, x, y):
    eps = emu.params.eps
    d = np.float32(np.log(np.float32(i1) + np.float32(eps))) - np.float32(np.log(np.float32(i0) + np.float32(eps)))
    th = emu.theta_on[y, x] if d > 0 else emu.theta_off[y, x]
    return int(np.floor(abs(d) / th))


def test_brightness_step_gives_log_ratio_over_threshold_events():
    emu = Emulator((16, 12), seed=1, **QUIET)  # thresholds 0.2 +- 0.03 per pixel
    base = np.full((12, 16), 0.1, np.float32)
    emu.reset(base, 0)
    up = base.copy()
    up[7, 5] = 0.1 * np.exp(1.1)
    ev = emu.step(up, 1000)
    assert ev.dtype == EVENT_DTYPE
    assert np.all(ev["x"] == 5) and np.all(ev["y"] == 7) and np.all(ev["p"] == 1)
    n_on = _expected_count(emu, 0.1, up[7, 5], 5, 7)
    assert ev.size == n_on
    assert 4 <= n_on <= 7  # ~ 1.1 / 0.2
    assert np.all((ev["t"] > 0) & (ev["t"] <= 1000))
    # and back down: OFF events, by the OFF threshold
    ev2 = emu.step(base, 2000)
    assert np.all(ev2["p"] == 0) and ev2.size >= n_on - 1
    assert np.all((ev2["t"] >= 1000) & (ev2["t"] <= 2000))


def test_event_times_are_interpolated_linearly_in_log_intensity():
    frames = np.array([[[0.2]], [[0.2 * np.exp(1.0)]]], np.float32)
    ev = frames_to_events(frames, [0, 1000], theta_on=0.2, threshold_sigma=0.0, eps=1e-9, **QUIET)
    assert ev.size == 5 or ev.size == 4  # 1.0 / 0.2, up to float rounding at the last level
    np.testing.assert_allclose(ev["t"], 200 * np.arange(1, ev.size + 1), atol=2)


def test_static_scene_without_noise_gives_no_events():
    rng = np.random.default_rng(0)
    scene = rng.uniform(0.05, 1.0, (32, 48)).astype(np.float32)
    emu = Emulator((48, 32), seed=0, **QUIET)
    emu.reset(scene, 0)
    ev = emu.run(np.repeat(scene[None], 50, 0), np.arange(1, 51) * 1000)
    assert ev.size == 0


def _moving_disc(n, h=40, w=50, t_step=500, period=20_000):
    yy, xx = np.mgrid[0:h, 0:w]
    times = np.arange(n + 1, dtype=np.int64) * t_step
    frames = np.empty((n + 1, h, w), np.float32)
    for i, t in enumerate(times):
        a = 2 * np.pi * t / period
        cx, cy = w / 2 + 12 * np.cos(a), h / 2 + 12 * np.sin(a)
        frames[i] = np.where((xx - cx) ** 2 + (yy - cy) ** 2 < 36, 0.9, 0.1)
    return frames, times


def test_refractory_period_is_respected():
    frames, times = _moving_disc(200)
    ev = frames_to_events(frames, times, seed=3, refractory_us=800, noise_rate_hz=5.0, n_hot_pixels=2,
                          hot_pixel_rate_hz=2000.0)
    assert ev.size > 100
    pix = ev["y"].astype(np.int64) * 50 + ev["x"]
    order = np.lexsort((ev["t"], pix))
    same = pix[order][1:] == pix[order][:-1]
    gaps = np.diff(ev["t"][order])[same]
    assert gaps.size > 0 and gaps.min() >= 800
    # without the refractory period the same scene gives more events
    ev0 = frames_to_events(frames, times, seed=3, refractory_us=0, noise_rate_hz=5.0, n_hot_pixels=2,
                           hot_pixel_rate_hz=2000.0)
    assert ev0.size > ev.size


def test_background_noise_rate_and_hot_pixels():
    h, w, rate, seconds = 32, 32, 2.0, 10.0
    emu = Emulator((w, h), seed=5, noise_rate_hz=rate, noise_rate_spread=0.0, refractory_us=0,
                   n_hot_pixels=3, hot_pixel_rate_hz=400.0)
    scene = np.full((h, w), 0.5, np.float32)
    emu.reset(scene, 0)
    times = np.arange(1, 101, dtype=np.int64) * int(seconds * 1e6 / 100)
    ev = emu.run(np.repeat(scene[None], 100, 0), times)
    assert is_sorted(ev)
    hot = np.zeros(h * w, bool)
    hot[emu.hot_pixels] = True
    is_hot = hot[ev["y"].astype(np.int64) * w + ev["x"]]
    expected = rate * (h * w - 3) * seconds
    assert abs(np.count_nonzero(~is_hot) - expected) < 5 * np.sqrt(expected)
    assert abs(np.count_nonzero(is_hot) - 3 * 400 * seconds) < 5 * np.sqrt(3 * 400 * seconds)
    assert 0.45 < ev["p"].mean() < 0.55
    assert np.all((ev["t"] >= 0) & (ev["t"] < times[-1]))


def test_events_sorted_in_bounds_and_across_calls():
    frames, times = _moving_disc(400)
    emu = Emulator((50, 40), seed=2, noise_rate_hz=1.0, n_hot_pixels=1)
    emu.reset(frames[0], int(times[0]))
    parts = [emu.run(frames[i:i + 37], times[i:i + 37]) for i in range(1, frames.shape[0], 37)]
    ev = np.concatenate(parts)
    assert ev.size > 1000
    assert is_sorted(ev)
    assert ev["x"].max() < 50 and ev["y"].max() < 40
    assert ev["t"].min() >= 0 and ev["t"].max() <= times[-1]
    assert set(np.unique(ev["p"])) <= {0, 1}
    assert 0.3 < ev["p"].mean() < 0.7


def test_block_run_equals_frame_by_frame_steps():
    frames, times = _moving_disc(60)
    a = Emulator((50, 40), seed=4, refractory_us=300, noise_rate_hz=0.0)
    b = Emulator((50, 40), seed=4, refractory_us=300, noise_rate_hz=0.0)
    a.reset(frames[0], 0)
    b.reset(frames[0], 0)
    ev_a = a.run(frames[1:], times[1:])
    ev_b = np.concatenate([b.step(f, t) for f, t in zip(frames[1:], times[1:])])
    np.testing.assert_array_equal(np.sort(ev_a, order=["t", "y", "x"]), np.sort(ev_b, order=["t", "y", "x"]))


def test_same_seed_same_events_other_seed_other_noise():
    frames, times = _moving_disc(100)
    kw = dict(noise_rate_hz=3.0, n_hot_pixels=2)
    a = frames_to_events(frames, times, seed=7, **kw)
    b = frames_to_events(frames, times, seed=7, **kw)
    c = frames_to_events(frames, times, seed=8, **kw)
    np.testing.assert_array_equal(a, b)
    assert a.size != c.size or not np.array_equal(a, c)


def test_bad_input_is_refused():
    emu = Emulator((8, 6), seed=0)
    with pytest.raises(RuntimeError):
        emu.step(np.ones((6, 8)), 10)
    with pytest.raises(ValueError):
        emu.reset(np.ones((8, 6)), 0)  # [width, height] instead of [height, width]
    emu.reset(np.ones((6, 8)), 100)
    with pytest.raises(ValueError):
        emu.step(np.ones((6, 8)), 50)  # back in time
    with pytest.raises(ValueError):
        emu.step(np.full((6, 8), -0.5), 200)  # not an intensity
    with pytest.raises(ValueError):
        EmulatorParams(theta_on=0).validate()
    with pytest.raises(ValueError):
        Emulator((8, 6), refractory_us=-1)
