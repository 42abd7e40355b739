"""The pipeline's recorder across a loop or a seek back: the recording's clock goes on,
every event kept, in order (a looping file recorded from the window, as the Teach panel does)."""

from __future__ import annotations

import numpy as np

from dvsstream.events import EVENT_DTYPE
from dvsstream.io.hdf5 import HDF5Source
from dvsstream.stream.recorder import StreamRecorder


def _packet(t0: int, n: int) -> np.ndarray:
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = t0 + np.arange(n) * 10
    ev["x"], ev["y"], ev["p"] = np.arange(n) % 64, 3, 1
    return ev


def test_a_loop_continues_the_recordings_clock(tmp_path):
    rec = StreamRecorder(None, (64, 64))
    rec.start(tmp_path / "r.h5")
    first, second = _packet(1_000, 100), _packet(1_000, 100)  # the file starts again
    for packet in (first, first[:0], second):
        rec.write(packet)
    assert rec.stop() == str(tmp_path / "r.h5")
    with HDF5Source(tmp_path / "r.h5") as src:
        ev = np.concatenate(list(src))
    assert ev.size == 200 and np.all(np.diff(ev["t"]) >= 0)
    assert np.array_equal(ev["t"][:100], first["t"]) and ev["t"][100] == first["t"][-1] + 1
    assert np.array_equal(np.diff(ev["t"][100:]), np.diff(second["t"]))  # the gaps of the second pass kept
    assert np.array_equal(ev["x"], np.concatenate([first["x"], second["x"]]))
    rec.start(tmp_path / "r2.h5")  # a new recording starts its own clock
    rec.write(_packet(5, 3))
    rec.stop()
    with HDF5Source(tmp_path / "r2.h5") as src:
        assert np.concatenate(list(src))["t"][0] == 5
