"""Frames held in memory, and batching them.

A small set can be held in memory (:class:`FramesInMemory`, ``dvsstream train
--cache-frames``): every sample is read once (through the disk cache) and kept as its
counts in the smallest exact dtype, so an epoch does no file I/O at all and the frames it
yields are bit for bit the ones the dataset yields. :func:`collate_frames` batches
samples and drops the skipped ones (label -1).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from dvsstream.datasets.frame_cache import smallest_exact

__all__ = ["FramesInMemory", "collate_frames", "first_readable"]


#: :meth:`FramesInMemory.load` gives freed memory back each time it holds this much more
_RELEASE_EVERY_BYTES = 16 << 20


class FramesInMemory(torch.utils.data.Dataset):
    """Every sample of a dataset read once and held in memory: ``(frames, label)`` as the
    dataset gives them, bit for bit (counts kept as uint8 / uint16 when that is exact,
    else as they came; handed out in the dataset's dtype). Unreadable samples stay
    ``(torch.empty(0), -1)``. ``classes`` and ``skipped`` follow the wrapped dataset.

    Build it with :meth:`load`; ``nbytes`` is the memory it holds.
    """

    def __init__(self, dataset, frames: list[Optional[torch.Tensor]], labels: list[int],
                 dtype: torch.dtype) -> None:
        self.dataset = dataset
        self._frames, self._labels, self.dtype = frames, labels, dtype
        self.classes = getattr(dataset, "classes", None)
        self.nbytes = sum(f.numel() * f.element_size() for f in frames if f is not None)

    @property
    def skipped(self) -> list:
        return list(getattr(self.dataset, "skipped", []) or [])

    @staticmethod
    def estimate_bytes(dataset) -> int:
        """Bytes the frames would take at one byte per count (the smallest case): the
        first readable sample's size times ``len(dataset)``; 0 when none of the first 16
        is readable."""
        x = first_readable(dataset)
        return 0 if x is None else int(x.numel()) * len(dataset)

    @classmethod
    def load(cls, dataset, budget_bytes: Optional[int] = None, workers: int = 0) -> Optional["FramesInMemory"]:
        """Read all of ``dataset`` (``workers`` > 0: in DataLoader worker processes);
        None as soon as the held frames pass ``budget_bytes`` (None: no limit)."""
        frames: list[Optional[torch.Tensor]] = []
        labels: list[int] = []
        dtype, held = torch.float32, 0
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers,
                                             collate_fn=_as_is) if workers > 0 else \
            (dataset[i] for i in range(len(dataset)))  # by index: a dataset need not end with IndexError
        from dvsstream.heap import release_freed_memory

        released = 0
        for x, y in loader:
            if int(y) < 0:
                frames.append(None)
            else:
                x = torch.as_tensor(x)
                dtype = x.dtype
                frames.append(_compact(x))
                held += frames[-1].numel() * frames[-1].element_size()
                if budget_bytes is not None and held > budget_bytes:
                    return None
                if held - released > _RELEASE_EVERY_BYTES:  # the freed float samples, between the kept ones
                    release_freed_memory()
                    released = held
            labels.append(int(y))
        release_freed_memory()
        return cls(dataset, frames, labels, dtype)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        f = self._frames[i]
        if f is None:
            return torch.empty(0), -1
        return f.to(self.dtype), self._labels[i]

    #: True when the frames are a mapping of a file (:meth:`open_shared`)
    shared: bool = False

    def save_shared(self, path) -> dict:
        """Write the held frames into one new file at ``path``, sample after sample as
        they lie in memory, and return the layout :meth:`open_shared` maps it with
        (``path``, its ``bytes``, per sample ``(byte offset, dtype, shape)`` or None,
        labels, dtype)."""
        entries: list[Optional[tuple[int, str, tuple[int, ...]]]] = []
        offset = 0
        with open(path, "xb") as f:
            for x in self._frames:
                if x is None:
                    entries.append(None)
                    continue
                a = np.ascontiguousarray(x.numpy())
                a.tofile(f)
                entries.append((offset, a.dtype.str, tuple(a.shape)))
                offset += a.nbytes
        return {"path": str(path), "bytes": offset, "entries": entries, "labels": list(self._labels),
                "dtype": str(self.dtype).removeprefix("torch.")}

    @classmethod
    def open_shared(cls, dataset, layout: dict) -> "FramesInMemory":
        """The frames :meth:`save_shared` wrote, mapped copy-on-write: their pages are the
        operating system's file cache, one copy for every process that maps the file (the
        ranks of a DDP run on one machine); the file may be deleted once all have."""
        size = layout["bytes"]
        data = np.memmap(layout["path"], dtype=np.uint8, mode="c", shape=(size,)) if size else None
        frames: list[Optional[torch.Tensor]] = []
        for e in layout["entries"]:
            if e is None:
                frames.append(None)
                continue
            offset, dt, shape = e
            n = int(np.prod(shape)) * np.dtype(dt).itemsize
            frames.append(torch.from_numpy(data[offset:offset + n].view(dt).reshape(shape)))
        held = cls(dataset, frames, list(layout["labels"]), getattr(torch, layout["dtype"]))
        held.shared = True
        return held


def first_readable(dataset, k: int = 16) -> Optional[torch.Tensor]:
    """The frames of the first readable sample (label >= 0) among the first ``k`` of
    ``dataset``; None when none is."""
    for i in range(min(len(dataset), k)):
        x, y = dataset[i]
        if int(y) >= 0:
            return torch.as_tensor(x)
    return None


def _as_is(item):
    """DataLoader collate for one sample (``batch_size=None``): unchanged."""
    return item


def _compact(x: torch.Tensor) -> torch.Tensor:
    """``x`` as uint8 / uint16 when that holds its values exactly, else ``x`` itself."""
    if x.is_floating_point() and x.numel():
        small = torch.from_numpy(smallest_exact(x.detach().cpu().numpy()))
        if small.dtype in (torch.uint8, torch.uint16):
            return small
    return x


def collate_frames(batch):
    """DataLoader collate that drops skipped samples (label -1): ``(frames [B, T, 2, H, W],
    labels [B])``; an all-skipped batch gives ``B = 0``."""
    kept = [(f, int(y)) for f, y in batch if int(y) >= 0]
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    frames = torch.stack([torch.as_tensor(f) for f, _ in kept])
    labels = torch.tensor([y for _, y in kept], dtype=torch.long)
    return frames, labels
