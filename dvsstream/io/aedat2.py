"""AEDAT 2.0 (jAER) recordings, as made by jAER with a DVS128 and as used by
the original CIFAR10-DVS release.

File layout
-----------
``#``-prefixed ASCII header lines (the first is ``#!AER-DAT2.0``; jAER ends
them with ``\\r\\n``), then the body: big-endian pairs of (uint32 address,
uint32 timestamp in µs), 8 bytes per event, no index, no footer.

DVS128 address layout (jAER ``DVS128`` chip)::

    bit  0      polarity, inverted: 0 = ON, 1 = OFF
    bits 1..7   x
    bits 8..14  y
    bit  15     special / external event (sync input, timestamp reset ...)

Axis convention
---------------
The chip addresses are ``x = (addr >> 1) & 0x7F``, ``y = (addr >> 8) & 0x7F``
with (0, 0) at the *bottom right* of the scene: jAER draws y upwards and
mirrors x (it shows ``127 - x``). dvsstream's convention, like DV's AEDAT 4
files, is an upright image with (0, 0) at the top left (row = y), so by
default this reader returns ``x = 127 - x_chip`` and ``y = 127 - y_chip``
(checked on ``neal_walking.aedat``: the walking person is upright only so).
``flip_x=False, flip_y=False`` give the raw chip addresses. Note that tonic's
``read_dvs_128`` swaps the axes (it reads x from bits 8..14); we do not.

Polarity: jAER's ``DVS128.Extractor`` documents it ("The ON events have raw polarity 0
... Raw polarity 1 is OFF event") and libcaer's DVS128 driver decodes it the same way
(``polarity = (bit 0 == 0) ? 1 : 0``), so this reader returns ``p = 1 - (addr & 1)``:
``p == 1`` is ON, as in every other dvsstream source (spikingjelly's CIFAR10-DVS reader
agrees: ``p = 1 - p_raw``). Until this fix the reader returned the raw bit, ON and OFF
exchanged.

Special events (bit 15 set) carry no pixel; they are skipped and counted
(``self.special_events`` and a warning). Timestamps are unwrapped from 32 bits
with :class:`~dvsstream.events.TimestampUnwrapper`.

The file is streamed ``chunk_events`` records at a time: memory stays bounded
whatever the file size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from dvsstream.errors import FormatError, SourceError
from dvsstream.events import EVENT_DTYPE, DVS128, TimestampUnwrapper, sensor_size_of
from dvsstream.io.base import FileSource, record_time_range, skip_before

__all__ = ["Aedat2Source", "write_aedat2", "AEDAT2_RECORD", "DEFAULT_CHUNK_EVENTS"]

#: one on-disk record: big-endian uint32 address, uint32 timestamp (µs)
AEDAT2_RECORD = np.dtype([("addr", ">u4"), ("ts", ">u4")])

#: events per packet when streaming a recording: 2**18 = 262,144 events
#: (~3.4 MB decoded; ~20 MB peak working memory while decoding). Larger chunks
#: are no faster (1 M events: same throughput, ~80 MB peak).
DEFAULT_CHUNK_EVENTS = 1 << 18

#: the longest header we accept before calling the file corrupt
_MAX_HEADER_BYTES = 16 << 20

_SPECIAL_BIT = 0x8000


def read_header_lines(path: Path, f, *, end_marker: bytes | None = None) -> tuple[list[str], int]:
    """Read ``#``-prefixed header lines from the open binary file ``f``.

    Stops at the first line that does not start with ``#`` (AEDAT 2.0) or
    right after the line ``end_marker`` (AEDAT 3.1's ``#!END-HEADER``).
    Returns ``(lines without '#' and line ends, offset of the first body byte)``.
    Raises :class:`FormatError` for a header cut off mid-line, a missing end
    marker or an implausibly long header."""
    f.seek(0)
    lines: list[str] = []
    offset = 0
    while True:
        first = f.read(1)
        if first != b"#":
            if end_marker is not None:
                if not first:
                    raise FormatError(
                        f"{path}: the header has no {end_marker.decode()} line (file truncated?); "
                        "the recording cannot be read"
                    )
                raise FormatError(
                    f"{path}: header line {len(lines) + 1} does not start with '#' before "
                    f"{end_marker.decode()} (corrupt header); the recording cannot be read"
                )
            return lines, offset
        raw = f.readline(_MAX_HEADER_BYTES)
        if not raw.endswith(b"\n"):
            what = "is cut off inside the header" if len(raw) < _MAX_HEADER_BYTES else "has an over-long header line"
            raise FormatError(f"{path}: the file {what} (truncated or corrupt); the recording cannot be read")
        offset += 1 + len(raw)
        if offset > _MAX_HEADER_BYTES:
            raise FormatError(f"{path}: the header is longer than {_MAX_HEADER_BYTES >> 20} MB (corrupt file?)")
        text = raw.rstrip(b"\r\n").decode("latin-1")
        lines.append(text)
        if end_marker is not None and ("#" + text).encode("latin-1") == end_marker:
            return lines, offset


def _open_error(path, exc: OSError) -> SourceError:
    return SourceError(f"{path}: cannot be read ({exc.strerror or exc})")


def _camera_from_header(lines: Sequence[str]) -> str:
    """``# HardwareInterface: DVS128-V1 0298`` -> ``DVS128-V1 0298``;
    else the chip class name from ``# AEChip: ...DVS128``; else ``DVS128``."""
    chip = ""
    for line in lines:
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "hardwareinterface" and value:
            return value
        if key == "aechip" and value:
            chip = value.rsplit(".", 1)[-1]
    return chip or "DVS128"


class Aedat2Source(FileSource):
    """Replay a jAER AEDAT 2.0 DVS128 recording.

    Parameters (besides :class:`~dvsstream.io.base.FileSource`'s ``speed``,
    ``loop``, ``packet_us``, ``start_us``):

    sensor_size: ``(width, height)``, default 128x128 (DVS128).
    flip_x, flip_y: mirror the chip axes (``x -> 127 - x``); default on,
        giving the upright image (see the module docstring); off = raw chip
        addresses.
    chunk_events: records decoded per packet (bounded memory), default 2**18.

    Attributes: ``header`` (the header lines without ``#``), ``n_events``
    (complete 8-byte records in the body, special events included: an upper
    bound of the pixel events delivered), ``start_time_us`` / ``end_time_us``
    (first / last record, unwrapped from sampled records: ``record_time_range``),
    ``special_events`` (special records skipped so far, counted per pass).
    Seeking is a linear scan (the format has no index).
    """

    format = "aedat2"

    def __init__(
        self,
        path,
        *,
        sensor_size=DVS128,
        flip_x: bool = True,
        flip_y: bool = True,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        **options,
    ) -> None:
        path = Path(path)
        try:
            with open(path, "rb") as f:
                if not f.read(12).startswith(b"#!AER-DAT2"):
                    raise FormatError(f"{path}: not an AEDAT 2.0 file (no #!AER-DAT2.0 line at the start)")
                header, data_start = read_header_lines(path, f)
            size = os.path.getsize(path)
        except OSError as exc:
            raise _open_error(path, exc) from None
        super().__init__(path, sensor_size_of(sensor_size), _camera_from_header(header), **options)
        self.header = header
        self.flip_x, self.flip_y = bool(flip_x), bool(flip_y)
        self.chunk_events = max(1, int(chunk_events))
        self._data_start = data_start
        body = size - data_start
        self.n_events = body // AEDAT2_RECORD.itemsize
        self._tail_bytes = body % AEDAT2_RECORD.itemsize
        self.special_events = 0
        if self._tail_bytes:
            self.stats.warn(
                f"{path.name}: the file ends with a partial {self._tail_bytes}-byte record "
                f"(truncated); the {self.n_events} complete events are read"
            )
        chip = next((ln for ln in header if ln.strip().lower().startswith("aechip:")), "")
        if chip and "dvs128" not in chip.lower() and "tmpdiff128" not in chip.lower():
            self.stats.warn(
                f"{path.name}: recorded with {chip.split(':', 1)[1].strip()}; addresses are "
                "decoded with the DVS128 layout"
            )
        if self.n_events:
            self.start_time_us, self.end_time_us = record_time_range(
                self.path, self._data_start, self.n_events, AEDAT2_RECORD.itemsize,
                f">u4@{AEDAT2_RECORD.fields['ts'][1]}")

    def _decode(self, rec: np.ndarray) -> np.ndarray:
        """Decode a chunk of on-disk records into EVENT_DTYPE (special events dropped)."""
        addr = rec["addr"].astype(np.uint32)
        special = (addr & _SPECIAL_BIT) != 0
        n_special = int(np.count_nonzero(special))
        t = self._unwrap(rec["ts"])
        if n_special:
            keep = ~special
            addr, t = addr[keep], t[keep]
            self.special_events += n_special
            self.stats.warn(
                f"{Path(self.path).name}: {self.special_events} special (external / timestamp-reset) "
                "event(s) carry no pixel and were skipped", key="special_events"
            )
        ev = np.empty(addr.size, dtype=EVENT_DTYPE)
        ev["t"] = t
        x = (addr >> 1) & 0x7F
        y = (addr >> 8) & 0x7F
        # flips mirror the 128x128 chip; a smaller declared sensor then drops
        # (and counts, in the base class) what falls beyond it
        if self.flip_x:
            x = 0x7F - x
        if self.flip_y:
            y = 0x7F - y
        ev["x"] = x
        ev["y"] = y
        ev["p"] = 1 - (addr & 1)  # raw 0 = ON (jAER, libcaer)
        return ev

    def _chunks(self) -> Iterator[np.ndarray]:
        self.special_events = 0
        self._unwrap = TimestampUnwrapper(32)
        remaining = self.n_events
        try:
            with open(self.path, "rb") as f:
                f.seek(self._data_start)
                while remaining > 0 and not self._closed:
                    n = min(self.chunk_events, remaining)
                    buf = f.read(n * AEDAT2_RECORD.itemsize)
                    got = len(buf) // AEDAT2_RECORD.itemsize
                    if got == 0:
                        break
                    remaining -= got
                    rec = np.frombuffer(buf, dtype=AEDAT2_RECORD, count=got)
                    yield self._decode(rec)
                    if got < n:  # the file shrank while we read it
                        self.stats.warn(f"{Path(self.path).name}: the file ended early while reading")
                        break
        except OSError as exc:
            raise _open_error(self.path, exc) from None

    def _read(self, start_us: int | None) -> Iterator[np.ndarray]:
        return skip_before(self._chunks(), start_us)


# --------------------------------------------------------------------------- writer
_DEFAULT_HEADER = (
    "# This is a raw AE data file - do not edit",
    "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event",
    "# Timestamps tick is 1 us",
    "# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128",
)


def write_aedat2(
    path,
    events: np.ndarray,
    header_lines: Sequence[str] | None = None,
    *,
    flip_x: bool = True,
    flip_y: bool = True,
    chunk_events: int = DEFAULT_CHUNK_EVENTS,
) -> Path:
    """Write events as a jAER AEDAT 2.0 DVS128 file, the inverse of
    :class:`Aedat2Source` with the same ``flip_x`` / ``flip_y`` (by default the
    events are upright image coordinates and become chip addresses
    ``127 - x``, ``127 - y``; see the module docstring).

    ``events``: any structured array with fields t, x, y, p (x, y < 128).
    Timestamps are stored modulo 2**32 (they wrap like a camera's).
    ``header_lines``: extra header lines (a leading ``#`` is added when missing),
    written after ``#!AER-DAT2.0`` and jAER's standard lines; e.g.
    ``["# HardwareInterface: DVS128-V1 0298"]``. Returns the path."""
    from dvsstream.events import as_events

    path = Path(path)
    ev = as_events(np.asarray(events))
    if ev.size and (int(ev["x"].max()) > 127 or int(ev["y"].max()) > 127):
        raise ValueError("AEDAT 2.0 DVS128 addresses hold x, y < 128")
    lines = ["#!AER-DAT2.0", *_DEFAULT_HEADER]
    for line in header_lines or ():
        line = line.rstrip("\r\n")
        lines.append(line if line.startswith("#") else "# " + line)
    with open(path, "wb") as f:
        f.write("".join(line + "\r\n" for line in lines).encode("latin-1"))
        for i in range(0, ev.size, chunk_events):
            part = ev[i : i + chunk_events]
            x = part["x"].astype(np.uint32)
            y = part["y"].astype(np.uint32)
            if flip_x:
                x = 127 - x
            if flip_y:
                y = 127 - y
            rec = np.empty(part.size, dtype=AEDAT2_RECORD)
            rec["addr"] = (y << 8) | (x << 1) | (part["p"] == 0).astype(np.uint32)  # raw 1 = OFF
            rec["ts"] = (part["t"].astype(np.int64) & 0xFFFFFFFF).astype(np.uint32)
            f.write(rec.tobytes())
    return path
