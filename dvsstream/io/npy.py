"""tonic-style ``.npy`` event files.

Two layouts are read:

* a 1-D **structured** array with fields ``t, x, y, p`` (any order, any
  integer/bool widths, e.g. tonic's ``int64 t, int16 x, int16 y, bool p``);
  ``t`` in µs.
* a 2-D **plain** ``(N, 4)`` array with columns ``(x, y, p, t)``: the
  preprocessed DVS128 Gesture files that tonic 1.7's ``DVSGesture`` downloads
  (``ibmGesture{Train,Test}/userNN_lighting/<class>.npy``). Their ``t`` is in
  **milliseconds** (tonic multiplies it by 1000 on load), so by default it is
  scaled by 1000 here too (``t_scale``); float times are rounded to whole µs.

``p > 0`` is ON. The file is memory-mapped and converted ``chunk_events``
rows at a time (bounded memory). A file cut short is read up to its last
complete row, with a warning. Events outside ``sensor_size`` (default 128x128)
or out of time order are counted by the base class, never fatal.

tonic names the Gesture files by their 0-based class index; a file whose
name is a number (``3.npy``) gets one label entry for its whole time span
(``label_from_name``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import numpy.lib.format as npformat

from dvsstream.errors import FormatError
from dvsstream.events import EVENT_DTYPE, DVS128, sensor_size_of
from dvsstream.io.aedat2 import DEFAULT_CHUNK_EVENTS, _open_error
from dvsstream.io.base import LABEL_DTYPE, FileSource, skip_before

__all__ = ["NpySource", "TONIC_GESTURE_COLUMNS"]

#: column order of tonic's preprocessed DVS128 Gesture arrays
TONIC_GESTURE_COLUMNS = ("x", "y", "p", "t")


def _read_npy_header(path: Path):
    """Return ``(shape, fortran_order, dtype, data_offset)``."""
    try:
        with open(path, "rb") as f:
            try:
                version = npformat.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = npformat.read_array_header_1_0(f, max_header_size=1 << 20)
                elif version == (2, 0):
                    shape, fortran, dtype = npformat.read_array_header_2_0(f, max_header_size=1 << 20)
                else:
                    raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
            except (ValueError, SyntaxError, EOFError, TypeError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise FormatError(f"{path}: not a valid .npy file ({reason}); re-save it with numpy.save") from None
            return shape, fortran, dtype, f.tell()
    except OSError as exc:
        raise _open_error(path, exc) from None


class NpySource(FileSource):
    """Replay a ``.npy`` event array (see the module docstring for layouts).

    Parameters (besides ``speed``, ``loop``, ``packet_us``, ``start_us``):

    sensor_size: ``(width, height)``, default 128x128 (tonic's DVSGesture).
    t_scale: µs per stored time unit; default 1000 for plain ``(N, 4)``
        arrays (tonic Gesture, ms) and 1 for structured arrays (µs).
    chunk_events: rows converted per packet.
    label_from_name: give a file named ``<int>.npy`` that class index as its label.

    ``n_events``, ``start_time_us`` and ``end_time_us`` come from the file
    (first and last row). Seeking is a linear scan.
    """

    format = "npy"

    def __init__(
        self,
        path,
        *,
        sensor_size=DVS128,
        t_scale: float | None = None,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        label_from_name: bool = True,
        **options,
    ) -> None:
        path = Path(path)
        shape, fortran, dtype, offset = _read_npy_header(path)
        if dtype.hasobject:
            raise FormatError(f"{path}: the array holds Python objects (pickled); save plain numbers with numpy.save")
        names = dtype.names
        if names:
            missing = [k for k in ("t", "x", "y", "p") if k not in names]
            if missing or len(shape) != 1:
                raise FormatError(
                    f"{path}: expected a 1-D structured array with fields t, x, y, p; "
                    f"got shape {shape} with fields {list(names)}"
                )
            row_shape: tuple = ()
            self.layout = "structured"
            default_scale = 1
        else:
            if len(shape) != 2 or shape[1] != 4 or dtype.kind not in "iufb":
                raise FormatError(
                    f"{path}: expected a structured (t, x, y, p) array or an (N, 4) numeric array "
                    f"with columns x, y, p, t (tonic); got shape {shape} of {dtype}"
                )
            row_shape = (4,)
            self.layout = "xypt"
            default_scale = 1000
        super().__init__(path, sensor_size_of(sensor_size), "", **options)
        self.t_scale = default_scale if t_scale is None else t_scale
        self.chunk_events = max(1, int(chunk_events))
        n = int(shape[0])
        row_bytes = dtype.itemsize * (row_shape[0] if row_shape else 1)
        try:
            available = os.path.getsize(path) - offset
        except OSError as exc:
            raise _open_error(path, exc) from None
        complete = available // row_bytes if row_bytes else 0
        if complete < n:
            if fortran and row_shape:
                raise FormatError(
                    f"{path}: the file is truncated ({complete} of {n} rows) and column-major, "
                    "so no event is complete; re-save it"
                )
            self.stats.warn(f"{path.name}: the file is truncated; the {complete} complete of {n} events are read")
            n = complete
        self.n_events = n
        self._mm = None
        if n:
            try:
                self._mm = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(n, *row_shape),
                                     order="F" if fortran else "C")
            except (OSError, ValueError) as exc:
                raise FormatError(f"{path}: cannot be memory-mapped ({exc})") from None
            first, last = self._convert(self._mm[:1]), self._convert(self._mm[n - 1 : n])
            self.start_time_us, self.end_time_us = int(first["t"][0]), int(last["t"][0])
            if label_from_name and path.stem.isdigit():
                self.labels = np.array([(self.start_time_us, self.end_time_us + 1, int(path.stem))], dtype=LABEL_DTYPE)

    def close(self) -> None:
        super().close()
        self._mm = None

    def _convert(self, rows: np.ndarray) -> np.ndarray:
        ev = np.empty(rows.shape[0], dtype=EVENT_DTYPE)
        if self.layout == "structured":
            t, x, y, p = rows["t"], rows["x"], rows["y"], rows["p"]
        else:
            x, y, p, t = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        if t.dtype.kind == "f" or not float(self.t_scale).is_integer():
            t = np.rint(t.astype(np.float64) * self.t_scale)
        elif self.t_scale != 1:
            t = t.astype(np.int64) * int(self.t_scale)
        ev["t"] = t
        # negative or huge coordinates wrap to large uint16 values: the base
        # class then counts them as outside the sensor
        ev["x"] = x.astype(np.int64) if x.dtype.kind == "f" else x
        ev["y"] = y.astype(np.int64) if y.dtype.kind == "f" else y
        ev["p"] = p > 0
        return ev

    def _chunks(self) -> Iterator[np.ndarray]:
        mm = self._mm
        if mm is None:
            return
        for i in range(0, mm.shape[0], self.chunk_events):
            if self._closed:
                return
            try:
                yield self._convert(np.asarray(mm[i : i + self.chunk_events]))
            except OSError as exc:  # e.g. the file shrank under the map (SIGBUS aside)
                raise _open_error(self.path, exc) from None

    def _read(self, start_us: int | None) -> Iterator[np.ndarray]:
        return skip_before(self._chunks(), start_us)
