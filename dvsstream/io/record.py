"""Copying events to a new dvsstream HDF5 recording: :func:`record` (any
:class:`~dvsstream.io.base.EventSource`: a camera, a network stream, a synthetic
stream, a file; with a duration, a region of interest, a declared sensor) and
:func:`convert` (any readable recording file, keeping every event). The file
format itself is :mod:`dvsstream.io.hdf5`.

This module sits above every source (it opens files through :mod:`dvsstream.io`):
no other io module imports it.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from dvsstream.errors import DvsstreamError
from dvsstream.events import sensor_size_of
from dvsstream.fileio import check_not_an_input, temporary_beside
from dvsstream.filters import parse_filter
from dvsstream.io import SIZED_BY_USER, detect_format, open_file
from dvsstream.io.base import LABEL_DTYPE, wall_deadline
from dvsstream.io.hdf5 import RecordingWriter

__all__ = ["record", "convert"]


# ============================================================================ record()
def _check_not_the_source(source, path) -> Path:
    """``Path(path)``, unless it is the file ``source`` reads (same path or inode):
    writing it would destroy the input."""
    target = Path(path)
    check_not_an_input(target, [getattr(source, "path", None)], "recording")
    return target


def _finish(writer: RecordingWriter, target: Path, replacing: bool) -> None:
    """Close ``writer``; when it wrote beside ``target`` (``replacing``), rename its file
    over ``target`` (the old file stays whole until then)."""
    try:
        writer.close()
    except BaseException:
        _discard(writer, replacing)
        raise
    if replacing:
        os.replace(writer.path, target)


def _discard(writer: RecordingWriter, replacing: bool) -> None:
    """After a failure: close ``writer``; a file written beside the old one is deleted
    (a new recording keeps what was flushed, as after a crash)."""
    try:
        writer.close()
    finally:
        if replacing and writer.path.exists():
            writer.path.unlink()


def _crop(packet: np.ndarray, roi: tuple[int, int, int, int], outside: list) -> np.ndarray:
    """The events of ``packet`` inside ``roi = (x0, y0, w, h)``, shifted to the region's
    origin (a copy); ``outside[0]`` counts the others."""
    x0, y0, rw, rh = roi
    x = packet["x"].astype(np.int64)
    y = packet["y"].astype(np.int64)
    keep = (x >= x0) & (x < x0 + rw) & (y >= y0) & (y < y0 + rh)
    outside[0] += int(packet.size - np.count_nonzero(keep))
    out = packet[keep]
    out["x"] -= x0
    out["y"] -= y0
    return out


def record(
    source,
    path,
    duration_s: float | None = None,
    progress: Callable[[dict], None] | None = None,
    roi: tuple[int, int, int, int] | None = None,
    sensor_size=None,
    description: str | None = None,
    event_filter=None,
    **writer_options,
) -> dict:
    """Copy events from any :class:`~dvsstream.io.base.EventSource` into a
    new HDF5 recording at ``path``.

    duration_s: stop once **event time** has advanced this far past the first
        event (events with ``t >= t_first + duration``, are not written). Event
        time works the same for live sources (where it follows the wall clock)
        and for replays at any speed. A real-time source also stops at its
        :func:`~dvsstream.io.base.wall_deadline` (a camera watching a still
        scene sends no events to show its clock). ``None``: until the source ends.
    progress: called with a summary dict (see below) at most 10 times a second
        and once at the end.
    roi: ``(x0, y0, w, h)``: write only the events of this region of the sensor,
        shifted to ``(x - x0, y - y0)``, as a ``w x h`` recording; the others are
        counted in ``outside_roi`` (never silently dropped). ``ValueError`` for a region
        outside the sensor.
    sensor_size: ``(width, height)``, the recording's sensor when not the source's
        (without ``roi``); it grows to hold every event written, and the summary
        counts the events past it in ``outside_declared`` (:func:`convert` reads a
        file on a sensor large enough for any event and declares the file's own).
    description: the recording's ``source`` attribute (default: the source's
        ``describe()`` as JSON).
    event_filter: a ``--filter`` (text or :class:`~dvsstream.filters.FilterSpec`), applied
        before the region (see :func:`_build_filter`).
    writer_options: passed to :class:`RecordingWriter` (``overwrite``,
        ``compression``, ``flush_interval_s``...).

    Ctrl-C (``KeyboardInterrupt``) stops the recording; the file is closed
    cleanly with every event received so far, and the summary says
    ``interrupted: True``. The source is not closed (the caller owns it).
    Labels and class names of a file source are copied for the recorded span.

    Returns ``{"path", "events", "packets", "start_time_us", "end_time_us",
    "duration_s", "wall_s", "out_of_bounds", "out_of_order", "warnings",
    "interrupted", "outside_roi", "sensor", "file_bytes", "filtered", "filter"}`` (and
    ``outside_declared`` with ``sensor_size``); ``duration_s`` is the event-time span written, ``sensor``
    the recording's ``(width, height)``.
    """
    roi, sensor, desc, extent = _recording_sensor(source, roi, sensor_size, description)
    event_filter = _build_filter(event_filter, source, sensor_size, writer_options)
    writer, target, replacing = _open_writer(source, path, sensor, desc, writer_options)
    tally = _Tally(source, writer, target, event_filter)
    deadline = wall_deadline(source, duration_s)
    try:
        try:
            _copy_events(source, writer, tally, deadline, duration_s, roi, extent, progress)
        except KeyboardInterrupt:
            tally.interrupted = True
        _copy_labels(source, writer)
    except KeyboardInterrupt:  # a second Ctrl-C while copying labels
        tally.interrupted = True
    except BaseException:
        _discard(writer, replacing)
        raise
    if extent.outside:
        writer.grow_sensor(extent.size)
    _finish(writer, target, replacing)
    result = tally.summary()
    result["sensor"] = tuple(writer.sensor_size)
    if extent.declared is not None:
        result["outside_declared"] = extent.outside
    try:
        result["file_bytes"] = os.path.getsize(target)
    except OSError:
        result["file_bytes"] = None
    if progress is not None:
        progress(result)
    return result


def _recording_sensor(source, roi, sensor_size, description: str | None) -> tuple:
    """What :func:`record` writes ``source`` as: ``(roi, sensor, description, extent)``,
    the region checked against the source's sensor (``None`` without one), the
    recording's ``(width, height)``, its ``source`` attribute and the :class:`_Extent`
    that tracks events past a declared ``sensor_size``."""
    try:
        desc = description if description is not None else json.dumps(source.describe(), default=str)
    except Exception:  # describe() is a courtesy, never a reason to fail
        desc = type(source).__name__
    sensor = source.sensor_size
    if roi is not None:
        from dvsstream.binning.region import check_region  # numba: only when cropping

        roi = check_region(roi, sensor)
        desc = json.dumps({"cropped_from": desc, "roi": list(roi)})
        sensor = roi[2:]
    extent = _Extent(sensor_size if roi is None else None)
    if extent.declared is not None:
        sensor = extent.declared
    return roi, sensor, desc, extent


def _build_filter(event_filter, source, sensor_size, writer_options: dict):
    """:func:`record`'s noise filter, or None: ``event_filter`` built on ``sensor_size``,
    else the source's sensor (events outside it are removed); the summary counts the
    events it removes in ``filtered`` and the file keeps its spec in the
    ``noise_filter`` attribute."""
    spec = parse_filter(event_filter)
    if spec:
        writer_options.setdefault("noise_filter", str(spec))
    return spec.build(sensor_size if sensor_size is not None else source.sensor_size)


def _open_writer(source, path, sensor, desc: str, writer_options: dict) -> tuple[RecordingWriter, Path, bool]:
    """:func:`record`'s writer for ``source`` on ``sensor`` ``(width, height)``, with its
    description and class names unless ``writer_options`` name them: ``(writer, target,
    replacing)``; when an existing ``target`` is overwritten (``replacing``), the writer
    writes beside it (:func:`_finish` renames the file once complete)."""
    writer_options.setdefault("source", desc)
    class_names = getattr(source, "class_names", None)
    if class_names and "class_names" not in writer_options:
        writer_options["class_names"] = list(class_names)
    target = _check_not_the_source(source, path)
    # --force: the new recording goes beside the old one and replaces it once complete
    replacing = bool(writer_options.get("overwrite")) and target.exists()
    writer = RecordingWriter(temporary_beside(target) if replacing else target, sensor,
                             getattr(source, "camera", ""), **writer_options)
    return writer, target, replacing


class _Tally:
    """What :func:`record` has done so far: packets written, events outside the region
    (``outside[0]``), whether Ctrl-C stopped it; :meth:`summary` is its summary dict."""

    def __init__(self, source, writer: RecordingWriter, target: Path, event_filter=None) -> None:
        self.source, self.writer, self.target = source, writer, target
        self.wall0 = time.monotonic()
        self.packets = 0
        self.outside = [0]
        self.interrupted = False
        self.event_filter = event_filter  # the --filter's EventFilter, when there is one

    def summary(self) -> dict:
        stats = getattr(self.source, "stats", None)
        writer = self.writer
        start, end = writer.start_time_us, writer.last_t
        return {
            "path": str(self.target),
            "events": writer.n_events,
            "packets": self.packets,
            "start_time_us": start,
            "end_time_us": end,
            "duration_s": 0.0 if start is None else (end - start) / 1e6,
            "wall_s": time.monotonic() - self.wall0,
            "out_of_bounds": getattr(stats, "out_of_bounds", 0),
            "out_of_order": getattr(stats, "out_of_order", 0),
            "warnings": list(getattr(stats, "warnings", [])),
            "interrupted": self.interrupted,
            "outside_roi": self.outside[0],
            "filtered": self.event_filter.events_removed if self.event_filter is not None else 0,
            "filter": self.event_filter.spec if self.event_filter is not None else "none",
        }


def _copy_events(source, writer: RecordingWriter, tally: _Tally, deadline: float | None,
                 duration_s: float | None, roi, extent: _Extent,
                 progress: Callable[[dict], None] | None) -> None:
    """:func:`record`'s copy: ``source``'s packets (until ``deadline``, see
    :func:`_packets_until`) written up to ``duration_s`` of event time after the first
    event, cropped to ``roi``; ``progress`` gets the summary at most 10 times a second."""
    stop_t: int | None = None
    last_progress = 0.0
    for packet in _packets_until(source, deadline):
        if packet.size == 0:
            continue
        last = False
        if duration_s is not None:  # event time of the stream, before any crop
            if stop_t is None:
                stop_t = int(packet["t"][0]) + int(round(duration_s * 1e6))
            if packet["t"][-1] >= stop_t:
                packet = packet[: int(np.searchsorted(packet["t"], stop_t, side="left"))]
                last = True
        if tally.event_filter is not None:
            packet = tally.event_filter(packet)
        if roi is not None:
            packet = _crop(packet, roi, tally.outside)
        if packet.size:
            writer.write(packet)
            extent.see(packet)
            tally.packets += 1
        if last:
            break
        if progress is not None and time.monotonic() - last_progress >= 0.1:
            last_progress = time.monotonic()
            progress(tally.summary())


def _copy_labels(source, writer: RecordingWriter) -> None:
    """The labels of ``source`` (a file's label track, absolute µs) that overlap the
    recorded span ``[writer.start_time_us, writer.last_t]``."""
    labels = getattr(source, "labels", None)
    if labels is not None and len(labels) and writer.start_time_us is not None:
        for start, end, label in np.asarray(labels, dtype=LABEL_DTYPE).tolist():
            if end > writer.start_time_us and start <= writer.last_t:
                writer.add_label(start, end, label)


class _Extent:
    """What :func:`record` wrote past a ``declared`` sensor (None: nothing to track):
    ``size``, the ``(max x + 1, max y + 1)`` of the events written (at least the
    declared sensor), and ``outside``, how many lay past it."""

    def __init__(self, declared) -> None:
        self.declared = sensor_size_of(declared) if declared is not None else None
        self.size = tuple(self.declared) if self.declared is not None else (0, 0)
        self.outside = 0

    def see(self, packet: np.ndarray) -> None:
        if self.declared is None:
            return
        w, h = self.declared
        x, y = packet["x"], packet["y"]
        mx, my = int(x.max()), int(y.max())
        if mx >= w or my >= h:
            self.outside += int(np.count_nonzero((x >= w) | (y >= h)))
            self.size = (max(self.size[0], mx + 1), max(self.size[1], my + 1))


def _packets_until(source, deadline: float | None) -> Iterator[np.ndarray]:
    """``source``'s packets until it ends or, with a ``deadline`` (``time.monotonic()``),
    until the wall clock passes it: the source is then read in a helper thread, so that
    waiting for a packet that never comes ends too. The helper stops reading after this
    generator is closed; the source itself stays open (its owner closes it, which ends
    a live source's wait)."""
    if deadline is None:
        yield from source
        return
    packets: queue.Queue = queue.Queue()
    stop = threading.Event()
    end = object()

    def pump() -> None:
        try:
            for packet in source:
                if stop.is_set():
                    return
                packets.put(packet)
        except BaseException as exc:  # raised again in the recording thread
            packets.put((end, exc))
        finally:
            packets.put(end)

    threading.Thread(target=pump, name="record-read", daemon=True).start()
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = packets.get(timeout=min(left, 0.25))
            except queue.Empty:
                continue
            if item is end:
                return
            if isinstance(item, tuple):
                raise item[1]
            yield item
    finally:
        stop.set()


# ============================================================================ convert()
def convert(path, out, *, overwrite: bool = False, roi: tuple[int, int, int, int] | None = None,
            progress: Callable[[dict], None] | None = None, sensor_size=None, event_filter=None) -> dict:
    """Convert the recording at ``path`` (any readable format) to a dvsstream HDF5 file
    ``out``, keeping **every** event: when events lie outside the sensor the file
    declares (or the reader assumes, e.g. 128x128 for ``.npy``), the recording's sensor
    grows to hold them (``summary["sensor_grown_from"]`` = the declared ``(w, h)``), in
    one pass over the file; a reader that cannot grow it (the size is in the file) makes
    this a one-line :class:`DvsstreamError` unless ``roi`` says which region to keep
    (the rest counted).

    The file is written beside ``out`` and renamed onto it once complete: an existing
    ``out`` (``overwrite``) stays whole until then; the input is never written.
    ``sensor_size`` (``--sensor-size``): the sensor of a Prophesee or ``.npy`` file whose
    header states none (see :func:`~dvsstream.io.open_file`). ``event_filter``
    (``--filter``): write only the events the noise filters keep (:func:`record`); their
    state lives on the declared sensor, so events past it are removed, not kept.
    Returns :func:`record`'s summary plus ``sensor`` ``(w, h)``."""
    target = Path(out)
    if target.exists() and not overwrite:
        raise DvsstreamError(f"{target}: already exists; choose another name or pass --force to replace it")
    tmp = temporary_beside(target)
    try:
        if roi is None and detect_format(path) in SIZED_BY_USER:
            summary = _convert_growing(path, target, tmp, sensor_size, progress, event_filter)
        else:
            summary = _convert_declared(path, target, tmp, roi, sensor_size, progress, event_filter)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    summary["path"] = str(target)
    summary["file_bytes"] = os.path.getsize(target)
    return summary


def _convert_declared(path, target: Path, tmp: Path, roi, sensor_size, progress, event_filter=None) -> dict:
    """:func:`convert` on the file's own sensor: with ``roi``, the region (what lies
    outside the sensor is outside the region too); without, every event must fit."""
    with open_file(path, sensor_size=sensor_size) as source:
        _check_not_the_source(source, target)
        declared = tuple(source.sensor_size)
        summary = record(source, tmp, roi=roi, progress=progress, event_filter=event_filter)
        dropped = source.stats.out_of_bounds
    if dropped and roi is None:
        w, h = declared
        raise DvsstreamError(
            f"{path}: {dropped:,} events lie outside the {w}x{h} sensor the file declares; nothing written. "
            f"Pass --roi 0,0,{w},{h} to keep the sensor's events only (the others counted)")
    if dropped:
        summary["outside_roi"] += dropped
        summary["warnings"] = [m for m in summary["warnings"] if "were dropped" not in m]
    return summary


def _convert_growing(path, target: Path, tmp: Path, sensor_size, progress, event_filter=None) -> dict:
    """:func:`convert` for a reader that takes its sensor from the user: read once on a
    sensor large enough for any uint16 coordinate, written with the file's declared
    sensor grown to hold every event (its opening's warnings and description kept)."""
    with open_file(path, sensor_size=sensor_size) as probe:  # the header (a scan when it states no size)
        _check_not_the_source(probe, target)
        declared, warnings = tuple(probe.sensor_size), list(probe.stats.warnings)
        desc = json.dumps(probe.describe(), default=str)
    with open_file(path, sensor_size=(1 << 16, 1 << 16)) as source:
        source.stats.warnings[:] = warnings  # not "sensor_size=65536x65536 overrides ..."
        summary = record(source, tmp, progress=progress, sensor_size=declared, description=desc,
                         event_filter=event_filter)
    if summary["outside_declared"]:
        summary["sensor_grown_from"] = declared
    return summary
