"""The noise filters' own contract: packet by packet equals one call, the window edges,
counts, reset, events outside the sensor, and the ``--filter`` text."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dvsstream.errors import DvsstreamError
from dvsstream.events import make_events
from dvsstream.filters import (
    BackgroundActivity,
    FilterChain,
    RefractoryPeriod,
    parse_filter,
)
from dvsstream.io import open_source

SPECS = ["ba:2000", "denoise:3000", "refractory:1000", "ba:2000,refractory:500", "refractory:200,denoise:10000"]


def random_stream(seed=0, n=50_000, side=32):
    rng = np.random.default_rng(seed)
    t = 1_000 + np.cumsum(rng.integers(0, 40, n))
    return make_events(t, rng.integers(0, side, n), rng.integers(0, side, n), rng.integers(0, 2, n))


def packets_of(ev, rng):
    """Uneven packets, some empty, one of a single event."""
    cuts = np.sort(np.concatenate([rng.integers(0, ev.size, 40), [0, 0, 1, ev.size, ev.size]]))
    return [ev[a:b] for a, b in itertools.pairwise(cuts)]


@pytest.mark.parametrize("spec", SPECS)
def test_packet_by_packet_equals_one_call(spec):
    ev = random_stream()
    whole = parse_filter(spec).build((32, 32))(ev)
    live = parse_filter(spec).build((32, 32))
    parts = [live(p) for p in packets_of(ev, np.random.default_rng(1))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert 0 < whole.size < ev.size
    assert live.events_in == ev.size and live.events_removed == ev.size - whole.size
    assert live.removed_share == pytest.approx(1 - whole.size / ev.size)


def test_packet_by_packet_equals_one_call_on_a_real_recording(real_data):
    with open_source(real_data("dvSave-2024_06_20_15_59_41.aedat4"), packet_us=10_000) as source:
        live = parse_filter("ba:2000,refractory:1000").build(source.sensor_size)
        packets = list(source)
    parts = [live(p) for p in packets]
    whole = parse_filter("ba:2000,refractory:1000").build((128, 128))(np.concatenate(packets))
    assert len(packets) > 100
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_window_edges():
    """Background: a neighbour less than T before keeps (T - 1 yes, T no); refractory:
    the pixel's previous event more than T before keeps (T + 1 yes, T no)."""
    ba = BackgroundActivity((8, 8), 100)
    assert ba(make_events([1000, 1099], [3, 4], [3, 3], [1, 1]))["t"].tolist() == [1099]
    ba.reset()
    assert ba(make_events([1000, 1100], [3, 4], [3, 3], [1, 1])).size == 0
    rp = RefractoryPeriod((8, 8), 100)
    assert rp(make_events([1000, 1100, 1201, 1250], [3, 3, 3, 3], [3, 3, 3, 3], [1, 0, 1, 1]))["t"].tolist() \
        == [1000, 1201]


def test_the_pixel_itself_does_not_support_its_event():
    ba = BackgroundActivity((8, 8), 100)
    assert ba(make_events([1000, 1010, 1020], [3, 3, 3], [3, 3, 3], [1, 1, 0])).size == 0


def test_refractory_compares_with_the_last_event_seen_not_kept():
    """tonic's definition: a refused event still restarts its pixel's period."""
    rp = RefractoryPeriod((4, 4), 100)
    kept = rp(make_events([1000, 1080, 1160, 1300], [1, 1, 1, 1], [2, 2, 2, 2], [1, 1, 1, 1]))
    assert kept["t"].tolist() == [1000, 1300]


def test_reset_forgets_the_stream():
    ev = make_events([1000, 1050], [3, 4], [3, 3], [1, 1])
    ba = BackgroundActivity((8, 8), 100)
    assert ba(ev).size == 1
    ba.reset()
    assert ba.events_in == 0 and ba.removed_share == 0.0
    assert ba(ev[1:]).size == 0  # the first event's history is gone


def test_events_outside_the_sensor_are_removed_and_counted():
    ev = make_events([1000, 1010, 1020], [3, 40, 4], [3, 3, 90], [1, 1, 1])
    rp = RefractoryPeriod((8, 8), 10)
    assert rp(ev)["t"].tolist() == [1000]
    assert rp.events_removed == 2


def test_the_chain_counts_its_own_removals():
    chain = parse_filter(["ba:2000", "refractory:500"]).build((32, 32))
    assert isinstance(chain, FilterChain) and chain.spec == "ba:2000,refractory:500"
    out = chain(random_stream())
    assert chain.events_in == 50_000 and chain.events_removed == 50_000 - out.size
    assert chain.filters[1].events_in == chain.filters[0].events_in - chain.filters[0].events_removed


def test_the_input_is_left_alone_and_any_event_dtype_is_read():
    ev = random_stream(n=2000)
    before = ev.copy()
    tonic_like = np.zeros(ev.size, np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")]))
    for f in "txyp":
        tonic_like[f] = ev[f]
    np.testing.assert_array_equal(parse_filter("ba:500").build((32, 32))(tonic_like),
                                  parse_filter("ba:500").build((32, 32))(ev))
    np.testing.assert_array_equal(ev, before)


@pytest.mark.parametrize("text, canonical", [
    ("ba:2000", "ba:2000"), ("BA:2000 , refractory:500", "ba:2000,refractory:500"), ("none", "none"),
    ("", "none"), ("denoise:1e4", "denoise:10000"), (["ba:10", "refractory:5"], "ba:10,refractory:5"),
])
def test_spec_text(text, canonical):
    assert str(parse_filter(text)) == canonical
    assert parse_filter(str(parse_filter(text))) == parse_filter(text)


@pytest.mark.parametrize("text", ["ba:0", "ba:-5", "ba:nan", "ba:inf", "ba:1e12", "ba:2.5", "ba", "ba:",
                                  "median:100", "refractory:abc", "ba:2000,foo:1"])
def test_bad_specs_are_one_line_errors(text):
    with pytest.raises(DvsstreamError) as info:
        parse_filter(text)
    message = str(info.value)
    assert "\n" not in message and message.startswith("--filter")
