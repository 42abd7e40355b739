"""The Spikformer family as one configurable model.

``SpikformerConfig.variant`` selects the architecture:

* ``"spikformer"``: Spikformer (ICLR 2023), SPS + SSA blocks (spikes added in residuals);
* ``"spikingformer"``: spike-driven residual (LIF -> Conv -> BN, membrane shortcut);
* ``"spikformer_v2"``: Spikformer with a spiking convolutional stem before the SPS stages;
* ``"spikformer_lt"``: Spikformer with SSA replaced by an unparameterised mixer
  (``mixer = "fft" | "fft2d" | "haar"``).

``model(x)`` takes event frames ``[B, T, C, H, W]`` and returns logits ``[B, classes]``;
it resets all neuron state first. For live use, :meth:`Spikformer.reset` then
:meth:`Spikformer.step` with one frame ``[B, C, H, W]`` per call (eval mode only).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from dvsstream.models.fusion import fuse_bn, unfuse_bn
from dvsstream.models.layers import MLP, SSA, Block, SpikingMLP, TokenMixer
from dvsstream.models.neurons import LIF
from dvsstream.models.tokenizers import SPS, SpikingTokenizer

__all__ = ["SpikformerConfig", "Spikformer", "VARIANTS"]

VARIANTS = ("spikformer", "spikingformer", "spikformer_v2", "spikformer_lt")
#: step(): up to this many steps the head mean is computed exactly as forward() does
_EXACT_HISTORY = 256


@dataclass
class SpikformerConfig:
    """Everything that determines the architecture (shapes derive from it).

    ``T`` is the number of time steps per sample the model is meant for (training data,
    the sliding window of ``set_window("T")``); ``forward`` accepts any number of steps.
    ``pools``: which of the four SPS stages max-pool (the token grid is the input size
    halved once per pool). ``matmul_order``: SSA product order, ``"auto"`` picks the
    cheaper of ``(q k^T) v`` (N x N) and ``q (k^T v)`` (d x d).
    """

    variant: str = "spikformer"
    img_size: tuple[int, int] = (128, 128)
    in_channels: int = 2
    num_classes: int = 10
    T: int = 16
    dim: int = 256
    heads: int = 16
    depth: int = 2
    mlp_ratio: float = 4.0
    tau: float = 2.0
    v_threshold: float = 1.0
    attn_scale: float = 0.25
    attn_threshold: float = 0.5
    pools: tuple[bool, ...] = (True, True, True, True)
    rpe: bool = True
    mixer: str = "ssa"
    stem_depth: int = 0
    stem_channels: int = 0
    matmul_order: str = "auto"
    name: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.img_size, int):
            self.img_size = (self.img_size, self.img_size)
        self.img_size = tuple(int(s) for s in self.img_size)  # type: ignore[assignment]
        self.pools = tuple(bool(p) for p in self.pools)
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {VARIANTS}")
        if self.variant == "spikformer_lt" and self.mixer == "ssa":
            self.mixer = "fft"
        if self.variant != "spikformer_lt" and self.mixer != "ssa":
            raise ValueError(f"mixer={self.mixer!r} is only for variant 'spikformer_lt'")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["img_size"] = list(self.img_size)
        d["pools"] = list(self.pools)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SpikformerConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class Spikformer(nn.Module):
    """Spikformer-family classifier for DVS event frames.

    Attributes:
        config: the :class:`SpikformerConfig` it was built from.
        patch_embed, block, head: the release's module names (state dicts map 1:1).
    """

    def __init__(self, config: Optional[SpikformerConfig] = None, **overrides: Any) -> None:
        super().__init__()
        cfg = dataclasses.replace(config or SpikformerConfig(), **overrides)
        self.config = cfg
        hidden = int(cfg.dim * cfg.mlp_ratio)
        if cfg.variant == "spikingformer":
            self.patch_embed = SpikingTokenizer(
                cfg.img_size, cfg.in_channels, cfg.dim, cfg.tau, cfg.v_threshold, cfg.pools
            )
        else:
            self.patch_embed = SPS(
                cfg.img_size,
                cfg.in_channels,
                cfg.dim,
                cfg.tau,
                cfg.v_threshold,
                cfg.pools,
                rpe=cfg.rpe,
                stem_depth=cfg.stem_depth if cfg.variant == "spikformer_v2" else 0,
                stem_channels=cfg.stem_channels,
            )
        self.grid = self.patch_embed.grid
        n_tokens = self.grid[0] * self.grid[1]
        if n_tokens < 1:
            raise ValueError(f"input {cfg.img_size} is too small for pools {cfg.pools}")
        blocks = []
        for _ in range(cfg.depth):
            if cfg.variant == "spikformer_lt":
                attn: nn.Module = TokenMixer(cfg.mixer, n_tokens, cfg.dim, cfg.tau, cfg.v_threshold)
            else:
                attn = SSA(
                    cfg.dim,
                    cfg.heads,
                    cfg.attn_scale,
                    cfg.attn_threshold,
                    cfg.tau,
                    cfg.v_threshold,
                    grid=self.grid,
                    matmul_order=cfg.matmul_order,
                    spike_driven=cfg.variant == "spikingformer",
                )
            if cfg.variant == "spikingformer":
                mlp: nn.Module = SpikingMLP(cfg.dim, hidden, cfg.tau, cfg.v_threshold)
            else:
                mlp = MLP(cfg.dim, hidden, cfg.tau, cfg.v_threshold)
            blocks.append(Block(attn, mlp))
        self.block = nn.ModuleList(blocks)
        self.head = nn.Linear(cfg.dim, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)
        self.window: Optional[int] = None
        self._feats: Any = []
        self._feat_sum: Optional[Tensor] = None
        self._n_steps = 0
        self._fused_on = False
        # folded batch-norm weights follow any load_state_dict()
        self.register_load_state_dict_post_hook(lambda module, keys: module.refresh_fused())

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.0)

    # ------------------------------------------------------------------ properties
    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def num_tokens(self) -> int:
        return self.grid[0] * self.grid[1]

    def lif_layers(self) -> dict[str, LIF]:
        return {n: m for n, m in self.named_modules() if isinstance(m, LIF)}

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all neuron state and the step-mode feature history."""
        for m in self.modules():
            if isinstance(m, LIF):
                m.reset()
        self._feats = deque(maxlen=self.window) if self.window else []
        self._feat_sum = None
        self._n_steps = 0

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: Tensor, ndim: int) -> None:
        cfg = self.config
        if x.dim() != ndim or x.shape[-3] != cfg.in_channels or tuple(x.shape[-2:]) != cfg.img_size:
            want = "[B, T, C, H, W]" if ndim == 5 else "[B, C, H, W]"
            raise ValueError(
                f"expected input {want} with C={cfg.in_channels}, H, W={cfg.img_size}; "
                f"got shape {tuple(x.shape)}"
            )

    def _cast(self, x: Tensor) -> Tensor:
        """Event counts of any dtype / device -> the model's dtype and device."""
        p = self.head.weight if isinstance(self.head, nn.Linear) else next(self.parameters())
        if x.dtype != p.dtype or x.device != p.device:
            x = x.to(device=p.device, dtype=p.dtype, non_blocking=True)
        return x

    def forward_features(self, x: Tensor) -> Tensor:
        """``[T, B, C, H, W]`` -> per-step features ``[T, B, dim]`` (mean over tokens).
        Continues from the current neuron state."""
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return x.mean(2)

    def forward_head(self, feats: Tensor) -> Tensor:
        """Per-step features ``[T, B, dim]`` -> logits (mean over T, then the linear head)."""
        return self.head(feats.mean(0))

    def forward(self, x: Tensor) -> Tensor:
        """Event frames ``[B, T, C, H, W]`` -> logits ``[B, classes]``. Resets state first."""
        self._check_input(x, 5)
        self.reset()
        x = self._cast(x).transpose(0, 1)
        feats = self.forward_features(x)
        return self.forward_head(feats)

    # ------------------------------------------------------------------ streaming
    def set_window(self, window: Optional[Union[int, str]]) -> None:
        """Step mode: the head averages the features of the last ``window`` steps
        (``"T"``: the configured ``config.T``; None: every step since :meth:`reset`)."""
        if window == "T":
            window = self.config.T
        if window is not None and (not isinstance(window, int) or window < 1):
            raise ValueError(f"window must be a positive int, 'T' or None, got {window!r}")
        self.window = window
        self.reset()

    @torch.inference_mode()
    def step(self, frame: Tensor) -> Tensor:
        """One time step ``[B, C, H, W]`` -> logits ``[B, classes]`` over the steps seen
        (or the last ``window`` steps). Carries neuron state; eval mode only; runs under
        ``torch.inference_mode`` (its outputs are inference tensors)."""
        if self.training:
            raise RuntimeError("Spikformer.step() needs eval mode (batch norm must use running statistics): call model.eval()")
        self._check_input(frame, 4)
        return self._add_step_features(self.forward_features(self._cast(frame).unsqueeze(0))[0])

    @torch.inference_mode()
    def step_frames(self, frames: Tensor) -> Tensor:
        """``k`` time steps at once, ``[B, k, C, H, W]`` -> logits after the last of them.

        The same as ``k`` calls of :meth:`step` (exactly so in float64; in float32 the
        batched convolutions may round differently), at the cost of one ``k``-step
        forward -- e.g. ``reset()`` then ``step_frames(window)`` primes the state and the
        feature history with a whole window before stepping on one bin at a time."""
        if self.training:
            raise RuntimeError("Spikformer.step() needs eval mode (batch norm must use running statistics): call model.eval()")
        self._check_input(frames, 5)
        feats = self.forward_features(self._cast(frames).transpose(0, 1))
        for f in feats.unbind(0):
            logits = self._add_step_features(f)
        return logits

    def _add_step_features(self, f: Tensor) -> Tensor:
        """Append one step's features ``[B, dim]`` to the history; logits of the head."""
        self._n_steps += 1
        if self.window:
            self._feats.append(f)
            return self.head(torch.stack(list(self._feats)).mean(0))
        # exact same arithmetic as forward() while the history is short; then a running sum
        if self._feat_sum is None and len(self._feats) < _EXACT_HISTORY:
            self._feats.append(f)
            return self.head(torch.stack(self._feats).mean(0))
        if self._feat_sum is None:
            self._feat_sum = torch.stack(self._feats).sum(0)
            self._feats = []
        self._feat_sum = self._feat_sum + f
        return self.head(self._feat_sum / self._n_steps)

    # ------------------------------------------------------------------ inference helpers
    def fuse_bn(self) -> "Spikformer":
        """Fold batch norms into convs for faster eval-mode inference (float rounding only)."""
        fuse_bn(self)
        self._fused_on = True
        return self

    def unfuse_bn(self) -> "Spikformer":
        unfuse_bn(self)
        self._fused_on = False
        return self

    def refresh_fused(self) -> None:
        if self._fused_on:
            fuse_bn(self)

    def train(self, mode: bool = True) -> "Spikformer":
        was_training = self.training
        super().train(mode)
        if was_training and not mode:
            self.refresh_fused()  # weights may have changed while training
        if mode and self.encoder_frozen:  # a linear probe: the encoder's batch norms keep their statistics
            for name, child in self.named_children():
                if name != "head":
                    child.train(False)
        return self

    #: :meth:`freeze_encoder` was called: only the head learns
    encoder_frozen = False

    def freeze_encoder(self) -> "Spikformer":
        """Train the classifier head alone (a linear probe): every other parameter stops
        taking gradients, and the encoder stays in evaluation mode (its batch-norm
        statistics fixed) whenever the model trains."""
        for name, p in self.named_parameters():
            if not name.startswith("head."):
                p.requires_grad_(False)
        self.encoder_frozen = True
        return self.train(self.training)

    def _apply(self, fn, *args, **kwargs):  # keep folded weights on the same device / dtype
        out = super()._apply(fn, *args, **kwargs)
        self.refresh_fused()
        return out

    def extra_repr(self) -> str:
        c = self.config
        return f"variant={c.variant}, img={c.img_size}, T={c.T}, dim={c.dim}, heads={c.heads}, depth={c.depth}, grid={self.grid}"
