"""The dvsstream command: info, convert, record, replay, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from dvsstream.cli import main
from dvsstream.errors import DvsstreamError
from dvsstream.events import make_events
from dvsstream.io.hdf5 import RecordingReader
from dvsstream.io.aedat2 import write_aedat2
from dvsstream.io.aedat3 import write_aedat31


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


def test_gui_screenshot_never_replaces_a_file_without_force(tmp_path, capsys):
    shot = tmp_path / "shot.png"
    shot.write_bytes(b"an earlier screenshot")
    assert main(["gui", "--source", "synthetic:", "--screenshot", str(shot), "--exit-after", "1"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert shot.read_bytes() == b"an earlier screenshot"


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


# ------------------------------------------------------------------ issue 10: validation, no lost data
@pytest.mark.parametrize("argv, needle", [
    (["info", "F", "--peak-bin-us", "0"], "--peak-bin-us"),
    (["info", "F", "--peak-bin-us", "-5"], "--peak-bin-us"),
    (["replay", "F", "--speed", "-1"], "--speed"),
    (["replay", "F", "--speed", "nan"], "--speed"),
    (["run", "--speed", "-2"], "--speed"),
    (["run", "--device", "foo"], "--device"),
    (["record", "--source", "F", "--out", "new.h5", "--duration", "-1"], "--duration"),
    (["convert", "F", "/nonexistent-dvsstream/x.h5"], "does not exist"),
    (["gui", "--checkpoint", "missing.pt", "--exit-after", "3"], "missing.pt"),
    (["run", "--source", "F", "--json-out", "."], "is a folder"),
    (["synth", "--out", "no/such/set"], "does not exist"),
    (["eval", "--dataset", "dvsgesture", "--root", "missing", "--checkpoint", "x.pt", "--out", "r"], "--root"),
])
def test_bad_arguments_are_one_line_before_any_work(aedat2_file, tmp_path, monkeypatch, capsys, argv, needle):
    path, _ = aedat2_file
    monkeypatch.chdir(tmp_path)
    argv = [str(path) if a == "F" else a for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dvsstream") and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no folder made
    assert not os.path.exists("/nonexistent-dvsstream")


def test_convert_onto_its_input_is_refused_and_the_file_intact(aedat2_file, tmp_path, capsys):
    path, _ = aedat2_file
    data = path.read_bytes()
    link = tmp_path / "link.aedat"
    os.link(path, link)
    for out in (path, tmp_path / "sub" / ".." / path.name, link):
        (tmp_path / "sub").mkdir(exist_ok=True)
        assert main(["convert", str(path), str(out), "--force"]) == 2
        err = capsys.readouterr().err
        assert "also an input" in err and err.count("\n") == 1
    assert path.read_bytes() == data
    # the library refuses it too (record() on the file it reads)
    from dvsstream.io.record import record
    from dvsstream.io import open_file

    with open_file(path) as src, pytest.raises(DvsstreamError, match="also an input"):
        record(src, link, overwrite=True)
    assert path.read_bytes() == data


def test_force_replaces_only_a_complete_output(aedat2_file, tmp_path, capsys):
    from dvsstream.io.record import record
    from dvsstream.io import open_file

    path, ev = aedat2_file
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous output")
    assert main(["record", "--source", "camera:", "--out", str(out), "--force", "--duration", "1"]) == 2

    def fail(summary):  # the writer's consumer fails half way (a full disk, say)
        if summary["events"] > 5000:
            raise OSError(28, "No space left on device")

    with open_file(path) as src, pytest.raises(OSError, match="No space"):
        record(src, out, overwrite=True, progress=fail, chunk_events=1000, flush_interval_s=1e-3)
    assert out.read_bytes() == b"previous output"  # a failed write left it whole
    assert main(["record", "--source", str(path), "--out", str(out), "--force"]) == 0
    with RecordingReader(out) as rec:
        assert rec.n_events == ev.size
    assert main(["convert", str(path), str(out), "--force"]) == 0
    with RecordingReader(out) as rec:
        assert rec.n_events == ev.size
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_convert_keeps_events_outside_the_declared_sensor(tmp_path, capsys, monkeypatch):
    """tonic's (N, 4) x, y, p, t layout in ms, with x up to 199 on a nominal 128x128."""
    rng = np.random.default_rng(3)
    n = 3000
    rows = np.stack([rng.integers(0, 200, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                     np.sort(rng.integers(0, 2000, n))], axis=1)
    src = tmp_path / "7.npy"
    np.save(src, rows)
    outside = int((rows[:, 0] >= 128).sum())
    assert outside > 1000
    out = tmp_path / "all.h5"
    from dvsstream.io.npy import NpySource

    reads = []
    real_read = NpySource._read
    monkeypatch.setattr(NpySource, "_read", lambda self, start: reads.append(1) or real_read(self, start))
    assert main(["convert", str(src), str(out)]) == 0
    assert len(reads) == 1  # one pass over the events (it took three: record, measure, record again)
    io = capsys.readouterr()
    assert "wrote 3,000 events" in io.out
    assert f"{outside:,} events lie outside the 128x128 sensor" in io.err and "200x128" in io.err
    assert "65536" not in io.err
    with RecordingReader(out) as rec:
        back = rec.read()
        assert tuple(rec.sensor_size) == (200, 128) and back.size == n
    with h5py.File(out, "r") as f:
        assert json.loads(f.attrs["source"])["width"] == 128  # the file's own description
    np.testing.assert_array_equal(np.sort(back["x"]), np.sort(rows[:, 0]))
    # --roi keeps a region on purpose: the rest is counted in the summary line, not lost silently
    assert main(["convert", str(src), str(tmp_path / "crop.h5"), "--roi", "0,0,128,128"]) == 0
    assert f"{outside:,} events outside it not written" in capsys.readouterr().out


def test_checkpoint_errors_in_our_words_and_trust(tmp_path, capsys):
    import fractions

    import torch

    from dvsstream.models import CheckpointError, create_model, load_model, save_checkpoint
    from dvsstream.models.checkpoints import trust_file

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"hello, not a checkpoint\n")
    cut = tmp_path / "cut.pt"
    model = create_model("spikformer_dvs_tiny", num_classes=10)
    save_checkpoint(model, tmp_path / "ok.pt")
    cut.write_bytes((tmp_path / "ok.pt").read_bytes()[:5000])
    evil = tmp_path / "evil.pt"
    save_checkpoint(model, evil, note=fractions.Fraction(1, 3))
    for path, needle in [(garbage, "not a PyTorch checkpoint"), (tmp_path, "is a folder"),
                         (cut, "damaged or cut-short"), (evil, "pass --trust-checkpoint")]:
        with pytest.raises(CheckpointError) as err:
            load_model(path)
        text = str(err.value)
        assert needle in text and "\n" not in text and "trusted=True" not in text and "Weights only" not in text
    m11 = create_model("spikformer_dvs_tiny", num_classes=11)
    from dvsstream.models import load_checkpoint

    with pytest.raises(CheckpointError, match="a checkpoint for 10 classes of spikformer_dvs_tiny"):
        load_checkpoint(m11, tmp_path / "ok.pt")
    trust_file(evil)
    assert isinstance(load_model(evil), torch.nn.Module)


def test_run_warns_about_another_binning_and_refuses_what_memory_cannot_hold(tmp_path, capsys):
    from dvsstream.io.hdf5 import RecordingWriter

    rng = np.random.default_rng(0)
    n = 2000
    ev = make_events(np.sort(rng.integers(0, 500_000, n)), rng.integers(0, 128, n), rng.integers(0, 128, n),
                     rng.integers(0, 2, n))
    rec = tmp_path / "short.h5"
    with RecordingWriter(rec, (128, 128)) as w:
        w.write(ev)
    assert main(["run", "--source", str(rec), "--bins", "16", "--device", "cpu"]) == 0
    io = capsys.readouterr()
    warnings = [line for line in io.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "--bins 16 differs from the T=8 bins" in warnings[0]
    header = io.out.splitlines()[0]
    assert header.startswith(f"source {rec}") and "T=16 on cpu" in header and "400 ms window" in header
    assert main(["run", "--source", str(rec), "--window-ms", "100000", "--bins", "10000000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "would take about" in err[-1] and "TB of memory" in err[-1] and "fewer --bins" in err[-1]


def test_synth_and_eval_name_a_clip_length_the_model_was_not_trained_on():
    from dvsstream.datasets.spec import FrameSpec
    from dvsstream.synth.dataset import SHIPPED_CLIP_S, shipped_model_mismatch
    from dvsstream.training.evaluate import checkpoint_clip_mismatch as eval_mismatch

    assert SHIPPED_CLIP_S == 0.4 and shipped_model_mismatch(0.4) is None and shipped_model_mismatch(0.42) is None
    line = shipped_model_mismatch(2.0)
    assert "trained on 0.4 s windows" in line and "250 ms here instead of 50 ms" in line and "--duration 0.4" in line
    meta = {"live_binning": {"window_us": 400_000, "n_bins": 8, "hop_us": 50_000}}
    spec = FrameSpec(n_bins=8, mode="time", downsample=2)
    assert eval_mismatch(0.41, spec, meta) is None
    line = eval_mismatch(2.0, spec, meta)
    assert "250 ms here instead of 50 ms" in line and "synth --duration 0.4" in line
    assert eval_mismatch(2.0, FrameSpec(n_bins=8, mode="count"), meta) is None  # count bins: no clock
    assert eval_mismatch(2.0, spec, {}) is None  # no trained window known
