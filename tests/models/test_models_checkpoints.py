"""Checkpoints: our format round trip, and release-format state dicts (release module
names, unused pos_embed / LayerNorm entries, {"model": ...} wrapping, DDP prefixes)
reproducing an independent functional re-computation of the release's forward pass."""

import pytest
import torch
import torch.nn.functional as F

from dvsstream.errors import DvsstreamError
from dvsstream.models import create_model
from dvsstream.models.checkpoints import load_checkpoint, load_model, save_checkpoint
from reference_models import ReferenceSpikformer

# a small Spikformer: 32x32 input, 4 pools -> 2x2 grid (N=4), dim 16, 2 heads (d=8), depth 1
CFG = dict(img_size=32, T=3, dim=16, heads=2, depth=1, num_classes=3)


def _release_state_dict(seed=0, dim=16, depth=1, classes=3, in_ch=2):
    """A state dict as the release's Spikformer would save it (plus its unused entries)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, scale=0.5: torch.randn(*s, generator=g, dtype=torch.float64) * scale  # noqa: E731
    sd = {}

    def bn(name, c):
        sd[f"{name}.weight"] = 1.0 + 0.3 * torch.rand(c, generator=g, dtype=torch.float64)
        sd[f"{name}.bias"] = 0.2 + 0.5 * torch.rand(c, generator=g, dtype=torch.float64)
        sd[f"{name}.running_mean"] = r(c, scale=0.1)
        sd[f"{name}.running_var"] = 0.5 + torch.rand(c, generator=g, dtype=torch.float64)
        sd[f"{name}.num_batches_tracked"] = torch.tensor(100)

    chans = [in_ch, dim // 8, dim // 4, dim // 2, dim]
    for i in range(4):
        sfx = "" if i == 0 else str(i)
        sd[f"patch_embed.proj_conv{sfx}.weight"] = r(chans[i + 1], chans[i], 3, 3, scale=0.6)
        bn(f"patch_embed.proj_bn{sfx}", chans[i + 1])
    sd["patch_embed.rpe_conv.weight"] = r(dim, dim, 3, 3, scale=0.3)
    bn("patch_embed.rpe_bn", dim)
    for b in range(depth):
        p = f"block.{b}"
        for n in "qkv":
            sd[f"{p}.attn.{n}_conv.weight"] = r(dim, dim, 1, scale=0.6)
            bn(f"{p}.attn.{n}_bn", dim)
        sd[f"{p}.attn.proj_conv.weight"] = r(dim, dim, 1, scale=0.6)
        sd[f"{p}.attn.proj_conv.bias"] = r(dim, scale=0.1)
        bn(f"{p}.attn.proj_bn", dim)
        sd[f"{p}.mlp.fc1_conv.weight"] = r(4 * dim, dim, 1, scale=0.6)
        sd[f"{p}.mlp.fc1_conv.bias"] = r(4 * dim, scale=0.1)
        bn(f"{p}.mlp.fc1_bn", 4 * dim)
        sd[f"{p}.mlp.fc2_conv.weight"] = r(dim, 4 * dim, 1, scale=0.3)
        sd[f"{p}.mlp.fc2_conv.bias"] = r(dim, scale=0.1)
        bn(f"{p}.mlp.fc2_bn", dim)
        # unused by the release's forward
        sd[f"{p}.norm1.weight"] = torch.ones(dim, dtype=torch.float64)
        sd[f"{p}.norm1.bias"] = torch.zeros(dim, dtype=torch.float64)
        sd[f"{p}.norm2.weight"] = torch.ones(dim, dtype=torch.float64)
        sd[f"{p}.norm2.bias"] = torch.zeros(dim, dtype=torch.float64)
    sd["pos_embed"] = r(1, 4, dim)
    sd["norm.weight"] = torch.ones(dim, dtype=torch.float64)
    sd["norm.bias"] = torch.zeros(dim, dtype=torch.float64)
    sd["head.weight"] = r(classes, dim)
    sd["head.bias"] = r(classes, scale=0.1)
    return sd


def _functional_release_forward(sd, x, heads, scale=0.25, tau=2.0):
    """The release's forward, written out op by op from the state dict (float64)."""

    def lif(u, th=1.0):  # u [T, ...]
        v = torch.zeros_like(u[0])
        out = []
        for t in range(u.shape[0]):
            h = v + (u[t] - v) / tau
            s = (h >= th).to(u.dtype)
            v = h * (1 - s)
            out.append(s)
        return torch.stack(out)

    def bn(y, name):
        return F.batch_norm(y, sd[f"{name}.running_mean"], sd[f"{name}.running_var"],
                            sd[f"{name}.weight"], sd[f"{name}.bias"], False, 0.0, 1e-5)

    x = x.permute(1, 0, 2, 3, 4)
    T, B = x.shape[:2]
    y = x.flatten(0, 1)
    for i in range(4):
        sfx = "" if i == 0 else str(i)
        y = bn(F.conv2d(y, sd[f"patch_embed.proj_conv{sfx}.weight"], padding=1), f"patch_embed.proj_bn{sfx}")
        y = lif(y.reshape(T, B, *y.shape[1:])).flatten(0, 1)
        y = F.max_pool2d(y, 3, 2, 1)
    r = bn(F.conv2d(y, sd["patch_embed.rpe_conv.weight"], padding=1), "patch_embed.rpe_bn")
    y = y + lif(r.reshape(T, B, *r.shape[1:])).flatten(0, 1)
    C = y.shape[1]
    y = y.reshape(T, B, C, -1)  # [T, B, C, N]
    N = y.shape[-1]
    b = 0
    while f"block.{b}.attn.q_conv.weight" in sd:
        p = f"block.{b}"

        def cbl(z, conv, bnn, th=1.0, bias=None):
            zz = F.conv1d(z.flatten(0, 1), sd[f"{conv}.weight"], sd.get(f"{conv}.bias"))
            return lif(bn(zz, bnn).reshape(T, B, -1, N), th)

        qkv = [cbl(y, f"{p}.attn.{n}_conv", f"{p}.attn.{n}_bn") for n in "qkv"]
        q, k, v = (z.transpose(-1, -2).reshape(T, B, N, heads, C // heads).permute(0, 1, 3, 2, 4) for z in qkv)
        a = (q @ k.transpose(-2, -1) @ v) * scale
        a = lif(a.transpose(3, 4).reshape(T, B, C, N), 0.5)
        y = y + cbl(a, f"{p}.attn.proj_conv", f"{p}.attn.proj_bn")
        h = cbl(y, f"{p}.mlp.fc1_conv", f"{p}.mlp.fc1_bn")
        y = y + cbl(h, f"{p}.mlp.fc2_conv", f"{p}.mlp.fc2_bn")
        b += 1
    feats = y.mean(3).mean(0)
    return feats @ sd["head.weight"].t() + sd["head.bias"]


def _frames(seed=0, B=2, T=3, H=32):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((B, T, 2, H, H), 0.8), generator=g).double()


@pytest.mark.parametrize("wrap", ["bare", "model", "state_dict", "ddp"])
def test_release_state_dict_loads_and_matches_functional_reference(wrap, tmp_path):
    sd = _release_state_dict()
    if wrap == "model":
        obj = {"model": sd, "epoch": 5}
    elif wrap == "state_dict":
        obj = {"state_dict": sd}
    elif wrap == "ddp":
        obj = {"model": {f"module.{k}": v for k, v in sd.items()}}
    else:
        obj = sd
    path = tmp_path / "release.pth"
    torch.save(obj, path)
    m = create_model("spikformer_dvs", **CFG).double().eval()
    report = load_checkpoint(m, path)
    assert report.format == "release"
    assert "pos_embed" in report.ignored and "norm.weight" in report.ignored
    assert "block.0.norm1.weight" in report.ignored
    x = _frames()
    expected = _functional_release_forward(sd, x, heads=CFG["heads"])
    with torch.no_grad():
        got = m(x)
    assert torch.allclose(got, expected, rtol=0, atol=1e-12), (got, expected)
    # not trivial: spikes happened, and the classes are separated
    assert expected.std() > 0
    # the release-structured reference module agrees too
    ref = ReferenceSpikformer(m.config).double().eval()
    ref.load_state_dict({k: v for k, v in m.state_dict().items()})
    with torch.no_grad():
        assert torch.allclose(ref(x), expected, atol=1e-12)


def test_release_firing_is_not_trivial():
    sd = _release_state_dict()
    m = create_model("spikformer_dvs", **CFG).double().eval()
    load_checkpoint(m, {"model": sd})
    from dvsstream.models.taps import record_firing_rates

    with torch.no_grad(), record_firing_rates(m) as taps:
        m(_frames())
    rates = taps.firing_rates
    assert 0.02 < rates["patch_embed.proj_lif"] < 0.98
    assert rates["block.0.attn.q_lif"] > 0 and rates["block.0.attn.attn_lif"] > 0


def test_conv2d_1x1_weights_load_into_conv1d():
    sd = _release_state_dict()
    sd = {k: (v.unsqueeze(-1) if k.endswith("_conv.weight") and v.dim() == 3 else v) for k, v in sd.items()}
    m = create_model("spikformer_dvs", **CFG).double()
    load_checkpoint(m, sd)


def test_class_count_mismatch_is_one_clear_line():
    sd = _release_state_dict(classes=11)
    m = create_model("spikformer_dvs", **CFG)
    with pytest.raises(DvsstreamError) as e:
        load_checkpoint(m, {"model": sd})
    msg = str(e.value)
    assert "11" in msg and "3" in msg and "\n" not in msg


def test_architecture_mismatch_names_both():
    sd = _release_state_dict(dim=32)
    m = create_model("spikformer_dvs", **CFG)
    with pytest.raises(DvsstreamError, match="shape") as e:
        load_checkpoint(m, sd)
    assert "\n" not in str(e.value)
    sd = _release_state_dict(depth=2)
    with pytest.raises(DvsstreamError, match="architecture mismatch"):
        load_checkpoint(m, sd)
    report = load_checkpoint(m, sd, strict=False)
    assert any(k.startswith("block.1.") for k in report.ignored)
    with pytest.raises(DvsstreamError, match="no tensors"):
        load_checkpoint(m, {"epoch": 3})


def test_our_format_round_trip(tmp_path):
    torch.manual_seed(0)
    m = create_model("spikingformer_dvs_tiny", img_size=32, T=2, num_classes=4).eval()
    path = tmp_path / "ours.pt"
    save_checkpoint(m, path, epoch=7, accuracy=0.5)
    m2 = load_model(path).eval()
    assert m2.config == m.config
    x = _frames(T=2).float()
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))
    report = load_checkpoint(create_model("spikingformer_dvs_tiny", img_size=32, T=2, num_classes=4), path)
    assert report.format == "dvsstream" and report.meta["epoch"] == 7
    with pytest.raises(DvsstreamError, match="4 classes"):
        load_checkpoint(create_model("spikingformer_dvs_tiny", img_size=32, T=2, num_classes=10), path)
    with pytest.raises(DvsstreamError, match="variant"):
        load_checkpoint(create_model("spikformer_dvs_tiny", img_size=32, T=2, num_classes=4), path)
    with pytest.raises(DvsstreamError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_timm_style_checkpoint_with_args_and_optimizer(tmp_path):
    import argparse

    sd = _release_state_dict()
    path = tmp_path / "checkpoint-105.pth.tar"
    torch.save({"epoch": 105, "arch": "spikformer", "state_dict": sd, "optimizer": {"state": {}, "param_groups": []},
                "args": argparse.Namespace(lr=1e-3, T=16), "metric": 80.9}, path)
    m = create_model("spikformer_dvs", **CFG).double()
    report = load_checkpoint(m, path)
    assert report.loaded > 0 and "loaded" in str(report)
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DvsstreamError, match="cannot read"):
        load_checkpoint(m, bad)
