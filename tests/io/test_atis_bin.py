"""N-MNIST / ATIS ``.bin`` files: the bit layout, equality with tonic's ``read_mnist_file``
event for event (markers included), the 23-bit time unwrapped across packets, truncated
files, geometry, detection by name, and ``info`` / ``convert`` / ``run`` on a written file."""

from __future__ import annotations

import numpy as np
import pytest

from dvsstream.cli import main
from dvsstream.errors import FormatError
from dvsstream.events import make_events
from dvsstream.io import detect_format, open_file, open_source
from dvsstream.io.atis_bin import AtisBinSource, write_atis_bin
from dvsstream.io.hdf5 import RecordingReader

tonic_io = pytest.importorskip("tonic.io")

TONIC_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
WRAP = 1 << 23


def records(x, y, p, t) -> bytes:
    """5-byte records from the dataset's description: x, y, then p in bit 23 above a
    23-bit time, most significant byte first (written independently of the reader)."""
    out = bytearray()
    for xi, yi, pi, ti in zip(x, y, p, t, strict=True):
        word = (int(pi) << 23) | (int(ti) & (WRAP - 1))
        out += bytes([int(xi), int(yi), word >> 16, (word >> 8) & 0xFF, word & 0xFF])
    return bytes(out)


def nmnist_events(n: int, span_us: int, seed: int = 0, size: int = 34) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, span_us, n)), rng.integers(0, size, n),
                       rng.integers(0, size, n), rng.integers(0, 2, n))


def read_all(source) -> np.ndarray:
    with source:
        packets = list(source)
    return np.concatenate(packets) if packets else np.empty(0, packets[0].dtype)


def tonic_read(path) -> np.ndarray:
    return tonic_io.read_mnist_file(str(path), dtype=TONIC_DTYPE)


def test_bit_layout_of_hand_made_records(tmp_path):
    """x byte 0, y byte 1, polarity bit 23 (1 = ON), time bits 22-0 (23 bits, not 24)."""
    path = tmp_path / "hand.bin"
    path.write_bytes(bytes([5, 7, 0x80 | 0x12, 0x34, 0x56,    # ON, t = 0x123456
                            33, 0, 0x7F, 0xFF, 0xFF,          # OFF, t = 2**23 - 1
                            0, 33, 0x80, 0x00, 0x00]))        # ON, t = 0: the counter wrapped
    ev = read_all(open_source(path))
    assert ev["x"].tolist() == [5, 33, 0] and ev["y"].tolist() == [7, 0, 33]
    assert ev["p"].tolist() == [1, 0, 1]
    assert ev["t"].tolist() == [0x123456, WRAP - 1, WRAP]  # unwrapped: monotone
    tonic = tonic_read(path)
    assert tonic["p"].tolist() == [1, 0, 1] and tonic["t"].tolist() == [0x123456, WRAP - 1, 0]


def test_equal_to_tonic_event_for_event_with_overflow_markers(tmp_path):
    ev = nmnist_events(3000, 300_000)
    raw = bytearray(records(ev["x"], ev["y"], ev["p"], ev["t"]))
    # tonic's (eventvision's) overflow markers: y = 240, dropped, +2**13 µs to later times
    for at in (2500, 1000, 7):  # from the back, so that earlier offsets stay valid
        raw[at * 5:at * 5] = bytes([3, 240, 0, 0, 0])
    path = tmp_path / "00042.bin"
    path.write_bytes(bytes(raw))
    src = open_source(path, chunk_events=257)  # markers and packets cross
    assert isinstance(src, AtisBinSource) and src.format == "atis-bin"
    ours = read_all(src)
    tonic = tonic_read(path)
    assert ours.size == tonic.size == ev.size == src.n_events
    for k in "xypt":
        np.testing.assert_array_equal(ours[k], tonic[k])
    shift = np.zeros(ev.size, np.int64)
    for at in (7, 1000, 2500):
        shift[at:] += 1 << 13
    np.testing.assert_array_equal(ours["t"], ev["t"] + shift)
    assert src.overflow_markers == 3 and any("overflow marker" in w for w in src.stats.warnings)


def test_time_wraps_unwrapped_across_packets_and_tonic_modulo_2_23(tmp_path):
    ev = nmnist_events(4000, 30_000_000, seed=1)  # 30 s: three wraps of 8.39 s
    path = write_atis_bin(tmp_path / "long.bin", ev)
    for chunk in (1, 13, 4000):
        src = open_file(path, chunk_events=chunk)
        ours = read_all(src)
        np.testing.assert_array_equal(ours, ev)
        assert src.wraps == 3 and (src.start_time_us, src.end_time_us) == (int(ev["t"][0]), int(ev["t"][-1]))
    tonic = tonic_read(path)
    for k in "xyp":
        np.testing.assert_array_equal(ours[k], tonic[k])
    np.testing.assert_array_equal(ours["t"] % WRAP, tonic["t"])
    assert np.all(np.diff(ours["t"]) >= 0) and np.any(np.diff(tonic["t"]) < 0)  # tonic falls back


def test_truncated_file_keeps_its_complete_events(tmp_path):
    ev = nmnist_events(500, 200_000, seed=2)
    whole = write_atis_bin(tmp_path / "whole.bin", ev).read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(whole[: 5 * 321 + 3])
    src = open_source(cut)
    np.testing.assert_array_equal(read_all(src), ev[:321])
    assert any("truncated" in w and "321 complete" in w for w in src.stats.warnings)


def test_geometry_default_grown_and_given(tmp_path):
    small = write_atis_bin(tmp_path / "digit.bin", nmnist_events(100, 100_000))
    src = open_source(small)
    assert tuple(src.sensor_size) == (34, 34) and not src.stats.warnings
    wide = nmnist_events(2000, 100_000, seed=3, size=180)  # N-Caltech101-like
    path = write_atis_bin(tmp_path / "image_0001.bin", wide)
    src = open_source(path)
    w, h = int(wide["x"].max()) + 1, int(wide["y"].max()) + 1
    assert tuple(src.sensor_size) == (w, h) and src.geometry_from == "data"
    assert any("--sensor-size" in m for m in src.stats.warnings)
    np.testing.assert_array_equal(read_all(src), wide)
    src = open_source(path, sensor_size=(240, 180))
    assert tuple(src.sensor_size) == (240, 180) and src.geometry_from == "sensor_size"
    assert read_all(src).size == wide.size


def test_detected_by_name_and_content_wins(tmp_path):
    ev = nmnist_events(50, 10_000)
    ev["x"][0], ev["y"][0] = 37, 32  # the first bytes read '% ': still an event, not a header
    path = write_atis_bin(tmp_path / "x.bin", ev)
    assert path.read_bytes()[:2] == b"% "
    assert detect_format(path) == "atis-bin"
    np.testing.assert_array_equal(read_all(open_source(path, sensor_size=(64, 64))), ev)
    renamed = tmp_path / "x.dat"
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(FormatError, match="x.dat.*not a Prophesee file"):
        open_source(renamed)  # only the .bin name makes a headerless file an ATIS one
    junk = tmp_path / "junk.txt"
    junk.write_bytes(bytes(range(10, 60)))
    with pytest.raises(FormatError, match=r"junk.txt: unknown format; .*N-MNIST / ATIS \.bin") as info:
        open_source(junk)
    assert "\n" not in str(info.value)


def test_write_refuses_what_the_format_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="240"):
        write_atis_bin(tmp_path / "a.bin", make_events([0], [1], [240], [1]))
    with pytest.raises(ValueError, match="256"):
        write_atis_bin(tmp_path / "a.bin", make_events([0], [300], [1], [1]))


# --------------------------------------------------------------------------- CLI
def test_cli_info_convert_and_run_on_a_bin_file(tmp_path, capsys):
    ev = nmnist_events(3000, 310_000, seed=4)
    path = write_atis_bin(tmp_path / "00007.bin", ev)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "format:      atis-bin" in out and "resolution:  34 x 34" in out
    assert f"events:      {ev.size:,}" in out
    out_h5 = tmp_path / "digit.h5"
    assert main(["convert", str(path), str(out_h5)]) == 0
    assert f"wrote {ev.size:,} events" in capsys.readouterr().out
    with RecordingReader(out_h5) as rec:
        np.testing.assert_array_equal(rec.read(), ev)
    assert main(["info", str(path), "--sensor-size", "40x40"]) == 0
    assert "resolution:  40 x 40" in capsys.readouterr().out
    assert main(["run", "--source", str(path), "--device", "cpu", "--quiet"]) == 0
    io = capsys.readouterr()
    assert f"{ev.size:,} events read = {ev.size:,} binned" in io.out + io.err
