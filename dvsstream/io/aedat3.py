"""AEDAT 3.1 (cAER / libcaer) recordings: the raw DVS128 Gesture release
(``userXX_lighting.aedat`` + ``userXX_lighting_labels.csv``).

File layout
-----------
ASCII header lines, each starting with ``#`` and ending with ``\\r\\n``: first
``#!AER-DAT3.1``, then e.g. ``#Format: RAW``, ``#Source 1: DVS128``,
``#Start-Time: ...``, last ``#!END-HEADER``. Then event packets, little-endian,
each a 28-byte header::

    int16 eventType   (1 = polarity; 0 = special; others: frames, IMU ...)
    int16 eventSource
    int32 eventSize   (bytes per event; 8 for polarity)
    int32 eventTSOffset  (4: the timestamp follows the data word)
    int32 eventTSOverflow
    int32 eventCapacity  (events stored; equal to eventNumber in files)
    int32 eventNumber
    int32 eventValid

followed by ``eventCapacity * eventSize`` bytes. A polarity event is
``uint32 data, int32 timestamp``::

    bit  0       valid mark (invalid events are skipped)
    bit  1       polarity (1 = ON)
    bits 2..16   y
    bits 17..31  x

and its time in µs is ``(eventTSOverflow << 31) | timestamp``. x and y are the
raw addresses (as tonic's ``read_dvs_ibm``); ``flip_x`` / ``flip_y`` mirror them.
Packets of other types are skipped and counted in ``self.skipped_events``
(per type) and a warning.

Labels
------
A sibling ``<stem>_labels.csv`` (header ``class,startTime_usec,endTime_usec``,
DVS128 Gesture class ids 1..11) is loaded into ``self.labels``
(:data:`~dvsstream.io.base.LABEL_DTYPE`) with the **0-based** label
``class - 1``, i.e. the index into tonic's ``DVSGesture.classes``; start/end
are in the events' timebase.
"""

from __future__ import annotations

import csv
import datetime
import struct
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

from dvsstream.errors import FormatError
from dvsstream.events import EVENT_DTYPE, DVS128, as_events, sensor_size_of
from dvsstream.io.aedat2 import DEFAULT_CHUNK_EVENTS, _open_error, read_header_lines
from dvsstream.io.base import LABEL_DTYPE, FileSource, skip_before

__all__ = [
    "Aedat31Source",
    "write_aedat31",
    "read_gesture_labels",
    "labels_path_for",
    "PACKET_HEADER",
    "POLARITY_RECORD",
]

#: the 28-byte little-endian event packet header
PACKET_HEADER = struct.Struct("<hhiiiiii")
#: one polarity event on disk
POLARITY_RECORD = np.dtype([("data", "<u4"), ("ts", "<i4")])

POLARITY_EVENT = 1
_TS_OVERFLOW_SHIFT = 31
_END_HEADER = b"#!END-HEADER"
#: a packet larger than this is taken as a corrupt header
_MAX_PACKET_BYTES = 1 << 30

#: known cAER source names -> (width, height)
_SENSOR_SIZES = (
    ("DVS128", (128, 128)),
    ("DAVIS240", (240, 180)),
    ("DAVIS346", (346, 260)),
    ("DAVIS640", (640, 480)),
    ("DVS132S", (132, 104)),
)

_TYPE_NAMES = {0: "special", 2: "frame", 3: "IMU6", 4: "IMU9", 5: "sample", 6: "ear", 7: "config", 8: "point1D"}


def labels_path_for(path) -> Path:
    """``user01_fluorescent.aedat`` -> ``user01_fluorescent_labels.csv``."""
    path = Path(path)
    return path.with_name(path.stem + "_labels.csv")


def read_gesture_labels(csv_path) -> np.ndarray:
    """Read a DVS128 Gesture labels CSV (``class,startTime_usec,endTime_usec``,
    class ids 1..11) into a :data:`LABEL_DTYPE` array with 0-based labels
    (``class - 1``). Raises :class:`FormatError` for a malformed file."""
    csv_path = Path(csv_path)
    rows = []
    try:
        with open(csv_path, newline="") as f:
            for n, row in enumerate(csv.reader(f), start=1):
                row = [c.strip() for c in row]
                if not row or not any(row):
                    continue
                if n == 1 and not row[0].lstrip("-").isdigit():
                    continue  # the header line
                if len(row) < 3:
                    raise ValueError(f"line {n} has {len(row)} column(s), expected 3")
                cls, start, end = int(row[0]), int(row[1]), int(row[2])
                if cls < 1:
                    raise ValueError(f"line {n} has class {cls}; DVS128 Gesture class ids start at 1")
                if end < start:
                    raise ValueError(f"line {n} ends before it starts")
                rows.append((start, end, cls - 1))
    except ValueError as exc:
        raise FormatError(f"{csv_path}: not a class,startTime_usec,endTime_usec labels file ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{csv_path}: cannot be read as a labels CSV ({exc})") from None
    return np.array(rows, dtype=LABEL_DTYPE)


def _sensor_for(source_name: str):
    upper = source_name.upper()
    for prefix, size in _SENSOR_SIZES:
        if upper.startswith(prefix):
            return size
    return None


class Aedat31Source(FileSource):
    """Replay an AEDAT 3.1 recording (polarity events).

    Parameters (besides ``speed``, ``loop``, ``packet_us``, ``start_us``):

    sensor_size: ``(width, height)``; default from the header's ``#Source``
        line (DVS128 -> 128x128, DAVIS240 -> 240x180, DAVIS346 -> 346x260),
        128x128 when unknown.
    flip_x, flip_y: mirror the axes; default raw addresses.
    chunk_events: about this many events are decoded per packet (bounded memory).
    labels: load a sibling ``<stem>_labels.csv`` when present (default True).

    Attributes: ``header`` (lines without ``#``), ``labels`` (or None),
    ``skipped_events`` (``Counter`` of non-polarity event type -> events,
    for the current pass). ``n_events`` and the time range are not known
    without reading the whole file and stay None. Seeking is a linear scan.
    """

    format = "aedat3.1"

    def __init__(
        self,
        path,
        *,
        sensor_size=None,
        flip_x: bool = False,
        flip_y: bool = False,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        labels: bool = True,
        **options,
    ) -> None:
        path = Path(path)
        try:
            with open(path, "rb") as f:
                if not f.read(12).startswith(b"#!AER-DAT3"):
                    raise FormatError(f"{path}: not an AEDAT 3.1 file (no #!AER-DAT3.1 line at the start)")
                header, data_start = read_header_lines(path, f, end_marker=_END_HEADER)
                first = f.read(PACKET_HEADER.size)
        except OSError as exc:
            raise _open_error(path, exc) from None
        fields = {}
        for line in header:
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip().lower(), value.strip())
        fmt = fields.get("format", "RAW")
        if fmt.upper() != "RAW":
            raise FormatError(
                f"{path}: AEDAT 3.1 with '#Format: {fmt}' is not supported (only RAW); "
                "re-export it uncompressed with the DV software"
            )
        source = next((v for k, v in fields.items() if k.startswith("source")), "")
        if sensor_size is None:
            sensor_size = _sensor_for(source) or DVS128
        super().__init__(path, sensor_size_of(sensor_size), source or "DVS128", **options)
        self.header = header
        self.flip_x, self.flip_y = bool(flip_x), bool(flip_y)
        self.chunk_events = max(1, int(chunk_events))
        self.skipped_events: Counter = Counter()
        self._data_start = data_start
        if header[0].strip() != "!AER-DAT3.1":
            self.stats.warn(f"{path.name}: header says {header[0].strip()[1:]}; read as AEDAT 3.1")
        if len(first) == PACKET_HEADER.size:
            self._check_header(PACKET_HEADER.unpack(first), data_start)
            etype, _, esize, _, ovf, ecap, _, _ = PACKET_HEADER.unpack(first)
            if etype == POLARITY_EVENT and ecap:
                with open(path, "rb") as f:
                    f.seek(data_start + PACKET_HEADER.size)
                    rec = np.frombuffer(f.read(esize), dtype=POLARITY_RECORD)
                if rec.size:
                    self.start_time_us = (ovf << _TS_OVERFLOW_SHIFT) | (int(rec["ts"][0]) & 0x7FFFFFFF)
        if labels:
            csv_path = labels_path_for(path)
            if csv_path.is_file():
                self.labels = read_gesture_labels(csv_path)

    # ----------------------------------------------------------------- parsing
    def _check_header(self, hdr, offset: int) -> None:
        etype, _src, esize, etsoff, _ovf, ecap, enum, evalid = hdr
        problem = None
        if esize <= 0 or ecap < 0 or not (0 <= enum <= ecap) or not (0 <= evalid <= enum):
            problem = f"size {esize}, capacity {ecap}, number {enum}, valid {evalid}"
        elif ecap * esize > _MAX_PACKET_BYTES:
            problem = f"{ecap} events of {esize} bytes"
        elif not (0 <= etsoff <= esize - 4):
            problem = f"timestamp offset {etsoff} in a {esize}-byte event"
        elif etype == POLARITY_EVENT and (esize != 8 or etsoff != 4):
            problem = f"polarity events of {esize} bytes with the timestamp at {etsoff}"
        if problem:
            raise FormatError(
                f"{self.path}: corrupt event packet header at byte {offset} ({problem}); "
                "the file is damaged from there on"
            )

    def _decode(self, pieces, overflows, counts) -> np.ndarray:
        rec = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        data = rec["data"]
        t = (np.repeat(np.asarray(overflows, dtype=np.int64), counts) << _TS_OVERFLOW_SHIFT) | (
            rec["ts"].astype(np.int64) & 0x7FFFFFFF
        )
        valid = (data & 1).astype(bool)
        if not valid.all():
            data, t = data[valid], t[valid]
        ev = np.empty(data.size, dtype=EVENT_DTYPE)
        ev["t"] = t
        x = (data >> 17) & 0x7FFF
        y = (data >> 2) & 0x7FFF
        if self.flip_x:
            x = self.sensor_size.width - 1 - x.astype(np.int64)
            x[x < 0] = 0xFFFF  # beyond the sensor: dropped and counted downstream
        if self.flip_y:
            y = self.sensor_size.height - 1 - y.astype(np.int64)
            y[y < 0] = 0xFFFF
        ev["x"] = x
        ev["y"] = y
        ev["p"] = (data >> 1) & 1
        return ev

    def _skip(self, etype: int, n: int) -> None:
        self.skipped_events[etype] += n
        name = _TYPE_NAMES.get(etype, f"type-{etype}")
        self.stats.warn(
            f"{Path(self.path).name}: {self.skipped_events[etype]} non-polarity ({name}) event(s) were skipped",
            key=f"skipped_events:{etype}"
        )

    def _chunks(self) -> Iterator[np.ndarray]:
        self.skipped_events = Counter()
        block = self.chunk_events * POLARITY_RECORD.itemsize
        name = Path(self.path).name
        try:
            f = open(self.path, "rb")
        except OSError as exc:
            raise _open_error(self.path, exc) from None
        with f:
            f.seek(self._data_start)
            buf = b""
            base = self._data_start  # file offset of buf[0]
            eof = False
            while not eof and not self._closed:
                try:
                    data = f.read(block)
                except OSError as exc:
                    raise _open_error(self.path, exc) from None
                eof = len(data) < block
                buf = buf + data if buf else data
                pos = 0
                pieces, overflows, counts = [], [], []
                end = len(buf)
                while pos + PACKET_HEADER.size <= end:
                    hdr = PACKET_HEADER.unpack_from(buf, pos)
                    self._check_header(hdr, base + pos)
                    etype, _, esize, _, ovf, ecap, enum, _ = hdr
                    stop = pos + PACKET_HEADER.size + ecap * esize
                    if stop > end:
                        break  # the packet continues in the next block
                    if etype == POLARITY_EVENT:
                        if ecap:
                            pieces.append(np.frombuffer(buf, POLARITY_RECORD, ecap, pos + PACKET_HEADER.size))
                            overflows.append(ovf)
                            counts.append(ecap)
                    elif enum:
                        self._skip(etype, enum)
                    pos = stop
                if eof and pos < end:
                    # truncated: salvage the complete events of a cut polarity packet
                    tail = end - pos
                    if tail >= PACKET_HEADER.size:
                        hdr = PACKET_HEADER.unpack_from(buf, pos)
                        etype, _, esize, _, ovf, ecap, _, _ = hdr
                        n = (tail - PACKET_HEADER.size) // esize
                        if etype == POLARITY_EVENT and n:
                            pieces.append(np.frombuffer(buf, POLARITY_RECORD, n, pos + PACKET_HEADER.size))
                            overflows.append(ovf)
                            counts.append(n)
                        self.stats.warn(
                            f"{name}: the file ends inside an event packet (truncated); "
                            f"its {n} complete event(s) and all earlier packets are read"
                        )
                    else:
                        self.stats.warn(
                            f"{name}: the file ends inside an event packet header (truncated); "
                            "all complete packets are read"
                        )
                if pieces:
                    yield self._decode(pieces, overflows, counts)
                    del pieces  # the arrays view buf; release before the next read
                buf = buf[pos:]
                base += pos

    def _read(self, start_us: int | None) -> Iterator[np.ndarray]:
        return skip_before(self._chunks(), start_us)


# --------------------------------------------------------------------------- writer
def write_aedat31(
    path,
    events: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    source: str = "DVS128",
    packet_events: int = 4096,
    start_time: str | None = None,
) -> Path:
    """Write events as a RAW AEDAT 3.1 file of polarity packets, the way the
    DVS128 Gesture release stores them; the inverse of :class:`Aedat31Source`.

    ``events``: structured array with fields t, x, y, p (t >= 0 µs; x, y < 32768).
    Packets hold at most ``packet_events`` events and never straddle a 2**31 µs
    timestamp overflow. ``labels``: a :data:`LABEL_DTYPE` array (0-based
    labels); when given, ``<stem>_labels.csv`` is written beside the file
    with class ids ``label + 1``. Returns the path."""
    path = Path(path)
    ev = as_events(np.asarray(events))
    if ev.size:
        if int(ev["t"].min()) < 0:
            raise ValueError("AEDAT 3.1 timestamps must be >= 0")
        if int(ev["x"].max()) > 0x7FFF or int(ev["y"].max()) > 0x7FFF:
            raise ValueError("AEDAT 3.1 addresses hold x, y < 32768")
    when = start_time or datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S (TZ+0000)")
    header = ["#!AER-DAT3.1", "#Format: RAW", f"#Source 1: {source}", f"#Start-Time: {when}", "#!END-HEADER"]
    t = ev["t"].astype(np.int64)
    overflow = t >> _TS_OVERFLOW_SHIFT
    cuts = np.flatnonzero(np.diff(overflow)) + 1
    bounds = np.union1d(cuts, np.arange(0, ev.size, max(1, int(packet_events))))
    bounds = np.append(bounds, ev.size).astype(np.int64)
    rec = np.empty(ev.size, dtype=POLARITY_RECORD)
    rec["data"] = (
        (ev["x"].astype(np.uint32) << 17)
        | (ev["y"].astype(np.uint32) << 2)
        | ((ev["p"] != 0).astype(np.uint32) << 1)
        | np.uint32(1)
    )
    rec["ts"] = (t & 0x7FFFFFFF).astype(np.int32)
    with open(path, "wb") as f:
        f.write("".join(line + "\r\n" for line in header).encode("ascii"))
        for a, b in zip(bounds[:-1], bounds[1:]):
            n = int(b - a)
            if n == 0:
                continue
            f.write(PACKET_HEADER.pack(POLARITY_EVENT, 1, 8, 4, int(overflow[a]), n, n, n))
            f.write(rec[a:b].tobytes())
    if labels is not None:
        labels = np.asarray(labels, dtype=LABEL_DTYPE)
        with open(labels_path_for(path), "w", newline="") as f:
            f.write("class,startTime_usec,endTime_usec\r\n")
            for start, end, label in labels.tolist():
                f.write(f"{label + 1},{start},{end}\r\n")
    return path
