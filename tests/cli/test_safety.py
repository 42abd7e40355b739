"""Issue 24, items 1 and 2: no write destroys a file, no option exhausts the machine.

Every example of the issue's "Lost data" and "The machine exhausted" lists, run as a new
user would (in-process through :func:`dvsstream.cli.main`, the working folder and HOME in
a temporary folder): a refused command exits with status 2 and one line on stderr, and
every file of the folder keeps its checksum (nothing replaced, nothing created). The
sizes that are fine but larger than the data (``--batch-size``) or the machine
(``--workers``) are used at what fits, with a one-line note.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from cli_user import as_a_user_in  # tests/
from dvsstream.cli import main
from dvsstream.cli.validate import OWN_OUTPUTS, cpu_count
from dvsstream.errors import DvsstreamError

SHIPPED = Path(__file__).resolve().parents[2] / "dvsstream" / "data" / "gesture_tiny.pt"


# ------------------------------------------------------------------ the folder
@pytest.fixture
def place(tmp_path, monkeypatch):
    """A user's folder: a recording, a second recording, notes, a run report, the
    window's settings, a project folder with a README and an empty dataset root; the
    working folder and HOME."""
    from dvsstream.events import make_events
    from dvsstream.gui import state
    from dvsstream.io.hdf5 import RecordingWriter

    rng = np.random.default_rng(0)
    n = 2000
    ev = make_events(np.sort(rng.integers(0, 200_000, n)), rng.integers(0, 128, n), rng.integers(0, 128, n),
                     rng.integers(0, 2, n))
    for name in ("rec.h5", "other.h5"):
        with RecordingWriter(tmp_path / name, (128, 128)) as w:
            w.write(ev)
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "report.json").write_text(json.dumps({"predictions": [], "source": "rec.h5", "checkpoint": None}))
    state.save_settings(state.Settings(speed=2.0), tmp_path / "settings.json")
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "README.md").write_text("a project\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "home").mkdir()
    as_a_user_in(tmp_path, monkeypatch)
    return tmp_path


def _checksums(top: Path) -> dict[str, str]:
    """Every file and folder under ``top`` (HOME's config aside) with its sha256."""
    found = {}
    for folder, dirs, files in os.walk(top):
        for d in dirs:
            found[os.path.relpath(os.path.join(folder, d), top)] = "folder"
        for f in files:
            path = os.path.join(folder, f)
            found[os.path.relpath(path, top)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return found


def _call(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _refused(top: Path, argv: list[str], needle: str) -> str:
    """``dvsstream ARGV`` exits 2 with one line naming ``needle``, and changes no file."""
    before = _checksums(top)
    code, out, err = _call(argv)
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and lines[0].startswith("dvsstream: error: ") and needle in lines[0], (argv, err)
    assert "Traceback" not in err + out
    assert _checksums(top) == before, f"{argv}: files changed"
    return lines[0]


# ------------------------------------------------------------------ lost data
@pytest.mark.parametrize("argv, needle", [
    # gui --settings replaced notes and a recording with a settings JSON, exit 0
    (["gui", "--settings", "notes.txt"], "notes.json"),
    (["gui", "--settings", "rec.h5"], "rec.json"),
    (["gui", "--settings", "report.json"], "not a dvsstream settings file"),
    (["gui", "--settings", "rec.h5", "--source", "other.h5", "--exit-after", "1"], ".json"),
    # a report into a recording's name, --force or not
    (["run", "--source", "rec.h5", "--json-out", "other.h5", "--force"], "other.json"),
    (["run", "--source", "rec.h5", "--json-out", "other.h5"], "JSON report"),
    # outputs with the wrong suffix
    (["convert", "rec.h5", "out.txt"], "out.h5"),
    (["convert", "rec.h5", "notes.txt", "--force"], "HDF5 recording"),
    (["convert", "rec.h5", "out"], "no suffix"),
    (["record", "--source", "rec.h5", "--out", "x.mp4"], "x.h5"),
    (["record", "--source", "rec.h5", "--out", "notes.txt", "--force"], "notes.h5"),
    (["gui", "--screenshot", "s.txt"], "s.png"),
    (["gui", "--screenshot", "rec.h5", "--force"], "PNG picture"),
    (["gui", "--export-clip", "other.h5", "--force"], "MP4 or GIF"),
    (["render", "rec.h5", "--out", "other.h5", "--force"], "MP4 or GIF"),
    (["eval", "--dataset", "dvsgesture", "--root", "data", "--checkpoint", str(SHIPPED), "--out", "res",
      "--export", "notes.txt", "--force"], "notes.pt"),
    # --out DIR holding other files
    (["synth", "--out", "proj", "--samples-per-class", "1"], "README.md"),
    (["synth", "--out", ".", "--samples-per-class", "1"], "not an earlier synth output"),
    (["train", "--dataset", "dvsgesture", "--root", "data", "--out", "proj"], "not an earlier train output"),
    (["eval", "--dataset", "dvsgesture", "--root", "data", "--checkpoint", str(SHIPPED), "--out", "proj"],
     "not an earlier eval output"),
])
def test_lost_data_examples_are_refused(place, argv, needle):
    line = _refused(place, argv, needle)
    assert "--force" not in line or "--out" in line  # a suffix is never a matter of --force


def test_settings_file_of_the_window_is_still_replaced(place):
    """A real settings file (and a new .json name) pass the check; the window's own
    save replaces only a settings file, whoever calls it."""
    from dvsstream.cli.validate import check_settings_file
    from dvsstream.gui import state

    check_settings_file(place / "settings.json")
    check_settings_file(place / "new.json")
    legacy = place / "legacy.json"  # a file from before the marker: only Settings fields
    legacy.write_text(json.dumps(state.Settings(speed=3.0).to_dict()))
    check_settings_file(legacy)
    assert state.save_settings(state.Settings(speed=1.5), legacy) == legacy
    assert state.load_settings(legacy).speed == 1.5
    report = (place / "report.json").read_bytes()
    assert state.save_settings(state.Settings(), place / "report.json") is None  # not settings: left alone
    assert state.reset_settings(place / "report.json") is None
    assert (place / "report.json").read_bytes() == report and not (place / "report.json.bak").exists()


def test_force_writes_beside_other_files_and_own_output_is_reused(place):
    """``--force`` lets ``--out`` be a folder holding other files; a folder holding a
    verb's own earlier output (or only its names) is reused without it."""
    from dvsstream.cli.validate import check_output_folder

    check_output_folder(place / "proj", own="synth", force=True)
    for verb, (marker, names) in OWN_OUTPUTS.items():
        folder = place / f"{verb}-out"
        folder.mkdir()
        for name in names:
            (folder / name).write_text("x")
        check_output_folder(folder, own=verb)
        (folder / "notes.txt").write_text("later")  # a user's file beside the marker
        check_output_folder(folder, own=verb)
        (folder / marker).unlink()
        with pytest.raises(DvsstreamError, match="notes.txt"):
            check_output_folder(folder, own=verb)
    cache = place / "eval-out" / "cache"  # the command's own --cache-dir and --export inside --out do not count
    (place / "eval-out" / "notes.txt").unlink()
    cache.mkdir()
    (place / "eval-out" / "model.pt").write_text("x")
    check_output_folder(place / "eval-out", own="eval", keep=[cache, "eval-out/model.pt"])


# ------------------------------------------------------------------ the machine exhausted
def test_synth_of_a_billion_samples_is_refused_before_anything_is_made(place):
    line = _refused(place, ["synth", "--out", "set", "--samples-per-class", "1000000000"], "--samples-per-class")
    assert "11,000,000,000 samples" in line and "TB of memory" in line
    assert not (place / "set").exists()
    _refused(place, ["synth", "--out", "set", "--samples-per-class", "1", "--duration", "1e9"], "--duration")
    line = _refused(place, ["synth", "--out", "data", "--samples-per-class", "1e12", "--workers", "64"], "memory")
    assert not any((place / "data").iterdir())


def test_synth_estimate_is_near_a_real_set(place):
    """The disk estimate is within a factor of 2 above what a small real set takes (so
    that a set that fits is not refused, nor one that does not accepted)."""
    from dvsstream.synth.dataset import generate_gesture_set, set_resources

    summary = generate_gesture_set(place / "set", samples_per_class=1, duration_s=0.2, progress=False)
    written = sum(p.stat().st_size for p in (place / "set").rglob("*") if p.is_file())
    _, disk = set_resources(1, 0.2)
    assert written <= disk <= 2.5 * written, (written, disk, summary["events"])


def test_batch_size_beyond_memory_is_refused_with_the_amount():
    """A batch whose estimated step needs more than the memory is refused in one line
    with the amount; one that fits is kept; one larger than the data is clamped."""
    from dvsstream.heap import available_memory_bytes
    from dvsstream.models import get_config
    from dvsstream.training.memory import estimate_sample_bytes, fit_batch

    cfg = get_config("spikformer_dvs")
    notes: list[str] = []
    assert fit_batch(10**9, 7, get_config("spikformer_dvs_tiny"), True, "training", notes.append) == 7
    assert notes == ["note: --batch-size 1000000000 is more than the 7 training samples; using 7"]
    have = available_memory_bytes()
    if have is None:
        pytest.skip("available memory unknown here")
    too_many = int(have / estimate_sample_bytes(cfg, True)) + 10
    with pytest.raises(DvsstreamError, match=r"--batch-size \d+ .* of memory but .* is available; use a smaller"):
        fit_batch(too_many, 10**9, cfg, True, "training")
    assert fit_batch(1, 10**9, cfg, False, "test") == 1


def test_estimate_of_a_training_step_is_near_the_measured_one():
    """The estimate before any work against what autograd keeps, measured: the saved
    activations are half a step's memory or less, and the estimate is at most 3x them."""
    import torch

    from dvsstream.models import create_model
    from dvsstream.training.memory import estimate_sample_bytes, measure_step_memory

    model = create_model("spikformer_dvs_tiny", num_classes=11)
    c = model.config
    frames = torch.rand(2, c.T, 2, *c.img_size).round()
    saved = measure_step_memory(model, frames).saved_bytes / 2
    assert 1.2 * saved <= estimate_sample_bytes(c, True) <= 3.0 * saved


def test_workers_are_capped_at_the_cpus_with_a_note(place, capsys):
    import argparse

    from dvsstream.cli.validate import cap_workers

    args = argparse.Namespace(workers=1000)
    cap_workers(args)
    assert args.workers == cpu_count()
    err = capsys.readouterr().err
    assert err == f"note: --workers 1000 is more than the {cpu_count()} CPU(s) this process may use; using {cpu_count()}\n"
    args = argparse.Namespace(workers=0)
    cap_workers(args)
    assert args.workers == 0 and capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """A synthetic set of 22 samples (11 train, 11 test) of 0.2 s, in tonic's layout."""
    from dvsstream.synth.dataset import generate_gesture_set

    root = tmp_path_factory.mktemp("tinyset")
    generate_gesture_set(root / "set", samples_per_class=2, duration_s=0.2, formats=("tonic",), progress=False)
    return root / "set" / "tonic"


def test_eval_with_a_huge_batch_and_a_thousand_workers_runs_at_what_fits(tiny_set, place):
    """``eval --workers 1000 --batch-size 1e9`` (the issue's 0.3 samples/s, and a batch
    past the data): both are used at what fits, one note each, and the report written
    (only names :data:`OWN_OUTPUTS` knows)."""
    argv = ["eval", "--dataset", "dvsgesture", "--root", str(tiny_set), "--checkpoint", str(SHIPPED),
            "--out", "res", "--workers", "1000", "--batch-size", "1e9", "--cache-dir", "cache"]
    code, _, err = _call(argv)
    assert code == 0, err
    assert f"note: --workers 1000 is more than the {cpu_count()} CPU(s)" in err
    assert "note: --batch-size 1000000000 is more than the 11 test samples; using 11" in err
    assert (place / "res" / "report.json").is_file()
    assert set(os.listdir(place / "res")) <= OWN_OUTPUTS["eval"][1]


def test_train_with_a_huge_batch_is_clamped_and_resumes_into_its_own_folder(tiny_set, place):
    """``train --batch-size 1e9`` trains with the whole (small) set as one batch and a
    note; ``--resume`` into its own folder keeps working; what it wrote is what
    :data:`OWN_OUTPUTS` knows."""
    argv = ["train", "--dataset", "dvsgesture", "--root", str(tiny_set), "--model", "spikformer_dvs_tiny",
            "--epochs", "1", "--warmup-epochs", "0", "--batch-size", "1e9", "--limit", "3", "--no-hflip",
            "--out", "run", "--cache-dir", "cache"]
    code, out, err = _call(argv)
    assert code == 0, err
    assert "note: --batch-size 1000000000 is more than the 3 training samples; using 3" in out + err
    assert set(os.listdir(place / "run")) <= OWN_OUTPUTS["train"][1]
    code, _, err = _call(argv[:argv.index("--epochs") + 1] + ["2"] + argv[argv.index("--epochs") + 2:]
                           + ["--resume"])
    assert code == 0, err
    _refused(place, ["train", "--dataset", "dvsgesture", "--root", str(tiny_set), "--out", "proj"], "README.md")


def test_synth_writes_only_what_it_knows_and_reruns_into_its_own_folder(tiny_set):
    """What synth writes is what :data:`OWN_OUTPUTS` knows (the names ``--out`` accepts)."""
    folder = tiny_set.parent
    assert set(os.listdir(folder)) <= OWN_OUTPUTS["synth"][1]
    assert OWN_OUTPUTS["synth"][0] in os.listdir(folder)
