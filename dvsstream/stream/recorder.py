"""The pipeline's recording: :class:`StreamRecorder` writes every packet the source
thread reads to an HDF5 recording (:class:`~dvsstream.io.hdf5.RecordingWriter`),
before binning, so that it never drops an event; started and stopped from any thread."""

from __future__ import annotations

import json
import threading
from typing import Optional

import numpy as np

__all__ = ["StreamRecorder"]


class StreamRecorder:
    """Records the packets of ``source`` (an open event source of ``sensor_size``
    ``(width, height)``) while started. :attr:`events`: events recorded so far, by every
    recording of this stream."""

    def __init__(self, source, sensor_size) -> None:
        self.source = source
        self.sensor_size = sensor_size
        self._recorder = None
        self._rec_lock = threading.Lock()  # the recorder is written outside the stats lock
        self.events = 0
        self._shift_us = 0  # added to the times after a loop or a seek back (µs)
        self._last_us: Optional[int] = None  # the last time written, shifted (µs)

    def start(self, path, overwrite: bool = False) -> None:
        """Write every packet from now on to an HDF5 recording (none dropped)."""
        from dvsstream.io.hdf5 import RecordingWriter

        if self._recorder is not None:
            raise ValueError(f"already recording to {self._recorder.path}")
        describe = getattr(self.source, "describe", None)
        writer = RecordingWriter(path, self.sensor_size, camera=getattr(self.source, "camera", ""),
                                 overwrite=overwrite,
                                 source=json.dumps(describe(), default=str) if describe else "")
        with self._rec_lock:
            self._recorder = writer
            self._shift_us, self._last_us = 0, None

    def stop(self) -> Optional[str]:
        """Close the recording; its path, or None when none was being written."""
        with self._rec_lock:
            writer, self._recorder = self._recorder, None
        if writer is None:
            return None
        writer.close()
        return str(writer.path)

    @property
    def active(self) -> bool:
        return self._recorder is not None

    def write(self, packet: np.ndarray) -> None:
        """The source thread: ``packet`` (events, :data:`~dvsstream.events.EVENT_DTYPE`)
        into the recording, when one is being written. When the stream's time goes back (a
        looping recording starts again, a seek back), the recording's clock goes on: the
        later events are shifted to follow the last one written."""
        with self._rec_lock:
            rec = self._recorder
            if rec is None or packet.size == 0:
                return
            first = int(packet["t"][0]) + self._shift_us
            if self._last_us is not None and first < self._last_us:
                self._shift_us += self._last_us - first + 1
            if self._shift_us:
                packet = packet.copy()
                packet["t"] += self._shift_us
            rec.write(packet)
            self._last_us = int(packet["t"][-1])
            self.events += packet.size
