"""LIF neuron: hand-computed dynamics, inference path == autograd path, state, gradient."""

import math

import pytest
import torch

from dvsstream.models.neurons import LIF, lif_multistep, lif_multistep_inference, spike_fn


def test_hand_computed_sequence():
    # tau 2, threshold 1: h = v + (x - v)/2
    x = torch.tensor([1.5, 0.5, 2.5, 0.2, 2.0, 2.0]).view(6, 1)
    # t0: h=.75 (v=.75)  t1: h=.625  t2: h=1.5625 -> spike, v=0  t3: h=.1
    # t4: h=.1+(2-.1)/2=1.05 -> spike  t5: h=1.0 -> spike (>= threshold)
    expected = torch.tensor([0, 0, 1, 0, 1, 1.0]).view(6, 1)
    for fn in (lif_multistep, lif_multistep_inference):
        s, v = fn(x.clone())
        assert torch.equal(s, expected), fn.__name__
        assert v.item() == 0.0


def test_threshold_half_and_tau_1_5():
    x = torch.tensor([0.75, 0.0]).view(2, 1)
    s, v = lif_multistep_inference(x, tau=1.5, v_threshold=0.5)
    assert s.flatten().tolist() == [1.0, 0.0]  # 0.75/1.5 = 0.5 >= 0.5
    assert v.item() == 0.0


@pytest.mark.parametrize("tau", [2.0, 1.5, 4.0, 1.3])
@pytest.mark.parametrize("th", [1.0, 0.5, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inference_path_bitwise_equals_autograd_path(tau, th, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, 4, 5, generator=g, dtype=dtype) * 2
    x[0, 0, 0, :2] = th * tau  # lands exactly on the threshold
    a, va = lif_multistep(x, tau=tau, v_threshold=th)
    b, vb = lif_multistep_inference(x.clone(), tau=tau, v_threshold=th, inplace=True)
    assert torch.equal(a, b) and torch.equal(va, vb)
    lif = LIF(tau=tau, v_threshold=th)
    with torch.no_grad():
        assert torch.equal(lif(x), a)


def test_channels_last_layout_is_kept_and_exact():
    x = torch.randn(4 * 2, 3, 5, 6).contiguous(memory_format=torch.channels_last)
    seq = x.view(4, 2, 3, 5, 6)
    ref, _ = lif_multistep(seq.contiguous())
    out, _ = lif_multistep_inference(seq.clone())
    assert torch.equal(out, ref)


def test_module_state_step_equals_multistep():
    x = torch.randn(9, 2, 8) * 2
    lif = LIF()
    full = lif(x.clone())
    lif.reset()
    steps = torch.stack([lif.step(x[t].clone()) for t in range(9)])
    assert torch.equal(full, steps)
    # chunked calls continue from the carried state
    lif.reset()
    chunked = torch.cat([lif(x[:4].clone()), lif(x[4:].clone())])
    assert torch.equal(full, chunked)


def test_state_shape_mismatch_is_explained():
    lif = LIF()
    lif(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="reset"):
        lif(torch.zeros(2, 5, 4))


def test_surrogate_gradient_and_detached_reset():
    x = torch.tensor([0.3, -0.2, 0.0], requires_grad=True)
    s = spike_fn(x, 4.0)
    s.sum().backward()
    sig = torch.sigmoid(4.0 * x.detach())
    assert torch.allclose(x.grad, 4.0 * sig * (1 - sig))
    # LIF gradient: single step, dL/dx = sg(h - th) / tau
    x = torch.tensor([[1.2]], requires_grad=True)
    lif = LIF(tau=2.0)
    out = lif(x)
    out.sum().backward()
    h = 0.6
    sg = 4.0 * (1 / (1 + math.exp(-4 * (h - 1)))) * (1 - 1 / (1 + math.exp(-4 * (h - 1))))
    assert x.grad.item() == pytest.approx(sg / 2.0, rel=1e-5)


def test_gradient_flows_through_time_with_detached_reset():
    x = torch.full((3, 1), 1.5, requires_grad=True)
    s, _ = lif_multistep(x, detach_reset=True)
    s.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("tau,th", [(2.0, 1.0), (2.0, 0.5), (1.5, 1.0), (1.3, 0.3)])
def test_matches_spikingjelly_when_installed(tau, th):
    sj = pytest.importorskip("spikingjelly.activation_based.neuron")
    from spikingjelly.activation_based import surrogate

    node = sj.LIFNode(tau=tau, v_threshold=th, v_reset=0.0, decay_input=True,
                      surrogate_function=surrogate.Sigmoid(alpha=4.0), detach_reset=True, step_mode="m")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, 50, generator=g) * 2
    xr = x.clone().requires_grad_(True)
    xo = x.clone().requires_grad_(True)
    s_ref = node(xr)
    s_ours = LIF(tau=tau, v_threshold=th)(xo)
    assert torch.equal(s_ref, s_ours)
    w = torch.randn(6, 2, 50, generator=g)
    (s_ref * w).sum().backward()
    (s_ours * w).sum().backward()
    assert torch.allclose(xr.grad, xo.grad, atol=1e-6)
