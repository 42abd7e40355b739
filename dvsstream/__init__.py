"""dvsstream: DVS event streams to time-step frames (Numba), classified by the
Spikformer family (PyTorch) and shown live in a Qt window.

The main library names are importable from here; each loads its subpackage on first
use (``import dvsstream`` imports neither torch nor Qt):

==========================  ==================================================
``open_source``             :mod:`dvsstream.io` -- a recording, camera or stream
``events_to_frames``        :mod:`dvsstream.binning` -- a whole recording's frames
``StreamingBinner``         :mod:`dvsstream.binning` -- causal sliding windows
``create_model``            :mod:`dvsstream.models` -- a registered architecture
``load_checkpoint``         :mod:`dvsstream.models` -- a checkpoint file
``Pipeline``                :mod:`dvsstream.stream` -- source -> frames -> model
``load_dataset``            :mod:`dvsstream.datasets` -- CIFAR10-DVS, DVS128 Gesture
``FrameSpec``               :mod:`dvsstream.datasets` -- how samples become frames
==========================  ==================================================
"""

from __future__ import annotations

__version__ = "0.1.0"

from dvsstream.events import EVENT_DTYPE, SensorSize  # noqa: E402,F401
from dvsstream.lazy import lazy_attributes  # noqa: E402

#: public name -> the module that defines it
_LAZY = {
    "open_source": "dvsstream.io",
    "events_to_frames": "dvsstream.binning",
    "StreamingBinner": "dvsstream.binning",
    "create_model": "dvsstream.models",
    "load_checkpoint": "dvsstream.models",
    "Pipeline": "dvsstream.stream",
    "load_dataset": "dvsstream.datasets",
    "FrameSpec": "dvsstream.datasets",
}

__all__ = ["EVENT_DTYPE", "SensorSize", "__version__", *_LAZY]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
