"""The generated (torch.compile) LIF kernels that LIFMultiStep runs on CUDA, checked
here on the CPU (Inductor's C++ backend; the same recurrence that Triton gets on a
GPU): the same spikes, potentials and surrogate arguments as the Numba kernels bit for
bit, and gradients equal to the reference autograd path within float64 round-off.
Skipped where torch cannot compile (no C++ compiler)."""

from __future__ import annotations

import pytest
import torch

from dvsstream.models import lif_compiled, neurons
from dvsstream.models.neurons import lif_multistep, lif_multistep_fused

pytestmark = pytest.mark.skipif(not lif_compiled.available(torch.device("cpu")),
                                reason="torch.compile needs a C++ compiler here")


@pytest.fixture
def kernels(monkeypatch):
    """Select LIFMultiStep's kernels by name for one test."""
    def use(name: str) -> None:
        monkeypatch.setattr(neurons, "fused_kernels", name)
    return use


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_generated_kernels_equal_the_numba_kernels(kernels, dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 2, 3, 16, 16, generator=g) * 2).to(dtype)
    x = x.view(8, 3, 16, 16).contiguous(memory_format=torch.channels_last).view(4, 2, 3, 16, 16)
    v0 = torch.randn(2, 3, 16, 16, generator=g).to(dtype)
    w = torch.randn(x.shape, generator=g).to(dtype)
    out = {}
    for name in ("numba", "compiled"):
        kernels(name)
        assert neurons.fused_kernel(x, True) == name
        xr, vr = x.clone().requires_grad_(True), v0.clone().requires_grad_(True)
        s, v = lif_multistep_fused(xr, vr)
        ((s * w).sum() + v.sum()).backward()
        out[name] = (s.detach(), v.detach(), xr.grad, vr.grad)
    assert 0 < out["numba"][0].mean() < 1
    for a, b in zip(out["numba"], out["compiled"]):
        assert torch.equal(a, b)
    assert out["compiled"][2].stride() == x.stride()  # the input's layout is kept


def test_generated_gradients_equal_the_reference_float64(kernels):
    kernels("compiled")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 40, generator=g, dtype=torch.float64) * 2
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    grads = []
    for fn in (lif_multistep, lif_multistep_fused):
        xr = x.clone().requires_grad_(True)
        s, _ = fn(xr, tau=1.5, v_threshold=0.5)
        (s * w).sum().backward()
        grads.append(xr.grad)
    assert grads[0].abs().max() > 0
    assert ((grads[1] - grads[0]).abs().max() / grads[0].abs().max()).item() < 1e-12


def test_kernel_choice():
    x = torch.zeros(4, 10)
    assert neurons.fused_kernel(x, True) == "numba"
    assert neurons.fused_kernel(x, False) == "torch"  # the attached reset: torch operations
    assert neurons.fused_kernel(x.half(), True) == "torch"  # CPU half precision
