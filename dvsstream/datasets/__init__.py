"""Labelled event datasets as frames: CIFAR10-DVS and DVS128 Gesture in tonic's, the
original releases' and spikingjelly's layouts, and tonic's other vision classification
sets (``tonic:NAME``) in tonic's layout, read from a local folder (never downloaded).

One module per concern:

* :mod:`~dvsstream.datasets.load`: :func:`load_dataset`, the entry point;
* :mod:`~dvsstream.datasets.cifar10dvs`, :mod:`~dvsstream.datasets.dvsgesture`: each
  dataset's classes, layouts (detection and listing) and split
  (:mod:`~dvsstream.datasets.synth_layout`: a ``dvsstream synth`` folder as a Gesture root);
  :mod:`~dvsstream.datasets.tonic_sets`: tonic's sets (``tonic:NAME``);
  :mod:`~dvsstream.datasets.listing`: what their listings share;
  :mod:`~dvsstream.datasets.names`: the datasets by name, their classes and sensors;
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

from typing import TYPE_CHECKING

from dvsstream.lazy import lazy_attributes

if TYPE_CHECKING:  # the names below, for type checkers; at run time they load on first use
    from dvsstream.datasets.cifar10dvs import CIFAR10DVS_CLASSES, cifar10dvs_split  # noqa: F401
    from dvsstream.datasets.dvsgesture import GESTURE_CLASSES  # noqa: F401
    from dvsstream.datasets.frame_dataset import FrameDataset  # noqa: F401
    from dvsstream.datasets.in_memory import FramesInMemory, collate_frames, first_readable  # noqa: F401
    from dvsstream.datasets.load import load_dataset  # noqa: F401
    from dvsstream.datasets.names import DATASETS, TONIC_NAMES, dataset_classes, dataset_sensor_size  # noqa: F401
    from dvsstream.datasets.spec import FrameSpec, frames_from_events, pool_frames  # noqa: F401

#: public name -> the module of this package that defines it. Imported on first use, so
#: that ``import dvsstream.datasets.release`` (the releases' data path) does not load torch.
_DEFINED_IN = {
    "FrameDataset": "dvsstream.datasets.frame_dataset",
    "FrameSpec": "dvsstream.datasets.spec",
    "FramesInMemory": "dvsstream.datasets.in_memory",
    "load_dataset": "dvsstream.datasets.load",
    "CIFAR10DVS_CLASSES": "dvsstream.datasets.cifar10dvs",
    "GESTURE_CLASSES": "dvsstream.datasets.dvsgesture",
    "DATASETS": "dvsstream.datasets.names",
    "collate_frames": "dvsstream.datasets.in_memory",
    "dataset_classes": "dvsstream.datasets.names",
    "dataset_sensor_size": "dvsstream.datasets.names",
    "TONIC_NAMES": "dvsstream.datasets.names",
    "cifar10dvs_split": "dvsstream.datasets.cifar10dvs",
    "first_readable": "dvsstream.datasets.in_memory",
    "frames_from_events": "dvsstream.datasets.spec",
    "pool_frames": "dvsstream.datasets.spec",
}

__all__ = list(_DEFINED_IN)

__getattr__, __dir__ = lazy_attributes(__name__, _DEFINED_IN)
