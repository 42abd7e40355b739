"""Training step and Spikingformer inference: dvsstream.models vs spikingjelly, same run.

    python benchmarks/bench_train.py [--batch 2] [--T 16] [--steps 5] [--threads N]
                                     [--mem-batch 16] [--profile] [--quick]

In one process, with the same weights (a copied state dict):

* one CPU training step (forward, backward, AdamW step) of ``spikformer_dvs`` at
  ``[B, T, 2, 128, 128]`` (float32): dvsstream against the release-structured model on
  spikingjelly 2.0's ``LIFNode(step_mode="m")`` torch backend (the peer), median ms/step
  and the ratio;
* the gradients of both (float64, every parameter): max |diff| / max |grad|, also against
  dvsstream's per-step reference LIF path (``LIF.fused_autograd = False``);
* the saved-for-backward (activation) memory of one training step at ``--mem-batch``
  (bytes of the distinct tensors autograd keeps, parameters excluded), as trained by
  default and with ``--recompute`` (batch norm + LIF recomputed in the backward);
* ``spikingformer_dvs`` inference against the Spikingformer architecture on spikingjelly
  (batch 1), its logits compared, median ms (at least 5 rounds) and the ratio: as built
  and with its batch norms folded (``fuse_bn``, what ``prepare_for_inference`` serves;
  the inference figure), the peer being the release's structure as it is.

``--profile`` prints the top operators by self CPU time of one dvsstream training step
(and of the peer's). ``--quick``: fewer repeats, float64 check at T=4, memory at batch 4.
spikingjelly is a benchmark-only peer: ``pip install --no-deps spikingjelly==2.0.0 loguru``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the releases' reference models
from bench_models import interleaved, sj_lif_factory  # noqa: E402  (the peer's LIF, the timer)

from dvsstream.models import create_model  # noqa: E402
from dvsstream.models.fusion import set_recompute  # noqa: E402
from dvsstream.models.neurons import LIF  # noqa: E402
from reference_models import reference_model  # noqa: E402
from model_testing import randomize_batchnorm  # noqa: E402
from dvsstream.training.memory import measure_step_memory  # noqa: E402


def frames(B: int, T: int, seed: int = 0, rate: float = 0.3) -> torch.Tensor:
    """Poisson event counts ``[B, T, 2, 128, 128]`` (float32)."""
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((B, T, 2, 128, 128), rate), generator=g)


def pair(name: str, T: int, dtype=torch.float32) -> tuple[nn.Module, nn.Module]:
    """dvsstream's model and the spikingjelly-based release-structured peer, same weights."""
    torch.manual_seed(0)
    ours = create_model(name, T=T)
    randomize_batchnorm(ours)  # neurons fire at realistic rates from the first step
    peer = reference_model(ours.config, lif=sj_lif_factory())
    peer.load_state_dict(ours.state_dict())
    return ours.to(dtype), peer.to(dtype)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def time_training(args) -> None:
    ours, peer = pair("spikformer_dvs", args.T)
    set_recompute(ours, args.recompute)
    x = frames(args.batch, args.T)
    y = torch.arange(args.batch) % ours.config.num_classes
    opts = {id(m): torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.06) for m in (ours, peer)}
    ours.train(), peer.train()
    la, lb = train_step(ours, opts[id(ours)], x, y), train_step(peer, opts[id(peer)], x, y)
    print(f"first-step loss: dvsstream {la:.6f}, spikingjelly {lb:.6f}")
    r = interleaved(
        {"dvsstream": lambda: train_step(ours, opts[id(ours)], x, y),
         "spikingjelly": lambda: train_step(peer, opts[id(peer)], x, y)},
        args.steps,
    )
    a, b = statistics.median(r["dvsstream"]), statistics.median(r["spikingjelly"])
    how = ", batch norm + LIF recomputed" if args.recompute else ""
    print(f"training step spikformer_dvs B={args.batch} T={args.T} float32 (fwd+bwd+AdamW{how}), "
          f"median of {args.steps}:")
    print(f"  dvsstream {a:9.1f} ms/step  (min {min(r['dvsstream']):.1f})")
    print(f"  spikingjelly LIFNode(m) torch {b:9.1f} ms/step  (min {min(r['spikingjelly']):.1f})")
    print(f"  speed-up: {b / a:.2f}x  (target >= 2.5x)")
    if args.profile:
        profile_step("dvsstream", ours, opts[id(ours)], x, y)
        profile_step("spikingjelly peer", peer, opts[id(peer)], x, y)


def profile_step(label: str, model: nn.Module, opt, x, y, rows: int = 18) -> None:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_step(model, opt, x, y)
    print(f"\n--- profile: one training step, {label} (top {rows} by self CPU time) ---")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40))


def grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def agreement(a: dict, b: dict) -> str:
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    scale = max(g.abs().max().item() for g in a.values())
    return f"max |diff| {diff:.2e} / max |grad| {scale:.2e} = {diff / scale:.2e}"


def check_gradients(args) -> None:
    T = 4 if args.quick else args.T
    ours, peer = pair("spikformer_dvs", T, torch.float64)
    ours.train(), peer.train()
    x, y = frames(1, T, seed=1).double(), torch.tensor([3])
    g_ours = grads(ours, x, y)
    g_peer = grads(peer, x, y)
    LIF.fused_autograd = False
    try:
        g_slow = grads(ours, x, y)
    finally:
        LIF.fused_autograd = True
    assert set(g_ours) == set(g_peer), "the models' parameters differ"
    print(f"float64 gradients (B=1, T={T}, {len(g_ours)} parameters):")
    print(f"  fused LIF vs spikingjelly:       {agreement(g_ours, g_peer)}")
    print(f"  fused LIF vs per-step reference: {agreement(g_ours, g_slow)}")


def memory(args) -> None:
    B = 4 if args.quick else args.mem_batch
    ours, peer = pair("spikformer_dvs", args.T)
    x = frames(B, args.T, seed=2)
    y = torch.arange(B) % ours.config.num_classes
    a, b = (measure_step_memory(m, x, y).saved_bytes for m in (ours, peer))
    r = measure_step_memory(set_recompute(ours, True), x, y).saved_bytes
    set_recompute(ours, False)
    print(f"activation memory of one training step, B={B} T={args.T} float32 (saved for backward):")
    print(f"  dvsstream {a / 2**30:.2f} GiB ({a / b:.2f}x), with --recompute {r / 2**30:.2f} GiB ({r / b:.2f}x); "
          f"spikingjelly {b / 2**30:.2f} GiB")


def spikingformer_inference(args) -> None:
    ours, peer = pair("spikingformer_dvs", args.T)
    ours.eval(), peer.eval()
    fused = create_model("spikingformer_dvs", T=args.T).eval()
    fused.load_state_dict(ours.state_dict())
    fused.fuse_bn()  # what prepare_for_inference (eval, run) serves: batch norms folded
    x = frames(1, args.T, seed=3)
    with torch.inference_mode():
        a, f, b = ours(x), fused(x), peer(x)
    print(f"spikingformer_dvs inference B=1 T={args.T} float32: logits max |diff| vs spikingjelly "
          f"{(a - b).abs().max().item():.2e} (fused BN {(f - b).abs().max().item():.2e}), argmax equal "
          f"{torch.equal(a.argmax(-1), b.argmax(-1))} (fused BN {torch.equal(f.argmax(-1), b.argmax(-1))})")

    def run(m):
        def f():
            with torch.inference_mode():
                m(x)
        return f

    r = interleaved({"dvsstream": run(ours), "dvsstream+fused-BN": run(fused), "spikingjelly": run(peer)},
                    max(5, args.steps))
    b_ms = statistics.median(r["spikingjelly"])
    for name in ("dvsstream", "dvsstream+fused-BN"):
        a_ms = statistics.median(r[name])
        print(f"  {name:18s} {a_ms:6.1f} ms, spikingjelly {b_ms:.1f} ms: {b_ms / a_ms:.2f}x (target >= 3x)")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run(fused)()
        print("\n--- profile: spikingformer_dvs inference, dvsstream fused BN (top 15 by self CPU time) ---")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=40))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=2, help="training-step batch (default 2)")
    ap.add_argument("--T", type=int, default=16, help="time steps (default 16)")
    ap.add_argument("--steps", type=int, default=5, help="timed rounds per measurement (default 5)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: os.cpu_count())")
    ap.add_argument("--mem-batch", type=int, default=16, help="batch of the memory measurement (default 16)")
    ap.add_argument("--profile", action="store_true", help="print torch.profiler tables")
    ap.add_argument("--quick", action="store_true", help="2 rounds, float64 check at T=4, memory at batch 4")
    ap.add_argument("--only", choices=("train", "grad", "memory", "spikingformer"), action="append",
                    help="run only these parts (repeatable)")
    ap.add_argument("--recompute", action="store_true",
                    help="time the training step with batch norm + LIF recomputed in the backward")
    args = ap.parse_args(argv)
    for name in ("batch", "T", "steps", "mem_batch"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.quick:
        args.steps = min(args.steps, 2)
    try:
        sj_lif_factory()(2.0, 1.0)
    except ImportError as e:
        print(f"spikingjelly is needed as the peer ({e}): pip install --no-deps spikingjelly==2.0.0 loguru")
        return 2
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    from dvsstream.heap import keep_freed_memory

    heap = keep_freed_memory()  # as `dvsstream train` on a CPU does; process-wide: the peer's steps too
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, freed memory kept in the heap: {heap} "
          "(both models; DVSSTREAM_KEEP_HEAP=0: glibc's default)")
    parts = args.only or ["train", "grad", "memory", "spikingformer"]
    for part, fn in (("train", time_training), ("grad", check_gradients), ("memory", memory),
                     ("spikingformer", spikingformer_inference)):
        if part in parts:
            fn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
