"""Recording-file readers: AEDAT 2.0, AEDAT 3.1, AEDAT 4, tonic .npy.

Real recordings (../shared/data/real) are checked against their known counts;
everything else round-trips through our writers, so no download is needed.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from dvsstream.errors import FormatError
from dvsstream.events import EVENT_DTYPE, make_events
from dvsstream.io import LABEL_DTYPE, detect_format, open_source
from dvsstream.io.aedat2 import AEDAT2_RECORD, Aedat2Source, write_aedat2
from dvsstream.io.aedat3 import PACKET_HEADER, POLARITY_RECORD, Aedat31Source, write_aedat31
from dvsstream.io.aedat4 import Aedat4Source, write_aedat4
from dvsstream.io.npy import NpySource


def read_all(source) -> np.ndarray:
    with source:
        packets = list(source)
    return np.concatenate(packets) if packets else np.zeros(0, EVENT_DTYPE)


def random_events(n, *, t0=0, mean_dt=20, width=128, height=128, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = t0 + np.cumsum(rng.integers(0, 2 * mean_dt, n))
    return make_events(t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n))


# --------------------------------------------------------------------------- real files
@pytest.mark.parametrize(
    "name, n_events, duration_s, camera",
    [
        ("neal_walking.aedat", 70_304, 9.24, "DVS128-V1 0298"),
        ("cam255_right_clamp_test1.aedat", 110_228, 18.02, "DVS128-V1 0255"),
    ],
)
def test_real_aedat2(real_data, name, n_events, duration_s, camera):
    src = open_source(real_data(name))
    assert isinstance(src, Aedat2Source) and src.format == "aedat2"
    assert src.camera == camera
    assert tuple(src.sensor_size) == (128, 128)
    assert src.n_events == n_events
    ev = read_all(src)
    assert ev.size == n_events
    assert src.special_events == 0
    assert (ev["t"][-1] - ev["t"][0]) / 1e6 == pytest.approx(duration_s, abs=0.005)
    assert (src.start_time_us, src.end_time_us) == (ev["t"][0], ev["t"][-1])
    assert src.stats.events_read == n_events and not src.stats.warnings
    assert ev["x"].max() == 127 and ev["y"].max() == 127
    assert src.header[0] == "!AER-DAT2.0"


@pytest.mark.parametrize(
    "name, n_events, duration_s",
    [
        ("dvSave-2024_06_20_15_59_41.aedat4", 348_461, 5.39),
        ("dvSave-2024_06_20_16_06_00.aedat4", 229_092, 5.44),
        ("dvSave-2024_06_20_16_12_48.aedat4", 188_045, 5.99),
    ],
)
def test_real_aedat4(real_data, name, n_events, duration_s):
    src = open_source(real_data(name))
    assert isinstance(src, Aedat4Source) and src.format == "aedat4"
    assert src.camera == "DVS128_0279"
    assert tuple(src.sensor_size) == (128, 128)
    ev = read_all(src)
    assert ev.size == n_events
    assert (ev["t"][-1] - ev["t"][0]) / 1e6 == pytest.approx(duration_s, abs=0.005)
    assert (src.start_time_us, src.end_time_us) == (ev["t"][0], ev["t"][-1])
    assert src.stats.out_of_bounds == 0 and src.stats.out_of_order == 0


def test_real_aedat4_seek(real_data):
    path = real_data("dvSave-2024_06_20_15_59_41.aedat4")
    full = read_all(open_source(path))
    t_mid = int(full["t"][200_000])
    part = read_all(open_source(path, start_us=t_mid))
    np.testing.assert_array_equal(part, full[full["t"] >= t_mid])


# --------------------------------------------------------------------------- AEDAT 2.0
def test_aedat2_round_trip_with_timestamp_wrap(tmp_path):
    ev = random_events(50_000, t0=(1 << 32) - 400_000)  # wraps 32 bits a fifth of the way in
    assert ev["t"][0] < (1 << 32) < ev["t"][-1]
    path = write_aedat2(tmp_path / "rec.aedat", ev, header_lines=["# HardwareInterface: DVS128-V1 0042"])
    src = open_source(path, chunk_events=7_000)  # several chunks, one wrap inside a chunk
    assert src.n_events == ev.size and src.camera == "DVS128-V1 0042"
    assert src.end_time_us == ev["t"][-1]
    out = read_all(src)
    np.testing.assert_array_equal(out, ev)
    assert src.stats.packets_read == 8 and not src.stats.warnings


def test_aedat2_detected_by_content_not_extension(tmp_path):
    ev = random_events(100)
    path = write_aedat2(tmp_path / "data.bin", ev)
    assert detect_format(path) == "aedat2"
    np.testing.assert_array_equal(read_all(open_source(path)), ev)


def test_aedat2_flip(tmp_path):
    ev = random_events(1000)
    path = write_aedat2(tmp_path / "rec.aedat", ev)  # upright coordinates -> chip addresses
    raw = read_all(open_source(path, flip_x=False, flip_y=False))
    np.testing.assert_array_equal(raw["x"], 127 - ev["x"])
    np.testing.assert_array_equal(raw["y"], 127 - ev["y"])
    np.testing.assert_array_equal(raw["t"], ev["t"])
    chip = write_aedat2(tmp_path / "chip.aedat", ev, flip_x=False, flip_y=False)  # raw addresses
    np.testing.assert_array_equal(read_all(open_source(chip, flip_x=False, flip_y=False)), ev)


def test_aedat2_special_events_skipped_and_counted(tmp_path):
    ev = random_events(1000)
    path = write_aedat2(tmp_path / "rec.aedat", ev)
    # turn every 10th record into a special (bit 15) event
    raw = bytearray(path.read_bytes())
    body = len(raw) - ev.size * 8
    rec = np.frombuffer(bytes(raw[body:]), dtype=AEDAT2_RECORD).copy()
    rec["addr"][::10] |= 0x8000
    path.write_bytes(bytes(raw[:body]) + rec.tobytes())
    src = open_source(path)
    out = read_all(src)
    keep = np.ones(ev.size, bool)
    keep[::10] = False
    np.testing.assert_array_equal(out, ev[keep])
    assert src.special_events == 100
    assert any("special" in w for w in src.stats.warnings)


def test_aedat2_truncated_mid_record_keeps_complete_events(tmp_path):
    ev = random_events(1000)
    path = write_aedat2(tmp_path / "rec.aedat", ev)
    path.write_bytes(path.read_bytes()[:-5])  # 3 bytes of the last record remain
    src = open_source(path)
    assert src.n_events == 999
    np.testing.assert_array_equal(read_all(src), ev[:999])
    assert any("truncated" in w for w in src.stats.warnings)


def test_aedat2_header_only_is_an_empty_recording(tmp_path):
    path = write_aedat2(tmp_path / "empty.aedat", random_events(0))
    src = open_source(path)
    assert src.n_events == 0 and read_all(src).size == 0


def test_aedat2_backwards_timestamps_and_oob_pass_through(tmp_path):
    ev = random_events(1000)
    ev["t"][500] = ev["t"][400]  # a step back in time
    path = write_aedat2(tmp_path / "rec.aedat", ev)
    src = open_source(path, sensor_size=(64, 128))  # half the events fall outside
    out = read_all(src)
    n_inside = int(np.count_nonzero(ev["x"] < 64))
    assert out.size == n_inside
    assert src.stats.out_of_bounds == ev.size - n_inside
    assert np.all(np.diff(out["t"]) >= 0)


# --------------------------------------------------------------------------- AEDAT 3.1
def test_aedat31_round_trip_with_overflow_packets_and_labels(tmp_path):
    ev = random_events(30_000, t0=(1 << 31) - 200_000)  # crosses the 2**31 µs overflow
    labels = np.array([(ev["t"][0], ev["t"][9_999], 0), (ev["t"][10_000], ev["t"][-1], 10)], dtype=LABEL_DTYPE)
    path = write_aedat31(tmp_path / "user01_fluorescent.aedat", ev, labels=labels, packet_events=1000)
    assert (tmp_path / "user01_fluorescent_labels.csv").read_text().splitlines()[1].startswith("1,")
    assert detect_format(path) == "aedat3.1"
    src = open_source(path, chunk_events=4096)
    assert isinstance(src, Aedat31Source)
    assert src.camera == "DVS128" and tuple(src.sensor_size) == (128, 128)
    assert src.start_time_us == ev["t"][0]
    np.testing.assert_array_equal(src.labels, labels)
    out = read_all(src)
    np.testing.assert_array_equal(out, ev)
    assert src.stats.packets_read > 1 and not src.stats.warnings
    # read blocks smaller than one stored packet
    np.testing.assert_array_equal(read_all(open_source(path, chunk_events=300)), ev)


def _packet(etype, records: bytes, n, *, size=8, overflow=0) -> bytes:
    return PACKET_HEADER.pack(etype, 1, size, 4, overflow, n, n, n) + records


def test_aedat31_skips_other_types_and_invalid_events(tmp_path):
    ev = random_events(2000)
    path = write_aedat31(tmp_path / "rec.aedat", ev, packet_events=500)
    raw = path.read_bytes()
    head_end = raw.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    special = np.zeros(3, dtype=POLARITY_RECORD)  # 3 special events (type 0)
    imu = b"\x00" * (2 * 36)  # 2 IMU6 events of 36 bytes
    body = raw[head_end:]
    # invalidate the first event of the first packet
    first = bytearray(body[: PACKET_HEADER.size + 500 * 8])
    first[PACKET_HEADER.size] &= 0xFE
    body = bytes(first) + body[len(first):]
    path.write_bytes(raw[:head_end] + _packet(0, special.tobytes(), 3) + body + _packet(3, imu, 2, size=36))
    src = open_source(path)
    out = read_all(src)
    np.testing.assert_array_equal(out, ev[1:])
    assert src.skipped_events == {0: 3, 3: 2}
    assert any("special" in w for w in src.stats.warnings)


def test_aedat31_truncated_mid_packet(tmp_path):
    ev = random_events(3000)
    path = write_aedat31(tmp_path / "rec.aedat", ev, packet_events=1000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 500 * 8 - 3])  # the last packet keeps 499 complete events
    src = open_source(path)
    np.testing.assert_array_equal(read_all(src), ev[:2499])
    assert any("truncated" in w for w in src.stats.warnings)
    # cut inside a packet header: the complete packets survive
    head_end = data.index(b"#!END-HEADER\r\n") + 14
    path.write_bytes(data[: head_end + 2 * (28 + 8000) + 10])
    src = open_source(path)
    np.testing.assert_array_equal(read_all(src), ev[:2000])
    assert any("truncated" in w for w in src.stats.warnings)


def test_aedat31_bad_headers(tmp_path):
    no_end = tmp_path / "noend.aedat"
    no_end.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n")
    with pytest.raises(FormatError, match="noend.aedat.*END-HEADER"):
        open_source(no_end)
    garbage = tmp_path / "garbage.aedat"
    garbage.write_bytes(b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + bytes(range(200, 256)) * 10)
    with pytest.raises(FormatError, match="garbage.aedat.*corrupt event packet"):
        open_source(garbage)
    compressed = tmp_path / "ser.aedat"
    compressed.write_bytes(b"#!AER-DAT3.1\r\n#Format: SerializedTS\r\n#!END-HEADER\r\n")
    with pytest.raises(FormatError, match="ser.aedat.*SerializedTS"):
        open_source(compressed)


def test_aedat31_bad_labels_csv(tmp_path):
    path = write_aedat31(tmp_path / "rec.aedat", random_events(10))
    (tmp_path / "rec_labels.csv").write_text("class,startTime_usec,endTime_usec\nwave,1,2\n")
    with pytest.raises(FormatError, match="rec_labels.csv"):
        open_source(path)
    assert open_source(path, labels=False).labels is None


# --------------------------------------------------------------------------- AEDAT 4
def test_aedat4_round_trip(tmp_path):
    ev = random_events(20_000, width=240, height=180, t0=1_700_000_000_000_000)
    path = write_aedat4(tmp_path / "rec.aedat4", ev, (240, 180), camera="DAVIS240_test")
    src = open_source(path, chunk_events=5000)
    assert src.camera == "DAVIS240_test" and tuple(src.sensor_size) == (240, 180)
    out = read_all(src)
    np.testing.assert_array_equal(out, ev)
    assert src.stats.packets_read >= 4


def test_aedat4_truncated_keeps_a_prefix_and_a_stub_or_eventless_is_a_format_error(tmp_path):
    ev = random_events(5000)
    path = write_aedat4(tmp_path / "rec.aedat4", ev, (128, 128))
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    src = open_source(cut)  # its one packet of 5,000 events cut in half: nothing complete, said so
    assert read_all(src).size == 0 == src.n_events
    assert any("cut.aedat4" in w and "its 0 complete packets (0 events)" in w for w in src.stats.warnings)
    stub = tmp_path / "stub.aedat4"
    stub.write_bytes(b"#!AER-DAT4.0\r\n" + b"\x07" * 30)
    with pytest.raises(FormatError, match="stub.aedat4"):
        open_source(stub)

    import dv_processing as dv

    config = dv.io.MonoCameraWriter.Config("cam")
    config.addTriggerStream()
    writer = dv.io.MonoCameraWriter(str(tmp_path / "trig.aedat4"), config)
    writer.writeTrigger(dv.Trigger(1000, dv.TriggerType.EXTERNAL_SIGNAL_RISING_EDGE))
    del writer
    with pytest.raises(FormatError, match="trig.aedat4.*no 'events' event stream"):
        open_source(tmp_path / "trig.aedat4")


# --------------------------------------------------------------------------- tonic .npy
def test_npy_tonic_gesture_layout(tmp_path):
    """tonic 1.7 DVSGesture files: plain (N, 4) arrays, columns x, y, p, t[ms]."""
    ev = random_events(5000, mean_dt=2000)
    ev["t"] -= ev["t"] % 1000  # ms precision, as in the preprocessed release
    arr = np.column_stack([ev["x"], ev["y"], ev["p"], ev["t"] // 1000]).astype(np.float64)
    folder = tmp_path / "user01_fluorescent"
    folder.mkdir()
    np.save(folder / "7.npy", arr)
    src = open_source(folder / "7.npy", chunk_events=1000)
    assert isinstance(src, NpySource) and src.layout == "xypt"
    assert src.n_events == ev.size and tuple(src.sensor_size) == (128, 128)
    np.testing.assert_array_equal(read_all(src), ev)
    assert src.labels.tolist() == [(int(ev["t"][0]), int(ev["t"][-1]) + 1, 7)]


def test_npy_structured_round_trip_and_oob(tmp_path):
    ev = random_events(3000, width=200)  # some x beyond 128
    tonic = np.empty(ev.size, dtype=[("x", "<i2"), ("y", "<i2"), ("p", "?"), ("t", "<i8")])
    for k in "txyp":
        tonic[k] = ev[k]
    np.save(tmp_path / "rec.npy", tonic)
    src = open_source(tmp_path / "rec.npy")
    assert src.layout == "structured" and src.labels is None
    out = read_all(src)
    np.testing.assert_array_equal(out, ev[ev["x"] < 128])
    assert src.stats.out_of_bounds == int(np.count_nonzero(ev["x"] >= 128))
    np.testing.assert_array_equal(read_all(open_source(tmp_path / "rec.npy", sensor_size=(200, 128))), ev)


def test_npy_truncated_and_corrupt(tmp_path):
    ev = random_events(1000)
    np.save(tmp_path / "rec.npy", ev)
    data = (tmp_path / "rec.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-20])  # 13 bytes per event: 2 events cut
    src = open_source(tmp_path / "cut.npy")
    np.testing.assert_array_equal(read_all(src), ev[:998])
    assert any("truncated" in w for w in src.stats.warnings)

    (tmp_path / "hdr.npy").write_bytes(data[:8] + b"\xff" * 60)
    with pytest.raises(FormatError, match="hdr.npy"):
        open_source(tmp_path / "hdr.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="obj.npy.*objects"):
        open_source(tmp_path / "obj.npy")
    np.save(tmp_path / "shape.npy", np.zeros((10, 3)))
    with pytest.raises(FormatError, match=r"shape.npy.*\(10, 3\)"):
        open_source(tmp_path / "shape.npy")


# --------------------------------------------------------------------------- bad files
@pytest.mark.parametrize(
    "name, content, match",
    [
        ("empty.aedat", b"", "empty"),
        ("random.aedat", bytes(range(256)) * 4, "unknown format"),
        ("text.aedat", b"hello world\n", "unknown format"),
        ("v1.aedat", b"#!AER-DAT1.0\r\n", "version 1.0"),
        ("cut_header.aedat", b"#!AER-DAT2.0\r\n# Data format is int32 ad", "header"),
        ("cut_magic.aedat", b"#!AER-DAT2", "header"),
    ],
)
def test_bad_files_raise_one_line_format_errors(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FormatError, match=match) as info:
        open_source(path)
    message = str(info.value)
    assert name in message and "\n" not in message


def test_direct_reader_checks_magic(tmp_path):
    path = write_aedat31(tmp_path / "rec.aedat", random_events(10))
    with pytest.raises(FormatError, match="rec.aedat.*not an AEDAT 2.0"):
        Aedat2Source(path)
    with pytest.raises(FormatError, match="not an AEDAT 3.1"):
        Aedat31Source(write_aedat2(tmp_path / "two.aedat", random_events(10)))


# --------------------------------------------------------------------------- replay via FileSource
WRITERS = {
    "aedat2": lambda p, ev: write_aedat2(p / "r.aedat", ev),
    "aedat3.1": lambda p, ev: write_aedat31(p / "r.aedat", ev, packet_events=700),
    "aedat4": lambda p, ev: write_aedat4(p / "r.aedat4", ev, (128, 128)),
    "npy": lambda p, ev: (np.save(p / "r.npy", ev), p / "r.npy")[1],
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_seek_and_loop(tmp_path, fmt):
    ev = random_events(10_000)
    path = WRITERS[fmt](tmp_path, ev)
    assert detect_format(path) == fmt
    t_mid = int(ev["t"][6000]) + 1
    np.testing.assert_array_equal(read_all(open_source(path, start_us=t_mid, chunk_events=3000)), ev[ev["t"] >= t_mid])

    src = open_source(path, loop=True, chunk_events=3000)
    total = 0
    for packet in src:
        total += packet.size
        if total >= 2 * ev.size:
            break
    src.close()
    assert total == 2 * ev.size


def test_speed_paces_replay(tmp_path):
    ev = random_events(5000, mean_dt=100)  # 0.5 s of events
    span = (ev["t"][-1] - ev["t"][0]) / 1e6
    assert 0.45 < span < 0.55
    path = write_aedat2(tmp_path / "r.aedat", ev)
    src = open_source(path, speed=10, packet_us=10_000)
    start = time.perf_counter()
    n = read_all(src).size
    elapsed = time.perf_counter() - start
    assert n == ev.size
    assert span / 10 * 0.8 < elapsed < span / 10 + 0.25


@pytest.mark.parametrize("fmt", ["aedat2", "dat"])
def test_32_bit_clock_over_several_wraps(fmt, tmp_path):
    """4.4 h of events (three wraps of the 32-bit µs clock, 71.6 min each) in AEDAT 2 and
    DAT: the time range known on opening (from sampled records) is the one reading
    every event gives, so info's duration and --start near the end are right."""
    from dvsstream.io.base import start_source_at

    rng = np.random.default_rng(3)
    n = 800_000
    t = 1_000 + np.cumsum(rng.integers(0, 40_000, n))
    ev = make_events(t, rng.integers(0, 64, n), rng.integers(0, 64, n), rng.integers(0, 2, n))
    assert t[-1] >> 32 == 3
    if fmt == "dat":
        pytest.importorskip("expelliarmus")  # writes the DAT file
        from dvsstream.io.prophesee import write_prophesee

        path = write_prophesee(tmp_path / "long.dat", ev, encoding="dat", sensor_size=(64, 64))
    else:
        path = write_aedat2(tmp_path / "long.aedat", ev)
    with open_source(path) as src:
        assert (src.start_time_us, src.end_time_us) == (int(t[0]), int(t[-1]))
        got = read_all(src)
    np.testing.assert_array_equal(got["t"], ev["t"])
    near_end = (int(t[-1000]) - int(t[0])) / 1e6  # 4.4 h in: past the end by the old one-wrap guess
    with open_source(path) as src:
        start_source_at(src, near_end, str(path))
        tail = read_all(src)
    assert tail.size >= 1000 and tail["t"][0] >= t[-1000] and tail["t"][-1] == t[-1]
