"""Binning kernels against a plain numpy reference, including hypothesis edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvsstream.binning import (
    StreamingBinner,
    batch_events_to_frames,
    events_to_frames,
    time_bin_edges,
)
from dvsstream.events import make_events

# ------------------------------------------------------------------ references


def reference_frames(ev, sensor, n_bins, mode="time", t_start=None, t_end=None):
    """Straightforward numpy binning: the definition the kernels must match."""
    w, h = sensor
    frames = np.zeros((n_bins, 2, h, w), np.float32)
    n = ev.size
    if n == 0:
        return frames
    t = ev["t"].astype(np.int64)
    keep = np.ones(n, bool)
    if mode == "count":
        per = n // n_bins
        k = np.minimum(np.arange(n) // per, n_bins - 1) if per else np.full(n, n_bins - 1)
    else:
        t0 = t.min() if t_start is None else t_start
        t1 = t.max() if t_end is None else t_end
        span = max(t1 - t0, 1)
        keep = (t >= t0) & (t <= t1)
        k = np.minimum((t - t0) * n_bins // span, n_bins - 1)
    keep &= (ev["x"] < w) & (ev["y"] < h)
    np.add.at(frames, (k[keep], (ev["p"][keep] != 0).astype(int), ev["y"][keep], ev["x"][keep]), 1)
    return frames


def random_events(rng, n, sensor=(32, 24), t_max=100_000, sort=True, oob=0.0):
    w, h = sensor
    t = rng.integers(0, t_max, n)
    if sort:
        t = np.sort(t)
    x = rng.integers(0, w, n)
    y = rng.integers(0, h, n)
    if oob:
        bad = rng.random(n) < oob
        x[bad] += w
    return make_events(t, x, y, rng.integers(0, 2, n))


# ------------------------------------------------------------- whole recording


@pytest.mark.parametrize("mode", ["time", "count"])
@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("n_bins", [1, 3, 16])
def test_matches_reference_and_counts_every_event(mode, parallel, n_bins):
    rng = np.random.default_rng(n_bins)
    ev = random_events(rng, 20_000, oob=0.01)
    frames, stats = events_to_frames(ev, (32, 24), n_bins, mode, parallel=parallel, return_stats=True)
    assert frames.dtype == np.float32 and frames.shape == (n_bins, 2, 24, 32)
    np.testing.assert_array_equal(frames, reference_frames(ev, (32, 24), n_bins, mode))
    n_oob = int(np.count_nonzero(ev["x"] >= 32))
    assert stats.out_of_bounds == n_oob > 0
    assert stats.binned == ev.size - n_oob == int(frames.sum())


def test_time_mode_last_event_counted_unlike_tonic():
    # tonic's ToFrame(n_time_bins) drops the last event(s); we must not
    ev = make_events([0, 10, 20, 30, 40], [0, 1, 2, 3, 4], [0] * 5, [1, 0, 1, 0, 1])
    frames = events_to_frames(ev, (8, 1), 4)
    assert frames.sum() == 5
    assert frames[3, 1, 0, 4] == 1  # the last event is in the last (closed) bin
    # bins are half-open: t=10 opens bin 1 (edges 0,10,20,30,41)
    assert frames[1, 0, 0, 1] == 1
    np.testing.assert_array_equal(time_bin_edges(0, 40, 4), [0, 10, 20, 30, 41])


def test_count_mode_is_the_papers_split():
    # N = 10, T = 3 -> floor(10/3) = 3 events per slice, remainder (1) in the last
    ev = make_events(np.arange(10) * 7, np.arange(10), np.zeros(10), np.ones(10))
    frames = events_to_frames(ev, (10, 1), 3, "count")
    assert frames[:, 1].sum(axis=(1, 2)).tolist() == [3, 3, 4]
    assert frames[2, 1, 0, 9] == 1 and frames[0, 1, 0, 2] == 1 and frames[1, 1, 0, 3] == 1


def test_unsorted_input_takes_the_general_path_and_stays_exact():
    rng = np.random.default_rng(1)
    ev = random_events(rng, 5_000, sort=False)
    for mode in ("time", "count"):
        np.testing.assert_array_equal(
            events_to_frames(ev, (32, 24), 5, mode), reference_frames(ev, (32, 24), 5, mode)
        )


def test_explicit_time_range_counts_out_of_window():
    rng = np.random.default_rng(2)
    ev = random_events(rng, 3_000)
    frames, stats = events_to_frames(ev, (32, 24), 4, t_start=20_000, t_end=60_000, return_stats=True)
    inside = (ev["t"] >= 20_000) & (ev["t"] <= 60_000)
    assert stats.out_of_window == int((~inside).sum())
    assert stats.binned == int(inside.sum()) == frames.sum()
    np.testing.assert_array_equal(frames, reference_frames(ev, (32, 24), 4, "time", 20_000, 60_000))


def test_accepts_tonic_dtype():
    tonic_dtype = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "?"), ("t", "<i8")])
    ev = np.zeros(3, tonic_dtype)
    ev["t"] = [0, 5, 9]
    ev["x"] = [1, 2, 3]
    ev["p"] = [True, False, True]
    frames = events_to_frames(ev, (4, 1, 2), 2)  # tonic's (W, H, P) sensor size works too
    assert frames.sum() == 3 and frames[1, 1, 0, 3] == 1


event_lists = st.lists(
    st.tuples(
        st.integers(0, 2**40),  # huge gaps allowed
        st.integers(0, 20),  # some beyond a 16-wide sensor
        st.integers(0, 9),
        st.integers(0, 1),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_lists, n_bins=st.integers(1, 7), mode=st.sampled_from(["time", "count"]),
       sort=st.booleans(), same_t=st.booleans())
def test_hypothesis_edge_cases(events, n_bins, mode, sort, same_t):
    arr = np.array(events, dtype=np.int64).reshape(-1, 4)
    if same_t:
        arr[:, 0] = 123_456  # all events at one timestamp
    if sort:
        arr = arr[np.argsort(arr[:, 0], kind="stable")]
    ev = make_events(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    frames, stats = events_to_frames(ev, (16, 10), n_bins, mode, return_stats=True)
    np.testing.assert_array_equal(frames, reference_frames(ev, (16, 10), n_bins, mode))
    assert stats.binned + stats.out_of_bounds + stats.out_of_window == ev.size
    assert stats.binned == frames.sum()


def test_empty_input_is_float32_zeros():
    frames, stats = events_to_frames(make_events([], [], [], []), (4, 3), 5, return_stats=True)
    assert frames.dtype == np.float32 and frames.shape == (5, 2, 3, 4) and not frames.any()
    assert stats.events == 0


def test_bad_arguments():
    ev = make_events([0], [0], [0], [0])
    with pytest.raises(ValueError, match="n_bins"):
        events_to_frames(ev, (4, 4), 0)
    with pytest.raises(ValueError, match="mode"):
        events_to_frames(ev, (4, 4), 2, "space")


@pytest.mark.parametrize("mode", ["time", "count"])
def test_batch_equals_one_by_one(mode):
    rng = np.random.default_rng(3)
    recs = [random_events(rng, n, oob=0.02) for n in (0, 1, 7, 500, 3_000)]
    recs.append(random_events(rng, 800, sort=False))
    frames, binned = batch_events_to_frames(recs, (32, 24), 6, mode)
    assert frames.shape == (len(recs), 6, 2, 24, 32)
    for i, rec in enumerate(recs):
        np.testing.assert_array_equal(frames[i], reference_frames(rec, (32, 24), 6, mode))
        assert binned[i] == frames[i].sum()


# ------------------------------------------------------------------- streaming


def reference_window(ev, t_start, t_end, n_bins, sensor, downsample=1, roi=None, merge=False, clip=None):
    w, h = sensor
    x0, y0, rw, rh = roi or (0, 0, w, h)
    bin_us = (t_end - t_start) // n_bins
    c = 1 if merge else 2
    frames = np.zeros((n_bins, c, rh // downsample, rw // downsample), np.float32)
    t = ev["t"]
    m = (t >= t_start) & (t < t_end) & (ev["x"] < w) & (ev["y"] < h)
    x = ev["x"].astype(np.int64) - x0
    y = ev["y"].astype(np.int64) - y0
    m &= (x >= 0) & (y >= 0) & (x < rw) & (y < rh)
    k = (t[m] - t_start) // bin_us
    ch = np.zeros(m.sum(), int) if merge else (ev["p"][m] != 0).astype(int)
    np.add.at(frames, (k, ch, y[m] // downsample, x[m] // downsample), 1)
    if clip is not None:
        np.minimum(frames, clip, out=frames)
    return frames


def split_packets(ev, rng, max_size):
    cuts = np.sort(rng.integers(0, ev.size + 1, max(ev.size // max(max_size // 2, 1), 1)))
    return np.split(ev, cuts)


@pytest.mark.parametrize(
    "opts",
    [
        dict(),
        dict(downsample=2),
        dict(roi=(4, 2, 16, 12), downsample=2),
        dict(merge_polarity=True, clip=1.0),
    ],
)
@pytest.mark.parametrize("hop_bins", [1, 2, 4])
def test_streaming_windows_match_reference(opts, hop_bins):
    rng = np.random.default_rng(hop_bins)
    sensor = (32, 24)
    ev = random_events(rng, 30_000, sensor=sensor, t_max=400_000, oob=0.01)
    binner = StreamingBinner(sensor, window_us=40_000, n_bins=4, hop_us=10_000 * hop_bins, **opts)
    windows = list(binner(split_packets(ev, rng, 700)))
    assert len(windows) > 5
    roi = opts.get("roi")
    for win in windows:
        assert win.t_end - win.t_start == 40_000
        ref = reference_window(ev, win.t_start, win.t_end, 4, sensor, opts.get("downsample", 1), roi,
                               opts.get("merge_polarity", False), opts.get("clip"))
        np.testing.assert_array_equal(win.frames, ref)
    # consecutive windows advance by exactly one hop
    assert all(b.t_end - a.t_end == 10_000 * hop_bins for a, b in zip(windows, windows[1:]))
    stats = binner.stats
    assert stats.events == ev.size
    assert stats.events == stats.binned + stats.out_of_bounds + stats.out_of_window
    assert stats.out_of_bounds == int(np.count_nonzero(ev["x"] >= 32))


def test_streaming_emit_new_gives_the_newest_bins():
    rng = np.random.default_rng(11)
    ev = random_events(rng, 5_000, t_max=300_000)
    full = list(StreamingBinner((32, 24), 40_000, 8, 10_000)([ev]))
    new = list(StreamingBinner((32, 24), 40_000, 8, 10_000, emit="new")([ev]))
    assert len(full) == len(new)
    assert new[0].frames.shape[0] == 8 and all(w.frames.shape[0] == 2 for w in new[1:])
    for a, b in zip(full, new):
        np.testing.assert_array_equal(a.frames[-b.new_bins:], b.frames)
        assert a.events == b.events
    # stacking the new bins rebuilds the whole stream of bins
    stream = np.concatenate([w.frames for w in new])
    assert stream.sum() == ev.size


def test_streaming_is_causal():
    ev = make_events([0, 5, 9, 10, 19, 20, 35], [0] * 7, [0] * 7, [1] * 7)
    binner = StreamingBinner((1, 1), window_us=10, n_bins=2, hop_us=10)
    assert binner.push(ev[:3]) == []  # nothing before an event reaches t=10
    (w,) = binner.push(ev[3:4])  # t=10 closes [0, 10)
    assert (w.t_start, w.t_end, w.events) == (0, 10, 3)
    assert w.frames[:, 1, 0, 0].tolist() == [1, 2]  # bins [0,5), [5,10)
    (w,) = binner.push(ev[4:6])  # t=20 closes [10, 20)
    assert w.events == 2
    windows = binner.push(ev[6:])  # t=35 closes [20, 30)
    assert [x.events for x in windows] == [1]
    assert [x.events for x in binner.flush()] == [1]  # end of stream: [30, 40) with t=35


@pytest.mark.parametrize("packet", [1, 3, 1000])
def test_streaming_packet_size_does_not_matter(packet):
    rng = np.random.default_rng(7)
    ev = random_events(rng, 4_000, t_max=200_000)
    ref = [w.frames for w in StreamingBinner((32, 24), 20_000, 4, 5_000)([ev])]
    got = [w.frames for w in StreamingBinner((32, 24), 20_000, 4, 5_000)(
        ev[i:i + packet] for i in range(0, ev.size, packet))]
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)


def test_streaming_huge_gap_skips_empty_windows_and_counts_them():
    ev = make_events([0, 1, 999, 10**10, 10**10 + 1], [0] * 5, [0] * 5, [0] * 5)  # ~2.8 h of silence
    binner = StreamingBinner((1, 1), window_us=1_000, n_bins=4, hop_us=250)
    windows = list(binner([ev]))
    # [0,1000) holds 3; t=999 is also in the next three windows; then the ring is empty,
    # ~4e7 empty windows are skipped, and the window holding t=1e10 comes (via flush)
    assert [w.events for w in windows] == [3, 1, 1, 1, 2]
    assert windows[-1].t_start <= 10**10 < windows[-1].t_end
    assert binner.empty_windows_skipped == windows[-1].gap_before
    assert binner.empty_windows_skipped == (windows[-1].t_end - windows[-2].t_end) // 250 - 1


def test_streaming_late_events_are_counted_not_binned():
    ev1 = make_events([0, 100, 200], [0] * 3, [0] * 3, [1] * 3)
    late = make_events([150, 5], [0, 0], [0, 0], [1, 1])  # 150 fits the window, 5 is too old
    binner = StreamingBinner((1, 1), window_us=100, n_bins=2, hop_us=50)
    binner.push(ev1)
    binner.push(late)
    assert binner.late_events == 1
    s = binner.stats
    assert s.events == 5 and s.binned == 4 and s.out_of_window == 1


def test_streaming_partial_first_windows():
    ev = make_events([0, 30, 60, 90, 120], [0] * 5, [0] * 5, [1] * 5)
    binner = StreamingBinner((1, 1), window_us=100, n_bins=4, hop_us=25, emit_partial=True)
    windows = binner.push(ev)
    assert windows[0].t_end == 25 and windows[0].t_start == -75
    assert windows[0].frames[:, 1, 0, 0].tolist() == [0, 0, 0, 1]


def test_streaming_bad_geometry():
    with pytest.raises(ValueError, match="multiple of n_bins"):
        StreamingBinner((8, 8), window_us=10, n_bins=3)
    with pytest.raises(ValueError, match="hop_us"):
        StreamingBinner((8, 8), window_us=100, n_bins=4, hop_us=30)
    with pytest.raises(ValueError, match=r"region 8x8 at \(4, 4\) is not inside the 8x8 sensor"):
        StreamingBinner((8, 8), window_us=100, n_bins=4, roi=(4, 4, 8, 8))


def test_binning_in_a_forked_child_after_the_parent(tmp_path):
    """A forked child (a DataLoader worker) bins after the main process did: GNU OpenMP
    aborts such a child if it runs a parallel kernel, so every path that picks a kernel
    (events_to_frames, the batch kernel, the datasets' spikingjelly_frames) bins on one
    thread there and gets the same frames."""
    import os

    from dvsstream.binning import batch_events_to_frames
    from dvsstream.datasets.release import spikingjelly_frames

    rng = np.random.default_rng(7)
    ev = random_events(rng, 400_000, sensor=(128, 128), t_max=1_000_000)
    parent = events_to_frames(ev, (128, 128), 16, "count")
    parent_batch, _ = batch_events_to_frames([ev[:1000], ev[1000:]], (128, 128), 4, "time")
    parent_sj = spikingjelly_frames(ev, "number", 16, 128, 128)  # the datasets' path
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when its frames equal the parent's
        same = (np.array_equal(events_to_frames(ev, (128, 128), 16, "count"), parent)
                and np.array_equal(batch_events_to_frames([ev[:1000], ev[1000:]], (128, 128), 4, "time")[0],
                                   parent_batch)
                and np.array_equal(spikingjelly_frames(ev, "number", 16, 128, 128), parent_sj))
        os._exit(0 if same else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
