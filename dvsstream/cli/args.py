"""The command line's shared pieces: a parser whose errors are one line, the option groups
several verbs take (geometry, sensor size, trusting a checkpoint), the clock of the time
options, a progress bar, and the argparse ``type=`` functions that refuse NaN, inf,
negative or zero values with a one-line reason. No torch here."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from typing import Callable, Union

#: the datasets ``eval`` and ``train`` read (and ``tonic:NAME``: :func:`dataset_name`)
DATASETS = ("cifar10dvs", "dvsgesture")

#: the one clock of ``record --duration`` and ``run --duration``, for their help
STREAM_CLOCK = ("from the first event: the wall clock for a camera, a network stream or synthetic:; "
                "for a recording replayed at --speed X, X times the wall clock; unpaced, as fast as it reads")


# ------------------------------------------------------------------ helpers
def progress_bar(total: int | None, unit: str = "ev", desc: str = ""):
    """A tqdm bar on stderr, shown on terminals only."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, disable=None,
                file=sys.stderr, dynamic_ncols=True, leave=False)


def fmt_rate(rate: float) -> str:
    return f"{rate / 1e6:.3f} M ev/s" if rate >= 1e5 else f"{rate / 1e3:.1f} k ev/s"


def print_warnings(stats) -> None:
    for message in stats.warnings:
        print(f"warning: {message}", file=sys.stderr)


#: what argparse takes for a value rather than an option although it starts with "-": a
#: negative number, region or size (``--roi -10,0,64,64``, ``--start -1e3``, ``--resize -1x5``),
#: which the option's type then judges (argparse's own matcher knows only ``-10`` and ``-1.5``)
NEGATIVE_VALUE = re.compile(r"^-\.?\d[\d.,xXeE+-]*$")


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (what, why, where to read more)
    and exit status 2, without the usage text; its subparsers are of the same class.
    Options must be spelled out (no abbreviations: ``--resiz`` is refused, not taken for
    ``--resize``), and negative values are values (:data:`NEGATIVE_VALUE`)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_VALUE

    def parse_known_args(self, args=None, namespace=None):
        """As argparse's, but what is left over is refused here, by the (sub)command that
        was given it (its ``--help`` named; a misspelt option gets the closest one), and
        never left to the parent to call "unrecognized"."""
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            import difflib

            option = next((a.split("=")[0] for a in extras if a.startswith("-") and not NEGATIVE_VALUE.match(a)), None)
            close = difflib.get_close_matches(option, list(self._option_string_actions), n=1,
                                               cutoff=0.7) if option else []
            hint = f"; did you mean {close[0]}?" if close else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return namespace, extras

    def error(self, message: str):
        name = self.prog.split()[0]  # "dvsstream" for its subcommands, an app's own name for apps/
        self.exit(2, f"{name}: error: {message.strip().splitlines()[0]} (see {self.prog} --help)\n")


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust-checkpoint``: full unpickling of a checkpoint file the user trusts."""
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="unpickle the checkpoint fully (it may run code: only for a file you trust); "
                             "by default only tensors and plain values are read")


def argument_type(parse):
    """An argparse ``type=`` from a parser raising ``ValueError`` with a one-line reason."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = parse.__name__
    return convert


def add_geometry_arguments(parser: argparse.ArgumentParser) -> None:
    """``--roi x,y,w,h`` and ``--resize WxH``: the region of the sensor a model sees."""
    from dvsstream.events import parse_roi, parse_size

    parser.add_argument("--roi", type=argument_type(parse_roi), default=None, metavar="X,Y,W,H",
                        help="the region of the sensor the model sees (default: the whole sensor when it "
                             "pools exactly to the model's input, else the largest centred region of its shape)")
    parser.add_argument("--resize", type=argument_type(parse_size), default=None, metavar="WxH",
                        help="the model's input size the region is pooled or resized to (default: the model's)")


def add_sensor_size_argument(parser: argparse.ArgumentParser) -> None:
    """``--sensor-size WxH``: the sensor of a recording whose header states none."""
    from dvsstream.events import parse_size

    parser.add_argument("--sensor-size", type=argument_type(parse_size), default=None, metavar="WxH",
                        help="the sensor of a Prophesee, .npy or jAER AEDAT 2.0 recording whose header states none "
                             "(default: Prophesee: from the data, with a warning; .npy and AEDAT 2.0: 128x128, "
                             "the DVS128)")


def add_filter_argument(parser: argparse.ArgumentParser) -> None:
    """``--filter NAME:T[,NAME:T...]`` (repeatable): noise filters before anything else
    sees the events; :func:`filter_of` joins the repeats into one
    :class:`~dvsstream.filters.FilterSpec`."""
    from dvsstream.errors import DvsstreamError
    from dvsstream.filters import FILTER_HELP, parse_filter

    def filter_spec(text: str):
        try:
            return parse_filter(text, option="")
        except DvsstreamError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument("--filter", action="append", type=filter_spec, default=None, metavar="NAME:T",
                        help=FILTER_HELP)


def filter_of(args: argparse.Namespace):
    """The :class:`~dvsstream.filters.FilterSpec` of ``--filter`` (all its repeats, in
    order; no filter when absent)."""
    from dvsstream.filters import parse_filter

    return parse_filter(getattr(args, "filter", None))


def trust_named_checkpoints(args: argparse.Namespace) -> None:
    """``--trust-checkpoint``: the checkpoints the command names (``--checkpoint``,
    ``--init``, ``--resume``'s ``OUT/last.pt``) may be unpickled fully."""
    if not getattr(args, "trust_checkpoint", False):
        return
    from dvsstream.models.checkpoints import trust_file

    last = os.path.join(args.out, "last.pt") if getattr(args, "resume", False) else None
    for path in (getattr(args, "checkpoint", None), getattr(args, "init", None), last):
        if path is not None:
            trust_file(path)


#: the largest integer an option takes (larger ones are typos, and overflow numpy's int64 µs)
MAX_INT = 10 ** 12


# ------------------------------------------------------------------ argparse types
def _number(text: str, kind: type, what: str) -> Union[int, float]:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        value = None
    if value is None and kind is int:  # 1e6 and 16.0 are whole numbers too
        try:
            as_float = float(text)
            value = int(as_float) if math.isfinite(as_float) and as_float.is_integer() else None
        except (TypeError, ValueError):
            pass
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    if abs(value) > MAX_INT:
        raise argparse.ArgumentTypeError(f"{text!r} is too large (at most {MAX_INT:.0e})")
    return value


def finite_float(text: str) -> float:
    """Any finite number (no NaN, no inf)."""
    return float(_number(text, float, "a number"))


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def nonneg_float(text: str) -> float:
    """A finite number >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    value = int(_number(text, int, "a whole number"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def nonneg_int(text: str) -> int:
    """A whole number >= 0."""
    value = int(_number(text, int, "a whole number"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def at_most(kind: Callable[[str], Union[int, float]], limit: float) -> Callable[[str], Union[int, float]]:
    """``kind`` (one of the types above) that also refuses values above ``limit``."""
    def convert(text: str):
        value = kind(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"{text!r} is more than {limit:g}")
        return value

    convert.__name__ = kind.__name__
    return convert


#: the longest window ``--window-ms`` takes: an hour (a model sees a fraction of a second;
#: far longer windows are typos, and hold every event of the window in memory)
MAX_WINDOW_MS = 3_600_000


def window_ms(text: str) -> float:
    """A window length in ms: a finite number > 0, at most :data:`MAX_WINDOW_MS`."""
    value = positive_float(text)
    if value > MAX_WINDOW_MS:
        raise argparse.ArgumentTypeError(f"{text!r} ms is too long a window (at most {MAX_WINDOW_MS} ms, an hour)")
    return value


def dataset_name(text: str) -> str:
    """``--dataset``: cifar10dvs, dvsgesture or ``tonic:NAME`` (any case), as
    :func:`dvsstream.datasets.names.canonical_name` spells it; one line naming the valid
    names otherwise."""
    from dvsstream.datasets.names import canonical_name
    from dvsstream.errors import DvsstreamError

    try:
        return canonical_name(text)
    except DvsstreamError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_DEVICE = re.compile(r"^(cpu|cuda(:\d{1,3})?|mps)$")


def device_name(text: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (whether it is present: :func:`check_device`)."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu, cuda or cuda:N")
    return text


for _f, _name in ((finite_float, "number"), (positive_float, "positive number"), (nonneg_float, "number >= 0"),
                  (positive_int, "whole number >= 1"), (nonneg_int, "whole number >= 0"), (device_name, "device"),
                  (window_ms, "window length"), (dataset_name, "dataset")):
    _f.__name__ = _name  # argparse names the type in "invalid <name> value" messages
