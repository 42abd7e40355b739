"""Device placement for inference: CUDA when present, CPU otherwise; nothing assumes a GPU."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

__all__ = ["default_device", "prepare_for_inference", "CudaGraphForward"]


def default_device() -> torch.device:
    """``cuda`` when a CUDA device is usable, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def prepare_for_inference(
    model: nn.Module,
    device: Optional[Union[str, torch.device]] = None,
    half: bool = False,
    fuse_bn: bool = True,
    threads: Optional[int] = None,
) -> nn.Module:
    """Eval mode, batch norms folded (``fuse_bn``), moved to ``device`` (default: CUDA if
    available), optionally float16 (CUDA only: CPU half precision is slower than float32).
    On CPU, ``threads`` sets torch's intra-op threads (default: leave as is).

    Spike attention sums stay exact in half precision (SSA computes them in float32);
    membrane potentials are rounded, so a few spikes near threshold may differ.
    """
    dev = torch.device(device) if device is not None else default_device()
    model.eval()
    if fuse_bn and hasattr(model, "fuse_bn"):
        model.fuse_bn()
    model.to(dev)
    if half:
        if dev.type != "cuda":
            raise ValueError("half precision is offered on CUDA only; on CPU float32 is faster")
        model.half()
    if dev.type == "cpu" and threads:
        torch.set_num_threads(int(threads))
    return model


class CudaGraphForward:
    """``model(x)`` replayed from one captured CUDA graph, for a fixed input shape.

    Batch-1 inference on a GPU is bound by kernel launches (hundreds per forward);
    replaying a graph launches them all at once. The model must be in eval mode on
    CUDA; the graph is captured for ``example``'s shape and dtype (``[B, T, C, H, W]``)
    and calling with another shape raises ``ValueError``. Outputs are copies, safe to keep.
    The model's own state (LIF potentials) is reset by its forward, so replays are
    independent, exactly as eager calls are.
    """

    def __init__(self, model: nn.Module, example: torch.Tensor, warmup: int = 3) -> None:
        if example.device.type != "cuda":
            raise ValueError("CudaGraphForward needs a CUDA input (and model)")
        if model.training:
            raise ValueError("CudaGraphForward needs an eval-mode model (call model.eval())")
        self.model = model
        self.static_in = example.detach().clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(max(warmup, 1)):  # fills caches (thresholds, scratch buffers)
                model(self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph):
            self.static_out = model(self.static_in)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape != self.static_in.shape:
            raise ValueError(f"captured for input {tuple(self.static_in.shape)}, got {tuple(x.shape)}")
        with torch.inference_mode():
            self.static_in.copy_(x)
            self.graph.replay()
            return self.static_out.clone()

