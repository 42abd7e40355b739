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
        into the recording, when one is being written."""
        with self._rec_lock:
            rec = self._recorder
            if rec is not None:
                rec.write(packet)
                self.events += packet.size
