"""File sources behave like cameras: a paced replay of any format delivers packets of at
most 10 ms of stream time, on the stream's clock, and every event; ``synthetic:`` is
paced by default; ``--start S`` counts seconds from the first event; ``--duration``
counts stream time for ``record`` and ``run`` alike."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from dvsstream.cli import main
from dvsstream.errors import SourceError
from dvsstream.events import EVENT_DTYPE
from dvsstream.io.hdf5 import RecordingReader, RecordingWriter
from dvsstream.io import PACED_PACKET_US, open_source

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = sorted((ROOT / "recordings").glob("*.h5"))
#: real recordings of each reader (skipped when ../shared/data/real is absent)
REAL = ["neal_walking.aedat", "dvSave-2024_06_20_16_12_48.aedat4", "dvxplorer_sample.aedat4", "ncars_sample.dat"]


def make_events(n: int = 30_000, span_us: int = 600_000, seed: int = 0) -> np.ndarray:
    """``n`` random DVS128 events over ``span_us`` µs from t = 1000, sorted."""
    rng = np.random.default_rng(seed)
    ev = np.empty(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(1000, 1000 + span_us, n))
    ev["x"] = rng.integers(0, 128, n)
    ev["y"] = rng.integers(0, 128, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def write(fmt: str, path: Path, ev: np.ndarray) -> Path:
    """``ev`` as a file of format ``fmt`` (our own writers of each format)."""
    if fmt == "aedat2":
        from dvsstream.io.aedat2 import write_aedat2
        return write_aedat2(path, ev)
    if fmt == "aedat3.1":
        from dvsstream.io.aedat3 import write_aedat31
        return write_aedat31(path, ev)
    if fmt == "aedat4":
        from dvsstream.io.aedat4 import write_aedat4
        return write_aedat4(path, ev, (128, 128))
    if fmt == "hdf5":
        with RecordingWriter(path, (128, 128), "test") as w:
            w.write(ev)
        return path
    if fmt == "npy":
        tonic = np.empty(ev.size, [("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])
        for name in "txyp":
            tonic[name] = ev[name]
        np.save(path, tonic)
        return path
    pytest.importorskip("expelliarmus")
    from dvsstream.io.prophesee import write_prophesee
    shifted = ev.copy()
    shifted["t"] -= shifted["t"][0]
    return write_prophesee(path, shifted, "evt3", sensor_size=(128, 128))


def paced_packets(uri, speed: float, **options) -> tuple[list[np.ndarray], list[float]]:
    """Every packet of a replay at ``speed`` and its arrival (wall s after the open)."""
    packets, arrivals = [], []
    with open_source(uri, speed=speed, **options) as src:
        wall0 = time.perf_counter()
        for packet in src:
            arrivals.append(time.perf_counter() - wall0)
            packets.append(packet)
    return packets, arrivals


def check_like_a_camera(packets, arrivals, speed: float, n_expected: int) -> None:
    """Every event came, in packets of at most 10 ms of stream time, none before the
    stream clock (wall x ``speed`` since the first packet's first event) reached it."""
    assert sum(p.size for p in packets) == n_expected
    spans = np.array([int(p["t"][-1] - p["t"][0]) for p in packets])
    assert spans.max() < PACED_PACKET_US
    t0 = int(packets[0]["t"][0])
    due = np.array([(int(p["t"][-1]) - t0) / 1e6 / speed for p in packets])
    early = due - np.array(arrivals)  # arrivals count from before the first read
    assert early.max() < 0.001  # no packet before the stream's clock reached its last event
    stream_s = (int(packets[-1]["t"][-1]) - t0) / 1e6
    assert arrivals[-1] - arrivals[0] <= stream_s / speed + 1.0  # and no stall after the first read


@pytest.mark.parametrize("fmt", ["aedat2", "aedat3.1", "aedat4", "hdf5", "npy", "prophesee"])
def test_paced_replay_of_every_format_comes_in_10_ms_packets(fmt, tmp_path):
    ev = make_events()
    path = write(fmt, tmp_path / f"rec.{fmt}", ev)
    packets, arrivals = paced_packets(path, speed=4.0)  # 0.6 s of stream in 0.15 s
    check_like_a_camera(packets, arrivals, 4.0, ev.size)
    assert len(packets) >= 0.9 * 60  # 600 ms of stream in ~10 ms packets, not one burst
    got = np.concatenate(packets)
    shift = int(ev["t"][0]) if fmt == "prophesee" else 0  # written from t = 0
    assert np.array_equal(got["t"], ev["t"] - shift)  # in order, none lost, none repeated


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_paced_replay_of_the_shipped_recordings(path):
    with open_source(path) as src:
        n = sum(p.size for p in src)
    packets, arrivals = paced_packets(path, speed=40.0)  # 8 s of stream in 0.2 s
    check_like_a_camera(packets, arrivals, 40.0, n)


@pytest.mark.parametrize("name", REAL)
def test_paced_replay_of_real_recordings(name, real_data):
    path = real_data(name)
    with open_source(path) as src:
        n = sum(p.size for p in src)
        stream_s = (src.end_time_us - src.start_time_us) / 1e6
    speed = max(stream_s / 0.25, 1.0)  # a quarter of a second each
    packets, arrivals = paced_packets(path, speed=speed)
    check_like_a_camera(packets, arrivals, speed, n)


def test_a_paced_binner_gives_its_first_window_after_about_a_window(tmp_path):
    """The README's library example: a StreamingBinner over a replay at speed 1."""
    from dvsstream.binning import StreamingBinner

    def binner():
        return StreamingBinner((128, 128), window_us=160_000, n_bins=16, hop_us=10_000, downsample=2)

    list(binner()(open_source("synthetic:duration=0.2,realtime=0")))  # compiled kernels loaded
    with open_source(ROOT / "recordings" / "rotating_bar.h5", speed=1.0) as src:
        wall0 = time.perf_counter()
        for window in binner()(src):
            first = time.perf_counter() - wall0
            assert window.frames.shape == (16, 2, 64, 64)
            break
    assert 0.12 < first < 0.5  # was 1.8 s: a 262,144-event packet at 150 k ev/s


def test_synthetic_is_paced_by_default():
    packets, arrivals = [], []
    with open_source("synthetic:rate=1e5,duration=0.4") as src:
        wall0 = time.perf_counter()
        for packet in src:
            packets.append(packet)
            arrivals.append(time.perf_counter() - wall0)
    assert arrivals[-1] >= 0.38  # 0.4 s of stream takes 0.4 s, not a burst
    assert max(int(p["t"][-1] - p["t"][0]) for p in packets) < PACED_PACKET_US
    with open_source("synthetic:rate=1e5,duration=0.4,realtime=0") as src:
        wall0 = time.perf_counter()
        n = sum(p.size for p in src)
        assert time.perf_counter() - wall0 < 0.3 and n > 30_000  # unpaced on request


@pytest.mark.parametrize("fmt", ["aedat2", "aedat4", "hdf5", "npy"])
def test_start_counts_seconds_from_the_first_event(fmt, tmp_path):
    ev = make_events()
    ev["t"] += 5_000_000  # a camera clock that does not start at 0
    path = write(fmt, tmp_path / f"rec.{fmt}", ev)
    with open_source(path) as src:
        src.start_at(0.25)
        got = np.concatenate(list(src))
    t_start = int(ev["t"][0]) + 250_000
    assert got.size == int(np.count_nonzero(ev["t"] >= t_start))
    assert int(got["t"][0]) >= t_start
    with open_source(path) as src:
        with pytest.raises(SourceError, match="past the end"):
            src.start_at(0.7)  # the recording lasts 0.6 s


def test_cli_start_past_the_end_is_one_line(tmp_path, capsys):
    path = write("hdf5", tmp_path / "rec.h5", make_events())
    for argv in (["replay", str(path), "--start", "5"],
                 ["record", "--source", str(path), "--out", str(tmp_path / "o.h5"), "--start", "5"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "past the end" in err[0], err
    assert not (tmp_path / "o.h5").exists()


def test_replay_start_replays_from_there(tmp_path, capsys):
    ev = make_events()
    path = write("hdf5", tmp_path / "rec.h5", ev)
    assert main(["replay", str(path), "--start", "0.3"]) == 0
    n = int(np.count_nonzero(ev["t"] >= ev["t"][0] + 300_000))
    assert f"replayed {n:,} events" in capsys.readouterr().out


def test_record_duration_is_stream_time_and_stops_on_time(tmp_path):
    """``record --source FILE --speed 1 --duration 1`` on an 8 s recording: about 1 s of
    wall time, 1 s of stream written (it used to run for the whole file)."""
    src = ROOT / "recordings" / "gestures_waves_and_clap.h5"
    out = tmp_path / "one_second.h5"
    wall0 = time.perf_counter()
    assert main(["record", "--source", str(src), "--speed", "1", "--duration", "1", "--out", str(out)]) == 0
    wall = time.perf_counter() - wall0
    with RecordingReader(out) as rec:
        span = (rec.end_time_us - rec.start_time_us) / 1e6
    assert 0.95 < span <= 1.0
    assert wall < 3.0  # ~1 s paced + start-up, not the file's 8 s


def test_run_duration_is_stream_time(tmp_path):
    """``run --duration 2`` on an unpaced recording classifies 2 s of it (the same clock
    as ``record``), whatever the wall time."""
    out = tmp_path / "r.json"
    src = ROOT / "recordings" / "gestures_waves_and_clap.h5"
    assert main(["run", "--source", str(src), "--duration", "2", "--quiet", "--device", "cpu",
                 "--json-out", str(out)]) == 0
    report = json.loads(out.read_text())
    ends = [p["t_end_us"] for p in report["predictions"]]
    with open_source(src) as s:
        t0 = s.start_time_us
    assert report["windows_classified"] == len(ends) > 0
    assert max(ends) - t0 <= 2_000_000 + report["binning"]["hop_us"]
    assert max(ends) - t0 >= 2_000_000 - report["binning"]["hop_us"]


@pytest.mark.slow
def test_run_synthetic_skips_no_window(tmp_path):
    """``run --source synthetic:`` is paced like a camera: it used to run ahead of its own
    clock and skip 71 of 93 windows."""
    out = tmp_path / "r.json"
    assert main(["run", "--source", "synthetic:", "--duration", "3", "--quiet", "--device", "cpu",
                 "--json-out", str(out)]) == 0
    report = json.loads(out.read_text())
    hop_s = report["binning"]["hop_us"] / 1e6
    # 3 s of stream in 3 s of wall time: ~(3 s - window) / hop windows (it made 93: 5 s of
    # stream in ~2.5 s), and a 2-core machine keeps up with nearly all of them
    assert 0 < report["windows"] <= 3.0 / hop_s + 1
    assert report["windows"] == report["windows_classified"] + report["windows_skipped"]
    if report["inference_ms"]["p50"] < 0.3 * hop_s * 1e3:  # the machine keeps up (not a loaded one)
        assert report["windows_skipped"] <= 0.25 * report["windows"], report["windows_skipped"]
    assert report["windows_classified"] == len(report["predictions"])


def test_run_duration_stops_a_silent_live_source(tmp_path):
    """A real-time source that sends (almost) no events -- a camera facing a still scene --
    still stops after ``--duration`` (plus a grace) of wall time: its stream clock shows
    only through events."""
    out = tmp_path / "r.json"
    wall0 = time.perf_counter()
    assert main(["run", "--source", "synthetic:rate=0.01,duration=60", "--duration", "1", "--quiet",
                 "--device", "cpu", "--json-out", str(out)]) == 0
    assert time.perf_counter() - wall0 < 15  # model load + 1 s + 2 s grace, not 60 s
    assert json.loads(out.read_text())["windows_classified"] == 0
