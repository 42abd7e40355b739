"""AEDAT 4 recordings (DV software, dv-processing), read with
``dv_processing.io.MonoCameraRecording``.

The file's event stream (``events``) is read batch by batch (as stored,
LZ4/zstd-decompressed by dv-processing) and batches are merged into packets
of about ``chunk_events`` events, so memory stays bounded. Camera name and
resolution come from the file. x, y are as stored (DV's convention: (0, 0) is
the top-left pixel). Other streams (triggers, frames, IMU) are ignored.

A truncated AEDAT 4 file cannot be read at all: dv-processing needs the
packet table at the file's end; such a file raises :class:`FormatError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from dvsstream.errors import FormatError, SourceError
from dvsstream.events import EVENT_DTYPE, sensor_size_of
from dvsstream.io.aedat2 import DEFAULT_CHUNK_EVENTS
from dvsstream.io.base import FileSource

__all__ = ["Aedat4Source", "write_aedat4"]


def _reason(exc: Exception) -> str:
    """A one-line reason from a dv-processing exception (which carries a
    C++ location and a stack trace)."""
    text = str(exc)
    for line in text.splitlines():
        if "Error info:" in line:
            return line.split("Error info:", 1)[1].strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("/") and not line.startswith("Stacktrace"):
            return line
    return type(exc).__name__


def _to_events(store) -> np.ndarray:
    a = store.numpy()
    ev = np.empty(a.shape[0], dtype=EVENT_DTYPE)
    ev["t"] = a["timestamp"]
    ev["x"] = a["x"]
    ev["y"] = a["y"]
    ev["p"] = a["polarity"] != 0
    return ev


class Aedat4Source(FileSource):
    """Replay an AEDAT 4 recording's event stream.

    Parameters (besides ``speed``, ``loop``, ``packet_us``, ``start_us``):

    stream: the event stream's name (default ``"events"``).
    chunk_events: events per packet at most (stored batches are merged up to it
        and large ones split).

    ``start_time_us`` / ``end_time_us`` are the recording's time range from the
    file's table (all streams); ``n_events`` stays None (it would need a full
    decompression pass). Seeking skips whole stored batches before
    ``start_us`` without converting them.
    """

    format = "aedat4"

    def __init__(
        self,
        path,
        *,
        stream: str = "events",
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        **options,
    ) -> None:
        path = Path(path)
        try:
            import dv_processing as dv
        except ImportError:  # pragma: no cover - a hard dependency
            raise SourceError(f"{path}: reading AEDAT 4 needs dv-processing (pip install dv-processing)") from None
        if not path.is_file():
            raise SourceError(f"{path}: no such file")
        self._dv = dv
        try:
            reader = dv.io.MonoCameraRecording(str(path))
        except Exception as exc:  # dv-processing raises RuntimeError for everything
            raise FormatError(
                f"{path}: not a readable AEDAT 4 file ({_reason(exc)}); truncated or corrupt? "
                "re-export it with the DV software"
            ) from None
        try:
            has_events = reader.isStreamAvailable(stream) and reader.isStreamOfEventType(stream)
        except Exception:
            has_events = False
        if not has_events:
            names = ", ".join(reader.getStreamNames()) or "none"
            raise FormatError(f"{path}: the recording has no '{stream}' event stream (streams: {names})")
        try:
            resolution = reader.getEventResolution()
        except Exception:
            resolution = None
        if not resolution:
            raise FormatError(f"{path}: the event stream does not state its resolution")
        super().__init__(path, sensor_size_of(tuple(resolution)), reader.getCameraName(), **options)
        self.stream = stream
        self.chunk_events = max(1, int(chunk_events))
        self._reader = reader
        try:
            start, end = reader.getTimeRange()
            self.start_time_us, self.end_time_us = int(start), int(end)
        except Exception:
            pass

    def close(self) -> None:
        super().close()
        self._reader = None

    def _batches(self, reader) -> Iterator:
        while True:
            try:
                store = reader.getNextEventBatch(self.stream)
            except Exception as exc:
                raise FormatError(f"{self.path}: reading events failed ({_reason(exc)}); the file may be corrupt") from None
            if store is None:
                return
            yield store

    def _read(self, start_us: int | None) -> Iterator[np.ndarray]:
        reader = self._reader
        if reader is None:
            return
        reader.resetSequentialRead()
        pending: list[np.ndarray] = []
        n_pending = 0
        for store in self._batches(reader):
            if self._closed:
                return
            if store.isEmpty():
                continue
            if start_us is not None:
                if store.getHighestTime() < start_us:
                    continue  # a whole batch before the seek point: not even converted
                ev = _to_events(store)
                if int(ev["t"][0]) < start_us:
                    ev = ev[np.searchsorted(ev["t"], start_us, side="left"):]
                start_us = None
            else:
                ev = _to_events(store)
            pending.append(ev)
            n_pending += ev.size
            if n_pending >= self.chunk_events:
                merged = np.concatenate(pending) if len(pending) > 1 else pending[0]
                for i in range(0, merged.size, self.chunk_events):
                    yield merged[i : i + self.chunk_events]
                pending, n_pending = [], 0
        if pending:
            yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def write_aedat4(path, events: np.ndarray, sensor_size, camera: str = "dvsstream") -> Path:
    """Write events to an AEDAT 4 file with an event stream only (LZ4), via
    ``dv_processing.io.MonoCameraWriter``.

    ``events``: structured array with fields t, x, y, p, sorted by time
    (dv-processing requires monotone timestamps). ``sensor_size``:
    ``(width, height)``. dv-processing has no numpy constructor for its event
    containers, so events go through Python objects: about 2 M events/s,
    fine for tests and fake datasets. Returns the path."""
    import dv_processing as dv

    from dvsstream.events import as_events, is_sorted

    path = Path(path)
    ev = as_events(np.asarray(events))
    if not is_sorted(ev):
        raise ValueError("write_aedat4 needs events sorted by time")
    w, h = sensor_size_of(sensor_size)
    config = dv.io.MonoCameraWriter.EventOnlyConfig(camera, (w, h))
    writer = dv.io.MonoCameraWriter(str(path), config)
    step = 10_000  # events per stored packet
    for i in range(0, ev.size, step):
        part = ev[i : i + step]
        vector = dv.EventPacket.EventVector(
            map(dv.Event, part["t"].tolist(), part["x"].tolist(), part["y"].tolist(), (part["p"] != 0).tolist())
        )
        writer.writeEventPacket(dv.EventPacket(vector))
    del writer  # flushes and writes the file table
    return path
