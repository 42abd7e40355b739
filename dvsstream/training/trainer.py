"""Training with the Spikformer DVS recipe: :func:`train` and the :class:`Trainer` it runs.

The recipe (see ``shared/docs/spikformer-family.md``), all of it configurable through
:class:`~dvsstream.training.config.TrainConfig`:

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
  (:class:`dvsstream.datasets.in_memory.FramesInMemory`: no file I/O after the first read), ``"auto"``
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

:func:`train` (a :class:`Trainer`: prepare, epochs, evaluate, checkpoint, resume) takes a
model and two torch datasets yielding ``(frames [T, 2, H, W], label)``. Around it:
:mod:`~dvsstream.training.config` (the configuration and the result),
:mod:`~dvsstream.training.schedule` (optimiser, learning rate),
:mod:`~dvsstream.training.steps` (one forward, a test pass),
:mod:`~dvsstream.training.distributed` (the processes), :mod:`~dvsstream.training.memory`
(the memory of one step) and :mod:`~dvsstream.training.train` (a dataset folder, what
``dvsstream train`` runs).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dvsstream.datasets.augment import augment_batch, mixup, one_hot_smooth
from dvsstream.training.held_frames import hold_in_memory
from dvsstream.errors import DvsstreamError
from dvsstream.fileio import json_safe, replace_atomically
from dvsstream.heap import keep_freed_memory
from dvsstream.training.config import AMP_NAMES, TrainConfig, TrainResult, resolve_amp
from dvsstream.training.distributed import all_sum, dist_info, on_rank0, resolve_device
from dvsstream.training.schedule import WarmupCosine, build_optimizer
from dvsstream.training.steps import (
    ShardSampler,
    ThreadGuard,
    collate_drop_skipped,
    epoch_seed,
    evaluate_loader,
    forward_loss,
)

__all__ = ["LOG_FIELDS", "TRAIN_STATE_FORMAT", "Trainer", "train"]

#: columns of OUT/log.csv
LOG_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_s", "samples_per_s")
#: the ``train_state`` of ``last.pt`` (the name from before the split: files keep it)
TRAIN_STATE_FORMAT = "dvsstream.training.train/1"


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


def _prepare_resume(model: nn.Module, config: TrainConfig, last_path: Path,
                    classes: list[str], task: str = "classify") -> Optional[dict[str, Any]]:
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
    if ts.get("task", "classify") != task:
        raise DvsstreamError(f"--resume: {last_path} is a {ts.get('task', 'classify')} run, not a {task} run; "
                             f"choose another output folder")
    theirs, ours = dict(state["config"]), model.config.to_dict()
    diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    if diff:
        words = [{"img_size": "input size", "num_classes": "classes", "T": "T"}.get(k, k.replace("_", " "))
                 for k in diff]
        raise DvsstreamError(
            f"--resume: {last_path} holds a {state.get('model_name')} with {words[0]} {theirs.get(diff[0])!r} "
            f"but the model to train has {words[0]} {ours.get(diff[0])!r} "
            f"(also differing: {', '.join(words[1:]) or 'nothing else'})"
        )
    saved_classes = state.get("meta", {}).get("classes")
    if saved_classes is not None and list(saved_classes) != classes:
        raise DvsstreamError(f"--resume: {last_path} was trained on classes {saved_classes}, the data has {classes}")
    return state


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

    #: what the run learns (kept in ``last.pt``: ``--resume`` continues only the same task)
    task = "classify"

    def __init__(self, model: nn.Module, train_set: Dataset, test_set: Optional[Dataset], config: TrainConfig,
                 out_dir: Union[str, os.PathLike], device: Union[None, str, torch.device] = None,
                 log: Optional[Callable[[str], Any]] = print, classes: Optional[Sequence[str]] = None,
                 meta: Optional[dict[str, Any]] = None) -> None:
        self.info = dist_info()
        self.dev = resolve_device(device, self.info.local_rank)
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
        self.keep_threads = ThreadGuard()

    # ---------------------------------------------------------------- prepare
    def prepare(self) -> None:
        """Everything before the first epoch. Rank 0 checks the data and reads OUT (which
        need not be shared between machines) and hands the outcome to the other ranks."""
        def preflight() -> Optional[dict[str, Any]]:
            _check_frames(self.model, self.train_set)
            return _prepare_resume(self.model, self.config, self.last_path, self.classes, self.task)

        resume_state = on_rank0(self.info, self.dev, preflight)
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        c = self.config
        augmented = bool(getattr(self.train_set, "event_augment", None))  # new frames every epoch: none held
        self.train_set = hold_in_memory(self.train_set, "off" if augmented else c.cache_frames, c.memory_budget_mb,
                                        c.workers, "training", self.say, self.info, self.dev)
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
        self.optimizer = build_optimizer(self.model, self.config.lr, self.config.weight_decay,
                                         betas=self.config.betas)
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
            shard = ShardSampler(len(self.test_set), info.rank, info.world)  # type: ignore[arg-type]
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
        extras = [f"{AMP_NAMES[self.amp]} autocast"] if self.amp is not None else []
        extras += ["channels_last"] if c.channels_last else []
        extras += ["batch norm + LIF recomputed in the backward"] if c.recompute else []
        extras += [f"x{self.info.world} processes"] if self.info.distributed else []
        say(f"{self.what_is_trained(n_params)}, T={cfg.T}, {cfg.img_size[0]}x{cfg.img_size[1]}) on {self.dev}"
            f"{' (' + ', '.join(extras) + ')' if extras else ''}")
        n_test = len(self.test_set) if self.test_set is not None else 0  # type: ignore[arg-type]
        say(f"  {len(self.train_set):,} training samples, {n_test:,} test samples; "  # type: ignore[arg-type]
            f"{self.steps_per_epoch} steps/epoch of {c.batch_size} per process; lr {c.lr:g}, epochs {c.epochs}, "
            f"warm-up {c.warmup_epochs}, mixup until {c.mixup_until}, hflip {'on' if c.hflip else 'off'}")
        if c.warmup_epochs >= c.epochs:
            say(f"warning: warm-up ({c.warmup_epochs} epochs) spans the whole run ({c.epochs}): "
                f"the learning rate never reaches {c.lr:g}")
        if resumed:
            say(f"  resuming after epoch {self.start_epoch - 1} "
                f"(best {_fmt_acc(self.best_acc)} at epoch {self.best_epoch})")
            if self.start_epoch > c.epochs:
                say(f"  the run already finished its {c.epochs} epochs; pass a larger epoch count to go on")

    def what_is_trained(self, n_params: int) -> str:
        """The opening line's start: the model, its size and its classes."""
        cfg = self.model.config
        return f"training {cfg.name or cfg.variant} ({n_params:,} parameters, {self.num_classes} classes"

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

    def correct(self, logits: Tensor, labels: Tensor) -> Tensor:
        """How many of a batch's predictions are right (the training accuracy's count)."""
        return (logits.argmax(1) == labels).sum()

    def _all_empty(self, labels: Tensor) -> bool:
        """The batch holds no readable sample (on any rank: every rank takes the same steps)."""
        empty = labels.numel() == 0
        if self.info.distributed:
            flag = torch.tensor([float(empty)], device=self.dev)
            empty = bool(all_sum(flag, self.info).item() > 0)
        return empty

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """The training steps of ``epoch`` (counted from 1); returns ``train_loss``,
        ``train_acc`` (over all ranks), ``n`` samples, ``dropped`` unreadable ones and
        ``train_s`` seconds. Randomness: a function of ``(seed, epoch, rank)``."""
        c = self.config
        t0 = time.perf_counter()
        self.net.train()
        self.sampler.set_epoch(epoch)
        self.gen.manual_seed(epoch_seed(c.seed, epoch, self.info.rank))
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
            sums[1] += self.correct(logits, labels)
            sums[2] += n
            if bar is not None and step % 10 == 0:
                bar.set_postfix(loss=f"{float(loss):.3f}", lr=f"{self.sched.get_last_lr():.2e}")
        if bar is not None:
            bar.close()
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)
        train_s = time.perf_counter() - t0
        sums = all_sum(sums, self.info).cpu()
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
            self.write_best(epoch, row, common)
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

    def write_best(self, epoch: int, row: dict[str, Any], common: dict[str, Any]) -> None:
        """``best.pt``: the model after an epoch that improved the test accuracy."""
        from dvsstream.models.checkpoints import save_checkpoint

        replace_atomically(self.best_path, lambda tmp: save_checkpoint(
            self.model, tmp, kind="best", epoch=epoch, test_acc=row["test_acc"], **common))

    def _train_state(self, epoch: int) -> dict[str, Any]:
        """What :meth:`resume` needs to continue after ``epoch`` exactly."""
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return {
            "format": TRAIN_STATE_FORMAT, "task": self.task, "epoch": epoch,
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
        self.say(self.epoch_line(epoch, lr, row))

    def epoch_line(self, epoch: int, lr: float, row: dict[str, Any]) -> str:
        """The log line of a finished epoch."""
        return (f"epoch {epoch:>3}/{self.config.epochs}  lr {lr:.2e}  train loss {row['train_loss']:.4f} "
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
                if self.should_stop(epoch):
                    break
        except KeyboardInterrupt:
            if epoch >= self.start_epoch or self.history:
                self.say(f"interrupted; {self.last_path} holds the state after the last finished epoch: "
                         f"continue with --resume")
            raise
        finally:
            if self.writer is not None:
                self.writer.close()
        return self.finish(time.perf_counter() - run_start)

    def should_stop(self, epoch: int) -> bool:
        """Whether to end the run after ``epoch`` before ``epochs`` (early stopping, in
        subclasses; the recipe runs every epoch)."""
        return False

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
            summary = _run_summary(self, result, final, wall)
            text = json.dumps(json_safe(summary), indent=2, default=str, allow_nan=False) + "\n"
            replace_atomically(self.out / "result.json", lambda tmp: tmp.write_text(text))
            self.say(self.closing_line(result))
        return result

    def closing_line(self, result: TrainResult) -> str:
        """The run's last line: how far it got, the accuracy, where the files are."""
        state = "finished" if result.complete else f"stopped after epoch {result.final_epoch} of {self.config.epochs}"
        return (f"{state}: final-epoch test accuracy {_fmt_acc(result.final_acc)} (epoch {result.final_epoch}), "
                f"best {_fmt_acc(result.best_acc)} (epoch {result.best_epoch}); "
                f"{result.samples_per_s:.1f} samples/s; {self.best_path}, {self.last_path}, "
                f"{self.out / 'log.csv'}, {self.out / 'result.json'}")


def _run_summary(trainer: "Trainer", result: TrainResult, final: dict[str, Any], wall: float) -> dict[str, Any]:
    """The content of ``result.json`` for a :class:`Trainer`'s run."""
    t = trainer
    cfg = t.model.config
    return {
        "best_test_acc": result.best_acc, "best_epoch": result.best_epoch,
        "final_test_acc": result.final_acc, "final_epoch": result.final_epoch,
        "epochs": t.config.epochs, "complete": result.complete,
        "model": cfg.name or cfg.variant, "model_config": cfg.to_dict(),
        "parameters": sum(p.numel() for p in t.model.parameters()),
        "classes": t.classes, **t.meta,
        "train_samples": len(t.train_set),  # type: ignore[arg-type]
        "test_samples": len(t.test_set) if t.test_set is not None else 0,  # type: ignore[arg-type]
        "skipped": {"train": int(final.get("train_skipped", 0)), "test": int(final.get("test_skipped", 0))},
        "device": str(t.dev), "amp": AMP_NAMES[t.amp], "channels_last": t.config.channels_last,
        "world_size": t.info.world,
        "mean_samples_per_s": result.samples_per_s, "wall_s_this_run": wall,
        "checkpoints": {"best": str(t.best_path), "last": str(t.last_path)},
        "train_config": dataclasses.asdict(t.config), "history": result.history,
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
    Under an initialised process group (see
    :func:`~dvsstream.training.distributed.init_distributed`) this is DDP; only rank 0
    logs and writes files. ``log``: a function taking one line (None: silent).
    See :class:`Trainer` for the steps.
    """
    return Trainer(model, train_set, test_set, config, out_dir, device, log, classes, meta).run()
