"""Labelled event datasets as frames: CIFAR10-DVS and DVS128 Gesture in tonic's, the
original releases' and spikingjelly's layouts (:mod:`~dvsstream.datasets.dataset`), the
releases' own data path (:mod:`~dvsstream.datasets.release`) and frame augmentation
(:mod:`~dvsstream.datasets.augment`).

(The shipped checkpoint lives in the package's data folder, ``dvsstream/data/``.)
"""

from dvsstream.datasets.dataset import FrameDataset, FrameSpec, FramesInMemory, load_dataset

__all__ = ["FrameDataset", "FrameSpec", "FramesInMemory", "load_dataset"]
