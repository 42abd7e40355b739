"""One validation layer for the command line, applied before any work starts.

* argparse ``type=`` functions (:func:`finite_float`, :func:`positive_float`,
  :func:`nonneg_float`, :func:`positive_int`, :func:`nonneg_int`, :func:`device_name`)
  that refuse NaN, inf, negative or zero values with a one-line reason;
* checks run once the arguments are parsed (:func:`check_input`, :func:`check_output_file`,
  :func:`check_output_folder`, :func:`check_device`, :func:`check_memory`): inputs exist,
  an output's folder exists and is writable, an output is neither a folder nor an input
  (same resolved path or same inode), folders the user did not name are never created,
  and a request that needs more memory than the machine has is refused.

Every failure is a :class:`~dvsstream.errors.DvsstreamError` whose text says what, why
and what to do; the CLI prints it as one line and exits with status 2. No torch import
here (``dvsstream info`` stays fast); :func:`check_device` imports it when asked.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

from dvsstream.errors import DvsstreamError
from dvsstream import fileio

__all__ = ["at_most", "finite_float", "positive_float", "nonneg_float", "positive_int", "nonneg_int", "device_name",
           "is_uri", "check_input", "check_output_file", "check_output_folder", "check_not_an_input",
           "check_device", "available_memory_bytes", "check_memory", "fmt_bytes"]

PathLike = Union[str, os.PathLike]

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


_DEVICE = re.compile(r"^(cpu|cuda(:\d{1,3})?|mps)$")


def device_name(text: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (whether it is present: :func:`check_device`)."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu, cuda or cuda:N")
    return text


for _f, _name in ((finite_float, "number"), (positive_float, "positive number"), (nonneg_float, "number >= 0"),
                  (positive_int, "whole number >= 1"), (nonneg_int, "whole number >= 0"), (device_name, "device")):
    _f.__name__ = _name  # argparse names the type in "invalid <name> value" messages


# ------------------------------------------------------------------ inputs
def is_uri(text: str) -> bool:
    """True for the sources that are not files (camera:, tcp://, unix://, synthetic:)."""
    return text in ("camera", "synthetic") or text.startswith(("camera:", "synthetic:", "tcp://", "unix://"))


def check_input(path: PathLike, what: str = "input", uri_ok: bool = False) -> None:
    """An input file exists, is a file and can be read (URIs are left to the sources
    when ``uri_ok``; an unknown ``scheme://`` is refused)."""
    text = os.fspath(path)
    if not text.strip():
        raise DvsstreamError(f"the {what} is an empty name; give a file")
    if uri_ok and is_uri(text):
        return
    if "://" in text and not os.path.exists(text):
        raise DvsstreamError(f"{text}: unknown source scheme (use a file path, camera:, tcp://, unix:// "
                             "or synthetic:)")
    p = Path(text)
    if not p.exists():
        raise DvsstreamError(f"{text}: no such file (the {what}); check the path")
    if p.is_dir():
        raise DvsstreamError(f"{text}: is a folder, not a file (the {what}); give a file")
    if not p.is_file():  # opening a pipe waits for a writer; recordings are read with seeks
        raise DvsstreamError(f"{text}: is not a regular file (a pipe, socket or device; the {what}); "
                             "save it to a file first")
    if not os.access(p, os.R_OK):
        raise DvsstreamError(f"{text}: cannot be read (permission denied; the {what})")


def check_input_folder(path: PathLike, what: str = "--root") -> None:
    """An input folder exists and is a folder."""
    p = Path(path)
    if not p.exists():
        raise DvsstreamError(f"{what} {p}: no such folder; check the path")
    if not p.is_dir():
        raise DvsstreamError(f"{what} {p}: is a file, not a folder")


def _same_file(a: Path, b: Path) -> bool:
    """Same resolved path, or the same inode (hard links, bind mounts)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_not_an_input(output: PathLike, inputs: Iterable[Optional[PathLike]], what: str = "output") -> None:
    """``output`` is none of ``inputs`` (URIs and None are skipped)."""
    out = Path(output)
    for item in inputs:
        if item is None or is_uri(os.fspath(item)):
            continue
        if _same_file(out, Path(item)):
            raise DvsstreamError(f"{output}: the {what} is also an input ({item}); writing it would destroy the "
                                 "input: choose another name")


def check_output_file(path: PathLike, what: str = "output", inputs: Iterable[Optional[PathLike]] = (),
                      force: Optional[bool] = None) -> Path:
    """Before any work: ``path`` can become a file -- it is not a folder, its folder
    exists and is writable, it is not an input, and (``force`` False) it does not
    exist yet (``force`` None: existing files are the caller's business)."""
    if not os.fspath(path).strip():
        raise DvsstreamError(f"the {what} is an empty name; give a file name")
    p = fileio.check_file_target(path, what)
    check_not_an_input(p, inputs, what)
    folder = p.parent if str(p.parent) else Path(".")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DvsstreamError(f"{p}: cannot write into the folder {folder} (permission denied); choose another {what}")
    if force is False and p.exists():
        raise DvsstreamError(f"{p}: already exists; choose another name or pass --force to replace it")
    return p


def check_output_folder(path: PathLike, what: str = "--out", inputs: Iterable[Optional[PathLike]] = ()) -> Path:
    """An output folder: an existing writable folder, or a new one whose parent exists
    (the folder named is created by the command; its missing parents never are)."""
    if not os.fspath(path).strip():
        raise DvsstreamError(f"{what} is an empty name; give a folder")
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise DvsstreamError(f"{what} {p}: is a file, not a folder; give a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise DvsstreamError(f"{what} {p}: cannot write into it (permission denied)")
    else:
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise DvsstreamError(f"{what} {p}: its folder {parent} does not exist; create it first or choose "
                                 "another folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise DvsstreamError(f"{what} {p}: cannot create it in {parent} (permission denied)")
    for item in inputs:
        if item is not None and p.exists() and _same_file(p, Path(item)):
            raise DvsstreamError(f"{what} {p}: is also an input ({item}); choose another folder")
    return p


# ------------------------------------------------------------------ devices, memory
def check_device(name: Optional[str], option: str = "--device") -> None:
    """A device that this PyTorch can use: CUDA present (and index in range) for ``cuda``."""
    if name is None or name == "cpu":
        return
    import torch

    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "no GPU is visible"
            raise DvsstreamError(f"{option} {name}: CUDA is not available here (PyTorch {torch.__version__}, "
                                 f"{build}); use {option} cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise DvsstreamError(f"{option} {name}: there are {torch.cuda.device_count()} CUDA device(s) "
                                 f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    elif name == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise DvsstreamError(f"{option} mps: Apple's Metal backend is not available here; use {option} cpu")


def available_memory_bytes() -> Optional[int]:
    """Memory this process could still get: ``MemAvailable`` of ``/proc/meminfo``
    (Linux), else free physical pages (``os.sysconf``); None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def fmt_bytes(n: float) -> str:
    """``1.5 GB``-style text (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def check_memory(need_bytes: float, what: str, advice: str,
                 available: Optional[Callable[[], Optional[int]]] = None) -> None:
    """Refuse (one line) when ``need_bytes`` exceed the memory available now."""
    have = (available or available_memory_bytes)()
    if have is not None and need_bytes > have:
        raise DvsstreamError(f"{what} would take about {fmt_bytes(need_bytes)} of memory but "
                             f"{fmt_bytes(have)} is available; {advice}")


# ------------------------------------------------------------------ per verb
def check_source(uri: Optional[str], option: str = "--source") -> None:
    """A source: a readable file, or a URI left to its source (``synthetic:`` options
    are checked here: finite, positive numbers)."""
    if uri is None:
        return
    text = os.fspath(uri)
    if text == "synthetic" or text.startswith("synthetic:"):
        from dvsstream.sources.synthetic import parse_synthetic_uri

        for key, value in parse_synthetic_uri(text).items():
            if isinstance(value, bool) or key == "seed":
                continue
            name = "duration" if key == "duration_s" else key
            if key == "noise" and not (math.isfinite(value) and value >= 0):
                raise DvsstreamError(f"{text}: noise must be a finite number, 0 or more, got {value:g}")
            if key != "noise" and not (math.isfinite(value) and value > 0):
                raise DvsstreamError(f"{text}: {name} must be a finite number greater than 0, got {value:g}")
            if key == "rate" and value > 1e9:
                raise DvsstreamError(f"{text}: rate {value:g} ev/s is more than any sensor (at most 1e9)")
        return
    check_input(text, f"{option} recording", uri_ok=True)


def _check_checkpoint(args) -> None:
    path = getattr(args, "checkpoint", None)
    if path is not None:
        check_input(path, "--checkpoint")
    init = getattr(args, "init", None)
    if init is not None:
        check_input(init, "--init checkpoint")


def check_arguments(args: argparse.Namespace) -> None:
    """Every check a parsed command line needs before any work (see the module
    docstring); a one-line :class:`DvsstreamError` on the first that fails."""
    verb = getattr(args, "command", None)
    check = _CHECKS.get(verb)
    if check is not None:
        check(args)
    if getattr(args, "device", None) is not None:
        check_device(args.device)


def _check_info(args) -> None:
    check_input(args.file, "recording")


def check_window(window_ms: float, bins: int, hop_ms: float, to_us: Callable[[float], int] = int) -> None:
    """A sliding window of ``bins`` bins of whole µs, hopping by whole bins, at most a
    window (``to_us``: how the consumer turns ms * 1000 into µs, ``int`` or ``round``)."""
    window_us, hop_us = int(to_us(window_ms * 1000)), int(to_us(hop_ms * 1000))
    if window_us < bins or window_us % bins:
        raise DvsstreamError(f"--window-ms {window_ms:g} does not split into --bins {bins} bins of whole "
                             "microseconds; choose a window that is a multiple of the bins")
    bin_us = window_us // bins
    if hop_us < bin_us or hop_us % bin_us or hop_us > window_us:
        raise DvsstreamError(f"--hop-ms {hop_ms:g} must be a multiple of the bin length {bin_us / 1000:g} ms "
                             f"(--window-ms / --bins) and at most --window-ms {window_ms:g}")


def _check_replay(args) -> None:
    check_input(args.file, "recording")
    check_window(args.window_ms, args.bins, args.hop_ms)


def _check_convert(args) -> None:
    check_input(args.input, "recording to convert")
    check_output_file(args.output, "output", inputs=[args.input], force=args.force)


def _check_record(args) -> None:
    check_source(args.source)
    if args.speed is not None and is_uri(args.source):
        raise DvsstreamError(f"--speed applies to recordings only, not to {args.source} (a live source "
                             "comes at its own pace)")
    check_output_file(args.out, "--out recording", inputs=[args.source], force=args.force)


def _check_run(args) -> None:
    check_source(args.source)
    _check_checkpoint(args)
    if args.json_out is not None:
        check_output_file(args.json_out, "--json-out report", inputs=[args.source, args.checkpoint],
                          force=args.force)


def _check_render(args) -> None:
    if args.source is not None:
        check_input(args.source, "recording to render")
    _check_checkpoint(args)
    from dvsstream.gui.clip import check_clip_output

    check_clip_output(args.out, overwrite=args.force)
    check_output_file(args.out, "--out clip", inputs=[args.source, args.checkpoint])


def _check_gui(args) -> None:
    check_source(args.source)
    _check_checkpoint(args)
    inputs = [args.source, args.checkpoint]
    if args.screenshot is not None:
        check_output_file(args.screenshot, "--screenshot", inputs=inputs, force=args.force)
    if args.export_clip is not None:
        from dvsstream.gui.clip import check_clip_output

        check_clip_output(args.export_clip, overwrite=args.force)
        check_output_file(args.export_clip, "--export-clip", inputs=inputs)
    if args.settings is not None:
        check_output_file(args.settings, "--settings file", inputs=inputs)


def _check_dataset_verb(args) -> None:
    check_input_folder(args.root, "--root")
    _check_checkpoint(args)
    inputs = [args.root, getattr(args, "checkpoint", None), getattr(args, "init", None)]
    if getattr(args, "cache_dir", None) is not None:
        check_output_folder(args.cache_dir, "--cache-dir", inputs=inputs)
    if getattr(args, "export", None) is not None:
        check_output_file(args.export, "--export checkpoint", inputs=inputs, force=getattr(args, "force", False))
    check_output_folder(args.out, "--out", inputs=inputs)


def _check_synth(args) -> None:
    check_output_folder(args.out, "--out")


_CHECKS: dict = {"info": _check_info, "convert": _check_convert, "record": _check_record,
                 "replay": _check_replay, "run": _check_run, "render": _check_render, "gui": _check_gui,
                 "eval": _check_dataset_verb, "train": _check_dataset_verb, "synth": _check_synth}
