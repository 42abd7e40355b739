"""Replay of dvsstream HDF5 recordings (written by
:class:`dvsstream.io.recording.RecordingWriter`), with indexed seeking."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from dvsstream.io.recording import RecordingReader
from dvsstream.io.base import FileSource

__all__ = ["HDF5Source"]

#: events per packet when replaying (4 HDF5 chunks of the default size)
DEFAULT_PACKET_EVENTS = 1 << 18


class HDF5Source(FileSource):
    """Replay a dvsstream HDF5 recording.

    Parameters (besides ``speed``, ``loop``, ``packet_us``, ``start_us`` of
    :class:`~dvsstream.io.base.FileSource`):

    packet_events: events per packet read from the file (bounded memory).

    ``sensor_size``, ``camera``, ``n_events``, ``start_time_us``,
    ``end_time_us``, ``labels`` and ``class_names`` come from the file. Seeking
    (``start_us=`` or :meth:`seek`) uses the file's time index: it reads one
    index bucket, not the events before the target.
    Raises :class:`~dvsstream.errors.FormatError` for a file that is not a
    readable dvsstream recording.
    """

    format = "hdf5"

    def __init__(self, path, *, packet_events: int = DEFAULT_PACKET_EVENTS, **options) -> None:
        reader = RecordingReader(path)
        try:
            super().__init__(path, reader.sensor_size, reader.camera, **options)
        except Exception:
            reader.close()
            raise
        self.reader = reader
        self.packet_events = max(1, int(packet_events))
        self.n_events = reader.n_events
        self.start_time_us = reader.start_time_us
        self.end_time_us = reader.end_time_us
        self.labels = reader.labels if reader.labels.size else None
        self.class_names = list(reader.class_names)

    def describe(self) -> dict:
        info = super().describe()
        info.update(wall_clock_start=self.reader.wall_clock_start, source=self.reader.source,
                    class_names=self.class_names)
        return info

    def close(self) -> None:
        super().close()
        self.reader.close()

    def _read(self, start_us: int | None) -> Iterator[np.ndarray]:
        reader, step = self.reader, self.packet_events
        lo = reader.seek(start_us)
        for a in range(lo, reader.n_events, step):
            if self._closed:  # closed from another thread (GUI): stop before touching the file
                return
            yield reader.read_range(a, min(a + step, reader.n_events))
