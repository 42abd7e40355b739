"""The noise filters against their peers, event for event, on the real recordings
(``../shared/data/real/``, skipped when absent) and on dense random streams.

* ``ba:T`` equals dv-processing's ``noise.BackgroundActivityNoiseFilter`` (8 neighbours);
* ``denoise:T`` equals tonic's ``functional.denoise_numpy`` (4 neighbours);
* ``refractory:T`` equals tonic's ``functional.refractory_period_numpy``;
* the two background definitions differ, and the difference is only the diagonals.
"""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from dvsstream.events import make_events
from dvsstream.filters import parse_filter
from dvsstream.io import open_source

dv = pytest.importorskip("dv_processing")
tonic_functional = pytest.importorskip("tonic.functional")

#: every real recording (the five DVS128 ones, the 320x240 DVXplorer, the N-CARS crop)
RECORDINGS = ["dvSave-2024_06_20_15_59_41.aedat4", "dvSave-2024_06_20_16_06_00.aedat4",
              "dvSave-2024_06_20_16_12_48.aedat4", "neal_walking.aedat", "cam255_right_clamp_test1.aedat",
              "dvxplorer_sample.aedat4", "ncars_sample.dat"]
TONIC_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i2")])


def read_all(path):
    with open_source(path) as source:
        return np.concatenate(list(source)), tuple(source.sensor_size)


def as_tonic(ev):
    out = np.zeros(ev.size, TONIC_DTYPE)
    for f in "txyp":
        out[f] = ev[f]
    return out


def dv_background(ev, size, window_us):
    """dv-processing's filter on the same events (an EventStore built event by event)."""
    store = dv.EventStore()
    for t, x, y, p in ev.tolist():
        store.push_back(t, x, y, bool(p))
    flt = dv.noise.BackgroundActivityNoiseFilter(size, datetime.timedelta(microseconds=window_us))
    flt.accept(store)
    out = flt.generateEvents().numpy()
    return make_events(out["timestamp"], out["x"], out["y"], out["polarity"])


def assert_same_events(ours, peer):
    assert ours.size == peer.size
    for f in "txyp":
        np.testing.assert_array_equal(ours[f].astype(np.int64), peer[f].astype(np.int64), err_msg=f)


@pytest.mark.parametrize("name", RECORDINGS)
def test_ba_equals_dv_processing_on_real_recordings(real_data, name):
    ev, size = read_all(real_data(name))
    for window in (1000, 10_000):
        ours = parse_filter(f"ba:{window}").build(size)(ev)
        assert 0 < ours.size < ev.size
        assert_same_events(ours, dv_background(ev, size, window))


@pytest.mark.parametrize("name", ["dvSave-2024_06_20_16_12_48.aedat4", "neal_walking.aedat",
                                  "cam255_right_clamp_test1.aedat", "dvxplorer_sample.aedat4", "ncars_sample.dat"])
def test_denoise_and_refractory_equal_tonic_on_real_recordings(real_data, name):
    ev, size = read_all(real_data(name))
    tonic_ev = as_tonic(ev)
    ours = parse_filter("denoise:5000").build(size)(ev)
    assert 0 < ours.size < ev.size
    assert_same_events(ours, tonic_functional.denoise_numpy(tonic_ev, filter_time=5000))
    ours = parse_filter("refractory:1000").build(size)(ev)
    assert 0 < ours.size < ev.size
    assert_same_events(ours, tonic_functional.refractory_period_numpy(tonic_ev, refractory_period=1000))


def test_peers_start_state_matched_on_a_recording_rebased_to_zero(real_data):
    """With times from 0, the start state shows: every pixel 'fired at 0' for both
    peers' background filters, at -T for tonic's refractory period."""
    ev, size = read_all(real_data("neal_walking.aedat"))
    ev = ev[:20_000].copy()
    ev["t"] -= ev["t"][0]
    tonic_ev = as_tonic(ev)
    assert_same_events(parse_filter("denoise:20000").build(size)(ev),
                       tonic_functional.denoise_numpy(tonic_ev, filter_time=20000))
    assert_same_events(parse_filter("ba:20000").build(size)(ev), dv_background(ev, size, 20000))
    ours = parse_filter("refractory:3000").build(size)(ev)
    assert ours[0]["t"] > 0  # the event at t = 0 is refused, as tonic refuses it
    assert_same_events(ours, tonic_functional.refractory_period_numpy(tonic_ev, refractory_period=3000))


def dense_stream(seed, n=20_000, side=6, rate_us=3):
    """Many events on a small sensor: every pixel fires often, near the window edges."""
    rng = np.random.default_rng(seed)
    t = 50_000 + np.cumsum(rng.integers(0, rate_us, n))
    return make_events(t, rng.integers(0, side, n), rng.integers(0, side, n), rng.integers(0, 2, n))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("window", [1, 7, 40])
def test_equal_to_peers_on_dense_random_streams(seed, window):
    ev = dense_stream(seed)
    size = (6, 6)
    tonic_ev = as_tonic(ev)
    assert_same_events(parse_filter(f"ba:{window}").build(size)(ev), dv_background(ev, size, window))
    assert_same_events(parse_filter(f"denoise:{window}").build(size)(ev),
                       tonic_functional.denoise_numpy(tonic_ev, filter_time=window))
    assert_same_events(parse_filter(f"refractory:{window}").build(size)(ev),
                       tonic_functional.refractory_period_numpy(tonic_ev, refractory_period=window))


def test_the_two_background_definitions_differ_by_the_diagonals_only():
    """tonic's Denoise looks at 4 neighbours, dv-processing's filter at 8: an event
    supported only by a diagonal neighbour passes ``ba`` and not ``denoise``."""
    ev = make_events([100_000, 100_050, 100_100], [5, 6, 9], [5, 6, 5], [1, 0, 1])
    size = (16, 16)
    assert parse_filter("ba:100").build(size)(ev)["t"].tolist() == [100_050]
    assert parse_filter("denoise:100").build(size)(ev).size == 0
    assert dv_background(ev, size, 100)["t"].tolist() == [100_050]
    assert tonic_functional.denoise_numpy(as_tonic(ev), filter_time=100).size == 0
