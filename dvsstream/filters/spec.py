"""``--filter`` specs: parse, validate, name and build the noise filters.

A spec is a comma-separated chain of ``NAME:T`` steps, ``T`` in whole microseconds,
applied left to right; ``--filter`` may also be repeated (the steps join in order):

==================  ==================================================================
``ba:T``            background activity, 8 neighbours (dv-processing's definition)
``denoise:T``       background activity, 4 neighbours (tonic's ``Denoise``)
``refractory:T``    refractory period per pixel (tonic's ``RefractoryPeriod``)
``none``            no filter (the default)
==================  ==================================================================

:class:`FilterSpec` is the parsed, comparable form; ``str(spec)`` is its canonical text
(recorded in HDF5 attributes and frame-cache keys). Bad text raises
:class:`~dvsstream.errors.DvsstreamError` with a one-line reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvsstream.errors import DvsstreamError

if TYPE_CHECKING:
    from dvsstream.filters.noise import EventFilter

#: the filter names and what each means (``--help`` text)
FILTER_KINDS = {
    "ba": "background activity: keep an event if one of its 8 neighbours fired within T us",
    "denoise": "background activity with the 4 edge neighbours (tonic's Denoise)",
    "refractory": "drop an event if its pixel fired within T us (tonic's RefractoryPeriod)",
}
#: the longest window a step accepts, µs (a minute: past it nothing is noise)
MAX_WINDOW_US = 60_000_000

FILTER_HELP = ("noise filter(s) NAME:T, T in microseconds, chained with commas or a repeated --filter: "
               "ba:T (8 neighbours), denoise:T (4, tonic's), refractory:T, or none; e.g. ba:2000,refractory:500")


@dataclass(frozen=True)
class FilterStep:
    """One filter of a chain: its ``kind`` (a key of :data:`FILTER_KINDS`) and window, µs."""

    kind: str
    window_us: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.window_us}"

    def build(self, sensor_size) -> EventFilter:
        """A fresh filter of this step for a ``(width, height)`` sensor."""
        from dvsstream.filters.noise import BackgroundActivity, RefractoryPeriod

        if self.kind == "refractory":
            return RefractoryPeriod(sensor_size, self.window_us)
        return BackgroundActivity(sensor_size, self.window_us, neighbours=8 if self.kind == "ba" else 4)


@dataclass(frozen=True)
class FilterSpec:
    """A parsed ``--filter``: the steps in order (none: no filter)."""

    steps: tuple[FilterStep, ...] = ()

    def __str__(self) -> str:
        return ",".join(str(s) for s in self.steps) or "none"

    def __bool__(self) -> bool:
        return bool(self.steps)

    def build(self, sensor_size) -> EventFilter | None:
        """A fresh filter for a ``(width, height)`` sensor, or None for no filter."""
        if not self.steps:
            return None
        if len(self.steps) == 1:
            return self.steps[0].build(sensor_size)
        from dvsstream.filters.noise import FilterChain

        return FilterChain(s.build(sensor_size) for s in self.steps)


def _parse_step(text: str, option: str) -> FilterStep:
    where = f"{option} {text!r}".strip()
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    if kind not in FILTER_KINDS:
        raise DvsstreamError(f"{where}: unknown filter {kind!r}; use ba:T, denoise:T, refractory:T "
                             "(T in microseconds) or none")
    what = (f"{where}: T must be a whole number of microseconds from 1 to {MAX_WINDOW_US}, "
            f"e.g. {kind}:2000")
    try:
        number = float(value)
    except ValueError:
        raise DvsstreamError(what) from None
    if not sep or not math.isfinite(number) or number != int(number) or not 1 <= number <= MAX_WINDOW_US:
        raise DvsstreamError(what)
    return FilterStep(kind, int(number))


def parse_filter(text: str | Iterable[str] | FilterSpec | None, option: str = "--filter") -> FilterSpec:
    """Parse one ``--filter`` text, a list of them (a repeated option, joined in order),
    or pass a :class:`FilterSpec` through. ``None``, ``""`` and ``none`` mean no filter."""
    if isinstance(text, FilterSpec):
        return text
    if text is None:
        return FilterSpec()
    texts = [text] if isinstance(text, str) else list(text)
    steps = []
    for one in texts:
        for part in str(one).split(","):
            part = part.strip()
            if part and part.lower() != "none":
                steps.append(_parse_step(part, option))
    return FilterSpec(tuple(steps))
