"""Prophesee recordings: EVT 3.0 and EVT 2.0 ``.raw`` files and ``.dat`` files,
decoded by our Numba decoders (:mod:`dvsstream.io._prophesee_kernel`), which give
exactly the events of ``expelliarmus`` (the C decoder tonic uses; tests compare them)
for DAT and EVT 2.0, and Metavision's timestamps for EVT 3.0 (where expelliarmus's
differ), and write our event records directly. ``expelliarmus`` is needed only to *write* EVT 2.0
and DAT files (:func:`write_prophesee`, the tests); EVT 3.0 is encoded here.

File layout
-----------
Both kinds start with ``%``-prefixed ASCII header lines, then a binary body:

* **RAW** (Metavision's camera stream): the header names the encoding with
  ``% evt 3.0`` / ``% evt 2.0`` and, in Metavision 2.2+, ``% format
  EVT3;height=720;width=1280`` and ``% geometry 1280x720``; it may end with
  ``% end``. The body is a stream of 16-bit (EVT 3.0) or 32-bit (EVT 2.0) words.
* **DAT** (Metavision's event files, N-CARS, the automotive datasets): header lines
  such as ``% Data file containing CD events``, ``% Version 2``, ``% Height 240``,
  ``% Width 304``, then two bytes (event type 0 = CD, event size 8), then 8-byte
  records: uint32 ``t`` µs, uint32 with x (14 bits), y (14 bits), p (4 bits).

The format is detected from the content (``% evt`` or ``% format`` line: RAW; else the
DAT type/size bytes), not from the file name.

Conventions
-----------
* Polarity: Prophesee's ``p = 1`` is ON (brighter) and ``p = 0`` OFF, which is
  dvsstream's channel convention already (channel 1 ON): ``p`` is kept, any nonzero
  value becomes 1.
* Timestamps: int64 µs, not shifted: the 32-bit DAT clock unwrapped as expelliarmus
  does, EVT 3.0's 24-bit clock as Metavision does (see the kernel module for the rules).
* Coordinates as stored: (0, 0) is the top-left pixel.
* Geometry (``sensor_size``, ``(width, height)``): from the header (``% geometry``,
  ``% format ...;height=;width=``, DAT's ``% Height`` / ``% Width``). When the header has
  none, ``sensor_size=`` is used, else the data is scanned once (max x + 1, max y + 1);
  either way a warning says so. Events outside a declared geometry (a header that
  contradicts its data) are counted in ``stats.out_of_bounds`` with a warning.

Memory stays bounded: the body is read :data:`BUFF_BYTES` at a time into one
buffer and decoded into packets of ``chunk_events`` events; the decoder's state (time
high bits, overflow counters, vector base) carries across reads. A file cut short keeps
every complete word; the partial tail is reported in ``stats.warnings``. A word of an
unknown type stops decoding there: the events before it are delivered and its byte is
reported. Timestamps that go backwards are re-sorted and counted by the base class.

Not read here: EVT 2.1 and other RAW encodings, and Prophesee's HDF5 event files
(ECF-compressed, which no PyPI package decodes): both raise :class:`FormatError`
naming Metavision's ``metavision_file_to_dat`` conversion.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from dvsstream.errors import FormatError, SourceError
from dvsstream.events import EVENT_DTYPE, SensorSize, sensor_size_of
from dvsstream.io.aedat2 import _open_error
from dvsstream.io.base import FileSource, record_time_range

__all__ = [
    "PropheseeSource", "PropheseeHeader", "read_prophesee_header", "write_prophesee",
    "check_not_prophesee_hdf5", "encode_evt3", "ENCODINGS",
]

#: encodings read, with the size of one body word (bytes)
ENCODINGS = {"evt3": 2, "evt2": 4, "dat": 8}
#: their words as numpy dtypes
WORD_DTYPES = {"evt3": "<u2", "evt2": "<u4", "dat": "<u8"}
#: bytes read from the file per read: 512 kB, four or more packets' worth of words, so
#: that a packet seldom needs two decoder calls (measured 5-10 % faster than 64-256 kB)
BUFF_BYTES = 1 << 19
#: events per packet by default: 32 Ki (416 kB) stay in a core's cache while they are
#: decoded, which measured 15-25 % faster than 256 Ki (3.4 MB) on EVT 2.0 and DAT
CHUNK_EVENTS = 1 << 15
#: the longest header accepted before calling the file corrupt
_MAX_HEADER_BYTES = 1 << 20
#: ``t_min`` when not seeking (and the time before any event)
_NO_START = int(np.iinfo(np.int64).min)
#: Prophesee's self-assigned HDF5 filter id of its ECF codec
ECF_FILTER_ID = 0x8ECF


def _convert_hint(path: Path) -> str:
    return f"convert it with Metavision SDK's `metavision_file_to_dat -i {path.name}` and open the .dat"


@dataclass(frozen=True)
class PropheseeHeader:
    """What a Prophesee file's ``%`` header says.

    encoding: ``"evt3"``, ``"evt2"`` or ``"dat"``. body_offset: byte of the first event
    word (after DAT's two type/size bytes). geometry: ``(width, height)`` or None when the
    header states none. fields: ``key -> value`` of the ``% key value`` lines."""

    encoding: str
    body_offset: int
    geometry: SensorSize | None
    lines: tuple[str, ...] = ()
    fields: dict = field(default_factory=dict)

    @property
    def camera(self) -> str:
        """``Prophesee <plugin or sensor> <serial>`` from a RAW header; for DAT files the
        header's description (``Prophesee DAT (CD events)``)."""
        f = self.fields
        maker = f.get("camera_integrator_name") or f.get("integrator_name") or "Prophesee"
        model = f.get("plugin_name") or (f"Gen{f['sensor_generation']}" if "sensor_generation" in f else "")
        parts = [maker, model, f.get("serial_number", "")]
        if self.encoding == "dat":
            described = " ".join(ln for ln in self.lines if "containing" in ln)
            if "chronocam" in described.lower():  # Prophesee's former name (ATIS sensors)
                maker = "Prophesee (Chronocam)"
            parts = [maker, "DAT, CD events"]
        return " ".join(p for p in parts if p)


def _header_lines(path: Path, f) -> tuple[list[str], int]:
    """``%`` lines (without ``%`` and line end) and the offset of the first body byte.
    A ``% end`` line ends the header even if the body's first byte is ``%``."""
    lines, offset = [], 0
    while True:
        first = f.read(1)
        if first != b"%":
            return lines, offset
        raw = f.readline(_MAX_HEADER_BYTES)
        if not raw.endswith(b"\n"):
            raise FormatError(f"{path}: the file is cut off inside its '%' header (truncated?); it cannot be read")
        offset += 1 + len(raw)
        if offset > _MAX_HEADER_BYTES:
            raise FormatError(f"{path}: the '%' header is longer than 1 MB (corrupt file?)")
        text = raw.rstrip(b"\r\n").decode("latin-1").strip()
        lines.append(text)
        if text.lower() == "end":
            return lines, offset


def _parse_fields(lines: Sequence[str]) -> dict:
    out = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if key and key.lower() not in out:
            out[key.lower()] = value.strip()
    return out


def _raw_encoding(path: Path, fields: dict) -> str | None:
    """``evt3`` / ``evt2`` from ``% evt`` and ``% format``; None when neither is there.
    Raises :class:`FormatError` for other versions or a contradiction."""
    names = {"3.0": "evt3", "3": "evt3", "2.0": "evt2", "2": "evt2", "evt3": "evt3", "evt2": "evt2"}
    found = []
    if "evt" in fields:
        found.append(("evt", fields["evt"], names.get(fields["evt"].strip().lower())))
    if "format" in fields:
        fmt = fields["format"].split(";", 1)[0].strip()
        found.append(("format", fmt, names.get(fmt.lower())))
    for key, value, enc in found:
        if enc is None:
            raise FormatError(
                f"{path}: RAW encoding '{key} {value}' is not supported (dvsstream reads EVT 3.0 and "
                f"EVT 2.0 RAW files and DAT files); {_convert_hint(path)}"
            )
    encodings = {enc for _, _, enc in found}
    if len(encodings) > 1:
        raise FormatError(f"{path}: the header contradicts itself ('% evt {fields['evt']}' but "
                          f"'% format {fields['format']}'); the file cannot be decoded")
    return encodings.pop() if encodings else None


def _geometry(fields: dict) -> SensorSize | None:
    """``% geometry WxH``, else ``% format ...;height=H;width=W``, else DAT's Height/Width."""
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", fields.get("geometry", ""))
    if m:
        return SensorSize(int(m.group(1)), int(m.group(2)))
    opts = dict(kv.split("=", 1) for kv in fields.get("format", "").split(";")[1:] if "=" in kv)
    if opts.get("width", "").isdigit() and opts.get("height", "").isdigit():
        return SensorSize(int(opts["width"]), int(opts["height"]))
    if fields.get("width", "").isdigit() and fields.get("height", "").isdigit():
        return SensorSize(int(fields["width"]), int(fields["height"]))
    return None


def read_prophesee_header(path, encoding: str | None = None) -> PropheseeHeader:
    """Parse a Prophesee RAW or DAT file's header (``encoding`` forces ``"evt3"``,
    ``"evt2"`` or ``"dat"`` for a RAW header that names none). Raises
    :class:`FormatError` with a one-line reason for anything it cannot decode."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            lines, offset = _header_lines(path, f)
            f.seek(offset)
            type_size = f.read(2)
    except OSError as exc:
        raise _open_error(path, exc) from None
    if not lines:
        raise FormatError(f"{path}: not a Prophesee file (no '%' header)")
    fields = _parse_fields(lines)
    found = _raw_encoding(path, fields)
    if encoding is not None:
        if encoding not in ENCODINGS:
            raise SourceError(f"{path}: encoding={encoding!r}; use one of {', '.join(ENCODINGS)}")
        found = encoding
    if found is None:  # no RAW encoding line: a DAT file has its event type and size next
        if len(type_size) == 2 and type_size[1] == 8:
            found = "dat"
        else:
            raise FormatError(
                f"{path}: a '%' header without '% evt' / '% format' (RAW) nor DAT's event type and "
                "size bytes; not a Prophesee file this reader knows (pass encoding='evt3' if it is RAW)"
            )
    if found == "dat":
        if len(type_size) < 2:
            raise FormatError(f"{path}: the DAT file ends right after its header (truncated?); no events")
        if type_size[1] != 8:
            raise FormatError(f"{path}: DAT events of {type_size[1]} bytes (type {type_size[0]}); "
                              "only 8-byte CD events are read")
        offset += 2
    return PropheseeHeader(found, offset, _geometry(fields), tuple(lines), fields)


class PropheseeSource(FileSource):
    """Replay a Prophesee EVT 3.0 / EVT 2.0 RAW or DAT file (see the module docstring).

    Parameters (besides :class:`~dvsstream.io.base.FileSource`'s ``speed``,
    ``loop``, ``packet_us``, ``start_us``):

    sensor_size: ``(width, height)`` for a file whose header states no geometry
        (without it the data is scanned once for max x + 1, max y + 1); it overrides
        the header's geometry otherwise, with a warning when they differ.
    encoding: ``"evt3"``, ``"evt2"`` or ``"dat"``, for a RAW header that names none.
    chunk_events: events decoded per packet (bounded memory), default 2**15.

    Attributes: ``header`` (:class:`PropheseeHeader`), ``encoding``, ``geometry_from``
    (``"header"``, ``"sensor_size"`` or ``"data"``), ``n_events`` (DAT: complete records;
    RAW: known after a geometry scan, else None), ``start_time_us`` / ``end_time_us``
    (DAT, or after a scan). Prophesee files carry no labels (``labels`` is None). Seeking
    is a linear scan (the formats have no index).
    """

    format = "prophesee"  # per file: "prophesee-evt3", "prophesee-evt2" or "prophesee-dat"

    def __init__(self, path, *, sensor_size=None, encoding: str | None = None,
                 chunk_events: int = CHUNK_EVENTS, **options) -> None:
        path = Path(path)
        header = read_prophesee_header(path, encoding)
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise _open_error(path, exc) from None
        given = sensor_size_of(sensor_size) if sensor_size is not None else None
        super().__init__(path, given or header.geometry or SensorSize(1, 1), header.camera, **options)
        self.header, self.encoding = header, header.encoding
        self.format = f"prophesee-{header.encoding}"
        self.chunk_events = max(16, int(chunk_events))
        word = ENCODINGS[header.encoding]
        self._body_words = (size - header.body_offset) // word
        self._tail_bytes = (size - header.body_offset) % word
        self._verified = False  # the packet in flight passed the kernel's checks
        self.geometry_from = "header"
        name = path.name
        if self._tail_bytes:
            self.stats.warn(f"{name}: the file ends with a partial {self._tail_bytes}-byte word at byte "
                            f"{size - self._tail_bytes} (truncated); everything before it is read")
        if header.encoding == "dat":
            self.n_events = self._body_words
            self._dat_time_range()
        if given is not None:
            self.geometry_from = "sensor_size"
            if header.geometry is None:
                self.stats.warn(f"{name}: the header states no geometry; using the given sensor size {given.width}x{given.height}")
            elif header.geometry != given:
                self.stats.warn(f"{name}: the given sensor size {given.width}x{given.height} overrides the header's "
                                f"geometry {header.geometry.width}x{header.geometry.height}")
        elif header.geometry is None:
            self.geometry_from = "data"
            self.sensor_size = self._scan_geometry()
            self.stats.warn(f"{name}: the header states no geometry; {self.sensor_size.width}x"
                            f"{self.sensor_size.height} taken from the data (max x + 1, max y + 1); "
                            "set it with --sensor-size WxH")

    def describe(self) -> dict:
        info = super().describe()
        info.update(encoding=self.encoding, geometry_from=self.geometry_from,
                    header={k: v for k, v in self.header.fields.items()})
        return info

    def _dat_time_range(self) -> None:
        """First and last time of a DAT body (µs, unwrapped: :func:`record_time_range`)."""
        if not self._body_words:
            return
        self.start_time_us, self.end_time_us = record_time_range(
            self.path, self.header.body_offset, self._body_words, 8, "<u4", any_fall_wraps=True)

    def _scan_geometry(self) -> SensorSize:
        """One bounded-memory pass: max x + 1, max y + 1; also sets n_events and the time range."""
        w = h = n = 0
        t0 = t1 = None
        for ev in self._decoded(None, (1 << 15, 1 << 15), count_oob=False):
            w, h = max(w, int(ev["x"].max()) + 1), max(h, int(ev["y"].max()) + 1)
            n += ev.size
            t0 = int(ev["t"][0]) if t0 is None else t0
            t1 = int(ev["t"][-1])
        self.n_events, self.start_time_us, self.end_time_us = n, t0, t1
        if n == 0:
            raise FormatError(f"{self.path}: no events and no geometry in the header; "
                              "pass sensor_size=(width, height) to open it")
        return SensorSize(w, h)

    def _body_blocks(self) -> Iterator[np.ndarray]:
        """The body's complete words, :data:`BUFF_BYTES` at a time, read into one reused
        buffer (a memory map measured no faster, and a file cut while mapped would crash)."""
        dtype = np.dtype(WORD_DTYPES[self.encoding])
        per_read = BUFF_BYTES // dtype.itemsize
        buf = np.empty(per_read, dtype)
        left = self._body_words
        try:
            with open(self.path, "rb") as f:
                f.seek(self.header.body_offset)
                while left > 0 and not self._closed:
                    got = f.readinto(memoryview(buf[:min(left, per_read)]).cast("B")) // dtype.itemsize
                    if got <= 0:
                        return
                    left -= got
                    yield buf[:got]
        except OSError as exc:
            raise _open_error(Path(self.path), exc) from None

    def _decoded(self, start_us: int | None, size, count_oob: bool = True) -> Iterator[np.ndarray]:
        """Packets of up to ``chunk_events`` events with ``t >= start_us`` on a ``size``
        sensor, decoded by :mod:`~dvsstream.io._prophesee_kernel` straight into
        EVENT_DTYPE; events off the sensor are left out and counted (``count_oob``);
        packets the decoder found in order are marked verified (:meth:`_validate`). A
        word of an unknown type ends the body with a warning naming its byte."""
        from dvsstream.io._prophesee_kernel import DECODERS, MAX_PER_WORD, STOPPED_AT, new_state

        t_min = _NO_START if start_us is None else int(start_us)
        self._kept_t = _NO_START  # the last event delivered (order checks)
        st = new_state()
        decode, word, room = DECODERS[self.encoding], ENCODINGS[self.encoding], self.chunk_events + MAX_PER_WORD
        out, n, done = np.empty(room, EVENT_DTYPE), 0, 0
        for block in self._body_blocks():
            pos = 0
            while pos < block.shape[0] and st[STOPPED_AT] < 0:
                n, pos = decode(block, pos, out, n, st)
                if n >= self.chunk_events:
                    packet = self._packet(out, n, st, size, t_min, count_oob)
                    if packet.size:
                        yield packet
                    out, n = np.empty(room, EVENT_DTYPE), 0
            if st[STOPPED_AT] >= 0:
                at = self.header.body_offset + (done + int(st[STOPPED_AT])) * word
                self.stats.warn(f"{Path(self.path).name}: decoding stopped at byte {at} (a word of an unknown "
                                "type: corrupt data?); the events before it are read")
                break
            done += block.shape[0]
        packet = self._packet(out, n, st, size, t_min, count_oob)
        if packet.size:
            yield packet

    def _packet(self, out: np.ndarray, n: int, st: np.ndarray, size, t_min: int, count_oob: bool) -> np.ndarray:
        """``out[:n]``, checked from what the decoder noted (largest x and y; whether time
        ran backwards, which DAT's cannot): events before ``t_min`` or off the sensor
        are dropped (:func:`~dvsstream.io._prophesee_kernel.compact`; the latter
        reported); notes whether the packet is in order (:meth:`_validate`) and resets the
        decoder's per-packet notes."""
        from dvsstream.io._prophesee_kernel import MAX_X, MAX_Y, ORDERED, compact, start_packet

        ordered = self.encoding == "dat" or bool(st[ORDERED])
        seeking = t_min != _NO_START
        before = seeking and n > 0 and (not ordered or int(out["t"][0]) < t_min)
        if n and (st[MAX_X] >= size[0] or st[MAX_Y] >= size[1] or before):
            n, n_oob, ordered, _ = compact(out, 0, n, size[0], size[1], t_min, self._kept_t)
            if n_oob and count_oob:
                self._out_of_sensor(int(n_oob))
        if n:
            self._kept_t = int(out["t"][n - 1])
        self._verified = bool(ordered)
        start_packet(st, self._kept_t)
        return out[:n]

    def _read(self, start_us: int | None) -> Iterator[np.ndarray]:
        """Packets decoded in one Numba pass that also seeks (``t >= start_us``), leaves
        out and counts events outside the sensor, and checks the order, so that
        :meth:`_validate` need not look again (see its docstring)."""
        for packet in self._decoded(start_us, self.sensor_size):
            yield packet

    def _out_of_sensor(self, n_oob: int) -> None:
        w, h = self.sensor_size
        self.stats.out_of_bounds += n_oob
        source = {"header": "header's geometry", "sensor_size": "given sensor size"}.get(self.geometry_from, "sensor")
        why = "the header contradicts the data" if self.geometry_from == "header" else "the data do not fit it"
        self.stats.warn(f"{Path(self.path).name}: {self.stats.out_of_bounds} event(s) lie outside the {source} "
                        f"{w}x{h} ({why}); they are left out and counted",
                        key="out_of_bounds")

    def _validate(self, packet: np.ndarray) -> np.ndarray:
        """The base checks, skipped for packets that :meth:`_read`'s kernel already
        found in bounds and in order, when they also follow the previous packet
        (the base class's per-packet bounds and order passes cost as much as the
        decoding); any other packet gets the full base treatment."""
        if self._verified and packet.size and packet.dtype == EVENT_DTYPE:
            t = packet["t"]
            if self._last_t is None or int(t[0]) >= self._last_t:
                self._last_t = int(t[-1])
                self.stats.events_read += packet.size
                self.stats.packets_read += 1
                return packet
        return super()._validate(packet)

# --------------------------------------------------------------------------- HDF5
def check_not_prophesee_hdf5(path) -> None:
    """Raise :class:`FormatError` naming the conversion when ``path`` is a Prophesee HDF5
    event file (a ``CD/events`` dataset, normally ECF-compressed: HDF5 filter 0x8ECF).
    No PyPI package decodes ECF (Prophesee ships the codec with Metavision SDK and as the
    ``hdf5_ecf`` HDF5 plugin, built from source), so such files are converted first.
    Returns quietly for any other HDF5 file."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError:
        return  # the HDF5 reader reports what is wrong
    with f:
        ds = f.get("CD/events")
        if not isinstance(ds, h5py.Dataset):
            return
        plist = ds.id.get_create_plist()
        codes = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
    what = "ECF-compressed (HDF5 filter 0x8ECF), " if ECF_FILTER_ID in codes else ""
    raise FormatError(
        f"{path}: a Prophesee HDF5 event file ({what}CD/events), which no PyPI package decodes; "
        + _convert_hint(Path(path))
    )


# --------------------------------------------------------------------------- writer
#: the largest first timestamp (µs) each encoding stores without losing its high bits
_T_LIMIT = {"evt3": 1 << 24, "evt2": 1 << 34, "dat": 1 << 32}


def _header_text(encoding: str, sensor_size: SensorSize | None, extra: Sequence[str]) -> bytes:
    if encoding == "dat":
        lines = ["Data file containing CD events", "Version 2"]
        if sensor_size is not None:
            lines += [f"Height {sensor_size.height}", f"Width {sensor_size.width}"]
    else:
        version = "3.0" if encoding == "evt3" else "2.0"
        lines = [f"evt {version}"]
        if sensor_size is not None:
            w, h = sensor_size
            lines += [f"format {encoding.upper()};height={h};width={w}", f"geometry {w}x{h}"]
        lines += ["integrator_name Prophesee", "plugin_name dvsstream"]
    lines += [line.lstrip("%").strip() for line in extra]
    if encoding != "dat":
        lines.append("end")
    text = "".join(f"% {line}\n" for line in lines).encode("latin-1")
    return text + (b"\x00\x08" if encoding == "dat" else b"")


#: at most this many 4,096 µs periods between two TIME_HIGH words that :func:`encode_evt3`
#: writes: well under the 2,048 whose fall a decoder reads as a 24-bit loop
_EVT3_HIGH_STEP = 1024


def encode_evt3(events: np.ndarray) -> np.ndarray:
    """EVT 3.0 words (``uint16``) for sorted events with ``0 <= t < 2**24`` at the first,
    the way a Prophesee camera sends them: TIME_HIGH whenever bits 12-23 of the time
    change (and every :data:`_EVT3_HIGH_STEP` periods through a gap, so that a decoder
    sees each 24-bit loop), TIME_LOW after a TIME_HIGH or when bits 0-11 change,
    ADDR_Y when y changes, then ADDR_X with the polarity for each event.

    (expelliarmus 1.1 writes TIME_HIGH once and loses whole 4,096 µs periods between
    events further apart than that; Metavision's decoder and ours read these words.)"""
    t = events["t"].astype(np.int64)
    period, low = t >> 12, t & 0xFFF
    step = np.diff(period, prepend=-1)
    step[0] = 1
    n_high = np.where(step > 0, -(-step // _EVT3_HIGH_STEP), 0)  # TIME_HIGH words before each event
    new_low = (n_high > 0) | (np.diff(low, prepend=-1) != 0)
    new_y = np.diff(events["y"].astype(np.int64), prepend=-1) != 0
    per_event = n_high + new_low + new_y + 1
    end = np.cumsum(per_event)
    start = end - per_event
    words = np.empty(int(end[-1]), np.uint16)
    # TIME_HIGH words: the periods stepped through, the last one the event's own
    which = np.repeat(np.arange(t.size), n_high)
    k = np.arange(which.size) - np.repeat(np.cumsum(n_high) - n_high, n_high)  # 0, 1, ... per event
    prev_period = period[which] - step[which]
    value = np.minimum(prev_period + (k + 1) * _EVT3_HIGH_STEP, period[which])
    words[start[which] + k] = (0x8 << 12) | (value & 0xFFF)
    at = start + n_high
    words[at[new_low]] = (0x6 << 12) | low[new_low]
    at += new_low
    words[at[new_y]] = events["y"][new_y].astype(np.uint16) & 0x7FF
    at += new_y
    words[at] = (0x2 << 12) | ((events["p"] != 0).astype(np.uint16) << 11) | (events["x"].astype(np.uint16) & 0x7FF)
    return words


def _body_bytes(encoding: str, ev: np.ndarray, folder: Path, stem: str) -> bytes:
    """The encoded body: EVT 3.0 by :func:`encode_evt3`; EVT 2.0 and DAT by expelliarmus,
    through a file beside the output (removed again)."""
    if encoding == "evt3":
        return encode_evt3(ev).tobytes()
    from expelliarmus import Wizard

    arr = np.empty(ev.size, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
    arr["t"], arr["x"], arr["y"], arr["p"] = ev["t"], ev["x"], ev["y"], ev["p"] != 0
    body = folder / f".{stem}.body{'.dat' if encoding == 'dat' else '.raw'}"
    try:
        Wizard(encoding=encoding).save(body, arr)
        with open(body, "rb") as f:
            f.seek(read_prophesee_header(body, encoding).body_offset)
            return f.read()
    finally:
        body.unlink(missing_ok=True)


def write_prophesee(path, events: np.ndarray, encoding: str = "evt3", sensor_size=None,
                    header_lines: Sequence[str] = ()) -> Path:
    """Write events as a Prophesee ``encoding`` file (``"evt3"``, ``"evt2"`` RAW or
    ``"dat"``) with a Metavision-style header: ``% evt``, ``% format
    EVT3;height=H;width=W``, ``% geometry WxH`` and ``% end`` for RAW; ``% Height`` /
    ``% Width`` for DAT (no geometry lines when ``sensor_size`` is None). EVT 3.0 is
    encoded by :func:`encode_evt3`, EVT 2.0 and DAT by expelliarmus.

    ``events``: structured array with t (µs, sorted, starting below 2**24 for EVT 3.0,
    2**34 for EVT 2.0, 2**32 for DAT: subtract the first timestamp of camera-clock
    events), x, y, p (1 = ON). ``header_lines``: extra ``% key value`` lines.
    The file is written beside ``path`` and renamed into place. Returns the path."""
    from dvsstream.events import as_events, is_sorted

    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    path = Path(path)
    ev = as_events(np.asarray(events))
    if ev.size == 0 or not is_sorted(ev):
        raise ValueError("write_prophesee needs a non-empty array of events sorted by time")
    if int(ev["t"][0]) < 0 or int(ev["t"][0]) >= _T_LIMIT[encoding]:
        raise ValueError(f"{encoding} stores a first timestamp below {_T_LIMIT[encoding]} µs; "
                         "subtract the first timestamp first")
    size = sensor_size_of(sensor_size) if sensor_size is not None else None
    body = _body_bytes(encoding, ev, path.parent, path.name)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as dst:
            dst.write(_header_text(encoding, size, header_lines))
            dst.write(body)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
