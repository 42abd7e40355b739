"""Event sources: recordings, cameras, network streams.

``open_source(uri, **options)`` is the one entry point:

==========================  =====================================================
uri                         source
==========================  =====================================================
``path/to/file``            a recording; the format is detected from its content
                            (AEDAT 4, AEDAT 2.0, AEDAT 3.1, our HDF5, tonic .npy,
                            Prophesee EVT 3.0 / EVT 2.0 .raw and .dat); an
                            N-MNIST / ATIS ``.bin`` (no header) by its name
``camera:`` / ``camera:SN`` a live iniVation camera through dv-processing
``tcp://host:port``         a DV / dv-processing ``NetworkWriter`` stream
``unix:///path/socket``     the same over a UNIX socket
``synthetic:rate=1e6,...``  a generated rotating-bar stream (demos, benchmarks)
==========================  =====================================================

Every source yields :data:`~dvsstream.events.EVENT_DTYPE` packets and has
``.sensor_size``, ``.stats`` and ``.close()``.
"""

from __future__ import annotations

import os
from pathlib import Path

from dvsstream.errors import FormatError, SourceError
from dvsstream.io.base import (  # noqa: F401
    LABEL_DTYPE,
    PACED_PACKET_US,
    EventSource,
    FileSource,
    Pacer,
    SourceStats,
    skip_before,
    start_source_at,
)

#: leading bytes of each file format we read -> format name
MAGIC = (
    (b"#!AER-DAT4", "aedat4"),
    (b"#!AER-DAT3", "aedat3.1"),
    (b"#!AER-DAT2", "aedat2"),
    (b"\x89HDF\r\n\x1a\n", "hdf5"),
    (b"\x93NUMPY", "npy"),
    (b"%", "prophesee"),  # Prophesee RAW / DAT: a '%' header (the reader tells them apart)
)

#: the formats read, as the one line for an unknown file names them
FORMATS_READ = ("AEDAT 4, AEDAT 3.1, AEDAT 2.0, dvsstream's HDF5, tonic .npy, Prophesee EVT 3.0 / EVT 2.0 .raw "
                "and .dat, and N-MNIST / ATIS .bin (known by its name: that format has no header)")

#: file name suffix -> the formats such a file holds (an ATIS ``.bin`` has no magic bytes: its
#: name is all there is; the others are read by content, a disagreeing name gets a note)
SUFFIXES = {
    ".aedat4": ("aedat4",), ".aedat": ("aedat2", "aedat3.1"), ".h5": ("hdf5",), ".hdf5": ("hdf5",),
    ".npy": ("npy",), ".raw": ("prophesee",), ".dat": ("prophesee",), ".bin": ("atis-bin",),
}

#: what each format is called in messages
FORMAT_NAMES = {
    "aedat4": "an AEDAT 4 recording", "aedat3.1": "an AEDAT 3.1 recording", "aedat2": "an AEDAT 2.0 recording",
    "hdf5": "an HDF5 file", "npy": "a .npy array", "prophesee": "a Prophesee recording",
    "atis-bin": "an N-MNIST / ATIS .bin recording",
}


def _by_magic(head: bytes, suffix: str) -> str | None:
    """The format whose magic ``head`` starts with. A ``.bin`` file (headerless: its first
    byte is an event's x) counts as Prophesee only with a whole printable ``%`` line."""
    for magic, name in MAGIC:
        if head.startswith(magic):
            if name == "prophesee" and suffix == ".bin":
                line, newline, _ = head.partition(b"\n")
                if not (newline and len(line) > 2 and all(32 <= c < 127 or c == 13 for c in line)):
                    continue
            return name
    return None


def detect_format(path) -> str:
    """Name the format of a recording from its first bytes (not its extension); an
    N-MNIST / ATIS ``.bin`` file, which has no magic bytes, from its name.

    Raises :class:`FormatError` with a one-line reason for an empty, unreadable
    or unknown file."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_dir():
        raise SourceError(f"{path}: is a folder, expected a recording file")
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})") from None
    if not head:
        raise FormatError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    found = _by_magic(head, suffix)
    if found is not None:
        return found
    if head.startswith(b"#!AER-DAT"):
        version = head[9:12].decode("ascii", "replace")
        raise FormatError(f"{path}: AEDAT version {version} is not supported (use AEDAT 2.0, 3.1 or 4.0)")
    if suffix == ".bin":
        return "atis-bin"
    raise FormatError(f"{path}: unknown format; dvsstream reads {FORMATS_READ}")


def name_mismatch(path, fmt: str) -> str | None:
    """A one-line note when ``path``'s suffix names another format than ``fmt`` (the
    content, which is what is read); None when they agree or the suffix names none."""
    path = Path(path)
    expected = SUFFIXES.get(path.suffix.lower())
    if expected is None or fmt in expected:
        return None
    return (f"{path.name}: named {path.suffix} but holds {FORMAT_NAMES.get(fmt, fmt)}; "
            "read by its content")


#: formats whose header may state no geometry: their readers take ``sensor_size``
SIZED_BY_USER = ("prophesee", "npy", "aedat2", "atis-bin")


def open_file(path, sensor_size=None, **options) -> FileSource:
    """Open a recording, choosing the reader by content. ``options`` go to
    :class:`~dvsstream.io.base.FileSource` (``speed``, ``loop``,
    ``packet_us``, ``start_us``) and to the reader.

    ``sensor_size`` (``--sensor-size``, ``(width, height)``): the sensor of a file whose
    header may state none (:data:`SIZED_BY_USER`: Prophesee files, ``.npy`` arrays,
    jAER AEDAT 2.0 files, whose header names the chip at most, and N-MNIST / ATIS
    ``.bin`` files, which have no header; see their readers for the default). The other
    formats state theirs: for them it is a :class:`SourceError` saying so. A file whose
    name and content disagree is read by its content, with a note in ``stats.warnings``."""
    fmt = detect_format(path)
    if sensor_size is not None:
        if fmt not in SIZED_BY_USER:
            raise SourceError(f"{path}: the file ({fmt}) states its own sensor size; --sensor-size is for "
                              "Prophesee, .npy, AEDAT 2.0 and N-MNIST / ATIS .bin files, whose header may "
                              "state none (drop it)")
        options["sensor_size"] = sensor_size
    source = _reader(path, fmt)(path, **options)
    note = name_mismatch(path, fmt)
    if note:
        source.stats.warn(note)
    return source


def _reader(path, fmt: str) -> type:
    """The reader class of format ``fmt``."""
    if fmt == "aedat4":
        from dvsstream.io.aedat4 import Aedat4Source as cls
    elif fmt == "aedat3.1":
        from dvsstream.io.aedat3 import Aedat31Source as cls
    elif fmt == "aedat2":
        from dvsstream.io.aedat2 import Aedat2Source as cls
    elif fmt == "hdf5":
        from dvsstream.io.prophesee import check_not_prophesee_hdf5

        check_not_prophesee_hdf5(path)  # Prophesee's own HDF5 (ECF): name the conversion
        from dvsstream.io.hdf5 import HDF5Source as cls
    elif fmt == "prophesee":
        from dvsstream.io.prophesee import PropheseeSource as cls
    elif fmt == "atis-bin":
        from dvsstream.io.atis_bin import AtisBinSource as cls
    else:
        from dvsstream.io.npy import NpySource as cls
    return cls


def open_source(uri: str | os.PathLike, **options) -> EventSource:
    """Open any event source by URI (see the module docstring)."""
    text = os.fspath(uri)
    if options.get("sensor_size", 0) is None:
        del options["sensor_size"]  # not given: each source's own default
    if text == "camera" or text.startswith("camera:"):
        from dvsstream.io.camera import open_camera

        if "sensor_size" in options:
            raise SourceError(f"{text}: --sensor-size is for recordings whose header states no geometry; "
                              "a camera reports its own")

        return open_camera(text.partition(":")[2] or None, **options)
    if text == "synthetic" or text.startswith("synthetic:"):
        from dvsstream.io.synthetic import SyntheticSource, parse_synthetic_uri

        return SyntheticSource(**{**parse_synthetic_uri(text), **options})
    if text.startswith(("tcp://", "unix://")):
        from dvsstream.io.network import NetworkSource

        return NetworkSource(text, **options)
    if "://" in text:
        raise SourceError(f"{text}: unknown source scheme (use a file path, camera:, tcp://, unix:// or synthetic:)")
    return open_file(text, **options)
