"""The datasets by name: :data:`DATASETS`, the accepted spellings of each
(:func:`canonical_name`; ``tonic:NAME`` for tonic's vision classification sets, see
:mod:`dvsstream.datasets.tonic_sets`), the loader that reads each (:func:`loader_name`),
their class names (:func:`dataset_classes`) and sensors (:func:`dataset_sensor_size`)."""

from __future__ import annotations

from typing import Optional

from dvsstream.errors import DvsstreamError
from dvsstream.datasets.cifar10dvs import CIFAR10DVS_CLASSES
from dvsstream.datasets.dvsgesture import GESTURE_CLASSES
from dvsstream.datasets.tonic_sets import NON_VISION, TONIC_NATIVE, TONIC_SETS

__all__ = ["DATASETS", "TONIC_NAMES", "canonical_name", "dataset_classes", "dataset_sensor_size", "loader_name"]

DATASETS = ("cifar10dvs", "dvsgesture")
#: ``tonic:NAME`` names (tonic's spelling), in the issue's order
TONIC_NAMES = tuple(f"tonic:{n}" for n in ("NMNIST", "NCALTECH101", "CIFAR10DVS", "DVSGesture", "ASLDVS",
                                            "POKERDVS", "DVSLip"))
_ALIASES = {
    "cifar10dvs": "cifar10dvs", "cifar10-dvs": "cifar10dvs", "cifar10_dvs": "cifar10dvs",
    "dvsgesture": "dvsgesture", "dvs128gesture": "dvsgesture", "gesture": "dvsgesture",
    "dvs128_gesture": "dvsgesture", "dvs-gesture": "dvsgesture",
}
_TONIC_KEYS = {n.split(":", 1)[1].lower(): n for n in TONIC_NAMES}
assert set(_TONIC_KEYS.values()) == {f"tonic:{n}" for n in (*TONIC_SETS, *TONIC_NATIVE)}


def _expected() -> str:
    return (f"expected {', '.join(DATASETS)} or tonic:NAME, NAME one of "
            f"{', '.join(n.split(':', 1)[1] for n in TONIC_NAMES)}")


def canonical_name(name: str) -> str:
    """``"cifar10dvs"``, ``"dvsgesture"`` or ``"tonic:NAME"`` (tonic's spelling of NAME,
    any case accepted) for any accepted spelling of ``name``; :class:`DvsstreamError`
    (one line) for another name, saying what a tonic set that is not a vision
    classification set (SHD, SSC, ...) is."""
    text = str(name).strip()
    key = text.lower()
    if key in _ALIASES:
        return _ALIASES[key]
    if key.startswith("tonic:"):
        sub = key.split(":", 1)[1].strip()
        if sub in _TONIC_KEYS:
            return _TONIC_KEYS[sub]
        if sub.upper() in NON_VISION:
            return _refuse(f"{text} is {NON_VISION[sub.upper()]}, not a vision classification set; {_expected()}")
        return _refuse(f"unknown tonic dataset {text!r}; {_expected()}")
    hint = f" (did you mean {_TONIC_KEYS[key]}?)" if key in _TONIC_KEYS else ""
    return _refuse(f"unknown dataset {text!r}{hint}; {_expected()}")


def _refuse(message: str) -> str:
    raise DvsstreamError(message)


def loader_name(name: str) -> str:
    """The name of the loader that reads ``name``: ``tonic:CIFAR10DVS`` and
    ``tonic:DVSGesture`` are read by dvsstream's own (``"cifar10dvs"``, ``"dvsgesture"``,
    which read tonic's layouts too); the other tonic sets by
    :mod:`~dvsstream.datasets.tonic_sets`."""
    name = canonical_name(name)
    if name.startswith("tonic:"):
        return TONIC_NATIVE.get(name.split(":", 1)[1], name)
    return name


def dataset_classes(name: str, root=None) -> tuple[str, ...]:
    """The class names (label order) of dataset ``name``. ``root``: the dataset folder,
    needed for tonic:NCALTECH101, whose classes are its class folders."""
    name = loader_name(name)
    if name == "cifar10dvs":
        return CIFAR10DVS_CLASSES
    if name == "dvsgesture":
        return GESTURE_CLASSES
    from dvsstream.datasets.tonic_sets import tonic_classes

    return tonic_classes(name.split(":", 1)[1], root)


def dataset_sensor_size(name: str) -> tuple[int, int]:
    """``(width, height)`` of dataset ``name``'s sensor: 128x128 (CIFAR10-DVS, DVS128
    Gesture, DVS-Lip), tonic's ``sensor_size`` for the other tonic sets."""
    name = loader_name(name)
    if name in DATASETS:
        return (128, 128)
    from dvsstream.datasets.tonic_sets import tonic_sensor_size

    return tonic_sensor_size(name.split(":", 1)[1])


def is_dataset_name(name: Optional[str]) -> bool:
    """Whether ``name`` is an accepted dataset name."""
    try:
        canonical_name(str(name))
    except DvsstreamError:
        return False
    return True
