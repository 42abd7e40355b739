"""Live iniVation cameras (DVS128, DAVIS, DVXplorer) through dv-processing.

``open_camera()`` discovers the connected cameras with
``dv_processing.io.camera.discover()`` and opens one with
``dv_processing.io.camera.open(serial)``; :class:`CameraSource` then polls
``getNextEventBatch()`` (non-blocking: it returns ``None`` when nothing new has
arrived) while ``isRunning()``.

dv-processing 2.0.4 facts this module relies on:

* ``EventStore.numpy()`` returns a **new** structured array (it owns its memory
  through a capsule; not a view) with fields ``timestamp <i8, x <i2, y <i2,
  polarity i1`` and itemsize 16 (padded). :func:`event_store_to_array` turns it
  into :data:`~dvsstream.events.EVENT_DTYPE` (``numpy()`` plus one copy: ~12 ms
  per million events).
* Timestamps are int64 µs (Unix epoch) already unwrapped by the library.
* ``camera.open()`` returns the model's class (``DVS128``, ``DAVIS``,
  ``DVXplorer``...); ``DVS128`` has ``setBias(DVS128.Bias.<NAME>, int)`` /
  ``getBias`` with biases ``CAS, INJGND, REQPD, PUX, DIFF_OFF, REQ, REFR, PUY,
  DIFF_ON, DIFF, FOLL, PR``; ``DVXplorer`` has ``setContrastThresholdOn/Off(int)``;
  DAVIS biases need coarse/fine structures (``setDavis346BiasCoarseFine``) and
  are left to ``CameraSource.device``.

The same polling loop (:func:`poll_dv_input`) serves
:class:`~dvsstream.io.network.NetworkSource`.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Iterator

import numpy as np

from dvsstream.errors import SourceError
from dvsstream.events import EVENT_DTYPE, SensorSize
from dvsstream.io.base import EventSource

__all__ = ["open_camera", "list_cameras", "CameraSource", "event_store_to_array", "import_dv", "poll_dv_input"]

#: seconds to sleep when the device has no new events (keeps latency ~1 ms
#: without a busy loop that would starve other Python threads of the GIL)
DEFAULT_POLL_S = 0.0005


def import_dv():
    """Import ``dv_processing`` or explain how to install it."""
    try:
        import dv_processing
    except ImportError as exc:
        raise SourceError(
            f"dv-processing is not installed or cannot be loaded ({exc}); pip install dv-processing"
        ) from None
    return dv_processing


def event_store_to_array(store) -> np.ndarray:
    """Convert a ``dv_processing.EventStore`` (or ``None``) to an
    :data:`EVENT_DTYPE` array: ``t`` = ``timestamp`` µs, ``p`` = 1 for ON."""
    if store is None:
        return np.zeros(0, dtype=EVENT_DTYPE)
    raw = store.numpy()
    out = np.empty(raw.shape[0], dtype=EVENT_DTYPE)
    if raw.shape[0]:
        out["t"] = raw["timestamp"]
        out["x"] = raw["x"]  # int16 -> uint16; coordinates are never negative
        out["y"] = raw["y"]
        out["p"] = raw["polarity"] != 0
    return out


def _reason(exc: BaseException) -> str:
    """First part of a dv-processing / boost error, without the source location."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(" [", 1)[0]


def poll_dv_input(source: EventSource, lock: threading.Lock, get_reader,
                  poll_s: float, on_end) -> Iterator[np.ndarray]:
    """Yield :data:`EVENT_DTYPE` packets from a dv-processing input (camera or
    ``NetworkReader``) until ``source`` is closed or the input stops.

    ``get_reader()`` returns the live reader object or ``None`` once closed;
    calls into it are made under ``lock`` so that ``close()`` from another
    thread never frees it mid-call. When ``isRunning()`` turns false, what the
    library already received is drained, then ``on_end(None)`` is called; an
    exception ends the stream with ``on_end(exc)``. Never raises for a lost device.

    The input is polled eagerly by a background thread into an unbounded queue, so a
    slow consumer never loses data: dv-processing 2.0.4's readers hold only a few
    packets, and a ``NetworkReader`` discards what it holds when the peer closes
    (measured: a consumer taking 20 ms per packet received 10 of 78 packets). The thread
    starts when this function is called, not at the first packet taken: a source that
    calls it when it connects loses nothing sent before its consumer is ready.
    """
    packets: queue.Queue = queue.Queue()
    done = object()

    def pump() -> None:
        try:
            for packet in _poll_dv_input(source, lock, get_reader, poll_s, on_end):
                packets.put(packet)
        finally:
            packets.put(done)

    threading.Thread(target=pump, name="dv-input-poll", daemon=True).start()
    return _drain(packets, done)


def _drain(packets: queue.Queue, done: object) -> Iterator[np.ndarray]:
    """The packets a :func:`poll_dv_input` thread queued, until its ``done`` mark."""
    while True:
        item = packets.get()
        if item is done:
            return
        yield item


def _poll_dv_input(source: EventSource, lock: threading.Lock, get_reader,
                   poll_s: float, on_end) -> Iterator[np.ndarray]:
    stopped = False  # the input said it stopped: drain what it holds, then end
    while not source._closed:
        with lock:
            reader = get_reader()
            if reader is None:
                return
            try:
                batch = reader.getNextEventBatch()
                if batch is None and not stopped and not reader.isRunning():
                    stopped = True
                    continue  # one more read: batches may have arrived before the stop
            except Exception as exc:  # device unplugged, socket reset...
                if not stopped:
                    on_end(exc)
                    return
                batch = None
        if batch is not None:
            packet = event_store_to_array(batch)
            if packet.size:
                yield packet
            continue
        if stopped:
            on_end(None)
            return
        time.sleep(poll_s)


# ============================================================================ camera
def open_camera(serial: str | None = None, *, biases: dict | None = None, **options) -> "CameraSource":
    """Open a connected iniVation camera (the first one, or the one with this
    serial number) and apply ``biases`` (see :meth:`CameraSource.set_bias`).

    Raises :class:`~dvsstream.errors.SourceError` when no camera (or not that
    one) is connected."""
    dv = import_dv()
    try:
        found = list(dv.io.camera.discover())
    except Exception as exc:
        raise SourceError(f"camera discovery failed ({_reason(exc)}); check USB permissions (udev rules)") from None
    if not found:
        raise SourceError(
            "no iniVation camera is connected (dv-processing found none); "
            "plug in a DVS128/DVXplorer/DAVIS or use a recording"
        )
    serials = [str(d.serialNumber) for d in found]
    if serial and serial not in serials:
        listing = ", ".join(f"{s} ({_model_name(d)})" for s, d in zip(serials, found))
        raise SourceError(f"camera {serial!r} is not connected; connected: {listing}")
    cam = CameraSource(serial or serials[0], **options)
    try:
        for name, value in (biases or {}).items():
            cam.set_bias(name, value)
    except Exception:
        cam.close()
        raise
    return cam


def list_cameras() -> list[tuple[str, str]]:
    """``(serial number, model name)`` of each connected iniVation camera; empty when
    none is connected or dv-processing cannot be loaded (a GUI lists, it never fails)."""
    try:
        dv = import_dv()
        return [(str(d.serialNumber), _model_name(d)) for d in dv.io.camera.discover()]
    except Exception:
        return []


def _model_name(descriptor) -> str:
    model = getattr(descriptor, "cameraModel", None)
    return getattr(model, "name", str(model))


class CameraSource(EventSource):
    """Events from a live camera.

    device: a serial number (``str``), ``None`` for the first camera found, or an
        already opened dv-processing camera object (e.g.
        ``dv_processing.io.camera.DVS128()`` configured by hand).
    poll_s: sleep between polls when no new events are waiting.

    Iteration ends when the source is closed or the camera stops (unplugged,
    ``isRunning()`` false, or an exception from the driver): the end is recorded
    in ``stats.warnings`` instead of raising. ``device`` exposes the raw
    dv-processing object for settings this class does not wrap.
    """

    kind = "camera"
    format = "live"

    def __init__(self, device=None, *, poll_s: float = DEFAULT_POLL_S) -> None:
        dv = import_dv()
        if device is None or isinstance(device, str):
            try:
                device = dv.io.camera.open(device) if device else dv.io.camera.open()
            except Exception as exc:
                which = f"camera {device!r}" if device else "the camera"
                raise SourceError(
                    f"cannot open {which} ({_reason(exc)}); is it in use by another program (DV GUI)?"
                ) from None
        resolution = device.getEventResolution()
        name = str(device.getCameraName())
        if resolution is None:
            raise SourceError(f"{name}: the camera provides no event stream")
        super().__init__(SensorSize(int(resolution[0]), int(resolution[1])), name)
        self.device = device
        self.poll_s = float(poll_s)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ biases
    def bias_names(self) -> list[str]:
        """Names accepted by :meth:`set_bias` for this camera model."""
        dev = self._open_device()
        bias_enum = getattr(type(dev), "Bias", None)
        if bias_enum is not None and hasattr(dev, "setBias"):
            return sorted(bias_enum.__members__)
        names = []
        for setter, name in (("setContrastThresholdOn", "contrast_threshold_on"),
                             ("setContrastThresholdOff", "contrast_threshold_off")):
            if hasattr(dev, setter):
                names.append(name)
        return names

    def set_bias(self, name: str, value: int) -> None:
        """Set one bias: a DVS128 bias by name (``"PR"``, ``"DIFF_ON"``, ... case
        insensitive) or a DVXplorer ``contrast_threshold_on`` / ``_off``.
        Raises :class:`SourceError` naming the supported biases otherwise."""
        key = str(name).strip()
        dev = self._open_device()
        bias_enum = getattr(type(dev), "Bias", None)
        if bias_enum is not None and hasattr(dev, "setBias"):
            member = bias_enum.__members__.get(key.upper())
            if member is not None:
                with self._lock:
                    dev.setBias(member, int(value))
                return
        setter = {"contrast_threshold_on": "setContrastThresholdOn",
                  "contrast_threshold_off": "setContrastThresholdOff"}.get(key.lower())
        if setter and hasattr(dev, setter):
            with self._lock:
                getattr(dev, setter)(int(value))
            return
        supported = self.bias_names()
        hint = f"supported: {', '.join(supported)}" if supported else \
            "this model's biases are not wrapped; set them on CameraSource.device directly"
        raise SourceError(f"{self.camera}: has no bias {name!r}; {hint}")

    def get_bias(self, name: str) -> int:
        """Current value of a bias settable with :meth:`set_bias`."""
        dev = self._open_device()
        bias_enum = getattr(type(dev), "Bias", None)
        if bias_enum is not None and hasattr(dev, "getBias"):
            member = bias_enum.__members__.get(str(name).upper())
            if member is not None:
                return int(dev.getBias(member))
        getter = {"contrast_threshold_on": "getContrastThresholdOn",
                  "contrast_threshold_off": "getContrastThresholdOff"}.get(str(name).lower())
        if getter and hasattr(dev, getter):
            return int(getattr(dev, getter)())
        raise SourceError(f"{self.camera}: has no bias {name!r}; supported: {', '.join(self.bias_names()) or 'none'}")

    def _open_device(self):
        dev = self.device
        if dev is None:
            raise SourceError(f"{self.camera}: the camera is closed")
        return dev

    # ------------------------------------------------------------------ stream
    def close(self) -> None:
        super().close()
        with self._lock:
            self.device = None  # dv-processing stops the camera when the object goes

    def _packets(self) -> Iterator[np.ndarray]:
        return poll_dv_input(self, self._lock, lambda: self.device, self.poll_s, self._on_end)

    def _on_end(self, exc: BaseException | None) -> None:
        if exc is None:
            self.stats.warn(f"{self.camera}: the camera stopped (disconnected?); the stream ended")
        else:
            self.stats.warn(f"{self.camera}: the camera failed ({_reason(exc)}); the stream ended")
