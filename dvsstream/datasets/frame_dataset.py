"""One split of a dataset as ``(frames, label)`` samples, read through an on-disk frame
cache: :class:`FrameDataset` (built by :func:`dvsstream.datasets.load.load_dataset`).

The frame cache
---------------
Binned frames are cached on disk, one small HDF5 file per sample:
``<cache_dir>/<dataset>/<spec tag>/<k[:2]>/<k>.h5``, where the key ``k`` hashes the sample
(relative path, segment), the source file's size and mtime (and the labels CSV's, for
raw Gesture), the :class:`~dvsstream.datasets.spec.FrameSpec` and a cache format version.
So a different FrameSpec is a different folder, a changed source file is a new key
(recomputed), the splits share entries, and the second epoch does no event I/O. Files are
written to a unique temporary name and ``os.replace``-d into place, so several DataLoader
workers and several DDP ranks can fill the same cache without locks: at worst two
processes compute the same sample and one replace wins; a reader never sees a
half-written file. (HDF5 file locking is off: an entry never changes once in place, and
locking fails on some network file systems.) The entries' format:
:mod:`dvsstream.datasets.frame_cache`.

Corrupt samples
---------------
A sample whose file cannot be read, is truncated (the reader warns that it read only
part of it), or holds no events is *skipped*: :meth:`FrameDataset.get` returns
``(None, label, reason)``, ``__getitem__`` returns ``(torch.empty(0), -1)``, and
:func:`~dvsstream.datasets.in_memory.collate_frames` drops such items from a batch. The
reason is kept in ``dataset.skipped`` of the process that met it, and a ``<k>.bad`` marker
in the cache means later epochs and other processes skip it without reading the file
again; :meth:`FrameDataset.collect_skipped` gathers them all from the cache (with workers
the main process's list is otherwise empty). A skipped sample is never replaced by zeros.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import torch

from dvsstream.errors import DvsstreamError
from dvsstream.fileio import replace_atomically
from dvsstream.datasets.frame_cache import CACHE_VERSION, decode_entry, encode_entry
from dvsstream.datasets.listing import Sample
from dvsstream.datasets.names import dataset_classes
from dvsstream.datasets.reading import CorruptSample, read_file_events, read_sample_events, read_sample_frames
from dvsstream.datasets.spec import FrameSpec, frames_from_events

__all__ = ["FrameDataset"]

log = logging.getLogger(__name__)


class FrameDataset(torch.utils.data.Dataset):
    """Samples of one split as ``(frames float32 [T, 2, H, W], label)``; see the module
    docstring for the cache and how corrupt samples are skipped.

    Attributes: ``name``, ``split``, ``spec``, ``root``, ``classes``, ``samples`` (list of
    ``(path or path#segment, label)``), ``skipped`` (``(path, reason)`` found so far in this
    process), ``info`` (layout, folder, per-class counts, the summary ``message``),
    ``cache_dir`` (None: no cache), ``event_augment`` (an
    :class:`~dvsstream.datasets.event_augment.EventAugment`, None: none; when on, every
    :meth:`get` bins the sample's events afresh through it, past the frame cache, with a
    seed drawn from torch's generator: a training set's samples differ every epoch).
    """

    def __init__(
        self,
        name: str,
        root,
        split: str,
        spec: FrameSpec,
        items: list[Sample],
        cache_dir: Optional[Path],
        info: dict[str, Any],
        skipped: Iterable[tuple[str, str]] = (),
        classes: Optional[Iterable[str]] = None,
    ) -> None:
        self.name = name
        self.root = Path(root)
        self.split = split
        self.spec = spec
        self.classes = tuple(classes) if classes is not None else dataset_classes(name)
        self._items = list(items)
        self.samples: list[tuple[str, int]] = [(s.id, s.label) for s in self._items]
        self.skipped: list[tuple[str, str]] = list(skipped)
        self._listing_skipped = list(self.skipped)
        self.info = info
        self.cache_dir = cache_dir
        self.event_reads = 0  # files whose events were read in this process (tests, stats)
        self._memo: Optional[tuple[str, np.ndarray]] = None  # last raw file's events
        self.event_augment = None  # EventAugment: each get() augments the events afresh

    # ------------------------------------------------------------ API
    def __len__(self) -> int:
        return len(self._items)

    def clip_seconds(self, k: int = 8) -> Optional[float]:
        """Median length (s) of the first ``k`` samples whose span is known without
        reading their events: a raw Gesture segment's ``[start, end)``, or a file whose
        reader states its first and last event; None when none is."""
        from dvsstream.io import open_file

        spans = []
        for item in self._items[:k]:
            if item.start is not None and item.end is not None:
                spans.append((item.end - item.start) / 1e6)
                continue
            try:
                with open_file(item.path) as src:
                    t0, t1 = src.start_time_us, src.end_time_us
            except Exception:  # a sample the reader cannot open is the loader's to report
                continue
            if t0 is not None and t1 is not None and t1 > t0:
                spans.append((t1 - t0) / 1e6)
        return float(np.median(spans)) if spans else None

    @property
    def targets(self) -> list[int]:
        return [s.label for s in self._items]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """``(frames, label)``; for a corrupt sample ``(torch.empty(0), -1)`` (dropped by
        :func:`collate_frames`; the reason is in ``skipped``)."""
        frames, label, _ = self.get(i)
        if frames is None:
            return torch.empty(0), -1
        return torch.from_numpy(frames), label

    def get(self, i: int) -> tuple[Optional[np.ndarray], int, Optional[str]]:
        """``(frames or None, label, reason or None)`` for sample ``i``."""
        item = self._items[i]
        key = self._key(item) if not self.event_augment else None  # augmented frames are never cached
        if key is not None:
            cached = self._cache_read(key)
            if cached is not None:
                if isinstance(cached, str):
                    self._note_skip(item.id, cached)
                    return None, item.label, cached
                return cached, item.label, None
        try:
            frames = self._compute(item)
        except CorruptSample as exc:
            reason = str(exc)
            self._note_skip(item.id, reason)
            if key is not None:
                self._cache_write_bad(key, item, reason)
            return None, item.label, reason
        if key is not None:
            self._cache_write(key, item, frames)
        return frames, item.label, None

    def collect_skipped(self) -> list[tuple[str, str]]:
        """Every skipped sample known to this process or recorded in the cache (``.bad``
        markers written by any worker or rank), in sample order."""
        seen = dict(self._listing_skipped)
        seen.update(self.skipped)
        if self.cache_dir is not None:
            for item in self._items:
                if item.id in seen:
                    continue
                bad = self._entry(self._key(item)).with_suffix(".bad")
                if bad.is_file():
                    try:
                        seen[item.id] = json.loads(bad.read_text())["reason"]
                    except (OSError, ValueError, KeyError):
                        seen[item.id] = "corrupt (reason unreadable)"
        return list(seen.items())

    def __repr__(self) -> str:
        return (f"FrameDataset({self.name!r}, split={self.split!r}, {len(self)} samples, "
                f"spec={self.spec.tag()}, cache={self.cache_dir})")

    # ------------------------------------------------------------ pickling (workers)
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_memo"] = None
        return state

    # ------------------------------------------------------------ internals
    def _note_skip(self, sample_id: str, reason: str) -> None:
        if not any(p == sample_id for p, _ in self.skipped):
            self.skipped.append((sample_id, reason))
            log.warning("skipping %s: %s", sample_id, reason)

    def _key(self, item: Sample) -> Optional[str]:
        if self.cache_dir is None:
            return None
        try:
            rel = os.path.relpath(item.path, self.root)
        except ValueError:
            rel = item.path
        text = json.dumps([CACHE_VERSION, self.name, rel, item.segment, item.start, item.end, item.label,
                           item.stamp, self.spec.to_dict()])
        return hashlib.sha1(text.encode()).hexdigest()

    def _entry(self, key: str) -> Path:
        folder = self.name.replace(":", "-")  # tonic:NMNIST -> tonic-NMNIST (a valid folder name everywhere)
        return self.cache_dir / folder / self.spec.tag() / key[:2] / f"{key}.h5"

    def _cache_read(self, key: str):
        import h5py

        path = self._entry(key)
        bad = path.with_suffix(".bad")
        if bad.is_file():
            try:
                return json.loads(bad.read_text())["reason"]
            except (OSError, ValueError, KeyError):
                return "corrupt (reason unreadable)"
        if not path.is_file():
            return None
        try:
            with h5py.File(path, "r", locking=False) as f:
                frames = decode_entry(f, self.spec.frame_shape)
        except Exception as exc:  # a damaged cache entry: recompute it
            log.warning("cache entry %s unreadable (%s); recomputing", path, exc)
            try:
                path.unlink()
            except OSError:
                pass
            return None
        return frames

    def _atomic(self, path: Path, write) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(path, write)
        except OSError as exc:
            log.warning("cannot write the frame cache at %s (%s); continuing without it", self.cache_dir, exc)
            self.cache_dir = None

    def _cache_write(self, key: str, item: Sample, frames: np.ndarray) -> None:
        import h5py

        def write(tmp: Path) -> None:
            with h5py.File(tmp, "w", locking=False) as f:
                encode_entry(f, frames)
                f.attrs["sample"] = item.id
                f.attrs["label"] = item.label
                f.attrs["spec"] = json.dumps(self.spec.to_dict())

        self._atomic(self._entry(key), write)

    def _cache_write_bad(self, key: str, item: Sample, reason: str) -> None:
        def write(tmp: Path) -> None:
            tmp.write_text(json.dumps({"sample": item.id, "reason": reason}))

        self._atomic(self._entry(key).with_suffix(".bad"), write)

    def _events(self, item: Sample) -> np.ndarray:
        if item.segment < 0:
            self.event_reads += 1
            return read_sample_events(item, self.spec, self.name)
        # raw Gesture: one file holds all the segments; keep the last file's events
        if self._memo is None or self._memo[0] != item.path:
            self._memo = None
            self.event_reads += 1
            ev = read_file_events(item.path)
            self._memo = (item.path, ev)
        ev = self._memo[1]
        t = ev["t"]
        lo, hi = np.searchsorted(t, [item.start, item.end], side="left")
        return ev[lo:hi]

    def _compute(self, item: Sample) -> np.ndarray:
        if item.kind == "frames_npz" and self.event_augment:
            raise DvsstreamError(f"{item.id}: event augmentation needs the events, but this layout holds "
                                 "spikingjelly's frames; point --root at the events (events_np/, extract/)")
        if item.kind == "frames_npz":
            self.event_reads += 1
            return read_sample_frames(item, self.spec, self.name)
        events = self._events(item)
        if events.size == 0:
            where = f" in [{item.start}, {item.end}) µs" if item.segment >= 0 else ""
            raise CorruptSample(f"{item.id}: no events{where}")
        in_worker = torch.utils.data.get_worker_info() is not None
        augment = None
        if self.event_augment:
            seed = int(torch.randint(0, 2**31 - 1, ()))
            augment = functools.partial(self.event_augment, sensor_size=self.spec.sensor_size, seed=seed)
        frames = frames_from_events(events, self.spec, parallel=not in_worker, augment=augment)
        if self.cache_dir is not None and item.segment >= 0 and not self.event_augment:
            self._fill_segments(item)
        return frames

    def _fill_segments(self, item: Sample) -> None:
        """Raw Gesture: having read a file, cache its other segments of this split too,
        so the file is read once per epoch-0 pass whatever the sample order."""
        if self._memo is None:
            return
        for other in self._items:
            if other.path != item.path or other is item:
                continue
            key = self._key(other)
            path = self._entry(key)
            if path.is_file() or path.with_suffix(".bad").is_file():
                continue
            ev = self._memo[1]
            lo, hi = np.searchsorted(ev["t"], [other.start, other.end], side="left")
            if hi <= lo:
                self._cache_write_bad(key, other, f"{other.id}: no events in [{other.start}, {other.end}) µs")
                continue
            self._cache_write(key, other, frames_from_events(ev[lo:hi], self.spec,
                                                             parallel=torch.utils.data.get_worker_info() is None))
