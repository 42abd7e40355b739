"""Can Qt open a window here? The system libraries its platform plugin needs, checked
before the ``QApplication`` exists.

Qt loads its platform plugin (``libqxcb.so`` on an X11 desktop) while the application is
created; when a system library the plugin links is missing (Qt 6.5+ needs
``libxcb-cursor0``, which a fresh Debian lacks) it prints five lines of its own and aborts
the process (status 134). :func:`platform_problem` runs ``ldd`` on the plugins Qt would try
and returns one line naming the missing libraries and the Debian packages that hold them;
for xcb it also asks the X server at ``$DISPLAY`` (a stale display aborts Qt the same way).

No Qt is imported here: the plugins are found in PySide6's folder (by
:func:`importlib.util.find_spec`) and in ``QT_QPA_PLATFORM_PLUGIN_PATH`` /
``QT_PLUGIN_PATH``, where Qt looks too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path

__all__ = ["debian_package", "missing_libraries", "platform_candidates", "platform_problem", "plugin_dirs",
           "x_display_problem"]

#: Debian / Ubuntu packages of the libraries Qt's xcb plugin links that a minimal system
#: may lack (the rest follow :func:`debian_package`'s rule)
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
}


def debian_package(soname: str) -> str:
    """The Debian package that usually holds a library (``libxcb-icccm.so.4`` ->
    ``libxcb-icccm4``): the known ones from :data:`DEBIAN_PACKAGES`, else Debian's rule
    (the name, lower case, followed by the major version; a ``-`` between when the name
    ends in a digit)."""
    if soname in DEBIAN_PACKAGES:
        return DEBIAN_PACKAGES[soname]
    m = re.fullmatch(r"(.+?)\.so\.(\d+)(?:\..*)?", soname)
    if not m:
        return soname
    name, major = m.group(1).lower(), m.group(2)
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


def plugin_dirs(env: Mapping[str, str] = os.environ) -> list[Path]:
    """The folders Qt looks for platform plugins in: ``QT_QPA_PLATFORM_PLUGIN_PATH``,
    then each ``QT_PLUGIN_PATH`` entry's ``platforms/``, then PySide6's own."""
    dirs = []
    if env.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        dirs.append(Path(env["QT_QPA_PLATFORM_PLUGIN_PATH"]))
    for entry in (env.get("QT_PLUGIN_PATH") or "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry) / "platforms")
    spec = find_spec("PySide6")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        dirs.append(Path(root) / "Qt" / "plugins" / "platforms")
    return dirs


def platform_candidates(env: Mapping[str, str] = os.environ) -> list[str]:
    """The platform plugins Qt tries, in order: those ``QT_QPA_PLATFORM`` names
    (``"wayland;xcb"``, ``"xcb:option"``), else ``wayland`` on a Wayland session and
    ``xcb``."""
    chosen = env.get("QT_QPA_PLATFORM") or ""
    if chosen:
        return [part.split(":", 1)[0].strip() for part in chosen.split(";") if part.split(":", 1)[0].strip()]
    wayland = env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "").lower() == "wayland"
    return ["wayland", "xcb"] if wayland else ["xcb"]


def missing_libraries(plugin: os.PathLike | str, env: Mapping[str, str] | None = None) -> list[str]:
    """The shared libraries ``plugin`` links (directly or not) that the dynamic loader
    cannot find, as ``ldd`` reports them ("=> not found"), in order, once each. Without
    ``ldd``: the first one ``dlopen`` misses (by :mod:`ctypes`). ``env``: the environment
    ``ldd`` runs in (its ``LD_LIBRARY_PATH`` counts; default: this process's)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return _dlopen_missing(plugin)
    try:
        out = subprocess.run([ldd, os.fspath(plugin)], capture_output=True, text=True, timeout=20, check=False,
                             env=None if env is None else dict(env)).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    missing: list[str] = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+not found", line)
        if m and m.group(1) not in missing:
            missing.append(m.group(1))
    return missing


def _dlopen_missing(plugin: os.PathLike | str) -> list[str]:
    import ctypes

    try:
        ctypes.CDLL(os.fspath(plugin))
    except OSError as exc:
        m = re.match(r"(\S+\.so[.\d]*): cannot open shared object file", str(exc))
        return [m.group(1)] if m and Path(m.group(1)).name != Path(plugin).name else []
    return []


def _find_plugin(name: str, dirs: Sequence[Path]) -> Path | None:
    for folder in dirs:
        path = folder / f"libq{name}.so"
        if path.is_file():
            return path
    return None


def x_display_problem(env: Mapping[str, str] = os.environ) -> str | None:
    """Why no X display can be opened at ``$DISPLAY`` (Qt's xcb plugin would abort with
    "could not connect to display"), or None when it can, or when libxcb cannot be
    loaded to tell (:func:`missing_libraries` says why then). Connects with libxcb's
    ``xcb_connect`` (by :mod:`ctypes`) and disconnects at once."""
    import ctypes

    display = env.get("DISPLAY") or ""
    if not display:
        return "DISPLAY is not set"
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        failed = not conn or xcb.xcb_connection_has_error(conn) != 0
    finally:
        if conn:
            xcb.xcb_disconnect(conn)
    return f"no X server answers at DISPLAY={display}" if failed else None


def platform_problem(env: Mapping[str, str] = os.environ) -> str | None:
    """Why Qt would abort while creating the application (one line), or None when one of
    the plugins Qt tries (:func:`platform_candidates`) can start, or when it cannot tell
    (not Linux, a plugin it does not find). Two reasons are told: system libraries the
    plugin links are missing (named, with the Debian packages to install), and, for xcb,
    no X server at ``$DISPLAY`` (:func:`x_display_problem`)."""
    if not sys.platform.startswith("linux"):
        return None
    dirs = plugin_dirs(env)
    failures: list[tuple[str, str]] = []
    for name in platform_candidates(env):
        plugin = _find_plugin(name, dirs)
        if plugin is None:
            return None  # Qt's own message is clear enough, or it knows a place we do not
        missing = missing_libraries(plugin, env)
        if missing:
            packages = " ".join(dict.fromkeys(debian_package(lib) for lib in missing))
            text = (f"Qt's {name} platform plugin cannot load: the system libraries {', '.join(missing)} "
                    f"are missing; install them (Debian/Ubuntu: apt-get install {packages})")
            failures.append((name, text))
            continue
        no_x = x_display_problem(env) if name == "xcb" else None
        if no_x is None:
            return None
        failures.append((name, f"Qt's {name} platform cannot open a window: {no_x}; run it on a desktop or under xvfb-run"))
    if not failures:
        return None
    reason = next((text for n, text in failures if n == "xcb"), failures[0][1])
    return f"{reason}, or run with QT_QPA_PLATFORM=offscreen together with --screenshot / --exit-after"
