"""Training (dvsstream.training): schedule, optimiser, loss going down, checkpoints, exact
resume, DDP through torchrun (gloo, CPU) and the ``dvsstream train`` command."""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dvsstream.errors import DvsstreamError
from dvsstream.models import create_model, load_model
from dvsstream.training.config import TrainConfig
from dvsstream.training.schedule import WarmupCosine, build_optimizer
from dvsstream.training.steps import collate_drop_skipped
from dvsstream.training.trainer import LOG_FIELDS, train

REPO = Path(__file__).resolve().parents[2]
MICRO = dict(img_size=(32, 32), T=4, dim=32, heads=2)  # ~29 k parameters, ~300 samples/s on a CPU core


class SyntheticFrames(torch.utils.data.Dataset):
    """``n`` samples of ``classes`` classes: Poisson counts of a class-specific random
    spatial pattern (fixed by ``pattern_seed``), noise drawn per sample."""

    def __init__(self, n: int, classes: int = 3, size: int = 32, T: int = 4, seed: int = 0, pattern_seed: int = 123,
                 bad: tuple[int, ...] = ()):
        g = torch.Generator().manual_seed(pattern_seed)
        patterns = (torch.rand(classes, 2, size // 4, size // 4, generator=g) > 0.7).float()
        patterns = patterns.repeat_interleave(4, -1).repeat_interleave(4, -2)
        g = torch.Generator().manual_seed(seed)
        self.labels = [i % classes for i in range(n)]
        rate = 1.5 * patterns[self.labels].unsqueeze(1).expand(n, T, 2, size, size) + 0.1
        self.frames = torch.poisson(rate, generator=g)
        self.classes = tuple(f"class{i}" for i in range(classes))
        self.bad = set(bad)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        if i in self.bad:
            return torch.empty(0), -1
        return self.frames[i], self.labels[i]


def micro_model(seed: int = 0, classes: int = 3):
    torch.manual_seed(seed)
    return create_model("spikformer_dvs_tiny", num_classes=classes, **MICRO)


def small_config(**kw):
    base = dict(epochs=3, batch_size=8, warmup_epochs=1, lr=3e-3, mixup_until=1, tensorboard=False)
    base.update(kw)
    return TrainConfig(**base)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- pieces
def test_warmup_cosine_schedule():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    s = WarmupCosine(opt, total_steps=100, warmup_steps=10, lr=1e-3, warmup_lr=1e-5, min_lr=2e-5)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        s.step()
    assert lrs[0] == pytest.approx(1e-5)
    assert lrs[5] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert lrs[10] == pytest.approx(1e-3)
    assert lrs[99] == pytest.approx(2e-5)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # warm-up rises
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # cosine falls
    assert lrs[55] == pytest.approx(2e-5 + 0.5 * (1e-3 - 2e-5) * (1 + math.cos(math.pi * 45 / 89)))
    s2 = WarmupCosine(opt, 100, 10, 1e-3, 1e-5, 2e-5)
    s2.load_state_dict({"last_step": 42})
    assert opt.param_groups[0]["lr"] == pytest.approx(lrs[42])


def test_optimizer_decays_weights_only():
    model = micro_model()
    opt = build_optimizer(model, 1e-3, 0.06)
    assert isinstance(opt, torch.optim.AdamW)
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.06 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decay) == (p.ndim >= 2), name
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_collate_drops_unreadable_samples():
    frames, labels, dropped = collate_drop_skipped([(torch.ones(2, 2, 4, 4), 1), (torch.empty(0), -1), (torch.zeros(2, 2, 4, 4), 0)])
    assert frames.shape == (2, 2, 2, 4, 4) and labels.tolist() == [1, 0] and dropped == 1
    frames, labels, dropped = collate_drop_skipped([(torch.empty(0), -1)])
    assert labels.numel() == 0 and dropped == 1


# ---------------------------------------------------------------- training
def test_training_lowers_the_loss_and_writes_checkpoints_and_logs(tmp_path):
    train_set, test_set = SyntheticFrames(48, seed=1), SyntheticFrames(24, seed=2)
    lines = []
    out = tmp_path / "run"
    res = train(micro_model(), train_set, test_set, small_config(epochs=8, lr=5e-3, mixup_until=0), out, device="cpu",
                log=lines.append, classes=train_set.classes, meta={"dataset": "synthetic", "frame_spec": {"n_bins": 4}})
    h = res.history
    assert [r["epoch"] for r in h] == list(range(1, 9)) and res.complete
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert h[-1]["test_loss"] < h[0]["test_loss"]
    assert res.final_acc >= 0.8 and res.best_acc >= res.final_acc  # 3 easy classes, chance 1/3
    assert res.final_epoch == 8 and 1 <= res.best_epoch <= 8
    # files
    rows = read_log(out / "log.csv")
    assert list(rows[0]) == list(LOG_FIELDS) and len(rows) == 8
    assert float(rows[-1]["test_acc"]) == pytest.approx(res.final_acc, abs=1e-5)
    result = json.loads((out / "result.json").read_text())
    assert result["final_test_acc"] == pytest.approx(res.final_acc)
    assert result["best_test_acc"] == pytest.approx(res.best_acc) and result["best_epoch"] == res.best_epoch
    assert result["classes"] == ["class0", "class1", "class2"] and result["complete"] is True
    assert result["dataset"] == "synthetic" and result["skipped"] == {"train": 0, "test": 0}
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["meta"]["epoch"] == res.best_epoch and best["meta"]["classes"] == ["class0", "class1", "class2"]
    assert best["meta"]["frame_spec"] == {"n_bins": 4} and best["meta"]["test_acc"] == pytest.approx(res.best_acc)
    # both checkpoints load with load_model (weights-only unpickling), last.pt = the final weights
    m_last, m_best = load_model(out / "last.pt"), load_model(out / "best.pt")
    assert m_last.config.num_classes == 3 and m_best.config.img_size == (32, 32)
    x = torch.stack([test_set[i][0] for i in range(24)])
    y = torch.tensor(test_set.labels)
    m_last.eval()
    with torch.no_grad():
        acc = float((m_last(x).argmax(1) == y).float().mean())
    assert acc == pytest.approx(res.final_acc)
    assert any("final-epoch test accuracy" in line for line in lines)
    assert not list(out.glob("*.tmp"))


def _curve(history):
    return [(r["epoch"], r["lr"], r["train_loss"], r["train_acc"], r["test_loss"], r["test_acc"]) for r in history]


def test_resume_continues_exactly(tmp_path):
    data = SyntheticFrames(24, seed=1), SyntheticFrames(12, seed=2)
    cfg = dict(epochs=4, warmup_epochs=1, mixup_until=3)  # mixup + augmentation active
    full = train(micro_model(), *data, small_config(**cfg), tmp_path / "full", device="cpu", log=None)
    part = train(micro_model(), *data, small_config(stop_after=2, **cfg), tmp_path / "part", device="cpu", log=None)
    assert not part.complete and part.final_epoch == 2
    assert json.loads((tmp_path / "part" / "result.json").read_text())["complete"] is False
    lines = []
    rest = train(micro_model(seed=99), *data, small_config(resume=True, **cfg), tmp_path / "part", device="cpu",
                 log=lines.append)
    assert any("resuming after epoch 2" in line for line in lines)
    assert rest.complete and [r["epoch"] for r in rest.history] == [1, 2, 3, 4]
    assert _curve(rest.history) == _curve(full.history)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert len(read_log(tmp_path / "part" / "log.csv")) == 4
    assert (rest.best_acc, rest.best_epoch) == (full.best_acc, full.best_epoch)


def test_refuses_to_overwrite_a_run_or_resume_nothing(tmp_path):
    data = SyntheticFrames(8, seed=1), None
    cfg = small_config(epochs=1)
    with pytest.raises(DvsstreamError, match="does not exist"):
        train(micro_model(), *data, small_config(epochs=1, resume=True), tmp_path / "r", device="cpu", log=None)
    res = train(micro_model(), *data, cfg, tmp_path / "r", device="cpu", log=None)
    assert math.isnan(res.final_acc) and res.best_epoch == 1  # no test set: best = latest
    assert json.loads((tmp_path / "r" / "result.json").read_text())["final_test_acc"] is None  # strict JSON
    with pytest.raises(DvsstreamError, match="--resume"):
        train(micro_model(), *data, cfg, tmp_path / "r", device="cpu", log=None)
    other = create_model("spikformer_dvs_tiny", num_classes=3, img_size=(32, 32), T=4, dim=64, heads=2)
    with pytest.raises(DvsstreamError, match="with dim 32 but the model to train has dim 64"):
        train(other, *data, small_config(epochs=2, resume=True), tmp_path / "r", device="cpu", log=None)


def test_rejects_frames_of_the_wrong_size(tmp_path):
    model = create_model("spikformer_dvs_tiny", num_classes=3, T=4, dim=32, heads=2)  # 64x64
    with pytest.raises(DvsstreamError, match=r"\(2, 64, 64\)"):
        train(model, SyntheticFrames(8), None, small_config(epochs=1), tmp_path, device="cpu", log=None)


def test_unreadable_samples_are_left_out_and_counted(tmp_path):
    train_set = SyntheticFrames(16, seed=1, bad=(0, 5))
    test_set = SyntheticFrames(9, seed=2, bad=(3,))
    lines = []
    res = train(micro_model(), train_set, test_set, small_config(epochs=1), tmp_path, device="cpu", log=lines.append)
    assert res.history[0]["train_skipped"] == 2 and res.history[0]["test_skipped"] == 1
    assert json.loads((tmp_path / "result.json").read_text())["skipped"] == {"train": 2, "test": 1}
    assert any("could not be read" in line for line in lines)


# ---------------------------------------------------------------- DDP
DDP_SCRIPT = '''
import sys, torch
sys.path.insert(0, {tests!r})
from test_train import SyntheticFrames, micro_model, small_config
from dvsstream.training.distributed import init_distributed
from dvsstream.training.trainer import train
import torch.distributed as dist

info, dev, here = init_distributed("cpu")
assert info.world == 2 and dist.get_backend() == "gloo"
torch.set_num_threads(1)
data = SyntheticFrames(20, seed=1), SyntheticFrames(9, seed=2)
part = train(micro_model(), *data, small_config(epochs=2, stop_after=1, batch_size=4), {out!r}, device="cpu")
assert part.final_epoch == 1 and not part.complete
# rank 0 reads OUT/last.pt and hands the state to rank 1
res = train(micro_model(seed=5), *data, small_config(epochs=2, batch_size=4, resume=True), {out!r}, device="cpu")
# every rank knows the reduced metrics
print(f"RANK{{info.rank}} acc={{res.final_acc:.6f}} loss={{res.history[0]['train_loss']:.6f}}", flush=True)
dist.barrier()  # tearing gloo down while the peer is mid-collective aborts it ("terminate called...")
dist.destroy_process_group()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_with_torchrun_and_resume(tmp_path):
    script = tmp_path / "ddp_train.py"
    out = tmp_path / "out"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out)))
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    frames_before = {p for d in ("/dev/shm", tempfile.gettempdir()) if os.path.isdir(d) for p in os.listdir(d)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    ranks = sorted(line for line in proc.stdout.splitlines() if line.startswith("RANK"))
    assert len(ranks) == 2 and ranks[0].split()[1:] == ranks[1].split()[1:], ranks
    rows = read_log(out / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2 and result["test_samples"] == 9 and result["complete"] is True
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    assert proc.stdout.count("final-epoch test accuracy") == 2  # rank 0 only logs (two runs)
    # one copy of the frames for the machine: rank 0 writes them, both ranks map the file
    assert proc.stdout.count("training frames held in memory") == 2  # (two runs)
    assert proc.stdout.count("one copy mapped by all 2 processes") == 4  # training and test sets
    left = [p for d in ("/dev/shm", tempfile.gettempdir()) if os.path.isdir(d)
            for p in os.listdir(d) if p.startswith("dvsstream-frames-") and p not in frames_before]
    assert not left, left  # the file's name is gone once every rank mapped it
    assert proc.stdout.count("resuming after epoch 1") == 1
    assert load_model(out / "last.pt").config.num_classes == 3


# ---------------------------------------------------------------- the command line
def _gesture_npy(root: Path, users, n: int = 600) -> None:
    """tonic's preprocessed DVS128 Gesture layout: (N, 4) float arrays x, y, p, t (ms)."""
    for user, light in users:
        folder = "ibmGestureTrain" if user <= 23 else "ibmGestureTest"
        d = root / "DVSGesture" / folder / f"user{user:02d}_{light}"
        d.mkdir(parents=True, exist_ok=True)
        for label in range(11):
            rng = np.random.default_rng(1000 * user + label)
            cx, cy = 16 + (label % 5) * 24, 24 + (label // 5) * 40
            arr = np.stack([np.clip(rng.normal(cx, 6, n), 0, 127).round(), np.clip(rng.normal(cy, 6, n), 0, 127).round(),
                            rng.integers(0, 2, n), np.sort(rng.integers(0, 1500, n))], axis=1).astype(np.float64)
            np.save(d / f"{label}.npy", arr)


def test_cli_train_end_to_end_on_a_gesture_folder(tmp_path, capsys):
    pytest.importorskip("dvsstream.datasets.load")
    from dvsstream.cli import main

    _gesture_npy(tmp_path / "data", [(1, "lab"), (24, "lab")])
    out = tmp_path / "out"
    argv = ["train", "--dataset", "dvsgesture", "--root", str(tmp_path / "data"), "--model", "spikformer_dvs_tiny",
            "--epochs", "2", "--batch-size", "4", "--warmup-epochs", "1", "--no-hflip", "--device", "cpu",
            "--limit", "8", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    assert main(argv + ["--resume"]) == 2  # nothing to resume: a one-line error
    assert "does not exist" in capsys.readouterr().err
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "final-epoch test accuracy" in text and "--no-hflip" not in text
    result = json.loads((out / "result.json").read_text())
    assert result["dataset"] == "dvsgesture" and len(result["classes"]) == 11
    assert result["train_samples"] == 8 and result["test_samples"] == 11 and result["final_epoch"] == 2
    assert result["frame_spec"]["n_bins"] == 8 and result["frame_spec"]["downsample"] == 2
    assert result["train_config"]["hflip"] is False
    model = load_model(out / "best.pt")
    assert model.config.num_classes == 11 and model.config.name == "spikformer_dvs_tiny"
    assert main(argv) == 2  # the run exists: refuses to overwrite it
    assert "--resume" in capsys.readouterr().err
    # fine-tuning starts from the given weights: the same command without --init would
    # repeat the first run bit for bit (same seed, CPU), with it the weights move on
    tuned = tmp_path / "tuned"
    argv_ft = [a if a != str(out) else str(tuned) for a in argv] + ["--init", str(out / "last.pt")]
    assert main(argv_ft) == 0
    assert f"initialised from {out / 'last.pt'}" in capsys.readouterr().out
    again = tmp_path / "again"
    assert main([a if a != str(out) else str(again) for a in argv]) == 0
    first, second, third = (load_model(d / "last.pt").state_dict() for d in (out, tuned, again))
    assert all(torch.equal(first[k], third[k]) for k in first)
    assert any(not torch.equal(first[k], second[k]) for k in first if first[k].is_floating_point())


def test_frame_spec_follows_the_model():
    pytest.importorskip("dvsstream.datasets.load")
    from dvsstream.models import get_config
    from dvsstream.training.train import frame_spec_for

    spec = frame_spec_for(get_config("spikformer_dvs_tiny"))
    assert (spec.n_bins, spec.mode, tuple(spec.sensor_size), spec.downsample) == (8, "count", (128, 128), 2)
    assert frame_spec_for(get_config("spikformer_dvs")).downsample == 1
    assert frame_spec_for(get_config("spikformer_dvs_tiny"), "time").mode == "time"
    resized = frame_spec_for(get_config("spikformer_dvs_tiny", img_size=(48, 48)))  # 128 -> 48: nearest bin
    assert (resized.roi, resized.size, resized.frame_shape) == ((0, 0, 128, 128), (48, 48), (8, 2, 48, 48))
    assert frame_spec_for(get_config("spikformer_dvs_tiny"), roi=(16, 16, 96, 96)).frame_shape == (8, 2, 64, 64)
    with pytest.raises(DvsstreamError, match="not inside the 128x128 sensor"):
        frame_spec_for(get_config("spikformer_dvs_tiny"), roi=(64, 64, 96, 96))


# ---------------------------------------------------------------- speed options
def _weights(out: Path) -> dict:
    return torch.load(out / "last.pt", weights_only=True)["state_dict"]


def test_recompute_trains_to_the_same_weights(tmp_path):
    """``recompute`` (batch norm + LIF recomputed in the backward) changes what is kept,
    not a bit of the result: the same losses and the same final weights."""
    data = SyntheticFrames(24, seed=1), SyntheticFrames(12, seed=2)
    cfg = dict(epochs=2, mixup_until=1)
    plain = train(micro_model(), *data, small_config(**cfg), tmp_path / "plain", device="cpu", log=None)
    model = micro_model()
    again = train(model, *data, small_config(recompute=True, **cfg), tmp_path / "re", device="cpu", log=None)
    from dvsstream.training.memory import measure_step_memory

    x, y = data[0].frames[:8], torch.tensor(data[0].labels[:8])  # what the run kept per step: less
    assert measure_step_memory(model, x, y).saved_bytes < 0.8 * measure_step_memory(micro_model(), x, y).saved_bytes
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in plain.history]
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "re")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "re" / "result.json").read_text())["train_config"]["recompute"] is True


def test_channels_last_follows_the_same_loss_trajectory(tmp_path):
    data = SyntheticFrames(24, seed=1), SyntheticFrames(12, seed=2)
    cfg = dict(epochs=3, mixup_until=2)
    plain = train(micro_model(), *data, small_config(**cfg), tmp_path / "plain", device="cpu", log=None)
    model = micro_model()
    cl = train(model, *data, small_config(channels_last=True, **cfg), tmp_path / "cl", device="cpu", log=None)
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    for a, b in zip(plain.history, cl.history):  # same math, other kernels: float32 round-off only
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4, abs=1e-5)
        assert b["test_loss"] == pytest.approx(a["test_loss"], rel=1e-4, abs=1e-5)
    assert json.loads((tmp_path / "cl" / "result.json").read_text())["channels_last"] is True
    # one step from the same weights: the same gradients up to float32 round-off (over
    # epochs a round-off can flip a spike, so the weights are compared after one step only)
    from dvsstream.training.steps import forward_loss

    x, y = data[0].frames[:8], torch.tensor(data[0].labels[:8])
    targets = torch.nn.functional.one_hot(y, 3).float()
    grads = []
    for channels_last in (False, True):
        m = micro_model()
        if channels_last:
            m.to(memory_format=torch.channels_last)
        forward_loss(m, x, targets, None, channels_last)[0].backward()
        grads.append({n: p.grad for n, p in m.named_parameters()})
    scale = max(float(g.abs().max()) for g in grads[0].values())
    for n, g in grads[0].items():
        torch.testing.assert_close(grads[1][n], g, rtol=0, atol=1e-5 * scale, msg=n)


def test_bf16_autocast_trains_on_cpu(tmp_path):
    from dvsstream.training.steps import forward_loss

    model = micro_model()
    x, y = SyntheticFrames(4, seed=3)[0][0].unsqueeze(0), torch.tensor([0])
    loss, logits = forward_loss(model, x, torch.nn.functional.one_hot(y, 3).float(), torch.bfloat16)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32  # autocast is on, the loss in float32
    data = SyntheticFrames(48, seed=1), SyntheticFrames(24, seed=2)  # the float32 test's set and recipe
    res = train(micro_model(), *data, small_config(epochs=8, lr=5e-3, mixup_until=0, amp="bf16"), tmp_path / "bf16",
                device="cpu", log=None)
    losses = [r["train_loss"] for r in res.history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.8 * losses[0], losses
    assert res.final_acc >= 0.8  # 3 easy classes, chance 1/3 (measured: 1.0)
    assert json.loads((tmp_path / "bf16" / "result.json").read_text())["amp"] == "bf16"
    with pytest.raises(DvsstreamError, match="fp16 needs CUDA"):
        train(micro_model(), *data, small_config(epochs=1, amp="fp16"), tmp_path / "fp16", device="cpu", log=None)
    with pytest.raises(DvsstreamError, match="amp must be one of"):
        small_config(amp="fp8")


def test_frames_in_memory_are_bitwise_the_dataset_frames(tmp_path):
    pytest.importorskip("dvsstream.datasets.load")
    from dvsstream.datasets.in_memory import FramesInMemory
    from dvsstream.datasets.load import load_dataset
    from dvsstream.training.held_frames import hold_in_memory
    from dvsstream.training.train import frame_spec_for

    _gesture_npy(tmp_path / "data", [(1, "lab"), (24, "lab")], n=300)
    model = micro_model(classes=11)
    spec = frame_spec_for(model.config)
    disk = load_dataset("dvsgesture", tmp_path / "data", split="train", spec=spec, cache_dir=tmp_path / "cache")
    held = FramesInMemory.load(disk)
    assert len(held) == len(disk) == 11 and held.classes == disk.classes
    for i in range(len(disk)):
        (a, ya), (b, yb) = disk[i], held[i]
        assert ya == yb and a.dtype == b.dtype == torch.float32 and torch.equal(a, b)
    assert held.nbytes == 11 * 4 * 2 * 32 * 32  # counts held as uint8: a quarter of float32
    assert FramesInMemory.load(disk, budget_bytes=held.nbytes - 1) is None
    assert FramesInMemory.estimate_bytes(disk) == held.nbytes
    # shared between the ranks of one machine: one file, mapped (still there once deleted)
    layout = held.save_shared(tmp_path / "frames.bin")
    mapped = FramesInMemory.open_shared(disk, layout)
    assert mapped.shared and (tmp_path / "frames.bin").stat().st_size == held.nbytes
    maps = Path("/proc/self/maps")
    if maps.is_file():
        assert str(tmp_path / "frames.bin") in maps.read_text()
    (tmp_path / "frames.bin").unlink()
    for i in range(len(disk)):
        (a, ya), (b, yb) = held[i], mapped[i]
        assert ya == yb and b.dtype == torch.float32 and torch.equal(a, b)
    # the same training, from memory (no workers) and from the disk cache (a worker process)
    cfg = dict(epochs=1, batch_size=4, mixup_until=1)
    lines = []
    test = load_dataset("dvsgesture", tmp_path / "data", split="test", spec=spec, cache_dir=tmp_path / "cache")
    mem = train(micro_model(classes=11), disk, test, small_config(cache_frames="on", **cfg), tmp_path / "mem",
                device="cpu", log=lines.append, classes=disk.classes)
    assert any("training frames held in memory: 0.1 MiB" in line for line in lines)  # 88 KiB
    lines.clear()
    on_disk = train(micro_model(classes=11), disk, test, small_config(cache_frames="off", workers=1, **cfg),
                    tmp_path / "disk", device="cpu", log=lines.append, classes=disk.classes)
    assert not any("held in memory" in line for line in lines)
    assert _curve(mem.history) == _curve(on_disk.history) and math.isfinite(mem.history[0]["test_loss"])
    wa, wb = _weights(tmp_path / "mem"), _weights(tmp_path / "disk")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # auto: held when the frames fit the budget (88 KiB here), else the dataset itself
    lines.clear()
    assert isinstance(hold_in_memory(disk, "auto", 0.1, say=lines.append), FramesInMemory)
    assert hold_in_memory(disk, "auto", 0.08, say=lines.append) is disk
    assert hold_in_memory(disk, "off", 1e9) is disk
    assert "held in memory" in lines[0] and "do not fit the memory budget (0.08 MiB)" in lines[1]


def test_frames_in_memory_reads_by_index():
    """A dataset indexed by sampler only (its __getitem__ never raises IndexError: held
    in memory it was read forever, until the machine ran out of memory)."""
    from dvsstream.datasets.in_memory import FramesInMemory

    class Endless(torch.utils.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return torch.full((2, 2, 8, 8), float(i % 3)), i % 3

    held = FramesInMemory.load(Endless())
    assert len(held) == 5 and held.nbytes == 5 * 2 * 2 * 8 * 8  # uint8
    assert torch.equal(held[4][0], torch.full((2, 2, 8, 8), 1.0)) and held[4][1] == 1


def test_measure_step_memory_counts_the_saved_activations():
    from dvsstream.training.memory import measure_step_memory

    model = micro_model()
    frames = SyntheticFrames(4, seed=1).frames
    m4 = measure_step_memory(model, frames)
    m2 = measure_step_memory(model, frames[:2])
    assert m4.device == "cpu" and m4.batch == 4 and m4.peak_bytes == m4.saved_bytes
    # activations scale with the batch; the weights (~29 k float32) are not counted
    assert 1.7 < m4.saved_bytes / m2.saved_bytes < 2.3
    assert m4.saved_bytes > 4 * frames[0].numel() * 4  # more than the input itself
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    bf = measure_step_memory(micro_model(), frames, amp="bf16")
    assert bf.saved_bytes < m4.saved_bytes  # half-width activations


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fused_adamw_and_fp16_on_cuda(tmp_path):
    from dvsstream.training.memory import measure_step_memory

    model = micro_model().cuda()
    assert build_optimizer(model, 1e-3, 0.06).defaults["fused"]
    data = SyntheticFrames(24, seed=1), SyntheticFrames(12, seed=2)
    res = train(micro_model(), *data, small_config(epochs=2, mixup_until=0), tmp_path, device="cuda", log=None)
    assert all(math.isfinite(r["train_loss"]) for r in res.history)
    assert json.loads((tmp_path / "result.json").read_text())["amp"] == "fp16"
    mem = measure_step_memory(micro_model().cuda(), SyntheticFrames(4, seed=1).frames, amp="fp16")
    assert mem.peak_bytes > mem.saved_bytes > 0


def test_cli_train_rejects_fp16_on_a_cpu(tmp_path, capsys):
    from dvsstream.cli import main

    (tmp_path / "data").mkdir()
    argv = ["train", "--dataset", "dvsgesture", "--root", str(tmp_path / "data"), "--model", "spikformer_dvs_tiny",
            "--device", "cpu", "--amp", "fp16", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--amp fp16 needs CUDA" in err[0]
    assert not (tmp_path / "out").exists()
