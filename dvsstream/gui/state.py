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

from dvsstream.render.display import ATTENTION_KINDS
from dvsstream.stream.live import REPLAY_PACKET_US, default_recording

__all__ = [
    "Settings",
    "default_settings_path",
    "default_source",
    "domain_note",
    "format_stats",
    "history_arrays",
    "history_breaks",
    "load_settings",
    "reset_settings",
    "save_settings",
    "source_kind",
    "source_options",
]


SETTINGS_ENV = "DVSSTREAM_GUI_SETTINGS"


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
    if not path.is_file():
        return None
    kept = path.with_name(path.name + ".bak")
    try:
        os.replace(path, kept)
    except OSError:
        return None
    return kept


def save_settings(settings: Settings, path: Optional[os.PathLike | str] = None) -> Optional[Path]:
    """Write the settings as JSON (atomically); returns the path, or None when the
    folder cannot be written (settings are a convenience, never an error)."""
    path = Path(path) if path is not None else default_settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(settings.to_dict(), indent=2), encoding="utf-8")
        os.replace(tmp, path)
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


def domain_note(synthetic_only: bool, kind: Optional[str], camera: Optional[str] = None) -> Optional[str]:
    """The standing note when a model trained only on synthetic data (its checkpoint's
    metadata says so) meets real sensor data: a camera, a network stream or a recording
    not made by dvsstream's emulator (``camera`` as the file names it). None otherwise."""
    if not synthetic_only:
        return None
    synthetic = kind == "synthetic" or (kind == "file" and str(camera or "").startswith("dvsstream"))
    if synthetic:
        return None
    return ("Trained on synthetic stick figures only (its checkpoint says so): "
            "on real sensor data its predictions are not reliable.")


def source_title(uri: str) -> str:
    """A short name for window titles and lists."""
    kind = source_kind(uri)
    return Path(uri).name if kind == "file" else uri


def history_arrays(predictions: Sequence[Any], n_classes: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``n_cols`` predictions as ``probs [n_classes, n_cols]`` (newest in the
    last column; columns without a prediction are 0) and the true labels ``[n_cols]``
    (NaN where unknown): the history strip and its ground-truth track."""
    probs = np.zeros((n_classes, n_cols), np.float32)
    labels = np.full(n_cols, np.nan, np.float32)
    recent = list(predictions)[-n_cols:]
    start = n_cols - len(recent)
    for j, pred in enumerate(recent, start):
        p = np.asarray(pred.probs, np.float32)
        probs[: min(n_classes, p.size), j] = p[:n_classes]
        if pred.label is not None and 0 <= pred.label < n_classes:
            labels[j] = pred.label
    return probs, labels


def history_breaks(predictions: Sequence[Any], n_cols: int) -> list[int]:
    """Columns of :func:`history_arrays` (same ``n_cols``) whose prediction ends before
    the one to its left: the stream jumped back there (a recording looped, or a seek)."""
    recent = list(predictions)[-n_cols:]
    start = n_cols - len(recent)
    return [start + j for j in range(1, len(recent)) if recent[j].t_end < recent[j - 1].t_end]


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
