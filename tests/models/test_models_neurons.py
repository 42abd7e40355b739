"""LIF neuron: hand-computed dynamics, inference path == autograd path, state, gradient."""

import math

import pytest
import torch

from dvsstream.models.neurons import LIF, lif_maxpool_inference, lif_multistep, lif_multistep_inference, spike_fn


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


# ------------------------------------------------------------------ fused autograd LIF
from dvsstream.models import neurons  # noqa: E402
from dvsstream.models.neurons import lif_multistep_fused  # noqa: E402


def _pair_grads(fn, x, v0, w, wv, **kw):
    x = x.clone().requires_grad_(True)
    v = None if v0 is None else v0.clone().requires_grad_(True)
    s, v_last = fn(x, v, **kw)
    loss = (s * w).sum() + ((v_last * wv).sum() if wv is not None else 0)
    loss.backward()
    return s.detach(), v_last.detach(), x.grad, (None if v is None else v.grad)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("tau,th", [(2.0, 1.0), (1.5, 0.5), (1.3, 0.3)])
@pytest.mark.parametrize("with_v", [False, True])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_fused_equals_reference_path_float64(tau, th, with_v, detach_reset):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(9, 2, 3, 8, 8, generator=g, dtype=torch.float64) * 2
    x[0, 0, 0, 0, :3] = th * tau  # exactly on the threshold
    x = x.view(18, 3, 8, 8).contiguous(memory_format=torch.channels_last).view(9, 2, 3, 8, 8)
    v0 = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64) if with_v else None
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    wv = torch.randn(x.shape[1:], generator=g, dtype=torch.float64) if with_v else None
    kw = dict(tau=tau, v_threshold=th, detach_reset=detach_reset)
    s_ref, v_ref, gx_ref, gv_ref = _pair_grads(lif_multistep, x, v0, w, wv, **kw)
    s, v, gx, gv = _pair_grads(lif_multistep_fused, x, v0, w, wv, **kw)
    assert torch.equal(s, s_ref) and torch.equal(v, v_ref)
    assert 0 < s.mean() < 1 and gx_ref.abs().max() > 0
    assert _rel(gx, gx_ref) < 1e-12
    assert gx.stride() == x.stride()  # the input's layout (channels_last here) is kept
    if with_v:
        assert gv_ref.abs().max() > 0 and _rel(gv, gv_ref) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_forward_bitwise_other_dtypes(dtype):
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(6, 4, 50, generator=g) * 2).to(dtype)
    a, va = lif_multistep(x, tau=1.3, v_threshold=0.3)
    b, vb = lif_multistep_fused(x.clone().requires_grad_(True), tau=1.3, v_threshold=0.3)
    assert torch.equal(a, b) and torch.equal(va, vb.detach())


def test_fused_matches_spikingjelly_gradients_float64():
    sj = pytest.importorskip("spikingjelly.activation_based.neuron")
    from spikingjelly.activation_based import surrogate

    node = sj.LIFNode(tau=2.0, detach_reset=True, surrogate_function=surrogate.Sigmoid(), step_mode="m")
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 3, 40, generator=g, dtype=torch.float64) * 2
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    s_ref = node(xr)
    (s_ref * w).sum().backward()
    s, _, gx, _ = _pair_grads(lif_multistep_fused, x, None, w, None)
    assert torch.equal(s, s_ref.detach())
    assert _rel(gx, xr.grad) < 1e-12


def test_lif_module_carries_state_through_the_fused_path():
    """Two chunks with the state carried (and differentiated through) == one call."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(10, 2, 30, generator=g, dtype=torch.float64) * 2
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    lif = LIF()
    (lif(xa) * w).sum().backward()
    lif.reset()
    s = torch.cat([lif(xb[:4]), lif(xb[4:])])
    (s * w).sum().backward()
    assert _rel(xb.grad, xa.grad) < 1e-12
    LIF.fused_autograd = False
    try:
        xc = x.clone().requires_grad_(True)
        lif.reset()
        (lif(xc) * w).sum().backward()
    finally:
        LIF.fused_autograd = True
    assert _rel(xa.grad, xc.grad) < 1e-12


def _small_grads(model, x, y):
    model.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["spikformer_dvs_tiny", "spikingformer_dvs_tiny"])
def test_model_gradients_fused_vs_reference_and_spikingjelly(name):
    """Every parameter's float64 gradient of a small model: fused LIF == the per-step
    reference path == the release structure on spikingjelly's LIFNode, within round-off."""
    from dvsstream.models import create_model
    from reference_models import reference_model
    from model_testing import randomize_batchnorm

    torch.manual_seed(0)
    m = create_model(name, img_size=32, T=3, dim=32, heads=4, depth=1, num_classes=4).double().train()
    randomize_batchnorm(m)
    g = torch.Generator().manual_seed(7)
    x = torch.poisson(torch.full((2, 3, 2, 32, 32), 0.5), generator=g).double()
    y = torch.tensor([1, 3])
    fused = _small_grads(m, x, y)
    LIF.fused_autograd = False
    try:
        slow = _small_grads(m, x, y)
    finally:
        LIF.fused_autograd = True
    scale = max(gr.abs().max().item() for gr in slow.values())
    assert scale > 0 and set(fused) == set(slow)
    assert max((fused[k] - slow[k]).abs().max().item() for k in slow) <= 1e-12 * scale
    sjn = pytest.importorskip("spikingjelly.activation_based.neuron")
    from spikingjelly.activation_based import surrogate

    def make(tau=2.0, v_threshold=1.0):
        return sjn.LIFNode(tau=tau, v_threshold=v_threshold, detach_reset=True,
                           surrogate_function=surrogate.Sigmoid(), step_mode="m")

    peer = reference_model(m.config, lif=make).double().train()
    peer.load_state_dict(m.state_dict())
    ref = _small_grads(peer, x, y)
    assert set(ref) == set(fused)
    assert max((fused[k] - ref[k]).abs().max().item() for k in ref) <= 1e-12 * scale


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_inference_kernel_bitwise(inplace, dtype, monkeypatch):
    """The compiled inference pass (taken from kernel_min_numel elements on) == the
    reference, from zeros and from a given potential (updated in place), channels_last."""
    g = torch.Generator().manual_seed(8)
    x = (torch.randn(5 * 2, 3, 6, 7, generator=g, dtype=dtype) * 2).contiguous(memory_format=torch.channels_last)
    x = x.view(5, 2, 3, 6, 7)
    v0 = torch.randn(2, 3, 6, 7, generator=g, dtype=dtype)
    ref, v_ref = lif_multistep(x, v0.clone(), tau=1.3, v_threshold=0.3)
    ref0, v_ref0 = lif_multistep(x, None, tau=1.3, v_threshold=0.3)
    monkeypatch.setattr(neurons, "kernel_min_numel", 0)
    v = v0.clone()
    out, v_out = lif_multistep_inference(x.clone(), v, tau=1.3, v_threshold=0.3, inplace=inplace)
    assert torch.equal(out, ref) and torch.equal(v, v_ref) and v_out is v
    out0, v_out0 = lif_multistep_inference(x.clone(), None, tau=1.3, v_threshold=0.3, inplace=inplace)
    assert torch.equal(out0, ref0) and torch.equal(v_out0, v_ref0)
    assert out0.stride() == x.stride()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_inference_kernel_in_place_over_several_chunks(dtype, monkeypatch):
    """In place (the spikes overwrite the input) across whole and partial chunks of the
    kernel, at a realistic firing rate: the reference's bits."""
    g = torch.Generator().manual_seed(10)
    x = torch.randn(4, 2, 3, 31, 37, generator=g, dtype=dtype) * 2  # M = 6882: 3 chunks + a partial one
    ref, v_ref = lif_multistep(x, None, tau=1.5, v_threshold=1.0)
    monkeypatch.setattr(neurons, "kernel_min_numel", 0)
    out, v = lif_multistep_inference(x.clone(), None, tau=1.5, v_threshold=1.0, inplace=True)
    assert torch.equal(out, ref) and torch.equal(v, v_ref) and 0.1 < ref.mean() < 0.9


def _frames_last(shape, g, dtype):
    """Random currents ``[T, B, C, H, W]`` in channels_last frames (as a conv gives them)."""
    T, B, C, H, W = shape
    x = torch.randn(T * B, C, H, W, generator=g, dtype=dtype) * 2
    return x.contiguous(memory_format=torch.channels_last).view(shape)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(4, 2, 3, 8, 8), (3, 1, 5, 7, 9), (2, 2, 16, 1, 1), (3, 1, 4, 2, 5), (2, 1, 9, 40, 66)])
def test_lif_maxpool_equals_lif_then_maxpool(shape, dtype):
    """The fused LIF + 3x3 stride-2 max pool == the LIF, then max_pool2d, bit for bit:
    from zeros and from a given potential (updated in place), odd and tiny sizes; the
    input is left as it was."""
    g = torch.Generator().manual_seed(9)
    x = _frames_last(shape, g, dtype)
    x0 = x.clone()
    v0 = torch.randn(*shape[1:], generator=g, dtype=dtype)
    for v_in in (None, v0):
        s, v_ref = lif_multistep(x, None if v_in is None else v_in.clone(), tau=1.5, v_threshold=0.7)
        want = torch.nn.functional.max_pool2d(s.flatten(0, 1), 3, 2, 1)
        v = None if v_in is None else v_in.clone()
        got, v_out = lif_maxpool_inference(x, v, tau=1.5, v_threshold=0.7)
        assert torch.equal(got.flatten(0, 1), want) and torch.equal(v_out, v_ref)
        assert v is None or v_out is v
        assert got.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, x0)
    with pytest.raises(ValueError, match="channels_last"):
        lif_maxpool_inference(torch.zeros(2, 1, 3, 4, 4, dtype=dtype))  # contiguous, not channels_last


def test_lif_forward_maxpool_carries_state_and_declines():
    """LIF.forward_maxpool: two calls == one call over both (state carried, also into a
    later forward); None (nothing done) while recording or with autograd."""
    g = torch.Generator().manual_seed(11)
    x = _frames_last((6, 1, 8, 64, 64), g, torch.float32)
    pool = lambda s: torch.nn.functional.max_pool2d(s.flatten(0, 1), 3, 2, 1)  # noqa: E731
    ref = LIF(tau=1.5)
    with torch.no_grad():
        want = pool(ref(x[:4]))
        want_last = ref(x[4:])
        lif = LIF(tau=1.5)
        a, b = lif.forward_maxpool(x[:2]), lif.forward_maxpool(x[2:4])
        assert a is not None and torch.equal(torch.cat([a, b]).flatten(0, 1), want)
        assert torch.equal(lif(x[4:]), want_last)
        lif.record = []
        assert lif.forward_maxpool(x[:2]) is None and lif.record == []
    assert LIF().forward_maxpool(x[:2].clone().requires_grad_(True)) is None


@pytest.mark.parametrize("name", ["spikformer_dvs_tiny", "spikingformer_dvs_tiny"])
def test_models_fused_lif_maxpool_float64_bitwise(name, monkeypatch):
    """The models' LIF -> max pool stages through the fused pass (forced down to small
    maps) give the float64 logits of the separate LIF and pool, bit for bit."""
    from dvsstream.models import create_model
    from model_testing import randomize_batchnorm

    torch.manual_seed(0)
    m = create_model(name, img_size=32, T=5, dim=32, heads=4).eval().double()
    randomize_batchnorm(m)
    x = torch.poisson(torch.full((2, 5, 2, 32, 32), 0.5), generator=torch.Generator().manual_seed(1)).double()
    calls = []
    fused = neurons.lif_maxpool_inference
    monkeypatch.setattr(neurons, "lif_maxpool_inference", lambda *a, **k: calls.append(1) or fused(*a, **k))
    monkeypatch.setattr(neurons, "kernel_min_numel", 0)
    with torch.no_grad():
        got = m(x)
        assert calls
        monkeypatch.setattr(LIF, "forward_maxpool", lambda self, x: None)
        want = m(x)
    assert torch.equal(got, want) and want.std() > 0


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_fused_kernels_run_in_a_forked_child():
    """A DataLoader worker is a fork of a process that already ran the compiled kernels:
    running them again in the child must work (a parallel OpenMP kernel aborts there)."""
    import os

    x = torch.randn(4, 2, 40, 40, requires_grad=True)
    s, _ = lif_multistep_fused(x)
    s.sum().backward()
    pid = os.fork()
    if pid == 0:  # child: exit status 0 only if forward and backward ran and agree
        code = 1
        try:
            xc = x.detach().clone().requires_grad_(True)
            sc, _ = lif_multistep_fused(xc)
            sc.sum().backward()
            code = 0 if torch.equal(sc, s) and torch.equal(xc.grad, x.grad) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
