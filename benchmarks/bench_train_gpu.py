"""Training on the GPU: issue 13's device figures, in one short run.

    python benchmarks/bench_train_gpu.py [--device cuda] [--batch 16] [--T 16] [--amp fp16]
                                         [--steps 20] [--epoch-samples 9000] [--only step|epoch]
    python benchmarks/bench_train_gpu.py --device cpu --quick     # a smoke test of this script

Prints, on one device, with the same weights (a copied state dict):

* **step**: samples/s of a ``spikformer_dvs`` training step (forward, backward, optimiser)
  at ``[B, T, 2, 128, 128]`` under autocast (``--amp``: fp16 with a GradScaler, bf16, or
  off) for dvsstream (its fused LIF, AdamW as ``dvsstream train`` builds it: fused on
  CUDA) and for the release-structured model on spikingjelly 2.0's ``LIFNode`` torch
  backend with ``torch.optim.AdamW`` (the peer); median of ``--steps``, the ratio
  (target >= 2x) and each one's peak memory (``torch.cuda.max_memory_allocated``);
  also dvsstream with ``--recompute`` (batch norm + LIF recomputed in the backward).
* **epoch**: the seconds of one epoch of :class:`dvsstream.training.trainer.Trainer` (the code of
  ``dvsstream train``: augmentation, mixup, AMP, the loader) over ``--epoch-samples``
  samples of ``[T, 2, 128, 128]`` count frames held in memory (CIFAR10-DVS's 9,000
  training samples by default; goal <= 20 s on one H100/H200), after a short warm-up
  epoch, and the peak memory.

``--lif torch`` runs dvsstream's fused LIF with torch operations instead of the kernels
``torch.compile`` generates (the first step then costs no compilation).

spikingjelly is a benchmark-only peer: ``pip install --no-deps spikingjelly==2.0.0 loguru``
(the device machine has no package index: carry the wheel). Exit status 2 when the
device or the peer is missing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the releases' reference models
from bench_models import sj_lif_factory  # noqa: E402  (the peer's LIF)

from dvsstream.models import create_model  # noqa: E402
from dvsstream.models.fusion import set_recompute  # noqa: E402
from reference_models import reference_model  # noqa: E402
from model_testing import randomize_batchnorm  # noqa: E402
from dvsstream.training.config import TrainConfig  # noqa: E402
from dvsstream.training.schedule import build_optimizer  # noqa: E402
from dvsstream.training.trainer import Trainer  # noqa: E402

AMP = {"fp16": torch.float16, "bf16": torch.bfloat16, "off": None}


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def peak_reset(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def peak_gib(dev: torch.device) -> float:
    """Peak allocated memory since :func:`peak_reset` (GiB; 0 off CUDA)."""
    return torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else 0.0


class Stepper:
    """One model's training step under autocast ``amp`` (a GradScaler for fp16)."""

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer, amp, dev: torch.device) -> None:
        self.model, self.opt, self.amp, self.dev = model.train(), opt, amp, dev
        self.scaler = torch.amp.GradScaler(dev.type, enabled=amp is torch.float16)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast(self.dev.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            loss = F.cross_entropy(self.model(x), y)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()


def time_steps(step: Stepper, x, y, n: int, dev: torch.device) -> tuple[list[float], float]:
    """Seconds of ``n`` steps each (after 3 warm-up steps) and the peak memory (GiB)."""
    for _ in range(3):
        step(x, y)
    sync(dev)
    peak_reset(dev)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step(x, y)
        sync(dev)
        times.append(time.perf_counter() - t0)
    return times, peak_gib(dev)


def bench_step(args, dev: torch.device) -> None:
    torch.manual_seed(0)
    ours = create_model("spikformer_dvs", T=args.T)
    randomize_batchnorm(ours)  # neurons fire at realistic rates from the first step
    peer = reference_model(ours.config, lif=sj_lif_factory())
    peer.load_state_dict(ours.state_dict())
    lean = set_recompute(copy.deepcopy(ours), True)  # less kept for the backward, the same numbers
    ours.to(dev), peer.to(dev), lean.to(dev)
    g = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((args.batch, args.T, 2, 128, 128), 0.3), generator=g).to(dev)
    y = (torch.arange(args.batch) % ours.config.num_classes).to(dev)
    amp = AMP[args.amp]
    steppers = {
        "dvsstream": Stepper(ours, build_optimizer(ours, 1e-4, 0.06), amp, dev),
        "--recompute": Stepper(lean, build_optimizer(lean, 1e-4, 0.06), amp, dev),
        "spikingjelly": Stepper(peer, torch.optim.AdamW(peer.parameters(), lr=1e-4, weight_decay=0.06), amp, dev),
    }
    res = {}
    for name, s in steppers.items():
        try:
            res[name] = time_steps(s, x, y, args.steps, dev)
        except RuntimeError as e:  # untried on this device: say so, time the others
            if name == "dvsstream" or name == "spikingjelly":
                raise
            print(f"  {name}: failed on {dev}: {str(e).splitlines()[0]}")
    print(f"training step spikformer_dvs B={args.batch} T={args.T} amp={args.amp} on {dev}, "
          f"median of {args.steps}:")
    rate = {}
    for name, (times, peak) in res.items():
        med = statistics.median(times)
        rate[name] = args.batch / med
        print(f"  {name:13s} {med * 1e3:8.1f} ms/step  {rate[name]:8.1f} samples/s  peak memory {peak:.2f} GiB")
    print(f"  speed-up: {rate['dvsstream'] / rate['spikingjelly']:.2f}x  (target >= 2x)")


class InMemoryFrames(torch.utils.data.Dataset):
    """``n`` samples of uint8 count frames ``[T, 2, 128, 128]`` held in memory, 10 classes.
    ``distinct`` different Poisson samples are cycled (generating 9,000 distinct ones
    costs minutes and changes nothing the timing sees: each sample is copied, augmented
    and moved to the device as a distinct one would be)."""

    def __init__(self, n: int, T: int, distinct: int = 64) -> None:
        g = torch.Generator().manual_seed(1)
        self.frames = torch.poisson(torch.full((min(n, distinct), T, 2, 128, 128), 0.3), generator=g).to(torch.uint8)
        self.n, self.classes = n, [str(i) for i in range(10)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return self.frames[i % self.frames.shape[0]], i % 10


def bench_epoch(args, dev: torch.device) -> None:
    torch.manual_seed(0)
    model = create_model("spikformer_dvs", T=args.T)
    data = InMemoryFrames(args.epoch_samples, args.T)
    cfg = TrainConfig(epochs=2, batch_size=args.batch, amp=args.amp, cache_frames="off", tensorboard=False,
                      workers=args.workers, channels_last=args.channels_last)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model, data, None, cfg, out, device=dev, log=None)
        trainer.prepare()
        warm = Trainer(model, InMemoryFrames(min(len(data), 8 * args.batch), args.T), None, cfg, out,
                       device=dev, log=None)
        warm.prepare()  # a short epoch first: kernels chosen and compiled, allocator warm
        warm.train_epoch(1)
        peak_reset(dev)
        r = trainer.train_epoch(1)
    print(f"one epoch of dvsstream's Trainer: {r['n']:,} samples of [{args.T}, 2, 128, 128] in memory, "
          f"B={args.batch}, amp={args.amp}, workers={args.workers}, channels_last={args.channels_last} on {dev}: "
          f"{r['train_s']:.1f} s ({r['n'] / r['train_s']:.1f} samples/s), peak memory {peak_gib(dev):.2f} GiB "
          f"(goal <= 20 s on one H100/H200)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--T", type=int, default=16)
    ap.add_argument("--amp", choices=tuple(AMP), default="fp16")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per model (default 20)")
    ap.add_argument("--epoch-samples", type=int, default=9000)
    ap.add_argument("--workers", type=int, default=4, help="loader processes of the epoch (default 4)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--lif", choices=("auto", "compiled", "torch"), default="auto",
                    help="dvsstream's fused-LIF kernels (auto: generated by torch.compile on CUDA)")
    ap.add_argument("--only", choices=("step", "epoch"), action="append")
    ap.add_argument("--quick", action="store_true", help="B=2, T=4, 2 steps, a 16-sample epoch, no workers")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA device here (torch {torch.__version__}); this benchmark is for a GPU machine")
        return 2
    if args.quick:
        args.batch, args.T, args.steps, args.epoch_samples, args.workers = 2, 4, 2, 16, 0
    if dev.type != "cuda" and args.amp == "fp16":
        args.amp = "off"  # fp16 autocast is CUDA's
    try:
        sj_lif_factory()(2.0, 1.0)
    except ImportError as e:
        print(f"spikingjelly is needed as the peer ({e}): pip install --no-deps spikingjelly==2.0.0 loguru")
        return 2
    from dvsstream.models import neurons

    neurons.fused_kernels = args.lif
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    probe = torch.zeros(args.T, 8, device=dev)
    print(f"torch {torch.__version__}, {name}, fused LIF kernels: {neurons.fused_kernel(probe, True)}")
    parts = args.only or ["step", "epoch"]
    if "step" in parts:
        bench_step(args, dev)
    if "epoch" in parts:
        bench_epoch(args, dev)
    return 0


if __name__ == "__main__":
    sys.exit(main())
