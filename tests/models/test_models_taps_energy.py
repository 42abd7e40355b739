"""Attention taps (shapes, only while enabled) and the energy report's bookkeeping."""

import pytest
import torch

from dvsstream.models import create_model
from dvsstream.models.energy import E_AC_PJ, E_MAC_PJ, energy_report, format_energy_table
from dvsstream.models.layers import SSA
from dvsstream.models.taps import record_attention
from model_testing import randomize_batchnorm


def _frames(B=2, T=3, H=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((B, T, 2, H, H), 0.6), generator=g)


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    m = create_model("spikformer_dvs_tiny", T=3, depth=2).eval()  # 64x64 -> 8x8 grid, 4 heads
    randomize_batchnorm(m)
    return m


def test_taps_shapes_and_values(tiny):
    x = _frames()
    with torch.no_grad():
        plain = tiny(x)
        with record_attention(tiny) as taps:
            tapped = tiny(x)
    assert torch.equal(plain, tapped)  # tapping (N x N order) does not change results
    assert set(taps.attention) == {0, 1}
    for i in (0, 1):
        a = taps.attention[i]
        assert a.shape == (3, 2, 4, 64, 64)
        assert torch.equal(a, a.round()) and (a >= 0).all()
        assert taps.spatial[i].shape == (3, 2, 4, 8, 8)
        assert torch.equal(taps.spatial[i].flatten(3), a.sum(-2))
    assert taps.attention[0].sum() > 0
    rates = taps.firing_rates
    assert "block.0.attn.q_lif" in rates and all(0.0 <= r <= 1.0 for r in rates.values())
    # disabled afterwards: nothing recorded, cheaper order back
    ssa = [m for m in tiny.modules() if isinstance(m, SSA)][0]
    assert ssa.tap is None
    with torch.no_grad():
        tiny(x)
    assert ssa.last_order == "dd"
    assert taps.attention[0].shape[0] == 3


def test_taps_while_stepping_concatenate_over_time(tiny):
    x = _frames(B=1)
    with torch.no_grad(), record_attention(tiny) as taps:
        tiny.reset()
        for t in range(3):
            tiny.step(x[:, t])
    assert taps.attention[0].shape == (3, 1, 4, 64, 64)
    with torch.no_grad(), record_attention(tiny) as taps_full:
        tiny(x)
    assert torch.equal(taps.attention[0], taps_full.attention[0])


def test_energy_report_totals_are_consistent(tiny):
    x = _frames()
    rep = energy_report(tiny, x)
    rows = rep["layers"]
    assert rows[0]["name"] == "patch_embed.proj_conv" and rows[0]["mac"]
    T = rep["T"]
    # first conv: 64x64 output, 8 channels, 2*9 inputs each, per step
    assert rows[0]["flops"] == 64 * 64 * 8 * 2 * 9
    e = E_MAC_PJ * T * rows[0]["flops"] + sum(E_AC_PJ * r["sops"] for r in rows if not r["mac"])
    e += sum(r["energy_pj"] for r in rows if r["mac"] and r is not rows[0])
    assert rep["energy_pj"] == pytest.approx(e)
    assert rep["energy_mj"] == pytest.approx(rep["energy_pj"] * 1e-9)
    assert rep["total_sops"] == pytest.approx(sum(r["sops"] for r in rows))
    for r in rows:
        if not r["mac"] and r["kind"] == "conv/linear":
            assert r["sops"] == pytest.approx(r["input_rate"] * T * r["flops"])
    ssa_rows = [r for r in rows if r["kind"] == "ssa matmul"]
    assert len(ssa_rows) == 2
    fr = rep["firing_rates"]
    N, h, d = 64, 4, 16
    want = T * h * N * d * d * (fr["block.0.attn.q_lif"] + min(fr["block.0.attn.k_lif"], fr["block.0.attn.v_lif"]))
    assert ssa_rows[0]["sops"] == pytest.approx(want)
    assert rep["energy_mj"] < rep["energy_ann_mj"]
    table = format_energy_table(rep)
    assert "patch_embed.proj_conv" in table and "mJ" in table
    # metering is off afterwards and the model still in eval mode
    assert all(getattr(m, "_meter", None) is None for m in tiny.modules())
    assert not tiny.training


def test_energy_report_other_variants():
    for name in ("spikingformer_dvs_tiny", "spikformer_lt_dvs_tiny"):
        m = create_model(name, img_size=32, T=2)
        rep = energy_report(m, _frames(B=1, T=2, H=32))
        assert rep["energy_mj"] > 0 and m.training  # training flag restored
