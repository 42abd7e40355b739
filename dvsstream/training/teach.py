"""``dvsstream teach``: a model for the user's own classes from a few recordings.

``ROOT/<class name>/...`` holds the recordings (:mod:`~dvsstream.training.teach_data`:
the class and label rules, the checks, the windows cut with the live binning, the
held-out last 20 % of every recording). :func:`teach` then

* builds the model (``spikformer_dvs_tiny`` by default) with a new head for the classes,
  its encoder from ``init`` (``--init CKPT``: a ``pretrain`` ``encoder.pt`` or another
  classifier of the same family and input), else for the tiny model from the shipped
  pre-trained encoder when the package has one (``pretrained_tiny``) or else from the
  shipped gesture model's encoder (``gesture_tiny``: trained on synthetic gestures only,
  yet measured far better than random weights: on five real "which recording" classes,
  12 epochs, 78 % of the held-out windows right against 46 % from scratch), or from scratch
  (``from_scratch``, or another model with nothing shipped: said in a note);
* fine-tunes it with :class:`TeachTrainer` (the :class:`~dvsstream.training.trainer.Trainer`
  with the recipe for few examples below) and keeps the weights of the epoch that did
  best on the held-out windows;
* writes the checkpoint ``out`` (our format: the class names, the live binning
  ``{window_us, n_bins, hop_us}`` that ``run``, ``render`` and the window read, and the
  provenance: recordings, seconds, binnings, recipe, held-out accuracy) and the report
  folder (:func:`report_dir_for`: ``report.json``, ``windows.csv`` and the figures of
  ``eval``, plus ``log.csv``).

**The recipe** (chosen for a few tens of seconds per class, on 2 CPU cores):

* every epoch draws :data:`WINDOWS_PER_CLASS` training windows of every class at random
  (:class:`BalancedDraw`: classes weigh the same whatever their length; consecutive
  windows, one hop apart, differ little, so a short epoch loses nothing);
* the frame augmentations of the papers' recipe, one random op per window (shear,
  shift, rotation, cutout) or a zoom (scale up to :data:`ZOOM` either way: the object
  nearer or farther), then every window keeps a random share in [:data:`KEEP_EVENTS`, 1]
  of its events (a slower or less contrasted scene); **no left/right flip** by default
  (``hflip``: left and right may be what tells the classes apart); no mixup; label
  smoothing 0.1. Zoom and thinning are what make it hold on other recordings: on
  ``bench_teach.py``'s real classes, ``run``'s windows right went from 50.9 % to 75.4 %
  from the pre-trained encoder and from 74.6 % to 87.9 % from the gesture encoder;
* AdamW, lr :data:`TEACH_LR` (4e-3), weight decay 0.06, batch 16, one warm-up epoch then a cosine
  over at most ``epochs`` (25);
* early stopping: after every epoch the model is tested on at most
  :data:`STOP_WINDOWS_PER_CLASS` held-out windows per class (evenly spread); training ends
  ``patience`` (8) epochs after the last improvement (accuracy up, or the same accuracy
  with a lower loss), but not before ``min_epochs`` (15); the best epoch's weights are
  kept. A few tens of held-out windows make a noisy judge: with a patience of 5 and no
  minimum, one of three seeds stopped at epoch 9 keeping epoch 4 (47.8 % of ``run``'s
  windows right on ``bench_teach.py``'s classes; 80.6 % when it ran on), and the best
  epochs came late (17-23 of 25) as the cosine brings the rate down. The report is over
  **all** the held-out windows (so it is slightly optimistic: the epoch was chosen on
  part of them).

Nothing is written before every check passed; the Trainer's own files (``last.pt``,
``log.csv``) live in a temporary folder beside ``out`` that is removed at the end.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from dvsstream.errors import DvsstreamError
from dvsstream.fileio import json_safe, replace_atomically
from dvsstream.training.config import TrainConfig, TrainResult
from dvsstream.training.steps import collate_drop_skipped, epoch_seed
from dvsstream.training.teach_data import HELD_OUT, TeachClass, TeachWindows
from dvsstream.training.trainer import Trainer

__all__ = ["KEEP_EVENTS", "STOP_WINDOWS_PER_CLASS", "TEACH_LR", "WINDOWS_PER_CLASS", "ZOOM", "BalancedDraw",
           "TeachConfig", "TeachResult", "TeachTrainer", "report_dir_for", "teach"]

#: training windows drawn per class and epoch
WINDOWS_PER_CLASS = 48
#: held-out windows per class tested after every epoch (early stopping)
STOP_WINDOWS_PER_CLASS = 48
#: the learning rate: four times ``train``'s. On ``bench_teach.py``'s real classes (the shipped
#: pre-trained encoder, 3 seeds) ``run``'s windows right were 81.3 % at 1e-3, 87.8 % at 2e-3,
#: 94.4 % at 3e-3, 97.3 % at 4e-3, 93.0 % at 6e-3 and 94.5 % at 8e-3: the encoder, trained on
#: emulated scenes, has far to move for a real camera's classes in 25 short epochs
TEACH_LR = 4e-3
#: the largest scale factor of the zoom augmentation (either way)
ZOOM = 1.5
#: the smallest share of its events a training window keeps (binomial thinning)
KEEP_EVENTS = 0.3
#: the shipped pre-trained encoder of the tiny model (used when the package has it)
PRETRAINED_TINY = "pretrained_tiny"


@dataclass
class TeachConfig:
    """What ``dvsstream teach`` is asked (its options; see the module docstring).
    ``root``: the class folders; ``out``: the checkpoint; ``report_dir``: the report
    folder (None: :func:`report_dir_for`); ``window_ms`` / ``hop_ms`` / ``bins``: the live
    binning (None: the model's T bins of 50 ms, a hop of one bin); ``roi`` / ``resize`` /
    ``sensor_size``: the geometry options; ``epoch_windows``: training windows per epoch
    (None: :data:`WINDOWS_PER_CLASS` per class); ``lr`` None: :data:`TEACH_LR`."""

    root: str | os.PathLike
    out: str | os.PathLike
    model: str = "spikformer_dvs_tiny"
    init: str | None = None
    from_scratch: bool = False
    report_dir: str | None = None
    window_ms: float | None = None
    hop_ms: float | None = None
    bins: int | None = None
    roi: Sequence[int] | None = None
    resize: Sequence[int] | None = None
    sensor_size: Sequence[int] | None = None
    min_events: int = 16
    background_from_quiet: bool = False
    background_name: str = "nothing"
    skip_unreadable: bool = False
    epochs: int = 25
    patience: int = 8
    min_epochs: int = 15
    batch_size: int = 16
    lr: float | None = None
    weight_decay: float = 0.06
    epoch_windows: int | None = None
    augment: bool = True
    hflip: bool = False
    device: str | None = None
    seed: int = 0
    progress: bool = True


@dataclass
class TeachResult:
    """What :func:`teach` made: the checkpoint, the report folder, the class names, the
    held-out accuracy (fraction; None without held-out windows), the training result and
    the wall time (s) from the recordings to the checkpoint."""

    checkpoint: Path
    report_dir: Path
    classes: list[str]
    accuracy: float | None
    train: TrainResult
    wall_s: float


def report_dir_for(out: str | os.PathLike, report_dir: str | os.PathLike | None = None) -> Path:
    """The report folder: ``report_dir``, else ``<out stem>_report`` beside ``out``."""
    if report_dir is not None:
        return Path(report_dir)
    out = Path(out)
    return out.with_name(f"{out.stem}_report")


# ------------------------------------------------------------------ the recipe
class BalancedDraw(Sampler[int]):
    """``per_class`` windows of every class, drawn at random each epoch (without
    replacement while a class has enough, cycling through it otherwise), shuffled
    together; seeded by ``(seed, epoch)``. Has ``set_epoch`` like ``DistributedSampler``."""

    def __init__(self, labels: Sequence[int], per_class: int, seed: int = 0) -> None:
        labels = np.asarray(labels)
        self.groups = [np.flatnonzero(labels == k) for k in np.unique(labels[labels >= 0])]
        self.per_class, self.seed, self.epoch = int(per_class), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, 0))
        drawn = []
        for group in self.groups:
            reps = -(-self.per_class // len(group))
            order = torch.cat([torch.randperm(len(group), generator=g) for _ in range(reps)])[:self.per_class]
            drawn.append(torch.as_tensor(group)[order])
        every = torch.cat(drawn)
        return iter(every[torch.randperm(len(every), generator=g)].tolist())

    def __len__(self) -> int:
        return self.per_class * len(self.groups)


class TeachTrainer(Trainer):
    """The :class:`Trainer` with teach's recipe: a :class:`BalancedDraw` of
    ``per_class`` windows per class each epoch, and early stopping ``patience`` epochs
    after the held-out accuracy last improved (or held with a lower loss); the best
    epoch's weights are kept in memory (``best_state``), not written."""

    task = "teach"

    def __init__(self, *args: Any, per_class: int = WINDOWS_PER_CLASS, patience: int = 8, min_epochs: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.per_class, self.patience, self.min_epochs = int(per_class), int(patience), int(min_epochs)
        self.best_loss, self.since_best = math.inf, 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def _build_loaders(self) -> None:
        super()._build_loaders()
        self.sampler = BalancedDraw(self.train_set.targets, self.per_class, self.config.seed)  # type: ignore[attr-defined]
        self.train_loader = DataLoader(self.train_set, batch_size=self.config.batch_size, sampler=self.sampler,
                                       collate_fn=collate_drop_skipped, num_workers=0)

    def record(self, epoch: int, lr: float, train: dict[str, Any], test: tuple[float, float, int],
               epoch_s: float) -> tuple[dict[str, Any], bool]:
        before_acc, before_epoch = self.best_acc, self.best_epoch
        row, _ = super().record(epoch, lr, train, test, epoch_s)
        acc, loss = row["test_acc"], row["test_loss"]
        improved = (self.best_state is None or math.isnan(acc) or acc > before_acc
                    or (acc == before_acc and loss < self.best_loss))
        if improved:
            self.best_acc, self.best_epoch, self.best_loss, self.since_best = acc, epoch, loss, 0
        else:
            self.best_acc, self.best_epoch = before_acc, before_epoch
            self.since_best += 1
        return row, improved

    def write_best(self, epoch: int, row: dict[str, Any], common: dict[str, Any]) -> None:
        self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def should_stop(self, epoch: int) -> bool:
        return self.test_loader is not None and epoch >= self.min_epochs and self.since_best >= self.patience

    def closing_line(self, result: TrainResult) -> str:
        how = ("all epochs" if result.complete else
               f"stopped early after epoch {result.final_epoch} ({self.patience} without improvement)")
        acc = "n/a" if math.isnan(self.best_acc) else f"{100 * self.best_acc:.1f} %"
        return (f"trained {result.final_epoch} epoch(s) ({how}); kept epoch {self.best_epoch}: {acc} of the "
                f"early-stopping windows right; {result.samples_per_s:.1f} windows/s")


# ------------------------------------------------------------------ the model
def _shipped_encoder(model_name: str) -> tuple[Path, str] | None:
    """The shipped encoder to start ``model_name`` from, and what it is: the pre-trained
    encoder when the package has one, else the shipped gesture model's encoder (the same
    tiny model; on the real recordings it learns the classes in a few epochs where random
    weights barely do: see the module docstring); None for other models."""
    from dvsstream.models.checkpoints import SHIPPED_MODELS, shipped_checkpoint

    if model_name != "spikformer_dvs_tiny":
        return None
    gesture = ("the shipped gesture model's encoder (no pre-trained encoder is shipped yet; --from-scratch for "
               "random weights)")
    for name, what in ((PRETRAINED_TINY, "the shipped pre-trained encoder"), ("gesture_tiny", gesture)):
        if name in SHIPPED_MODELS:
            try:
                return shipped_checkpoint(name), what
            except DvsstreamError:
                continue
    return None


def build_model(cfg: TeachConfig, n_classes: int, n_bins: int, say: Callable[[str], Any]):
    """-> ``(model, init)``: the model for ``n_classes`` over ``n_bins`` time steps, its
    encoder from ``--init``, else a shipped encoder (:func:`_shipped_encoder`), else random
    (``init`` None). The head is always new (the classes are)."""
    from dvsstream.models import create_model, get_config
    from dvsstream.models.transfer import init_encoder

    overrides = {"T": n_bins} if n_bins != get_config(cfg.model).T else {}
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, num_classes=n_classes, **overrides)
    shipped = None if cfg.from_scratch or cfg.init else _shipped_encoder(cfg.model)
    init, what = (cfg.init, "--init") if cfg.init else shipped if shipped else (None, "")
    if init is None:
        why = "--from-scratch" if cfg.from_scratch else f"no encoder is shipped for {cfg.model}"
        say(f"note: training {cfg.model} from scratch ({why}; --init CKPT starts from a pretrain encoder.pt)")
        return model, None
    report = init_encoder(model, init)
    if not report.new:  # a head of the same size came along: the classes are new, so is the head
        model.head.reset_parameters()
        model.refresh_fused()
    say(f"starting from {what}: {report}")
    return model, str(init)


# ------------------------------------------------------------------ predictions and the report
@torch.no_grad()
def predict(model, dataset, device: torch.device, batch_size: int = 32) -> tuple[list[int], list[float]]:
    """The top class and its softmax probability of every window of ``dataset``."""
    model.eval()
    preds: list[int] = []
    confs: list[float] = []
    for start in range(0, len(dataset), batch_size):
        x = torch.stack([dataset[i][0] for i in range(start, min(len(dataset), start + batch_size))]).to(device)
        conf, pred = torch.softmax(model(x).float(), dim=-1).max(dim=-1)
        preds += pred.cpu().tolist()
        confs += conf.cpu().tolist()
    return preds, confs


def _confusion(labels: Sequence[int], preds: Sequence[int], n: int) -> np.ndarray:
    matrix = np.zeros((n, n), np.int64)
    for y, p in zip(labels, preds):
        matrix[int(y), int(p)] += 1
    return matrix


def _write_windows_csv(path: Path, held, preds: Sequence[int], confs: Sequence[float], names: Sequence[str]) -> None:
    import csv

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "t_start_us", "t_end_us", "events", "label", "prediction", "confidence", "correct"])
            for win, y, p, c in zip(held.windows, held.targets, preds, confs):
                w.writerow([win["path"], win["t_start"], win["t_end"], win["events"], names[y], names[p],
                            f"{c:.4f}", int(y == p)])

    replace_atomically(path, write)


def write_report(folder: Path, report: dict[str, Any], held, preds, confs, names, log_csv: bytes | None) -> dict:
    """``report.json``, ``windows.csv``, ``log.csv`` and the three figures of ``eval``
    into ``folder`` (created); each file replaced atomically. Returns the figures' paths."""
    from dvsstream.training.plots import write_report_plots

    try:
        folder.mkdir(exist_ok=True)
        text = json.dumps(json_safe(report), indent=2, default=str) + "\n"
        replace_atomically(folder / "report.json", lambda tmp: tmp.write_text(text))
        _write_windows_csv(folder / "windows.csv", held, preds, confs, names)
        if log_csv is not None:
            replace_atomically(folder / "log.csv", lambda tmp: tmp.write_bytes(log_csv))
        matrix = np.asarray(report["confusion_matrix"], np.int64).reshape(len(names), len(names))
        return write_report_plots(folder, matrix, names, confs, [y == p for y, p in zip(held.targets, preds)],
                                  title=f"teach: held-out last {HELD_OUT:.0%} of each recording")
    except OSError as exc:
        raise DvsstreamError(f"cannot write the report into {folder} ({exc.strerror or exc})") from None


def _per_class(matrix: np.ndarray, names: Sequence[str]) -> dict[str, float | None]:
    return {name: (float(matrix[k, k] / matrix[k].sum()) if matrix[k].sum() else None)
            for k, name in enumerate(names)}


# ------------------------------------------------------------------ the run
def _windows(cfg: TeachConfig, classes: list[TeachClass], base, model_size, names: list[str],
             say: Callable[[str], Any]) -> TeachWindows:
    """Cut the windows (a progress bar over the recordings) and check that every class
    has training windows and the quiet "nothing" class enough of them."""
    from tqdm import tqdm

    from dvsstream.training.teach_data import (
        MIN_CLASS_SECONDS,
        QUIET_SHARE,
        cut_windows,
    )

    n_files = sum(len(c.files) for c in classes)
    with tqdm(total=n_files, unit="file", desc="cutting windows", disable=None if cfg.progress else True,
              file=sys.stderr, dynamic_ncols=True, leave=False) as bar:
        w = cut_windows(classes, base, model_size, roi=cfg.roi, resize=cfg.resize, sensor_size=cfg.sensor_size,
                        min_events=cfg.min_events, background_from_quiet=cfg.background_from_quiet,
                        background_name=cfg.background_name, progress=bar.update)
    train_counts = np.bincount(np.asarray(w.train.targets, np.int64), minlength=len(names))
    held_counts = np.bincount(np.asarray(w.held.targets, np.int64), minlength=len(names))
    for k, name in enumerate(names):
        if k >= len(classes):  # the quiet windows' "nothing" class
            seconds = (train_counts[k] + held_counts[k]) * base.hop_us / 1e6
            if seconds < MIN_CLASS_SECONDS:
                raise DvsstreamError(f"--background-from-quiet: the recordings hold {seconds:.2f} s of quiet windows "
                                     f"(under {100 * QUIET_SHARE:g} % of their median events); record at least "
                                     f"{MIN_CLASS_SECONDS:g} s of the empty scene into {cfg.root}/_background/")
        elif train_counts[k] == 0:
            raise DvsstreamError(f"{classes[k].folder}: no window of {base.window_us / 1000:g} ms with at least "
                                 f"{cfg.min_events} events in the first {1 - HELD_OUT:.0%} of its recordings; record "
                                 "longer, or lower --min-events or --window-ms")
        if held_counts[k] == 0:
            say(f"warning: the class {name!r} has no held-out window (its recordings' last {HELD_OUT:.0%} are too "
                "short or too quiet): the report says nothing about it")
    say(f"{len(w.train):,} training and {len(w.held):,} held-out windows of {base.window_us / 1000:g} ms "
        f"({base.n_bins} bins, a hop of {base.hop_us / 1000:g} ms) from {n_files} recording(s): "
        + ", ".join(f"{n} {train_counts[k]}+{held_counts[k]}" for k, n in enumerate(names)))
    return w


def _stop_subset(held, n_classes: int) -> Any:
    """At most :data:`STOP_WINDOWS_PER_CLASS` held-out windows per class, evenly spread."""
    labels = np.asarray(held.targets, np.int64)
    keep: list[int] = []
    for k in range(n_classes):
        idx = np.flatnonzero(labels == k)
        if len(idx) > STOP_WINDOWS_PER_CLASS:
            idx = idx[np.linspace(0, len(idx) - 1, STOP_WINDOWS_PER_CLASS).round().astype(int)]
        keep += idx.tolist()
    return held.subset(sorted(keep))


def _check_geometry(cfg: TeachConfig, classes: list[TeachClass], base, model_size) -> dict[str, Any]:
    """Every recording's sensor must take the geometry options; ``frame_spec`` meta
    (the region ``run`` should use) when ``--roi`` is given for recordings of one sensor."""
    from dvsstream.binning.geometry import live_binning

    sensors = {s for c in classes for s in c.sensors.values()}
    for c in classes:
        for path, sensor in c.sensors.items():
            try:
                live_binning(base, model_size, {}, sensor, roi=cfg.roi, resize=cfg.resize)
            except ValueError as exc:
                raise DvsstreamError(f"{path} ({sensor[0]}x{sensor[1]} sensor): {exc}; change --roi / --resize or "
                                     "leave them out") from None
    if cfg.roi is None or len(sensors) != 1:
        return {}
    (w, h), = sensors
    return {"frame_spec": {"n_bins": base.n_bins, "mode": "time", "sensor_size": [w, h], "downsample": 1,
                           "convention": "native", "roi": list(cfg.roi), "size": list(model_size)}}


def _train_config(cfg: TeachConfig) -> TrainConfig:
    lr = cfg.lr if cfg.lr is not None else TEACH_LR
    return TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, eval_batch_size=32, lr=lr,
                       weight_decay=cfg.weight_decay, warmup_epochs=min(1, cfg.epochs - 1), mixup_alpha=0.0,
                       mixup_until=0, label_smoothing=0.1, augment=cfg.augment, hflip=cfg.hflip, zoom=ZOOM,
                       keep_events=KEEP_EVENTS,
                       cache_frames="off", seed=cfg.seed, tensorboard=False, progress=cfg.progress)


def _fit(cfg: TeachConfig, model, windows: TeachWindows, names: list[str], init: str | None,
         say: Callable[[str], Any]) -> tuple[TeachTrainer, TrainResult, bytes | None]:
    """Train in a temporary folder beside ``out`` (removed after); the trainer (its
    ``best_state`` loaded into ``model``), its result and the bytes of its ``log.csv``."""
    per_class = max(1, -(-cfg.epoch_windows // len(names))) if cfg.epoch_windows else WINDOWS_PER_CLASS
    stop_set = _stop_subset(windows.held, len(names))
    work = Path(tempfile.mkdtemp(prefix=".teach-", dir=Path(cfg.out).resolve().parent))
    try:
        trainer = TeachTrainer(model, windows.train, stop_set if len(stop_set) else None,
                               _train_config(cfg), work, cfg.device, say, names,
                               {"kind": "teach"}, per_class=per_class, patience=cfg.patience,
                               min_epochs=cfg.min_epochs)
        result = trainer.run()
        log = (work / "log.csv").read_bytes() if (work / "log.csv").is_file() else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if trainer.best_state is not None:
        model.load_state_dict(trainer.best_state)
    return trainer, result, log


def teach(cfg: TeachConfig, say: Callable[[str], Any] = print) -> TeachResult:
    """Teach a model the classes under ``cfg.root`` and write ``cfg.out`` and its report
    (see the module docstring). Raises :class:`DvsstreamError` (one line) on bad input
    before anything is written."""
    from dvsstream import __version__
    from dvsstream.models import get_config, save_checkpoint
    from dvsstream.training.plots import REPORT_PLOTS
    from dvsstream.training.teach_data import (
        check_class_names,
        class_names,
        find_classes,
        read_classes,
        teach_binning,
    )

    t0 = time.perf_counter()
    classes = find_classes(cfg.root, cfg.background_name)
    names = class_names(classes, cfg.background_from_quiet, cfg.background_name)
    check_class_names(classes, Path(cfg.root), names[len(classes):])
    mcfg = get_config(cfg.model)
    base = teach_binning(mcfg.T, cfg.window_ms, cfg.hop_ms, cfg.bins)
    model_size = (int(mcfg.img_size[1]), int(mcfg.img_size[0]))
    skipped = read_classes(classes, cfg.sensor_size, cfg.skip_unreadable, say)
    extra_meta = _check_geometry(cfg, classes, base, model_size)
    windows = _windows(cfg, classes, base, model_size, names, say)
    model, init = build_model(cfg, len(names), base.n_bins, say)
    trainer, result, log = _fit(cfg, model, windows, names, init, say)
    preds, confs = predict(model, windows.held, trainer.dev)
    matrix = _confusion(windows.held.targets, preds, len(names))
    n = int(matrix.sum())
    accuracy = float(np.trace(matrix) / n) if n else None
    wall = time.perf_counter() - t0
    provenance = {
        "kind": "teach", "classes": names, "live_binning": {k: base.to_dict()[k] for k in
                                                            ("window_us", "n_bins", "hop_us")},
        **extra_meta, "root": str(Path(cfg.root).resolve()), "binnings": windows.binnings,
        "recordings": {c.name: [{"path": p, "seconds": round(s, 3)} for p, s in c.seconds.items()] for c in classes},
        "skipped": [{"path": p, "reason": r} for p, r in skipped], "init": init,
        "background": {"folder": any(c.background for c in classes), "from_quiet": cfg.background_from_quiet,
                       "quiet_events": windows.quiet if cfg.background_from_quiet else None},
        "held_out": {"rule": f"the last {HELD_OUT:.0%} of each recording, in time", "windows": n,
                     "accuracy": accuracy, "per_class_accuracy": _per_class(matrix, names)},
        "train_windows": len(windows.train), "epochs_run": result.final_epoch, "best_epoch": trainer.best_epoch,
        "recipe": {"train_config": dataclasses.asdict(trainer.config), "windows_per_class_per_epoch":
                   trainer.per_class, "patience": cfg.patience, "min_epochs": cfg.min_epochs,
                   "min_events": cfg.min_events},
        "dvsstream": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    folder = report_dir_for(cfg.out, cfg.report_dir)
    report = {"accuracy": accuracy, "correct": int(np.trace(matrix)), "samples": n,
              "per_class_accuracy": _per_class(matrix, names), "confusion_matrix": matrix.tolist(),
              "classes": names, "model": cfg.model, "checkpoint": str(cfg.out), "device": str(trainer.dev),
              "wall_s": wall, "train": {k: v for k, v in result.to_dict().items() if k != "out_dir"},
              **{k: v for k, v in provenance.items() if k not in ("classes", "recipe")},
              "recipe": provenance["recipe"], "files": {"windows": "windows.csv", "log": "log.csv", **REPORT_PLOTS}}
    plots = write_report(folder, report, windows.held, preds, confs, names, log)
    try:
        replace_atomically(Path(cfg.out), lambda tmp: save_checkpoint(model, tmp, **provenance))
    except OSError as exc:
        raise DvsstreamError(f"cannot write {cfg.out} ({exc.strerror or exc})") from None
    acc = "n/a" if accuracy is None else f"{100 * accuracy:.1f} % ({int(np.trace(matrix))}/{n})"
    say(f"held-out accuracy {acc}: " + ", ".join(
        f"{k} {'n/a' if v is None else f'{100 * v:.0f} %'}" for k, v in _per_class(matrix, names).items()))
    say(f"wrote {cfg.out} ({len(names)} classes: {', '.join(names)}) in {wall:.1f} s; the report: "
        f"{folder / 'report.json'}, " + ", ".join(str(p) for p in plots.values()))
    say(f"try it: dvsstream run --checkpoint {cfg.out} --source <a recording>")
    return TeachResult(Path(cfg.out), folder, names, accuracy, result, wall)
