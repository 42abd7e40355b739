"""Event streams from the DV software or a dv-processing ``NetworkWriter``,
over TCP (``tcp://host:port``) or a UNIX socket (``unix:///path/to/socket``).

dv-processing 2.0.4 facts this module relies on:

* ``NetworkReader(ipAddress: str, port: int)`` / ``NetworkReader(socketPath)``
  (a third overload takes TLS certificate and key paths). The constructor
  connects and reads the stream definition synchronously, so resolution and
  camera name are known when it returns. It takes a numeric IP address only
  (a host name fails with "Invalid argument"); names are resolved here first.
  There is no connect/read timeout option.
* Connection refused / missing socket file: ``RuntimeError("connect: Connection
  refused [system:111 at .../reactive_socket_service.hpp:588 ...]")``.
* ``getNextEventBatch()`` does not block: it returns ``None`` when nothing new
  has arrived; ``isRunning()`` turns false once the peer has closed, after which
  already-received batches can still be drained.
* On the other end, ``NetworkWriter(ip, port, stream)`` with
  ``stream = dv.io.Stream.EventStream(id, name, sourceName, (w, h))`` discards
  events written while no client is connected (``getClientCount() == 0``), and
  destroying a ``NetworkWriter`` that has a client deadlocks the Python process
  (its destructor joins an I/O thread that waits for the GIL held by the
  destructor) — keep such a writer alive until the process ends.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Iterator

import numpy as np

from dvsstream.errors import SourceError
from dvsstream.events import SensorSize, sensor_size_of
from dvsstream.io.base import EventSource
from dvsstream.io.camera import DEFAULT_POLL_S, _reason, import_dv, poll_dv_input

__all__ = ["NetworkSource", "parse_uri"]


def parse_uri(uri: str) -> tuple[str, str | None, int | None]:
    """Split ``tcp://host:port`` into ``("tcp", host, port)`` and
    ``unix:///path`` into ``("unix", path, None)``."""
    text = os.fspath(uri)
    if text.startswith("unix://"):
        path = text[len("unix://"):]
        if not path:
            raise SourceError(f"{text}: no socket path (use unix:///path/to/socket)")
        return "unix", path, None
    if text.startswith("tcp://"):
        rest = text[len("tcp://"):].rstrip("/")
        if rest.startswith("["):  # [ipv6]:port
            host, _, port_text = rest[1:].partition("]")
            port_text = port_text.lstrip(":")
        else:
            host, _, port_text = rest.rpartition(":")
        if not host or not port_text:
            raise SourceError(f"{text}: expected tcp://host:port")
        try:
            port = int(port_text)
        except ValueError:
            raise SourceError(f"{text}: port {port_text!r} is not a number") from None
        if not 0 < port < 65536:
            raise SourceError(f"{text}: port {port} is out of range")
        return "tcp", host, port
    raise SourceError(f"{text}: not a network URI (use tcp://host:port or unix:///path)")


class NetworkSource(EventSource):
    """Events from a dv-processing / DV network stream.

    uri: ``tcp://host:port`` or ``unix:///path/to/socket``.
    sensor_size: ``(width, height)`` to use when the stream does not announce
        its resolution (an announced one wins).
    poll_s: sleep between polls when no new events are waiting.

    Iteration ends without error when the peer closes the stream; an error on
    the connection ends it too, with a line in ``stats.warnings``.
    """

    kind = "network"
    format = "dv-network"

    def __init__(self, uri: str, *, sensor_size=None, poll_s: float = DEFAULT_POLL_S) -> None:
        dv = import_dv()
        self.uri = os.fspath(uri)
        scheme, where, port = parse_uri(self.uri)
        hint = "is the DV software / NetworkWriter running?"
        if scheme == "tcp":
            try:
                infos = socket.getaddrinfo(where, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise SourceError(f"{self.uri}: cannot resolve host {where!r} ({exc.strerror})") from None
            address = infos[0][4][0]
            args: tuple = (address, port)
        else:
            if not os.path.exists(where):
                raise SourceError(f"{self.uri}: cannot connect (no socket file {where}); {hint}")
            args = (where,)
        try:
            reader = dv.io.NetworkReader(*args)
        except Exception as exc:
            raise SourceError(f"{self.uri}: cannot connect ({_reason(exc)}); {hint}") from None
        try:
            if not reader.isEventStreamAvailable():
                raise SourceError(f"{self.uri}: the stream carries no events (frames/IMU only?)")
            resolution = reader.getEventResolution()
            if resolution is not None:
                size = SensorSize(int(resolution[0]), int(resolution[1]))
            elif sensor_size is not None:
                size = sensor_size_of(sensor_size)
            else:
                raise SourceError(f"{self.uri}: the stream does not announce its resolution; pass sensor_size=(w, h)")
            camera = str(reader.getCameraName())
        except Exception:
            del reader
            raise
        super().__init__(size, camera)
        self._reader = reader
        self.poll_s = float(poll_s)
        self._lock = threading.Lock()
        #: True once the peer closed the stream
        self.ended = False
        # read from the moment of connection: a NetworkReader drops what it holds when the
        # peer closes, so a stream shorter than the consumer's start-up would be lost
        self._stream = poll_dv_input(self, self._lock, lambda: self._reader, self.poll_s, self._on_end)

    def describe(self) -> dict:
        info = super().describe()
        info["uri"] = self.uri
        return info

    def close(self) -> None:
        super().close()
        with self._lock:
            self._reader = None  # the reader disconnects when it is freed

    def _packets(self) -> Iterator[np.ndarray]:
        return self._stream

    def _on_end(self, exc: BaseException | None) -> None:
        self.ended = True
        if exc is not None:
            self.stats.warn(f"{self.uri}: the connection failed ({_reason(exc)}); the stream ended")
