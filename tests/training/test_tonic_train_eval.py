"""``train`` then ``eval`` with ``--dataset tonic:NMNIST`` on an N-MNIST folder written in
tonic's layout (ATIS ``.bin`` files, tests/tonic_writer.py), end to end through the command
line, and the one-line refusals of a bad ``--dataset`` or folder."""

from __future__ import annotations

import json
import logging

import pytest

from tonic_writer import make_nmnist

from dvsstream.cli import main

tonic = pytest.importorskip("tonic")


def _one_line_error(capsys, needle: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dvsstream: error:") and needle in lines[0], err
    return lines[0]


@pytest.mark.slow
def test_train_then_eval_on_a_tonic_nmnist_folder(tmp_path, capsys, caplog):
    data = make_nmnist(tmp_path / "data", train=2, test=1)
    out, report_dir = tmp_path / "run", tmp_path / "report"
    common = ["--dataset", "tonic:nmnist", "--root", str(data), "--device", "cpu", "--cache-dir", str(tmp_path / "c")]
    argv = ["train", *common, "--model", "spikformer_dvs_tiny", "--epochs", "2", "--batch-size", "5",
            "--warmup-epochs", "1", "--out", str(out)]
    with caplog.at_level(logging.WARNING, logger="dvsstream.datasets"):
        assert main(argv) == 0
    assert "final-epoch test accuracy" in capsys.readouterr().out
    partial = [r.getMessage() for r in caplog.records]  # a partial folder: one line per split
    assert len(partial) == 2 and "found 20 .bin files" in partial[0] and "found 10 .bin files" in partial[1]
    result = json.loads((out / "result.json").read_text())
    assert result["dataset"] == "tonic:NMNIST" and result["classes"] == list(tonic.datasets.NMNIST.classes)
    assert result["train_samples"] == 20 and result["test_samples"] == 10 and result["epochs"] == 2
    assert result["split_rule"].startswith("tonic's own train / test split")
    assert result["frame_spec"]["sensor_size"] == [34, 34] and result["frame_spec"]["roi"] == [-15, -15, 64, 64]

    assert main(["eval", *common, "--checkpoint", str(out / "best.pt"), "--out", str(report_dir)]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    assert report["dataset"] == "tonic:NMNIST" and report["split"] == "test" and report["samples"] == 10
    assert report["classes"] == list(tonic.datasets.NMNIST.classes) and report["layout"] == "tonic NMNIST"
    assert report["split_rule"].startswith("tonic's own train / test split")
    assert report["frame_spec"]["sensor_size"] == [34, 34] and report["frame_spec"]["source"] == "checkpoint meta"
    assert 0.0 <= report["accuracy"] <= 1.0 and report["skipped"]["count"] == 0
    capsys.readouterr()

    # --resize 64x64 enlarges the 34x34 sensor instead of centring it in zeros
    big = tmp_path / "run64"
    assert main([a if a != str(out) else str(big) for a in argv] + ["--resize", "64x64", "--epochs", "1"]) == 0
    spec = json.loads((big / "result.json").read_text())["frame_spec"]
    assert spec["roi"] == [0, 0, 34, 34] and spec["size"] == [64, 64]
    capsys.readouterr()

    # a folder half there, or missing: one line, exit 2, nothing written
    half = make_nmnist(tmp_path / "half", train=1, test=1, digits=[d for d in "0123456789" if d != "5"])
    bad_out = tmp_path / "never"
    assert main(["train", "--dataset", "tonic:NMNIST", "--root", str(half), "--model", "spikformer_dvs_tiny",
                 "--device", "cpu", "--out", str(bad_out)]) == 2
    _one_line_error(capsys, "half there: 9 of 10 classes have files, none for 5 - five")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", "--dataset", "tonic:NMNIST", "--root", str(empty), "--checkpoint", str(out / "best.pt"),
                 "--device", "cpu", "--out", str(bad_out)]) == 2
    _one_line_error(capsys, f'tonic.datasets.NMNIST(save_to="{empty}", train=False) downloads it')
    assert not bad_out.exists() and list(empty.iterdir()) == []


@pytest.mark.parametrize("name, needle", [
    ("tonic:SHD", "tonic:SHD is an audio set"),
    ("tonic:ssc", "not a vision classification set"),
    ("tonic:MNIST", "NAME one of NMNIST, NCALTECH101, CIFAR10DVS, DVSGesture, ASLDVS, POKERDVS, DVSLip"),
    ("nmnist", "did you mean tonic:NMNIST"),
])
@pytest.mark.parametrize("verb", ["train", "eval"])
def test_a_bad_dataset_name_is_one_line(tmp_path, capsys, verb, name, needle):
    argv = [verb, "--dataset", name, "--root", str(tmp_path), "--out", str(tmp_path / "out")]
    argv += ["--checkpoint", str(tmp_path / "x.pt")] if verb == "eval" else []
    assert main(argv) == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_binned_on_another_sensor_is_refitted_with_a_warning(capsys):
    """eval of a checkpoint trained on 128x128 frames against tonic:NMNIST's 34x34 sensor:
    the bins and convention are kept, the geometry is the dataset sensor's, a warning says so."""
    from dvsstream.datasets.spec import FrameSpec
    from dvsstream.models import create_model
    from dvsstream.training.evaluate import _frame_spec

    model = create_model("spikformer_dvs_tiny", num_classes=10)
    meta = {"frame_spec": FrameSpec(n_bins=8, mode="time", downsample=2).to_dict()}
    spec, source = _frame_spec(model, meta, sensor_size=(34, 34))
    assert (spec.n_bins, spec.mode, spec.sensor_size, spec.roi, spec.size) == (8, "time", (34, 34),
                                                                           (-15, -15, 64, 64), (64, 64))
    assert "re-fitted from its 128x128 sensor" in source
    assert "binned on a 128x128 sensor but this dataset's is 34x34" in capsys.readouterr().err
    enlarged, _ = _frame_spec(model, meta, resize=(64, 64), sensor_size=(34, 34))
    assert (enlarged.roi, enlarged.size) == ((0, 0, 34, 34), (64, 64)) and "warning" in capsys.readouterr().err
    same, source = _frame_spec(model, {"frame_spec": spec.to_dict()}, sensor_size=(34, 34))
    assert same == spec and source == "checkpoint meta" and capsys.readouterr().err == ""
