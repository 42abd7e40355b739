"""Writing files so that nothing is lost: every output goes to a temporary name beside
its destination and is renamed over it only once complete (``os.replace`` is atomic on
one file system), so a crash, a full disk or an exception leaves the previous file
whole and no stray temporary behind; and no output is ever one of the inputs
(:func:`check_not_an_input`). :func:`json_safe` readies numbers for strict JSON reports.
No torch, no Qt."""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

from dvsstream.errors import DvsstreamError

__all__ = ["OUTPUT_SUFFIXES", "check_file_target", "check_not_an_input", "check_suffix", "is_uri",
           "json_safe", "replace_atomically", "same_file", "temporary_beside"]

PathLike = Union[str, os.PathLike]


def temporary_beside(path: Union[str, os.PathLike]) -> Path:
    """A unique hidden name in ``path``'s folder (``.<name>.<pid>.<random>.tmp``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def replace_atomically(path: Union[str, os.PathLike], write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` to :func:`temporary_beside` ``path``, then rename it onto ``path``;
    the temporary is removed whatever happens. Returns ``path``. Errors (``OSError`` and
    whatever ``write`` raises) propagate: callers word them for their users."""
    path = Path(path)
    tmp = temporary_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def json_safe(obj: Any) -> Any:
    """``obj`` ready for strict JSON (``json.dumps(..., allow_nan=False)``), recursively:
    NaN and infinities -> None, dict keys -> ``str``, tuples -> lists, numpy scalars and
    arrays and torch tensors (anything with ``tolist()``) -> Python numbers and lists;
    anything else is left as it is."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if not isinstance(obj, (str, bytes, int)) and callable(getattr(obj, "tolist", None)):
        return json_safe(obj.tolist())
    return obj


def check_file_target(path: Union[str, os.PathLike], what: str = "output") -> Path:
    """Before any work: ``path`` can become a file (its folder exists, it is not a
    folder). Raises a one-line :class:`~dvsstream.errors.DvsstreamError` otherwise;
    missing folders are never created (a typo would scatter files). The command-line
    check, :func:`dvsstream.cli.validate.check_output_file`, adds permissions, inputs and
    ``--force`` to this."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise DvsstreamError(f"{path}: is a folder; give the {what} a file name")
    if not folder.is_dir():
        raise DvsstreamError(f"{path}: the folder {folder} does not exist; create it or choose another {what}")
    return path


#: what each kind of output file holds, and the suffixes that name it (the first one is
#: what to suggest): a name with another suffix is refused, ``--force`` or not, so that a
#: report never lands in a recording's name nor a recording in a text file's
OUTPUT_SUFFIXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "recording": ("an HDF5 recording", (".h5", ".hdf5")),
    "report": ("a JSON report", (".json",)),
    "settings": ("a JSON settings file", (".json",)),
    "picture": ("a PNG picture", (".png",)),
    "clip": ("an MP4 or GIF clip", (".mp4", ".gif")),
    "checkpoint": ("a PyTorch checkpoint", (".pt", ".pth")),
}


def check_suffix(path: PathLike, kind: str, what: str = "output") -> None:
    """Before any work: ``path``'s suffix (any case) fits ``kind`` (a key of
    :data:`OUTPUT_SUFFIXES`); a one-line :class:`~dvsstream.errors.DvsstreamError` otherwise."""
    holds, suffixes = OUTPUT_SUFFIXES[kind]
    suffix = Path(path).suffix
    if suffix.lower() not in suffixes:
        label = what.split()[0] if what.strip() else "output"
        label = label if label.startswith("-") else f"the {label}"
        named = f"its name ends in {suffix}" if suffix else "its name has no suffix"
        stem = Path(path).name[: -len(suffix)] if suffix else Path(path).name
        raise DvsstreamError(f"{os.fspath(path)}: {label} is written as {holds}, but {named}; name it "
                             f"{' or '.join(stem + s for s in suffixes)} (nothing was written)")


def same_file(a: Path, b: Path) -> bool:
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
        if same_file(out, Path(item)):
            raise DvsstreamError(f"{output}: the {what} is also an input ({item}); writing it would destroy the "
                                 "input: choose another name")


# ------------------------------------------------------------------ inputs
def is_uri(text: str) -> bool:
    """True for the sources that are not files (camera:, tcp://, unix://, synthetic:)."""
    return text in ("camera", "synthetic") or text.startswith(("camera:", "synthetic:", "tcp://", "unix://"))
