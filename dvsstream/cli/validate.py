"""One validation layer for the command line, applied before any work starts.

* the argparse ``type=`` functions are in :mod:`dvsstream.cli.args`;
* each verb's module has its ``check(args)``, built from the checks here;
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
from pathlib import Path
from typing import Iterable, Optional

from dvsstream import fileio
from dvsstream.errors import DvsstreamError
from dvsstream.fileio import PathLike, check_not_an_input, is_uri, same_file

__all__ = ["check_arguments", "check_checkpoints", "check_device", "check_input", "check_input_folder",
           "check_model_name", "check_output_file", "check_output_folder", "check_source"]





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
        if item is not None and p.exists() and same_file(p, Path(item)):
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
    check_model_name(getattr(args, "model", None))


