"""Masked-reconstruction pre-training with the training loop of ``train``:
:class:`PretrainTrainer` (a :class:`~dvsstream.training.trainer.Trainer` whose step is
:class:`~dvsstream.models.masked.MaskedAutoencoder`'s loss) and :func:`pretrain`.

Everything the classification recipe has, pre-training has too: AdamW (here with MAE's
betas 0.9 / 0.95 and weight decay 0.05), the per-iteration warm-up cosine schedule, AMP,
``--resume`` from ``OUT/last.pt``, a checkpoint every epoch, torchrun DDP, frames held in
memory and a progress bar showing the loss. Labels are ignored; mixup is off; the frame
augmentations of the recipe (flip, one random op) apply when asked.

Files in ``OUT``: ``encoder.pt`` (the product: the encoder in our checkpoint format, its
head empty, with the decoder's weights and the pre-training's provenance in its meta;
``train --init`` and ``teach --init`` start from it), ``last.pt`` (encoder + decoder +
optimiser state, for ``--resume``), ``reconstruction.png`` (every epoch: inputs, masks
and reconstructions of a few held-out windows), ``log.csv`` and ``result.json``.
The test "loss" is the masked MSE on held-out windows with the same masks every epoch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from dvsstream.datasets.augment import augment_batch
from dvsstream.fileio import replace_atomically
from dvsstream.models.masked import MaskedAutoencoder, random_tube_masks
from dvsstream.training.config import TrainResult
from dvsstream.training.steps import _channels_last_input
from dvsstream.training.trainer import Trainer

__all__ = ["ENCODER_FILE", "PretrainTrainer", "save_encoder"]

#: the pre-trained encoder inside the output folder
ENCODER_FILE = "encoder.pt"
#: samples drawn in ``reconstruction.png``
_PICTURE_SAMPLES = 4


def save_encoder(mae: MaskedAutoencoder, path, **meta: Any) -> None:
    """Write ``mae``'s encoder in our checkpoint format (what ``load_model``,
    ``train --init`` and ``teach --init`` read) with the decoder's weights and
    configuration beside it (``decoder``), and ``meta``."""
    from dvsstream.models.checkpoints import FORMAT

    cfg = mae.encoder.config
    state = {
        "format": FORMAT, "model_name": cfg.name or cfg.variant, "config": cfg.to_dict(),
        "num_classes": cfg.num_classes,
        "state_dict": {k: v.detach().cpu() for k, v in mae.encoder.state_dict().items()},
        "decoder": {"config": mae.decoder_config.to_dict(),
                    "state_dict": {k: v.detach().cpu() for k, v in mae.decoder.state_dict().items()}},
        "meta": {"kind": "pretrained-encoder", **meta},
    }
    replace_atomically(path, lambda tmp: torch.save(state, tmp))


class PretrainTrainer(Trainer):
    """:class:`Trainer` for a :class:`MaskedAutoencoder`: each step masks a random
    ``mask_ratio`` of every sample's token grid (a tube through time) and minimises the
    reconstruction MSE of the masked patches. "Best" is the lowest held-out loss (the
    training loss without a held-out set)."""

    task = "pretrain"

    def __init__(self, model: MaskedAutoencoder, *args: Any, **kwargs: Any) -> None:
        super().__init__(model, *args, **kwargs)
        self.best_loss = math.inf
        self.encoder_path = self.out / ENCODER_FILE
        self.picture_path = self.out / "reconstruction.png"
        self.best_path = self.encoder_path  # what the closing line names

    def what_is_trained(self, n_params: int) -> str:
        cfg, dec = self.model.config, self.model.decoder_config
        n_dec = sum(p.numel() for p in self.model.decoder.parameters())
        return (f"pre-training the encoder of {cfg.name or cfg.variant} ({n_params - n_dec:,} parameters; decoder "
                f"{dec.depth}x{dec.dim}, {n_dec:,}; {dec.mask_ratio:.0%} of the patches masked, target: counts per "
                f"{'window' if dec.target == 'window' else 'time step'}")

    def _masks(self, batch: int, generator: Optional[torch.Generator]) -> Tensor:
        return random_tube_masks(batch, self.model.num_tokens, self.model.decoder_config.mask_ratio, generator)

    def _loss(self, frames: Tensor, masks: Tensor) -> Tensor:
        if self.config.channels_last:
            frames = _channels_last_input(frames)
        with torch.autocast(frames.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            return self.net(frames, masks).float()

    def train_step(self, frames: Tensor, labels: Tensor, use_mixup: bool) -> tuple[Tensor, Tensor]:
        """One optimiser step: augmentation, random tube masks, the masked MSE, the
        scaled backward, the schedule. Returns ``(loss, empty logits)``, detached."""
        frames = frames.to(self.dev, non_blocking=True).float()
        if self.config.augment:
            frames = augment_batch(frames, self.aug_cfg, self.gen)
        loss = self._loss(frames, self._masks(frames.shape[0], self.gen))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.sched.step()
        return loss.detach(), frames.new_zeros(frames.shape[0], 0)

    def correct(self, logits: Tensor, labels: Tensor) -> Tensor:
        return torch.zeros((), device=labels.device)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, int]:
        """``(held-out masked MSE, NaN, unreadable samples)``, with masks drawn from a
        generator seeded the same way every epoch (comparable from epoch to epoch)."""
        from dvsstream.training.distributed import all_sum

        if self.test_loader is None:
            return float("nan"), float("nan"), 0
        self.model.eval()
        g = torch.Generator().manual_seed(self.config.seed + 7919)
        sums = torch.zeros(3, dtype=torch.float64, device=self.dev)  # loss * n, n, dropped
        for frames, labels, dropped in self.test_loader:
            sums[2] += dropped
            if labels.numel() == 0:
                continue
            frames = frames.to(self.dev, non_blocking=True).float()
            sums[0] += self._loss(frames, self._masks(frames.shape[0], g)).double() * frames.shape[0]
            sums[1] += frames.shape[0]
        self.model.train()
        sums = all_sum(sums, self.info).cpu()
        loss = float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")
        return loss, float("nan"), int(sums[2])

    def record(self, epoch: int, lr: float, train: dict[str, Any], test: tuple[float, float, int],
               epoch_s: float) -> tuple[dict[str, Any], bool]:
        row, _ = super().record(epoch, lr, train, test, epoch_s)
        loss = row["test_loss"] if math.isfinite(row["test_loss"]) else row["train_loss"]
        improved = loss < self.best_loss
        if improved:
            self.best_loss, self.best_epoch = loss, epoch
        return row, improved

    def write_best(self, epoch: int, row: dict[str, Any], common: dict[str, Any]) -> None:
        """No ``best.pt``: :meth:`checkpoint` writes ``encoder.pt`` and ``reconstruction.png``
        every epoch; the latest encoder is the product (the reconstruction loss is not
        what transfers)."""

    def checkpoint(self, epoch: int, row: dict[str, Any], improved: bool) -> None:
        super().checkpoint(epoch, row, improved)
        if not self.info.is_main:
            return
        meta = {**self.meta, "epoch": epoch, "train_loss": row["train_loss"], "test_loss": row["test_loss"],
                "pretrain": {**self.model.decoder_config.to_dict(), "epochs": self.config.epochs,
                             "train_windows": len(self.train_set)}}  # type: ignore[arg-type]
        save_encoder(self.model, self.encoder_path, **meta)
        self.draw(epoch, row)

    def draw(self, epoch: int, row: dict[str, Any]) -> None:
        """``reconstruction.png`` of a few held-out (else training) windows, spread over the set."""
        from dvsstream.training.recon_plot import save_reconstruction_figure

        source = self.test_set if self.test_set is not None and len(self.test_set) else self.train_set
        n = len(source)  # type: ignore[arg-type]
        picks = sorted({(k * n) // _PICTURE_SAMPLES for k in range(min(_PICTURE_SAMPLES, n))})  # spread over the set
        frames = [source[i][0] for i in picks]
        frames = [f for f in frames if f.numel()]
        if not frames:
            return
        batch = torch.stack(frames).to(self.dev).float()
        masks = self._masks(batch.shape[0], torch.Generator().manual_seed(self.config.seed + 104729))
        parts = {k: v.cpu().numpy() for k, v in self.model.reconstruct(batch, masks).items()}
        ratio = self.model.decoder_config.mask_ratio
        save_reconstruction_figure(parts, self.picture_path,
                                   f"epoch {epoch}: {ratio:.0%} of the patches masked; held-out loss "
                                   f"{row['test_loss']:.3f}, training loss {row['train_loss']:.3f}")

    def epoch_line(self, epoch: int, lr: float, row: dict[str, Any]) -> str:
        held = (f"held-out loss {row['test_loss']:.4f}" if math.isfinite(row["test_loss"])
                else "no held-out windows")  # best: the training loss then (see record)
        return (f"epoch {epoch:>3}/{self.config.epochs}  lr {lr:.2e}  train loss {row['train_loss']:.4f}  |  "
                f"{held} (best {self.best_loss:.4f} @ {self.best_epoch})  "
                f"{row['epoch_s']:.1f} s, {row['samples_per_s']:.1f} samples/s")

    def resume(self, state: dict[str, Any]) -> None:
        super().resume(state)
        losses = [r["test_loss"] if math.isfinite(r["test_loss"]) else r["train_loss"] for r in self.history]
        if losses:
            self.best_loss = min(losses)

    def closing_line(self, result: TrainResult) -> str:
        done = "finished" if result.complete else f"stopped after epoch {result.final_epoch} of {self.config.epochs}"
        which = "held-out" if any(math.isfinite(r["test_loss"]) for r in self.history) else "training"
        return (f"{done}: {which} loss {self.best_loss:.4f} at best (epoch {self.best_epoch}); "
                f"{result.samples_per_s:.1f} samples/s; the encoder: {self.encoder_path} "
                f"(fine-tune it with `dvsstream train --init {self.encoder_path} ...`); {Path(self.out) / 'reconstruction.png'}, "
                f"{self.last_path}, {self.out / 'log.csv'}")

