"""Live sources: a real dv-processing NetworkWriter over loopback TCP and a UNIX
socket (no mocks), connection errors, and the camera path without a camera.

The NetworkWriter runs in a child process (see ``tests/dvwriter.py`` for why).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

dv = pytest.importorskip("dv_processing")

from dvsstream.errors import SourceError  # noqa: E402
from dvsstream.events import EVENT_DTYPE  # noqa: E402
from dvsstream.io import open_source  # noqa: E402
from dvsstream.io.camera import event_store_to_array, open_camera  # noqa: E402
from dvsstream.io.network import parse_uri  # noqa: E402

from dvwriter import free_port, start_writer as _start_writer  # noqa: E402

N_PACKETS = 50
PACKET_EVENTS = 1000
T0 = 1_700_000_000_000_000  # µs, an epoch-like time as cameras produce

def expected_events() -> np.ndarray:
    k, i = np.divmod(np.arange(N_PACKETS * PACKET_EVENTS), PACKET_EVENTS)
    ev = np.empty(k.size, dtype=EVENT_DTYPE)
    ev["t"] = T0 + k * PACKET_EVENTS * 3 + i * 3
    ev["x"] = (i * 7 + k) % 320
    ev["y"] = (i * 13 + 2 * k) % 240
    ev["p"] = (i + k) % 3 == 0
    return ev


def start_writer(target: str, tmp_dir):
    return _start_writer(target, expected_events(), tmp_dir, PACKET_EVENTS)


def consume(source, timeout: float = 15.0) -> list[np.ndarray]:
    """Iterate in a thread so that a stream that never ends fails the test instead of hanging it."""
    packets: list[np.ndarray] = []
    errors: list[BaseException] = []

    def run():
        try:
            packets.extend(source)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        source.close()
        th.join(2)
        pytest.fail("the network stream did not end when the writer closed")
    assert not errors, errors
    return packets


def check_stream(source, proc) -> None:
    with source:
        assert source.kind == "network"
        assert tuple(source.sensor_size) == (320, 240)
        assert source.camera == "DVXplorer_TEST01"
        packets = consume(source)
        assert proc.wait(timeout=10) == 0
        got = np.concatenate(packets)
        want = expected_events()
        assert got.dtype == EVENT_DTYPE
        assert got.size == want.size
        np.testing.assert_array_equal(got, want)
        assert source.stats.events_read == want.size
        assert source.stats.out_of_bounds == 0 and source.stats.out_of_order == 0
        assert source.stats.warnings == []
        assert source.ended


@pytest.mark.parametrize("kind", ["tcp", "tcp-hostname", "unix"])
def test_loopback_stream_receives_every_event_and_ends(kind, tmp_path):
    """A real NetworkWriter (in a child process) on TCP -- by IP and by host name --
    and on a UNIX socket: every event arrives, and the stream ends when it closes."""
    if kind == "unix":
        path = tmp_path / "dv.sock"
        proc = start_writer(f"unix:{path}", tmp_path)
        uri = f"unix://{path}"
    else:
        port = free_port()
        proc = start_writer(f"127.0.0.1:{port}", tmp_path)
        uri = f"tcp://{'localhost' if kind == 'tcp-hostname' else '127.0.0.1'}:{port}"
    try:
        check_stream(open_source(uri), proc)
    finally:
        proc.kill()
        proc.wait()


def test_connection_refused_names_uri():
    uri = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(SourceError) as info:
        open_source(uri)
    msg = str(info.value)
    assert uri in msg and "cannot connect" in msg and "Connection refused" in msg
    assert "NetworkWriter" in msg and "\n" not in msg and ".hpp" not in msg


def test_missing_unix_socket():
    uri = "unix:///nonexistent/dvsstream.sock"
    with pytest.raises(SourceError, match="cannot connect"):
        open_source(uri)


@pytest.mark.parametrize("uri", ["tcp://127.0.0.1", "tcp://:5", "tcp://host:http", "tcp://h:70000", "unix://"])
def test_bad_network_uris(uri):
    with pytest.raises(SourceError) as info:
        parse_uri(uri)
    assert uri in str(info.value)


def test_parse_uri():
    assert parse_uri("tcp://10.0.0.2:7777") == ("tcp", "10.0.0.2", 7777)
    assert parse_uri("tcp://[::1]:7777/") == ("tcp", "::1", 7777)
    assert parse_uri("unix:///tmp/a.sock") == ("unix", "/tmp/a.sock", None)


def test_no_camera_connected():
    if list(dv.io.camera.discover()):
        pytest.skip("a camera is connected")
    for uri in ("camera:", "camera", "camera:DVS128_12345"):
        with pytest.raises(SourceError) as info:
            open_source(uri)
        assert "no iniVation camera is connected" in str(info.value)
    with pytest.raises(SourceError, match="no iniVation camera is connected"):
        open_camera(biases={"PR": 3})


def test_event_store_conversion():
    store = dv.EventStore()
    rows = [(T0, 0, 0, True), (T0 + 1, 345, 259, False), (T0 + 1, 17, 3, True), (T0 + 40, 5, 6, False)]
    for t, x, y, p in rows:
        store.push_back(t, x, y, p)
    raw = store.numpy()
    assert raw.dtype.names == ("timestamp", "x", "y", "polarity")  # what dv-processing 2.0.4 returns
    ev = event_store_to_array(store)
    assert ev.dtype == EVENT_DTYPE
    assert ev.tolist() == [(t, x, y, int(p)) for t, x, y, p in rows]
    assert event_store_to_array(dv.EventStore()).size == 0
    assert event_store_to_array(None).dtype == EVENT_DTYPE


# ============================================================================ camera loop
class StandInCamera:
    """The few methods of a dv-processing camera that CameraSource calls, fed
    with real EventStores; after them it either stops (``isRunning()`` false)
    or fails as an unplugged USB device does."""

    Bias = dv.io.camera.DVS128.Bias

    def __init__(self, stores, fail=False):
        self.stores, self.fail, self.biases = list(stores), fail, {}

    def getEventResolution(self):
        return (128, 128)

    def getCameraName(self):
        return "DVS128_STANDIN"

    def getNextEventBatch(self):
        if self.stores:
            return self.stores.pop(0)
        if self.fail:
            raise RuntimeError("libusb: device disconnected [system:19 at usb.hpp:12]")
        return None

    def isRunning(self):
        return bool(self.stores)

    def setBias(self, bias, value):
        self.biases[bias.name] = value

    def getBias(self, bias):
        return self.biases.get(bias.name, 0)


def make_stores(n_stores=5, n=200):
    stores, rows = [], []
    for k in range(n_stores):
        store = dv.EventStore()
        for i in range(n):
            row = (T0 + k * n + i, (i * 3) % 128, (i * 5) % 128, i % 2 == 0)
            store.push_back(*row)
            rows.append(row)
        stores.append(store)
    return stores, rows


@pytest.mark.parametrize("fail", [False, True])
def test_camera_stream_ends_with_warning_when_unplugged(fail):
    from dvsstream.io.camera import CameraSource

    stores, rows = make_stores()
    with CameraSource(StandInCamera(stores, fail=fail)) as cam:
        assert cam.kind == "camera" and cam.camera == "DVS128_STANDIN" and cam.sensor_size == (128, 128)
        got = np.concatenate(consume(cam, timeout=5))
        assert got.tolist() == [(t, x, y, int(p)) for t, x, y, p in rows]
        assert len(cam.stats.warnings) == 1
        warning = cam.stats.warnings[0]
        assert "DVS128_STANDIN" in warning and "ended" in warning
        if fail:
            assert "device disconnected" in warning and "usb.hpp" not in warning
    assert cam.device is None  # released on close


def test_camera_biases():
    from dvsstream.io.camera import CameraSource

    device = StandInCamera([])
    cam = CameraSource(device)
    cam.set_bias("pr", 5)
    cam.set_bias("DIFF_ON", 300)
    assert device.biases == {"PR": 5, "DIFF_ON": 300} and cam.get_bias("PR") == 5
    assert "REFR" in cam.bias_names()
    with pytest.raises(SourceError) as info:
        cam.set_bias("contrast_threshold_on", 2)
    assert "DVS128_STANDIN" in str(info.value) and "supported: CAS" in str(info.value)
    cam.close()
    with pytest.raises(SourceError, match="closed"):
        cam.set_bias("PR", 1)


def test_record_network_stream_to_hdf5(tmp_path):
    from dvsstream.io.hdf5 import RecordingReader
    from dvsstream.io.record import record

    port = free_port()
    proc = start_writer(f"127.0.0.1:{port}", tmp_path)
    try:
        with open_source(f"tcp://127.0.0.1:{port}") as src:
            summary = record(src, tmp_path / "net.h5")
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
    want = expected_events()
    assert summary["events"] == want.size and not summary["interrupted"]
    with RecordingReader(tmp_path / "net.h5") as r:
        assert r.camera == "DVXplorer_TEST01" and r.sensor_size == (320, 240)
        np.testing.assert_array_equal(r.read(), want)


def test_record_duration_ends_when_the_stream_falls_silent(tmp_path):
    """A camera that sends 0.15 s of events, then nothing while staying connected (a
    still scene): ``record --duration 1`` ends on the wall clock (1 s + the grace), not
    when the sender hangs up 30 s later, with every event it sent."""
    from dvsstream.io.hdf5 import RecordingReader
    from dvsstream.io.record import record
    from dvsstream.io.base import WALL_GRACE_S

    port = free_port()
    proc = _start_writer(f"127.0.0.1:{port}", expected_events(), tmp_path, PACKET_EVENTS, hold_s=30)
    try:
        with open_source(f"tcp://127.0.0.1:{port}") as src:
            wall0 = time.monotonic()
            summary = record(src, tmp_path / "still.h5", duration_s=1.0)
            wall = time.monotonic() - wall0
        assert proc.poll() is None  # the sender was still connected
    finally:
        proc.kill()
        proc.wait()
    assert 1.0 <= wall < 1.0 + WALL_GRACE_S + 3, wall
    assert summary["events"] == N_PACKETS * PACKET_EVENTS and not summary["interrupted"]
    with RecordingReader(tmp_path / "still.h5") as r:
        np.testing.assert_array_equal(r.read(), expected_events())
