"""Device placement for inference: CUDA when present, CPU otherwise; nothing assumes a GPU."""

from __future__ import annotations

import os
from typing import Optional, Union

import torch
from torch import nn

__all__ = ["default_device", "prepare_for_inference"]


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


def physical_cores() -> int:
    """Best guess of physical cores (for ``torch.set_num_threads``)."""
    try:
        with open("/proc/cpuinfo") as f:
            pairs = set()
            phys = core = None
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":")[1].strip()
                    pairs.add((phys, core))
            if pairs:
                return len(pairs)
    except OSError:
        pass
    return os.cpu_count() or 1
