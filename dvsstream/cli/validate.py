"""One validation layer for the command line, applied before any work starts.

* the argparse ``type=`` functions are in :mod:`dvsstream.cli.args`;
* each verb's module has its ``check(args)``, built from the checks here;
* checks run once the arguments are parsed (:func:`check_input`, :func:`check_output_file`,
  :func:`check_output_folder`, :func:`check_device`, :func:`check_memory`): inputs exist,
  an output's folder exists and is writable, an output is neither a folder nor an input
  (same resolved path or same inode), folders the user did not name are never created,
  and a request that needs more memory than the machine has is refused;
* no write destroys a file: an output file's suffix fits what is written
  (:data:`~dvsstream.fileio.OUTPUT_SUFFIXES`, ``--force`` or not), ``--settings`` replaces
  only a dvsstream settings file, and ``--out DIR`` is empty, new or the verb's own
  earlier output (:data:`OWN_OUTPUTS`) unless ``--force``;
* ``--workers`` is capped at the CPUs this process may use (:func:`cap_workers`, a note).

Every failure is a :class:`~dvsstream.errors.DvsstreamError` whose text says what, why
and what to do; the CLI prints it as one line and exits with status 2. No torch import
here (``dvsstream info`` stays fast); :func:`check_device` imports it when asked.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Iterable, Optional

from dvsstream import fileio
from dvsstream.errors import DvsstreamError
from dvsstream.fileio import (
    PathLike,
    check_not_an_input,
    check_suffix,
    is_uri,
    same_file,
)

__all__ = ["OWN_OUTPUTS", "cap_workers", "check_arguments", "check_checkpoints", "check_device", "check_input",
           "check_input_folder", "check_model_name", "check_output_file", "check_output_folder",
           "check_settings_file", "check_source", "check_window_memory", "cpu_count"]

#: what ``synth``, ``train``, ``eval`` and ``pretrain`` write into their ``--out DIR``: ``(marker, names)``.
#: A non-empty folder is the verb's own earlier output when it holds the marker or
#: nothing but those names (and hidden temporaries); any other is refused without
#: ``--force``. (tests/cli/test_safety.py checks these against what the verbs write.)
OWN_OUTPUTS: dict[str, tuple[str, frozenset]] = {
    "synth": ("synth_summary.json", frozenset({"synth_summary.json", "hdf5", "tonic"})),
    "train": ("last.pt", frozenset({"last.pt", "best.pt", "log.csv", "result.json", "tb"})),
    "eval": ("report.json", frozenset({"report.json", "samples.csv", "confusion.png", "per_class_accuracy.png",
                                       "confidence.png"})),
    "pretrain": ("encoder.pt", frozenset({"encoder.pt", "last.pt", "reconstruction.png", "log.csv", "result.json",
                                          "tb"})),
}



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
    """An input folder exists and is a folder (an empty name is refused: it would be
    the current folder, every recording under it read)."""
    if not os.fspath(path).strip():
        raise DvsstreamError(f"{what} is an empty name; give a folder")
    p = Path(path)
    if not p.exists():
        raise DvsstreamError(f"{what} {p}: no such folder; check the path")
    if not p.is_dir():
        raise DvsstreamError(f"{what} {p}: is a file, not a folder")


def check_output_file(path: PathLike, what: str = "output", inputs: Iterable[Optional[PathLike]] = (),
                      force: Optional[bool] = None, kind: Optional[str] = None) -> Path:
    """Before any work: ``path`` can become a file -- its suffix fits ``kind`` (a key of
    :data:`~dvsstream.fileio.OUTPUT_SUFFIXES`, whatever ``force``), it is not a folder,
    its folder exists and is writable, it is not an input, and (``force`` False) it does
    not exist yet (``force`` None: existing files are the caller's business)."""
    if not os.fspath(path).strip():
        raise DvsstreamError(f"the {what} is an empty name; give a file name")
    p = fileio.check_file_target(path, what)
    check_not_an_input(p, inputs, what)
    if kind is not None:
        check_suffix(path, kind, what)
    folder = p.parent if str(p.parent) else Path(".")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DvsstreamError(f"{p}: cannot write into the folder {folder} (permission denied); choose another {what}")
    if force is False and p.exists():
        raise DvsstreamError(f"{p}: already exists; choose another name or pass --force to replace it")
    return p


def check_output_folder(path: PathLike, what: str = "--out", inputs: Iterable[Optional[PathLike]] = (),
                        own: Optional[str] = None, force: bool = False, keep: Iterable[Optional[PathLike]] = ()) -> Path:
    """An output folder: an existing writable folder, or a new one whose parent exists
    (the folder named is created by the command; its missing parents never are).
    ``own`` (a verb of :data:`OWN_OUTPUTS`): an existing folder must also be empty or
    that verb's earlier output, unless ``force``; ``keep``: what the same command names
    inside it (``--cache-dir``, ``--export``), which does not count."""
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
        if item is not None and p.exists() and same_file(p, Path(item)):
            raise DvsstreamError(f"{what} {p}: is also an input ({item}); choose another folder")
    if own is not None and not force and p.is_dir():
        _check_own_folder(p, what, own, keep)
    return p


def _check_own_folder(p: Path, what: str, verb: str, keep: Iterable[Optional[PathLike]]) -> None:
    """``p`` is empty or ``verb``'s own earlier output (see :data:`OWN_OUTPUTS`)."""
    marker, names = OWN_OUTPUTS[verb]
    kept = [Path(k) for k in keep if k is not None]
    try:
        entries = sorted(e for e in os.listdir(p) if not (e.startswith(".") and e.endswith(".tmp")))
    except OSError as exc:
        raise DvsstreamError(f"{what} {p}: cannot list it ({exc.strerror or exc})") from None
    entries = [e for e in entries if not any(same_file(p / e, k) for k in kept)]
    if not entries or marker in entries or all(e in names for e in entries):
        return
    others = [e for e in entries if e not in names]
    shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    raise DvsstreamError(f"{what} {p}: the folder holds other files ({shown}) and is not an earlier {verb} "
                         f"output; choose a new or empty folder, or pass --force to write {verb}'s files beside them")


def check_settings_file(path: PathLike, what: str = "--settings") -> None:
    """Before any work: ``path`` may become the window's settings file -- a ``.json``
    name, and an existing file only when it is a dvsstream settings file (or empty):
    the window replaces it when it closes."""
    check_suffix(path, "settings", f"{what} file")
    p = Path(path)
    if p.is_dir():
        raise DvsstreamError(f"{what} {p}: is a folder; give a settings file name (.json)")
    if not p.exists() or (p.is_file() and p.stat().st_size == 0):
        return
    from dvsstream.gui.state import is_settings_data

    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not is_settings_data(data):
        raise DvsstreamError(f"{what} {p}: is not a dvsstream settings file, and the window would replace it "
                             "when it closes; give a new file name or an earlier settings file")


def check_set_size(out: PathLike, samples_per_class: int, duration_s: float, formats: tuple,
                   workers: int) -> None:
    """``synth``'s sizes, before anything is made: the set fits the memory and the disk
    (:func:`dvsstream.synth.dataset.check_set_fits`)."""
    from dvsstream.synth.dataset import check_set_fits

    check_set_fits(out, samples_per_class, duration_s, formats, min(workers, cpu_count()))


def cpu_count() -> int:
    """The CPUs this process may use (its affinity where the system says; at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cap_workers(args: argparse.Namespace) -> None:
    """``--workers N`` above the CPUs this process may use becomes that count, with a
    one-line note on stderr (more processes than CPUs only share them, and each holds
    its own memory)."""
    workers = getattr(args, "workers", None)
    cpus = cpu_count()
    if isinstance(workers, int) and workers > cpus:
        print(f"note: --workers {workers} is more than the {cpus} CPU(s) this process may use; using {cpus}",
              file=sys.stderr)
        args.workers = cpus


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


# ------------------------------------------------------------------ per verb
def check_source(uri: Optional[str], option: str = "--source") -> None:
    """A source: a readable file, or a URI left to its source (``synthetic:`` options
    are checked here: finite, positive numbers)."""
    if uri is None:
        return
    text = os.fspath(uri)
    if text == "synthetic" or text.startswith("synthetic:"):
        from dvsstream.io.synthetic import parse_synthetic_uri

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


def check_model_name(name: Optional[str], option: str = "--model") -> None:
    """A model name the registry knows (imports torch: only the verbs with ``--model``)."""
    if name is None:
        return
    from dvsstream.models.registry import list_models

    models = list_models()
    if name not in models:
        import difflib

        close = difflib.get_close_matches(name, models, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise DvsstreamError(f"{option} {name}: unknown model{hint}; the models are: {', '.join(models)}")


def check_window_memory(model: str, bins: int | None, option: str = "--bins") -> None:
    """Before any work (``teach``, ``pretrain``): one window of ``bins`` time bins (None:
    the model's T) through ``model`` and back fits the memory available now. An estimate
    as ``run``'s (:func:`~dvsstream.stream.live.window_memory_bytes`: the frames held and a
    step's activations per bin), three times for the backward pass; a window of a billion
    bins is refused here instead of failing to allocate it (imports torch)."""
    from dvsstream.heap import check_memory
    from dvsstream.models import get_config
    from dvsstream.stream.live import window_memory_bytes

    check_model_name(model)
    config = get_config(model)
    n = bins if bins is not None else config.T
    check_memory(3 * window_memory_bytes(config, tuple(config.img_size), n),
                 f"{option} {n}: one window of {n} bins through {model}",
                 f"use fewer {option} (the model's T={config.T}: leave it out)")


def check_checkpoints(args: argparse.Namespace) -> None:
    """``--checkpoint`` and ``--init``, where the verb has them, are readable files."""
    path = getattr(args, "checkpoint", None)
    if path is not None:
        check_input(path, "--checkpoint")
    init = getattr(args, "init", None)
    if init is not None:
        check_input(init, "--init checkpoint")


def check_arguments(args: argparse.Namespace) -> None:
    """Every check a parsed command line needs before any work (see the module
    docstring); a one-line :class:`DvsstreamError` on the first that fails."""
    check = getattr(args, "check", None)  # the verb's own (``set_defaults(check=...)``)
    if check is not None:
        check(args)
    if getattr(args, "device", None) is not None:
        check_device(args.device)
    cap_workers(args)
    check_model_name(getattr(args, "model", None))


