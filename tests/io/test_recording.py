"""HDF5 recordings: exact round trip, indexed seeking, crash safety (SIGKILL),
bad files, record(), and the HDF5Source replay."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from dvsstream.errors import DvsstreamError, FormatError
from dvsstream.events import EVENT_DTYPE, SensorSize, make_events
from dvsstream.io.hdf5 import FORMAT_VERSION, RecordingReader, RecordingWriter
from dvsstream.io.record import record
from dvsstream.io import open_source
from dvsstream.io.base import LABEL_DTYPE, EventSource
from dvsstream.io.hdf5 import HDF5Source

REPO = Path(__file__).resolve().parents[2]


def random_events(n: int, seed: int = 0, size=(128, 128), t0: int = 1_000, mean_gap: float = 5.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = t0 + np.cumsum(rng.geometric(1 / mean_gap, n) - 1)  # gaps >= 0: equal timestamps occur
    return make_events(t, rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n))


def write_packets(path, events, packet=1000, **kw) -> None:
    with RecordingWriter(path, kw.pop("sensor_size", (128, 128)), kw.pop("camera", "DVS128_TEST"), **kw) as w:
        for i in range(0, events.size, packet):
            w.write(events[i:i + packet])


# ============================================================================ round trip
def test_round_trip_exact(tmp_path):
    ev = random_events(300_000, seed=1, size=(346, 260))
    path = tmp_path / "rt.h5"
    with RecordingWriter(path, (346, 260), "DAVIS346_00000499", class_names=["hand_clap", "arm_roll"],
                         source='{"kind": "synthetic"}', chunk_events=4096) as w:
        rng = np.random.default_rng(5)
        i = 0
        while i < ev.size:  # irregular packet sizes, including empty ones
            n = int(rng.integers(0, 5000))
            w.write(ev[i:i + n])
            i += n
        w.add_label(ev["t"][10], ev["t"][5000], 1)
        w.add_label(ev["t"][6000], ev["t"][9000], "hand_clap")
        w.add_label(ev["t"][9000], ev["t"][-1] + 1, "air_drums")  # a new class name
        assert w.n_events == ev.size
    with RecordingReader(path) as r:
        assert r.n_events == ev.size
        assert r.sensor_size == SensorSize(346, 260)
        assert r.camera == "DAVIS346_00000499"
        assert r.start_time_us == ev["t"][0] and r.end_time_us == ev["t"][-1]
        assert r.class_names == ["hand_clap", "arm_roll", "air_drums"]
        assert r.labels.dtype == LABEL_DTYPE
        assert r.labels.tolist() == [(ev["t"][10], ev["t"][5000], 1), (ev["t"][6000], ev["t"][9000], 0),
                                     (ev["t"][9000], ev["t"][-1] + 1, 2)]
        assert r.attrs["format_version"] == FORMAT_VERSION
        assert r.attrs["sensor_width"] == 346 and r.attrs["sensor_height"] == 260
        assert r.attrs["start_time_us"] == ev["t"][0] and r.attrs["end_time_us"] == ev["t"][-1]
        assert json.loads(r.source) == {"kind": "synthetic"}
        started = dt.datetime.fromisoformat(r.wall_clock_start)
        assert abs((dt.datetime.now().astimezone() - started).total_seconds()) < 60
        got = r.read()
        assert got.dtype == EVENT_DTYPE
        np.testing.assert_array_equal(got, ev)
        # streaming in bounded pieces gives the same events
        pieces = list(r.iter_packets(chunk_events=77_777))
        assert max(p.size for p in pieces) <= 77_777
        np.testing.assert_array_equal(np.concatenate(pieces), ev)
    # plain h5py sees ordinary columns
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["events/x"][:], ev["x"])
        assert f["events/t"].compression == "gzip" and f["events/t"].shuffle


def test_seek_and_ranges_match_searchsorted(tmp_path):
    ev = random_events(200_000, seed=2, mean_gap=20)  # ~4 s of events, 10 ms buckets
    path = tmp_path / "seek.h5"
    write_packets(path, ev, packet=3333)
    t = ev["t"]
    rng = np.random.default_rng(3)
    targets = np.concatenate([
        rng.integers(t[0] - 100, t[-1] + 100, 300),
        t[rng.integers(0, t.size, 100)],  # exact event times (duplicates exist)
        [t[0], t[-1], t[0] - 1, t[-1] + 1, -(10 ** 12), 10 ** 15],
    ])
    with RecordingReader(path) as r:
        assert r.index.size > 100
        assert np.all(np.diff(r.index["t"]) > 0) and np.all(np.diff(r.index["offset"]) > 0)
        for target in targets.tolist():
            assert r.seek(target) == np.searchsorted(t, target, side="left"), target
        for _ in range(50):
            a, b = sorted(rng.integers(t[0] - 10, t[-1] + 10, 2).tolist())
            np.testing.assert_array_equal(r.read(a, b), ev[(t >= a) & (t < b)])
        start = int(t[t.size // 3])
        np.testing.assert_array_equal(np.concatenate(list(r.iter_packets(start, chunk_events=10_000))),
                                      ev[t >= start])


def test_hour_long_recording_seek_reads_small_slice(tmp_path):
    # sparse bursts over one hour: 120 bursts of 5000 events, 1 µs apart, 30 s apart
    burst = 5000
    starts = np.arange(120, dtype=np.int64) * 30_000_000 + 123
    t = (starts[:, None] + np.arange(burst)[None, :]).ravel()
    t = np.concatenate([t, [3_600_000_000]])  # a last event at exactly one hour
    n = t.size
    ev = make_events(t, np.arange(n) % 128, (np.arange(n) // 128) % 128, np.arange(n) % 2)
    path = tmp_path / "hour.h5"
    write_packets(path, ev, packet=10_000)
    with RecordingReader(path) as r:
        assert r.end_time_us - r.start_time_us > 3.5e9
        rng = np.random.default_rng(4)
        latencies = []
        for target in np.concatenate([rng.integers(0, 3_600_000_001, 200), starts + 2500]).tolist():
            lo, hi = r.search_range(target)
            t0 = time.perf_counter()
            pos = r.seek(target)
            latencies.append(time.perf_counter() - t0)
            assert pos == np.searchsorted(t, target)
            assert lo <= pos <= hi
            # the index narrows the search to one 10 ms bucket: never more than one burst
            assert r.last_seek_probe == hi - lo <= burst
        near_end = r.read(3_570_000_000)  # the last burst and the final event
        assert near_end.size == 5001 and near_end["t"][-1] == 3_600_000_000
    print(f"\nseek in a 1-hour file ({n} events, {r.index.size} index entries): "
          f"median {np.median(latencies) * 1e3:.3f} ms, max {np.max(latencies) * 1e3:.3f} ms")


def test_empty_recording(tmp_path):
    path = tmp_path / "empty.h5"
    with RecordingWriter(path, (128, 128)):
        pass
    with RecordingReader(path) as r:
        assert r.n_events == 0 and r.start_time_us is None and r.end_time_us is None
        assert r.read().size == 0 and list(r.iter_packets()) == []
        assert r.seek(12345) == 0
    with open_source(path) as src:
        assert list(src) == [] and src.n_events == 0


# ============================================================================ writer rules
def test_writer_rejects_unsorted_and_existing_file(tmp_path):
    path = tmp_path / "w.h5"
    with RecordingWriter(path, (128, 128)) as w:
        w.write(make_events([5, 6, 7], [1, 1, 1], [1, 1, 1], [1, 0, 1]))
        with pytest.raises(ValueError, match="not sorted"):
            w.write(make_events([9, 8], [1, 1], [1, 1], [1, 1]))
        with pytest.raises(ValueError, match="before the previous"):
            w.write(make_events([6], [1], [1], [1]))
        w.write(make_events([7, 8], [2, 2], [2, 2], [0, 0]))  # equal to the last t is fine
    with pytest.raises(DvsstreamError, match="already exists"):
        RecordingWriter(path, (128, 128))
    with RecordingWriter(path, (64, 64), overwrite=True) as w:
        w.write(make_events([1], [1], [1], [1]))
    with RecordingReader(path) as r:
        assert r.n_events == 1 and r.sensor_size == (64, 64)


def test_time_based_flush_makes_events_visible_while_open(tmp_path):
    path = tmp_path / "flush.h5"
    ev = random_events(10_000, seed=6)
    w = RecordingWriter(path, (128, 128), flush_interval_s=0.05)
    try:
        w.write(ev[:4000])
        assert w.n_committed == 0  # buffered: below one chunk and the interval has not passed
        time.sleep(0.06)
        w.write(ev[4000:5000])  # the interval is checked on write
        assert w.n_committed == 5000
        with RecordingReader(path) as r:  # a second (SWMR) reader while the writer is open
            assert r.n_events == 5000
            np.testing.assert_array_equal(r.read(), ev[:5000])
        w.write(ev[5000:])
    finally:
        w.close()
    w.close()  # twice is fine
    with RecordingReader(path) as r:
        np.testing.assert_array_equal(r.read(), ev)


CHILD = r"""
import sys, time
import numpy as np
from dvsstream.events import EVENT_DTYPE
from dvsstream.io.hdf5 import RecordingWriter

path = sys.argv[1]
w = RecordingWriter(path, (128, 128), "killed_writer")   # default: flush at least once a second
print("started", flush=True)
n, flushes, packet = 0, 0, 2000
t_end = time.monotonic() + 30
while time.monotonic() < t_end:
    i = np.arange(n, n + packet, dtype=np.int64)
    ev = np.empty(packet, dtype=EVENT_DTYPE)
    ev["t"] = 1_000_000 + i * 2
    ev["x"] = i % 128
    ev["y"] = (i // 128) % 128
    ev["p"] = (i // 7) % 2
    w.write(ev)
    n += packet
    if w.n_flushes != flushes:
        flushes = w.n_flushes
        print("flushed", w.n_committed, flush=True)
    time.sleep(0.001)
"""


def expected_child_events(n: int) -> np.ndarray:
    i = np.arange(n, dtype=np.int64)
    return make_events(1_000_000 + i * 2, i % 128, (i // 128) % 128, (i // 7) % 2)


def test_sigkill_leaves_readable_file_up_to_last_flush(tmp_path):
    path = tmp_path / "killed.h5"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        t_start = time.monotonic()
        reader.start()
        checked_live = False
        flushed: list[int] = []
        # ~2.5 s of writing (longer only if a loaded machine has not flushed twice yet)
        while time.monotonic() - t_start < 2.5 or (len(flushed) < 2 and time.monotonic() - t_start < 15):
            time.sleep(0.05)
            flushed = [int(x.split()[1]) for x in list(lines) if x.startswith("flushed")]
            if flushed and not checked_live:
                # SWMR: another process reads the file while it is being written
                with RecordingReader(path) as r:
                    assert r.n_events >= flushed[-1]
                    np.testing.assert_array_equal(r.read(), expected_child_events(r.n_events))
                checked_live = True
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    proc.stdout.close()  # the child is dead; an open pipe would be a ResourceWarning
    flushed = [int(x.split()[1]) for x in lines if x.startswith("flushed")]
    assert checked_live
    assert len(flushed) >= 2, lines  # at least once a second over ~2.5 s
    assert flushed == sorted(flushed)
    assert flushed[-1] >= 500_000  # at least 1 s of event time (2 µs apart) was flushed
    with pytest.raises(OSError):  # a plain open refuses the SWMR file of a dead writer ...
        h5py.File(path, "r")
    with RecordingReader(path) as r:  # ... the reader opens it anyway
        assert r.camera == "killed_writer"
        assert r.n_events >= flushed[-1]
        got = r.read()
        np.testing.assert_array_equal(got, expected_child_events(r.n_events))
        assert got["t"][-1] - got["t"][0] == (r.n_events - 1) * 2
    # the same crashed file cut short fails fast (an SWMR reader would retry for minutes)
    cut = tmp_path / "killed_cut.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    t0 = time.monotonic()
    with pytest.raises(FormatError, match="truncated"):
        RecordingReader(cut)
    assert time.monotonic() - t0 < 5
    print(f"\nSIGKILL: child reported {flushed[-1]} events flushed ({len(flushed)} flushes); "
          f"the file holds {r.n_events}")


# ============================================================================ bad files
def test_bad_files_raise_format_error(tmp_path):
    good = tmp_path / "good.h5"
    write_packets(good, random_events(50_000, seed=7))

    not_hdf5 = tmp_path / "noise.h5"
    not_hdf5.write_bytes(os.urandom(4096))
    fake_magic = tmp_path / "magic.h5"
    fake_magic.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 200)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(10)
    newer = tmp_path / "newer.h5"
    newer.write_bytes(good.read_bytes())
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = "dvsstream-hdf5/7"
    missing = tmp_path / "missing.h5"
    missing.write_bytes(good.read_bytes())
    with h5py.File(missing, "r+") as f:
        del f["index"]
    overcommitted = tmp_path / "over.h5"
    overcommitted.write_bytes(good.read_bytes())
    with h5py.File(overcommitted, "r+") as f:
        f["committed"][0] = 10 ** 9

    cases = {
        not_hdf5: "not an HDF5 file",
        fake_magic: "cannot be opened",
        truncated: "",
        foreign: "not a dvsstream recording",
        newer: "newer than this dvsstream",
        missing: "missing index",
        overcommitted: "truncated",
        tmp_path / "absent.h5": "no such file",
    }
    for path, words in cases.items():
        with pytest.raises(FormatError) as info:
            RecordingReader(path)
        msg = str(info.value)
        assert msg.startswith(str(path)) and words in msg and "\n" not in msg, msg
    # through the public entry point too (content detection, then our reader)
    for path in (fake_magic, truncated, foreign, missing):
        with pytest.raises(FormatError):
            open_source(path)


def test_damaged_chunk_raises_format_error_on_read(tmp_path):
    path = tmp_path / "damaged.h5"
    write_packets(path, random_events(200_000, seed=8))
    with h5py.File(path, "r") as f:
        offset = f["events/x"].id.get_chunk_info(1).byte_offset
    data = bytearray(path.read_bytes())
    data[offset:offset + 64] = os.urandom(64)  # break one compressed chunk
    path.write_bytes(bytes(data))
    with RecordingReader(path) as r:
        with pytest.raises(FormatError, match="cannot be read"):
            r.read()


# ============================================================================ HDF5Source
def test_hdf5_source_replay_seek_and_labels(tmp_path):
    ev = random_events(120_000, seed=9)
    path = tmp_path / "src.h5"
    with RecordingWriter(path, (128, 128), "DVS128_X", class_names=["a", "b"]) as w:
        w.write(ev)
        w.add_label(ev["t"][0], ev["t"][-1] + 1, 1)
    with open_source(path, packet_events=25_000) as src:
        assert isinstance(src, HDF5Source) and src.format == "hdf5" and src.kind == "file"
        assert src.sensor_size == (128, 128) and src.camera == "DVS128_X"
        assert src.n_events == ev.size
        assert src.start_time_us == ev["t"][0] and src.end_time_us == ev["t"][-1]
        assert src.labels.tolist() == [(ev["t"][0], ev["t"][-1] + 1, 1)]
        assert src.class_names == ["a", "b"]
        assert src.describe()["class_names"] == ["a", "b"]
        packets = list(src)
        assert max(p.size for p in packets) <= 25_000
        np.testing.assert_array_equal(np.concatenate(packets), ev)
        assert src.stats.events_read == ev.size
    mid = int(ev["t"][70_000])
    with HDF5Source(path, start_us=mid) as src:
        np.testing.assert_array_equal(np.concatenate(list(src)), ev[ev["t"] >= mid])
    with HDF5Source(path, packet_events=10_000) as src:  # seek while iterating
        it = iter(src)
        first = next(it)
        src.seek(mid)
        rest = np.concatenate(list(it))
        np.testing.assert_array_equal(first, ev[:10_000])
        np.testing.assert_array_equal(rest, ev[ev["t"] >= mid])


# ============================================================================ record()
class ListSource(EventSource):
    """A minimal source over a list of packets; raises ``interrupt_after`` packets in."""

    kind = "synthetic"

    def __init__(self, packets, interrupt_after=None):
        super().__init__((128, 128), "synthetic")
        self.packets, self.interrupt_after = packets, interrupt_after

    def _packets(self):
        for k, p in enumerate(self.packets):
            if k == self.interrupt_after:
                raise KeyboardInterrupt
            yield p


class FailingLiveSource(ListSource):
    """A network-kind source: ``fail_after`` packets, then an error (a reset socket)."""

    kind = "network"

    def __init__(self, packets, fail_after):
        super().__init__(packets)
        self.fail_after = fail_after

    def _packets(self):
        for k, p in enumerate(self.packets):
            if k == self.fail_after:
                raise OSError("connection reset by peer")
            yield p


def test_record_duration_on_a_silent_realtime_source(tmp_path):
    """``synthetic:`` at 0.01 events/s for 60 s (a camera facing a still scene): a 0.5 s
    recording ends on the wall clock, with a readable (empty) file."""
    from dvsstream.io.base import WALL_GRACE_S

    out = tmp_path / "still.h5"
    wall0 = time.monotonic()
    with open_source("synthetic:rate=0.01,duration=60,seed=1") as src:
        summary = record(src, out, duration_s=0.5)
    assert time.monotonic() - wall0 < 0.5 + WALL_GRACE_S + 3
    assert summary["events"] == 0 and not summary["interrupted"]
    with h5py.File(out, "r") as f:
        assert f.attrs["format_version"] == FORMAT_VERSION


def test_record_duration_raises_a_live_source_error_and_keeps_what_arrived(tmp_path):
    """An error of a real-time source, read in the helper thread, reaches the caller;
    the new recording keeps every event received before it (as without --duration)."""
    ev = random_events(3000, seed=4)
    src = FailingLiveSource([ev[:1000], ev[1000:2000], ev[2000:]], fail_after=2)
    with pytest.raises(OSError, match="reset"):
        record(src, tmp_path / "net.h5", duration_s=10.0)
    with RecordingReader(tmp_path / "net.h5") as r:
        np.testing.assert_array_equal(r.read(), ev[:2000])


def test_record_from_file_with_duration(tmp_path):
    ev = random_events(100_000, seed=10)
    src_path = tmp_path / "in.h5"
    with RecordingWriter(src_path, (128, 128), "DVS128_Y", class_names=["x"]) as w:
        w.write(ev)
        w.add_label(ev["t"][0], ev["t"][40_000], 0)
        w.add_label(ev["t"][-10], ev["t"][-1] + 1, 0)  # after the recorded span: not copied
    out = tmp_path / "out.h5"
    calls = []
    with open_source(src_path, packet_events=7000) as src:
        summary = record(src, out, duration_s=0.2, progress=calls.append)
    t = ev["t"]
    want = ev[t < t[0] + 200_000]
    assert summary["events"] == want.size and not summary["interrupted"]
    assert summary["start_time_us"] == want["t"][0] and summary["end_time_us"] == want["t"][-1]
    assert 0.19 < summary["duration_s"] < 0.2
    assert summary["out_of_bounds"] == 0 and summary["file_bytes"] > 0
    assert calls and calls[-1]["events"] == want.size
    with RecordingReader(out) as r:
        np.testing.assert_array_equal(r.read(), want)
        assert r.camera == "DVS128_Y" and r.class_names == ["x"]
        assert r.labels.tolist() == [(t[0], t[40_000], 0)]
        assert json.loads(r.source)["format"] == "hdf5"


def test_record_keeps_everything_on_ctrl_c(tmp_path):
    ev = random_events(50_000, seed=11)
    packets = np.array_split(ev, 50)
    out = tmp_path / "ctrlc.h5"
    summary = record(ListSource(packets, interrupt_after=20), out)
    assert summary["interrupted"] and summary["events"] == sum(p.size for p in packets[:20])
    with RecordingReader(out) as r:
        np.testing.assert_array_equal(r.read(), np.concatenate(packets[:20]))


def test_record_counts_repairs_of_the_source(tmp_path):
    good = make_events([1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 1, 1])
    bad = make_events([5, 4, 6], [1, 200, 3], [1, 2, 3], [0, 0, 0])  # one out of bounds, one late
    summary = record(ListSource([good, bad]), tmp_path / "rep.h5")
    assert summary["events"] == 5 and summary["out_of_bounds"] == 1
    with RecordingReader(tmp_path / "rep.h5") as r:
        assert r.read()["t"].tolist() == [1, 2, 3, 5, 6]


# ============================================================================ numbers
def test_measure_throughput(tmp_path):
    """Prints write/read throughput and size; asserts only correctness."""
    n = 2_000_000
    ev = random_events(n, seed=12)
    path = tmp_path / "bench.h5"
    t0 = time.perf_counter()
    write_packets(path, ev, packet=5000)
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    with RecordingReader(path) as r:
        got = r.read()
    t_read = time.perf_counter() - t0
    assert got.size == n
    size = path.stat().st_size
    print(f"\nHDF5 gzip-1+shuffle, 5000-event packets: write {n / t_write / 1e6:.1f} M ev/s, "
          f"read {n / t_read / 1e6:.1f} M ev/s, {size / n * 1e6 / 2 ** 20:.2f} MiB per M events "
          f"(raw {EVENT_DTYPE.itemsize * 1e6 / 2 ** 20:.1f}; {size / n:.2f} B/event)")
