"""The model's side of the stream: :class:`Classifier` runs a
:class:`~dvsstream.stream.pipeline.LoadedModel` on the binner's windows (step or window
mode, with optional attention / firing-rate taps and an energy estimate) and
:class:`Prediction` is its verdict on one window. No threads: the
:class:`~dvsstream.stream.pipeline.Pipeline` calls it from its classifier thread."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import torch

from dvsstream.binning import Window
from dvsstream.models.energy import energy_report
from dvsstream.models.taps import record_attention, record_firing_rates
from dvsstream.models.spikformer import Spikformer

if TYPE_CHECKING:
    from dvsstream.stream.pipeline import LoadedModel

__all__ = ["Classifier", "Prediction"]


@dataclass
class Prediction:
    """The classifier's verdict on one window.

    ``t_start``/``t_end``: the window, µs (stream time). ``probs``: softmax ``[classes]``.
    ``latency_ms``: window closed (packet received) -> logits ready. ``label``: the true
    class at the window's centre when the recording has a label track, else None.
    ``steps``: time steps the model ran for this prediction (new bins, or a whole window
    when it (re)primed its state). ``attention``: block -> ``{"matrix": [heads, N, N],
    "spatial": [heads, h, w]}`` averaged over those steps, and ``"spatial_window"``
    ``[heads, h, w]`` averaged over the window's last T steps (only with taps on).
    """

    t_start: int
    t_end: int
    probs: np.ndarray
    latency_ms: float
    steps: int
    events: int
    label: Optional[int] = None
    firing_rate: Optional[float] = None
    attention: Optional[dict[int, dict[str, np.ndarray]]] = None

    @property
    def top(self) -> int:
        return int(np.argmax(self.probs))

    def top_k(self, k: int = 3) -> list[tuple[int, float]]:
        order = np.argsort(-self.probs)[:k]
        return [(int(i), float(self.probs[i])) for i in order]

    def to_json(self, class_names: Sequence[str], k: int = 3) -> dict[str, Any]:
        out = {
            "t_start_us": self.t_start,
            "t_end_us": self.t_end,
            "top": [[class_names[i], round(p, 5)] for i, p in self.top_k(k)],
            "probs": [round(float(p), 5) for p in self.probs],
            "events": self.events,
            "latency_ms": round(self.latency_ms, 3),
        }
        if self.label is not None:
            out["label"] = class_names[self.label] if 0 <= self.label < len(class_names) else self.label
        return out



class Classifier:
    """Runs the model on windows, in step or window mode, with optional taps.

    ``attention``: record every block's spike attention (forces SSA's N x N order; small
    for the live presets). ``energy_every_s``: re-estimate the energy of one window by the
    papers' method (an extra forward) at most this often; None: never.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        mode: str = "step",
        attention: bool = False,
        firing_rates: bool = True,
        energy_every_s: Optional[float] = None,
    ) -> None:
        if mode not in ("step", "window"):
            raise ValueError(f"mode must be 'step' or 'window', got {mode!r}")
        self.loaded = loaded
        self.model = loaded.model
        self.mode = mode
        self.attention = attention
        self.firing_rates = firing_rates
        self.energy_every_s = energy_every_s
        self.energy_mj: Optional[float] = None
        self._last_energy = -math.inf
        self._primed = False
        self._energy_model: Optional[Spikformer] = None
        #: per-step spatial attention (block -> ``[heads, h, w]``) of the last T steps:
        #: the steps the current prediction is built on
        self._spatial_steps: deque[dict[int, np.ndarray]] = deque(maxlen=loaded.binning.n_bins)
        self.model.set_window(loaded.binning.n_bins)

    def reset(self) -> None:
        self.model.reset()
        self._primed = False
        self._spatial_steps.clear()

    def _tapped(self):
        """A context manager yielding the taps to record into (None when nothing is tapped)."""
        if self.attention:
            return record_attention(self.model, firing_rates=self.firing_rates)
        if self.firing_rates:
            return record_firing_rates(self.model)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def __call__(self, window: Window, resync: bool = False) -> tuple[np.ndarray, int, Optional[float], Any]:
        """Logits of one window. Returns ``(probs [classes], steps run, firing rate,
        attention or None)``. ``resync``: windows were skipped before this one."""
        x = torch.from_numpy(window.frames).unsqueeze(0)  # [1, k, C, H, W]
        with self._tapped() as taps:
            if self.mode == "window":
                logits = self.model(x)
                steps = x.shape[1]
            else:
                whole = (not self._primed or resync or window.gap_before > 0
                         or window.new_bins >= window.frames.shape[0])
                if whole:
                    self.model.reset()
                    self._spatial_steps.clear()
                frames = x if whole else x[:, -window.new_bins:]
                logits = self.model.step_frames(frames)
                self._primed = True
                steps = frames.shape[1]
        # a copy in its own memory: a kept prediction must not pin a torch tensor and its storage
        probs = torch.softmax(logits.float(), -1)[0].cpu().numpy().copy()
        rate = attn = None
        if taps is not None:
            rates = taps.firing_rates
            rate = float(np.mean(list(rates.values()))) if rates else None
            if self.attention:
                attn = self._attention_arrays(taps)
        if self.energy_every_s is not None and time.perf_counter() - self._last_energy >= self.energy_every_s:
            self._estimate_energy(window)
        return probs, steps, rate, attn

    def _attention_arrays(self, taps) -> dict[int, dict[str, np.ndarray]]:
        """block -> ``matrix [heads, N, N]`` and ``spatial [heads, h, w]`` averaged over
        the steps just run, and ``spatial_window [heads, h, w]`` averaged over the last T
        steps (the whole window the prediction rests on: steadier than one step)."""
        if self.mode == "window":
            self._spatial_steps.clear()
        spatial = {i: s[:, 0].float().cpu().numpy() for i, s in taps.spatial.items()}
        for t in range(next(iter(spatial.values())).shape[0] if spatial else 0):
            self._spatial_steps.append({i: s[t] for i, s in spatial.items()})
        return {
            i: {"matrix": m[:, 0].float().mean(0).cpu().numpy(),
                "spatial": spatial[i].mean(0),
                "spatial_window": np.mean([step[i] for step in self._spatial_steps], axis=0)}
            for i, m in taps.attention.items()
        }

    def _estimate_energy(self, window: Window) -> None:
        if window.frames.shape[0] < self.loaded.binning.n_bins:
            return  # only new bins at hand: wait for a whole window
        if self._energy_model is None:  # a private copy: the stepping state stays untouched
            self._energy_model = copy.deepcopy(self.model)
        rep = energy_report(self._energy_model, torch.from_numpy(window.frames).unsqueeze(0))
        self.energy_mj = float(rep["energy_mj"])
        self._last_energy = time.perf_counter()

