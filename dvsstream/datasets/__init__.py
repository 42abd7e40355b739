"""Labelled event datasets as frames: CIFAR10-DVS and DVS128 Gesture in tonic's, the
original releases' and spikingjelly's layouts, read from a local folder (never
downloaded).

One module per concern:

* :mod:`~dvsstream.datasets.load`: :func:`load_dataset`, the entry point;
* :mod:`~dvsstream.datasets.cifar10dvs`, :mod:`~dvsstream.datasets.dvsgesture`: each
  dataset's classes, layouts (detection and listing) and split;
  :mod:`~dvsstream.datasets.listing`: what their listings share;
  :mod:`~dvsstream.datasets.names`: the datasets by name;
* :mod:`~dvsstream.datasets.spec`: :class:`FrameSpec`, how events become frames;
* :mod:`~dvsstream.datasets.reading`: reading one sample's events or frames;
* :mod:`~dvsstream.datasets.frame_dataset`: :class:`FrameDataset` and its frame cache
  (:mod:`~dvsstream.datasets.frame_cache`: the format of an entry);
* :mod:`~dvsstream.datasets.in_memory`: :class:`FramesInMemory`, :func:`collate_frames`;
* :mod:`~dvsstream.datasets.release`: the releases' own data path;
* :mod:`~dvsstream.datasets.augment`: frame augmentation.

(The shipped checkpoint lives in the package's data folder, ``dvsstream/data/``.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names below, for type checkers; at run time they load on first use
    from dvsstream.datasets.cifar10dvs import CIFAR10DVS_CLASSES, cifar10dvs_split
    from dvsstream.datasets.dvsgesture import GESTURE_CLASSES
    from dvsstream.datasets.frame_dataset import FrameDataset
    from dvsstream.datasets.in_memory import FramesInMemory, collate_frames, first_readable
    from dvsstream.datasets.load import load_dataset
    from dvsstream.datasets.names import DATASETS, dataset_classes
    from dvsstream.datasets.spec import FrameSpec, frames_from_events, pool_frames

#: public name -> the module of this package that defines it. Imported on first use, so
#: that ``import dvsstream.datasets.release`` (the releases' data path) does not load torch.
_DEFINED_IN = {
    "FrameDataset": "frame_dataset",
    "FrameSpec": "spec",
    "FramesInMemory": "in_memory",
    "load_dataset": "load",
    "CIFAR10DVS_CLASSES": "cifar10dvs",
    "GESTURE_CLASSES": "dvsgesture",
    "DATASETS": "names",
    "collate_frames": "in_memory",
    "dataset_classes": "names",
    "cifar10dvs_split": "cifar10dvs",
    "first_readable": "in_memory",
    "frames_from_events": "spec",
    "pool_frames": "spec",
}

__all__ = [
    "FrameDataset",
    "FrameSpec",
    "FramesInMemory",
    "load_dataset",
    "CIFAR10DVS_CLASSES",
    "GESTURE_CLASSES",
    "DATASETS",
    "collate_frames",
    "dataset_classes",
    "cifar10dvs_split",
    "first_readable",
    "frames_from_events",
    "pool_frames",
]


def __getattr__(name: str):
    module = _DEFINED_IN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_DEFINED_IN})
