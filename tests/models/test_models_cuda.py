"""CUDA-only checks (skipped without a GPU; run them on a GPU machine)."""

import pytest
import torch

from dvsstream.models import CudaGraphForward, create_model, prepare_for_inference
from model_testing import randomize_batchnorm

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_cuda_graph_replays_give_the_eager_logits():
    torch.manual_seed(0)
    model = randomize_batchnorm(create_model("spikformer_dvs_tiny", num_classes=11))
    model = prepare_for_inference(model, "cuda")
    xs = [torch.poisson(torch.full((1, 8, 2, 64, 64), 0.4, device="cuda")) for _ in range(3)]
    graphed = CudaGraphForward(model, xs[0])
    with torch.inference_mode():
        eager = [model(x).clone() for x in xs]
    for x, ref in zip(xs, eager):  # each replay starts from reset neurons, like an eager call
        assert torch.equal(graphed(x), ref)
    with pytest.raises(ValueError, match="captured for input"):
        graphed(torch.zeros(2, 8, 2, 64, 64, device="cuda"))


def test_cuda_graph_refuses_a_cpu_input():
    model = create_model("spikformer_dvs_tiny", num_classes=11).eval()
    with pytest.raises(ValueError, match="CUDA"):
        CudaGraphForward(model, torch.zeros(1, 8, 2, 64, 64))
