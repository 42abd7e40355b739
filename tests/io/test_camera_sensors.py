"""Current iniVation cameras through the live camera path (issue 12, part 3).

dv-processing opens any iniVation camera; CameraSource only reads its resolution, its
name and its EventStores. These stand-ins feed real dv-processing EventStores of the
DAVIS346 (346x260), DVXplorer (640x480) and DVXplorer Lite (320x240) geometry through
CameraSource, as tests/test_live_sources.py does for the DVS128, and check the sensor
size, every event (the four far corners included) and the out-of-sensor count.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

dv = pytest.importorskip("dv_processing")

from dvsstream.events import EVENT_DTYPE  # noqa: E402
from dvsstream.io.camera import CameraSource  # noqa: E402

T0 = 1_700_000_000_000_000  # µs, a Unix-epoch time as dv-processing stamps camera events


class SizedStandInCamera:
    """The methods of a dv-processing camera that CameraSource calls (resolution, name,
    batches, running), for any sensor size; it stops after its EventStores."""

    def __init__(self, name: str, resolution: tuple[int, int], stores) -> None:
        self.name, self.resolution, self.stores = name, resolution, list(stores)

    def getEventResolution(self):
        return self.resolution

    def getCameraName(self):
        return self.name

    def getNextEventBatch(self):
        return self.stores.pop(0) if self.stores else None

    def isRunning(self):
        return bool(self.stores)


def scene(width: int, height: int, n: int = 6000, seed: int = 0) -> np.ndarray:
    """n events over the whole sensor, the four far corners first, time-sorted."""
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["t"] = T0 + np.sort(rng.integers(0, 200_000, n))
    ev["x"] = rng.integers(0, width, n)
    ev["y"] = rng.integers(0, height, n)
    ev["p"] = rng.integers(0, 2, n)
    corners = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]
    for i, (x, y) in enumerate(corners):
        ev[i]["x"], ev[i]["y"] = x, y
    return ev


def to_stores(ev: np.ndarray, per_store: int = 1000) -> list:
    stores = []
    for a in range(0, ev.size, per_store):
        store = dv.EventStore()
        for t, x, y, p in ev[a: a + per_store].tolist():
            store.push_back(t, x, y, bool(p))
        stores.append(store)
    return stores


def consume(source, timeout: float = 10.0) -> np.ndarray:
    packets: list[np.ndarray] = []
    th = threading.Thread(target=lambda: packets.extend(source), daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        source.close()
        pytest.fail("the stand-in camera stream did not end")
    return np.concatenate(packets) if packets else np.zeros(0, EVENT_DTYPE)


@pytest.mark.parametrize("name,size", [
    ("DAVIS346_STANDIN", (346, 260)),
    ("DVXplorer_STANDIN", (640, 480)),
    ("DVXplorerLite_STANDIN", (320, 240)),
])
def test_real_sized_sensors_arrive_intact(name, size):
    w, h = size
    ev = scene(w, h)
    with CameraSource(SizedStandInCamera(name, size, to_stores(ev))) as cam:
        assert cam.kind == "camera" and cam.camera == name
        assert tuple(cam.sensor_size) == (w, h)
        assert cam.describe()["width"] == w and cam.describe()["height"] == h
        got = consume(cam)
    np.testing.assert_array_equal(got, ev)
    corners = {(int(x), int(y)) for x, y in zip(got["x"][:4], got["y"][:4])}
    assert corners == {(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)}
    assert cam.stats.events_read == ev.size and cam.stats.out_of_bounds == 0
    assert cam.stats.out_of_order == 0


def test_events_beyond_the_sensor_are_counted():
    w, h = 346, 260
    ev = scene(w, h, n=2000)
    ev["x"][10] = w  # one past the right edge
    ev["y"][20] = h  # one past the bottom edge
    with CameraSource(SizedStandInCamera("DAVIS346_STANDIN", (w, h), to_stores(ev, 500))) as cam:
        got = consume(cam)
    assert cam.stats.out_of_bounds == 2 and got.size == ev.size - 2
    np.testing.assert_array_equal(got, np.delete(ev, [10, 20]))
    assert any("346x260" in warning for warning in cam.stats.warnings)


def test_real_dvxplorer_events_through_the_camera_path(real_data):
    """The DVXplorer recording's own events (320x240) as the camera would deliver them."""
    from dvsstream.io import open_source

    with open_source(real_data("dvxplorer_sample.aedat4"), chunk_events=20_000) as src:
        ev = np.concatenate(list(src))
        name, size = src.camera, tuple(src.sensor_size)
    part = ev[:20_000]  # 0.1 s of a real scene keeps the Python push_back loop short
    with CameraSource(SizedStandInCamera(name, size, to_stores(part, 5000))) as cam:
        assert tuple(cam.sensor_size) == (320, 240) and cam.camera == "DVXplorer_DXB00010"
        got = consume(cam)
    np.testing.assert_array_equal(got, part)
    assert cam.stats.out_of_bounds == 0
