"""Labelled event datasets as frames: CIFAR10-DVS and DVS128 Gesture in tonic's, the
original releases' and spikingjelly's layouts, ``FrameSpec`` / ``FrameDataset``, the
frame cache and frames held in memory, the releases' own data path
(:mod:`~dvsstream.datasets.release`) and frame augmentation
(:mod:`~dvsstream.datasets.augment`).

``from dvsstream.datasets import load_dataset, FrameSpec, FrameDataset, FramesInMemory``
loads torch on first use of one of those names; the release's data path alone does not.
(The shipped checkpoint lives in the package's data folder, ``dvsstream/data/``.)
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_LAZY = {
    "FrameDataset": "dvsstream.datasets.dataset",
    "FrameSpec": "dvsstream.datasets.dataset",
    "FramesInMemory": "dvsstream.datasets.dataset",
    "load_dataset": "dvsstream.datasets.dataset",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    """The names of :data:`_LAZY`, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'dvsstream.datasets' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
