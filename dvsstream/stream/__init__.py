"""Live classification: the pipeline from a source through the streaming binner to the
model and its consumers (:mod:`~dvsstream.stream.pipeline`: :class:`Pipeline`; the
classifier thread in :mod:`~dvsstream.stream.classifier`, its counters in
:mod:`~dvsstream.stream.stats`, the event image in :mod:`~dvsstream.stream.event_image`,
the recorder in :mod:`~dvsstream.stream.recorder`), and the headless run
(:mod:`~dvsstream.stream.live`). No Qt.

``from dvsstream.stream import Pipeline`` loads torch on first use of the name; the
headless run's constants (``dvsstream.stream.live``) do not.
"""

from __future__ import annotations

from dvsstream.lazy import lazy_attributes

__all__ = ["Pipeline"]

__getattr__, __dir__ = lazy_attributes(__name__, {"Pipeline": "dvsstream.stream.pipeline"})
