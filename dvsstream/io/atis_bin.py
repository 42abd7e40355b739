"""N-MNIST / N-Caltech101 / ATIS ``.bin`` recordings (Garrick Orchard's format).

File layout
-----------
No header, no footer: 5 bytes (40 bits) per event, most significant byte first::

    byte 0        bits 39-32  x (pixels)
    byte 1        bits 31-24  y (pixels)
    byte 2 bit 7  bit  23     polarity: 1 = ON, 0 = OFF
    byte 2 bits 6-0, bytes 3, 4
                  bits 22-0   timestamp (µs): 23 bits, so it wraps every 2**23 µs (8.39 s)

This is the layout of the N-MNIST / N-Caltech101 release notes ("bit 23: Polarity (0 for
OFF, 1 for ON), bit 22 - 0: Timestamp (in microseconds)") and of Orchard's
``Read_Ndataset.m`` (``TD.ts = bitshift(bitand(byte2, 127), 16) + bitshift(byte3, 8) +
byte4``): the timestamp has **23** bits, not 24 (bit 23 is the polarity).

Conventions
-----------
* Polarity as the dataset defines it: ``p = 1`` is ON (dvsstream's channel 1), ``p = 0``
  OFF; the bit is kept as it is (tonic's ``read_mnist_file`` does the same).
* Coordinates as stored, (0, 0) at the top left (N-MNIST digits are upright so).
* Time: the 23-bit counter is unwrapped monotonically across packets: a fall of more than
  half its range (2**22 µs) counts one wrap of 2**23 µs
  (:class:`~dvsstream.events.TimestampUnwrapper`). N-MNIST samples last ~0.3 s and never
  wrap; longer ATIS recordings do. tonic does not unwrap (its times fall back by 8.39 s).
* Overflow markers: a record with ``y == 240`` carries no pixel; Orchard's
  ``eventvision.read_dataset`` and tonic's ``read_mnist_file`` (copied from it) drop it
  and add 2**13 µs to the time of every later event. This reader does the same (counted
  in ``overflow_markers``), so that it gives tonic's events; the datasets' sensors have
  fewer than 240 rows, so their files hold no such record.
* Geometry: 34x34 (N-MNIST) by default; ``sensor_size`` (``--sensor-size``) overrides it.
  The file is scanned once when opened (bounded memory; it also gives ``n_events`` and
  the time range): when its events do not fit 34x34 (N-Caltech101's up to 240x180) and no
  size was given, the sensor grows to max x + 1, max y + 1, with a warning.

A file whose size is not a multiple of 5 (truncated) keeps its complete events, with a
warning. The format has no magic bytes: :func:`dvsstream.io.detect_format` knows it by
its ``.bin`` name.

Verified (``tests/io/test_atis_bin.py``): files written by :func:`write_atis_bin` from
known events (both polarities, x and y up to 255, times past a 23-bit wrap, hand-made
``y == 240`` markers, a truncated tail) are read back by tonic 1.7's ``read_mnist_file``
and by this reader: x, y, p and the marker-shifted times are equal event for event, and
our times equal tonic's plus the 2**23 µs wraps that tonic leaves in (tonic's equal ours
modulo 2**23). The bit layout was checked against Orchard's ``Read_Ndataset.m`` and
``eventvision.py`` (gorchard/event-Python), which tonic's reader follows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from dvsstream.errors import SourceError
from dvsstream.events import EVENT_DTYPE, SensorSize, TimestampUnwrapper, sensor_size_of
from dvsstream.io.aedat2 import DEFAULT_CHUNK_EVENTS, _open_error
from dvsstream.io.base import FileSource, skip_before

__all__ = ["AtisBinSource", "write_atis_bin", "NMNIST_SIZE", "RECORD_BYTES", "TIME_BITS"]

#: bytes per event
RECORD_BYTES = 5
#: width of the stored timestamp (bits 22-0)
TIME_BITS = 23
#: N-MNIST's sensor (the ATIS crop its digits were saccaded in)
NMNIST_SIZE = SensorSize(34, 34)
#: ``y`` of an overflow marker record (eventvision / tonic)
MARKER_Y = 240
#: µs each overflow marker adds to the later times (eventvision / tonic)
MARKER_US = 1 << 13


class AtisBinSource(FileSource):
    """Replay an N-MNIST / N-Caltech101 / ATIS ``.bin`` file (see the module docstring).

    Parameters (besides :class:`~dvsstream.io.base.FileSource`'s ``speed``, ``loop``,
    ``packet_us``, ``start_us``):

    sensor_size: ``(width, height)``; default 34x34 (N-MNIST), grown to the data when
        its events do not fit (with a warning).
    chunk_events: records decoded per packet (bounded memory), default 2**18.

    Attributes: ``n_events`` (pixel events, markers excluded), ``start_time_us`` /
    ``end_time_us`` (first / last event, unwrapped), ``overflow_markers`` (``y == 240``
    records), ``wraps`` (23-bit wraps unwrapped), ``geometry_from`` (``"default"``,
    ``"sensor_size"`` or ``"data"``). Seeking is a linear scan (no index).
    """

    format = "atis-bin"

    def __init__(self, path, *, sensor_size=None, chunk_events: int = DEFAULT_CHUNK_EVENTS,
                 **options) -> None:
        path = Path(path)
        if not path.is_file():
            raise SourceError(f"{path}: no such file")
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise _open_error(path, exc) from None
        given = sensor_size_of(sensor_size) if sensor_size is not None else None
        super().__init__(path, given or NMNIST_SIZE, "ATIS", **options)
        self.chunk_events = max(1, int(chunk_events))
        self._records = size // RECORD_BYTES
        tail = size % RECORD_BYTES
        if tail:
            self.stats.warn(f"{path.name}: the file ends with a partial {tail}-byte event at byte "
                            f"{size - tail} (truncated); the {self._records:,} complete records are read")
        self.geometry_from = "sensor_size" if given else "default"
        self._scan(path, given)

    def _scan(self, path: Path, given: SensorSize | None) -> None:
        """One bounded-memory pass: n_events, time range, markers, wraps and the data's
        extent (which sets the sensor when none was given and 34x34 is too small)."""
        n = w = h = 0
        t0 = t1 = None
        for ev in self._chunks():
            n += ev.size
            if ev.size:
                w, h = max(w, int(ev["x"].max()) + 1), max(h, int(ev["y"].max()) + 1)
                t0 = int(ev["t"][0]) if t0 is None else t0
                t1 = int(ev["t"][-1])
        self.n_events, self.start_time_us, self.end_time_us = n, t0, t1
        if self.overflow_markers:
            self.stats.warn(f"{path.name}: {self.overflow_markers:,} overflow marker record(s) (y = 240) carry no "
                            f"pixel; each adds {MARKER_US} µs to the later times, as tonic reads them")
        if given is None and (w > NMNIST_SIZE.width or h > NMNIST_SIZE.height):
            self.sensor_size = SensorSize(max(w, NMNIST_SIZE.width), max(h, NMNIST_SIZE.height))
            self.geometry_from = "data"
            self.stats.warn(f"{path.name}: events lie outside N-MNIST's 34x34; the sensor is "
                            f"{self.sensor_size.width}x{self.sensor_size.height} from the data (max x + 1, "
                            "max y + 1); pass --sensor-size WxH to set it")

    def describe(self) -> dict:
        info = super().describe()
        info.update(geometry_from=self.geometry_from, overflow_markers=self.overflow_markers, wraps=self.wraps)
        return info

    def _decode(self, raw: np.ndarray) -> np.ndarray:
        """``(n, 5)`` uint8 records -> EVENT_DTYPE (markers dropped; state carried on)."""
        y = raw[:, 1]
        marker = y == MARKER_Y
        n_markers = int(np.count_nonzero(marker))
        ts = ((raw[:, 2].astype(np.int64) & 0x7F) << 16) | (raw[:, 3].astype(np.int64) << 8) | raw[:, 4]
        shift = np.int64(self._marker_shift)
        if n_markers:
            shift = shift + np.cumsum(marker, dtype=np.int64) * MARKER_US
            self._marker_shift += n_markers * MARKER_US
            self.overflow_markers += n_markers
            keep = ~marker
            raw, ts, shift = raw[keep], ts[keep], shift[keep]
        t = self._unwrap(ts) + shift
        self.wraps = self._unwrap.wraps
        ev = np.empty(raw.shape[0], dtype=EVENT_DTYPE)
        ev["t"] = t
        ev["x"] = raw[:, 0]
        ev["y"] = raw[:, 1]
        ev["p"] = raw[:, 2] >> 7
        return ev

    def _chunks(self) -> Iterator[np.ndarray]:
        self._unwrap = TimestampUnwrapper(TIME_BITS)
        self._marker_shift = 0
        self.overflow_markers = self.wraps = 0
        remaining = self._records
        try:
            with open(self.path, "rb") as f:
                while remaining > 0 and not self._closed:
                    n = min(self.chunk_events, remaining)
                    buf = f.read(n * RECORD_BYTES)
                    got = len(buf) // RECORD_BYTES
                    if got == 0:
                        break
                    remaining -= got
                    yield self._decode(np.frombuffer(buf, np.uint8, got * RECORD_BYTES).reshape(got, RECORD_BYTES))
                    if got < n:  # the file shrank while we read it
                        self.stats.warn(f"{Path(self.path).name}: the file ended early while reading")
                        break
        except OSError as exc:
            raise _open_error(Path(self.path), exc) from None

    def _read(self, start_us: int | None) -> Iterator[np.ndarray]:
        return skip_before(self._chunks(), start_us)


def write_atis_bin(path, events: np.ndarray) -> Path:
    """Write events as an N-MNIST / ATIS ``.bin`` file, the inverse of
    :class:`AtisBinSource`: times are stored modulo 2**23 µs (they wrap as the sensor's
    do; a reader unwraps a gap shorter than 2**22 µs between events), ``p != 0`` as ON.

    ``events``: structured array with fields t (µs, >= 0, sorted), x, y (< 256, y != 240,
    which would read as an overflow marker), p. Returns the path."""
    from dvsstream.events import as_events, is_sorted

    path = Path(path)
    ev = as_events(np.asarray(events))
    if ev.size and (int(ev["x"].max()) > 255 or int(ev["y"].max()) > 255):
        raise ValueError("ATIS .bin events hold x, y < 256")
    if np.any(ev["y"] == MARKER_Y):
        raise ValueError("y = 240 is read as an overflow marker in ATIS .bin files")
    if ev.size and (int(ev["t"][0]) < 0 or not is_sorted(ev)):
        raise ValueError("write_atis_bin needs events sorted by time, from t >= 0")
    t = ev["t"].astype(np.int64) & ((1 << TIME_BITS) - 1)
    rec = np.empty((ev.size, RECORD_BYTES), np.uint8)
    rec[:, 0] = ev["x"]
    rec[:, 1] = ev["y"]
    rec[:, 2] = ((ev["p"] != 0).astype(np.int64) << 7) | (t >> 16)
    rec[:, 3] = (t >> 8) & 0xFF
    rec[:, 4] = t & 0xFF
    with open(path, "wb") as f:
        f.write(rec.tobytes())
    return path

