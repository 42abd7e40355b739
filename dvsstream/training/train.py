"""Training with the Spikformer DVS recipe: ``dvsstream train`` and :func:`train`.

The recipe (see ``shared/docs/spikformer-family.md``), all of it configurable through
:class:`TrainConfig`:

* AdamW (betas 0.9 / 0.999, eps 1e-8), lr 1e-3, weight decay 0.06 on weights only
  (biases and batch-norm parameters get none, like timm's optimizer factory); batch 16
  **per process**.
* Learning rate set **per iteration**: linear warm-up from ``warmup_lr`` (1e-5) to ``lr``
  over the first ``warmup_epochs`` (10) epochs, then a half cosine down to ``min_lr``
  (1e-5) at the last iteration. (The releases step timm's scheduler per epoch; the
  per-iteration curve is the same one without the steps.)
* Augmentation (:mod:`dvsstream.datasets.augment`): random horizontal flip (``hflip=False`` /
  ``--no-hflip`` turns it off: DVS128 Gesture has left/right classes) and one random op
  per sample; mixup (Beta(0.5, 0.5), on half of the batches) up to and including epoch
  ``mixup_until`` (75, epochs count from 1); label smoothing 0.1 (soft targets).
* Mixed precision (``amp``): ``"auto"`` is float16 autocast + ``GradScaler`` on CUDA and
  float32 on CPU; ``"bf16"`` bfloat16 autocast (no scaler) on CUDA or CPU (on a CPU without
  bf16 instructions it is slower: measure); ``"fp16"`` (CUDA); ``"off"``. On CUDA AdamW is
  the fused kernel. ``channels_last``: the conv weights and the input frames channels-last
  (the layers keep their maps channels-last already).
* Data: ``workers`` loader processes (persistent, ``prefetch`` batches ahead each), pinned
  memory on CUDA; ``cache_frames`` holds the whole binned set in memory
  (:class:`dvsstream.datasets.dataset.FramesInMemory`: no file I/O after the first read), ``"auto"``
  when it fits ``memory_budget_mb`` (per process).
* Every epoch: test accuracy, ``OUT/log.csv`` (and TensorBoard in ``OUT/tb`` when
  ``torch.utils.tensorboard`` imports), ``OUT/last.pt`` (weights, optimizer, scheduler,
  scaler, epoch, RNG states, best accuracy, history: ``--resume`` continues from it
  exactly) and ``OUT/best.pt`` when the test accuracy improved. Both are our checkpoint
  format: :func:`dvsstream.models.load_model` loads either. At the end ``OUT/result.json``
  holds the best **and the final-epoch** test accuracy.
* ``torchrun`` for DDP: with ``WORLD_SIZE > 1`` the process group is initialised (NCCL on
  CUDA, gloo on CPU), each process gets a shard of the data (``DistributedSampler``),
  gradients are averaged, metrics summed across processes, and only rank 0 writes files.

Randomness is a function of ``(seed, epoch, rank)``: the data order comes from the
sampler's ``set_epoch`` and the augmentation / mixup generator is re-seeded at the start
of each epoch, so a resumed run reproduces an uninterrupted one (on CPU bit for bit).

The core, :func:`train` (a :class:`Trainer`: prepare, epochs, evaluate, checkpoint, resume),
takes a model and two torch datasets yielding ``(frames [T, 2, H, W], label)``;
:func:`run_train` is the command line on top of it (datasets from a folder via
:mod:`dvsstream.datasets.dataset`). :func:`measure_step_memory` measures the activation memory of
one training step.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from dvsstream.datasets.augment import AugmentConfig, augment_batch, mixup, one_hot_smooth
from dvsstream.errors import DvsstreamError
from dvsstream.fileio import replace_atomically
from dvsstream.heap import keep_freed_memory, release_freed_memory

__all__ = [
    "RECIPE_EPOCHS",
    "LOG_FIELDS",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "StepMemory",
    "measure_step_memory",
    "forward_loss",
    "resolve_amp",
    "hold_in_memory",
    "WarmupCosine",
    "DistInfo",
    "dist_info",
    "init_distributed",
    "build_optimizer",
    "evaluate_loader",
    "collate_drop_skipped",
    "soft_cross_entropy",
    "frame_spec_for",
    "train",
    "run_train",
]

#: the papers' epoch counts
RECIPE_EPOCHS = {"cifar10dvs": 106, "dvsgesture": 202}
#: columns of OUT/log.csv
LOG_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_s", "samples_per_s")
TRAIN_STATE_FORMAT = "dvsstream.training.train/1"


# ====================================================================== configuration
@dataclass
class TrainConfig:
    """Hyper-parameters and switches of :func:`train` (defaults: the papers' recipe).

    ``batch_size`` is per process. ``stop_after``: end this run after that epoch while
    the schedule still spans ``epochs`` (an interrupted run; continue with ``resume``).
    ``amp``: ``"auto"`` (or True: float16 on CUDA, off on CPU), ``"bf16"``, ``"fp16"``
    (CUDA only), ``"off"`` (or False); see :func:`resolve_amp`. ``channels_last``: conv
    weights and input frames channels-last. ``recompute``: each conv's batch norm and LIF
    keep only the conv's output for the backward, which recomputes the rest (same
    numbers; ~40 % less activation memory, ~13 % more time on a CPU; see
    :mod:`dvsstream.models.bn_lif`). ``workers`` / ``prefetch``: loader processes
    and the batches each prepares ahead. ``cache_frames``: ``"on"``, ``"off"`` or
    ``"auto"`` (hold the frames in memory when they fit ``memory_budget_mb`` MiB, the
    training and test sets together, per process).
    """

    epochs: int = 106
    batch_size: int = 16
    eval_batch_size: Optional[int] = None
    lr: float = 1e-3
    weight_decay: float = 0.06
    warmup_epochs: int = 10
    warmup_lr: float = 1e-5
    min_lr: float = 1e-5
    mixup_alpha: float = 0.5
    mixup_prob: float = 0.5
    mixup_until: int = 75
    label_smoothing: float = 0.1
    augment: bool = True
    hflip: bool = True
    amp: Union[bool, str] = "auto"
    channels_last: bool = False
    recompute: bool = False
    workers: int = 0
    prefetch: int = 2
    cache_frames: str = "auto"
    memory_budget_mb: float = 2048.0
    seed: int = 0
    resume: bool = False
    stop_after: Optional[int] = None
    tensorboard: bool = True
    progress: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise DvsstreamError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise DvsstreamError(f"batch size must be at least 1, got {self.batch_size}")
        if self.lr <= 0:
            raise DvsstreamError(f"learning rate must be positive, got {self.lr}")
        if self.warmup_epochs < 0:
            raise DvsstreamError(f"warm-up epochs must be >= 0, got {self.warmup_epochs}")
        if not isinstance(self.amp, bool) and self.amp not in AMP_MODES:
            raise DvsstreamError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.cache_frames not in ("auto", "on", "off"):
            raise DvsstreamError(f"cache_frames must be auto, on or off, got {self.cache_frames!r}")
        if self.workers < 0 or self.prefetch < 1:
            raise DvsstreamError(f"workers must be >= 0 and prefetch >= 1, got {self.workers} and {self.prefetch}")
        if not self.memory_budget_mb >= 0:
            raise DvsstreamError(f"the memory budget must be >= 0 MiB, got {self.memory_budget_mb}")

    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(hflip=self.hflip)


#: values of ``TrainConfig.amp`` / ``--amp``
AMP_MODES = ("auto", "off", "fp16", "bf16")
_AMP_NAMES = {None: "off", torch.float16: "fp16", torch.bfloat16: "bf16"}


def resolve_amp(amp: Union[bool, str, None], device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of ``amp`` on ``device`` (None: no autocast): ``"auto"`` / True
    is float16 on CUDA and none on CPU; ``"bf16"`` bfloat16; ``"fp16"`` float16 (CUDA only,
    else a :class:`DvsstreamError`); ``"off"`` / False / None none."""
    if amp is True or amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    if amp is False or amp is None or amp == "off":
        return None
    if amp == "fp16":
        if device.type != "cuda":
            raise DvsstreamError(f"--amp fp16 needs CUDA (the device is {device}); use --amp bf16 or off on a CPU")
        return torch.float16
    if amp == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise DvsstreamError(f"--amp bf16: {torch.cuda.get_device_name(device)} has no bfloat16; use --amp fp16")
        return torch.bfloat16
    raise DvsstreamError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")


@dataclass
class TrainResult:
    """What :func:`train` did. Accuracies are fractions in [0, 1] (NaN without a test set)."""

    best_acc: float
    best_epoch: int
    final_acc: float
    final_epoch: int
    epochs: int
    complete: bool
    history: list[dict[str, float]]
    samples_per_s: float
    wall_s: float
    out_dir: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ====================================================================== schedule
class WarmupCosine:
    """Per-iteration learning rate: linear from ``warmup_lr`` to ``lr`` over
    ``warmup_steps``, then half a cosine from ``lr`` to ``min_lr`` at ``total_steps - 1``.

    Sets every parameter group's ``lr`` for the coming iteration; :meth:`step` after each
    optimiser step. ``state_dict`` holds the iteration count only (the curve is a
    function of the configuration).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int,
                 lr: float, warmup_lr: float = 1e-5, min_lr: float = 1e-5) -> None:
        self.optimizer = optimizer
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, int(warmup_steps))
        self.lr, self.warmup_lr, self.min_lr = float(lr), float(warmup_lr), float(min_lr)
        self.last_step = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_lr + (self.lr - self.warmup_lr) * step / self.warmup_steps
        span = max(1, self.total_steps - 1 - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def get_last_lr(self) -> float:
        return self.lr_at(self.last_step)

    def _apply(self) -> None:
        value = self.lr_at(self.last_step)
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self.last_step, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_step = int(state["last_step"])
        self._apply()


def build_optimizer(model: nn.Module, lr: float, weight_decay: float,
                    fused: Optional[bool] = None) -> torch.optim.AdamW:
    """AdamW with weight decay on weights (``ndim >= 2``) and none on biases / norms.
    ``fused``: the fused kernel (None: when every parameter is on CUDA)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    if fused is None:
        fused = bool(decay or no_decay) and all(p.is_cuda for p in decay + no_decay)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.999), eps=1e-8,
                             fused=fused or None)


# ====================================================================== distributed
@dataclass(frozen=True)
class DistInfo:
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


def _resolve_device(device: Union[None, str, torch.device], local_rank: int = 0) -> torch.device:
    if device is None:
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DvsstreamError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DvsstreamError(f"device {device!r} asked for but CUDA is not available; use --device cpu")
        if dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
    return dev


def init_distributed(device: Union[None, str, torch.device] = None) -> tuple[DistInfo, torch.device, bool]:
    """Under ``torchrun`` (``WORLD_SIZE > 1``) initialise the default process group
    (NCCL on CUDA, gloo on CPU) and pick ``cuda:LOCAL_RANK``.

    Returns ``(info, device, initialised_here)``; call
    ``torch.distributed.destroy_process_group()`` at the end when ``initialised_here``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _resolve_device(device, local)
    here = False
    if world > 1 and not (dist.is_available() and dist.is_initialized()):
        if not dist.is_available():
            raise DvsstreamError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        here = True
    return dist_info(), dev, here


class _ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: every sample exactly once over all ranks
    (unlike ``DistributedSampler``, which pads with repeats)."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.n, self.rank, self.world = n, rank, world

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))


def collate_drop_skipped(batch: Sequence[tuple[Tensor, int]]) -> tuple[Tensor, Tensor, int]:
    """``(frames [B, T, C, H, W], labels [B], dropped)``: :func:`dvsstream.datasets.dataset.collate_frames`
    (samples a dataset could not read, label ``-1``, are left out) plus their count."""
    from dvsstream.datasets.in_memory import collate_frames

    frames, labels = collate_frames(batch)
    return frames, labels, len(batch) - labels.numel()


def _all_sum(values: Tensor, info: DistInfo) -> Tensor:
    if info.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


class _ThreadGuard:
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


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    digest = hashlib.sha256(f"dvsstream.training.train/{seed}/{epoch}/{rank}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


# ====================================================================== loops
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
    keep_threads = _ThreadGuard()
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
    sums = _all_sum(sums, info).cpu()
    n, dropped = int(sums[2]), int(sums[3])
    if n == 0:
        return float("nan"), float("nan"), 0, dropped
    return float(sums[0] / n), float(sums[1] / n), n, dropped


def _write_log_csv(path: Path, history: Sequence[dict[str, float]]) -> None:
    """``OUT/log.csv``: one row of :data:`LOG_FIELDS` per epoch, replaced atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
            w.writeheader()
            for row in history:
                w.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in LOG_FIELDS})

    replace_atomically(path, write)


def _model_header(model: nn.Module) -> dict[str, Any]:
    from dvsstream.models.checkpoints import FORMAT

    cfg = model.config
    return {"format": FORMAT, "model_name": cfg.name or cfg.variant, "config": cfg.to_dict(),
            "num_classes": cfg.num_classes}


def _fmt_acc(a: float) -> str:
    return "  n/a " if math.isnan(a) else f"{100 * a:6.2f} %"


def _check_frames(model: nn.Module, dataset: Dataset) -> None:
    """The first readable sample's ``[T, C, H, W]`` must fit the model's C, H, W."""
    from dvsstream.datasets.in_memory import first_readable

    x0 = first_readable(dataset)
    want = (model.config.in_channels, *model.config.img_size)
    if x0 is not None and tuple(x0.shape[-3:]) != want:
        raise DvsstreamError(
            f"training frames have shape {tuple(x0.shape)} [T, C, H, W] but the model "
            f"{model.config.name or model.config.variant} takes C, H, W = {want}"
        )


def _json_safe(obj: Any) -> Any:
    """NaN / inf -> None, recursively (strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _prepare_resume(model: nn.Module, config: TrainConfig, last_path: Path,
                    classes: list[str]) -> Optional[dict[str, Any]]:
    """The training state to continue from (``config.resume``), or None for a fresh run;
    refuses to overwrite an existing run and to resume a different model or class list."""
    if not config.resume:
        if last_path.exists():
            raise DvsstreamError(
                f"{last_path.parent} already holds a training run ({last_path.name}); pass --resume to continue it "
                f"or choose another output folder"
            )
        return None
    if not last_path.is_file():
        raise DvsstreamError(f"--resume: {last_path} does not exist (nothing to continue)")
    try:
        state = torch.load(last_path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DvsstreamError(f"--resume: cannot read {last_path}: {type(exc).__name__}: {exc}") from None
    ts = state.get("train_state") if isinstance(state, dict) else None
    if not ts or ts.get("format") != TRAIN_STATE_FORMAT:
        raise DvsstreamError(f"--resume: {last_path} is not a dvsstream training checkpoint")
    theirs, ours = dict(state["config"]), model.config.to_dict()
    diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    if diff:
        k = diff[0]
        raise DvsstreamError(
            f"--resume: {last_path} holds a {state.get('model_name')} with {k}={theirs.get(k)!r} "
            f"but the model to train has {k}={ours.get(k)!r} (also differing: {diff[1:] or 'nothing else'})"
        )
    saved_classes = state.get("meta", {}).get("classes")
    if saved_classes is not None and list(saved_classes) != classes:
        raise DvsstreamError(f"--resume: {last_path} was trained on classes {saved_classes}, the data has {classes}")
    return state


def _on_rank0(info: DistInfo, dev: torch.device, work: Callable[[], Any]) -> Any:
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


@dataclass
class StepMemory:
    """Memory of one training step (forward + backward) of a batch.

    ``saved_bytes``: the tensors autograd saved for the backward (distinct storages,
    parameters and the input left out): the activation memory the step holds at the end
    of its forward. ``peak_bytes``: on CUDA ``torch.cuda.max_memory_allocated`` during the
    step above what was allocated before it (activations, gradients, workspace); on CPU
    equal to ``saved_bytes``. ``step_s``: the step's wall time (seconds).
    """

    device: str
    batch: int
    saved_bytes: int
    peak_bytes: int
    step_s: float


def measure_step_memory(model: nn.Module, frames: Tensor, labels: Optional[Tensor] = None,
                        amp: Union[None, bool, str, torch.dtype] = None, channels_last: bool = False) -> StepMemory:
    """Peak activation memory of one training step of ``model`` (in train mode, on its
    device) on ``frames [B, T, C, H, W]`` (``labels [B]``: default all 0): forward,
    loss, backward; the gradients are left in ``.grad`` (zero them before a real step).
    ``amp``: as :class:`TrainConfig`'s ``amp`` or a dtype."""
    p0 = next(model.parameters())
    dev = p0.device
    dtype = amp if isinstance(amp, torch.dtype) else resolve_amp(amp if amp is not None else "off", dev)
    frames = frames.to(dev).float()
    labels = torch.zeros(frames.shape[0], dtype=torch.long, device=dev) if labels is None else labels.to(dev)
    targets = one_hot_smooth(labels, int(model.config.num_classes), 0.1)
    skip = {p.untyped_storage().data_ptr() for p in model.parameters()} | {frames.untyped_storage().data_ptr()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in skip and ptr not in seen:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    model.train()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else 0
    t0 = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = forward_loss(model, frames, targets, dtype, channels_last)
    loss.backward()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    step_s = time.perf_counter() - t0
    saved = sum(seen.values())
    peak = torch.cuda.max_memory_allocated(dev) - before if dev.type == "cuda" else saved
    return StepMemory(str(dev), int(frames.shape[0]), int(saved), int(peak), step_s)


def hold_in_memory(dataset: Dataset, mode: str = "auto", budget_mb: float = 2048.0, workers: int = 0,
                   what: str = "training", say: Optional[Callable[[str], Any]] = None,
                   info: Optional[DistInfo] = None, device: Optional[torch.device] = None) -> Dataset:
    """``dataset`` held in memory (:class:`dvsstream.datasets.dataset.FramesInMemory`, read once,
    ``workers`` loader processes) when ``mode`` is ``"on"``, or ``"auto"`` and the frames
    fit ``budget_mb`` MiB; else ``dataset`` itself. ``say``: one line on what was done.
    ``info`` (``device``: the process group's) of a DDP run whose ranks share one
    machine: rank 0 reads the frames and every rank maps the one copy
    (:func:`_load_shared`), instead of a copy per rank."""
    say = say or (lambda s: None)
    if mode == "off" or len(dataset) == 0:  # type: ignore[arg-type]
        return dataset
    from dvsstream.datasets.in_memory import FramesInMemory

    budget = int(budget_mb * 2**20)
    if mode == "auto" and FramesInMemory.estimate_bytes(dataset) > budget:
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
    and writes the frames to one file (:meth:`~dvsstream.datasets.dataset.FramesInMemory.save_shared`),
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

    layout = _on_rank0(info, device, write)
    if layout is None:
        return None
    if "error" in layout:
        return FramesInMemory.load(dataset, budget, workers)
    held = FramesInMemory.open_shared(dataset, layout)
    dist.barrier()  # every rank has mapped the file
    if info.is_main:
        Path(layout["path"]).unlink(missing_ok=True)
    return held


class Trainer:
    """One training run of :func:`train`, in steps that each read on their own:

    * :meth:`prepare`: checks, fresh start or :meth:`resume`, data (optionally held in
      memory), optimiser and schedule, DDP, the log writers;
    * per epoch :meth:`train_epoch` (the steps), :meth:`evaluate` (the test set),
      :meth:`record` (history, best) and :meth:`checkpoint` (``last.pt``, ``best.pt``,
      ``log.csv``, TensorBoard);
    * :meth:`finish`: ``result.json`` and the :class:`TrainResult`.

    :meth:`run` does all of it. Only rank 0 logs and writes files.
    """

    def __init__(self, model: nn.Module, train_set: Dataset, test_set: Optional[Dataset], config: TrainConfig,
                 out_dir: Union[str, os.PathLike], device: Union[None, str, torch.device] = None,
                 log: Optional[Callable[[str], Any]] = print, classes: Optional[Sequence[str]] = None,
                 meta: Optional[dict[str, Any]] = None) -> None:
        self.info = dist_info()
        self.dev = _resolve_device(device, self.info.local_rank)
        self.say: Callable[[str], Any] = log if (log is not None and self.info.is_main) else (lambda s: None)
        self.model, self.config, self.meta = model, config, dict(meta or {})
        self.train_set, self.test_set = train_set, test_set
        self.out = Path(out_dir)
        self.last_path, self.best_path = self.out / "last.pt", self.out / "best.pt"
        self.num_classes = int(model.config.num_classes)
        self.classes = list(classes) if classes is not None else [str(i) for i in range(self.num_classes)]
        if len(self.classes) != self.num_classes:
            raise DvsstreamError(f"{len(self.classes)} class names for a model with {self.num_classes} classes")
        if len(train_set) == 0:  # type: ignore[arg-type]
            raise DvsstreamError("the training set is empty")
        self.amp = resolve_amp(config.amp, self.dev)
        self.net: nn.Module = model
        self.writer: Any = None
        self.history: list[dict[str, Any]] = []
        self.best_acc, self.best_epoch, self.start_epoch = -1.0, 0, 1
        self.gen = torch.Generator()
        self.aug_cfg = config.augment_config()
        self.keep_threads = _ThreadGuard()

    # ---------------------------------------------------------------- prepare
    def prepare(self) -> None:
        """Everything before the first epoch. Rank 0 checks the data and reads OUT (which
        need not be shared between machines) and hands the outcome to the other ranks."""
        def preflight() -> Optional[dict[str, Any]]:
            _check_frames(self.model, self.train_set)
            return _prepare_resume(self.model, self.config, self.last_path, self.classes)

        resume_state = _on_rank0(self.info, self.dev, preflight)
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        c = self.config
        self.train_set = hold_in_memory(self.train_set, c.cache_frames, c.memory_budget_mb, c.workers, "training",
                                        self.say, self.info, self.dev)
        if self.test_set is not None:  # the budget covers both sets
            left = max(0.0, c.memory_budget_mb - getattr(self.train_set, "nbytes", 0) / 2**20)
            self.test_set = hold_in_memory(self.test_set, c.cache_frames, left, c.workers, "test", self.say,
                                           self.info, self.dev)
        self._build_loaders()
        self.model.to(self.dev)
        keep_freed_memory(self.dev)  # on a CPU, each step's activations reuse the last step's pages
        if self.config.channels_last:
            self.model.to(memory_format=torch.channels_last)  # the conv weights
        from dvsstream.models.fusion import set_recompute

        set_recompute(self.model, self.config.recompute)
        self.optimizer = build_optimizer(self.model, self.config.lr, self.config.weight_decay)
        n = self.steps_per_epoch = len(self.train_loader)
        self.sched = WarmupCosine(self.optimizer, c.epochs * n, c.warmup_epochs * n, c.lr, c.warmup_lr, c.min_lr)
        fp16 = self.amp == torch.float16
        self.scaler = torch.amp.GradScaler("cuda" if self.dev.type == "cuda" else "cpu", enabled=fp16)
        if resume_state is not None:
            self.resume(resume_state)
        if self.info.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(self.model, device_ids=[self.dev.index] if self.dev.type == "cuda" else None)
        self._open_tensorboard()
        self._announce(resume_state is not None)

    def _build_loaders(self) -> None:
        """The training loader (a :class:`DistributedSampler`: shuffled, one shard per
        rank) and the test loader (every sample once over all ranks)."""
        c, info = self.config, self.info
        self.sampler = DistributedSampler(self.train_set, num_replicas=info.world, rank=info.rank, shuffle=True,
                                          seed=c.seed, drop_last=False)
        kw: dict[str, Any] = dict(num_workers=c.workers, pin_memory=self.dev.type == "cuda",
                                  collate_fn=collate_drop_skipped)
        if c.workers > 0:
            kw.update(persistent_workers=True, prefetch_factor=c.prefetch)
        self.train_loader = DataLoader(self.train_set, batch_size=c.batch_size, sampler=self.sampler, **kw)
        self.test_loader: Optional[DataLoader] = None
        if self.test_set is not None and len(self.test_set) > 0:  # type: ignore[arg-type]
            shard = _ShardSampler(len(self.test_set), info.rank, info.world)  # type: ignore[arg-type]
            self.test_loader = DataLoader(self.test_set, batch_size=c.eval_batch_size or c.batch_size,
                                          sampler=shard, **kw)

    def resume(self, state: dict[str, Any]) -> None:
        """Continue from a ``last.pt`` (see :func:`_prepare_resume`): weights, optimiser,
        schedule, scaler, RNG states, history and best accuracy."""
        ts = state["train_state"]
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(ts["optimizer"])
        self.sched.load_state_dict(ts["scheduler"])
        if ts.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ts["scaler"])
        rng = ts.get("rng", {})
        if rng.get("torch") is not None:
            torch.set_rng_state(rng["torch"])
        cuda = rng.get("cuda")
        if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        self.history = [dict(r) for r in ts["history"]]
        self.best_acc, self.best_epoch = float(ts["best_acc"]), int(ts["best_epoch"])
        self.start_epoch = int(ts["epoch"]) + 1
        if ts.get("world_size", 1) != self.info.world:
            self.say(f"note: resuming a run of {ts.get('world_size')} process(es) with {self.info.world}: "
                     f"the data order differs from an uninterrupted run")

    def _open_tensorboard(self) -> None:
        if self.info.is_main and self.config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(self.out / "tb"), purge_step=self.start_epoch)
            except Exception:  # tensorboard not installed: the CSV log is enough
                self.writer = None

    def _announce(self, resumed: bool) -> None:
        """The run's opening lines: model, data, schedule, precision, resume point."""
        c, cfg, say = self.config, self.model.config, self.say
        n_params = sum(p.numel() for p in self.model.parameters())
        extras = [f"{_AMP_NAMES[self.amp]} autocast"] if self.amp is not None else []
        extras += ["channels_last"] if c.channels_last else []
        extras += ["batch norm + LIF recomputed in the backward"] if c.recompute else []
        extras += [f"x{self.info.world} processes"] if self.info.distributed else []
        say(f"training {cfg.name or cfg.variant} ({n_params:,} parameters, {self.num_classes} classes, "
            f"T={cfg.T}, {cfg.img_size[0]}x{cfg.img_size[1]}) on {self.dev}"
            f"{' (' + ', '.join(extras) + ')' if extras else ''}")
        n_test = len(self.test_set) if self.test_set is not None else 0  # type: ignore[arg-type]
        say(f"  {len(self.train_set):,} training samples, {n_test:,} test samples; "  # type: ignore[arg-type]
            f"{self.steps_per_epoch} steps/epoch of {c.batch_size} per process; epochs {c.epochs}, "
            f"warm-up {c.warmup_epochs}, mixup until {c.mixup_until}, hflip {'on' if c.hflip else 'off'}")
        if c.warmup_epochs >= c.epochs:
            say(f"warning: warm-up ({c.warmup_epochs} epochs) spans the whole run ({c.epochs}): "
                f"the learning rate never reaches {c.lr:g}")
        if resumed:
            say(f"  resuming after epoch {self.start_epoch - 1} "
                f"(best {_fmt_acc(self.best_acc)} at epoch {self.best_epoch})")
            if self.start_epoch > c.epochs:
                say(f"  the run already finished its {c.epochs} epochs; pass a larger epoch count to go on")

    # ---------------------------------------------------------------- one epoch
    def _batches(self, epoch: int) -> tuple[Any, Any]:
        """The epoch's batches, wrapped in a progress bar on rank 0 when asked."""
        if not (self.config.progress and self.info.is_main):
            return self.train_loader, None
        from tqdm import tqdm

        bar = tqdm(self.train_loader, desc=f"epoch {epoch}/{self.config.epochs}", unit="batch", leave=False,
                   disable=None, file=sys.stderr, dynamic_ncols=True)
        return bar, bar

    def train_step(self, frames: Tensor, labels: Tensor, use_mixup: bool) -> tuple[Tensor, Tensor]:
        """One optimiser step on a batch (``frames [B, T, C, H, W]``, ``labels [B]`` long
        on the device): augmentation, soft targets, mixup, autocast, scaled backward,
        schedule; ``(loss, logits)``, detached."""
        c = self.config
        frames = frames.to(self.dev, non_blocking=True).float()
        if c.augment:
            frames = augment_batch(frames, self.aug_cfg, self.gen)
        targets = one_hot_smooth(labels, self.num_classes, c.label_smoothing)
        if use_mixup and float(torch.rand((), generator=self.gen)) < c.mixup_prob:
            frames, targets, _ = mixup(frames, targets, c.mixup_alpha, self.gen)
        loss, logits = forward_loss(self.net, frames, targets, self.amp, c.channels_last)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.sched.step()
        return loss.detach(), logits.detach()

    def _all_empty(self, labels: Tensor) -> bool:
        """The batch holds no readable sample (on any rank: every rank takes the same steps)."""
        empty = labels.numel() == 0
        if self.info.distributed:
            flag = torch.tensor([float(empty)], device=self.dev)
            empty = bool(_all_sum(flag, self.info).item() > 0)
        return empty

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """The training steps of ``epoch`` (counted from 1); returns ``train_loss``,
        ``train_acc`` (over all ranks), ``n`` samples, ``dropped`` unreadable ones and
        ``train_s`` seconds. Randomness: a function of ``(seed, epoch, rank)``."""
        c = self.config
        t0 = time.perf_counter()
        self.net.train()
        self.sampler.set_epoch(epoch)
        self.gen.manual_seed(_epoch_seed(c.seed, epoch, self.info.rank))
        use_mixup = c.mixup_alpha > 0 and c.mixup_prob > 0 and epoch <= c.mixup_until
        sums = torch.zeros(4, dtype=torch.float64, device=self.dev)  # loss * n, correct, n, dropped
        batches, bar = self._batches(epoch)
        for step, (frames, labels, dropped) in enumerate(batches):
            self.keep_threads()
            sums[3] += dropped
            if self._all_empty(labels):  # a batch of unreadable samples only: no step
                self.sched.step()
                continue
            labels = labels.to(self.dev, non_blocking=True).long()
            loss, logits = self.train_step(frames, labels, use_mixup)
            n = labels.numel()
            sums[0] += loss.double() * n
            sums[1] += (logits.argmax(1) == labels).sum()
            sums[2] += n
            if bar is not None and step % 10 == 0:
                bar.set_postfix(loss=f"{float(loss):.3f}", lr=f"{self.sched.get_last_lr():.2e}")
        if bar is not None:
            bar.close()
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)
        train_s = time.perf_counter() - t0
        sums = _all_sum(sums, self.info).cpu()
        n_seen, dropped = int(sums[2]), int(sums[3])
        if n_seen == 0:
            raise DvsstreamError(f"epoch {epoch}: no training sample could be read ({dropped} unreadable)")
        loss_mean = float(sums[0] / n_seen)
        if not math.isfinite(loss_mean) and not self.scaler.is_enabled():
            raise DvsstreamError(f"the training loss became {loss_mean} in epoch {epoch}; lower the learning rate (--lr)")
        return {"train_loss": loss_mean, "train_acc": float(sums[1] / n_seen), "n": n_seen, "dropped": dropped,
                "train_s": train_s}

    def evaluate(self) -> tuple[float, float, int]:
        """``(test loss, test accuracy, unreadable test samples)``: NaN without a test set.
        Under DDP the batch-norm statistics of rank 0 are broadcast first (one set of
        statistics for evaluation and checkpoints)."""
        if self.info.distributed:
            for b in self.model.buffers():
                dist.broadcast(b, 0)
        if self.test_loader is None:
            return float("nan"), float("nan"), 0
        loss, acc, _, dropped = evaluate_loader(self.model, self.test_loader, self.dev, self.amp, self.info)
        return loss, acc, dropped

    def record(self, epoch: int, lr: float, train: dict[str, Any], test: tuple[float, float, int],
               epoch_s: float) -> tuple[dict[str, Any], bool]:
        """Append the epoch's row to the history; ``(row, improved)`` (without a test set
        "best" is simply the latest epoch)."""
        test_loss, test_acc, test_dropped = test
        row = {"epoch": epoch, "lr": lr, "train_loss": train["train_loss"], "train_acc": train["train_acc"],
               "test_loss": test_loss, "test_acc": test_acc, "epoch_s": epoch_s,
               "samples_per_s": train["n"] / train["train_s"] if train["train_s"] > 0 else float("nan"),
               "train_skipped": train["dropped"], "test_skipped": test_dropped}
        self.history.append(row)
        improved = math.isnan(test_acc) or self.best_epoch == 0 or test_acc > self.best_acc
        if improved:
            self.best_acc, self.best_epoch = test_acc, epoch
        return row, improved

    # ---------------------------------------------------------------- files
    def checkpoint(self, epoch: int, row: dict[str, Any], improved: bool) -> None:
        """Rank 0: ``best.pt`` when ``improved``, ``last.pt`` (with the training state),
        ``log.csv`` and TensorBoard scalars; each file replaced atomically."""
        if not self.info.is_main:
            return
        common = {"classes": self.classes, **self.meta, "train_config": dataclasses.asdict(self.config)}
        if improved:
            from dvsstream.models.checkpoints import save_checkpoint

            replace_atomically(self.best_path, lambda tmp: save_checkpoint(
                self.model, tmp, kind="best", epoch=epoch, test_acc=row["test_acc"], **common))
        state = {
            **_model_header(self.model),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "meta": {"kind": "last", "epoch": epoch, "test_acc": row["test_acc"], **common},
            "train_state": self._train_state(epoch),
        }
        replace_atomically(self.last_path, lambda tmp: torch.save(state, tmp))
        _write_log_csv(self.out / "log.csv", self.history)
        if self.writer is not None:
            for k in ("lr", "train_loss", "train_acc", "test_loss", "test_acc", "samples_per_s"):
                self.writer.add_scalar(k, row[k], epoch)
            self.writer.flush()

    def _train_state(self, epoch: int) -> dict[str, Any]:
        """What :meth:`resume` needs to continue after ``epoch`` exactly."""
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return {
            "format": TRAIN_STATE_FORMAT, "epoch": epoch,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": {"torch": torch.get_rng_state(), "cuda": cuda_rng},
            "best_acc": self.best_acc, "best_epoch": self.best_epoch, "history": self.history,
            "world_size": self.info.world,
        }

    # ---------------------------------------------------------------- the run
    def run_epoch(self, epoch: int) -> None:
        """Train, evaluate, record, checkpoint and log one epoch."""
        t0 = time.perf_counter()
        lr = self.sched.get_last_lr()
        train = self.train_epoch(epoch)
        test = self.evaluate()
        row, improved = self.record(epoch, lr, train, test, time.perf_counter() - t0)
        self.checkpoint(epoch, row, improved)
        if train["dropped"] or test[2]:
            self.say(f"warning: epoch {epoch}: {train['dropped']} training and {test[2]} test sample(s) "
                     f"could not be read and were left out (the accuracy is over the rest)")
        self.say(f"epoch {epoch:>3}/{self.config.epochs}  lr {lr:.2e}  train loss {row['train_loss']:.4f} "
                 f"acc {_fmt_acc(row['train_acc'])}  |  test loss {row['test_loss']:.4f} acc {_fmt_acc(row['test_acc'])}  "
                 f"(best {_fmt_acc(self.best_acc)} @ {self.best_epoch})  {row['epoch_s']:.1f} s, "
                 f"{row['samples_per_s']:.1f} samples/s")

    def run(self) -> TrainResult:
        """:meth:`prepare`, the epochs from the start (or resume) point to ``epochs`` (or
        ``stop_after``), :meth:`finish`."""
        self.prepare()
        c = self.config
        stop = c.epochs if c.stop_after is None else min(c.epochs, c.stop_after)
        run_start = time.perf_counter()
        epoch = self.start_epoch - 1
        try:
            for epoch in range(self.start_epoch, stop + 1):
                self.run_epoch(epoch)
        except KeyboardInterrupt:
            if epoch >= self.start_epoch or self.history:
                self.say(f"interrupted; {self.last_path} holds the state after the last finished epoch: "
                         f"continue with --resume")
            raise
        finally:
            if self.writer is not None:
                self.writer.close()
        return self.finish(time.perf_counter() - run_start)

    def finish(self, wall: float) -> TrainResult:
        """The :class:`TrainResult`; rank 0 writes ``result.json`` and the closing line."""
        history, c = self.history, self.config
        final = history[-1] if history else {"epoch": 0, "test_acc": float("nan")}
        rates = [r["samples_per_s"] for r in history[self.start_epoch - 1:] if math.isfinite(r["samples_per_s"])]
        result = TrainResult(
            best_acc=self.best_acc, best_epoch=self.best_epoch, final_acc=float(final["test_acc"]),
            final_epoch=int(final["epoch"]), epochs=c.epochs, complete=int(final["epoch"]) >= c.epochs,
            history=history, samples_per_s=sum(rates) / len(rates) if rates else float("nan"),
            wall_s=wall, out_dir=str(self.out),
        )
        if self.info.is_main:
            summary = self._summary(result, final, wall)
            text = json.dumps(_json_safe(summary), indent=2, default=str, allow_nan=False) + "\n"
            replace_atomically(self.out / "result.json", lambda tmp: tmp.write_text(text))
            state = "finished" if result.complete else f"stopped after epoch {result.final_epoch} of {c.epochs}"
            self.say(f"{state}: final-epoch test accuracy {_fmt_acc(result.final_acc)} (epoch {result.final_epoch}), "
                     f"best {_fmt_acc(result.best_acc)} (epoch {result.best_epoch}); "
                     f"{result.samples_per_s:.1f} samples/s; {self.best_path}, {self.last_path}, "
                     f"{self.out / 'log.csv'}, {self.out / 'result.json'}")
        return result

    def _summary(self, result: TrainResult, final: dict[str, Any], wall: float) -> dict[str, Any]:
        """The content of ``result.json``."""
        cfg = self.model.config
        return {
            "best_test_acc": result.best_acc, "best_epoch": result.best_epoch,
            "final_test_acc": result.final_acc, "final_epoch": result.final_epoch,
            "epochs": self.config.epochs, "complete": result.complete,
            "model": cfg.name or cfg.variant, "model_config": cfg.to_dict(),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "classes": self.classes, **self.meta,
            "train_samples": len(self.train_set),  # type: ignore[arg-type]
            "test_samples": len(self.test_set) if self.test_set is not None else 0,  # type: ignore[arg-type]
            "skipped": {"train": int(final.get("train_skipped", 0)), "test": int(final.get("test_skipped", 0))},
            "device": str(self.dev), "amp": _AMP_NAMES[self.amp], "channels_last": self.config.channels_last,
            "world_size": self.info.world,
            "mean_samples_per_s": result.samples_per_s, "wall_s_this_run": wall,
            "checkpoints": {"best": str(self.best_path), "last": str(self.last_path)},
            "train_config": dataclasses.asdict(self.config), "history": result.history,
        }


def train(
    model: nn.Module,
    train_set: Dataset,
    test_set: Optional[Dataset],
    config: TrainConfig,
    out_dir: Union[str, os.PathLike],
    device: Union[None, str, torch.device] = None,
    log: Optional[Callable[[str], Any]] = print,
    classes: Optional[Sequence[str]] = None,
    meta: Optional[dict[str, Any]] = None,
) -> TrainResult:
    """Train ``model`` (a :class:`~dvsstream.models.Spikformer`) on ``train_set`` and test
    it on ``test_set`` after every epoch; checkpoints and logs go to ``out_dir``.

    Datasets yield ``(frames [T, C, H, W] float, int label)``. ``classes`` (names) and
    ``meta`` (e.g. ``frame_spec``, ``dataset``) are stored in the checkpoints' meta.
    Under an initialised process group (see :func:`init_distributed`) this is DDP; only
    rank 0 logs and writes files. ``log``: a function taking one line (None: silent).
    See :class:`Trainer` for the steps.
    """
    return Trainer(model, train_set, test_set, config, out_dir, device, log, classes, meta).run()


# ====================================================================== command line
def frame_spec_for(config: Any, mode: str = "count", convention: str = "spikingjelly",
                   roi: Optional[Sequence[int]] = None, resize: Optional[Sequence[int]] = None):
    """The :class:`dvsstream.datasets.dataset.FrameSpec` a model config needs: ``n_bins = T``, the
    128x128 sensors brought to the model's input size by
    :meth:`~dvsstream.datasets.dataset.FrameSpec.for_model` (pooled by a whole factor, else the
    nearest-bin resize of the largest centred region of the input's shape; ``roi`` /
    ``resize``: ``--roi`` / ``--resize``); ``mode`` ``"count"`` (the papers' equal-count
    split) or ``"time"`` (equal time bins, what a live sliding window gives);
    ``convention``: the frames' orientation and polarity (see :mod:`dvsstream.datasets.release`)."""
    from dvsstream.datasets.spec import FrameSpec

    return FrameSpec.for_model(config, (128, 128), mode, convention, roi, resize)


def _init_label_order(model, report, args: Any, init: str) -> Optional[dict]:
    """An ``--init`` release checkpoint whose outputs follow spikingjelly's order: permute
    its head to the dataset's class order (what the saved checkpoint's class names say).
    Returns what was done, or None when nothing needed mapping."""
    from dvsstream.models.checkpoints import reorder_outputs
    from dvsstream.datasets.release import label_order_for, output_classes_for

    kind = ("dvsstream" if report.format == "dvsstream" else
            "release-trained" if report.release_trained else "state-dict")
    order, why, warning = label_order_for(args.dataset, getattr(args, "label_order", None), kind, init)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    outputs = output_classes_for(args.dataset, order, model.num_classes)
    if outputs is None:
        return None
    reorder_outputs(model, outputs)
    return {"order": order, "why": why, "checkpoint_outputs": outputs}


def run_train(args: Any) -> int:
    """``dvsstream train``: datasets from ``args.root``, the model ``args.model``, the
    recipe with the command line's overrides; returns 0."""
    try:
        from dvsstream.datasets.load import load_dataset
    except ImportError as exc:
        raise DvsstreamError(f"dataset support is unavailable: {exc}") from None
    from dvsstream.models import create_model, get_config

    if getattr(args, "label_order", None) and not getattr(args, "init", None):
        raise DvsstreamError("--label-order says how an --init checkpoint's outputs are ordered; "
                             "it needs --init CKPT (a new model is trained in the dataset's class order)")
    mcfg = get_config(args.model)
    spec = frame_spec_for(mcfg, getattr(args, "frames", "count"), getattr(args, "convention", None) or "spikingjelly",
                          getattr(args, "roi", None), getattr(args, "resize", None))
    epochs = args.epochs if args.epochs is not None else RECIPE_EPOCHS.get(args.dataset, 100)
    config = TrainConfig(
        epochs=epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs, mixup_until=args.mixup_until, hflip=not args.no_hflip,
        workers=args.workers, seed=args.seed, resume=args.resume, progress=True,
        amp=getattr(args, "amp", "auto"), channels_last=getattr(args, "channels_last", False),
        recompute=getattr(args, "recompute", False),
        prefetch=getattr(args, "prefetch", 2), cache_frames=getattr(args, "cache_frames", "auto"),
        memory_budget_mb=getattr(args, "memory_budget_mb", 2048.0),
    )
    resolve_amp(config.amp, _resolve_device(args.device))  # --amp fp16 on a CPU: one line before any work
    info, dev, initialised = init_distributed(args.device)
    say = print if info.is_main else (lambda s: None)
    try:
        if args.dataset == "dvsgesture" and config.hflip:
            say("warning: random horizontal flips mirror DVS128 Gesture's left-arm / right-arm classes "
                "without relabelling them (the papers' recipe does this); pass --no-hflip to avoid it")

        def load(split: str, limit: Optional[int]):
            return load_dataset(args.dataset, args.root, split=split, spec=spec, cache_dir=args.cache_dir, limit=limit)

        # rank 0 builds the frame cache first; the others then read it
        if info.distributed and not info.is_main:
            dist.barrier()
        train_set = load("train", args.limit)
        test_set = load("test", None)
        if info.distributed and info.is_main:
            dist.barrier()
        classes = list(train_set.classes)
        if list(test_set.classes) != classes:
            raise DvsstreamError(f"train and test splits disagree on the classes: {classes} vs {list(test_set.classes)}")
        for name, ds in (("train", train_set), ("test", test_set)):
            skipped = list(getattr(ds, "skipped", []) or [])
            if skipped:
                first = ", ".join(f"{p} ({why})" for p, why in skipped[:3])
                say(f"warning: skipped {len(skipped)} unreadable {name} sample(s): {first}{', ...' if len(skipped) > 3 else ''}")
        torch.manual_seed(args.seed)
        model = create_model(args.model, num_classes=len(classes))
        init = getattr(args, "init", None)
        if init:  # fine-tune: start from these weights (same architecture and classes)
            from dvsstream.models import load_checkpoint

            report = load_checkpoint(model, init)
            say(f"initialised from {init} ({report})")
            order = _init_label_order(model, report, args, init)
            if order is not None:
                say(f"  its outputs were in {order['why']}; head permuted to the dataset's class order")
        meta = {"dataset": args.dataset, "frame_spec": dataclasses.asdict(spec), "root": str(args.root)}
        meta["frame_spec"]["sensor_size"] = list(spec.sensor_size)
        train(model, train_set, test_set, config, args.out, device=dev, log=print, classes=classes, meta=meta)
    finally:
        if initialised and dist.is_initialized():
            try:
                dist.barrier()  # no rank tears gloo down while another is still in a collective
            finally:
                dist.destroy_process_group()
    return 0
