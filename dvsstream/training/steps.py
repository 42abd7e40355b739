"""The pieces of a training or test pass: one training forward (:func:`forward_loss`,
:func:`soft_cross_entropy`), a test pass over a loader (:func:`evaluate_loader`), the
batches (:func:`collate_drop_skipped`, :class:`ShardSampler`), the per-epoch seed
(:func:`epoch_seed`) and :class:`ThreadGuard` (torch's thread count kept where it was).
Frames are ``[B, T, C, H, W]`` float, labels ``[B]`` long, logits ``[B, K]``."""

from __future__ import annotations

import hashlib
from typing import Iterator, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler

from dvsstream.training.distributed import DistInfo, all_sum, dist_info

__all__ = ["ShardSampler", "ThreadGuard", "collate_drop_skipped", "epoch_seed", "evaluate_loader", "forward_loss",
           "soft_cross_entropy"]


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: every sample exactly once over all ranks
    (unlike ``DistributedSampler``, which pads with repeats)."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.n, self.rank, self.world = n, rank, world

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))


def collate_drop_skipped(batch: Sequence[tuple[Tensor, int]]) -> tuple[Tensor, Tensor, int]:
    """``(frames [B, T, C, H, W], labels [B], dropped)``: :func:`dvsstream.datasets.in_memory.collate_frames`
    (samples a dataset could not read, label ``-1``, are left out) plus their count."""
    from dvsstream.datasets.in_memory import collate_frames

    frames, labels = collate_frames(batch)
    return frames, labels, len(batch) - labels.numel()

class ThreadGuard:
    """Keeps torch's intra-op thread count at its value when created.

    Numba's OpenMP threading layer (the frame binner's ``parallel=True`` kernels, run
    when a batch is loaded in this process) shares libgomp with torch and leaves its own
    thread count behind in it; on busy cores the extra spinning threads can slow the
    model down by an order of magnitude. Called after each batch is fetched.
    """

    def __init__(self) -> None:
        self.n = torch.get_num_threads()

    def __call__(self) -> None:
        if torch.get_num_threads() != self.n:
            torch.set_num_threads(self.n)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of ``rank``'s augmentation / mixup generator in ``epoch`` (the hashed
    name is the one from before the split: runs keep their randomness)."""
    digest = hashlib.sha256(f"dvsstream.training.train/{seed}/{epoch}/{rank}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


@torch.no_grad()
def evaluate_loader(model: nn.Module, loader: DataLoader, device: torch.device,
                    amp: Union[bool, torch.dtype, None] = False,
                    info: Optional[DistInfo] = None) -> tuple[float, float, int, int]:
    """``(mean cross-entropy, accuracy, samples, dropped)`` over ``loader`` (summed over
    ranks); ``dropped``: unreadable samples left out (the loader must use
    :func:`collate_drop_skipped`, or yield ``(frames, labels)`` only). ``amp``: the
    autocast dtype (True: float16; False / None: none)."""
    info = info or dist_info()
    dtype = torch.float16 if amp is True else (amp or None)
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, correct, n, dropped
    keep_threads = ThreadGuard()
    for batch in loader:
        keep_threads()
        frames, labels = batch[0], batch[1]
        if len(batch) > 2:
            sums[3] += batch[2]
        if labels.numel() == 0:
            continue
        frames = frames.to(device, non_blocking=True)
        labels = torch.as_tensor(labels).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(frames)
        sums[0] += F.cross_entropy(logits.float(), labels, reduction="sum").double()
        sums[1] += (logits.argmax(1) == labels).sum()
        sums[2] += labels.numel()
    model.train(was_training)
    sums = all_sum(sums, info).cpu()
    n, dropped = int(sums[2]), int(sums[3])
    if n == 0:
        return float("nan"), float("nan"), 0, dropped
    return float(sums[0] / n), float(sums[1] / n), n, dropped

def _channels_last_input(frames: Tensor) -> Tensor:
    """``[B, T, C, H, W]`` stored with C innermost: every ``[C, H, W]`` frame is
    channels_last, so the model's ``[T*B, C, H, W]`` view needs no copy. Same values."""
    return frames.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


def forward_loss(net: nn.Module, frames: Tensor, targets: Tensor, amp: Optional[torch.dtype] = None,
                 channels_last: bool = False) -> tuple[Tensor, Tensor]:
    """One training forward: ``(soft cross-entropy loss (float32 scalar), logits [B, K])``
    of ``frames [B, T, C, H, W]`` against soft ``targets [B, K]``, under autocast to
    ``amp`` (None: the parameters' dtype)."""
    if channels_last:
        frames = _channels_last_input(frames)
    with torch.autocast(frames.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        logits = net(frames)
    return soft_cross_entropy(logits, targets), logits
