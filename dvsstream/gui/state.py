"""Qt-free GUI state: the remembered settings and what a pipeline snapshot looks like
on screen (arrays only; the widgets in :mod:`dvsstream.gui.qt` just draw them).

Everything here is plain numpy and dataclasses so that it is tested without a display.
Image arrays are **row-major** (``[rows, cols]``, row 0 at the top), the order the views
configure pyqtgraph with.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from dvsstream.fileio import replace_atomically
from dvsstream.render.display import ATTENTION_KINDS, domain_note
from dvsstream.stream.live import REPLAY_PACKET_US, default_recording

__all__ = [
    "Settings",
    "default_settings_path",
    "default_source",
    "domain_note",
    "format_stats",
    "history_arrays",
    "history_timeline",
    "is_settings_data",
    "load_settings",
    "reset_settings",
    "save_settings",
    "source_kind",
    "source_options",
]


SETTINGS_ENV = "DVSSTREAM_GUI_SETTINGS"
#: the key and value that mark a file as the window's settings (written with them since
#: issue 24; older files are recognised by their keys, see :func:`is_settings_data`)
SETTINGS_MARKER = ("dvsstream", "gui settings")


# ====================================================================== settings
@dataclass
class Settings:
    """What the window remembers between runs.

    ``source``: a URI for :func:`~dvsstream.io.open_source` (None: the shipped
    recording). ``checkpoint``: None for the shipped model. ``window_ms`` / ``hop_ms`` /
    ``T``: None means the checkpoint's live binning. ``speed``: replay pace of recordings
    (1 = real time). ``attention_kind``: one of :data:`ATTENTION_KINDS`. ``overlay``: draw
    the spatial attention over the events. ``output_dir``: where recordings and
    screenshots go (None: ``~/dvsstream``). ``geometry``: the window's, hex encoded.
    ``noise_filter``: the ``--filter`` the events go through before the model and the
    display (``"none"``; an unreadable one is dropped).
    """

    source: Optional[str] = None
    checkpoint: Optional[str] = None
    window_ms: Optional[float] = None
    hop_ms: Optional[float] = None
    T: Optional[int] = None
    speed: float = 1.0
    loop: bool = True
    mode: str = "step"
    attention_kind: str = "spatial"
    overlay: bool = True
    output_dir: Optional[str] = None
    geometry: Optional[str] = None
    recent_sources: list[str] = field(default_factory=list)
    noise_filter: str = "none"

    def __post_init__(self) -> None:
        self.noise_filter = _filter_text(self.noise_filter)
        if self.mode not in ("step", "window"):
            self.mode = "step"
        if self.attention_kind not in ATTENTION_KINDS:
            self.attention_kind = "spatial"
        if not (isinstance(self.speed, (int, float)) and self.speed > 0):
            self.speed = 1.0

    def remember_source(self, uri: str, keep: int = 8) -> None:
        """Put ``uri`` first in :attr:`recent_sources` (at most ``keep`` kept)."""
        self.recent_sources = [uri] + [s for s in self.recent_sources if s != uri][: keep - 1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Settings":
        """Tolerant of unknown keys (newer files) and of wrongly typed values (ignored)."""
        defaults = cls()
        kwargs = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value, default = data[f.name], getattr(defaults, f.name)
            if value is not None and default is not None and not isinstance(value, type(default)):
                if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                else:
                    continue
            if f.name in ("window_ms", "hop_ms") and value is not None and not isinstance(value, (int, float)):
                continue
            if f.name == "T" and value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                continue
            if f.name == "recent_sources":
                value = [v for v in value if isinstance(v, str)]
            kwargs[f.name] = value
        return cls(**kwargs)


def _filter_text(text: Any) -> str:
    """The canonical ``--filter`` text of ``text``, or ``"none"`` when it is not one."""
    from dvsstream.errors import DvsstreamError
    from dvsstream.filters import parse_filter

    try:
        return str(parse_filter(text if isinstance(text, str) else "none"))
    except DvsstreamError:
        return "none"


def default_settings_path() -> Path:
    """``$DVSSTREAM_GUI_SETTINGS``, else ``gui.json`` in the user's config folder
    (``$XDG_CONFIG_HOME/dvsstream``, ``~/.config/dvsstream``; ``%APPDATA%`` on Windows,
    ``~/Library/Application Support`` on macOS)."""
    env = os.environ.get(SETTINGS_ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "dvsstream" / "gui.json"


def is_settings_data(data: Any) -> bool:
    """Whether ``data`` (a file's parsed JSON) is the window's settings: a JSON object
    with :data:`SETTINGS_MARKER`, or (a file from before the marker) one whose keys are
    all :class:`Settings` fields. Only such a file is ever replaced by the window."""
    if not isinstance(data, dict):
        return False
    key, value = SETTINGS_MARKER
    if data.get(key) == value:
        return True
    return set(data) <= {f.name for f in fields(Settings)}


def _replaceable(path: Path) -> bool:
    """``path`` may be (re)written as settings: missing, empty, or a settings file."""
    if not path.exists():
        return True
    if not path.is_file():
        return False
    if path.stat().st_size == 0:
        return True
    try:
        return is_settings_data(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False


def load_settings(path: Optional[os.PathLike | str] = None) -> Settings:
    """Settings from a JSON file; defaults when it is missing or unreadable."""
    path = Path(path) if path is not None else default_settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Settings()
    return Settings.from_dict(data) if isinstance(data, dict) else Settings()


def reset_settings(path: Optional[os.PathLike | str] = None) -> Optional[Path]:
    """Start from the defaults: the settings file is moved aside to ``<name>.bak``
    (returned; a previous ``.bak`` is replaced), nothing is deleted. None when there
    was no file."""
    path = Path(path) if path is not None else default_settings_path()
    if not path.is_file() or not _replaceable(path):
        return None
    kept = path.with_name(path.name + ".bak")
    try:
        os.replace(path, kept)
    except OSError:
        return None
    return kept


def save_settings(settings: Settings, path: Optional[os.PathLike | str] = None) -> Optional[Path]:
    """Write the settings as JSON (atomically, with :data:`SETTINGS_MARKER`); returns the
    path, or None when the folder cannot be written or ``path`` is a file that is not
    settings (never replaced; settings are a convenience, never an error)."""
    path = Path(path) if path is not None else default_settings_path()
    if not _replaceable(path):
        return None
    key, value = SETTINGS_MARKER
    text = json.dumps({key: value, **settings.to_dict()}, indent=2)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError:
        return None
    return path


# ====================================================================== sources
def default_source() -> str:
    """The shipped gesture recording, or ``synthetic:`` when the repository's
    ``recordings/`` folder is not there (an installed package)."""
    path = default_recording()
    return str(path) if path is not None else "synthetic:"


def source_kind(uri: str) -> str:
    """``"camera"``, ``"network"``, ``"synthetic"`` or ``"file"``."""
    text = os.fspath(uri)
    if text == "camera" or text.startswith("camera:"):
        return "camera"
    if text.startswith(("tcp://", "unix://")):
        return "network"
    if text == "synthetic" or text.startswith("synthetic:"):
        return "synthetic"
    return "file"


def source_options(uri: str, speed: float = 1.0, loop: bool = True) -> dict[str, Any]:
    """Options for :func:`~dvsstream.io.open_source` in the GUI: recordings are
    paced at ``speed`` in packets of 1 ms and loop; a synthetic stream runs in real
    time and endlessly unless its URI says otherwise; live inputs take none."""
    kind = source_kind(uri)
    if kind == "file":
        return {"speed": float(speed) if speed else None, "loop": bool(loop), "packet_us": REPLAY_PACKET_US}
    if kind == "synthetic":
        from dvsstream.io.synthetic import parse_synthetic_uri

        given = parse_synthetic_uri(uri)
        opts: dict[str, Any] = {}
        if "realtime" not in given:
            opts["realtime"] = True
        if "duration_s" not in given:
            opts["duration_s"] = None
        return opts
    return {}


def source_title(uri: str) -> str:
    """A short name for window titles and lists."""
    kind = source_kind(uri)
    return Path(uri).name if kind == "file" else uri


def history_timeline(predictions: Sequence[Any], hop_us: int,
                     recording: Optional[tuple[int, int]] = None) -> tuple[np.ndarray, list[int]]:
    """Where the history strip puts each prediction: ``(x_us, restarts)``.

    ``x_us`` ``int64 [n]``: each prediction's window end on a clock of stream time that runs
    on across loops and seeks (oldest first, as given). ``restarts``: the clock times where
    the stream started again. A prediction ending before the one before it means the stream
    jumped back: a loop of the recording ``(start_us, end_us)`` when its window starts
    within one hop of the recording's start (the clock goes on by the recording's length,
    so loop marks are one recording apart and the warm-up after each loop shows as a gap),
    else a seek (the clock goes on by one hop)."""
    x = np.zeros(len(predictions), np.int64)
    restarts: list[int] = []
    offset, prev = 0, None
    for j, pred in enumerate(predictions):
        t_end = int(pred.t_end)
        if prev is not None and t_end < prev:
            t_start = int(getattr(pred, "t_start", t_end))
            if recording is not None and t_start - int(recording[0]) < hop_us:
                offset += int(recording[1]) - int(recording[0])
                restarts.append(int(recording[0]) + offset)
            else:
                offset = int(x[j - 1]) + hop_us - t_end
                restarts.append(int(x[j - 1]) + hop_us // 2)
        x[j] = t_end + offset
        prev = t_end
    return x, restarts


def history_arrays(predictions: Sequence[Any], n_classes: int, n_cols: int, hop_us: int,
                   recording: Optional[tuple[int, int]] = None) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """The history strip, one column per hop of stream time: ``probs [n_classes, n_cols]``
    (the newest prediction in the last column; columns without one are 0), the true labels
    ``[n_cols]`` (NaN where unknown) and where the stream started again, in seconds before
    the newest prediction's end (:func:`history_timeline`; ``recording``: the replayed
    recording's ``(start_us, end_us)``, to tell its loops: a loop of a 0.59 s recording is
    0.59 s wide)."""
    probs = np.zeros((n_classes, n_cols), np.float32)
    labels = np.full(n_cols, np.nan, np.float32)
    preds = list(predictions)
    x, restarts = history_timeline(preds, int(hop_us), recording)
    newest = int(x[-1]) if len(x) else 0
    for pred, u in zip(preds, x):
        c = n_cols - 1 - round((newest - int(u)) / hop_us)
        if c < 0:
            continue
        p = np.asarray(pred.probs, np.float32)
        probs[:, c] = 0.0
        probs[: min(n_classes, p.size), c] = p[:n_classes]
        labels[c] = pred.label if pred.label is not None and 0 <= pred.label < n_classes else np.nan
    span = n_cols * hop_us
    marks = [(r - newest) / 1e6 for r in restarts if -span <= r - newest <= 0]
    return probs, labels, marks


def _ms(value: float) -> str:
    """Milliseconds with one decimal below 10, whole above (the stats column is narrow)."""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}"


def _filter_row(stats: Any) -> str:
    """The noise filter in use and the share of events it removed since it was set."""
    spec = getattr(stats, "filter", "none")
    if spec == "none":
        return "off"
    return f"{100 * getattr(stats, 'filter_removed_share', 0.0):.1f} % removed · {spec}"


def format_stats(stats: Any, display_fps: float = 0.0, firing_rate: Optional[float] = None,
                 first_frame_s: Optional[float] = None) -> list[tuple[str, str]]:
    """``(name, value)`` pairs for the status panel from a
    :class:`~dvsstream.stream.stats.PipelineStats` (or None before the first build).
    "Dropped": windows skipped by the classifier or shed with their events while a
    real-time source ran ahead; "Lag": how far the pipeline is behind such a source."""
    dash = "–"
    if stats is None:
        rows = [("Events", dash), ("Display", f"{display_fps:.0f} fps"), ("Inference", dash),
                ("Latency", dash), ("Dropped", dash), ("Lag", dash), ("Firing rate", dash), ("Energy", dash),
                ("Stream time", dash), ("Noise filter", dash)]
    else:
        lat = stats.latency_ms or {}
        latency = f"p50 {_ms(lat['p50'])} · p95 {_ms(lat['p95'])} ms" if "p50" in lat else dash
        energy = (f"{stats.energy_mj_per_window * 1e3:.1f} µJ / inference"
                  if stats.energy_mj_per_window is not None else dash)
        t = stats.stream_time_us
        dropped = f"{stats.windows_skipped} of {stats.windows} windows"
        shed = getattr(stats, "events_shed", 0)
        if shed:
            dropped = f"{stats.windows_skipped}/{stats.windows} windows · {_si(shed, 'ev')} shed"
        rows = [
            ("Events", _si(stats.event_rate, "ev/s")),
            ("Display", f"{display_fps:.0f} fps"),
            ("Inference", f"{stats.inference_rate:.1f} /s"),
            ("Latency", latency),
            ("Dropped", dropped),
            ("Lag", f"{getattr(stats, 'lag_ms', 0.0):.0f} ms"),
            ("Firing rate", f"{firing_rate * 100:.1f} %" if firing_rate is not None else dash),
            ("Energy", energy),
            ("Stream time", f"{(t - (getattr(stats, 'stream_start_us', None) or 0)) / 1e6:.2f} s"
             if t is not None else dash),
            ("Noise filter", _filter_row(stats)),
        ]
    if first_frame_s is not None:
        rows.append(("First frame", f"{first_frame_s:.2f} s"))
    return rows
