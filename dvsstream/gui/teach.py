"""The Teach panel's Qt-free half: the folder of class recordings it builds
(:class:`TeachFolder`) and the training that runs beside the stream (:class:`TeachJob`).

The folder is what ``dvsstream teach ROOT`` reads: ``ROOT/<class name>/*.h5``, one
sub-folder per class (``_background``: the optional "nothing" class). The panel records
into it from the current source, lists the classes with their seconds of events, moves a
removed class aside (to ``ROOT/.removed/``, never deleting a recording), and trains.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from dvsstream.errors import DvsstreamError

__all__ = ["ClassRecordings", "TeachFolder", "TeachJob", "check_class_name"]

#: characters a class folder may not hold (a path separator, control characters, ...)
_BAD_NAME = re.compile(r"[/\\\x00-\x1f:*?\"<>|]")


def check_class_name(name: str) -> str:
    """``name`` stripped, or a :class:`DvsstreamError` saying why it cannot name a class folder."""
    name = name.strip()
    if not name:
        raise DvsstreamError("give the class a name first")
    if name.startswith(".") or _BAD_NAME.search(name):
        raise DvsstreamError(f"class name {name!r}: use letters, digits, spaces, '-' or '_' "
                             "(no '/', no leading '.')")
    return name


@dataclass(frozen=True)
class ClassRecordings:
    """One class of the folder: its ``name``, its recordings and their seconds of events."""

    name: str
    files: tuple[Path, ...]
    seconds: float


class TeachFolder:
    """``root/<class>/<recordings>``, the folder ``dvsstream teach`` reads."""

    def __init__(self, root) -> None:
        self.root = Path(root).expanduser()

    def classes(self) -> list[ClassRecordings]:
        """Every class sub-folder (sorted; hidden ones left out) with its recordings."""
        from dvsstream.datasets.recordings import find_recordings

        if not self.root.is_dir():
            return []
        out = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files = tuple(find_recordings(folder))
            out.append(ClassRecordings(folder.name, files, sum(_seconds(f) for f in files)))
        return out

    def new_recording(self, name: str) -> Path:
        """A new file for a recording of class ``name`` (its folder made when missing)."""
        folder = self.root / check_class_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path, k = folder / f"rec-{stamp}.h5", 1
        while path.exists():
            path, k = folder / f"rec-{stamp}-{k}.h5", k + 1
        return path

    def remove_class(self, name: str) -> Path:
        """Move the class's folder to ``root/.removed/`` (its recordings are kept); returns where."""
        folder = self.root / check_class_name(name)
        if not folder.is_dir():
            raise DvsstreamError(f"there is no class {name!r} in {self.root}")
        aside = self.root / ".removed" / f"{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        aside.parent.mkdir(exist_ok=True)
        shutil.move(str(folder), str(aside))
        return aside


def _seconds(path: Path) -> float:
    """Seconds from a recording's first to last event, from the reader's time range (no
    event is read; 0 when it cannot be opened)."""
    from dvsstream.io import open_file

    try:
        with open_file(path) as source:
            start, end = source.start_time_us, source.end_time_us
    except (DvsstreamError, OSError, ValueError):
        return 0.0
    return (end - start) / 1e6 if start is not None and end is not None else 0.0


class TeachJob:
    """``dvsstream teach`` on a folder in a background thread, beside the stream.

    ``run(progress)`` does the work (``progress(fraction, text)`` reports); :attr:`done`,
    :attr:`error` (one line) and :attr:`result` (the checkpoint written) say how it went;
    :attr:`progress` / :attr:`text` are the last report, for the panel's bar."""

    def __init__(self, run: Callable[[Callable[[float, str], None]], Any]) -> None:
        self._run = run
        self.progress, self.text = 0.0, "starting…"
        self.done = False
        self.error: Optional[str] = None
        self.result: Any = None
        self._thread = threading.Thread(target=self._work, name="dvsstream-teach", daemon=True)

    def start(self) -> "TeachJob":
        self._thread.start()
        return self

    def _report(self, fraction: float, text: str) -> None:
        self.progress, self.text = max(0.0, min(1.0, float(fraction))), str(text)

    def _work(self) -> None:
        try:
            self.result = self._run(self._report)
        except DvsstreamError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 -- any failure goes to the window's banner
            self.error = f"training failed: {type(exc).__name__}: {exc}"
        finally:
            self.done = True

    def join(self, timeout: Optional[float] = None) -> bool:
        self._thread.join(timeout)
        return self.done
