"""Prophesee EVT 3.0 / EVT 2.0 RAW and DAT files: the real N-CARS sample against
expelliarmus's own decoding, files written from real events (N-CARS and the DVXplorer
recording) read back exactly, EVT 3.0 time by Metavision's rules, truncation, bad headers, seek, loop,
Prophesee HDF5, and the CLI's info / convert in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

expelliarmus = pytest.importorskip("expelliarmus")

from dvsstream.errors import FormatError  # noqa: E402
from dvsstream.events import EVENT_DTYPE  # noqa: E402
from dvsstream.io.hdf5 import RecordingReader  # noqa: E402
from dvsstream.io import detect_format, open_source  # noqa: E402
from dvsstream.io.prophesee import PropheseeSource, read_prophesee_header, write_prophesee  # noqa: E402

NCARS = "ncars_sample.dat"
NCARS_EVENTS = 2009
ENCODINGS = ("evt3", "evt2", "dat")


def name(stem: str, encoding: str) -> str:
    """Metavision's file names: ``.raw`` for EVT, ``.dat`` for DAT (expelliarmus insists)."""
    return f"{stem}_{encoding}.{'dat' if encoding == 'dat' else 'raw'}"


def read_all(path, **options) -> tuple[np.ndarray, PropheseeSource]:
    with open_source(path, **options) as src:
        packets = list(src)
    return (np.concatenate(packets) if packets else np.zeros(0, EVENT_DTYPE)), src


@pytest.fixture(scope="module")
def ncars_events(tmp_path_factory):
    from conftest import real_file

    path = real_file(NCARS)
    ev, _ = read_all(path)
    return ev


@pytest.fixture(scope="module")
def dvxplorer_events():
    from conftest import real_file

    ev, src = read_all(real_file("dvxplorer_sample.aedat4"))
    assert tuple(src.sensor_size) == (320, 240)
    ev = ev.copy()
    ev["t"] -= ev["t"][0]  # camera clock (Unix µs) -> from 0, as Metavision files start
    return ev


def test_real_ncars_dat_equals_expelliarmus(real_data):
    path = real_data(NCARS)
    assert detect_format(path) == "prophesee"
    ref = expelliarmus.Wizard(encoding="dat", fpath=path).read()
    ev, src = read_all(path, chunk_events=500)  # several chunks
    assert src.format == "prophesee-dat" and src.camera.startswith("Prophesee")
    assert ev.dtype == EVENT_DTYPE and ev.size == ref.size == NCARS_EVENTS == src.n_events
    for k in "txyp":
        np.testing.assert_array_equal(ev[k], ref[k])
    assert set(np.unique(ev["p"])) == {0, 1}
    # no geometry in this header: taken from the data, and said so
    assert src.geometry_from == "data"
    assert tuple(src.sensor_size) == (int(ref["x"].max()) + 1, int(ref["y"].max()) + 1)
    assert any("states no geometry" in w for w in src.stats.warnings)
    assert src.stats.out_of_bounds == 0 and src.stats.events_read == NCARS_EVENTS
    assert (src.start_time_us, src.end_time_us) == (int(ref["t"][0]), int(ref["t"][-1]))


def test_sensor_size_option_when_header_has_none(real_data):
    ev, src = read_all(real_data(NCARS), sensor_size=(120, 100))  # N-CARS crops are 120x100
    assert tuple(src.sensor_size) == (120, 100) and src.geometry_from == "sensor_size"
    assert ev.size == NCARS_EVENTS
    assert any("sensor size 120x100" in w for w in src.stats.warnings)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_ncars_written_reads_back(ncars_events, encoding, tmp_path):
    path = write_prophesee(tmp_path / name("ncars", encoding), ncars_events, encoding, (120, 100))
    header = read_prophesee_header(path)
    assert header.encoding == encoding and tuple(header.geometry) == (120, 100)
    ev, src = read_all(path, chunk_events=300)
    np.testing.assert_array_equal(ev, ncars_events)
    assert src.geometry_from == "header" and src.stats.warnings == []
    if encoding != "evt3":  # expelliarmus wrote these, and reads them as we do
        ref = expelliarmus.Wizard(encoding=encoding, fpath=path).read()
        for k in "txyp":
            np.testing.assert_array_equal(ref[k], ncars_events[k])


def _evt3_file(path, words) -> str:
    path.write_bytes(b"% evt 3.0\n% geometry 64x64\n% end\n" + np.asarray(words, np.uint16).tobytes())
    return path


def test_evt3_time_as_a_camera_sends_it(tmp_path):
    """Words as a Prophesee camera sends them (TIME_HIGH at each change of bits 12-23,
    then TIME_LOW) give Metavision's times, 24-bit loop included; expelliarmus adds a
    4,096 µs period at each TIME_HIGH step (why EVT 3.0 no longer follows it)."""
    TH, TL, Y, X = 0x8000, 0x6000, 0x0000, 0x2000
    words = [TH | 1, TL | 4000, Y | 3, X | 4,       # 1 * 4096 + 4000
             TH | 2, TL | 7, X | 0x800 | 5,         # 2 * 4096 + 7, ON
             TH | 3, X | 6,                         # a new TIME_HIGH clears time_low: 3 * 4096
             TH | 0xFFF, TL | 1, X | 7,             # 0xFFF * 4096 + 1
             TH | 0, TL | 2, X | 8,                 # the 24-bit clock looped: 2**24 + 2
             TH | 0, TL | 1, X | 9]                 # a small step back is not a loop: 2**24 + 1
    from dvsstream.io._prophesee_kernel import decode_evt3, new_state

    out = np.empty(32, EVENT_DTYPE)
    n, _ = decode_evt3(np.array(words, np.uint16), 0, out, 0, new_state())
    assert out["t"][:n].tolist() == [8096, 8199, 12288, 0xFFF * 4096 + 1, (1 << 24) + 2, (1 << 24) + 1]
    assert out["x"][:n].tolist() == [4, 5, 6, 7, 8, 9] and out["p"][:n].tolist() == [0, 1, 0, 0, 0, 0]
    ev, src = read_all(_evt3_file(tmp_path / "cam.raw", words))
    assert ev.size == 6 and src.stats.out_of_order == 1  # the step back: re-sorted and counted
    ref = expelliarmus.Wizard(encoding="evt3", fpath=tmp_path / "cam.raw").read()
    assert int(ref["t"][1]) == 8199 + 4096  # expelliarmus: TIME_LOW 7 < 4000 counted as a wrap


def test_evt3_written_by_expelliarmus_reads_as_expelliarmus_reads_it(tmp_path):
    """expelliarmus writes TIME_HIGH once and lets TIME_LOW wrap: its files read the way
    expelliarmus reads them (whole 4,096 µs periods between sparse events are lost in
    such a file; that is the writer's, which is why write_prophesee encodes EVT 3.0
    itself)."""
    arr = np.zeros(6, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
    arr["t"], arr["x"], arr["y"] = [10, 4090, 4100, 8200, 9000, 20000], np.arange(6), 7
    path = tmp_path / "expelliarmus.raw"
    expelliarmus.Wizard(encoding="evt3").save(path, arr)
    ref = expelliarmus.Wizard(encoding="evt3", fpath=path).read()
    ev, _ = read_all(path, sensor_size=(64, 64))
    assert ev["t"].tolist() == ref["t"].tolist() == [10, 4090, 4100, 4104, 4904, 7712]


def test_evt3_round_trip_across_long_gaps_and_loops(tmp_path):
    """write_prophesee's EVT 3.0 keeps every timestamp: gaps of µs to minutes, past
    several 2**24 µs loops of the camera clock."""
    rng = np.random.default_rng(5)
    ev0 = np.zeros(3000, EVENT_DTYPE)
    gaps = rng.choice([0, 1, 4095, 4097, 70_000, 3_000_000, 40_000_000], ev0.size)
    ev0["t"] = np.cumsum(gaps)
    ev0["x"], ev0["y"], ev0["p"] = rng.integers(0, 640, ev0.size), rng.integers(0, 480, ev0.size), rng.integers(0, 2, ev0.size)
    assert int(ev0["t"][-1]) > 100 * (1 << 24)
    ev, src = read_all(write_prophesee(tmp_path / "gaps.raw", ev0, "evt3", (640, 480)), chunk_events=500)
    np.testing.assert_array_equal(ev, ev0)
    assert src.stats.out_of_order == 0 and src.stats.warnings == []


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_dvxplorer_events_round_trip(dvxplorer_events, encoding, tmp_path):
    ev0 = dvxplorer_events
    path = write_prophesee(tmp_path / name("dvx", encoding), ev0, encoding, (320, 240))
    ev, src = read_all(path)  # default chunks: 111,954 events in one
    assert tuple(src.sensor_size) == (320, 240) and ev.size == 111_954
    np.testing.assert_array_equal(ev, ev0)
    assert src.stats.out_of_bounds == 0 and src.stats.out_of_order == 0
    # the far corners of the sensor survive the encoding
    assert int(ev["x"].max()) == 319 and int(ev["y"].max()) == 239


def test_geometry_from_format_line_and_other_suffix(ncars_events, tmp_path):
    path = write_prophesee(tmp_path / "a.raw", ncars_events, "evt3", (120, 100))
    text = path.read_bytes().replace(b"% geometry 120x100\n", b"")
    other = tmp_path / "recording.bin"  # detected by content, not by name
    other.write_bytes(text)
    ev, src = read_all(other)
    assert tuple(src.sensor_size) == (120, 100) and src.geometry_from == "header"
    np.testing.assert_array_equal(ev, ncars_events)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_truncated_file_keeps_its_readable_part(dvxplorer_events, encoding, tmp_path):
    path = write_prophesee(tmp_path / name("dvx", encoding), dvxplorer_events, encoding, (320, 240))
    data = path.read_bytes()
    cut = tmp_path / name("cut", encoding)
    word = {"evt3": 2, "evt2": 4, "dat": 8}[encoding]
    offset = read_prophesee_header(path).body_offset
    keep = offset + (len(data) - offset) // 2 // word * word + word - 1
    cut.write_bytes(data[:keep])  # half the body and a partial word
    ev, src = read_all(cut)
    assert 0.3 * dvxplorer_events.size < ev.size < 0.7 * dvxplorer_events.size
    np.testing.assert_array_equal(ev, dvxplorer_events[: ev.size])  # a prefix, exact
    size, tail = cut.stat().st_size, word - 1  # the partial word is reported where it starts
    warning = next(w for w in src.stats.warnings if "truncated" in w)
    assert "cut_" in warning and f"partial {tail}-byte word at byte {size - tail}" in warning
    if encoding == "dat":  # fixed-size records: exactly the complete ones
        assert ev.size == (size - offset) // 8


def test_header_contradicting_data_is_counted(ncars_events, tmp_path):
    path = write_prophesee(tmp_path / "small.raw", ncars_events, "evt3", (40, 30))
    ev, src = read_all(path)
    outside = (ncars_events["x"] >= 40) | (ncars_events["y"] >= 30)
    assert src.stats.out_of_bounds == int(outside.sum()) > 0
    assert ev.size + src.stats.out_of_bounds == NCARS_EVENTS
    np.testing.assert_array_equal(ev, ncars_events[~outside])
    assert any("contradicts the data" in w and "40x30" in w for w in src.stats.warnings)


def test_seek_and_loop(ncars_events, tmp_path):
    path = write_prophesee(tmp_path / "n.raw", ncars_events, "evt2", (120, 100))
    t_mid = int(ncars_events["t"][1000])
    ev, _ = read_all(path, start_us=t_mid, chunk_events=256)
    np.testing.assert_array_equal(ev, ncars_events[ncars_events["t"] >= t_mid])
    with open_source(path, loop=True, chunk_events=256) as src:
        got, total = [], 0
        for packet in src:
            got.append(packet)
            total += packet.size
            if total >= 2 * NCARS_EVENTS + 10:
                break
    both = np.concatenate(got)
    np.testing.assert_array_equal(both[:NCARS_EVENTS], ncars_events)
    np.testing.assert_array_equal(both[NCARS_EVENTS: 2 * NCARS_EVENTS], ncars_events)
    with open_source(path, chunk_events=256) as src:
        first = next(iter(src))
        src.seek(t_mid)
        rest = np.concatenate(list(src))
    assert first.size >= 256
    np.testing.assert_array_equal(rest, ncars_events[ncars_events["t"] >= t_mid])


def test_pacing_follows_the_recording(ncars_events, tmp_path):
    import time

    path = write_prophesee(tmp_path / "n.raw", ncars_events, "evt3", (120, 100))
    span_s = (int(ncars_events["t"][-1]) - int(ncars_events["t"][0])) / 1e6  # ~0.1 s
    start = time.perf_counter()
    ev, _ = read_all(path, speed=2.0, packet_us=10_000)
    assert ev.size == NCARS_EVENTS
    assert time.perf_counter() - start >= 0.8 * span_s / 2


def _with_header(tmp_path, ncars_events, old: bytes, new: bytes):
    path = write_prophesee(tmp_path / "x.raw", ncars_events, "evt3", (120, 100))
    bad = tmp_path / "bad.raw"
    bad.write_bytes(path.read_bytes().replace(old, new, 1))
    return bad


@pytest.mark.parametrize("old,new,words", [
    (b"% evt 3.0", b"% evt 4.0", "'evt 4.0' is not supported"),
    (b"% format EVT3;", b"% format EVT21;", "'format EVT21' is not supported"),
    (b"% evt 3.0", b"% evt 2.0", "contradicts itself"),
])
def test_unknown_or_contradictory_encoding_is_one_line(ncars_events, tmp_path, old, new, words):
    bad = _with_header(tmp_path, ncars_events, old, new)
    with pytest.raises(FormatError) as info:
        open_source(bad)
    message = str(info.value)
    assert words in message and str(bad) in message and "\n" not in message


def test_header_cut_off_and_non_prophesee_text(tmp_path):
    cut = tmp_path / "cut.raw"
    cut.write_bytes(b"% evt 3.0\n% format EVT3;hei")
    with pytest.raises(FormatError, match="cut off inside its '%' header"):
        open_source(cut)
    text = tmp_path / "notes.txt"
    text.write_bytes(b"% a LaTeX comment\nhello\n")
    with pytest.raises(FormatError, match="not a Prophesee file this reader knows"):
        open_source(text)
    only_header = tmp_path / "empty.raw"
    only_header.write_bytes(b"% evt 3.0\n% geometry 640x480\n% end\n")
    ev, src = read_all(only_header)
    assert ev.size == 0 and tuple(src.sensor_size) == (640, 480)


def test_corrupt_word_stops_with_a_warning(ncars_events, tmp_path):
    path = write_prophesee(tmp_path / "n.raw", ncars_events, "evt3", (120, 100))
    data = bytearray(path.read_bytes())
    offset = read_prophesee_header(path).body_offset
    at = offset + 2 * ((len(data) - offset) // 2 - 10)  # a word near the end
    data[at: at + 2] = (0x9 << 12).to_bytes(2, "little")  # type 0x9 does not exist in EVT 3.0
    path.write_bytes(bytes(data))
    ev, src = read_all(path, chunk_events=64)
    assert NCARS_EVENTS - 10 <= ev.size < NCARS_EVENTS  # every event before the bad word
    np.testing.assert_array_equal(ev, ncars_events[: ev.size])
    assert any(f"decoding stopped at byte {at} " in w for w in src.stats.warnings)


def test_out_of_order_events_are_sorted_and_counted(tmp_path):
    """A chunk the kernel finds out of order takes the base class's path: re-sorted,
    counted, nothing lost."""
    from dvsstream.events import make_events

    ev = make_events(np.array([0, 10, 20, 30, 40, 50, 60, 2000, 2010]), np.arange(9), np.arange(9), np.ones(9, int))
    path = write_prophesee(tmp_path / "o.raw", ev, "evt2", (16, 16))
    data = path.read_bytes()
    offset = read_prophesee_header(path).body_offset
    words = np.frombuffer(data[offset:], "<u4").copy()
    cd = np.nonzero((words >> 28) == 1)[0]  # EVT 2.0 CD ON words
    words[cd[2]], words[cd[4]] = words[cd[4]], words[cd[2]]  # (t 40, x 4) now comes before (t 20, x 2)
    path.write_bytes(data[:offset] + words.tobytes())
    got, src = read_all(path)
    np.testing.assert_array_equal(got, ev)
    assert src.stats.out_of_order == 2 and src.stats.events_read == 9


def test_prophesee_hdf5_names_the_conversion(tmp_path):
    import h5py

    path = tmp_path / "spinner.hdf5"
    dtype = np.dtype({"names": ["x", "y", "p", "t"], "formats": ["<u2", "<u2", "<i2", "<i8"],
                      "offsets": [0, 2, 4, 8], "itemsize": 16})
    with h5py.File(path, "w") as f:
        f.create_dataset("CD/events", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=dtype,
                         compression=0x8ECF, allow_unknown_filter=True)
    with pytest.raises(FormatError) as info:
        open_source(path)
    message = str(info.value)
    assert "Prophesee HDF5" in message and "0x8ECF" in message
    assert "metavision_file_to_dat -i spinner.hdf5" in message and "\n" not in message
    r = run_cli("info", path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Prophesee HDF5" in r.stderr


# ------------------------------------------------------------------------- CLI
def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvsstream.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_cli_info_and_convert(dvxplorer_events, tmp_path):
    raw = write_prophesee(tmp_path / "dvx.raw", dvxplorer_events, "evt3", (320, 240))
    r = run_cli("info", raw)
    assert r.returncode == 0, r.stderr
    assert "format:      prophesee-evt3" in r.stdout and "camera:      Prophesee" in r.stdout
    assert "resolution:  320 x 240" in r.stdout and "events:      111,954" in r.stdout
    span_s = int(dvxplorer_events["t"][-1] - dvxplorer_events["t"][0]) / 1e6
    assert f"duration:    {span_s:.3f} s" in r.stdout
    out = tmp_path / "dvx.h5"
    r = run_cli("convert", raw, out)
    assert r.returncode == 0, r.stderr
    assert "wrote 111,954 events" in r.stdout
    with RecordingReader(out) as rec:
        assert tuple(rec.sensor_size) == (320, 240) and rec.n_events == 111_954
        np.testing.assert_array_equal(rec.read_range(0, rec.n_events), dvxplorer_events)


def test_cli_info_real_dat_warns_about_geometry(real_data):
    r = run_cli("info", real_data(NCARS))
    assert r.returncode == 0, r.stderr
    assert "events:      2,009" in r.stdout and "format:      prophesee-dat" in r.stdout
    assert "states no geometry" in r.stderr


def test_cli_sensor_size_for_a_header_without_geometry(real_data, tmp_path, capsys):
    """--sensor-size on info, convert, replay and run: the real N-CARS DAT file (no
    geometry in its header) becomes a 120x100 sensor with every event on it; a file
    that states its size refuses the option in one line."""
    import json

    from dvsstream.cli import main
    from dvsstream.io.hdf5 import RecordingReader

    path = str(real_data(NCARS))
    assert main(["info", path, "--sensor-size", "120x100"]) == 0
    out, err = capsys.readouterr()
    assert "resolution:  120 x 100" in out and "events:      2,009" in out
    assert "model sees:  120x100 sensor, region 100x100 at (10, 0)" in out
    assert "using the given sensor size 120x100" in err and "taken from the data" not in err
    assert main(["convert", path, str(tmp_path / "n.h5"), "--sensor-size", "120x100"]) == 0
    with RecordingReader(tmp_path / "n.h5") as rec:
        assert tuple(rec.sensor_size) == (120, 100) and rec.n_events == NCARS_EVENTS
    assert main(["replay", path, "--sensor-size", "120x100", "--window-ms", "16", "--bins", "4", "--hop-ms", "4"]) == 0
    assert main(["run", "--source", path, "--sensor-size", "120x100", "--quiet", "--device", "cpu",
                 "--json-out", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["events_read"] == NCARS_EVENTS and report["geometry"].startswith("120x100 sensor")
    assert report["events_read"] == (report["events_binned"] + report["events_out_of_bounds"]
                                     + report["events_outside_roi"] + report["events_late"] + report["events_shed"])
    capsys.readouterr()
    assert main(["info", str(real_data("dvxplorer_sample.aedat4")), "--sensor-size", "120x100"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "states its own sensor size" in err and "Traceback" not in err


def test_cli_bad_files_exit_2_with_one_line(ncars_events, tmp_path):
    bad = _with_header(tmp_path, ncars_events, b"% evt 3.0", b"% evt 2.1")
    cut = tmp_path / "cut.raw"
    cut.write_bytes(b"% evt 3.0\n% geome")
    for path in (bad, cut):
        for verb in (("info", path), ("convert", path, tmp_path / "o.h5")):
            r = run_cli(*verb)
            assert r.returncode == 2
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in r.stderr


def _random_words(encoding: str, n: int, rng) -> np.ndarray:
    """``n`` body words of every type expelliarmus decodes (events, vectors, time words,
    the types both skip), timestamps stepping back and wrapping included."""
    if encoding == "dat":
        t = np.cumsum(rng.integers(0, 1 << 30, n)).astype(np.uint64) & np.uint64(0xFFFFFFFF)  # wraps
        t[rng.integers(0, n, 20)] -= np.uint64(5)  # steps back (expelliarmus counts a wrap)
        x, y, p = (rng.integers(0, m, n).astype(np.uint64) for m in (1 << 14, 1 << 14, 16))
        return t | x << np.uint64(32) | y << np.uint64(46) | p << np.uint64(60)
    if encoding == "evt2":
        kinds = rng.choice([0, 1, 1, 8, 0xA, 0xE, 0xF], n, p=[0.3, 0.3, 0.1, 0.2, 0.04, 0.03, 0.03])
        return (kinds.astype(np.uint32) << np.uint32(28)) | rng.integers(0, 1 << 28, n).astype(np.uint32)
    kinds = rng.choice([0, 2, 3, 4, 5, 6, 8, 7, 0xC, 0xE, 0xF], n,
                       p=[0.15, 0.25, 0.08, 0.08, 0.08, 0.2, 0.08, 0.02, 0.02, 0.02, 0.02])
    return (kinds.astype(np.uint16) << np.uint16(12)) | rng.integers(0, 1 << 12, n).astype(np.uint16)


def _evt3_by_the_rules(words: np.ndarray) -> np.ndarray:
    """A slow, plain decoder of EVT 3.0 words by the documented rules (the kernel
    module's docstring; Metavision's for time), for the fuzz test."""
    out, high, low, loops, implied, fresh, y, p, base, t = [], 0, 0, 0, 0, False, 0, 0, 0, 0
    for w in words.tolist():
        kind, v = w >> 12, w & 0xFFF
        if kind == 0x2:  # its polarity is also the vectors' until VECT_BASE_X sets one
            p = (v >> 11) & 1
            out.append((t, v & 0x7FF, y, p))
        elif kind == 0x0:
            y = v & 0x7FF
        elif kind in (0x4, 0x5):
            count = 12 if kind == 0x4 else 8
            out += [(t, (base + k) & 0xFFFF, y, p) for k in range(count) if v & (1 << k)]
            base = (base + count) & 0xFFFF
        elif kind == 0x3:
            p, base = (v >> 11) & 1, v & 0x7FF
        elif kind == 0x6:
            implied += v < low and not fresh
            low, fresh = v, False
        elif kind == 0x8:
            loops += high >= v + 2048
            low = low if v == high else 0
            high, implied, fresh = v, 0, True
        if kind in (0x6, 0x8):
            t = (loops << 24) + ((high + implied) << 12) + low
    return np.array(out, dtype=[("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_decoders_on_random_words(encoding, tmp_path):
    """Our Numba decoders on a file of random words of every type (vectors, time wraps,
    skipped types): DAT and EVT 2.0 give expelliarmus's events (its C decoder), EVT 3.0
    those of a plain decoder of the documented rules, in the same order, whichever way
    the body is split into blocks and packets."""
    from dvsstream.io._prophesee_kernel import DECODERS, MAX_PER_WORD, new_state

    rng = np.random.default_rng({"evt3": 3, "evt2": 2, "dat": 1}[encoding])
    words = _random_words(encoding, 60_000, rng)
    header = b"% Width 64\n% Height 64\n\x00\x08" if encoding == "dat" else \
        f"% evt {'3.0' if encoding == 'evt3' else '2.0'}\n% end\n".encode()
    path = tmp_path / name("fuzz", encoding)
    path.write_bytes(header + words.tobytes())
    ref = _evt3_by_the_rules(words) if encoding == "evt3" else expelliarmus.Wizard(encoding=encoding, fpath=path).read()
    assert ref.size > 20_000 and int(ref["t"][-1]) > {"evt3": 1 << 24, "evt2": 1 << 30, "dat": 1 << 36}[encoding]
    st, packets, pos = new_state(), [], 0
    for end in sorted(rng.integers(0, words.size, 30).tolist()) + [words.size]:
        block, at = words[pos:end], 0
        while at < block.size:
            out = np.empty(int(rng.integers(1, 3000)) + MAX_PER_WORD, EVENT_DTYPE)
            n, at = DECODERS[encoding](block, at, out, 0, st)
            packets.append(out[:n])
        pos = end
    ev = np.concatenate(packets)
    assert ev.size == ref.size
    np.testing.assert_array_equal(ev["t"], ref["t"])
    np.testing.assert_array_equal(ev["x"], ref["x"].astype(np.uint16))
    np.testing.assert_array_equal(ev["y"], ref["y"].astype(np.uint16))
    np.testing.assert_array_equal(ev["p"], (ref["p"] != 0).astype(np.uint8))
