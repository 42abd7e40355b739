"""Training with ``recompute``: each conv's ``BN -> LIF`` keeps only the conv's output, and
gives the same numbers, bit for bit, for less memory."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from dvsstream.models import create_model
from dvsstream.models.bn_lif import bn_lif
from dvsstream.models.fusion import set_recompute
from dvsstream.models.neurons import LIF
from model_testing import randomize_batchnorm
from dvsstream.training.memory import measure_step_memory


def _frames(B: int, T: int, size: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((B, T, 2, size, size), 0.3), generator=g).to(dtype)


def _graph_nodes(t: torch.Tensor) -> set[str]:
    seen, todo, names = set(), [t.grad_fn], set()
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(fn.name())
        todo.extend(f for f, _ in fn.next_functions)
    return names


@pytest.mark.parametrize("name", ["spikformer_dvs_tiny", "spikingformer_dvs_tiny", "spikformer_v2_dvs_tiny"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_same_outputs_gradients_and_statistics(name, dtype):
    torch.manual_seed(0)
    plain = create_model(name, img_size=32, T=3).to(dtype)
    randomize_batchnorm(plain)
    plain.patch_embed.proj_bn.momentum = None  # a cumulative running average too
    fused = set_recompute(copy.deepcopy(plain), True)
    opts = [torch.optim.SGD(m.parameters(), lr=0.05) for m in (plain, fused)]
    for step in range(2):  # the second step starts from updated weights and statistics
        x, y = _frames(2, 3, 32, seed=step, dtype=dtype), torch.tensor([1, 4])
        outs = []
        for m, opt in zip((plain, fused), opts):
            m.train()
            opt.zero_grad()
            out = m(x)
            F.cross_entropy(out, y).backward()
            opt.step()
            outs.append(out)
        assert "BatchNormLIFBackward" in _graph_nodes(outs[1])
        assert "BatchNormLIFBackward" not in _graph_nodes(outs[0])
        assert torch.equal(outs[0], outs[1])
        for (n, p), q in zip(plain.named_parameters(), fused.parameters()):
            assert torch.equal(p.grad, q.grad), n
            assert torch.equal(p, q), n
        for (n, b), c in zip(plain.named_buffers(), fused.buffers()):
            assert torch.equal(b, c), n


def test_keeps_less_activation_memory():
    torch.manual_seed(0)
    m = create_model("spikformer_dvs_tiny", img_size=32, T=4)
    x, y = _frames(2, 4, 32, seed=1, dtype=torch.float32), torch.tensor([0, 1])
    kept = measure_step_memory(m, x, y).saved_bytes
    set_recompute(m, True)
    recomputed = measure_step_memory(m, x, y).saved_bytes
    assert recomputed < 0.75 * kept, (recomputed, kept)


def test_state_carried_and_fallbacks():
    torch.manual_seed(0)
    bn, lif = torch.nn.BatchNorm2d(3), LIF()
    x = torch.randn(8, 3, 5, 5, dtype=torch.float32, requires_grad=True)  # T=2, B=4
    s1 = bn_lif(bn, lif, x, (2, 4, 3, 5, 5))
    assert "BatchNormLIFBackward" in _graph_nodes(s1)
    v1 = lif.v
    s2 = bn_lif(bn, lif, x, (2, 4, 3, 5, 5))  # continues from v1, as LIF.forward would
    ref_bn, ref_lif = copy.deepcopy(bn), LIF()
    ref_bn.num_batches_tracked.zero_()
    ref_bn.running_mean.zero_()
    ref_bn.running_var.fill_(1.0)
    r1 = ref_lif(ref_bn(x).view(2, 4, 3, 5, 5))
    ref_v1 = ref_lif.v
    r2 = ref_lif(ref_bn(x).view(2, 4, 3, 5, 5))
    assert torch.equal(s1, r1) and torch.equal(v1, ref_v1)
    assert torch.equal(s2, r2) and torch.equal(lif.v, ref_lif.v)
    assert torch.equal(bn.running_var, ref_bn.running_var) and int(bn.num_batches_tracked) == 2
    (s2.sum() + lif.v.sum()).backward()  # through both calls and the carried state
    g = x.grad.clone()
    x.grad = None
    (r2.sum() + ref_lif.v.sum()).backward()
    assert torch.equal(g, x.grad)
    # where it does not apply, the two modules run as they are
    bn.register_forward_hook(lambda *a: None)  # a tap
    assert "BatchNormLIFBackward" not in _graph_nodes(bn_lif(bn, LIF(), x, (2, 4, 3, 5, 5)))
    slow = LIF()
    slow.fused_autograd = False
    assert "BatchNormLIFBackward" not in _graph_nodes(bn_lif(torch.nn.BatchNorm2d(3), slow, x, (2, 4, 3, 5, 5)))


def test_same_numbers_under_autocast():
    """bf16 autocast on the CPU (the CUDA fp16 / bf16 case runs the same calls)."""
    torch.manual_seed(0)
    plain = create_model("spikformer_dvs_tiny", img_size=32, T=2)
    randomize_batchnorm(plain)
    fused = set_recompute(copy.deepcopy(plain), True)
    x, y = _frames(2, 2, 32, seed=3, dtype=torch.float32), torch.tensor([2, 3])
    outs = []
    for m in (plain, fused):
        m.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(x)
            loss = F.cross_entropy(out.float(), y)
        loss.backward()
        outs.append(out)
    assert "BatchNormLIFBackward" in _graph_nodes(outs[1])
    assert torch.equal(outs[0], outs[1])
    for (n, p), q in zip(plain.named_parameters(), fused.parameters()):
        assert torch.equal(p.grad, q.grad), n


@pytest.mark.parametrize("kernel", ["torch", "compiled"])
def test_other_lif_kernels(kernel, monkeypatch):
    """The LIF kernels of other devices and dtypes (torch operations; the generated ones
    CUDA runs, compiled here for the CPU) through the recomputing node: the same spikes
    and gradients as the two modules."""
    from dvsstream.models import lif_compiled, neurons

    if kernel == "compiled" and not lif_compiled.available(torch.device("cpu")):
        pytest.skip("torch.compile needs a C++ compiler here")
    monkeypatch.setattr(neurons, "fused_kernels", kernel)
    g = torch.Generator().manual_seed(5)
    for bn_type, x, lead in ((torch.nn.BatchNorm2d, torch.randn(6, 4, 6, 6, generator=g), (3, 2)),
                             (torch.nn.BatchNorm1d, torch.randn(24, 8, generator=g), (3, 2, 4))):
        x = x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
        tb = (*lead, *x.shape[1:])
        assert neurons.fused_kernel(x.view(tb), True) == kernel
        grads, spikes = [], []
        for fused in (True, False):
            torch.manual_seed(0)
            bn, lif = bn_type(x.shape[1]), LIF()
            xr = x.clone().requires_grad_()
            s = bn_lif(bn, lif, xr, tb) if fused else lif(bn(xr).view(tb))
            assert ("BatchNormLIFBackward" in _graph_nodes(s)) == fused
            (s * torch.arange(s.numel()).view(s.shape).float().sin()).sum().backward()
            grads.append((xr.grad, bn.weight.grad, bn.bias.grad))
            spikes.append(s)
        assert torch.equal(spikes[0], spikes[1])
        assert all(torch.equal(a, b) for a, b in zip(*grads))
