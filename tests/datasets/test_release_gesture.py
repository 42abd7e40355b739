"""DVS128 Gesture in every layout against spikingjelly 2.0, release checkpoints
recognised, and the label order: a release-trained checkpoint evaluated by
``dvsstream eval`` predicts what "spikingjelly's frames -> the reference architecture ->
spikingjelly's label order" predicts, sample by sample.

The AEDAT 3.1 files are written here from the events of a real DVS128 recording
(../shared/data/real), 11 labelled segments each; spikingjelly's own converters make its
events_np/ and frames folders from them."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dvsstream.cli import main
from dvsstream.datasets.load import load_dataset
from dvsstream.datasets.spec import FrameSpec
from dvsstream.events import EVENT_DTYPE
from dvsstream.models import create_model
from dvsstream.models.checkpoints import load_checkpoint, release_training_args, reorder_outputs
from reference_models import ReferenceSpikformer
from dvsstream.datasets.release import spikingjelly_output_classes
from dvsstream.io import open_file
from dvsstream.io.aedat3 import write_aedat31
from dvsstream.io.base import LABEL_DTYPE

from sj_peer import real_file, spikingjelly_datasets

T = 8
SEG = 2500  # events per labelled segment
USERS = (("user01_fluorescent", "train"), ("user24_led", "test"))


def _real_events() -> np.ndarray:
    with open_file(real_file("dvSave-2024_06_20_15_59_41.aedat4")) as src:
        ev = np.concatenate(list(src))
    out = np.zeros(ev.size, EVENT_DTYPE)
    for k in "xyp":
        out[k] = ev[k]
    out["t"] = ev["t"] - ev["t"][0] + 1_000_000
    return out


def _write_user(d: Path, name: str, ev: np.ndarray, offset: int) -> None:
    """11 segments of SEG real events (labels in a shuffled order, one gap between each)."""
    part = ev[offset:offset + 11 * SEG + 10 * 300]
    labels, k = [], 0
    for label in (3, 0, 10, 1, 7, 2, 9, 4, 8, 5, 6):
        seg = part[k:k + SEG]
        labels.append((int(seg["t"][0]), int(seg["t"][-1]) + 1, label))
        k += SEG + 300
    write_aedat31(d / f"{name}.aedat", part, np.array(labels, dtype=LABEL_DTYPE))


@pytest.fixture(scope="module")
def gesture(tmp_path_factory):
    sjd = spikingjelly_datasets()
    from spikingjelly.datasets import dvs128_gesture
    from spikingjelly.datasets.base import _load_events

    ev = _real_events()
    base = tmp_path_factory.mktemp("gesture")
    raw = base / "raw" / "DvsGesture"
    raw.mkdir(parents=True)
    for i, (name, _) in enumerate(USERS):
        _write_user(raw, name, ev, i * 40_000)
    (raw / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (raw / "trials_to_test.txt").write_text("user24_led.aedat\n")
    sj = base / "sj"
    shutil.copytree(raw, sj / "extract" / "DvsGesture")
    for name, split in USERS:
        out = sj / "events_np" / split
        for label in range(11):
            (out / str(label)).mkdir(parents=True, exist_ok=True)
        dvs128_gesture._split_aedat_files_to_np(name, raw / f"{name}.aedat", raw / f"{name}_labels.csv", out)
    for split_by in ("number", "time"):
        for f in sorted((sj / "events_np").rglob("*.npz")):
            out = sj / f"frames_number_{T}_split_by_{split_by}" / f.parent.parent.name / f.parent.name
            out.mkdir(parents=True, exist_ok=True)
            sjd.integrate_events_file_to_frames_file_by_fixed_frames_number(
                _load_events, str(f), str(out), split_by, T, 128, 128)
    return base / "raw", sj, sjd


def _sj_frames_by_sample(sj: Path, split: str, split_by: str) -> dict[tuple[int, str], np.ndarray]:
    folder = sj / f"frames_number_{T}_split_by_{split_by}" / split
    out = {}
    for f in folder.rglob("*.npz"):
        with np.load(f) as z:
            out[(int(f.parent.name), f.stem)] = z["frames"].astype(np.float32)
    return out


def _key(dataset, i) -> tuple[int, str]:
    """(label, spikingjelly's file stem) of sample i: raw segments are numbered per label
    in labels-CSV order, as spikingjelly names them."""
    path, label = dataset.samples[i]
    if "#" not in path:
        return label, Path(path).stem
    file, _ = path.split("#")
    before = sum(1 for p, y in dataset.samples[:i] if y == label and p.split("#")[0] == file)
    return label, f"{Path(file).stem}_{before}"


@pytest.mark.parametrize("split_by", ["number", "time"])
@pytest.mark.parametrize("layout", ["raw", "extract", "events_np", "frames"])
def test_gesture_layouts_frames_equal_spikingjelly(gesture, tmp_path, layout, split_by):
    raw, sj, _ = gesture
    root = raw
    if layout != "raw":
        root = tmp_path / "root"
        root.mkdir()
        name = {"extract": "extract", "events_np": "events_np", "frames": f"frames_number_{T}_split_by_{split_by}"}[layout]
        (root / name).symlink_to(sj / name)
    mode = "count" if split_by == "number" else "time"
    d = load_dataset("dvsgesture", root, "test", FrameSpec(n_bins=T, mode=mode), cache_dir=False)
    want = _sj_frames_by_sample(sj, "test", split_by)
    assert len(d) == len(want) == 11
    for i in range(len(d)):
        x, y = d[i]
        assert x.numpy().tobytes() == want[_key(d, i)].tobytes(), (layout, d.samples[i])
    assert sorted(y for _, y in d.samples) == list(range(11))


def test_release_checkpoint_recognised_with_a_restricted_unpickler(tmp_path):
    m = create_model("spikformer_dvs_tiny", num_classes=11)
    ns = argparse.Namespace(dataset="dvsgesture", T=16, lr=0.001, model="spikformer")
    path = tmp_path / "checkpoint_max_test_acc1.pth"
    torch.save({"model": m.state_dict(), "optimizer": {"state": {}, "param_groups": []}, "lr_scheduler": {"last_epoch": 3},
                "epoch": 3, "args": ns, "max_test_acc1": 0.5}, path)
    report = load_checkpoint(create_model("spikformer_dvs_tiny", num_classes=11), path)
    assert report.release_trained and report.release_args == vars(ns) and "release-trained" in str(report)
    bare = tmp_path / "bare.pth"
    torch.save(m.state_dict(), bare)
    assert not load_checkpoint(create_model("spikformer_dvs_tiny", num_classes=11), bare).release_trained
    assert release_training_args({"model": {}, "optimizer": {}, "lr_scheduler": {}, "epoch": 1, "args": {}}) is None
    # any other class in the pickle is refused, in one line
    import fractions

    evil = tmp_path / "evil.pth"
    torch.save({"model": m.state_dict(), "optimizer": {}, "lr_scheduler": {}, "epoch": 1,
                "args": fractions.Fraction(1, 3)}, evil)
    from dvsstream.models import CheckpointError

    with pytest.raises(CheckpointError, match="cannot read checkpoint") as err:
        load_checkpoint(create_model("spikformer_dvs_tiny", num_classes=11), evil)
    assert "\n" not in str(err.value)


def test_spikingjelly_output_order_and_head_permutation():
    assert spikingjelly_output_classes(11) == [0, 1, 10, 2, 3, 4, 5, 6, 7, 8, 9]
    # what torchvision's DatasetFolder.find_classes does: sorted folder names
    assert [int(c) for c in sorted(str(i) for i in range(11))] == spikingjelly_output_classes(11)
    torch.manual_seed(0)
    m = create_model("spikformer_dvs_tiny", num_classes=11).eval()
    x = torch.rand(2, 8, 2, 64, 64) * 3
    before = m(x)
    reorder_outputs(m, spikingjelly_output_classes(11))
    m.reset()
    after = m(x)
    for k, c in enumerate(spikingjelly_output_classes(11)):
        assert torch.allclose(after[:, c], before[:, k], atol=1e-6)


def _amplified_release_dict(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    m = create_model("spikformer_dvs_tiny", num_classes=11)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() > 1:
                p.mul_(10 if name.startswith("head") else 6)
    return {k: v.clone() for k, v in m.state_dict().items()}


def _id(path) -> str:
    """``<label>/<stem>`` of a spikingjelly sample file."""
    return f"{Path(path).parent.name}/{Path(path).name}"


def test_eval_release_trained_gesture_matches_spikingjelly_pipeline(gesture, tmp_path, capsys):
    """dvsstream eval on spikingjelly's frames folder with a release-trained checkpoint ==
    spikingjelly's frames -> ReferenceSpikformer -> spikingjelly's label order."""
    _, sj, _ = gesture
    root = tmp_path / "root"
    root.mkdir()
    (root / f"frames_number_{T}_split_by_number").symlink_to(sj / f"frames_number_{T}_split_by_number")
    sd = _amplified_release_dict()
    cfg = create_model("spikformer_dvs_tiny", num_classes=11).config
    ref = ReferenceSpikformer(cfg).eval()
    files = sorted((sj / f"frames_number_{T}_split_by_number" / "test").rglob("*.npz"))
    frames = {}
    for f in files:
        with np.load(f) as z:
            frames[_id(f)] = torch.from_numpy(z["frames"].astype(np.float32)).reshape(T, 2, 64, 2, 64, 2).sum((3, 5))
    # centre the head on these samples, so that the prediction follows each sample's features
    ref.load_state_dict({k: v for k, v in sd.items() if k in ref.state_dict()})
    with torch.no_grad():
        sd["head.bias"] -= ref(torch.stack(list(frames.values()))).mean(0)
    ref.load_state_dict({k: v for k, v in sd.items() if k in ref.state_dict()})
    ckpt = tmp_path / "checkpoint_max_test_acc1.pth"
    torch.save({"model": sd, "optimizer": {}, "lr_scheduler": {}, "epoch": 200, "max_test_acc1": 0.9,
                "args": argparse.Namespace(dataset="dvsgesture", T=T)}, ckpt)
    out = tmp_path / "out"
    exported = tmp_path / "exported.pt"
    assert main(["eval", "--dataset", "dvsgesture", "--root", str(root), "--checkpoint", str(ckpt), "--model",
                 "spikformer_dvs_tiny", "--out", str(out), "--device", "cpu", "--export", str(exported)]) == 0
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["label_order"]["order"] == "spikingjelly" and report["release_args"]["T"] == T
    assert report["convention"] == "spikingjelly" and "frames_number_8_split_by_number" in report["layout"]
    with open(out / "samples.csv") as f:
        ours = {_id(r["path"]): int(r["prediction"]) for r in csv.DictReader(f)}

    order = sorted(str(i) for i in range(11))  # DatasetFolder's classes: output k is class order[k]
    with torch.no_grad():  # one batch, as eval runs them
        outputs = ref(torch.stack(list(frames.values()))).argmax(-1).tolist()
    want = {name: int(order[k]) for name, k in zip(frames, outputs)}
    assert len(ours) == len(want) == 11 and ours == want
    assert len(set(want.values())) > 2  # the model does look at its input
    # run and the window load the exported checkpoint: the same mapping, the class names
    from dvsstream.datasets.dvsgesture import GESTURE_CLASSES
    from dvsstream.stream.pipeline import load_classifier_model

    loaded = load_classifier_model(str(exported), device="cpu")
    assert loaded.class_names == list(GESTURE_CLASSES)
    with torch.no_grad():
        live = dict(zip(frames, loaded.model(torch.stack(list(frames.values()))).argmax(-1).tolist()))
    assert live == want
    # --label-order dataset: output k read as class k, so the predictions differ where the orders do
    from dvsstream.training.evaluate import load_eval_model

    plain_model, info = load_eval_model(str(ckpt), "spikformer_dvs_tiny", 11, "dvsgesture", "dataset")
    assert info["label_order"]["order"] == "dataset"
    with torch.no_grad():
        plain = dict(zip(frames, plain_model.eval()(torch.stack(list(frames.values()))).argmax(-1).tolist()))
    assert plain == {n: spikingjelly_output_classes(11).index(c) for n, c in want.items()} != want


def test_bare_state_dict_on_gesture_warns_once_and_reads_dataset_order(gesture, tmp_path, capsys):
    _, sj, _ = gesture
    root = tmp_path / "root"
    root.mkdir()
    (root / f"frames_number_{T}_split_by_number").symlink_to(sj / f"frames_number_{T}_split_by_number")
    ckpt = tmp_path / "bare.pth"
    torch.save(_amplified_release_dict(), ckpt)
    args = ["eval", "--dataset", "dvsgesture", "--root", str(root), "--checkpoint", str(ckpt), "--model",
            "spikformer_dvs_tiny", "--out", str(tmp_path / "o"), "--device", "cpu", "--limit", "2"]
    assert main(args) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if "--label-order" in ln]
    assert len(err) == 1 and "bare state dict" in err[0]
    assert json.loads((tmp_path / "o" / "report.json").read_text())["label_order"]["order"] == "dataset"
    # our own checkpoints carry class names: the flag is refused in one line, exit 2
    from dvsstream.models import save_checkpoint

    ours = tmp_path / "ours.pt"
    save_checkpoint(create_model("spikformer_dvs_tiny", num_classes=11), ours)
    args[args.index(str(ckpt))] = str(ours)
    assert main(args + ["--label-order", "spikingjelly"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "carry their class names" in err


def test_train_init_from_a_release_checkpoint_maps_its_head(tmp_path):
    """train --init: a release-trained Gesture checkpoint's head is permuted to the
    dataset's order (what the saved checkpoint's class names then say)."""
    from dvsstream.training.train import _init_label_order

    sd = _amplified_release_dict()
    ckpt = tmp_path / "checkpoint_latest.pth"
    torch.save({"model": sd, "optimizer": {}, "lr_scheduler": {}, "epoch": 1, "args": argparse.Namespace(T=8)}, ckpt)
    model = create_model("spikformer_dvs_tiny", num_classes=11)
    report = load_checkpoint(model, ckpt)
    done = _init_label_order(model, report, "dvsgesture", None, str(ckpt))
    assert done["order"] == "spikingjelly"
    for k, c in enumerate(spikingjelly_output_classes(11)):
        assert torch.equal(model.head.weight[c], sd["head.weight"][k]) and model.head.bias[c] == sd["head.bias"][k]
    assert main(["train", "--dataset", "dvsgesture", "--root", str(tmp_path), "--label-order", "spikingjelly",
                 "--out", str(tmp_path / "o")]) == 2


def test_labels_csv_row_ending_before_its_start_is_one_line(gesture, tmp_path):
    raw, _, _ = gesture
    shutil.copytree(raw, tmp_path / "r")
    csv_path = tmp_path / "r" / "DvsGesture" / "user24_led_labels.csv"
    rows = csv_path.read_text().splitlines()
    cls, start, end = rows[3].split(",")
    rows[3] = f"{cls},{end},{start}"
    csv_path.write_text("\n".join(rows) + "\n")
    d = load_dataset("dvsgesture", tmp_path / "r", "test", FrameSpec(n_bins=T), cache_dir=False)
    assert len(d) == 0 and len(d.skipped) == 1
    path, why = d.skipped[0]
    assert path.endswith("user24_led.aedat") and "user24_led_labels.csv" in why and "line 4 ends before it starts" in why
    assert "\n" not in why


def test_release_args_T_sets_the_time_steps(tmp_path, capsys):
    from dvsstream.training.evaluate import load_eval_model

    ckpt = tmp_path / "checkpoint_max_test_acc1.pth"
    torch.save({"model": _amplified_release_dict(), "optimizer": {}, "lr_scheduler": {}, "epoch": 1,
                "args": argparse.Namespace(T=4)}, ckpt)
    model, info = load_eval_model(str(ckpt), "spikformer_dvs_tiny", 11, "dvsgesture")
    assert model.config.T == 4 and info["release_args"] == {"T": 4}
    assert "trained with T=4" in capsys.readouterr().err
    from dvsstream.errors import DvsstreamError

    with pytest.raises(DvsstreamError):
        load_eval_model(str(ckpt), "no_such_model", 11, "dvsgesture")
