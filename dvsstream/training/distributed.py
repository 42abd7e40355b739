"""Several processes (``torchrun``), for training and evaluation alike: which rank this
is (:class:`DistInfo`, :func:`dist_info`), the device and the process group
(:func:`init_distributed`, :func:`close_distributed`) and the collectives the two use
(:func:`all_sum`, :func:`gather_objects`, :func:`on_rank0`). A single process (no
``WORLD_SIZE > 1``) needs none of it: every helper then works on this process alone."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import torch
import torch.distributed as dist
from torch import Tensor

from dvsstream.errors import DvsstreamError

__all__ = ["DistInfo", "all_sum", "close_distributed", "dist_info", "gather_objects", "init_distributed",
           "on_rank0", "resolve_device"]


@dataclass(frozen=True)
class DistInfo:
    """This process's ``rank`` among ``world`` processes (``local_rank`` on its machine)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def dist_info() -> DistInfo:
    """Rank and world size of an initialised process group (else a single process)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def resolve_device(device: Union[None, str, torch.device], local_rank: int = 0) -> torch.device:
    """The torch device ``device`` names (None: CUDA when available, else the CPU); a
    CUDA device without an index is ``cuda:LOCAL_RANK`` (modulo the GPU count: gloo
    allows more ranks than GPUs). A one-line :class:`DvsstreamError` for an unknown
    device or CUDA without CUDA."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DvsstreamError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DvsstreamError(f"device {device!r} asked for but CUDA is not available; use --device cpu")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    return dev


def init_distributed(device: Union[None, str, torch.device] = None,
                     backend: Optional[str] = None) -> tuple[DistInfo, torch.device, bool]:
    """Under ``torchrun`` (``WORLD_SIZE > 1``) initialise the default process group
    (``backend``; None: NCCL on CUDA, gloo on CPU) and pick ``cuda:LOCAL_RANK`` (see
    :func:`resolve_device`; a CUDA device becomes the current one).

    Returns ``(info, device, initialised_here)``; call :func:`close_distributed` with
    ``initialised_here`` at the end.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    here = False
    if world > 1 and not (dist.is_available() and dist.is_initialized()):
        if not dist.is_available():
            raise DvsstreamError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        dist.init_process_group(backend or ("nccl" if dev.type == "cuda" else "gloo"))
        here = True
    return dist_info(), dev, here


def close_distributed(initialised_here: bool) -> None:
    """Tear down the process group :func:`init_distributed` initialised (when
    ``initialised_here``), after a barrier: no rank tears gloo down while another is
    still in a collective."""
    if initialised_here and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def all_sum(values: Tensor, info: DistInfo) -> Tensor:
    """``values`` summed over the ranks, in place (a single process: unchanged)."""
    if info.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather_objects(obj: Any, info: DistInfo) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not info.distributed:
        return [obj]
    out: list = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def on_rank0(info: DistInfo, dev: torch.device, work: Callable[[], Any]) -> Any:
    """``work()`` on rank 0, its value (or its :class:`DvsstreamError`) handed to every
    rank: all ranks go on with the same value or raise the same error."""
    if not info.distributed:
        return work()
    payload: list[Any] = [None]
    if info.is_main:
        try:
            payload = [("ok", work())]
        except DvsstreamError as exc:
            payload = [("error", str(exc))]
    dist.broadcast_object_list(payload, src=0, device=dev if dev.type == "cuda" else None)
    status, value = payload[0]
    if status == "error":
        raise DvsstreamError(value)
    return value
