"""Qt-free GUI state: the remembered settings and what a pipeline snapshot looks like
on screen (arrays only; the widgets in :mod:`dvsstream.gui.views` just draw them).

Everything here is plain numpy and dataclasses so that it is tested without a display.
Image arrays are **row-major** (``[rows, cols]``, row 0 at the top), the order the views
configure pyqtgraph with.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from dvsstream.live import REPLAY_PACKET_US, default_recording

__all__ = [
    "ATTENTION_KINDS",
    "Settings",
    "attention_levels",
    "attention_maps",
    "blend_overlay",
    "crop_region",
    "default_settings_path",
    "default_source",
    "domain_note",
    "event_rgb",
    "format_stats",
    "grid_shape",
    "hex_colour",
    "history_arrays",
    "history_breaks",
    "load_settings",
    "overlay_levels",
    "overlay_lut",
    "overlay_map",
    "overlay_swatches",
    "reset_settings",
    "save_settings",
    "source_kind",
    "source_options",
    "upsample_nearest",
]

#: attention view kinds: the token-to-token ``q @ k^T`` matrix ``[N, N]`` per head, or
#: the attention every patch receives on the patch grid ``[h, w]`` per head
ATTENTION_KINDS = ("matrix", "spatial")

#: event display: counts per pixel at or above this are drawn at full colour
EVENT_LEVEL = 4.0
#: background, ON and OFF colours of the event display (RGB)
EVENT_BACKGROUND = (18, 20, 26)
EVENT_ON = (255, 72, 56)
EVENT_OFF = (64, 150, 255)
#: the window's palette (RGB), shared by the views and the clips
BACKGROUND = (15, 17, 21)
TEXT = (230, 233, 238)
MUTED = (138, 147, 160)
ACCENT = (255, 176, 0)  # the top class
BAR = (74, 144, 217)  # the other classes
BAR_TRACK = (34, 38, 46)  # a probability bar's empty part
TRUTH = (55, 214, 122)  # the true label
WRONG = (255, 90, 90)
#: attention drawn over the events: this colour, its opacity rising with the attention
#: from 0 at the lower level to :data:`OVERLAY_MAX_ALPHA` at the upper one
OVERLAY_COLOUR = (255, 214, 0)
OVERLAY_MAX_ALPHA = 0.6

SETTINGS_ENV = "DVSSTREAM_GUI_SETTINGS"


# ====================================================================== settings
@dataclass
class Settings:
    """What the window remembers between runs.

    ``source``: a URI for :func:`~dvsstream.sources.open_source` (None: the shipped
    recording). ``checkpoint``: None for the shipped model. ``window_ms`` / ``hop_ms`` /
    ``T``: None means the checkpoint's live binning. ``speed``: replay pace of recordings
    (1 = real time). ``attention_kind``: one of :data:`ATTENTION_KINDS`. ``overlay``: draw
    the spatial attention over the events. ``output_dir``: where recordings and
    screenshots go (None: ``~/dvsstream``). ``geometry``: the window's, hex encoded.
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

    def __post_init__(self) -> None:
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
    """Options for :func:`~dvsstream.sources.open_source` in the GUI: recordings are
    paced at ``speed`` in packets of 1 ms and loop; a synthetic stream runs in real
    time and endlessly unless its URI says otherwise; live inputs take none."""
    kind = source_kind(uri)
    if kind == "file":
        return {"speed": float(speed) if speed else None, "loop": bool(loop), "packet_us": REPLAY_PACKET_US}
    if kind == "synthetic":
        from dvsstream.sources.synthetic import parse_synthetic_uri

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


# ====================================================================== display arrays
def event_rgb(image: Optional[np.ndarray], level: float = EVENT_LEVEL,
              out: Optional[np.ndarray] = None) -> np.ndarray:
    """ON/OFF counts ``[2, H, W]`` (channel 0 OFF, 1 ON, as the binner emits) ->
    ``uint8 [H, W, 3]``: dark background, ON red, OFF blue, a mix purple.

    Fixed levels: a pixel's brightness saturates at ``level`` events (square-root ramp,
    so that single events stay visible) and never depends on the rest of the frame; its
    hue is the share of ON events."""
    if image is None:
        shape = out.shape if out is not None else (1, 1, 3)
        res = out if out is not None else np.empty(shape, np.uint8)
        res[...] = EVENT_BACKGROUND
        return res
    off = np.asarray(image[0], np.float32)
    on = np.asarray(image[1], np.float32)
    total = on + off
    # brightness from the total count, hue from the ON share: mixed pixels are purple
    bright = np.sqrt(np.clip(total, 0.0, level) / level)
    share = np.divide(on, total, out=np.zeros_like(total), where=total > 0)
    bg = np.asarray(EVENT_BACKGROUND, np.float32)
    col_on = np.asarray(EVENT_ON, np.float32) - bg
    col_off = np.asarray(EVENT_OFF, np.float32) - bg
    rgb = bg + bright[..., None] * (share[..., None] * col_on + (1.0 - share[..., None]) * col_off)
    res = out if out is not None and out.shape == rgb.shape else np.empty(rgb.shape, np.uint8)
    np.clip(rgb, 0, 255, out=rgb)
    res[...] = rgb
    return res


def attention_levels(kind: str, head_dim: int) -> tuple[float, float]:
    """Fixed colour levels of the attention maps, in coincident spikes ``q . k``.

    ``matrix``: a query/key pair of binary spike vectors of ``head_dim`` channels
    coincides in at most ``head_dim`` channels; the scale ends at ``head_dim / 2``.
    ``spatial``: the mean over queries of what each key receives (see
    :func:`attention_maps`); the scale ends at ``head_dim / 4``. (The shipped model,
    head_dim 16: 99.9 % of matrix values are <= 7, spatial values <= 4.5.)"""
    if kind == "matrix":
        return 0.0, max(1.0, head_dim / 2)
    return 0.0, max(0.5, head_dim / 4)


def hex_colour(rgb: Sequence[int]) -> str:
    """``(r, g, b)`` -> ``"#rrggbb"``."""
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb[:3]))


def overlay_lut(n: int = 256) -> np.ndarray:
    """RGBA lookup table ``uint8 [n, 4]`` of the attention overlay: one colour
    (:data:`OVERLAY_COLOUR`), opacity ramping from 0 to :data:`OVERLAY_MAX_ALPHA`."""
    lut = np.empty((n, 4), np.uint8)
    lut[:, :3] = OVERLAY_COLOUR
    lut[:, 3] = np.round(np.linspace(0.0, OVERLAY_MAX_ALPHA * 255, n))
    return lut


def overlay_swatches(n: int = 5, background: Sequence[int] = EVENT_BACKGROUND) -> list[tuple[int, int, int]]:
    """The overlay's colour over ``background`` at ``n`` evenly spaced levels, low to
    high: what the legend shows, the same blend as :func:`blend_overlay` draws."""
    row = np.empty((1, n, 3), np.uint8)
    row[...] = background
    blended = blend_overlay(row, np.linspace(0.0, 1.0, n)[None, :], (0.0, 1.0))
    return [tuple(int(v) for v in px) for px in blended[0]]


def crop_region(image: Optional[np.ndarray], roi: Optional[Sequence[int]], channels_first: bool = True):
    """The part of an image in the region ``roi = (x0, y0, w, h)`` (None: all of it):
    ``[C, H, W]`` (``channels_first``) or ``[H, W, C]`` -> the same layout cropped (a
    view; a copy with zeros where the region reaches past the image's edge, as the
    model sees it)."""
    if image is None or roi is None:
        return image
    from dvsstream.binning import padded_crop

    x0, y0, w, h = (int(v) for v in roi)
    if channels_first:
        return padded_crop(image, x0, y0, w, h)
    return np.moveaxis(padded_crop(np.moveaxis(image, -1, 0), x0, y0, w, h), 0, -1)


def upsample_nearest(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """A patch-grid map ``[h, w]`` -> ``[height, width]``: each output pixel takes the
    cell it lies in (cell ``floor(i * h / height)``), the cells tiling the image exactly."""
    h, w = grid.shape[-2:]
    rows = (np.arange(height) * h) // height
    cols = (np.arange(width) * w) // width
    return grid[..., rows[:, None], cols[None, :]]


def blend_overlay(rgb: np.ndarray, spatial: Optional[np.ndarray], levels: tuple[float, float]) -> np.ndarray:
    """The attention ``spatial [h, w]`` (patch grid) over an event image ``rgb uint8
    [H, W, 3]``: a new ``uint8 [H, W, 3]``, each patch tinted with :data:`OVERLAY_COLOUR`
    at an opacity that rises linearly from 0 at ``levels[0]`` to :data:`OVERLAY_MAX_ALPHA`
    at ``levels[1]`` (clipped). The window's overlay and the clips use this one rule."""
    if spatial is None:
        return rgb.copy()
    lo, hi = float(levels[0]), float(levels[1])
    norm = np.clip((np.asarray(spatial, np.float32) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    alpha = upsample_nearest(norm, rgb.shape[0], rgb.shape[1])[..., None] * OVERLAY_MAX_ALPHA
    col = np.asarray(OVERLAY_COLOUR, np.float32)
    out = rgb.astype(np.float32) * (1.0 - alpha) + col * alpha
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def overlay_levels(head_dim: int) -> tuple[float, float]:
    """Fixed levels of the attention drawn over the events (the spatial map averaged over
    heads and the window's steps): ``head_dim / 8`` is full opacity. (The shipped model,
    head_dim 16: the 99th percentile of the overlay is 1.9 on its recordings; at
    ``head_dim / 4`` the moving arms were drawn at under 10 % opacity.)"""
    return 0.0, max(0.25, head_dim / 8)


def attention_maps(attention: Optional[dict[int, dict[str, np.ndarray]]], kind: str) -> dict[int, np.ndarray]:
    """A prediction's attention -> block -> ``[heads, rows, cols]`` float32 maps.

    ``matrix``: ``q @ k^T`` per head ``[heads, N, N]`` (row = query token, column = key
    token). ``spatial``: what each key token receives, **averaged** over the N queries
    (the taps sum it) ``[heads, h, w]`` on the patch grid, so both kinds count
    coincident spikes per query/key pair; averaged over the window's T steps
    (``spatial_window``) when the prediction has it, else over the steps just run."""
    if not attention:
        return {}
    out = {}
    for block, maps in sorted(attention.items()):
        if kind == "matrix":
            out[block] = np.asarray(maps["matrix"], np.float32)
        else:
            spatial = np.asarray(maps.get("spatial_window", maps["spatial"]), np.float32)
            n_tokens = spatial.shape[-1] * spatial.shape[-2]
            out[block] = spatial / float(n_tokens)
    return out


def grid_shape(n: int) -> tuple[int, int]:
    """``(rows, cols)`` of a near-square grid for ``n`` tiles, never taller than wide."""
    if n <= 0:
        return 0, 0
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def overlay_map(attention: Optional[dict[int, dict[str, np.ndarray]]], block: int = -1) -> Optional[np.ndarray]:
    """The spatial attention of one block (default: the last), averaged over heads and
    queries, ``[h, w]`` on the patch grid; None without attention."""
    maps = attention_maps(attention, "spatial")
    if not maps:
        return None
    keys = sorted(maps)
    return maps[keys[block]].mean(0)


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


def format_stats(stats: Any, display_fps: float = 0.0, firing_rate: Optional[float] = None,
                 first_frame_s: Optional[float] = None) -> list[tuple[str, str]]:
    """``(name, value)`` pairs for the status panel from a
    :class:`~dvsstream.pipeline.PipelineStats` (or None before the first build).
    "Dropped": windows skipped by the classifier or shed with their events while a
    real-time source ran ahead; "Lag": how far the pipeline is behind such a source."""
    dash = "–"
    if stats is None:
        rows = [("Events", dash), ("Display", f"{display_fps:.0f} fps"), ("Inference", dash),
                ("Latency", dash), ("Dropped", dash), ("Lag", dash), ("Firing rate", dash), ("Energy", dash),
                ("Stream time", dash)]
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
        ]
    if first_frame_s is not None:
        rows.append(("First frame", f"{first_frame_s:.2f} s"))
    return rows
