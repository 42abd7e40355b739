"""CIFAR10-DVS, DVS128 Gesture and tonic's vision classification sets (``tonic:NAME``,
:mod:`dvsstream.datasets.tonic_sets`) from a local folder, as cached event frames:
:func:`load_dataset`, the entry point.

Nothing is ever downloaded. Each dataset's layouts (tonic's, the original release's,
spikingjelly's) are detected under ``root``: :mod:`dvsstream.datasets.cifar10dvs`,
:mod:`dvsstream.datasets.dvsgesture`. The frames: :mod:`dvsstream.datasets.spec`; the
dataset and its frame cache: :mod:`dvsstream.datasets.frame_dataset`.

Why not tonic's own classes: tonic 1.7's ``CIFAR10DVS`` calls ``download()`` unless the
archive *and* >= 1000 files are present (a partial folder would hit the network), lists
each class's files in ``os.walk`` order (unsorted, so a "first 90 %" split would depend on
the file system), and reads AEDAT 4 through the ``aedat`` package, which is not a
dependency here; ``DVSGesture`` likewise downloads unless >= 100 ``.npy`` files exist. We
keep tonic's folder names, class order and unit conversions (tests check them against
tonic) and read the files with our own readers (:mod:`dvsstream.io`), which report
truncated or corrupt files instead of failing deep inside a DataLoader worker.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

from dvsstream.errors import DvsstreamError
from dvsstream.datasets.cifar10dvs import list_cifar10dvs
from dvsstream.datasets.dvsgesture import list_gesture
from dvsstream.datasets.frame_dataset import FrameDataset
from dvsstream.datasets.names import canonical_name, loader_name
from dvsstream.datasets.tonic_sets import check_native_folder, list_tonic
from dvsstream.datasets.spec import FrameSpec

__all__ = ["load_dataset"]

log = logging.getLogger(__name__)

_SPLITS = ("train", "test", "all")


def _spread(n: int, limit: int) -> list[int]:
    """``limit`` indices spread evenly over ``range(n)`` (every class of a class-sorted list)."""
    if limit >= n:
        return list(range(n))
    return sorted({(i * n) // limit for i in range(limit)})


def load_dataset(
    name: str,
    root,
    split: str = "test",
    spec: FrameSpec = FrameSpec(),
    cache_dir=None,
    limit: Optional[int] = None,
) -> FrameDataset:
    """Open a split of ``"cifar10dvs"``, ``"dvsgesture"`` or ``"tonic:NAME"`` (tonic's vision
    classification sets in tonic's ``save_to`` layout: :mod:`dvsstream.datasets.tonic_sets`)
    under ``root`` (never downloads).

    ``split``: ``"train"``, ``"test"`` or ``"all"``. ``spec``: how frames are made.
    ``cache_dir``: where binned frames are cached (default ``<root>/.dvsstream-cache``;
    ``False``: no cache). ``limit``: at most this many samples, spread evenly over the
    split (so that every class appears); a limit larger than the split keeps all of it
    (``dataset.info["limit_exceeds"]`` says so). Raises :class:`DvsstreamError` with what
    is expected where when the folder is missing or empty.
    """
    asked = canonical_name(name)
    name = loader_name(asked)
    if split not in _SPLITS:
        raise DvsstreamError(f"unknown split {split!r}; expected one of {', '.join(_SPLITS)}")
    if not isinstance(spec, FrameSpec):
        raise DvsstreamError(f"spec must be a FrameSpec, got {type(spec).__name__}")
    root = Path(root).expanduser()
    if not root.is_dir():
        hint = ("CIFAR10DVS/<class>/*.aedat4" if name == "cifar10dvs"
                else "DVSGesture/ibmGestureTrain|ibmGestureTest/... or DvsGesture/*.aedat" if name == "dvsgesture"
                else f"tonic's {name.split(':', 1)[1]}/ folder (its save_to)")
        raise DvsstreamError(f"dataset folder {root} does not exist; expected it to hold {hint}")
    classes = None
    skipped: list = []
    if asked.startswith("tonic:") and not name.startswith("tonic:"):
        check_native_folder(asked.split(":", 1)[1], root)  # tonic:CIFAR10DVS / tonic:DVSGesture: tonic's folder
    if name == "cifar10dvs":
        items, info = list_cifar10dvs(root, split, spec)
    elif name == "dvsgesture":
        items, info, skipped = list_gesture(root, split, spec)
    else:
        items, info, classes = list_tonic(name.split(":", 1)[1], root, split)
        _check_sensor(name, spec, info["sensor_size"])
    info["convention"] = spec.convention
    info["split_size"] = len(items)
    if limit is not None:
        if limit < 1:
            raise DvsstreamError(f"limit must be >= 1, got {limit}")
        info["limit"] = int(limit)
        info["limit_exceeds"] = limit > len(items)
        if limit > len(items):
            log.info("limit %d is larger than the %s split (%d samples); using all of them", limit, split, len(items))
        items = [items[i] for i in _spread(len(items), limit)]
    if cache_dir is False:
        cache = None
    else:
        cache = Path(cache_dir).expanduser() if cache_dir is not None else root / ".dvsstream-cache"
        try:
            cache.mkdir(parents=True, exist_ok=True)
            if not os.access(cache, os.W_OK):
                raise OSError("not writable")
        except OSError as exc:
            log.warning("frame cache %s unusable (%s); frames are recomputed every time "
                        "(give --cache-dir a writable folder)", cache, exc)
            cache = None
    return FrameDataset(name, root, split, spec, items, cache, info, skipped, classes=classes)


def _check_sensor(name: str, spec: FrameSpec, sensor) -> None:
    """Frames of a tonic set are made on its sensor: a spec for another one is refused."""
    if tuple(spec.sensor_size) != tuple(sensor):
        raise DvsstreamError(f"{name}'s sensor is {sensor[0]}x{sensor[1]} but the frames asked for are binned on "
                             f"{spec.sensor_size[0]}x{spec.sensor_size[1]}; make the FrameSpec with "
                             f"sensor_size={tuple(sensor)} (dvsstream.datasets.names.dataset_sensor_size)")
