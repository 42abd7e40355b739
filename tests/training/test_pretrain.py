"""Masked pre-training (dvsstream.models.masked, dvsstream.training.pretrain), fine-tuning
across tasks (dvsstream.models.transfer, ``train --init``), few labels and the linear probe,
and ``dvsstream pretrain`` end to end on a folder of recordings."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dvsstream.errors import DvsstreamError
from dvsstream.models import create_model
from dvsstream.models.checkpoints import CheckpointError
from dvsstream.models.masked import (
    DecoderConfig,
    MaskedAutoencoder,
    patchify,
    pixel_mask,
    random_tube_masks,
    unpatchify,
)
from dvsstream.models.transfer import init_encoder
from dvsstream.training.few_labels import choose_labelled
from dvsstream.training.pretrain import PretrainTrainer
from test_train import MICRO, SyntheticFrames, micro_model, small_config  # noqa: F401  (tests/training)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def micro_mae(target: str = "window", seed: int = 0) -> MaskedAutoencoder:
    torch.manual_seed(seed)
    encoder = create_model("spikformer_dvs_tiny", num_classes=0, **MICRO)
    return MaskedAutoencoder(encoder, DecoderConfig(dim=32, depth=1, heads=2, target=target))


# ---------------------------------------------------------------- masking and targets
def test_tube_masks_mask_exactly_the_ratio_and_follow_the_seed():
    m = random_tube_masks(5, 64, 0.75, torch.Generator().manual_seed(3))
    assert m.shape == (5, 64) and m.dtype == torch.bool
    assert m.sum(1).tolist() == [48] * 5
    assert torch.equal(m, random_tube_masks(5, 64, 0.75, torch.Generator().manual_seed(3)))
    assert not torch.equal(m[0], m[1])  # each sample its own patches
    assert random_tube_masks(2, 4, 0.01).sum(1).tolist() == [1, 1]  # at least one, at most N - 1
    assert random_tube_masks(2, 4, 0.99).sum(1).tolist() == [3, 3]


def test_patchify_is_row_major_over_the_token_grid_and_inverts():
    x = torch.arange(2 * 3 * 2 * 8 * 8, dtype=torch.float32).reshape(2, 3, 2, 8, 8)
    p = patchify(x, (2, 2))
    assert p.shape == (2, 4, 3 * 2 * 4 * 4)
    # token 1 is the top-right 4x4 patch of every step and polarity
    assert torch.equal(p[0, 1].reshape(3, 2, 4, 4), x[0, :, :, :4, 4:])
    assert torch.equal(unpatchify(p, (2, 2), (3, 2), (8, 8)), x)
    masks = torch.tensor([[False, True, False, False]])
    pm = pixel_mask(masks, (2, 2), (8, 8))[0, 0, 0]
    assert pm[:4, 4:].eq(1).all() and pm.sum() == 16


def test_no_event_of_a_masked_patch_reaches_the_encoder():
    mae = micro_mae()  # training mode: batch statistics, so the untrained encoder fires
    g = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((2, 4, 2, 32, 32), 0.5), generator=g)
    masks = random_tube_masks(2, mae.num_tokens, 0.75, g)
    y = x.clone()
    pm = pixel_mask(masks, mae.encoder.grid, (32, 32)).expand_as(y).bool()
    y[pm] = torch.poisson(torch.full((int(pm.sum()),), 3.0), generator=g)  # other events, masked patches only
    with torch.no_grad():
        a, b = mae.encode(x, masks), mae.encode(y, masks)
    assert a.abs().sum() > 0  # it sees the visible patches
    assert not torch.equal(x, y) and torch.equal(a, b)
    with torch.no_grad():  # unmasked, those events do change what it sees
        c = mae.encode(y, torch.zeros_like(masks))
    assert not torch.equal(a, c)


@pytest.mark.parametrize("target", ["window", "steps"])
def test_the_loss_is_the_mse_of_per_patch_normalised_counts_over_masked_patches(target):
    mae = micro_mae(target).eval()
    x = torch.poisson(torch.full((3, 4, 2, 32, 32), 0.7), generator=torch.Generator().manual_seed(1))
    masks = random_tube_masks(3, mae.num_tokens, 0.5, torch.Generator().manual_seed(2))
    with torch.no_grad():
        loss = mae(x, masks)
        pred = mae.decoder(mae.encode(x, masks), masks)
    counts = patchify(x.sum(1) if target == "window" else x, mae.encoder.grid)
    assert counts.shape[-1] == (2 * 8 * 8 if target == "window" else 4 * 2 * 8 * 8)
    norm = (counts - counts.mean(-1, keepdim=True)) / (counts.var(-1, keepdim=True, unbiased=False) + 1e-6).sqrt()
    want = ((pred - norm) ** 2).mean(-1)[masks].mean()
    assert float(loss) == pytest.approx(float(want), rel=1e-5)


def test_the_log_target_keeps_how_busy_a_patch_is():
    """``norm="log"``: the target is log(1 + counts), not normalised per patch, so a
    busy patch and a quiet one of the same shape have different targets."""
    mae = micro_mae().eval()
    mae.decoder_config.norm = "log"
    x = torch.zeros(1, 4, 2, 32, 32)
    x[0, :, 0, :8, :8] = 1.0  # patch 0: 4 events per pixel over the window
    x[0, 0, 0, :8, 8:16] = 1.0  # patch 1: the same shape, 1 event per pixel
    target = mae._target(x)
    assert torch.allclose(target, torch.log1p(patchify(x.sum(1), mae.encoder.grid)))
    assert float(target[0, 0].max()) == pytest.approx(math.log(5.0))
    assert float(target[0, 1].max()) == pytest.approx(math.log(2.0))
    with pytest.raises(ValueError, match="scaling"):
        DecoderConfig(norm="zscore")


# ---------------------------------------------------------------- pre-training loop
def test_pretraining_lowers_the_held_out_loss_and_writes_the_encoder(tmp_path):
    train_set, test_set = SyntheticFrames(48, seed=0), SyntheticFrames(16, seed=1)
    mae = micro_mae()
    config = small_config(epochs=4, lr=3e-3, mixup_alpha=0.0, mixup_until=0, label_smoothing=0.0, betas=(0.9, 0.95))
    result = PretrainTrainer(mae, train_set, test_set, config, tmp_path, log=None, classes=[]).run()
    losses = [row["test_loss"] for row in result.history]
    assert losses[-1] < losses[0]
    for name in ("encoder.pt", "last.pt", "reconstruction.png", "log.csv", "result.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "reconstruction.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = torch.load(tmp_path / "encoder.pt", weights_only=True)
    assert state["meta"]["kind"] == "pretrained-encoder" and state["meta"]["pretrain"]["mask_ratio"] == 0.75
    assert set(state["decoder"]["state_dict"]) == set(mae.decoder.state_dict())
    # the encoder loads into a classifier of any class count; its head is new
    clf = micro_model(classes=5)
    report = init_encoder(clf, tmp_path / "encoder.pt")
    assert report.new == ["head.weight", "head.bias"] and report.kind == "pre-trained encoder"
    own = clf.state_dict()
    assert all(torch.equal(own[k], v) for k, v in mae.encoder.state_dict().items())
    # a pre-training run's last.pt serves as well
    assert init_encoder(micro_model(classes=2), tmp_path / "last.pt").kind == "pre-training run"


def test_pretraining_resumes_exactly(tmp_path):
    train_set, test_set = SyntheticFrames(24, seed=0), SyntheticFrames(8, seed=1)
    config = dict(epochs=3, lr=3e-3, mixup_alpha=0.0, mixup_until=0, label_smoothing=0.0)
    whole = PretrainTrainer(micro_mae(), train_set, test_set, small_config(**config), tmp_path / "a", log=None,
                            classes=[]).run()
    PretrainTrainer(micro_mae(), train_set, test_set, small_config(stop_after=1, **config), tmp_path / "b",
                    log=None, classes=[]).run()
    resumed = PretrainTrainer(micro_mae(), train_set, test_set, small_config(resume=True, **config),
                              tmp_path / "b", log=None, classes=[]).run()
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]
    with pytest.raises(DvsstreamError, match="pretrain run, not a classify run"):
        from dvsstream.training.trainer import train

        train(micro_model(), train_set, test_set, small_config(resume=True), tmp_path / "b", log=None)


# ---------------------------------------------------------------- across tasks
def test_init_encoder_loads_a_classifier_of_other_classes_and_refuses_other_models(tmp_path):
    from dvsstream.models.checkpoints import save_checkpoint

    eleven = micro_model(seed=1, classes=11)
    save_checkpoint(eleven, tmp_path / "eleven.pt")
    ten = micro_model(seed=2, classes=10)
    report = init_encoder(ten, tmp_path / "eleven.pt")
    assert report.source_classes == 11 and report.new == ["head.weight", "head.bias"]
    assert "new classifier head" in str(report) and "11 classes" in str(report)
    theirs, mine = eleven.state_dict(), ten.state_dict()
    assert all(torch.equal(theirs[k], mine[k]) for k in mine if not k.startswith("head."))
    same = micro_model(seed=3, classes=11)
    assert init_encoder(same, tmp_path / "eleven.pt").new == []  # the same classes: the head too
    assert torch.equal(same.head.weight, eleven.head.weight)
    save_checkpoint(create_model("spikingformer_dvs_tiny", num_classes=11, **MICRO), tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="same family"):
        init_encoder(micro_model(), tmp_path / "other.pt")
    save_checkpoint(create_model("spikformer_dvs_tiny", num_classes=11), tmp_path / "big.pt")  # 64x64 input
    with pytest.raises(CheckpointError, match="64x64 input"):
        init_encoder(micro_model(), tmp_path / "big.pt")


def test_labels_per_class_is_a_fixed_reproducible_choice():
    targets = [i % 3 for i in range(30)] + [2] * 5
    a = choose_labelled(targets, ["a", "b", "c"], 4, seed=7)
    assert a == choose_labelled(targets, ["a", "b", "c"], 4, seed=7)
    assert a["indices"] != choose_labelled(targets, ["a", "b", "c"], 4, seed=8)["indices"]
    assert a["per_class"] == {"a": 4, "b": 4, "c": 4} and len(a["indices"]) == 12
    assert sorted(np.asarray(targets)[a["indices"]].tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    with pytest.raises(DvsstreamError, match="class 'a' has only 10"):
        choose_labelled(targets, ["a", "b", "c"], 11)
    assert choose_labelled(targets, ["a", "b", "c"], 11, allow_fewer=True)["per_class"] == {"a": 10, "b": 10, "c": 11}


def test_a_frozen_encoder_keeps_its_weights_and_statistics(tmp_path):
    from dvsstream.training.trainer import train

    model = micro_model(classes=3).freeze_encoder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, SyntheticFrames(24), SyntheticFrames(6, seed=1), small_config(epochs=2), tmp_path, log=None)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}


# ---------------------------------------------------------------- the command
def _write_recordings(folder: Path, n: int, seconds: float = 2.0, sensor=(64, 48), seed: int = 0) -> None:
    """``n`` HDF5 recordings of a bright square moving over a noisy sensor."""
    from dvsstream.events import EVENT_DTYPE
    from dvsstream.io.hdf5 import RecordingWriter

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        t = np.sort(rng.integers(0, int(seconds * 1e6), 40_000))
        x0 = (10 + 30 * np.sin(t / 3e5 + k)).astype(int) % (sensor[0] - 8)
        ev = np.zeros(t.size, EVENT_DTYPE)
        ev["t"], ev["p"] = t, rng.integers(0, 2, t.size)
        ev["x"] = np.clip(x0 + rng.integers(0, 8, t.size), 0, sensor[0] - 1)
        ev["y"] = np.clip(sensor[1] // 2 + rng.integers(-4, 4, t.size), 0, sensor[1] - 1)
        (folder / f"sub{k % 2}").mkdir(exist_ok=True)
        with RecordingWriter(folder / f"sub{k % 2}" / f"rec{k}.h5", sensor, "test") as w:
            w.write(ev)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cli_pretrain_on_a_folder_then_fine_tune_with_few_labels(tmp_path, capsys):
    pytest.importorskip("dvsstream.datasets.load")
    from dvsstream.cli import main

    data = tmp_path / "recs"
    _write_recordings(data, 3)
    (data / "notes.txt").write_text("not a recording")
    before = _digest(data)
    out = tmp_path / "pre"
    argv = ["pretrain", "--dataset", "folder", "--root", str(data), "--model", "spikformer_dvs_tiny",
            "--window-ms", "80", "--bins", "8", "--epochs", "1", "--batch-size", "8", "--warmup-epochs", "0",
            "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "from 3 recording(s)" in text and "encoder.pt" in text
    meta = torch.load(out / "encoder.pt", weights_only=True)["meta"]
    assert meta["dataset"] == "folder" and meta["recordings"] == 3
    assert meta["live_binning"]["window_us"] == 80_000 and meta["live_binning"]["n_bins"] == 8
    assert _digest(data) == before  # inputs untouched
    assert (out / "reconstruction.png").is_file()
    # an encoder alone classifies nothing: run says to fine-tune it first
    assert main(["run", "--checkpoint", str(out / "encoder.pt"), "--source", str(data / "sub0" / "rec0.h5")]) == 2
    assert "pre-trained encoder without a classifier" in capsys.readouterr().err
    # fine-tuning a classifier of another class count from it, with a few labels
    from test_train import _gesture_npy

    _gesture_npy(tmp_path / "gest", [(1, "lab"), (2, "lab"), (24, "lab")])
    tuned = tmp_path / "tuned"
    ft = ["train", "--dataset", "dvsgesture", "--root", str(tmp_path / "gest"), "--model", "spikformer_dvs_tiny",
          "--epochs", "1", "--batch-size", "4", "--warmup-epochs", "0", "--no-hflip", "--device", "cpu",
          "--init", str(out / "encoder.pt"), "--labels-per-class", "1", "--label-seed", "3",
          "--cache-dir", str(tmp_path / "cache"), "--out", str(tuned)]
    assert main(ft) == 0
    text = capsys.readouterr().out
    assert "encoder tensors loaded from the pre-trained encoder" in text and "a new classifier head" in text
    result = json.loads((tuned / "result.json").read_text())
    assert result["few_labels"]["labels_per_class"] == 1 and result["few_labels"]["label_seed"] == 3
    assert result["train_samples"] == 11 and result["init"] == str(out / "encoder.pt")
    best = torch.load(tuned / "best.pt", weights_only=True)["meta"]
    assert best["few_labels"]["indices"] == result["few_labels"]["indices"]
    # more labels than the smallest class: one line, exit 2, nothing written
    again = tmp_path / "again"
    assert main([a if a != str(tuned) else str(again) for a in ft[:-2]] + ["--labels-per-class", "99",
                                                                           "--out", str(again)]) == 2
    assert "--labels-per-class 99" in capsys.readouterr().err and not (again / "last.pt").exists()


def test_cli_pretrain_bad_input_is_one_line(tmp_path, capsys):
    from dvsstream.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("nothing here")
    base = ["pretrain", "--dataset", "folder", "--model", "spikformer_dvs_tiny", "--device", "cpu", "--epochs", "1"]
    assert main(base + ["--root", str(empty), "--out", str(tmp_path / "o1")]) == 2
    assert "no readable recording" in capsys.readouterr().err
    assert main(base + ["--root", str(empty), "--mask-ratio", "1.0", "--out", str(tmp_path / "o2")]) == 2
    assert "--mask-ratio 1 must lie between 0 and 1" in capsys.readouterr().err
    data = tmp_path / "recs"
    _write_recordings(data, 2)
    (data / "broken.aedat4").write_bytes(b"#!AER-DAT4.0\r\n" + b"\x00" * 100)
    assert main(base + ["--root", str(data), "--window-ms", "80", "--out", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err
    assert "broken.aedat4" in err and "--skip-unreadable" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o3" / "last.pt").exists()
    assert main(base + ["--root", str(data), "--window-ms", "80", "--skip-unreadable", "--batch-size", "8",
                        "--out", str(tmp_path / "o4")]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.out and "broken.aedat4" in captured.out


def test_cli_pretrain_on_a_datasets_train_split_ignores_labels(tmp_path, capsys):
    pytest.importorskip("dvsstream.datasets.load")
    from dvsstream.cli import main
    from test_train import _gesture_npy

    _gesture_npy(tmp_path / "gest", [(1, "lab"), (2, "lab"), (24, "lab")])
    out = tmp_path / "pre"
    argv = ["pretrain", "--dataset", "dvsgesture", "--root", str(tmp_path / "gest"), "--model", "spikformer_dvs_tiny",
            "--epochs", "1", "--batch-size", "8", "--warmup-epochs", "0", "--target", "steps", "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "21 training and 1 held-out samples of dvsgesture's train split (labels ignored)" in text
    assert "target: counts per time step" in text
    meta = torch.load(out / "encoder.pt", weights_only=True)["meta"]
    assert meta["dataset"] == "dvsgesture" and meta["pretrain"]["target"] == "steps"
    assert main(argv) == 2  # the run exists: --resume or another folder
    assert "--resume" in capsys.readouterr().err
    assert main(argv + ["--resume", "--epochs", "2"]) == 0
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert main(argv[:-2] + ["--window-ms", "100", "--out", str(tmp_path / "x")]) == 2
    assert "--window-ms and --bins are for --dataset folder" in capsys.readouterr().err


def test_the_shipped_pretrained_encoder_loads_and_says_where_it_comes_from():
    from dvsstream.models.checkpoints import checkpoint_meta, shipped_checkpoint

    path = shipped_checkpoint("pretrained_tiny")
    meta = checkpoint_meta(path)
    assert meta["kind"] == "pretrained-encoder" and "synth --kind scenes" in meta["trained_on"]
    assert "dvsstream pretrain" in meta["recipe"] and meta["model_card"] == "pretrained_tiny.md"
    assert (path.parent / meta["model_card"]).is_file()
    model = create_model("spikformer_dvs_tiny", num_classes=7)
    report = init_encoder(model, path)
    assert report.kind == "pre-trained encoder" and report.new == ["head.weight", "head.bias"]
    assert report.loaded == sum(1 for k in model.state_dict() if not k.startswith("head."))  # every encoder tensor


def test_without_held_out_windows_the_lines_say_so(tmp_path):
    """No held-out window (e.g. recordings too short for one in their last 10 %): the
    epoch line says so instead of printing "nan", and "best" is the training loss."""
    lines: list[str] = []
    PretrainTrainer(micro_mae(), SyntheticFrames(16, seed=0), None, small_config(epochs=2, mixup_until=0),
                    tmp_path / "p", log=lines.append, classes=[]).run()
    epochs = [s for s in lines if s.startswith("epoch")]
    assert epochs and all("no held-out windows" in s and "nan" not in s for s in epochs)
    assert any(s.startswith("finished: training loss") for s in lines)
