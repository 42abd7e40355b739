"""The display's view of the stream: :class:`EventImage`, the ON/OFF event counts of
the last window at full sensor resolution, which the window draws behind the model's
region (the model's own input is binned separately, at its size)."""

from __future__ import annotations

import math
import threading
from typing import Optional

import numpy as np

from dvsstream.binning import StreamingBinner, Window

__all__ = ["DISPLAY_BIN_US", "EventImage"]

#: display accumulation bins are at most this long (µs): the event view updates ~100/s
DISPLAY_BIN_US = 10_000


class EventImage:
    """ON/OFF event counts of the last ``window_us``, at full sensor resolution, updated
    every ``bin_us`` (about 10 ms) of stream time: what the GUI draws.

    A :class:`StreamingBinner` with short bins emits only its new bins; a running sum over
    the last ``window_us / bin_us`` of them is the accumulation image ``[2, H, W]`` (from
    the first bin on: the image fills up during the first window)."""

    def __init__(self, sensor_size, window_us: int, bin_us_max: int = DISPLAY_BIN_US) -> None:
        n = max(1, math.ceil(window_us / bin_us_max))
        while window_us % n:
            n += 1
        self.n = n
        self._binner = StreamingBinner(sensor_size, window_us, n, window_us // n, emit="new", emit_partial=True)
        w, h = self._binner.sensor_size
        self._ring = np.zeros((n, 2, h, w), np.float32)
        self._pos = 0
        self.image = np.zeros((2, h, w), np.float32)
        self.t_end: Optional[int] = None
        self._lock = threading.Lock()

    def read(self) -> tuple[np.ndarray, Optional[int]]:
        """A copy of the image ``[2, H, W]`` and its end time (µs), consistent."""
        with self._lock:
            return self.image.copy(), self.t_end

    def push(self, packet: np.ndarray) -> bool:
        """Bin a packet; True when the image changed."""
        windows = self._binner.push(packet)
        if not windows:
            return False
        with self._lock:
            for win in windows:
                self._update(win)
        return True

    def _update(self, win: Window) -> None:
        if win.gap_before or win.new_bins >= self.n:
            self._ring[:] = 0
            self.image[:] = 0
        for f in win.frames[-self.n:]:
            self.image -= self._ring[self._pos]
            self._ring[self._pos] = f
            self.image += f
            self._pos = (self._pos + 1) % self.n
        self.t_end = win.t_end

