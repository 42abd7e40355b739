"""Live classification: the pipeline from a source through the streaming binner to the
model and its consumers (:mod:`~dvsstream.stream.pipeline`; the model's side
:mod:`~dvsstream.stream.classifier`, the accounting :mod:`~dvsstream.stream.stats`, the
display's event image :mod:`~dvsstream.stream.event_image`, the recording
:mod:`~dvsstream.stream.recorder`), and the headless run (:mod:`~dvsstream.stream.live`).
No Qt."""

from dvsstream.stream.pipeline import Pipeline

__all__ = ["Pipeline"]
