"""What a training run is asked to do and what it did: :class:`TrainConfig` (the papers'
recipe as defaults, see :mod:`dvsstream.training.trainer`), :func:`resolve_amp` (the
autocast dtype of an ``amp`` setting on a device) and :class:`TrainResult`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

from dvsstream.datasets.augment import OPS, AugmentConfig
from dvsstream.datasets.event_augment import EventAugment
from dvsstream.errors import DvsstreamError

__all__ = ["AMP_MODES", "AMP_NAMES", "TrainConfig", "TrainResult", "resolve_amp"]


@dataclass
class TrainConfig:
    """Hyper-parameters and switches of :func:`~dvsstream.training.trainer.train`
    (defaults: the papers' recipe).

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
    training and test sets together, per process). ``betas``: AdamW's (the
    classification recipe's 0.9 / 0.999; masked pre-training uses 0.9 / 0.95).
    ``drop_event`` (a share),
    ``spatial_jitter`` (px²) and ``time_jitter_us`` (µs): tonic's event-level
    augmentations of the training samples (:mod:`dvsstream.datasets.event_augment`; 0:
    off, the papers' recipe); with any on, the training frames are binned afresh every
    epoch and never held in memory. ``zoom`` (> 1: the ``zoom`` op joins the frame ops,
    scale factors up to it) and ``keep_events`` (the smallest share of events a frame
    keeps): :class:`~dvsstream.datasets.augment.AugmentConfig`'s, off in the papers' recipe.
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
    drop_event: float = 0.0
    spatial_jitter: float = 0.0
    time_jitter_us: float = 0.0
    zoom: float = 1.0
    keep_events: Optional[float] = None
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
    betas: tuple[float, float] = (0.9, 0.999)

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
            raise DvsstreamError(f"--cache-frames must be auto, on or off, got {self.cache_frames!r}")
        if self.workers < 0 or self.prefetch < 1:
            raise DvsstreamError(f"workers must be >= 0 and prefetch >= 1, got {self.workers} and {self.prefetch}")
        if not self.memory_budget_mb >= 0:
            raise DvsstreamError(f"the memory budget must be >= 0 MiB, got {self.memory_budget_mb}")

        self.event_augment()  # one line for an augmentation out of range
        if not self.zoom >= 1.0:
            raise DvsstreamError(f"the zoom factor must be at least 1 (1: no zoom), got {self.zoom}")
        if self.keep_events is not None and not 0.0 < self.keep_events <= 1.0:
            raise DvsstreamError(f"the share of events kept must be in (0, 1], got {self.keep_events}")

    def augment_config(self) -> AugmentConfig:
        zoom = {"ops": OPS + ("zoom",), "zoom": self.zoom} if self.zoom > 1.0 else {}
        return AugmentConfig(hflip=self.hflip, keep_events=self.keep_events, **zoom)

    def event_augment(self) -> EventAugment:
        """The event-level augmentation of the training samples (falsy when off)."""
        return EventAugment(self.drop_event, self.spatial_jitter, self.time_jitter_us)


#: values of ``TrainConfig.amp`` / ``--amp``
AMP_MODES = ("auto", "off", "fp16", "bf16")
AMP_NAMES = {None: "off", torch.float16: "fp16", torch.bfloat16: "bf16"}


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
    """What :func:`~dvsstream.training.trainer.train` did. Accuracies are fractions in
    [0, 1] (NaN without a test set)."""

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
