"""Firing rates, FLOPs, synaptic operations and the papers' energy estimate.

The method of the Spikformer-family papers (45 nm figures, Horowitz 2014):

* ``FLOPs(l)``: multiply-accumulates of layer ``l`` for one sample and one time step;
* ``SOP(l) = fr_in(l) * T * FLOPs(l)``, ``fr_in`` the fraction of non-zero inputs of the
  layer (spikes; the residual stream of Spikformer holds small integers, counted as one
  event per non-zero);
* ``E = 4.6 pJ * T * FLOPs(first conv)`` (its input, the event-count frames, is not binary:
  real multiply-accumulates, once per time step) ``+ 0.9 pJ * sum(SOPs)`` of every other
  conv / linear and of the attention matmuls;
* SSA's matmuls, for the ``q (k^T v)`` order: ``T * heads * N * d^2 * (fr_q + min(fr_k, fr_v))``.
* the classifier head runs once on averaged (real) features: counted as MACs.
* attention-free mixers (FFT / Haar) are counted as additions over their input events
  (an approximation: ``~N log2 N`` per channel for an FFT, 2 per element for Haar).

``energy_report(model, x)`` runs one forward pass on ``x`` ``[B, T, C, H, W]`` (eval mode,
no gradients) and returns a dict; :func:`format_energy_table` prints it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from dvsstream.models.fusion import FusableMixin
from dvsstream.models.layers import SSA, TokenMixer
from dvsstream.models.taps import record_firing_rates

__all__ = ["E_MAC_PJ", "E_AC_PJ", "energy_report", "format_energy_table"]

E_MAC_PJ = 4.6
E_AC_PJ = 0.9


@torch.no_grad()
def energy_report(model: nn.Module, x: Tensor) -> dict[str, Any]:
    """Per-layer firing rates, FLOPs, SOPs and energy for one forward pass on ``x``.

    Returned numbers are per sample (averaged over the batch). Keys: ``layers`` (list of
    dicts: ``name, kind, input_rate, flops, sops, mac, energy_pj``), ``firing_rates``
    (LIF layer -> rate), ``T``, ``total_flops``, ``total_sops``, ``mac_flops``,
    ``energy_mj``, ``energy_ann_mj`` (the same network as an ANN: 4.6 pJ per MAC).
    """
    was_training = model.training
    model.eval()
    B, T = x.shape[:2]
    meters: dict[str, tuple[nn.Module, dict]] = {}
    for name, m in model.named_modules():
        if isinstance(m, (FusableMixin, TokenMixer)):
            m._meter = {}
            meters[name] = (m, m._meter)
    try:
        with record_firing_rates(model) as taps:
            model(x)
        rates = taps.firing_rates
    finally:
        for m, _ in meters.values():
            m._meter = None
        model.train(was_training)

    rows: list[dict[str, Any]] = []
    first = True
    for mod_name, (m, meter) in meters.items():
        order = [n for n, _ in m.named_children()] + ["mixer"]
        for conv_name in sorted(meter, key=lambda n: order.index(n) if n in order else 999):
            calls, nnz, numel, macs = meter[conv_name]
            fr = nnz / numel if numel else 0.0
            flops = macs / (B * T)  # per sample per time step
            full = f"{mod_name}.{conv_name}" if conv_name != "mixer" else f"{mod_name}"
            if first:
                rows.append(dict(name=full, kind="conv (encoder)", input_rate=fr, flops=flops,
                                 sops=0.0, mac=True, energy_pj=E_MAC_PJ * flops * T))
                first = False
            else:
                sops = fr * T * flops
                kind = "mixer" if conv_name == "mixer" else "conv/linear"
                rows.append(dict(name=full, kind=kind, input_rate=fr, flops=flops, sops=sops,
                                 mac=False, energy_pj=E_AC_PJ * sops))
        if isinstance(m, SSA):
            cfg_n = model.num_tokens if hasattr(model, "num_tokens") else None
            N = cfg_n or 0
            h, d = m.heads, m.dim // m.heads
            fq = rates.get(f"{mod_name}.q_lif", 0.0)
            fk = rates.get(f"{mod_name}.k_lif", 0.0)
            fv = rates.get(f"{mod_name}.v_lif", 0.0)
            flops = 2 * h * N * d * d  # q(k^T v): two N x d x d products per head
            sops = T * h * N * d * d * (fq + min(fk, fv))
            rows.append(dict(name=f"{mod_name}.matmul", kind="ssa matmul", input_rate=(fq + min(fk, fv)) / 2,
                             flops=flops, sops=sops, mac=False, energy_pj=E_AC_PJ * sops))
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        flops = head.in_features * head.out_features
        rows.append(dict(name="head", kind="linear (head)", input_rate=1.0, flops=flops / T, sops=0.0,
                         mac=True, energy_pj=E_MAC_PJ * flops))
    total_flops = sum(r["flops"] for r in rows)
    energy_pj = sum(r["energy_pj"] for r in rows)
    return {
        "T": T,
        "batch": B,
        "layers": rows,
        "firing_rates": rates,
        "total_flops": total_flops,
        "total_sops": sum(r["sops"] for r in rows),
        "mac_flops": sum(r["flops"] * T for r in rows if r["mac"]),
        "energy_pj": energy_pj,
        "energy_mj": energy_pj * 1e-9,
        "energy_ann_mj": E_MAC_PJ * total_flops * T * 1e-9,
    }


def format_energy_table(report: dict[str, Any]) -> str:
    """A fixed-width table of :func:`energy_report`'s result."""
    lines = [f"{'layer':42s} {'kind':15s} {'in rate':>8s} {'MFLOPs/step':>12s} {'MSOPs':>10s} {'energy uJ':>10s}"]
    for r in report["layers"]:
        lines.append(
            f"{r['name'][:42]:42s} {r['kind']:15s} {r['input_rate']:8.3f} {r['flops'] / 1e6:12.3f} "
            f"{r['sops'] / 1e6:10.3f} {r['energy_pj'] / 1e6:10.3f}"
        )
    lines.append(
        f"T={report['T']}: {report['total_flops'] / 1e6:.1f} MFLOPs per step, {report['total_sops'] / 1e6:.1f} MSOPs, "
        f"energy {report['energy_mj']:.4f} mJ (same network as an ANN: {report['energy_ann_mj']:.4f} mJ)"
    )
    lines.append("firing rates: " + ", ".join(f"{n}={v:.3f}" for n, v in report["firing_rates"].items()))
    return "\n".join(lines)
