"""Named recipes for ``dvsstream train --preset``: the values of ``train``'s options that a
preset sets when the command line does not.

* ``paper`` (the default): the papers' recipe as ``train``'s own defaults (Spikformer-2-256,
  202 / 106 epochs, 10 warm-up epochs, lr 1e-3, batch 16, mixup until epoch 75).
* ``quick``: a few minutes on a laptop CPU that learns ``dvsstream synth``'s set well above
  chance (:data:`QUICK_SYNTH_SAMPLES_PER_CLASS` samples per class): the tiny model
  (64x64, T=8), 40 epochs, 2 warm-up epochs, lr 3e-3, batch 16, no mixup, no mirroring
  (Gesture's left/right classes), equal-time bins as the live window makes them (so
  ``dvsstream run --checkpoint OUT/best.pt`` classifies a stream with it).

Why the paper's recipe cut to 10 epochs stays near chance on the tiny model (``synth
--samples-per-class 20``: 176 training clips, 11 steps an epoch, 44 test clips; test
accuracy at epoch 10, one run each): as it is, 14 %; with 1 warm-up epoch, 18 %; without
mixup and mirroring, 34 %; all three and lr 2e-3, 34 % (39 % at best). Mirroring turns
6 of the 11 classes into another without relabelling them (a right hand wave into a
left one, right arm clockwise into left arm counter-clockwise, ...), mixup blends half
the batches, the 10 warm-up epochs keep the rate below 1e-3 for the whole run, and 110
steps are too few in any case: the quick preset trains 40 epochs on 440 clips (1,120
steps).
"""

from __future__ import annotations

import argparse
from typing import Any

from dvsstream.errors import DvsstreamError

__all__ = ["PRESETS", "QUICK_SYNTH_SAMPLES_PER_CLASS", "apply_preset", "defer_to_preset", "preset_values"]

#: ``dvsstream synth --samples-per-class`` the quick preset is meant for (and measured on)
QUICK_SYNTH_SAMPLES_PER_CLASS = 50

#: preset name -> {option dest: value}; ``None`` keeps the command's own rule (``--epochs``:
#: the recipe's for the dataset). ``paper`` is filled from ``train``'s parser defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "quick": {
        "model": "spikformer_dvs_tiny",
        "epochs": 40,
        "warmup_epochs": 2,
        "lr": 3e-3,
        "batch_size": 16,
        "mixup_until": 0,
        "no_hflip": True,
        "frames": "time",
    },
}


def preset_values(name: str, paper: dict[str, Any]) -> dict[str, Any]:
    """The option values of preset ``name``: ``paper`` (``train``'s defaults) overlaid
    with the preset's own. Raises :class:`DvsstreamError` for an unknown name."""
    if name not in PRESETS:
        raise DvsstreamError(f"--preset {name}: unknown preset; the presets are: {', '.join(PRESETS)}")
    return {**paper, **PRESETS[name]}


def defer_to_preset(parser: argparse.ArgumentParser) -> None:
    """Let ``--preset`` set the options the presets name: their parser defaults (the
    paper's values) move to the namespace's ``preset_paper`` and become None, so that
    :func:`apply_preset` can tell an option given (kept) from one left out (filled)."""
    names = sorted(set().union(*PRESETS.values()))
    paper = {name: parser.get_default(name) for name in names}
    parser.set_defaults(preset_paper=paper, **{name: None for name in names})


def apply_preset(args: argparse.Namespace) -> dict[str, Any]:
    """Fill the options of ``args`` left out (None) with ``args.preset``'s values (see
    :func:`defer_to_preset`); returns what was filled from the preset's own table (not
    the paper's defaults). A second call changes nothing and returns ``{}``."""
    paper = getattr(args, "preset_paper", None)
    if paper is None:  # a namespace not built by a parser with defer_to_preset
        return {}
    values = preset_values(getattr(args, "preset", None) or "paper", paper)
    own = PRESETS[getattr(args, "preset", None) or "paper"]
    filled = {}
    for name, value in values.items():
        if getattr(args, name, None) is None and value is not None:
            setattr(args, name, value)
            if name in own:
                filled[name] = value
    return filled

