"""Live classification: the pipeline from a source through the streaming binner to the
model and its consumers (:mod:`~dvsstream.stream.pipeline`), and the headless run
(:mod:`~dvsstream.stream.live`). No Qt."""

from dvsstream.stream.pipeline import Pipeline

__all__ = ["Pipeline"]
