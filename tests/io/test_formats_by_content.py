"""Recordings are opened by their content, not their name (an AEDAT 4 file named ``.h5``
included: dv-processing itself goes by the name), and a truncated AEDAT 4 file keeps its
complete packets with a warning, as the other readers do."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from dvsstream.cli import main
from dvsstream.errors import FormatError
from dvsstream.events import make_events
from dvsstream.io import detect_format, open_source
from dvsstream.io.aedat2 import write_aedat2
from dvsstream.io.aedat3 import write_aedat31
from dvsstream.io.aedat4 import Aedat4Source, read_layout, scan_packets, write_aedat4
from dvsstream.io.hdf5 import RecordingReader, RecordingWriter
from dvsstream.io.prophesee import write_prophesee

REAL_AEDAT4 = "dvSave-2024_06_20_15_59_41.aedat4"


def events(n: int, seed: int = 0, t0: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(t0 + np.sort(rng.integers(0, 2_000_000, n)), rng.integers(0, 128, n),
                       rng.integers(0, 128, n), rng.integers(0, 2, n))


def read_all(source) -> np.ndarray:
    with source:
        packets = list(source)
    return np.concatenate(packets)


def our_temp_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("dvsstream-aedat4-*")}


def write_hdf5(path: Path, ev: np.ndarray) -> Path:
    with RecordingWriter(path, (128, 128)) as w:
        w.write(ev)
    return path


WRITERS = {
    "aedat4": lambda p, ev: write_aedat4(p, ev, (128, 128)),
    "aedat3.1": lambda p, ev: write_aedat31(p, ev),
    "aedat2": lambda p, ev: write_aedat2(p, ev),
    "hdf5": write_hdf5,
    "npy": lambda p, ev: (np.save(p, ev), p)[1],
    "prophesee": lambda p, ev: write_prophesee(p, ev, "evt3", (128, 128)),
}
#: the name each content goes by
SUFFIX = {"aedat4": ".aedat4", "aedat3.1": ".aedat", "aedat2": ".aedat", "hdf5": ".h5", "npy": ".npy",
          "prophesee": ".raw"}
#: a name each content does not go by
MISNAMED = {"aedat4": "rec.h5", "aedat3.1": "rec.npy", "aedat2": "rec.hdf5", "hdf5": "rec.aedat4",
            "npy": "rec.raw", "prophesee": "rec.aedat"}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_a_misnamed_file_opens_by_its_content_with_a_note(tmp_path, fmt):
    ev = events(3000)
    written = WRITERS[fmt](tmp_path / ("orig" + SUFFIX[fmt]), ev)
    misnamed = tmp_path / MISNAMED[fmt]
    misnamed.write_bytes(Path(written).read_bytes())
    before = our_temp_dirs()
    assert detect_format(misnamed) == fmt
    src = open_source(misnamed)
    np.testing.assert_array_equal(read_all(src), ev)
    assert any(f"named {misnamed.suffix} but holds" in w and "read by its content" in w
               for w in src.stats.warnings)
    assert our_temp_dirs() == before  # the link dv-processing needs is gone once the file is open


def test_aedat4_under_any_name_equals_the_aedat4_name(tmp_path):
    ev = events(25_000, t0=1_700_000_000_000_000)
    path = write_aedat4(tmp_path / "rec.aedat4", ev, (128, 128))
    for name in ("REC.AEDAT4", "recording", "rec.aedat4.part"):
        other = tmp_path / name
        other.write_bytes(path.read_bytes())
        src = open_source(other, chunk_events=4000)
        assert isinstance(src, Aedat4Source)
        np.testing.assert_array_equal(read_all(src), ev)
        src = open_source(other, start_us=int(ev["t"][12_000]))  # seeking and re-reading too
        np.testing.assert_array_equal(read_all(src), ev[ev["t"] >= ev["t"][12_000]])


def _cuts(path: Path):
    """Byte counts to cut ``path`` at: inside the second packet, right after the last
    packet (the table missing), inside the table."""
    layout = read_layout(path)
    assert 0 < layout.table_at < layout.size
    with open(path, "rb") as f:
        f.seek(layout.packets_at + 4)
        first = int.from_bytes(f.read(4), "little")
    second_at = layout.packets_at + 8 + first
    return [second_at + 100, layout.table_at, layout.table_at + (layout.size - layout.table_at) // 2]


def _kept(warnings) -> int:
    """The event count a truncation warning names."""
    (line,) = [w for w in warnings if "complete packets" in w]
    return int(line.split(" events)")[0].rsplit("(", 1)[1].replace(",", ""))


def test_truncated_aedat4_keeps_its_complete_packets(tmp_path):
    ev = events(50_000, seed=1)  # 5 packets of 10,000
    path = write_aedat4(tmp_path / "rec.aedat4", ev, (128, 128))
    before = our_temp_dirs()
    for cut_at, packets in zip(_cuts(path), (1, 5, 5), strict=True):
        cut = tmp_path / f"cut{cut_at}.aedat4"
        cut.write_bytes(path.read_bytes()[:cut_at])
        src = open_source(cut)
        got = read_all(src)
        assert got.size == packets * 10_000 == _kept(src.stats.warnings) == src.n_events
        np.testing.assert_array_equal(got, ev[: got.size])
        (warning,) = [w for w in src.stats.warnings if "complete packets" in w]
        assert cut.name in warning and f"its {packets} complete packets" in warning
        assert ("left out" in warning) == (cut_at < read_layout(path).table_at)
    assert our_temp_dirs() == before  # the repaired copies are gone


def test_aedat4_cut_inside_its_header_or_garbage_is_one_line(tmp_path):
    path = write_aedat4(tmp_path / "rec.aedat4", events(100), (128, 128))
    for n, match in ((20, "cut off inside its header"), (len(b"#!AER-DAT4.0\r\n") + 2, "cut off inside")):
        stub = tmp_path / "stub.aedat4"
        stub.write_bytes(path.read_bytes()[:n])
        with pytest.raises(FormatError, match=f"stub.aedat4: .*{match}") as info:
            open_source(stub)
        assert "\n" not in str(info.value)
    junk = tmp_path / "junk.aedat4"
    junk.write_bytes(b"#!AER-DAT4.0\r\n" + b"\x07" * 30)
    with pytest.raises(FormatError, match="junk.aedat4"):
        open_source(junk)


def test_real_truncated_aedat4_is_a_prefix_of_the_whole(real_data, tmp_path):
    path = real_data(REAL_AEDAT4)
    whole = read_all(open_source(path))
    data = path.read_bytes()
    layout = read_layout(path)
    for fraction in (0.1, 0.55, 0.999):
        cut = tmp_path / f"cut_{fraction}.aedat4"
        cut.write_bytes(data[: int(len(data) * fraction)])
        src = open_source(cut)
        got = read_all(src)
        assert 0 < got.size <= whole.size and got.size == _kept(src.stats.warnings)
        np.testing.assert_array_equal(got, whole[: got.size])
        packets, _ = scan_packets(cut, read_layout(cut))
        assert f"its {packets:,} complete packets" in src.stats.warnings[0]
    assert packets == scan_packets(path, layout)[0]  # the last cut lies in the table: every packet kept
    assert got.size == whole.size


def test_real_aedat4_named_h5_info_and_convert(real_data, tmp_path, capsys):
    data = real_data(REAL_AEDAT4).read_bytes()
    named = tmp_path / "recording.h5"
    named.write_bytes(data)
    assert main(["info", str(named)]) == 0
    io = capsys.readouterr()
    assert "format:      aedat4" in io.out and "events:      348,461" in io.out
    assert "named .h5 but holds an AEDAT 4 recording" in io.err
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(data[: len(data) // 2])
    out_h5 = tmp_path / "cut.h5"
    assert main(["convert", str(cut), str(out_h5)]) == 0
    io = capsys.readouterr()
    assert "complete packets" in io.err
    with RecordingReader(out_h5) as rec:
        back = rec.read()
    whole = read_all(open_source(named))
    assert 0 < back.size < whole.size
    np.testing.assert_array_equal(back, whole[: back.size])


def test_aedat4_never_closed_by_its_recorder(tmp_path):
    """No packet table (``dataTablePosition`` -1, as DV leaves a file while recording):
    dv-processing rebuilds the table; a tail cut mid-packet is said, not silently lost."""
    ev = events(30_000, seed=2)
    path = write_aedat4(tmp_path / "rec.aedat4", ev, (128, 128))
    layout = read_layout(path)
    data = bytearray(path.read_bytes()[: layout.table_at])
    data[layout.table_field:layout.table_field + 8] = (-1).to_bytes(8, "little", signed=True)
    whole = tmp_path / "open.aedat4"
    whole.write_bytes(bytes(data))
    src = open_source(whole)
    np.testing.assert_array_equal(read_all(src), ev)
    assert not src.stats.warnings
    cut = tmp_path / "open_cut.aedat4"
    cut.write_bytes(bytes(data[:-50]))
    src = open_source(cut)
    got = read_all(src)
    np.testing.assert_array_equal(got, ev[:20_000])
    (warning,) = src.stats.warnings
    assert "no packet table" in warning and "its 2 complete packets (20,000 events)" in warning
