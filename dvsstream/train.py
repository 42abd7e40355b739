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
* Augmentation (:mod:`dvsstream.augment`): random horizontal flip (``hflip=False`` /
  ``--no-hflip`` turns it off: DVS128 Gesture has left/right classes) and one random op
  per sample; mixup (Beta(0.5, 0.5), on half of the batches) up to and including epoch
  ``mixup_until`` (75, epochs count from 1); label smoothing 0.1 (soft targets).
* Mixed precision (``torch.autocast`` float16 + ``GradScaler``) on CUDA, float32 on CPU.
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

The core, :func:`train`, takes a model and two torch datasets yielding
``(frames [T, 2, H, W], label)``; :func:`run_train` is the command line on top of it
(datasets from a folder via :mod:`dvsstream.datasets`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from dvsstream.augment import AugmentConfig, augment_batch, mixup, one_hot_smooth
from dvsstream.errors import DvsstreamError

__all__ = [
    "RECIPE_EPOCHS",
    "LOG_FIELDS",
    "TrainConfig",
    "TrainResult",
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
TRAIN_STATE_FORMAT = "dvsstream.train/1"


# ====================================================================== configuration
@dataclass
class TrainConfig:
    """Hyper-parameters and switches of :func:`train` (defaults: the papers' recipe).

    ``batch_size`` is per process. ``stop_after``: end this run after that epoch while
    the schedule still spans ``epochs`` (an interrupted run; continue with ``resume``).
    ``amp`` applies on CUDA only.
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
    amp: bool = True
    workers: int = 0
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

    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(hflip=self.hflip)


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


def build_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on weights (``ndim >= 2``) and none on biases / norms."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.999), eps=1e-8)


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
    """``(frames [B, T, C, H, W], labels [B], dropped)``: :func:`dvsstream.datasets.collate_frames`
    (samples a dataset could not read, label ``-1``, are left out) plus their count."""
    from dvsstream.datasets import collate_frames

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
    digest = hashlib.sha256(f"dvsstream.train/{seed}/{epoch}/{rank}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


# ====================================================================== loops
def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


@torch.no_grad()
def evaluate_loader(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False,
             info: Optional[DistInfo] = None) -> tuple[float, float, int, int]:
    """``(mean cross-entropy, accuracy, samples, dropped)`` over ``loader`` (summed over
    ranks); ``dropped``: unreadable samples left out (the loader must use
    :func:`collate_drop_skipped`, or yield ``(frames, labels)`` only)."""
    info = info or dist_info()
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
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
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


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_log_csv(path: Path, history: Sequence[dict[str, float]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in LOG_FIELDS})
    os.replace(tmp, path)


def _model_header(model: nn.Module) -> dict[str, Any]:
    from dvsstream.models.checkpoints import FORMAT

    cfg = model.config
    return {"format": FORMAT, "model_name": cfg.name or cfg.variant, "config": cfg.to_dict(),
            "num_classes": cfg.num_classes}


def _fmt_acc(a: float) -> str:
    return "  n/a " if math.isnan(a) else f"{100 * a:6.2f} %"


def _check_frames(model: nn.Module, dataset: Dataset) -> None:
    """The first readable sample's ``[T, C, H, W]`` must fit the model's C, H, W."""
    x0 = None
    for i in range(min(len(dataset), 16)):  # type: ignore[arg-type]
        x, y = dataset[i]
        if int(y) >= 0:
            x0 = x
            break
    want = (model.config.in_channels, *model.config.img_size)
    if x0 is not None and tuple(torch.as_tensor(x0).shape[-3:]) != want:
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
    resume_state: Optional[dict[str, Any]] = None
    if config.resume:
        if not last_path.is_file():
            raise DvsstreamError(f"--resume: {last_path} does not exist (nothing to continue)")
        try:
            resume_state = torch.load(last_path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DvsstreamError(f"--resume: cannot read {last_path}: {type(exc).__name__}: {exc}") from None
        ts = resume_state.get("train_state") if isinstance(resume_state, dict) else None
        if not ts or ts.get("format") != TRAIN_STATE_FORMAT:
            raise DvsstreamError(f"--resume: {last_path} is not a dvsstream training checkpoint")
        theirs, ours = dict(resume_state["config"]), model.config.to_dict()
        diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        if diff:
            k = diff[0]
            raise DvsstreamError(
                f"--resume: {last_path} holds a {resume_state.get('model_name')} with {k}={theirs.get(k)!r} "
                f"but the model to train has {k}={ours.get(k)!r} (also differing: {diff[1:] or 'nothing else'})"
            )
        saved_classes = resume_state.get("meta", {}).get("classes")
        if saved_classes is not None and list(saved_classes) != classes:
            raise DvsstreamError(f"--resume: {last_path} was trained on classes {saved_classes}, the data has {classes}")
    elif last_path.exists():
        raise DvsstreamError(
            f"{last_path.parent} already holds a training run ({last_path.name}); pass --resume to continue it "
            f"or choose another output folder"
        )
    return resume_state


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
    """
    info = dist_info()
    dev = _resolve_device(device, info.local_rank)
    main = info.is_main
    say = (log if (log is not None and main) else (lambda s: None))
    out = Path(out_dir)
    last_path, best_path = out / "last.pt", out / "best.pt"
    num_classes = int(model.config.num_classes)
    classes = list(classes) if classes is not None else [str(i) for i in range(num_classes)]
    if len(classes) != num_classes:
        raise DvsstreamError(f"{len(classes)} class names for a model with {num_classes} classes")
    if len(train_set) == 0:  # type: ignore[arg-type]
        raise DvsstreamError("the training set is empty")
    amp = bool(config.amp and dev.type == "cuda")
    meta = dict(meta or {})

    # ---------------------------------------------------------------- checks, resume / fresh
    # rank 0 checks the data and reads OUT (which need not be shared between machines),
    # then hands the outcome on: every rank raises the same error or gets the same state
    def preflight() -> Optional[dict[str, Any]]:
        _check_frames(model, train_set)
        return _prepare_resume(model, config, last_path, classes)

    if info.distributed:
        payload: list[Any] = [None]
        if main:
            try:
                payload = [("ok", preflight())]
            except DvsstreamError as exc:
                payload = [("error", str(exc))]
        dist.broadcast_object_list(payload, src=0, device=dev if dev.type == "cuda" else None)
        status, value = payload[0]
        if status == "error":
            raise DvsstreamError(value)
        resume_state = value
    else:
        resume_state = preflight()
    if main:
        out.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- data
    sampler = DistributedSampler(train_set, num_replicas=info.world, rank=info.rank, shuffle=True,
                                 seed=config.seed, drop_last=False)
    pin = dev.type == "cuda"
    loader_kw = dict(num_workers=config.workers, pin_memory=pin, persistent_workers=config.workers > 0,
                     collate_fn=collate_drop_skipped)
    train_loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, **loader_kw)
    test_loader = None
    if test_set is not None and len(test_set) > 0:  # type: ignore[arg-type]
        test_loader = DataLoader(test_set, batch_size=config.eval_batch_size or config.batch_size,
                                 sampler=_ShardSampler(len(test_set), info.rank, info.world), **loader_kw)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- model, optimiser
    model.to(dev)
    optimizer = build_optimizer(model, config.lr, config.weight_decay)
    steps_per_epoch = len(train_loader)
    sched = WarmupCosine(optimizer, config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch,
                         config.lr, config.warmup_lr, config.min_lr)
    scaler = torch.amp.GradScaler("cuda" if dev.type == "cuda" else "cpu", enabled=amp)
    history: list[dict[str, float]] = []
    best_acc, best_epoch, start_epoch = -1.0, 0, 1
    if resume_state is not None:
        ts = resume_state["train_state"]
        model.load_state_dict(resume_state["state_dict"])
        optimizer.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["scheduler"])
        if ts.get("scaler") and amp:
            scaler.load_state_dict(ts["scaler"])
        rng = ts.get("rng", {})
        if rng.get("torch") is not None:
            torch.set_rng_state(rng["torch"])
        if rng.get("cuda") is not None and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])
        history = [dict(r) for r in ts["history"]]
        best_acc, best_epoch = float(ts["best_acc"]), int(ts["best_epoch"])
        start_epoch = int(ts["epoch"]) + 1
        if ts.get("world_size", 1) != info.world:
            say(f"note: resuming a run of {ts.get('world_size')} process(es) with {info.world}: "
                f"the data order differs from an uninterrupted run")
    net: nn.Module = model
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    writer = None
    if main and config.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(out / "tb"), purge_step=start_epoch)
        except Exception:  # tensorboard not installed: the CSV log is enough
            writer = None

    n_params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    say(f"training {cfg.name or cfg.variant} ({n_params:,} parameters, {num_classes} classes, "
        f"T={cfg.T}, {cfg.img_size[0]}x{cfg.img_size[1]}) on {dev}"
        f"{' with mixed precision' if amp else ''}{f' x{info.world} processes' if info.distributed else ''}")
    say(f"  {len(train_set):,} training samples, "  # type: ignore[arg-type]
        f"{len(test_set) if test_set is not None else 0:,} test samples; "  # type: ignore[arg-type]
        f"{steps_per_epoch} steps/epoch of {config.batch_size} per process; epochs {config.epochs}, "
        f"warm-up {config.warmup_epochs}, mixup until {config.mixup_until}, hflip {'on' if config.hflip else 'off'}")
    if config.warmup_epochs >= config.epochs:
        say(f"warning: warm-up ({config.warmup_epochs} epochs) spans the whole run ({config.epochs}): "
            f"the learning rate never reaches {config.lr:g}")
    if resume_state is not None:
        say(f"  resuming after epoch {start_epoch - 1} (best {_fmt_acc(best_acc)} at epoch {best_epoch})")
        if start_epoch > config.epochs:
            say(f"  the run already finished its {config.epochs} epochs; pass a larger epoch count to go on")

    aug_cfg = config.augment_config()
    keep_threads = _ThreadGuard()
    gen = torch.Generator()
    stop = config.epochs if config.stop_after is None else min(config.epochs, config.stop_after)
    run_start = time.perf_counter()
    epoch = start_epoch - 1
    try:
        for epoch in range(start_epoch, stop + 1):
            t0 = time.perf_counter()
            net.train()
            sampler.set_epoch(epoch)
            gen.manual_seed(_epoch_seed(config.seed, epoch, info.rank))
            use_mixup = config.mixup_alpha > 0 and config.mixup_prob > 0 and epoch <= config.mixup_until
            lr_start = sched.get_last_lr()
            sums = torch.zeros(4, dtype=torch.float64, device=dev)  # loss * n, correct, n, dropped
            batches: Any = train_loader
            bar = None
            if config.progress and main:
                from tqdm import tqdm

                bar = tqdm(train_loader, desc=f"epoch {epoch}/{config.epochs}", unit="batch", leave=False,
                           disable=None, file=sys.stderr, dynamic_ncols=True)
                batches = bar
            for step, (frames, labels, dropped) in enumerate(batches):
                keep_threads()
                sums[3] += dropped
                empty = labels.numel() == 0
                if info.distributed:  # every rank must take the same steps
                    flag = torch.tensor([float(empty)], device=dev)
                    empty = bool(_all_sum(flag, info).item() > 0)
                if empty:  # a batch of unreadable samples only: no step
                    sched.step()
                    continue
                frames = frames.to(dev, non_blocking=True).float()
                labels = torch.as_tensor(labels).to(dev, non_blocking=True).long()
                if config.augment:
                    frames = augment_batch(frames, aug_cfg, gen)
                targets = one_hot_smooth(labels, num_classes, config.label_smoothing)
                if use_mixup and float(torch.rand((), generator=gen)) < config.mixup_prob:
                    frames, targets, _ = mixup(frames, targets, config.mixup_alpha, gen)
                with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                    logits = net(frames)
                loss = soft_cross_entropy(logits, targets)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                sched.step()
                n = labels.numel()
                sums[0] += loss.detach().double() * n
                sums[1] += (logits.detach().argmax(1) == labels).sum()
                sums[2] += n
                if bar is not None and step % 10 == 0:
                    bar.set_postfix(loss=f"{float(loss.detach()):.3f}", lr=f"{sched.get_last_lr():.2e}")
            if bar is not None:
                bar.close()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            train_s = time.perf_counter() - t0
            sums = _all_sum(sums, info).cpu()
            n_seen, train_dropped = int(sums[2]), int(sums[3])
            if n_seen == 0:
                raise DvsstreamError(f"epoch {epoch}: no training sample could be read ({train_dropped} unreadable)")
            train_loss, train_acc = float(sums[0] / n_seen), float(sums[1] / n_seen)
            if not math.isfinite(train_loss) and not amp:
                raise DvsstreamError(
                    f"the training loss became {train_loss} in epoch {epoch}; lower the learning rate (--lr)"
                )
            if info.distributed:  # one set of batch-norm statistics for evaluation and checkpoints
                for b in model.buffers():
                    dist.broadcast(b, 0)
            if test_loader is not None:
                test_loss, test_acc, _, test_dropped = evaluate_loader(model, test_loader, dev, amp, info)
            else:
                test_loss = test_acc = float("nan")
                test_dropped = 0
            epoch_s = time.perf_counter() - t0
            row = {"epoch": epoch, "lr": lr_start, "train_loss": train_loss, "train_acc": train_acc,
                   "test_loss": test_loss, "test_acc": test_acc, "epoch_s": epoch_s,
                   "samples_per_s": n_seen / train_s if train_s > 0 else float("nan"),
                   "train_skipped": train_dropped, "test_skipped": test_dropped}
            history.append(row)
            # without a test set "best" is simply the latest epoch
            improved = math.isnan(test_acc) or best_epoch == 0 or test_acc > best_acc
            if improved:
                best_acc, best_epoch = test_acc, epoch
            if main:
                common = {"classes": classes, **meta, "train_config": dataclasses.asdict(config)}
                if improved:
                    from dvsstream.models.checkpoints import save_checkpoint

                    tmp = best_path.with_name(best_path.name + ".tmp")
                    save_checkpoint(model, tmp, kind="best", epoch=epoch, test_acc=test_acc, **common)
                    os.replace(tmp, best_path)
                state = {
                    **_model_header(model),
                    "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "meta": {"kind": "last", "epoch": epoch, "test_acc": test_acc, **common},
                    "train_state": {
                        "format": TRAIN_STATE_FORMAT,
                        "epoch": epoch,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": sched.state_dict(),
                        "scaler": scaler.state_dict(),
                        "rng": {"torch": torch.get_rng_state(),
                                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
                        "best_acc": best_acc,
                        "best_epoch": best_epoch,
                        "history": history,
                        "world_size": info.world,
                    },
                }
                _atomic_save(state, last_path)
                _write_log_csv(out / "log.csv", history)
                if writer is not None:
                    for k in ("lr", "train_loss", "train_acc", "test_loss", "test_acc", "samples_per_s"):
                        writer.add_scalar(k, row[k], epoch)
                    writer.flush()
            if train_dropped or test_dropped:
                say(f"warning: epoch {epoch}: {train_dropped} training and {test_dropped} test sample(s) "
                    f"could not be read and were left out (the accuracy is over the rest)")
            say(f"epoch {epoch:>3}/{config.epochs}  lr {lr_start:.2e}  train loss {train_loss:.4f} "
                f"acc {_fmt_acc(train_acc)}  |  test loss {test_loss:.4f} acc {_fmt_acc(test_acc)}  "
                f"(best {_fmt_acc(best_acc)} @ {best_epoch})  {epoch_s:.1f} s, {row['samples_per_s']:.1f} samples/s")
    except KeyboardInterrupt:
        if epoch >= start_epoch or history:
            say(f"interrupted; {last_path} holds the state after the last finished epoch: continue with --resume")
        raise
    finally:
        if writer is not None:
            writer.close()

    wall = time.perf_counter() - run_start
    final = history[-1] if history else {"epoch": 0, "test_acc": float("nan")}
    rates = [r["samples_per_s"] for r in history[start_epoch - 1:] if math.isfinite(r["samples_per_s"])]
    result = TrainResult(
        best_acc=best_acc, best_epoch=best_epoch, final_acc=float(final["test_acc"]),
        final_epoch=int(final["epoch"]), epochs=config.epochs, complete=int(final["epoch"]) >= config.epochs,
        history=history, samples_per_s=sum(rates) / len(rates) if rates else float("nan"),
        wall_s=wall, out_dir=str(out),
    )
    if main:
        summary = {
            "best_test_acc": result.best_acc, "best_epoch": result.best_epoch,
            "final_test_acc": result.final_acc, "final_epoch": result.final_epoch,
            "epochs": config.epochs, "complete": result.complete,
            "model": cfg.name or cfg.variant, "model_config": cfg.to_dict(), "parameters": n_params,
            "classes": classes, **meta,
            "train_samples": len(train_set),  # type: ignore[arg-type]
            "test_samples": len(test_set) if test_set is not None else 0,  # type: ignore[arg-type]
            "skipped": {"train": int(final.get("train_skipped", 0)), "test": int(final.get("test_skipped", 0))},
            "device": str(dev), "amp": amp, "world_size": info.world,
            "mean_samples_per_s": result.samples_per_s, "wall_s_this_run": wall,
            "checkpoints": {"best": str(best_path), "last": str(last_path)},
            "train_config": dataclasses.asdict(config), "history": history,
        }
        tmp = out / "result.json.tmp"
        tmp.write_text(json.dumps(_json_safe(summary), indent=2, default=str, allow_nan=False) + "\n")
        os.replace(tmp, out / "result.json")
        state = "finished" if result.complete else f"stopped after epoch {result.final_epoch} of {config.epochs}"
        say(f"{state}: final-epoch test accuracy {_fmt_acc(result.final_acc)} (epoch {result.final_epoch}), "
            f"best {_fmt_acc(result.best_acc)} (epoch {result.best_epoch}); {result.samples_per_s:.1f} samples/s; "
            f"{out / 'best.pt'}, {out / 'last.pt'}, {out / 'log.csv'}, {out / 'result.json'}")
    return result


# ====================================================================== command line
def frame_spec_for(config: Any, mode: str = "count", convention: str = "spikingjelly",
                   roi: Optional[Sequence[int]] = None, resize: Optional[Sequence[int]] = None):
    """The :class:`dvsstream.datasets.FrameSpec` a model config needs: ``n_bins = T``, the
    128x128 sensors brought to the model's input size by
    :meth:`~dvsstream.datasets.FrameSpec.for_model` (pooled by a whole factor, else the
    nearest-bin resize of the largest centred region of the input's shape; ``roi`` /
    ``resize``: ``--roi`` / ``--resize``); ``mode`` ``"count"`` (the papers' equal-count
    split) or ``"time"`` (equal time bins, what a live sliding window gives);
    ``convention``: the frames' orientation and polarity (see :mod:`dvsstream.release_data`)."""
    from dvsstream.datasets import FrameSpec

    return FrameSpec.for_model(config, (128, 128), mode, convention, roi, resize)


def _init_label_order(model, report, args: Any, init: str) -> Optional[dict]:
    """An ``--init`` release checkpoint whose outputs follow spikingjelly's order: permute
    its head to the dataset's class order (what the saved checkpoint's class names say).
    Returns what was done, or None when nothing needed mapping."""
    from dvsstream.models.checkpoints import reorder_outputs
    from dvsstream.release_data import label_order_for, output_classes_for

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
        from dvsstream.datasets import load_dataset
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
    )
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
