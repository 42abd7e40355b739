"""Frames held in memory for a training run (:func:`hold_in_memory`): the whole binned
set read once into a :class:`~dvsstream.datasets.in_memory.FramesInMemory` when it fits a
memory budget, and, for the ranks of a DDP run on one machine, one copy that every rank
maps instead of a copy per rank (:func:`_load_shared`: rank 0 writes the frames to one
file in ``/dev/shm`` or the temporary folder, every rank maps it, the name is deleted;
the collective is :func:`dvsstream.training.distributed.on_rank0`)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from dvsstream.heap import (
    available_memory_bytes,
    check_memory,
    fmt_bytes,
    release_freed_memory,
)
from dvsstream.training.distributed import DistInfo, on_rank0

__all__ = ["hold_in_memory"]


def hold_in_memory(dataset: Dataset, mode: str = "auto", budget_mb: float = 2048.0, workers: int = 0,
                   what: str = "training", say: Optional[Callable[[str], Any]] = None,
                   info: Optional[DistInfo] = None, device: Optional[torch.device] = None) -> Dataset:
    """``dataset`` held in memory (:class:`dvsstream.datasets.in_memory.FramesInMemory`, read once,
    ``workers`` loader processes) when ``mode`` is ``"on"``, or ``"auto"`` and the frames
    fit ``budget_mb`` MiB; else ``dataset`` itself. ``say``: one line on what was done.
    ``info`` (``device``: the process group's) of a DDP run whose ranks share one
    machine: rank 0 reads the frames and every rank maps the one copy
    (:func:`_load_shared`), instead of a copy per rank."""
    say = say or (lambda s: None)
    from dvsstream.datasets.in_memory import FramesInMemory

    if mode == "off" or len(dataset) == 0 or isinstance(dataset, FramesInMemory):  # type: ignore[arg-type]
        return dataset  # (frames cut from recordings are in memory already)

    budget = int(budget_mb * 2**20)
    need = FramesInMemory.estimate_bytes(dataset)
    have = available_memory_bytes()
    if mode == "on":  # asked for: refused in one line rather than exhausting the machine
        check_memory(need, f"--cache-frames on (the {what} frames)", "use --cache-frames auto or off")
    elif have is not None and need > have // 2:  # a budget above the machine's memory is no licence to fill it
        say(f"  the {what} frames ({fmt_bytes(need)}) would take more than half the memory available "
            f"({fmt_bytes(have)}): read from the dataset every epoch")
        return dataset
    if mode == "auto" and need > budget:
        say(f"  the {what} frames do not fit the memory budget ({budget_mb:g} MiB): read from the dataset every epoch")
        return dataset
    t0 = time.perf_counter()
    limit = budget if mode == "auto" else None
    if info is not None and info.distributed and _one_machine(info):
        held = _load_shared(dataset, limit, workers, what, info, device or torch.device("cpu"))
    else:
        held = FramesInMemory.load(dataset, limit, workers)
    if held is None:
        say(f"  the {what} frames passed the memory budget ({budget_mb:g} MiB) while loading: "
            f"read from the dataset every epoch")
        return dataset
    shared = f", one copy mapped by all {info.world} processes" if held.shared and info is not None else ""
    say(f"  {what} frames held in memory: {held.nbytes / 2**20:.1f} MiB{shared}, read in "
        f"{time.perf_counter() - t0:.1f} s")
    return held


def _one_machine(info: DistInfo) -> bool:
    """Whether every rank runs on this machine (torchrun's ``LOCAL_WORLD_SIZE``)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "0")) == info.world


def _shared_frames_path(nbytes: int, what: str) -> Path:
    """A new file name for frames shared between processes: in ``/dev/shm`` (memory)
    when it has room for them, else in the temporary folder (the file cache)."""
    name = f"dvsstream-frames-{os.getpid()}-{what}-{os.urandom(4).hex()}.bin"
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and shutil.disk_usage(shm).free > nbytes + (64 << 20):
            return shm / name
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / name


def _load_shared(dataset: Dataset, budget: Optional[int], workers: int, what: str, info: DistInfo,
                 device: torch.device):
    """:meth:`FramesInMemory.load` for the ranks of one machine: rank 0 reads ``dataset``
    and writes the frames to one file (:meth:`~dvsstream.datasets.in_memory.FramesInMemory.save_shared`),
    every rank maps it, then rank 0 deletes the name (the mappings stay). None on every
    rank when the frames pass ``budget``; each rank reads its own copy when the file
    cannot be written (a full disk)."""
    from dvsstream.datasets.in_memory import FramesInMemory

    def write() -> Optional[dict]:
        held = FramesInMemory.load(dataset, budget, workers)
        if held is None:
            return None
        path = _shared_frames_path(held.nbytes, what)
        try:
            layout = held.save_shared(path)
        except OSError as exc:
            path.unlink(missing_ok=True)
            return {"error": f"{path}: {exc}"}
        del held  # rank 0 too keeps only the mapping
        release_freed_memory()
        return layout

    layout = on_rank0(info, device, write)
    if layout is None:
        return None
    if "error" in layout:
        return FramesInMemory.load(dataset, budget, workers)
    held = FramesInMemory.open_shared(dataset, layout)
    dist.barrier()  # every rank has mapped the file
    if info.is_main:
        Path(layout["path"]).unlink(missing_ok=True)
    return held
