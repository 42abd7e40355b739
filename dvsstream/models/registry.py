"""Named model configurations: ``create_model(name, num_classes=..., **overrides)``.

Every entry is a :class:`~dvsstream.models.spikformer.SpikformerConfig`; overrides replace
any of its fields (``img_size``, ``T``, ``dim``, ``heads``, ``depth``, ``mlp_ratio``,
``tau``, ``attn_scale``, ``mixer``, ...).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from dvsstream.errors import DvsstreamError
from dvsstream.models.spikformer import Spikformer, SpikformerConfig

__all__ = ["create_model", "list_models", "register_model", "get_config"]

_REGISTRY: dict[str, SpikformerConfig] = {}


def register_model(name: str, config: SpikformerConfig) -> None:
    """Add a named configuration (the name is stored in ``config.name``)."""
    _REGISTRY[name] = dataclasses.replace(config, name=name)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_config(name: str, **overrides: Any) -> SpikformerConfig:
    if name not in _REGISTRY:
        raise DvsstreamError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    known = {f.name for f in dataclasses.fields(SpikformerConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise DvsstreamError(f"unknown option(s) {bad} for model {name!r}; valid: {sorted(known)}")
    return dataclasses.replace(_REGISTRY[name], **overrides)


def create_model(name: str, num_classes: Optional[int] = None, **overrides: Any) -> Spikformer:
    """Build a registered model; ``num_classes`` and any config field can be overridden."""
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    return Spikformer(get_config(name, **overrides))


# Spikformer-2-256, the CIFAR10-DVS / DVS128 Gesture configuration (2,566,666 params @ 10 classes)
_DVS = SpikformerConfig(
    variant="spikformer", img_size=(128, 128), in_channels=2, num_classes=10, T=16, dim=256,
    heads=16, depth=2, mlp_ratio=4.0, tau=2.0, attn_scale=0.25, attn_threshold=0.5,
)
register_model("spikformer_dvs", _DVS)
# live-on-a-laptop-CPU size: 64x64 input, three pools -> 8x8 token grid
_TINY = dict(img_size=(64, 64), T=8, dim=64, heads=4, depth=1, pools=(True, True, True, False))
register_model("spikformer_dvs_tiny", dataclasses.replace(_DVS, **_TINY))
register_model("spikformer_dvs_small", dataclasses.replace(
    _DVS, img_size=(64, 64), T=8, dim=128, heads=8, depth=2, pools=(True, True, True, False)))

register_model("spikingformer_dvs", dataclasses.replace(_DVS, variant="spikingformer", tau=1.5, attn_scale=0.125))
register_model("spikingformer_dvs_tiny", dataclasses.replace(
    _DVS, variant="spikingformer", tau=1.5, attn_scale=0.125, **_TINY))

register_model("spikformer_v2_dvs", dataclasses.replace(_DVS, variant="spikformer_v2", stem_depth=1))
register_model("spikformer_v2_dvs_tiny", dataclasses.replace(_DVS, variant="spikformer_v2", stem_depth=1, **_TINY))

for _mixer in ("fft", "fft2d", "haar"):
    _sfx = "" if _mixer == "fft" else f"_{_mixer}"
    register_model(f"spikformer_lt{_sfx}_dvs", dataclasses.replace(_DVS, variant="spikformer_lt", mixer=_mixer))
    register_model(f"spikformer_lt{_sfx}_dvs_tiny",
                   dataclasses.replace(_DVS, variant="spikformer_lt", mixer=_mixer, **_TINY))
