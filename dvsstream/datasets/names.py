"""The datasets by name: :data:`DATASETS`, the accepted spellings of each and its class
names (:func:`dataset_classes`)."""

from __future__ import annotations

from dvsstream.errors import DvsstreamError
from dvsstream.datasets.cifar10dvs import CIFAR10DVS_CLASSES
from dvsstream.datasets.dvsgesture import GESTURE_CLASSES

__all__ = ["DATASETS", "canonical_name", "dataset_classes"]

DATASETS = ("cifar10dvs", "dvsgesture")
_ALIASES = {
    "cifar10dvs": "cifar10dvs", "cifar10-dvs": "cifar10dvs", "cifar10_dvs": "cifar10dvs",
    "dvsgesture": "dvsgesture", "dvs128gesture": "dvsgesture", "gesture": "dvsgesture",
    "dvs128_gesture": "dvsgesture", "dvs-gesture": "dvsgesture",
}


def canonical_name(name: str) -> str:
    """``"cifar10dvs"`` or ``"dvsgesture"`` for any accepted spelling of ``name``;
    :class:`DvsstreamError` (one line) for another name."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise DvsstreamError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return _ALIASES[key]


def dataset_classes(name: str) -> tuple[str, ...]:
    """The class names (label order) of ``"cifar10dvs"`` or ``"dvsgesture"``."""
    return CIFAR10DVS_CLASSES if canonical_name(name) == "cifar10dvs" else GESTURE_CLASSES
