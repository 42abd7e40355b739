"""Noise filters for event streams, live and offline (``--filter``).

Streaming Numba kernels (:mod:`~dvsstream.filters.kernels`) with their state across
packets, so that the live result equals the offline one; the filter objects
(:mod:`~dvsstream.filters.noise`: :class:`EventFilter` ``(events) -> events`` with
``reset()`` and counts of events in and removed) and the ``--filter`` text that builds
them (:mod:`~dvsstream.filters.spec`). Definitions match tonic's ``Denoise`` /
``RefractoryPeriod`` and dv-processing's ``BackgroundActivityNoiseFilter`` event for
event (see :mod:`~dvsstream.filters.noise`). Above :mod:`dvsstream.binning`, below
:mod:`dvsstream.io`. No torch, no I/O.
"""

from dvsstream.filters.spec import (
    FILTER_HELP,
    FILTER_KINDS,
    FilterSpec,
    FilterStep,
    parse_filter,
)
from dvsstream.lazy import lazy_attributes

# the filter objects load Numba on first use: parsing --filter (the CLI) does not
_DEFINED_IN = {name: "dvsstream.filters.noise" for name in
               ("BackgroundActivity", "EventFilter", "FilterChain", "RefractoryPeriod", "apply_filter")}

__all__ = [
    "FILTER_HELP",
    "FILTER_KINDS",
    "BackgroundActivity",
    "EventFilter",
    "FilterChain",
    "FilterSpec",
    "FilterStep",
    "RefractoryPeriod",
    "apply_filter",
    "parse_filter",
]

__getattr__, __dir__ = lazy_attributes(__name__, _DEFINED_IN)
