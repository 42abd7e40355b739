"""AEDAT 4 recordings (DV software, dv-processing), read with
``dv_processing.io.MonoCameraRecording``.

The file's event stream (``events``) is read batch by batch (as stored,
LZ4/zstd-decompressed by dv-processing) and batches are merged into packets
of about ``chunk_events`` events, so memory stays bounded. Camera name and
resolution come from the file. x, y are as stored (DV's convention: (0, 0) is
the top-left pixel). Other streams (triggers, frames, IMU) are ignored.

The file is opened by its content, whatever its name: dv-processing opens only names
ending in ``.aedat4``, so another name (an AEDAT 4 file saved as ``.h5``, ``.AEDAT4``)
is opened through a symbolic link of that name in a temporary folder (a copy where
links cannot be made), removed again as soon as the file is open.

A truncated file keeps its complete packets, with a warning, as the other readers
do. The file layout (``#!AER-DAT4.0\r\n``, a size-prefixed ``IOHeader`` flatbuffer that
holds ``dataTablePosition``, packets of an 8-byte header (int32 stream id, int32 size)
and a body, then the packet table at ``dataTablePosition``) lets this reader see a cut:
the table lies past the end, or cannot be read. dv-processing refuses such a file, but
rebuilds the table itself, packet by packet, when ``dataTablePosition`` is -1 (as DV
leaves it while recording); so the complete packets are copied to a temporary file whose
header says -1, which dv-processing then reads (the copy is unlinked once open; its
space is freed at :meth:`Aedat4Source.close`). A file recorded without a table and cut
mid-packet is read directly, with the same warning.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from dvsstream.errors import FormatError, SourceError
from dvsstream.events import EVENT_DTYPE, sensor_size_of
from dvsstream.io.aedat2 import DEFAULT_CHUNK_EVENTS
from dvsstream.io.base import FileSource

__all__ = ["Aedat4Source", "write_aedat4", "read_layout", "Aedat4Layout"]

#: the version line every AEDAT 4 file starts with
VERSION_LINE = b"#!AER-DAT4.0\r\n"
#: bytes of a packet header: int32 stream id, int32 body size
PACKET_HEADER = struct.Struct("<ii")


@dataclass(frozen=True)
class Aedat4Layout:
    """Where things are in an AEDAT 4 file, from its own bytes.

    packets_at: byte of the first packet. table_at: ``dataTablePosition`` (-1: no table).
    table_field: byte of that int64 in the file (None when the header leaves it out).
    size: the file's size (bytes)."""

    packets_at: int
    table_at: int
    table_field: int | None
    size: int

    @property
    def data_end(self) -> int:
        """The byte where the packets end: the table's start, or the file's end."""
        return self.table_at if 0 <= self.table_at < self.size else self.size


def read_layout(path) -> Aedat4Layout:
    """Parse an AEDAT 4 file's version line and ``IOHeader`` (a size-prefixed flatbuffer:
    root offset, ``IOHE``, table fields compression (0), dataTablePosition (1), infoNode
    (2)). Raises :class:`FormatError` for a file cut inside its header or a corrupt one."""
    path = Path(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            version = f.read(len(VERSION_LINE))
            prefix = f.read(4)
            n = struct.unpack("<I", prefix)[0] if len(prefix) == 4 else -1
            fb = f.read(n) if 0 < n <= (16 << 20) else b""
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if version != VERSION_LINE:
        raise FormatError(f"{path}: not an AEDAT 4.0 file (no #!AER-DAT4.0 line at the start)")
    if n < 0 or len(fb) < n:
        raise FormatError(f"{path}: the file is cut off inside its header (truncated); it cannot be read")
    try:
        root = struct.unpack_from("<I", fb, 0)[0]
        vtable = root - struct.unpack_from("<i", fb, root)[0]
        vt_size = struct.unpack_from("<H", fb, vtable)[0]
        at = struct.unpack_from("<H", fb, vtable + 6)[0] if vt_size > 6 else 0
        table_at = struct.unpack_from("<q", fb, root + at)[0] if at else -1
    except struct.error:
        raise FormatError(f"{path}: the AEDAT 4 header is corrupt; re-export the file with the DV software") from None
    base = len(VERSION_LINE) + 4
    return Aedat4Layout(base + n, int(table_at), base + root + at if at else None, size)


def scan_packets(path, layout: Aedat4Layout) -> tuple[int, int]:
    """``(complete packets, byte after the last of them)`` between the header and
    :attr:`Aedat4Layout.data_end`, reading only the 8-byte packet headers."""
    pos, end, count = layout.packets_at, layout.data_end, 0
    with open(path, "rb") as f:
        while pos + PACKET_HEADER.size <= end:
            f.seek(pos)
            _, body = PACKET_HEADER.unpack(f.read(PACKET_HEADER.size))
            if body < 0 or pos + PACKET_HEADER.size + body > end:
                break
            pos += PACKET_HEADER.size + body
            count += 1
    return count, pos


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
    decompression pass), except for a truncated file, whose events are counted when it is
    opened (for the warning). Seeking skips whole stored batches before
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
        self._tmpdir: Path | None = None
        reader, cut = self._open_reader(path)
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
        if cut is not None:
            self._warn_cut(path, *cut)

    def _open_reader(self, path: Path):
        """``(MonoCameraRecording, cut)``: ``cut`` is None for a whole file, else
        ``(complete packets, bytes of a partial packet left out, what is wrong)``."""
        layout = read_layout(path)
        error = None
        if layout.table_at < layout.size:  # a table inside the file, or none (-1: rebuilt by dv)
            try:
                reader = self._open_dv(path)
            except RuntimeError as exc:  # dv-processing raises RuntimeError for everything
                error = exc
            else:
                if layout.table_at >= 0:
                    return reader, None
                packets, end = scan_packets(path, layout)
                cut = (packets, layout.size - end, "truncated: it has no packet table (its recorder did not close "
                                                   "it) and ends inside a packet")
                return reader, (cut if end < layout.size else None)
        packets, end = scan_packets(path, layout)
        try:
            reader = self._open_dv(path, copy_bytes=end, table_field=layout.table_field)
        except RuntimeError as exc:
            raise FormatError(
                f"{path}: not a readable AEDAT 4 file ({_reason(error or exc)}); truncated or corrupt? "
                "re-export it with the DV software"
            ) from None
        why = (f"damaged: its packet table cannot be read ({_reason(error)})" if error is not None
               else "truncated: the packet table at its end is missing")
        return reader, (packets, layout.data_end - end, why)

    def _open_dv(self, path: Path, copy_bytes: int | None = None, table_field: int | None = None):
        """dv-processing's reader of ``path``: directly when it is named ``*.aedat4`` and
        whole; else through a link of that name in a temporary folder, or through a copy
        of its first ``copy_bytes`` bytes whose ``dataTablePosition`` (at byte
        ``table_field``) says -1, "no table: rebuild it". The folder is removed once the
        file is open (the reader keeps its own handle) or, where that fails, at close."""
        if copy_bytes is None and path.suffix == ".aedat4":
            return self._dv.io.MonoCameraRecording(str(path))
        folder = Path(tempfile.mkdtemp(prefix="dvsstream-aedat4-"))
        target = folder / "recording.aedat4"
        try:
            try:
                if copy_bytes is None:
                    try:
                        os.symlink(path.resolve(), target)
                    except OSError:  # no links here: a copy
                        shutil.copyfile(path, target)
                else:
                    _copy_repaired(path, target, copy_bytes, table_field)
            except OSError as exc:
                raise SourceError(f"{path}: making a readable temporary copy in {folder.parent} failed "
                                  f"({exc.strerror or exc}); free space there or set TMPDIR") from None
            reader = self._dv.io.MonoCameraRecording(str(target))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():
            self._tmpdir = folder
        return reader

    def _warn_cut(self, path: Path, packets: int, lost: int, why: str) -> None:
        """The one warning of a truncated file: what is wrong, what is kept (packets and
        events of the stream read), what is left out."""
        n = 0
        reader = self._reader
        for store in self._batches(reader):
            n += store.size()
        reader.resetSequentialRead()
        self.n_events = n
        left_out = f"; the last {lost:,} bytes (a partial packet) are left out" if lost else ""
        self.stats.warn(f"{path.name}: the file is {why}; its {packets:,} complete packets ({n:,} events) "
                        f"are read{left_out}")

    def close(self) -> None:
        super().close()
        self._reader = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

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


def _copy_repaired(path: Path, target: Path, n_bytes: int, table_field: int | None) -> None:
    """Copy the first ``n_bytes`` of ``path`` to ``target`` and set its
    ``dataTablePosition`` (the int64 at ``table_field``) to -1."""
    left = n_bytes
    with open(path, "rb") as src, open(target, "wb") as dst:
        while left > 0:
            chunk = src.read(min(left, 1 << 22))
            if not chunk:
                break
            dst.write(chunk)
            left -= len(chunk)
        if table_field is not None:
            dst.seek(table_field)
            dst.write(struct.pack("<q", -1))


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
