"""Model family: parameter counts, every registered model trains a step, streaming,
matmul-order invariance, BN folding."""

import pytest
import torch

from dvsstream.models import create_model, list_models
from dvsstream.models.layers import SSA
from model_testing import randomize_batchnorm

SMALL = dict(img_size=32, T=3, dim=32, heads=4, depth=1, pools=(True, True, True, False))


def _frames(B, T, H, W=None, seed=0, rate=0.5):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((B, T, 2, H, W or H), rate), generator=g)


def test_spikformer_dvs_parameter_count():
    m = create_model("spikformer_dvs", num_classes=10)
    assert sum(p.numel() for p in m.parameters()) == 2_566_666
    assert m.grid == (8, 8) and m.num_tokens == 64
    m11 = create_model("spikformer_dvs", num_classes=11)
    assert sum(p.numel() for p in m11.parameters()) == 2_566_666 + 257


def test_registry_lists_the_family():
    names = list_models()
    for n in ("spikformer_dvs", "spikformer_dvs_tiny", "spikingformer_dvs", "spikformer_v2_dvs",
              "spikformer_lt_dvs", "spikformer_lt_fft2d_dvs", "spikformer_lt_haar_dvs"):
        assert n in names
    with pytest.raises(Exception, match="unknown model"):
        create_model("nope")
    with pytest.raises(Exception, match="unknown option"):
        create_model("spikformer_dvs", bogus=1)


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_backward_and_eval(name):
    torch.manual_seed(0)
    m = create_model(name, num_classes=5, **SMALL)
    x = _frames(2, SMALL["T"], 32)
    y = m(x)
    assert y.shape == (2, 5)
    y.square().sum().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    opt.step()
    m.eval()
    with torch.no_grad():
        assert torch.isfinite(m(x)).all()


def test_config_drives_shapes():
    m = create_model("spikformer_dvs_tiny", img_size=(48, 64), pools=(True, True, True, True))
    assert m.grid == (3, 4)
    y = m.eval()(_frames(1, 8, 48, 64))
    assert y.shape == (1, 10)
    with pytest.raises(ValueError, match="expected input"):
        m(_frames(1, 8, 64, 64))


@pytest.mark.parametrize("name", ["spikformer_dvs_tiny", "spikingformer_dvs_tiny", "spikformer_v2_dvs_tiny",
                                  "spikformer_lt_dvs_tiny", "spikformer_lt_fft2d_dvs_tiny",
                                  "spikformer_lt_haar_dvs_tiny"])
def test_step_equals_forward_float64_exactly(name):
    torch.manual_seed(0)
    m = create_model(name, img_size=32, T=4, dim=32, heads=4).eval().double()
    randomize_batchnorm(m)
    x = _frames(2, 4, 32).double()
    spikes_full, spikes_step = {}, {}
    from dvsstream.models.taps import record_firing_rates

    with torch.no_grad():
        with record_firing_rates(m) as taps:
            ref = m(x)
        spikes_full = taps._lif
        m.reset()
        with record_firing_rates(m) as taps2:
            for t in range(4):
                out = m.step(x[:, t])
    assert torch.equal(out, ref)
    # the same spike counts in every layer, step by step
    for n in spikes_full:
        assert sum(c[0] for c in spikes_full[n]) == sum(c[0] for c in taps2._lif[n]), n
    assert any(r > 0 for r in taps.firing_rates.values())


def test_step_float32_spike_agreement_and_window():
    torch.manual_seed(1)
    m = create_model("spikformer_dvs_tiny", img_size=32, T=4).eval()
    randomize_batchnorm(m)
    x = _frames(1, 4, 32)
    with torch.no_grad():
        ref = m(x)
        m.reset()
        for t in range(4):
            out = m.step(x[:, t])
    assert torch.allclose(out, ref, atol=1e-5)
    # sliding window over the last 2 steps == head of the mean of the last 2 features
    with pytest.raises(ValueError):
        m.set_window(0)
    m.set_window("T")
    assert m.window == 4
    m.set_window(2)
    with torch.no_grad():
        feats = m.forward_features(x.transpose(0, 1))
        m.reset()
        for t in range(4):
            out = m.step(x[:, t])
    assert torch.allclose(out, m.head(feats[2:].mean(0)), atol=1e-6)


def test_step_requires_eval_mode():
    m = create_model("spikformer_dvs_tiny", img_size=32, T=2)
    with pytest.raises(RuntimeError, match="eval"):
        m.step(torch.zeros(1, 2, 32, 32))


def test_matmul_order_does_not_change_results():
    torch.manual_seed(2)
    x = _frames(2, 3, 64, rate=1.0)
    outs = {}
    for order in ("nn", "dd", "auto"):
        torch.manual_seed(3)
        m = create_model("spikformer_dvs_tiny", T=3, matmul_order=order).eval()  # N=64, d=16
        randomize_batchnorm(m)
        with torch.no_grad():
            outs[order] = m(x)
        ssa = [mod for mod in m.modules() if isinstance(mod, SSA)][0]
        assert ssa.last_order == ("dd" if order == "auto" else order)
    assert sum(outs["nn"].abs().flatten()) > 0
    assert torch.equal(outs["nn"], outs["dd"]) and torch.equal(outs["nn"], outs["auto"])
    # and the raw products agree on random spikes
    q, k, v = ((torch.rand(2, 3, 4, 50, 8) < 0.3).float() for _ in range(3))
    assert torch.equal((q @ k.transpose(-2, -1)) @ v, q @ (k.transpose(-2, -1) @ v))


def test_fused_bn_matches_and_follows_weights():
    torch.manual_seed(4)
    m = create_model("spikformer_dvs_tiny", img_size=32, T=3).eval()
    randomize_batchnorm(m)
    x = _frames(2, 3, 32)
    with torch.no_grad():
        ref = m(x)
        m.fuse_bn()
        fused = m(x)
    assert torch.allclose(ref, fused, atol=1e-5)
    # training then eval refreshes the folded weights
    m.train()
    m(x).sum().backward()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.01)
    m.eval()
    with torch.no_grad():
        a = m(x)
        m.unfuse_bn()
        b = m(x)
    assert torch.allclose(a, b, atol=1e-5)


def test_integer_input_and_devices():
    m = create_model("spikformer_dvs_tiny", img_size=32, T=2).eval()
    x = _frames(1, 2, 32).to(torch.uint8)
    with torch.no_grad():
        assert m(x).shape == (1, 10)
    if torch.cuda.is_available():  # pragma: no cover - exercised on GPU machines
        m = m.cuda()
        with torch.no_grad():
            y = m(x.cuda())
            m.half()
            yh = m(x.cuda().half())
        assert torch.allclose(y.float(), yh.float(), atol=5e-2)


def test_separable_maxpool_equals_maxpool2d():
    from dvsstream.models.pooling import MaxPool3s2

    mp = MaxPool3s2()
    g = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 8, 8), (1, 5, 16, 6), (3, 2, 7, 9), (1, 4, 2, 2)]:
        for cl in (False, True):
            x = torch.randn(shape, generator=g)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                assert torch.equal(mp(x), torch.nn.functional.max_pool2d(x, 3, 2, 1)), shape
    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    mp(x).sum().backward()  # training path: nn.MaxPool2d semantics
    assert x.grad.sum() == 2 * 4 * 4  # one winner per output


def test_prepare_for_inference_cpu_and_dtype_casting():
    from dvsstream.models import prepare_for_inference

    m = create_model("spikformer_dvs_tiny", img_size=32, T=2)
    m = prepare_for_inference(m, device="cpu")
    assert not m.training
    x = _frames(1, 2, 32).to(torch.int16)
    with torch.no_grad():
        assert m(x).dtype == torch.float32
        m.reset()
        assert m.step(x[:, 0]).shape == (1, 10)
    with pytest.raises(ValueError, match="CUDA"):
        prepare_for_inference(m, device="cpu", half=True)


def test_spikformer_variants_have_expected_structure():
    v2 = create_model("spikformer_v2_dvs")
    base = create_model("spikformer_dvs")
    n_v2 = sum(p.numel() for p in v2.parameters())
    # SCS: one extra Conv3x3(2->32)+BN before the SPS, whose first conv now takes 32 channels
    assert n_v2 == 2_566_666 + (2 * 32 * 9 + 64) + (32 - 2) * 32 * 9
    lt = create_model("spikformer_lt_dvs")
    assert not any(isinstance(m, SSA) for m in lt.modules())
    assert sum(p.numel() for p in lt.parameters()) == 2_566_666 - 2 * 66_304 - 2 * 3 * (65_536 + 512)
    sf = create_model("spikingformer_dvs")
    assert sf.config.tau == 1.5 and sf.config.attn_scale == 0.125
    assert "patch_embed.proj4_conv.weight" in sf.state_dict()


def test_fused_weights_follow_load_state_dict():
    torch.manual_seed(5)
    a = create_model("spikformer_dvs_tiny", img_size=32, T=2).eval()
    b = create_model("spikformer_dvs_tiny", img_size=32, T=2).eval()
    randomize_batchnorm(a, 1)
    randomize_batchnorm(b, 2)
    x = _frames(1, 2, 32)
    with torch.no_grad():
        want = a(x)
        b.fuse_bn()
        b.load_state_dict(a.state_dict())
        assert torch.allclose(b(x), want, atol=1e-5)


@pytest.mark.parametrize("order", ["nn", "dd"])
def test_ssa_hand_computed(order):
    """dim 2, one head, two tokens, one step; identity convs and batch norms.
    x = [[2, 0], [2, 2]] -> q = k = v = LIF(x) = [[1, 0], [1, 1]] (h = x/2 >= 1);
    q k^T = [[1, 1], [1, 2]]; (q k^T) v = [[2, 1], [3, 2]]; * 0.5 = [[1, .5], [1.5, 1]];
    attn LIF (th 0.5): h = [[.5, .25], [.75, .5]] -> [[1, 0], [1, 1]];
    proj = 2 * I: h = [[1, 0], [1, 1]] -> spikes [[1, 0], [1, 1]]."""
    ssa = SSA(dim=2, heads=1, scale=0.5, attn_threshold=0.5, grid=(1, 2), matmul_order=order).eval().double()
    eye = torch.eye(2, dtype=torch.float64).unsqueeze(-1)
    sd = {}
    for n in ("q", "k", "v", "proj"):
        sd[f"{n}_conv.weight"] = eye * (2.0 if n == "proj" else 1.0)
        sd[f"{n}_bn.weight"] = torch.ones(2, dtype=torch.float64)
        sd[f"{n}_bn.bias"] = torch.zeros(2, dtype=torch.float64)
        sd[f"{n}_bn.running_mean"] = torch.zeros(2, dtype=torch.float64)
        sd[f"{n}_bn.running_var"] = torch.ones(2, dtype=torch.float64)
        sd[f"{n}_bn.num_batches_tracked"] = torch.tensor(1)
        getattr(ssa, f"{n}_bn").eps = 0.0
    sd["proj_conv.bias"] = torch.zeros(2, dtype=torch.float64)
    ssa.load_state_dict(sd)
    x = torch.tensor([[2.0, 0.0], [2.0, 2.0]], dtype=torch.float64).view(1, 1, 2, 2)  # [T, B, N, C]
    from dvsstream.models.taps import record_attention

    with torch.no_grad():
        y = ssa(x.clone())
        assert torch.equal(y[0, 0], torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64))
        for m in ssa.modules():
            if hasattr(m, "reset"):
                m.reset()
        with record_attention(ssa) as taps:
            ssa(x.clone())
    assert taps.attention[0][0, 0, 0].tolist() == [[1.0, 1.0], [1.0, 2.0]]
    assert taps.spatial[0][0, 0, 0].tolist() == [[2.0, 3.0]]  # received by key 0, key 1


def test_long_stream_running_mean():
    from dvsstream.models import spikformer as sf

    m = create_model("spikformer_dvs_tiny", img_size=32, T=2).eval()
    randomize_batchnorm(m)
    x = _frames(1, 6, 32)
    old = sf._EXACT_HISTORY
    sf._EXACT_HISTORY = 3
    try:
        with torch.no_grad():
            feats = m.forward_features(x.transpose(0, 1))
            m.reset()
            for t in range(6):
                out = m.step(x[:, t])
    finally:
        sf._EXACT_HISTORY = old
    assert torch.allclose(out, m.head(feats.mean(0)), atol=1e-6)


@pytest.mark.parametrize("name", ["spikformer_dvs_tiny", "spikingformer_dvs_tiny"])
def test_chunked_front_equals_whole_forward(name):
    """Eval inference runs the full-resolution front over groups of frames (LIF state
    carried): float64 logits bit-identical to the unchunked forward."""
    torch.manual_seed(0)
    m = create_model(name, img_size=32, T=5, dim=32, heads=4).eval().double()
    randomize_batchnorm(m)
    x = _frames(1, 5, 32).double()
    cls = type(m.patch_embed)
    assert cls.chunk_samples > 0 and 5 > cls.chunk_samples  # chunks happen (uneven last one)
    with torch.no_grad():
        chunked = m(x)
        m.patch_embed.chunk_samples = 0
        whole = m(x)
    assert torch.equal(chunked, whole) and whole.std() > 0
