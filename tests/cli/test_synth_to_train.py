"""From ``synth`` to a model: ``train`` / ``eval --root`` take synth's folder, synth prints
commands that run, ``--preset quick`` and its overrides, and the refusal of a split with
no test samples."""

from __future__ import annotations

import contextlib
import io
import json
import shlex
from pathlib import Path

import pytest

from dvsstream.cli import build_parser, main
from dvsstream.training.presets import PRESETS, apply_preset


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _run(argv: list[str]) -> tuple[int, str, str]:
    """``dvsstream ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def _synth(folder: Path, samples_per_class: int, *extra: str) -> str:
    rc, out, err = _run(["synth", "--out", folder, "--samples-per-class", samples_per_class,
                         "--duration", "0.2", *extra])
    assert rc == 0, err
    return out


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: (size, mtime_ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory) -> tuple[Path, str]:
    """A tiny synthetic set (2 per class: 11 train, 11 test) and what synth printed."""
    folder = tmp_path_factory.mktemp("synth") / "S"
    return folder, _synth(folder, 2)


#: tiny sizes for the printed train command (the preset's other values stay)
TINY = ["--epochs", "1", "--batch-size", "4", "--device", "cpu"]


def test_synth_prints_train_and_eval_commands_that_run(synth_set):
    folder, printed = synth_set
    commands = [shlex.split(line) for line in printed.splitlines() if line.startswith("  dvsstream ")]
    assert [c[1] for c in commands] == ["train", "eval"]
    train, evaluate = commands[0][1:], commands[1][1:]
    assert train[train.index("--root") + 1] == str(folder)  # synth's own folder, not S/tonic
    assert "--preset" in train and train[train.index("--preset") + 1] == "quick"
    rc, _, err = _run(train + TINY)
    assert rc == 0, err
    run_dir = Path(train[train.index("--out") + 1])
    result = json.loads((run_dir / "result.json").read_text())
    assert result["train_samples"] == 11 and result["test_samples"] == 11
    assert result["model"] == "spikformer_dvs_tiny" and result["final_epoch"] == 1  # --epochs 1 overrides 30
    cfg = result["train_config"]
    quick = PRESETS["quick"]
    assert cfg["lr"] == quick["lr"] and cfg["warmup_epochs"] == quick["warmup_epochs"]
    assert cfg["mixup_until"] == 0 and cfg["hflip"] is False and cfg["batch_size"] == 4
    assert result["frame_spec"]["mode"] == "time"
    rc, _, err = _run(evaluate + ["--device", "cpu"])
    assert rc == 0, err
    report = json.loads((Path(evaluate[evaluate.index("--out") + 1]) / "report.json").read_text())
    assert report["samples"] == 11


def test_a_folder_inside_a_synth_output_names_the_right_root(synth_set, tmp_path):
    folder, _ = synth_set
    rc, _, err = _run(["train", "--dataset", "dvsgesture", "--root", folder / "hdf5", "--preset", "quick",
                         "--out", tmp_path / "run"])
    assert rc == 2 and not (tmp_path / "run").exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and len(lines[0].replace(str(folder.resolve()), "S")) < 200, err
    assert lines[0].endswith(f"pass --root {folder.resolve()}")


def test_a_folder_with_no_layout_gets_a_short_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("nothing here")
    rc, _, err = _run(["eval", "--dataset", "dvsgesture", "--root", tmp_path / "data", "--checkpoint",
                         _shipped(), "--out", tmp_path / "ev"])
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and len(lines[0].replace(str(tmp_path), "T")) < 300 and "synth" in lines[0], err


def _shipped() -> str:
    from dvsstream.models import shipped_checkpoint

    return str(shipped_checkpoint())


def test_train_refuses_a_set_without_test_samples_unless_asked(tmp_path):
    folder = tmp_path / "S1"
    printed = _synth(folder, 1)
    assert "--no-test" in printed  # synth's printed command already says so
    before = _tree(folder)
    run_dir = tmp_path / "run"
    argv = ["train", "--dataset", "dvsgesture", "--root", folder, "--preset", "quick", "--out", run_dir]
    rc, out, err = _run(argv)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dvsstream: error: "), err
    assert "--no-test" in lines[0] and "--samples-per-class 2" in lines[0]
    assert not run_dir.exists() and _tree(folder) == before  # nothing written anywhere
    rc, out, err = _run(argv + TINY + ["--no-test"])
    assert rc == 0, err
    assert json.loads((run_dir / "result.json").read_text())["test_samples"] == 0


def test_preset_values_and_overrides():
    parser = build_parser()
    base = ["train", "--dataset", "dvsgesture", "--root", "R", "--out", "O"]

    def parsed(*extra: str):
        args = parser.parse_args(base + list(extra))
        apply_preset(args)
        return args

    paper = parsed()  # --preset paper, the default: the papers' recipe as before
    assert (paper.preset, paper.model, paper.epochs, paper.lr, paper.warmup_epochs, paper.mixup_until,
            paper.batch_size, paper.no_hflip, paper.frames) == (
        "paper", "spikformer_dvs", None, 1e-3, 10, 75, 16, False, "count")
    quick = parsed("--preset", "quick")
    assert {k: getattr(quick, k) for k in PRESETS["quick"]} == PRESETS["quick"]
    assert quick.model == "spikformer_dvs_tiny" and quick.mixup_until == 0 and quick.no_hflip is True
    # options given win, even when they equal the paper's default
    mixed = parsed("--preset", "quick", "--lr", "1e-3", "--epochs", "5", "--model", "spikformer_dvs_small",
                   "--mixup-until", "3")
    assert (mixed.lr, mixed.epochs, mixed.model, mixed.mixup_until) == (1e-3, 5, "spikformer_dvs_small", 3)
    assert mixed.warmup_epochs == PRESETS["quick"]["warmup_epochs"]
    assert apply_preset(mixed) == {}  # a second application changes nothing
    assert _run(base + ["--preset", "fast"])[0] == 2  # unknown preset: argparse's one line
