"""``dvsstream teach``: class folders of recordings -> a checkpoint that ``run`` loads as it is.

Recordings are small synthetic HDF5 files (a bar moving one way per class) and pieces of
the real DVS128 recordings in ``../shared/data/real/`` (written as HDF5 copies of time
ranges into tmp folders; skipped when absent). Training runs are one tiny epoch: these
tests check the plumbing and the rules, not the accuracy (measured by hand, see the
closing note of issue 22)."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from dvsstream.errors import DvsstreamError

#: a tiny training run: one epoch of a few windows, a prediction every 200 ms
TINY = ["--epochs", "1", "--epoch-windows", "4", "--batch-size", "4", "--hop-ms", "200", "--device", "cpu"]


def _events(seconds: float, direction: int, seed: int, quiet_after: float | None = None, sensor=(128, 128)):
    """A bar sweeping left-right (``direction`` 0), up-down (1) or a blob (2), about
    15 k events/s; after ``quiet_after`` s only a little noise."""
    from dvsstream.events import EVENT_DTYPE

    rng = np.random.default_rng(seed)
    n = int(15_000 * seconds)
    t = np.sort(rng.integers(0, int(seconds * 1e6), n))
    phase = (t / 5e5) % 1.0
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"], ev["p"] = t, rng.integers(0, 2, n)
    w, h = sensor
    if direction == 0:
        ev["x"] = np.clip((phase * (w - 8)).astype(int) + rng.integers(0, 6, n), 0, w - 1)
        ev["y"] = rng.integers(0, h, n)
    elif direction == 1:
        ev["x"] = rng.integers(0, w, n)
        ev["y"] = np.clip((phase * (h - 8)).astype(int) + rng.integers(0, 6, n), 0, h - 1)
    else:
        ev["x"] = np.clip(w // 2 + rng.normal(0, 6, n).astype(int), 0, w - 1)
        ev["y"] = np.clip(h // 2 + rng.normal(0, 6, n).astype(int), 0, h - 1)
    if quiet_after is not None:
        busy = t < quiet_after * 1e6
        noise = ~busy & (rng.random(n) < 0.003)
        ev = ev[busy | noise]
    return ev


def _write(path: Path, events, sensor=(128, 128)) -> Path:
    from dvsstream.io.hdf5 import RecordingWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with RecordingWriter(path, sensor, "test") as w:
        w.write(events)
    return path


def _seed(name: str, k: int) -> int:
    return zlib.crc32(f"{name}/{k}".encode()) % 1000


def _classes(root: Path, spec: dict[str, list[tuple[float, int]]]) -> Path:
    """``ROOT/<class>/rec<k>.h5`` for ``{class: [(seconds, direction), ...]}``."""
    for c, recs in spec.items():
        for k, (seconds, direction) in enumerate(recs):
            _write(root / c / f"rec{k}.h5", _events(seconds, direction, seed=_seed(c, k)))
    return root


def _digest(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- rules
def test_label_rule_tells_apart_only_what_differs_beyond_case_spaces_and_dashes():
    from dvsstream.training.teach_data import label_key

    assert label_key("Wave") == label_key("wave") == label_key(" WAVE ")
    assert label_key("a b") == label_key("a_b") == label_key("a-b") == label_key("A  _-B")
    assert label_key("thumbs up") != label_key("thumbs down")
    assert label_key("Straße") == label_key("STRASSE")  # case-folded, not just lower-cased


def test_binning_defaults_to_the_models_bins_of_50_ms_and_a_hop_of_one_bin():
    from dvsstream.training.teach_data import teach_binning

    b = teach_binning(8)
    assert (b.window_us, b.n_bins, b.hop_us) == (400_000, 8, 50_000)
    assert teach_binning(8, window_ms=160, bins=4, hop_ms=80).to_dict()["hop_us"] == 80_000
    with pytest.raises(DvsstreamError, match="--hop-ms 30"):
        teach_binning(8, hop_ms=30)
    with pytest.raises(DvsstreamError, match="--window-ms 0.001"):
        teach_binning(8, window_ms=0.001)


def test_a_balanced_draw_takes_as_many_windows_of_every_class_and_changes_each_epoch():
    from dvsstream.training.teach import BalancedDraw

    labels = [0] * 50 + [1] * 3 + [2] * 20
    draw = BalancedDraw(labels, 10, seed=1)
    draw.set_epoch(1)
    first = list(draw)
    assert len(first) == len(draw) == 30
    assert np.bincount(np.asarray(labels)[first]).tolist() == [10, 10, 10]
    assert len({i for i in first if labels[i] == 0}) == 10  # no repeats while a class has enough
    assert list(draw) == first  # reproducible
    draw.set_epoch(2)
    assert list(draw) != first


def test_early_stopping_waits_for_the_minimum_epochs(tmp_path):
    """A patience of 1 would stop at the first epoch without progress; ``min_epochs``
    keeps it training (a few held-out windows judge noisily); the checkpoint says so."""
    from dvsstream.training.teach import TeachConfig, TeachTrainer, teach

    rule = TeachTrainer.__new__(TeachTrainer)  # the rule alone: stalled for 3 epochs, a patience of 1
    rule.test_loader, rule.patience, rule.min_epochs, rule.since_best = object(), 1, 4, 3
    assert not rule.should_stop(3) and rule.should_stop(4)
    rule.min_epochs = 0
    assert rule.should_stop(2)
    root = _classes(tmp_path / "root", {"left": [(3.0, 0)], "right": [(3.0, 1)]})
    cfg = TeachConfig(root=root, out=tmp_path / "m.pt", epochs=4, patience=1, min_epochs=4, epoch_windows=4,
                      batch_size=4, hop_ms=200, device="cpu", progress=False)
    result = teach(cfg, say=lambda s: None)
    assert result.train.final_epoch == 4 and result.train.complete
    meta = torch.load(tmp_path / "m.pt", weights_only=True)["meta"]
    assert meta["epochs_run"] == 4 and meta["recipe"]["min_epochs"] == 4 and meta["recipe"]["patience"] == 1


# ---------------------------------------------------------------- windows
def test_windows_are_the_live_binners_and_the_last_20_percent_is_held_out(tmp_path):
    from dvsstream.binning.geometry import live_binning
    from dvsstream.training.teach_data import (
        cut_windows,
        find_classes,
        read_classes,
        teach_binning,
    )

    root = _classes(tmp_path / "root", {"left": [(3.0, 0)], "down": [(3.0, 1)]})
    classes = find_classes(root)
    read_classes(classes, say=lambda s: None)
    base = teach_binning(8, hop_ms=100)
    w = cut_windows(classes, base, (64, 64))
    assert w.train.classes == ["down", "left"]
    path = str(root / "left" / "rec0.h5")
    ev = _events(3.0, 0, seed=_seed("left", 0))
    cut = ev["t"][0] + 0.8 * (ev["t"][-1] - ev["t"][0])
    train = [i for i, x in enumerate(w.train.windows) if x["path"] == path]
    held = [i for i, x in enumerate(w.held.windows) if x["path"] == path]
    assert train and held
    assert max(w.train.windows[i]["t_end"] for i in train) <= cut <= min(w.held.windows[i]["t_start"] for i in held)
    assert {w.train.targets[i] for i in train} == {1}
    # every window is the one the live binner emits for the same span (what `run` classifies)
    live = live_binning(base, (64, 64), {}, (128, 128)).binner((128, 128))
    emitted = {(x.t_start, x.t_end): x.frames for x in live((ev,), flush=False)}
    for ws, indices in ((w.train, train), (w.held, held)):
        for i in indices[:3]:
            win = ws.windows[i]
            assert torch.equal(ws[i][0], torch.from_numpy(emitted[(win["t_start"], win["t_end"])]))


def test_quiet_windows_become_the_nothing_class(tmp_path):
    from dvsstream.training.teach_data import (
        class_names,
        cut_windows,
        find_classes,
        read_classes,
        teach_binning,
    )

    root = tmp_path / "root"
    _write(root / "left" / "a.h5", _events(6.0, 0, 1, quiet_after=3.0))
    _write(root / "blob" / "a.h5", _events(6.0, 2, 2, quiet_after=3.0))
    classes = find_classes(root)
    read_classes(classes, say=lambda s: None)
    names = class_names(classes, True, "empty")
    assert names == ["blob", "left", "empty"]
    w = cut_windows(classes, teach_binning(8, hop_ms=100), (64, 64), background_from_quiet=True,
                    background_name="empty")
    counts = {k: sum(1 for y in w.train.targets if y == k) for k in range(3)}
    assert all(counts.values())
    for ws in (w.train, w.held):
        for x, y in zip(ws.windows, ws.targets):
            quiet = w.quiet[x["path"]]
            assert (y == 2) == (x["events"] < quiet)


# ---------------------------------------------------------------- the command, end to end
def test_teach_then_run_prints_the_new_class_names(tmp_path, capsys):
    from dvsstream.cli import main
    from dvsstream.stream.pipeline import load_classifier_model

    root = _classes(tmp_path / "root", {"Left swipe": [(3.0, 0)], "down": [(2.0, 1), (1.5, 1)],
                                        "_background": [(2.5, 2)]})
    (root / "notes.txt").write_text("not a recording")
    (root / "down" / "broken.aedat4").write_bytes(b"#!AER-DAT4.0\r\n" + b"\x00" * 100)
    before = _digest(root)
    out = tmp_path / "model.pt"
    assert main(["teach", str(root), "--out", str(out), "--skip-unreadable"] + TINY) == 0
    text = capsys.readouterr()
    assert "broken.aedat4" in text.out and "starting from the shipped pre-trained encoder" in text.out
    assert _digest(root) == before  # inputs untouched
    ckpt = torch.load(out, weights_only=True)
    meta = ckpt["meta"]
    assert meta["classes"] == ["down", "Left swipe", "nothing"]
    assert meta["live_binning"] == {"window_us": 400_000, "n_bins": 8, "hop_us": 200_000}
    assert meta["kind"] == "teach" and meta["skipped"][0]["path"].endswith("broken.aedat4")
    assert [r["seconds"] for r in meta["recordings"]["down"]] == pytest.approx([2.0, 1.5], abs=0.01)
    report = json.loads((tmp_path / "model_report" / "report.json").read_text())
    assert set(report["per_class_accuracy"]) == {"down", "Left swipe", "nothing"}
    assert np.asarray(report["confusion_matrix"]).sum() == report["samples"] > 0
    for name in ("confusion.png", "per_class_accuracy.png", "confidence.png", "windows.csv", "log.csv"):
        assert (tmp_path / "model_report" / name).is_file()
    assert not list(tmp_path.glob(".teach-*"))  # the trainer's own files are gone
    loaded = load_classifier_model(str(out), device="cpu")
    assert loaded.class_names == ["down", "Left swipe", "nothing"] and loaded.binning.hop_us == 200_000
    assert main(["run", "--checkpoint", str(out), "--source", str(root / "Left swipe" / "rec0.h5"),
                 "--device", "cpu"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("t =")]
    assert len(lines) > 5 and all(any(c in ln for c in ("down", "Left swipe", "nothing")) for ln in lines)
    # the same command again: refused (the checkpoint exists), nothing changed
    digest = _digest(tmp_path)
    assert main(["teach", str(root), "--out", str(out)] + TINY) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert _digest(tmp_path) == digest


def _real_pieces(root: Path, real_data, pieces: dict[str, tuple[str, float, float]]) -> dict[str, Path]:
    """HDF5 copies of time ranges (fractions of the span) of real recordings:
    ``{class: (file, start, end)}`` -> ``ROOT/<class>/piece.h5``."""
    from dvsstream.datasets.recordings import read_recording

    written = {}
    for name, (file, a, b) in pieces.items():
        ev, sensor, _ = read_recording(real_data(file))
        t0, t1 = int(ev["t"][0]), int(ev["t"][-1])
        keep = (ev["t"] >= t0 + a * (t1 - t0)) & (ev["t"] < t0 + b * (t1 - t0))
        written[name] = _write(root / name / "piece.h5", ev[keep], sensor)
    return written


def test_teach_on_real_recordings_and_run_on_another_part(tmp_path, real_data, capsys):
    from dvsstream.cli import main

    root = tmp_path / "root"
    _real_pieces(root, real_data, {"walking": ("neal_walking.aedat", 0.0, 0.7),
                                   "clamp": ("cam255_right_clamp_test1.aedat", 0.0, 0.4),
                                   "hand": ("dvSave-2024_06_20_15_59_41.aedat4", 0.0, 0.7)})
    other = _real_pieces(tmp_path / "other", real_data, {"walking": ("neal_walking.aedat", 0.7, 1.0)})
    out = tmp_path / "real.pt"
    assert main(["teach", str(root), "--out", str(out), "--report-dir", str(tmp_path / "rep"), "--from-scratch"]
                + TINY) == 0
    assert "from scratch (--from-scratch" in capsys.readouterr().out
    assert torch.load(out, weights_only=True)["meta"]["classes"] == ["clamp", "hand", "walking"]
    assert main(["run", "--checkpoint", str(out), "--source", str(other["walking"]), "--device", "cpu"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("t =")]
    assert lines and all(("walking" in ln and "clamp" in ln and "hand" in ln) for ln in lines)


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing written
def _refused(argv, capsys, tmp_path, *words) -> str:
    from dvsstream.cli import main

    before = _digest(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("dvsstream: error:"), err
    for w in words:
        assert w in err, err
    assert _digest(tmp_path) == before
    assert not list(tmp_path.rglob("*.pt")) or all(p.name == "keep.pt" for p in tmp_path.rglob("*.pt"))
    return err


@pytest.mark.parametrize("case", ["empty folder", "single class", "short class", "unreadable", "case collision",
                                  "space collision", "loose recording", "reserved folder", "nothing collision",
                                  "no quiet"])
def test_bad_class_folders_are_refused_in_one_line(tmp_path, capsys, case):
    root = tmp_path / "root"
    extra: list[str] = []
    if case == "empty folder":
        _classes(root, {"a": [(3.0, 0)]})
        (root / "b").mkdir()
        (root / "b" / "readme.md").write_text("empty")
        words = [str(root / "b"), "holds no recording"]
    elif case == "single class":
        _classes(root, {"only": [(3.0, 0)]})
        words = ["1 class ('only')", "at least two"]
    elif case == "short class":
        _classes(root, {"a": [(3.0, 0)], "b": [(1.0, 1), (0.8, 1)]})
        words = [str(root / "b"), "1.80 s of events", "at least 2 s"]
    elif case == "unreadable":
        _classes(root, {"a": [(3.0, 0)], "b": [(3.0, 1)]})
        (root / "b" / "broken.aedat4").write_bytes(b"#!AER-DAT4.0\r\n" + b"\x00" * 100)
        words = ["broken.aedat4", "--skip-unreadable"]
    elif case == "case collision":
        _classes(root, {"Wave": [(3.0, 0)], "wave": [(3.0, 1)]})
        words = ["'Wave' and 'wave'", "same label 'wave'"]
    elif case == "space collision":
        _classes(root, {"a b": [(3.0, 0)], "a_b": [(3.0, 1)], "c": [(3.0, 2)]})
        words = ["'a b' and 'a_b'", "same label 'a_b'"]
    elif case == "loose recording":
        _classes(root, {"a": [(3.0, 0)], "b": [(3.0, 1)]})
        _write(root / "stray.h5", _events(1.0, 0, 3))
        words = ["stray.h5", "has no class"]
    elif case == "reserved folder":
        _classes(root, {"a": [(3.0, 0)], "b": [(3.0, 1)], "_tmp": [(3.0, 1)]})
        words = ["_tmp", "reserved"]
    elif case == "nothing collision":
        _classes(root, {"Nothing": [(3.0, 0)], "_background": [(3.0, 2)]})
        words = ["'Nothing'", "\"nothing\" class", "same label 'nothing'"]
    else:  # --background-from-quiet on recordings that are never quiet
        _classes(root, {"a": [(3.0, 0)], "b": [(3.0, 1)]})
        extra = ["--background-from-quiet"]
        words = ["--background-from-quiet", "quiet windows", "_background"]
    _refused(["teach", str(root), "--out", str(tmp_path / "m.pt")] + TINY + extra, capsys, tmp_path, *words)


def test_bad_outputs_are_refused_and_force_lets_them_be_replaced(tmp_path, capsys):
    from dvsstream.cli import build_parser
    from dvsstream.cli.validate import check_arguments

    root = _classes(tmp_path / "root", {"a": [(3.0, 0)], "b": [(3.0, 1)]})
    keep = tmp_path / "keep.pt"
    keep.write_bytes(b"the user's file")
    _refused(["teach", str(root), "--out", str(keep)] + TINY, capsys, tmp_path, str(keep), "already exists", "--force")
    _refused(["teach", str(root), "--out", str(tmp_path)] + TINY, capsys, tmp_path, "folder")
    _refused(["teach", str(root), "--out", str(root / "a" / "m.pt")] + TINY, capsys, tmp_path, "inside ROOT")
    _refused(["teach", str(root), "--out", str(tmp_path / "m.pt"), "--report-dir", str(root / "rep")] + TINY, capsys,
             tmp_path, "inside ROOT")
    _refused(["teach", str(tmp_path / "nope"), "--out", str(tmp_path / "m.pt")] + TINY, capsys, tmp_path,
             "no such folder")
    (tmp_path / "m_report").mkdir()
    (tmp_path / "m_report" / "report.json").write_text("{}")
    _refused(["teach", str(root), "--out", str(tmp_path / "m.pt")] + TINY, capsys, tmp_path, "m_report",
             "already exists")
    _refused(["teach", str(root), "--out", str(tmp_path / "m.pt"), "--init", str(keep), "--from-scratch", "--force"]
             + TINY, capsys, tmp_path, "--init and --from-scratch")
    # --force: the checks pass (the files are replaced only once the model is taught)
    check_arguments(build_parser().parse_args(["teach", str(root), "--out", str(keep), "--force"] + TINY))
    assert keep.read_bytes() == b"the user's file"


def test_an_unreadable_recording_is_left_out_with_skip_unreadable(tmp_path):
    from dvsstream.training.teach_data import find_classes, read_classes

    root = _classes(tmp_path / "root", {"a": [(3.0, 0)], "b": [(3.0, 1)]})
    (root / "b" / "broken.aedat4").write_bytes(b"#!AER-DAT4.0\r\n" + b"\x00" * 100)
    classes = find_classes(root)
    said: list[str] = []
    skipped = read_classes(classes, skip_unreadable=True, say=said.append)
    assert [Path(p).name for p, _ in skipped] == ["broken.aedat4"] and "broken.aedat4" in said[0]
    assert [p.name for p in classes[1].files] == ["rec0.h5"] and classes[1].total_seconds == pytest.approx(3.0, 0.01)


def test_one_class_and_the_quiet_nothing_class_are_two(tmp_path):
    from dvsstream.training.teach_data import (
        check_class_names,
        class_names,
        find_classes,
    )

    root = _classes(tmp_path / "root", {"wave": [(3.0, 0)]})
    classes = find_classes(root)
    names = class_names(classes, True, "empty scene")
    assert names == ["wave", "empty scene"]
    check_class_names(classes, root, names[1:])  # two classes: taught
    with pytest.raises(DvsstreamError, match="1 class"):
        check_class_names(classes, root)
    with pytest.raises(DvsstreamError, match="--background-name 'WAVE' is the same label as the class 'wave'"):
        check_class_names(classes, root, ["WAVE"])
