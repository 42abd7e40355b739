"""Event dtype, validation, timestamp unwrapping, rate meter and the synthetic source."""

from __future__ import annotations

import numpy as np
import pytest

from dvsstream.events import (
    EVENT_DTYPE,
    EventRateMeter,
    TimestampUnwrapper,
    as_events,
    count_out_of_bounds,
    count_out_of_order,
    drop_out_of_bounds,
    is_sorted,
    make_events,
    sort_events,
    unwrap_timestamps,
)
from dvsstream.errors import SourceError
from dvsstream.io import open_source


def test_dtype_fields():
    assert EVENT_DTYPE.names == ("t", "x", "y", "p")
    assert [EVENT_DTYPE[f] for f in "txyp"] == [np.dtype("<i8"), np.dtype("<u2"), np.dtype("<u2"), np.dtype("u1")]


def test_make_and_convert():
    ev = make_events([1, 2], [3, 4], [5, 6], [True, 0])
    assert ev["p"].tolist() == [1, 0]
    tonic = np.zeros(2, np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "?"), ("t", "<i8")]))
    tonic["t"] = [7, 8]
    tonic["p"] = [False, True]
    out = as_events(tonic)
    assert out.dtype == EVENT_DTYPE and out["t"].tolist() == [7, 8] and out["p"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="lack field"):
        as_events(np.zeros(2, np.dtype([("t", "<i8")])))


def test_bounds():
    ev = make_events([0, 1, 2], [0, 128, 5], [0, 0, 200], [1, 1, 1])
    assert count_out_of_bounds(ev, (128, 128)) == 2
    kept, n = drop_out_of_bounds(ev, (128, 128))
    assert n == 2 and kept["t"].tolist() == [0]


def test_sort_repair_counts_out_of_order_events():
    ev = make_events([0, 5, 3, 4, 9, 1], [0, 1, 2, 3, 4, 5], [0] * 6, [0] * 6)
    assert not is_sorted(ev)
    assert count_out_of_order(ev) == 3  # 3, 4 and 1 come after 5
    fixed, n = sort_events(ev)
    assert n == 3 and is_sorted(fixed)
    assert sorted(fixed["x"].tolist()) == list(range(6))  # nothing lost
    assert fixed["t"].tolist() == [0, 1, 3, 4, 5, 9]
    same, n = sort_events(fixed)
    assert n == 0 and same is fixed


def test_unwrap_32bit_timestamps_across_packets():
    true_t = np.arange(0, 3 * 2**32, 2**30, dtype=np.int64) + 17
    raw = (true_t % 2**32).astype(np.uint32)
    np.testing.assert_array_equal(unwrap_timestamps(raw), true_t)
    unwrap = TimestampUnwrapper()
    parts = [unwrap(chunk) for chunk in np.array_split(raw, 5)]
    np.testing.assert_array_equal(np.concatenate(parts), true_t)
    assert unwrap.wraps == 2


def test_unwrap_keeps_small_backwards_jitter_visible():
    raw = np.array([100, 200, 150, 300], np.uint32)
    assert unwrap_timestamps(raw).tolist() == [100, 200, 150, 300]


def test_rate_meter_peak_spans_packets():
    t = np.concatenate([np.arange(0, 10_000, 100), np.full(500, 25_000), np.arange(30_000, 40_000, 100)])
    ev = make_events(t, np.zeros(t.size), np.zeros(t.size), np.zeros(t.size))
    meter = EventRateMeter(bin_us=10_000)
    for part in np.array_split(ev, 7):  # the busy bin is cut across packets
        meter.update(part)
    assert meter.events == t.size
    assert meter.peak_rate == 500 * 100  # 500 events in 10 ms
    assert meter.duration_s == pytest.approx(0.0399)


def test_synthetic_source_rate_and_bounds():
    with open_source("synthetic:rate=200000,duration=0.5,seed=3") as src:
        ev = np.concatenate(list(src))
    assert 0.9 * 100_000 < ev.size < 1.1 * 100_000
    assert is_sorted(ev) and count_out_of_bounds(ev, (128, 128)) == 0
    assert ev["t"].max() < 500_000
    assert 0.3 < ev["p"].mean() < 0.7


def test_unknown_uri_scheme_is_a_clear_error():
    with pytest.raises(SourceError, match="unknown source scheme"):
        open_source("ftp://example/file")
    with pytest.raises(SourceError, match="bad option"):
        open_source("synthetic:speed=3")
