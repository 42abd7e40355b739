"""The dvsstream command: info, convert, record, replay, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dvsstream.cli import main
from dvsstream.events import make_events
from dvsstream.recording import RecordingReader
from dvsstream.sources.aedat2 import write_aedat2
from dvsstream.sources.aedat3 import write_aedat31


@pytest.fixture
def aedat2_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 20_000
    t = np.sort(rng.integers(0, 2_000_000, n))
    t[5000:5100] = t[5000]  # a burst: 100 events in one µs
    ev = make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))
    path = tmp_path / "scene.aedat"
    write_aedat2(path, ev)
    return path, ev


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvsstream.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_info_reports_counts_and_rates(aedat2_file, capsys):
    path, ev = aedat2_file
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "format:      aedat2" in out
    assert "resolution:  128 x 128" in out
    assert f"events:      {ev.size:,}" in out
    duration = (ev["t"][-1] - ev["t"][0]) / 1e6
    assert f"duration:    {duration:.3f} s" in out
    assert "peak rate:" in out and "mean rate:" in out


def test_convert_then_info_keeps_every_event_and_labels(tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 5_000
    ev = make_events(np.sort(rng.integers(0, 3_000_000, n)), rng.integers(0, 128, n),
                     rng.integers(0, 128, n), rng.integers(0, 2, n))
    src = tmp_path / "user01_fluorescent.aedat"
    labels = np.array([(100_000, 900_000, 0), (1_000_000, 2_000_000, 4)],
                      dtype=[("start", "<i8"), ("end", "<i8"), ("label", "<i4")])
    write_aedat31(src, ev, labels=labels)
    out_h5 = tmp_path / "gesture.h5"
    assert main(["convert", str(src), str(out_h5)]) == 0
    assert "wrote 5,000 events" in capsys.readouterr().out
    with RecordingReader(out_h5) as rec:
        back = rec.read()
        np.testing.assert_array_equal(back, ev)
        assert rec.labels["label"].tolist() == [0, 4]
    assert main(["info", str(out_h5)]) == 0
    info = capsys.readouterr().out
    assert "format:      hdf5" in info and "events:      5,000" in info and "2 labelled segment" in info


def test_existing_output_needs_force(aedat2_file, tmp_path):
    path, ev = aedat2_file
    out = tmp_path / "out.h5"
    out.write_bytes(b"precious")
    result = run_cli("convert", path, out)
    assert result.returncode == 2 and "already exists" in result.stderr and "--force" in result.stderr
    assert out.read_bytes() == b"precious"
    assert main(["convert", str(path), str(out), "--force"]) == 0
    with RecordingReader(out) as rec:
        assert rec.n_events == ev.size


def test_record_synthetic_source_for_a_duration(tmp_path, capsys):
    out = tmp_path / "rec.h5"
    assert main(["record", "--source", "synthetic:rate=100000,duration=5", "--out", str(out),
                 "--duration", "0.5"]) == 0
    with RecordingReader(out) as rec:
        ev = rec.read()
    assert 40_000 < ev.size < 60_000
    assert ev["t"][-1] - ev["t"][0] <= 500_000


def test_replay_paced(aedat2_file, capsys):
    path, ev = aedat2_file
    assert main(["replay", str(path), "--speed", "20", "--window-ms", "100", "--bins", "10",
                 "--hop-ms", "50", "--downsample", "2"]) == 0  # 2 s recording -> ~0.1 s
    out = capsys.readouterr().out
    assert f"replayed {ev.size:,} events" in out
    # tumbling in pairs: every event lies in 2 windows of 100 ms hopping by 50 ms
    assert f"{ev.size:,} events binned, 0 out of bounds, 0 late" in out
    assert "[10, 2, 64, 64]" in out


def test_replay_bad_window_is_a_clear_error(aedat2_file):
    path, _ = aedat2_file
    result = run_cli("replay", path, "--window-ms", "100", "--bins", "16", "--hop-ms", "7")
    assert result.returncode == 2 and "--hop-ms 7 must be a multiple of the bin length 6.25 ms" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("content", [b"", b"hello world, not events", b"#!AER-DAT2.0\r\n#cut off he"])
def test_bad_files_give_one_line_errors(tmp_path, content):
    bad = tmp_path / "bad.aedat"
    bad.write_bytes(content)
    for command in (["info", bad], ["convert", bad, tmp_path / "x.h5"], ["replay", bad]):
        result = run_cli(*command)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert str(bad) in lines[0]


def test_header_only_file_is_an_empty_recording(tmp_path, capsys):
    empty = tmp_path / "empty.aedat"
    empty.write_bytes(b"#!AER-DAT2.0\r\n# HardwareInterface: DVS128\r\n")
    assert main(["info", str(empty)]) == 0
    assert "events:      0" in capsys.readouterr().out


def test_missing_file_and_no_camera(tmp_path):
    result = run_cli("info", tmp_path / "nope.aedat4")
    assert result.returncode == 2 and "no such file" in result.stderr
    result = run_cli("record", "--source", "camera:", "--out", tmp_path / "c.h5", "--duration", "1")
    assert result.returncode == 2 and "camera" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "c.h5").exists()
