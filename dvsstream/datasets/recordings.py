"""Windows cut from recordings exactly as the live pipeline cuts them: what ``pretrain
--dataset folder`` learns from, and what ``teach`` is taught with.

* :func:`find_recordings`: every readable recording under a folder, recursively, in any
  format the readers know (by content), from any camera;
* :func:`recording_windows`: the sliding windows of each recording, binned by the
  :class:`~dvsstream.binning.streaming.StreamingBinner` with the live binning of
  :func:`~dvsstream.binning.geometry.live_binning` (window, bins, hop, and the region and
  resize that feed a model of a given input size from *that file's* sensor), so a model
  learns exactly what ``run`` and the window classify. Only whole windows inside the
  recording (or inside a fraction of its time span) are kept; quiet ones (fewer than
  ``min_events``) are left out. A random subset may be drawn (``max_windows``, seeded).

The result, :class:`WindowSet`, holds the frames in memory (counts as uint8 / uint16 when
exact) and yields ``(frames float32 [T, 2, H, W], label)`` like every dataset here.
Times are µs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch

from dvsstream.binning.geometry import BinningConfig, live_binning
from dvsstream.datasets.in_memory import FramesInMemory, _compact
from dvsstream.errors import DvsstreamError

__all__ = ["WindowSet", "WindowSource", "find_recordings", "read_recording", "recording_windows"]

#: folders never searched for recordings (caches, our own outputs' side folders)
_SKIP_DIRS = {".dvsstream-cache", "__pycache__", ".git", "tb"}


def find_recordings(root: Union[str, os.PathLike]) -> list[Path]:
    """Every file under ``root`` (recursively, sorted, hidden files and caches left out)
    whose first bytes name a format the readers know. Raises :class:`DvsstreamError`
    when ``root`` is not a folder."""
    from dvsstream.io import detect_format

    root = Path(root).expanduser()
    if not root.is_dir():
        raise DvsstreamError(f"--root {root}: no such folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                detect_format(path)
            except DvsstreamError:
                continue  # not a recording (a README, a checkpoint, a picture, an empty file)
            found.append(path)
    return found


def read_recording(path: Union[str, os.PathLike], sensor_size: Optional[Sequence[int]] = None
                   ) -> tuple[np.ndarray, tuple[int, int], list[str]]:
    """All events of a recording, its sensor ``(width, height)`` and the reader's
    warnings (e.g. a truncated file's). ``sensor_size``: ``--sensor-size`` for a file
    whose header states none. Raises :class:`DvsstreamError` when it cannot be read."""
    from dvsstream.events import EVENT_DTYPE
    from dvsstream.io import open_file

    try:
        with open_file(path, sensor_size=tuple(sensor_size) if sensor_size else None) as source:
            packets = [p for p in source if len(p)]
            sensor = tuple(int(v) for v in source.sensor_size)
            warnings = list(source.stats.warnings)
    except DvsstreamError:
        raise  # already one line naming the file
    except (OSError, ValueError, RuntimeError) as exc:
        raise DvsstreamError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    events = np.concatenate(packets) if packets else np.zeros(0, EVENT_DTYPE)
    return events, sensor, warnings  # type: ignore[return-value]


@dataclass(frozen=True)
class WindowSource:
    """One recording to cut: its ``path``, the ``label`` of its windows (-1: none) and the
    fraction ``span = (start, end)`` of its time span to cut from (``(0.8, 1.0)``: the
    last 20 %)."""

    path: Path
    label: int = 0
    span: tuple[float, float] = (0.0, 1.0)


class WindowSet(FramesInMemory):
    """Windows held in memory: ``(frames float32 [T, 2, H, W], label)``; ``windows[i]``
    says where window ``i`` came from (``path``, ``t_start``, ``t_end`` µs, ``events``);
    ``binnings`` the live binning used per file; ``skipped`` the unreadable files
    ``(path, why)``; ``classes`` the class names."""

    def __init__(self, frames: list[torch.Tensor], labels: list[int], classes: Sequence[str],
                 windows: list[dict[str, Any]], binnings: dict[str, dict], skipped: list) -> None:
        self.classes = list(classes)  # read by FramesInMemory's constructor
        self._skipped = list(skipped)
        super().__init__(self, frames, labels, torch.float32)
        self.windows, self.binnings = windows, binnings

    @property
    def skipped(self) -> list:
        return list(self._skipped)

    @property
    def targets(self) -> list[int]:
        """The label of every window (as :class:`~dvsstream.datasets.frame_dataset.FrameDataset` has it)."""
        return list(self._labels)

    def subset(self, indices: Sequence[int]) -> "WindowSet":
        """The windows at ``indices`` (same classes and binnings)."""
        return WindowSet([self._frames[i] for i in indices], [self._labels[i] for i in indices], self.classes,
                         [self.windows[i] for i in indices], self.binnings, self._skipped)


@dataclass
class _Cut:
    frames: list[torch.Tensor] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)


def _windows_of(events: np.ndarray, sensor: tuple[int, int], binning: BinningConfig, span: tuple[float, float],
                min_events: int, keep: Optional[Callable[[int], bool]] = None):
    """The whole windows of ``events`` inside the ``span`` fraction of its time range,
    as the live binner emits them: ``(frames [T, 2, H, W], t_start, t_end, events)``."""
    if events.size == 0:
        return
    t0, t1 = int(events["t"][0]), int(events["t"][-1])
    lo = t0 + int(math.floor(span[0] * (t1 - t0)))
    hi = t0 + int(math.ceil(span[1] * (t1 - t0))) + (1 if span[1] >= 1.0 else 0)
    binner = binning.binner(sensor)
    k = 0
    for win in binner((events,), flush=False):
        if win.t_start < lo or win.t_end > hi:
            continue
        if win.events >= min_events and (keep is None or keep(k)):
            yield win.frames, win.t_start, win.t_end, win.events
        k += 1


def recording_windows(
    sources: Sequence[WindowSource],
    classes: Sequence[str],
    base: BinningConfig,
    model_size: Sequence[int],
    *,
    roi: Optional[Sequence[int]] = None,
    resize: Optional[Sequence[int]] = None,
    sensor_size: Optional[Sequence[int]] = None,
    min_events: int = 1,
    keep_fraction: float = 1.0,
    seed: int = 0,
    skip_unreadable: bool = False,
    noise_filter: Any = None,
    say: Callable[[str], Any] = lambda s: None,
    progress: Optional[Callable[[int], Any]] = None,
) -> WindowSet:
    """The windows of every recording in ``sources``, binned with the live binning
    ``base`` (window, bins, hop) and the geometry that feeds a model of input
    ``model_size = (width, height)`` from each file's sensor (``roi`` / ``resize``:
    ``--roi`` / ``--resize``; ``sensor_size``: ``--sensor-size`` for files that state
    none; ``noise_filter``: a :class:`~dvsstream.filters.FilterSpec` the events go through
    first, as ``--filter`` filters a live stream). ``keep_fraction``: keep that random share of the windows (seeded by ``seed``).
    An unreadable file raises :class:`DvsstreamError` naming it, or is skipped (and
    listed in ``skipped``) with ``skip_unreadable``. ``progress(n)``: called after each file."""
    rng = np.random.default_rng(seed)
    keep = None if keep_fraction >= 1.0 else (lambda k: bool(rng.random() < keep_fraction))
    cut, binnings, skipped = _Cut(), {}, []
    for src in sources:
        try:
            events, sensor, warnings = read_recording(src.path, sensor_size)
            binning = live_binning(base, model_size, {}, sensor, roi=roi, resize=resize)
        except (DvsstreamError, ValueError) as exc:
            if not skip_unreadable:
                raise DvsstreamError(f"{exc} (pass --skip-unreadable to leave such files out)") from None
            skipped.append((str(src.path), str(exc)))
            continue
        for w in warnings:
            say(f"warning: {w}")
        if noise_filter:
            events = noise_filter.build(sensor)(events)
        binnings[str(src.path)] = {"sensor_size": list(sensor), **binning.to_dict()}
        for frames, t_start, t_end, n in _windows_of(events, sensor, binning, src.span, min_events, keep):
            cut.frames.append(_compact(torch.from_numpy(frames)))
            cut.labels.append(src.label)
            cut.windows.append({"path": str(src.path), "t_start": t_start, "t_end": t_end, "events": n})
        if progress is not None:
            progress(1)
    return WindowSet(cut.frames, cut.labels, classes, cut.windows, binnings, skipped)
