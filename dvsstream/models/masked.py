"""Masked-reconstruction pre-training of a Spikformer-family encoder: :class:`MaskedAutoencoder`.

The recipe (see ``shared/docs/pretraining.md``; after Spike-driven Transformer V3's
spike-masked autoencoder, MAE and Masked Event Modeling):

* **Tube masking**: a fraction ``mask_ratio`` of the encoder's token grid (each token is a
  ``ph x pw`` patch of input pixels) is masked, the same patches at every time step
  (:func:`random_tube_masks`; exactly ``round(ratio * N)`` per sample, as MAE draws them).
* **The masked input pixels are zeroed before the stem**: the encoder (the whole spiking
  model up to its last block) sees the full grid with zeros where it is masked, so no
  event of a masked patch reaches it.
* **A small non-spiking decoder** (:class:`PatchDecoder`: a ViT of ``depth`` pre-norm
  blocks of width ``dim``, fixed 2-D sin-cos position embeddings and a learnt mask token)
  reads the encoder's per-token firing rates (the mean over time steps) of the visible
  patches and predicts, for every patch, its event counts per polarity. Only pre-training
  has it: fine-tuning keeps the encoder (:mod:`dvsstream.models.transfer`).
* **The target** is each patch's event counts per polarity, either summed over the window
  (``"window"``: ``2 * ph * pw`` values per patch) or per time step (``"steps"``:
  ``T * 2 * ph * pw``), normalised per patch (zero mean, unit variance, as MAE's
  ``norm_pix_loss``). **The loss** is the MSE over the masked patches only.

Shapes: frames ``[B, T, C, H, W]`` (event counts, C = 2 polarities), token masks ``[B, N]``
bool (True: masked), ``N = gh * gw`` tokens in row-major order (the encoder's order).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch
from torch import Tensor, nn

from dvsstream.models.spikformer import Spikformer

__all__ = ["NORMS", "TARGETS", "DecoderConfig", "MaskedAutoencoder", "PatchDecoder", "patchify", "random_tube_masks",
           "unpatchify"]

#: what the decoder reconstructs: counts over the whole window, or per time step
TARGETS = ("window", "steps")
#: how the target counts are scaled: per patch (zero mean, unit variance) or log(1 + counts)
NORMS = ("patch", "log")


@dataclass
class DecoderConfig:
    """The decoder and the task: ``dim`` / ``depth`` / ``heads`` of the non-spiking ViT
    decoder, ``mask_ratio`` in (0, 1), ``target`` one of :data:`TARGETS`, ``norm_floor``
    the variance floor of the per-patch normalisation, ``norm`` one of :data:`NORMS`
    (``"log"``: ``log(1 + counts)``, which keeps how busy a patch is; ``"patch"`` divides
    that away)."""

    dim: int = 256
    depth: int = 4
    heads: int = 4
    mask_ratio: float = 0.75
    target: str = "window"
    #: added to each patch's variance before dividing (counts²): MAE's 1e-6; larger values
    #: keep a patch of one or two noise events from becoming a full-scale target
    norm_floor: float = 1e-6
    norm: str = "patch"

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"the mask ratio must lie in (0, 1), got {self.mask_ratio}")
        if self.target not in TARGETS:
            raise ValueError(f"the target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if self.norm not in NORMS:
            raise ValueError(f"the target's scaling must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.dim % self.heads:
            raise ValueError(f"the decoder width {self.dim} must be a multiple of its {self.heads} heads")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def random_tube_masks(batch: int, n_tokens: int, ratio: float,
                      generator: Optional[torch.Generator] = None) -> Tensor:
    """``[batch, n_tokens]`` bool, True where masked: exactly ``round(ratio * n_tokens)``
    (at least 1, at most ``n_tokens - 1``) random tokens per sample; the same mask
    serves every time step (a tube)."""
    n_masked = min(max(int(round(ratio * n_tokens)), 1), n_tokens - 1)
    order = torch.rand(batch, n_tokens, generator=generator).argsort(dim=1)
    masks = torch.zeros(batch, n_tokens, dtype=torch.bool)
    masks.scatter_(1, order[:, :n_masked], True)
    return masks


def patchify(x: Tensor, grid: tuple[int, int]) -> Tensor:
    """``[B, ..., H, W]`` -> ``[B, gh * gw, prod(...) * ph * pw]``: each token's patch
    (row-major over the grid ``(gh, gw)``), its leading dimensions flattened."""
    gh, gw = grid
    B, H, W = x.shape[0], x.shape[-2], x.shape[-1]
    ph, pw = H // gh, W // gw
    lead = x.shape[1:-2]
    x = x.reshape(B, -1, gh, ph, gw, pw)                      # [B, L, gh, ph, gw, pw]
    x = x.permute(0, 2, 4, 1, 3, 5)                           # [B, gh, gw, L, ph, pw]
    return x.reshape(B, gh * gw, int(math.prod(lead)) * ph * pw)


def unpatchify(p: Tensor, grid: tuple[int, int], lead: tuple[int, ...], size: tuple[int, int]) -> Tensor:
    """The inverse of :func:`patchify`: ``[B, N, prod(lead) * ph * pw]`` -> ``[B, *lead, H, W]``
    (``size = (H, W)``)."""
    gh, gw = grid
    H, W = size
    ph, pw = H // gh, W // gw
    B = p.shape[0]
    x = p.reshape(B, gh, gw, -1, ph, pw).permute(0, 3, 1, 4, 2, 5)  # [B, L, gh, ph, gw, pw]
    return x.reshape(B, *lead, H, W)


def pixel_mask(masks: Tensor, grid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Token masks ``[B, N]`` -> pixel masks ``[B, 1, 1, H, W]`` (1.0 where masked)."""
    gh, gw = grid
    H, W = size
    m = masks.reshape(-1, 1, gh, gw).float()
    m = m.repeat_interleave(H // gh, dim=2).repeat_interleave(W // gw, dim=3)
    return m.unsqueeze(1)


def _sincos_2d(dim: int, grid: tuple[int, int]) -> Tensor:
    """Fixed 2-D sin-cos position embeddings ``[gh * gw, dim]`` (MAE's), row-major."""
    gh, gw = grid
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / max(quarter, 1))
    ys, xs = torch.meshgrid(torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64),
                            indexing="ij")
    parts = []
    for pos in (xs.reshape(-1), ys.reshape(-1)):
        angles = pos[:, None] * omega[None, :]
        parts += [angles.sin(), angles.cos()]
    emb = torch.cat(parts, dim=1)
    if emb.shape[1] < dim:  # a width not divisible by 4: pad with zeros
        emb = torch.cat([emb, emb.new_zeros(emb.shape[0], dim - emb.shape[1])], dim=1)
    return emb.float()


class PatchDecoder(nn.Module):
    """A small non-spiking ViT: encoder token features ``[B, N, enc_dim]`` and token masks
    ``[B, N]`` -> per-patch predictions ``[B, N, out_dim]``. Masked tokens are replaced by
    a learnt mask token; every token gets a fixed sin-cos position embedding."""

    def __init__(self, enc_dim: int, out_dim: int, grid: tuple[int, int], config: DecoderConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(enc_dim, config.dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.register_buffer("pos", _sincos_2d(config.dim, grid).unsqueeze(0), persistent=False)
        layer = nn.TransformerEncoderLayer(config.dim, config.heads, dim_feedforward=4 * config.dim, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)
        self.pred = nn.Linear(config.dim, out_dim)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, tokens: Tensor, masks: Tensor) -> Tensor:
        x = self.embed(tokens)
        x = torch.where(masks.unsqueeze(-1), self.mask_token.to(x.dtype).expand_as(x), x)
        x = self.blocks(x + self.pos.to(x.dtype))
        return self.pred(self.norm(x))


class MaskedAutoencoder(nn.Module):
    """A Spikformer-family ``encoder`` (its classifier head unused) and a
    :class:`PatchDecoder` that reconstructs masked patches of event counts.

    ``forward(frames [B, T, C, H, W], masks [B, N] bool)`` returns the loss (a scalar:
    MSE over the masked patches of the per-patch normalised target). :meth:`reconstruct`
    returns predictions and targets as count images, for pictures. ``config`` is the
    encoder's (what the training loop and the checkpoint header read)."""

    def __init__(self, encoder: Spikformer, decoder: Optional[DecoderConfig] = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder_config = decoder or DecoderConfig()
        cfg = encoder.config
        gh, gw = encoder.grid
        H, W = cfg.img_size
        if H % gh or W % gw:
            raise ValueError(f"input {H}x{W} is not a whole number of {gh}x{gw} token patches")
        per_step = cfg.in_channels * (H // gh) * (W // gw)
        self.out_dim = per_step * (cfg.T if self.decoder_config.target == "steps" else 1)
        self.decoder = PatchDecoder(cfg.dim, self.out_dim, (gh, gw), self.decoder_config)

    @property
    def config(self):
        return self.encoder.config

    @property
    def num_tokens(self) -> int:
        return self.encoder.num_tokens

    def _target(self, frames: Tensor) -> Tensor:
        """``[B, T, C, H, W]`` -> per-patch normalised counts ``[B, N, out_dim]``."""
        if self.decoder_config.target == "window":
            counts = patchify(frames.sum(1), self.encoder.grid)
        else:
            if frames.shape[1] != self.config.T:
                raise ValueError(f"per-step targets need T={self.config.T} time steps, got {frames.shape[1]}")
            counts = patchify(frames, self.encoder.grid)
        if self.decoder_config.norm == "log":
            return torch.log1p(counts.clamp(min=0))
        mean = counts.mean(-1, keepdim=True)
        var = counts.var(-1, keepdim=True, unbiased=False)
        return (counts - mean) / (var + self.decoder_config.norm_floor).sqrt()

    def encode(self, frames: Tensor, masks: Tensor) -> Tensor:
        """Masked pixels zeroed, then the spiking encoder: per-token firing rates ``[B, N, dim]``."""
        enc = self.encoder
        enc.reset()
        x = enc._cast(frames)
        x = x * (1.0 - pixel_mask(masks.to(x.device), enc.grid, tuple(enc.config.img_size)).to(x.dtype))
        x = enc.patch_embed(x.transpose(0, 1))
        for blk in enc.block:
            x = blk(x)
        return x.mean(0)  # [T, B, N, D] -> [B, N, D]

    def forward(self, frames: Tensor, masks: Tensor) -> Tensor:
        masks = masks.to(frames.device)
        pred = self.decoder(self.encode(frames, masks), masks)
        target = self._target(frames.float())
        per_patch = (pred.float() - target).pow(2).mean(-1)
        m = masks.float()
        return (per_patch * m).sum() / m.sum().clamp(min=1.0)

    @torch.no_grad()
    def reconstruct(self, frames: Tensor, masks: Tensor) -> dict[str, Tensor]:
        """For pictures: ``input`` (summed over time, ``[B, C, H, W]``), ``masked``
        (what the encoder saw), ``target`` and ``prediction`` (per-patch normalised,
        summed over time when per step), all ``[B, C, H, W]``; ``mask`` ``[B, H, W]``."""
        was_training = self.training
        self.eval()
        try:
            masks = masks.to(frames.device)
            pred = self.decoder(self.encode(frames, masks), masks).float()
            target = self._target(frames.float())
            cfg = self.config
            size = tuple(cfg.img_size)
            lead = (cfg.in_channels,) if self.decoder_config.target == "window" else (frames.shape[1], cfg.in_channels)
            pm = pixel_mask(masks, self.encoder.grid, size)[:, 0, 0]

            def image(p: Tensor) -> Tensor:
                img = unpatchify(p, self.encoder.grid, lead, size)
                return img if len(lead) == 1 else img.sum(1)

            seen = frames.float().sum(1)
            return {"input": seen, "masked": seen * (1 - pm[:, None]), "target": image(target),
                    "prediction": image(pred), "mask": pm}
        finally:
            self.train(was_training)
