"""``dvsstream eval`` end to end on fake dataset folders in the real formats: the report,
its three figures, the per-sample CSV, bad input, and a two-process torchrun run that
must give the same report as one process."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dvsstream.cli import main
from dvsstream.datasets.cifar10dvs import CIFAR10DVS_CLASSES
from dvsstream.events import EVENT_DTYPE
from dvsstream.models import create_model, save_checkpoint
from dvsstream.training.plots import REPORT_PLOTS
from dvsstream.io.aedat4 import write_aedat4

REPO = Path(__file__).resolve().parents[2]
REPORT_KEYS = {"accuracy", "per_class_accuracy", "confusion_matrix", "samples", "samples_per_s", "firing_rates",
               "energy", "skipped", "model", "checkpoint", "dataset", "split", "frame_spec"}


def _events(label: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 200_000, n))
    cx, cy = 16 + (label % 5) * 24, 24 + (label // 5) * 64
    ev["x"] = np.clip(rng.normal(cx, 6, n), 0, 127).astype(np.uint16)
    ev["y"] = np.clip(rng.normal(cy, 6, n), 0, 127).astype(np.uint16)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def _tiny(num_classes: int, **overrides):
    """spikformer_dvs_tiny made smaller still for speed (T=4, 32x32 input: 128x128 events
    down-sampled by 4), its weights amplified so that random-init spikes, and so the
    predictions, depend on the input."""
    torch.manual_seed(0)
    overrides = {"T": 4, "img_size": (32, 32), **overrides}
    model = create_model("spikformer_dvs_tiny", num_classes=num_classes, **overrides)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.mul_(10 if name.startswith("head") else 6)
    return model


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """10 classes x 3 AEDAT 4 files of 3000 events, and checkpoints."""
    base = tmp_path_factory.mktemp("eval")
    root = base / "data"
    for label, cls in enumerate(CIFAR10DVS_CLASSES):
        d = root / "CIFAR10DVS" / cls
        d.mkdir(parents=True)
        for i in range(3):
            write_aedat4(d / f"cifar10_{cls}_{i}.aedat4", _events(label, 3000, 10 * label + i), (128, 128))
    ckpt = base / "tiny10.pt"
    save_checkpoint(_tiny(10), ckpt)
    ckpt11 = base / "tiny11.pt"
    save_checkpoint(_tiny(11), ckpt11)
    release = base / "release.pt"
    # a release-style state dict (DDP prefix, wrapped) of the registry's tiny preset as is
    registry_tiny = _tiny(10, T=8, img_size=(64, 64))
    torch.save({"model": {f"module.{k}": v for k, v in registry_tiny.state_dict().items()}}, release)
    save_checkpoint(registry_tiny, base / "registry_tiny.pt")
    return {"base": base, "root": root, "ckpt": ckpt, "ckpt11": ckpt11, "release": release}


def _eval(fake, out, *extra, root=None):
    return main(["eval", "--dataset", "cifar10dvs", "--root", str(root or fake["root"]), "--checkpoint",
                 str(fake["ckpt"]), "--out", str(out), "--device", "cpu", *extra])


def _report(out) -> dict:
    return json.loads((Path(out) / "report.json").read_text())


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def test_eval_end_to_end(fake, tmp_path, capsys):
    out = tmp_path / "out"
    assert _eval(fake, out, "--split", "all", "--batch-size", "8") == 0
    stdout = capsys.readouterr().out
    assert "accuracy" in stdout and "samples/s" in stdout
    r = _report(out)
    assert REPORT_KEYS <= set(r)
    assert r["samples"] == 30 and r["split"] == "all" and r["model"] == "spikformer_dvs_tiny"
    cm = np.array(r["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 30 and cm.sum(axis=1).tolist() == [3] * 10
    assert r["accuracy"] == pytest.approx(np.trace(cm) / 30)
    assert set(r["per_class_accuracy"]) == set(CIFAR10DVS_CLASSES)
    assert r["frame_spec"]["n_bins"] == 4 and r["frame_spec"]["downsample"] == 4
    assert r["skipped"] == {"count": 0, "samples": []}
    assert len(r["firing_rates"]) > 5 and any(v > 0 for v in r["firing_rates"].values())
    assert r["energy"]["energy_mj"] > 0 and "first batch" in r["energy"]["computed_on"]
    assert r["samples_per_s"] > 0
    with open(out / "samples.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and [int(x["index"]) for x in rows] == list(range(30))
    assert {"index", "path", "label", "prediction", "confidence", "correct"} <= set(rows[0])
    assert sum(int(x["correct"]) for x in rows) == np.trace(cm)
    assert len({x["prediction"] for x in rows}) > 1  # the amplified tiny model does look at its input
    assert r["files"] == {"samples": "samples.csv", **REPORT_PLOTS}
    w, h = _png_size(out / "confusion.png")  # 10 classes: about 9.5 x 9 inches at 100 dpi
    assert 850 <= w <= 1100 and 800 <= h <= 1000
    assert _png_size(out / "per_class_accuracy.png") == (750, 560)
    assert _png_size(out / "confidence.png") == (750, 450)
    assert all(str(out / name) in stdout for name in ["report.json", "samples.csv", *REPORT_PLOTS.values()])
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left

    # the test split by default (the releases' split: after the first ceil(0.9 n) of each
    # class in sorted-name order -- 0 of 3, 1 of 10: "_9"); --limit above the size
    assert "ceil(0.9 n)" in r["split_rule"] and r["convention"] == "spikingjelly"
    assert r["label_order"]["order"] == "dataset" and r["layout"] == "tonic CIFAR10DVS/<class>/*.aedat4"
    ten = tmp_path / "ten"
    (ten / "CIFAR10DVS" / "ship").mkdir(parents=True)
    for i in range(10):
        write_aedat4(ten / "CIFAR10DVS" / "ship" / f"cifar10_ship_{i}.aedat4", _events(8, 300, i), (128, 128))
    out2 = tmp_path / "out2"
    assert _eval(fake, out2, "--limit", "1000", root=ten) == 0
    assert "larger than the test split" in capsys.readouterr().err
    r2 = _report(out2)
    assert r2["samples"] == 1 and r2["split"] == "test"
    with open(out2 / "samples.csv") as f:
        assert [Path(row["path"]).name for row in csv.DictReader(f)] == ["cifar10_ship_9.aedat4"]


def test_eval_checkpoint_mismatch_is_one_clear_line(fake, tmp_path, capsys):
    rc = main(["eval", "--dataset", "cifar10dvs", "--root", str(fake["root"]), "--checkpoint", str(fake["ckpt11"]),
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "spikformer_dvs_tiny" in err and "11 classes" in err and "10 classes" in err and "cifar10dvs" in err
    # --model naming another architecture than the checkpoint's
    rc = _eval(fake, tmp_path / "o", "--model", "spikformer_dvs")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "spikformer_dvs_tiny" in err and "--model spikformer_dvs" in err


def test_eval_release_state_dict(fake, tmp_path, capsys):
    base = ["eval", "--dataset", "cifar10dvs", "--root", str(fake["root"]), "--checkpoint", str(fake["release"]),
            "--out", str(tmp_path / "o"), "--device", "cpu"]
    assert main(base) == 2
    assert "--model" in capsys.readouterr().err
    assert main(base + ["--model", "spikformer_dvs"]) == 2  # another architecture: named
    err = capsys.readouterr().err
    assert "does not fit --model spikformer_dvs" in err and len(err.strip().splitlines()) == 1
    assert main(base + ["--model", "spikformer_dvs_tiny", "--limit", "3", "--split", "all"]) == 0
    capsys.readouterr()
    reference = tmp_path / "ours"
    assert main(["eval", "--dataset", "cifar10dvs", "--root", str(fake["root"]), "--checkpoint",
                 str(fake["base"] / "registry_tiny.pt"), "--out", str(reference), "--device", "cpu", "--limit", "3",
                 "--split", "all"]) == 0
    assert _report(tmp_path / "o")["confusion_matrix"] == _report(reference)["confusion_matrix"]
    assert _report(tmp_path / "o")["checkpoint_format"] == "release" and _report(reference)["samples"] == 3


def test_eval_corrupt_sample_reported_and_skipped(fake, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(fake["root"] / "CIFAR10DVS", root / "CIFAR10DVS")
    bad = root / "CIFAR10DVS" / "cat" / "cifar10_cat_2.aedat4"
    bad.write_bytes(bad.read_bytes()[:500])
    out = tmp_path / "out"
    assert _eval(fake, out, "--cache-dir", str(tmp_path / "cache"), "--split", "all", root=root) == 0
    err = capsys.readouterr().err
    assert "cifar10_cat_2.aedat4" in err
    r = _report(out)
    assert r["samples"] == 29 and r["skipped"]["count"] == 1
    assert r["skipped"]["samples"][0]["path"].endswith("cifar10_cat_2.aedat4")
    assert np.array(r["confusion_matrix"])[CIFAR10DVS_CLASSES.index("cat")].sum() == 2
    # second run: from the cache marker, still reported
    assert _eval(fake, tmp_path / "out2", "--cache-dir", str(tmp_path / "cache"), "--split", "all", root=root) == 0
    assert _report(tmp_path / "out2")["skipped"]["count"] == 1


def test_eval_gesture_npy(tmp_path):
    d = tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_led"
    d.mkdir(parents=True)
    for label in range(11):
        ev = _events(label % 10, 1200, label)
        np.save(d / f"{label}.npy", np.stack([ev["x"], ev["y"], ev["p"], ev["t"] // 1000], 1).astype(np.float64))
    ckpt = tmp_path / "g.pt"
    save_checkpoint(_tiny(11, T=2), ckpt, frame_spec={"n_bins": 6, "mode": "time", "sensor_size": [128, 128],
                                                      "downsample": 4})
    out = tmp_path / "out"
    assert main(["eval", "--dataset", "dvsgesture", "--root", str(tmp_path), "--checkpoint", str(ckpt),
                 "--out", str(out), "--device", "cpu"]) == 0
    r = _report(out)
    assert r["samples"] == 11 and np.array(r["confusion_matrix"]).shape == (11, 11)
    assert r["frame_spec"]["mode"] == "time" and r["frame_spec"]["n_bins"] == 6  # from the checkpoint,
    assert r["frame_spec"]["source"] == "checkpoint meta"                       # not the model's T


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_same_report(fake, tmp_path):
    cache = tmp_path / "cache"
    single = tmp_path / "single"
    assert _eval(fake, single, "--split", "all", "--batch-size", "4", "--cache-dir", str(cache)) == 0
    multi = tmp_path / "multi"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "dvsstream.cli", "eval", "--dataset", "cifar10dvs", "--root", str(fake["root"]), "--checkpoint",
           str(fake["ckpt"]), "--out", str(multi), "--device", "cpu", "--split", "all", "--batch-size", "4",
           "--cache-dir", str(cache)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    a, b = _report(single), _report(multi)
    assert b["world_size"] == 2 and a["world_size"] == 1
    for key in ("accuracy", "confusion_matrix", "samples", "per_class_accuracy", "skipped"):
        assert a[key] == b[key], key
    assert a["firing_rates"].keys() == b["firing_rates"].keys()
    for k in a["firing_rates"]:
        assert a["firing_rates"][k] == pytest.approx(b["firing_rates"][k], rel=1e-6, abs=1e-9)

    def preds(out):
        with open(out / "samples.csv") as f:
            return [(r["index"], r["path"], r["label"], r["prediction"]) for r in csv.DictReader(f)]

    assert preds(single) == preds(multi) and len(preds(multi)) == 30
