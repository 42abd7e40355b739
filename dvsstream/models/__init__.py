"""Spikformer-family spiking transformers for DVS event frames (PyTorch).

Quick use::

    from dvsstream.models import create_model, record_attention, energy_report
    model = create_model("spikformer_dvs", num_classes=10).eval()
    logits = model(frames)            # frames [B, T, 2, 128, 128] event counts
    model.reset()                     # live: one frame [B, 2, H, W] at a time
    for f in frames.unbind(1):
        logits = model.step(f)        # same spikes / logits as the full forward
    with record_attention(model) as taps:
        model(frames)                 # taps.attention[i]: [T, B, heads, N, N]

Faster eval-mode inference: ``model.fuse_bn()`` (batch norms folded into the convs) or
:func:`prepare_for_inference` (also picks CUDA when present).
"""

from dvsstream.models.neurons import LIF, lif_multistep, lif_multistep_inference, reset_net, spike_fn
from dvsstream.models.spikformer import Spikformer, SpikformerConfig
from dvsstream.models.registry import create_model, get_config, list_models, register_model
from dvsstream.models.fusion import fuse_bn, unfuse_bn
from dvsstream.models.checkpoints import CheckpointError, load_checkpoint, load_model, save_checkpoint, shipped_checkpoint
from dvsstream.models.taps import AttentionTaps, record_attention, record_firing_rates
from dvsstream.models.energy import energy_report, format_energy_table
from dvsstream.models.device import CudaGraphForward, default_device, prepare_for_inference

__all__ = [
    "LIF",
    "lif_multistep",
    "lif_multistep_inference",
    "reset_net",
    "spike_fn",
    "Spikformer",
    "SpikformerConfig",
    "create_model",
    "get_config",
    "list_models",
    "register_model",
    "fuse_bn",
    "unfuse_bn",
    "CheckpointError",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "shipped_checkpoint",
    "AttentionTaps",
    "record_attention",
    "record_firing_rates",
    "energy_report",
    "format_energy_table",
    "CudaGraphForward",
    "default_device",
    "prepare_for_inference",
]
