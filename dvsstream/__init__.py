"""dvsstream: DVS event streams to time-step frames (Numba), classified by the
Spikformer family (PyTorch) and shown live in a Qt window."""

__version__ = "0.1.0"

from dvsstream.events import EVENT_DTYPE, SensorSize  # noqa: E402,F401
