"""Spikformer DVS inference: dvsstream.models vs the same architecture on spikingjelly.

    python benchmarks/bench_models.py [--model spikformer_dvs] [--T 16] [--batch 1]
                                      [--repeats 15] [--threads N] [--device cpu|cuda]

Builds ``spikformer_dvs`` (random weights, batch norms given non-trivial statistics so
that neurons fire), copies the *same* weights into a release-structured model whose LIF
layers are spikingjelly 2.0's ``LIFNode(step_mode="m")`` (the library the release uses),
checks that both give the same logits, and prints median latencies and their ratio.
Also times one ``model.step(frame)`` against a full T-step forward.

spikingjelly is a benchmark-only peer, not a dependency:
``pip install --no-deps spikingjelly==2.0.0 loguru``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from pathlib import Path

import torch

from dvsstream.models import create_model

# the releases' reference models are test code: tests/reference_models.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from model_testing import randomize_batchnorm  # noqa: E402
from reference_models import reference_model  # noqa: E402


def sj_lif_factory():
    from spikingjelly.activation_based import neuron, surrogate

    def make(tau: float = 2.0, v_threshold: float = 1.0):
        return neuron.LIFNode(
            tau=float(tau), v_threshold=float(v_threshold), v_reset=0.0, decay_input=True,
            surrogate_function=surrogate.Sigmoid(alpha=4.0), detach_reset=True, step_mode="m",
        )

    return make


def timeit(fn, repeats: int, sync=lambda: None) -> list[float]:
    return interleaved({"f": fn}, repeats, sync)["f"]


def interleaved(fns: dict, repeats: int, sync=lambda: None) -> dict[str, list[float]]:
    """Median-friendly timings: every round runs each function once, in turn, so that
    load from other processes on a shared machine hits all of them alike."""
    for f in fns.values():
        f()
        f()
    sync()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            sync()
            out[k].append((time.perf_counter() - t0) * 1e3)
    return out


def bench_lif(args, dev, sync) -> None:
    """The LIF layer alone on the first SPS map [T, B, 32, 128, 128]."""
    from dvsstream.models.neurons import lif_multistep, lif_multistep_inference

    x = torch.randn(args.T, args.batch, 32, 128, 128, device=dev) * 2
    fns = {
        "ours LIF (inference path)": lambda: lif_multistep_inference(x),
        "ours LIF (autograd path)": lambda: lif_multistep(x),
    }
    with torch.inference_mode():
        ref, _ = lif_multistep(x)
        assert torch.equal(lif_multistep_inference(x)[0], ref)
        try:
            sj = sj_lif_factory()(2.0, 1.0)

            def run_sj():
                sj.reset()
                return sj(x)

            assert torch.equal(run_sj(), ref)
            fns["spikingjelly LIFNode(m)"] = run_sj
        except ImportError:
            pass
        r = interleaved(fns, args.repeats, sync)
    print(f"LIF alone on {tuple(x.shape)}: " + "; ".join(f"{k} {statistics.median(v):.1f} ms" for k, v in r.items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="spikformer_dvs")
    ap.add_argument("--T", type=int, default=16)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="0: physical cores (os.cpu_count())")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--half", action="store_true", help="also time float16 (CUDA only)")
    ap.add_argument("--no-ref", action="store_true", help="skip the spikingjelly reference")
    ap.add_argument("--lif", action="store_true", help="also time the LIF layer alone (largest SPS map)")
    args = ap.parse_args(argv)

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    print(f"torch {torch.__version__}, device {dev}, threads {torch.get_num_threads()}, "
          f"model {args.model}, batch {args.batch}, T {args.T}")

    torch.manual_seed(0)
    model = create_model(args.model, T=args.T).eval()
    randomize_batchnorm(model)
    cfg = model.config
    x = torch.poisson(torch.full((args.batch, args.T, cfg.in_channels, *cfg.img_size), 0.3))
    model.to(dev)
    x = x.to(dev)
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")

    with torch.inference_mode():
        ref_logits = model(x).clone()
    rates = {}
    for n, l in model.lif_layers().items():
        l.record = []
    with torch.inference_mode():
        model(x)
    for n, l in model.lif_layers().items():
        s, c = map(sum, zip(*l.record))
        rates[n] = s / c
        l.record = None
    print("firing rates: " + ", ".join(f"{n.replace('patch_embed.', '')}={r:.3f}" for n, r in list(rates.items())[:6]) + ", ...")

    def run_ours():
        with torch.inference_mode():
            return model(x)

    fused = create_model(args.model, T=args.T).eval()
    fused.load_state_dict(model.state_dict())
    fused.to(dev).fuse_bn()
    with torch.inference_mode():
        fused_logits = fused(x).clone()
    print(f"fused-BN vs unfused logits: max |diff| = {(fused_logits - ref_logits).abs().max().item():.2e}")

    def run_fused():
        with torch.inference_mode():
            return fused(x)

    fns = {"ours": run_ours, "ours+fused-BN": run_fused}
    if dev.type == "cuda":
        from dvsstream.models import CudaGraphForward

        graphed = CudaGraphForward(fused, x)
        graph_logits = graphed(x)
        print(f"CUDA graph vs eager (fused BN) logits equal: {torch.equal(graph_logits, fused_logits)}")
        fns["ours+fused-BN+CUDA graph"] = lambda: graphed(x)
    if args.half:
        if dev.type != "cuda":
            print("--half: float16 is offered on CUDA only; skipped")
        else:
            half = create_model(args.model, T=args.T).eval()
            half.load_state_dict(model.state_dict())
            half.to(dev).fuse_bn().half()
            xh = x.half()
            with torch.inference_mode():
                agree = (half(xh).argmax(-1) == ref_logits.argmax(-1)).float().mean().item()
            print(f"float16 (fused BN): argmax agreement with float32 {agree:.3f}")

            def run_half():
                with torch.inference_mode():
                    return half(xh)

            fns["ours+fused-BN fp16"] = run_half
    if not args.no_ref:
        try:
            make = sj_lif_factory()

            peer = reference_model(cfg, lif=make).eval().to(dev)
            peer.load_state_dict(model.state_dict())
            with torch.inference_mode():
                peer_logits = peer(x)
            diff = (peer_logits - ref_logits).abs().max().item()
            same = torch.equal(peer_logits, ref_logits)
            try:
                from importlib.metadata import version

                sj_version = version("spikingjelly")
            except Exception:  # pragma: no cover
                sj_version = "?"
            print(f"spikingjelly {sj_version} reference: logits "
                  f"{'identical' if same else f'max |diff| {diff:.2e}'}; argmax equal: "
                  f"{torch.equal(peer_logits.argmax(-1), ref_logits.argmax(-1))}")

            def run_peer():
                with torch.inference_mode():
                    return peer(x)

            fns["spikingjelly LIFNode(m)"] = run_peer
        except ImportError as e:
            print(f"spikingjelly not available ({e}); pip install --no-deps spikingjelly==2.0.0 loguru")
        except Exception as e:  # e.g. a CUDA backend of spikingjelly missing on this machine
            print(f"spikingjelly reference could not run on {dev}: {type(e).__name__}: {e}")
            fns.pop("spikingjelly LIFNode(m)", None)
    results = interleaved(fns, args.repeats, sync)

    # one live step vs a full forward, interleaved (rounds of 1 forward + T single steps)
    frames = x.unbind(1)
    step_t: dict[str, list[float]] = {"ours": [], "ours+fused-BN": []}
    for name, m in (("ours", model), ("ours+fused-BN", fused)):
        m.reset()
        with torch.inference_mode():
            for f in frames:
                m.step(f)
    for _ in range(max(3, args.repeats // 3)):
        for name, m, run in (("ours", model, run_ours), ("ours+fused-BN", fused, run_fused)):
            t0 = time.perf_counter()
            run()
            sync()
            results[name].append((time.perf_counter() - t0) * 1e3)
            m.reset()
            with torch.inference_mode():
                for f in frames:
                    t0 = time.perf_counter()
                    m.step(f)
                    sync()
                    step_t[name].append((time.perf_counter() - t0) * 1e3)

    if args.lif:
        bench_lif(args, dev, sync)

    print(f"\n{'variant':28s} {'median ms':>10s} {'min ms':>9s}")
    for name, ts in results.items():
        print(f"{name:28s} {statistics.median(ts):10.1f} {min(ts):9.1f}")
    ours = min(statistics.median(results["ours"]), statistics.median(results["ours+fused-BN"]))
    if "spikingjelly LIFNode(m)" in results:
        peer_ms = statistics.median(results["spikingjelly LIFNode(m)"])
        print(f"speed-up vs spikingjelly: {peer_ms / statistics.median(results['ours']):.2f}x "
              f"(fused BN: {peer_ms / statistics.median(results['ours+fused-BN']):.2f}x)")
    for name in step_t:
        st, fw = statistics.median(step_t[name]), statistics.median(results[name])
        print(f"one step() [{name}]: {st:.2f} ms; step / forward = {st / fw:.3f} "
              f"(target <= 1.5/T = {1.5 / args.T:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
