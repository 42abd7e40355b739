"""A real dv-processing ``NetworkWriter`` in a child process, for loopback tests.

In dv-processing 2.0.4 destroying a NetworkWriter that has a connected client
deadlocks the Python process that owns it (the destructor holds the GIL while joining
an I/O thread that needs it), so the child ends with ``os._exit`` once its queue is
sent, which closes the socket exactly as a stopped DV software would.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

WRITER_SCRIPT = r"""
import os, sys, time
import numpy as np
import dv_processing as dv
target, events_path, packet_events, width, height, camera, pace_s, hold_s = sys.argv[1:9]
ev = np.load(events_path)
stream = dv.io.Stream.EventStream(0, "events", camera, (int(width), int(height)))
if target.startswith("unix:"):
    writer = dv.io.NetworkWriter(target[5:], stream)
else:
    host, port = target.rsplit(":", 1)
    writer = dv.io.NetworkWriter(host, int(port), stream)
print("ready", flush=True)
deadline = time.monotonic() + 15
while writer.getClientCount() == 0:  # events written before a client connects are dropped
    if time.monotonic() > deadline:
        os._exit(3)
    time.sleep(0.002)
n = int(packet_events)
for k in range(0, ev.size, n):
    store = dv.EventStore()
    for t, x, y, p in ev[k:k + n].tolist():
        store.push_back(t, x, y, bool(p))
    writer.writeEvents(store)
    time.sleep(float(pace_s))  # a camera sends a packet every few ms; a NetworkReader holds only a few
while writer.getQueuedPacketCount():
    time.sleep(0.001)
time.sleep(0.2)  # let the reader take the last packets before the socket closes
time.sleep(float(hold_s))  # a camera facing a still scene: connected, sending nothing
os._exit(0)  # closes the socket; see the module docstring for why not `del writer`
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_writer(target: str, events: np.ndarray, tmp_dir: Path, packet_events: int = 1000,
                 sensor_size=(320, 240), camera: str = "DVXplorer_TEST01", pace_s: float = 0.005,
                 hold_s: float = 0.0) -> subprocess.Popen:
    """Start a writer on ``target`` (``HOST:PORT`` or ``unix:PATH``) that sends
    ``events`` in packets of ``packet_events``, one every ``pace_s`` seconds (as a camera
    does, about), once a client connects, keeps the connection open ``hold_s`` seconds
    more, sending nothing, then exits."""
    path = Path(tmp_dir) / "writer_events.npy"
    np.save(path, events)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, target, str(path), str(packet_events),
         str(sensor_size[0]), str(sensor_size[1]), camera, str(pace_s), str(hold_s)],
        stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    proc.stdout.close()  # the child prints nothing more; an open pipe is a ResourceWarning
    if line.strip() != "ready":
        proc.kill()
        proc.wait()
        raise AssertionError(f"writer did not start: {line!r}")
    return proc
