"""Reading one listed sample: its events (our readers, format by content; spikingjelly's
``.npz`` and the original CIFAR10-DVS ``.aedat`` through :mod:`dvsstream.datasets.release`)
in the :class:`~dvsstream.datasets.spec.FrameSpec`'s convention, or spikingjelly's frames
as they are stored. A file that cannot be read, or was only partly read, raises
:class:`CorruptSample` with the reason (the dataset then skips the sample).
"""

from __future__ import annotations

import numpy as np

from dvsstream.errors import DvsstreamError
from dvsstream.datasets.listing import Sample
from dvsstream.datasets.release import (
    SampleError,
    read_cifar10dvs_aedat,
    read_events_npz,
    read_frames_npz,
    sj_to_native_events,
    sj_to_native_frames,
)
from dvsstream.datasets.spec import FrameSpec, pool_frames

__all__ = ["CorruptSample", "read_file_events", "read_sample_events", "read_sample_frames"]

#: source warnings that mean the file was only partly read
_PARTIAL_READ = ("truncated", "ended early", "ends inside")


class CorruptSample(Exception):
    """A sample that cannot be used; the message is the reason."""


def _read_all(source) -> np.ndarray:
    from dvsstream.events import EVENT_DTYPE

    with source:
        parts = [p for p in source]
        warnings = list(source.stats.warnings)
    for w in warnings:
        if any(s in w for s in _PARTIAL_READ):
            raise CorruptSample(f"{w}")
    if not parts:
        return np.zeros(0, EVENT_DTYPE)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def read_file_events(path: str) -> np.ndarray:
    """All events of one file (our readers, format by content). Raises :class:`CorruptSample`."""
    from dvsstream.io import detect_format, open_file

    try:
        if detect_format(path) == "aedat3.1":
            from dvsstream.io.aedat3 import Aedat31Source

            source = Aedat31Source(path, labels=False)  # segments come from the listing
        else:
            source = open_file(path)
    except DvsstreamError as exc:
        raise CorruptSample(str(exc)) from None
    except Exception as exc:  # anything a garbage file can provoke in a reader
        raise CorruptSample(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    try:
        return _read_all(source)
    except CorruptSample:
        raise
    except DvsstreamError as exc:
        raise CorruptSample(str(exc)) from None
    except Exception as exc:
        raise CorruptSample(f"{path}: reading failed ({type(exc).__name__}: {exc})") from None


def read_sample_events(item: Sample, spec: FrameSpec, dataset: str) -> np.ndarray:
    """One whole-file sample's events in ``spec.convention`` (see
    :mod:`dvsstream.datasets.release`). Raises :class:`CorruptSample` with the reason."""
    native = spec.convention == "native"
    cifar = dataset == "cifar10dvs"
    try:
        if item.kind.startswith("tonic:"):
            from dvsstream.datasets.tonic_sets import read_tonic_events

            return read_tonic_events(item.path, item.kind.split(":", 1)[1])
        if item.kind == "aedat2" and not native:
            return read_cifar10dvs_aedat(item.path)
        if item.kind == "events_npz":
            ev = read_events_npz(item.path, (128, 128))
            return sj_to_native_events(ev) if native and cifar else ev
    except SampleError as exc:
        raise CorruptSample(str(exc)) from None
    return read_file_events(item.path)


def read_sample_frames(item: Sample, spec: FrameSpec, dataset: str) -> np.ndarray:
    """A spikingjelly frames sample, in ``spec.convention`` and pooled. Raises
    :class:`CorruptSample` with the reason."""
    try:
        frames = read_frames_npz(item.path, spec.n_bins, (128, 128))
    except SampleError as exc:
        raise CorruptSample(str(exc)) from None
    if spec.convention == "native" and dataset == "cifar10dvs":
        frames = sj_to_native_frames(frames)
    return pool_frames(frames, spec)
