"""The training max pool that saves one byte per output: torch's values and gradients, bit
for bit, for less memory."""

from __future__ import annotations

import pytest
import torch

from dvsstream.models.pooling import MaxPool3s2, MaxPool3s2Function, maxpool3s2


def _pair(x: torch.Tensor, g_out_seed: int = 0) -> tuple:
    """(torch's output, our output, torch's input gradient, ours) for the same ``x``."""
    a = x.detach().clone().requires_grad_()
    b = x.detach().clone().requires_grad_()
    ya = torch.nn.functional.max_pool2d(a, 3, 2, 1)
    yb = maxpool3s2(b)
    g = torch.randn(ya.shape, generator=torch.Generator().manual_seed(g_out_seed), dtype=x.dtype)
    ya.backward(g)
    yb.backward(g)
    return ya, yb, a.grad, b.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (3, 5, 9, 7), (1, 4, 1, 5), (2, 2, 2, 1), (1, 32, 128, 128)])
def test_values_and_gradients_equal_torch(shape, channels_last, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    spikes = (torch.rand(shape, generator=g) < 0.3).to(dtype)  # binary: ties in most windows
    ints = torch.randint(-2, 3, shape, generator=g).to(dtype)  # ties among negatives too
    for x in (spikes, ints):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ya, yb, ga, gb = _pair(x)
        assert torch.equal(ya, yb)
        assert torch.equal(ga, gb)  # same winners, the same sums in the same order
        assert gb.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_infinities_and_nan_follow_torch():
    x = torch.tensor([[[[-float("inf"), -float("inf"), 1.0, float("nan")],
                        [-float("inf"), -float("inf"), float("nan"), 2.0],
                        [0.0, float("inf"), -1.0, float("inf")]]]])
    ya, yb, ga, gb = _pair(x)
    assert torch.equal(ya.isnan(), yb.isnan()) and torch.equal(ya.nan_to_num(), yb.nan_to_num())
    assert torch.equal(ga, gb)


def test_saves_one_byte_per_output():
    x = (torch.rand(4, 8, 32, 32) < 0.2).float().contiguous(memory_format=torch.channels_last).requires_grad_()
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = MaxPool3s2()(x)
    assert [(t.dtype, tuple(t.shape)) for t in saved] == [(torch.uint8, tuple(y.shape))]
    assert y.grad_fn.name().startswith(MaxPool3s2Function.__name__)


def test_module_switch_and_fallbacks():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    pool = MaxPool3s2()
    assert pool(x).grad_fn.name().startswith("MaxPool3s2Function")
    try:
        MaxPool3s2.save_codes = False  # torch's pool, as before
        assert "MaxPool2D" in pool(x).grad_fn.name()
    finally:
        MaxPool3s2.save_codes = True
    x3 = torch.randn(3, 8, 8, requires_grad=True)  # unbatched: torch's pool
    assert torch.equal(maxpool3s2(x3), torch.nn.functional.max_pool2d(x3, 3, 2, 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (3, 5, 9, 7), (1, 4, 1, 5), (2, 2, 2, 1)])
def test_torch_operation_path_equals_torch(shape, dtype, monkeypatch):
    """The path CUDA and half precision take (codes by torch operations, torch's backward
    kernel on the indices rebuilt from them), run here on the CPU."""
    import dvsstream.models.pooling as pooling

    if dtype != torch.bfloat16:
        monkeypatch.setattr(pooling, "_kernel_ok", lambda t: False)
    g = torch.Generator().manual_seed(len(shape))
    for x in ((torch.rand(shape, generator=g) < 0.3).to(dtype), torch.randint(-2, 3, shape, generator=g).to(dtype)):
        for cl in (False, True):
            x = x.contiguous(memory_format=torch.channels_last) if cl else x.contiguous()
            ya, yb, ga, gb = _pair(x)
            assert torch.equal(ya, yb) and torch.equal(ga, gb)
            assert yb.grad_fn.name().startswith("MaxPool3s2Function") and gb.dtype == dtype


def test_codes_agree_between_paths():
    from dvsstream.models.pooling import _codes_kernel, _codes_torch, _indices_torch, _nhwc

    g = torch.Generator().manual_seed(3)
    for shape in [(2, 3, 8, 8), (3, 5, 9, 7), (1, 4, 1, 5), (2, 2, 2, 1)]:
        x = (torch.rand(shape, generator=g) < 0.4).float()
        _, idx = torch.ops.aten.max_pool2d_with_indices(x, [3, 3], [2, 2], [1, 1])
        code = torch.empty(idx.shape, dtype=torch.uint8)
        _codes_kernel(_nhwc(idx), _nhwc(code), shape[-1])
        assert torch.equal(code, _codes_torch(idx, shape[-1]))
        assert int(code.max()) <= 8
        assert torch.equal(_indices_torch(code, shape[-1]), idx)
