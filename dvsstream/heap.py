"""Keep the memory a process frees for its next allocations (glibc's malloc).

By default glibc serves each large allocation (tensors above 128 kB to 32 MB, the
threshold rising as it goes) with its own ``mmap`` and gives it back to the system when
freed, and trims the heap's free top. A training or evaluation step allocates and frees
the same large activations every step, so each step then touches fresh pages: on the
measuring machine about 185,000 page faults per ``spikformer_dvs`` training step (B=2,
T=16), a quarter of the step's time. With :func:`keep_freed_memory` the freed memory
stays in the heap and is reused: the faults drop to a few thousand. The price: the
process's resident memory stays near its peak instead of shrinking between steps, which
suits batch jobs (``train``, ``eval``) and is why the live window does not ask for it.

``DVSSTREAM_KEEP_HEAP=0`` in the environment turns it off.

:func:`release_freed_memory` is the opposite, once: it hands the heap's free pages back
to the system, for code that builds a large structure out of many larger temporaries
(the frames held in memory for training, compacted to uint8 from float32 one sample at
a time, left ~6x their size of freed heap behind).

:func:`check_memory` refuses, in one line, a request that needs more memory than the
machine has now (:func:`available_memory_bytes`), before any work starts;
:func:`check_disk_space` the same for the free space of a disk.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Callable, Optional

from dvsstream.errors import DvsstreamError

__all__ = ["available_memory_bytes", "check_disk_space", "check_memory", "keep_freed_memory", "release_freed_memory"]

#: mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_applied = False


def keep_freed_memory(device=None) -> bool:
    """Ask glibc's malloc to serve large allocations from the heap (no per-allocation
    ``mmap``) and never to trim the heap, for the rest of the process (forked children
    inherit it), when the work runs on ``device`` (a ``torch.device``; None: the CPU) and
    that is a CPU. Returns whether it is in effect: False for another device, on other C
    libraries (musl, macOS, Windows) or when ``DVSSTREAM_KEEP_HEAP=0``. Safe to call more
    than once."""
    global _applied
    if _applied:
        return True
    if device is not None and getattr(device, "type", str(device)) != "cpu":
        return False
    if os.environ.get("DVSSTREAM_KEEP_HEAP", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    return _applied


def release_freed_memory() -> bool:
    """Return the free pages of glibc's heap to the system (``malloc_trim(0)``, which
    also releases free pages amid the heap, not only its top). Returns whether glibc
    did; False on other C libraries. It walks the heap once: cheap next to the
    megabytes it is called for."""
    trim = _libc_function("malloc_trim") if sys.platform.startswith("linux") else None
    if trim is None:
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return bool(trim(0))


def _libc_function(name: str):
    """glibc's function ``name`` (ctypes), or None where there is no such C library."""
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None


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


def check_disk_space(need_bytes: float, path: str | os.PathLike, what: str, advice: str) -> None:
    """Before any work: refuse (one line) when ``need_bytes`` exceed the free space of
    the file system that would hold ``path`` (its nearest existing folder); nothing is
    refused when the free space cannot be read."""
    import shutil
    from pathlib import Path

    folder = Path(os.path.abspath(path))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if need_bytes > free:
        raise DvsstreamError(f"{what} would write about {fmt_bytes(need_bytes)} but {fmt_bytes(free)} is free "
                             f"on the disk of {folder}; {advice}")
