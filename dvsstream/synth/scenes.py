"""Varied synthetic scenes seen through the DVS emulator: unlabelled recordings for
pre-training (``dvsstream synth --kind scenes``, :func:`write_scene_recordings`).

A scene
=======
One to four objects over a background, all drawn from a seed:

* **shapes** (:data:`SHAPES`): discs, ellipses, rectangles, triangles, random polygons,
  stars, rings, bars, smooth blobs, letters and digits (drawn with PIL's default font;
  a polygon where that font is unavailable) and a "hand": an articulated chain of bars
  (upper arm, forearm, zero to four fingers) whose joints swing;
* **textures** (:data:`TEXTURES`) on objects and background alike: flat, gratings
  (sine or square, random angle and period), checkerboards, random dots, smooth noise;
* **motions** (:data:`MOTIONS`): translation with a random, slowly turning velocity that
  bounces off the edges of a box around the sensor; rotation; approach (scale growing and
  shrinking between bounds); oscillation (a line, an ellipse or a Lissajous figure); a
  "cross" that passes over (or under) another object, so one occludes the other; static
  objects; the hand's articulation. Objects pause now and then (smooth stops and starts),
  and a scene can stand completely still for a while: without motion, no pixel changes,
  so only sensor noise fires (no flicker);
* **camera ego-motion** (:data:`CAMERA_MOTIONS`): none, shake (small and fast), pan
  (bouncing drift) or wander (slow sinusoids); the background moves with it and every
  object with a parallax factor of 1 to 1.6;
* **lighting and contrast**: the background level (log-uniform over 0.03-0.7), objects
  brighter or darker than it by a random factor, a static illumination field (gradient
  and vignetting) and, in some scenes, a slow global brightness drift (which, like every
  motion, stops while the scene stands still).

Sizes and speeds are in pixels of a 128x128 sensor and scale with ``sqrt(W * H) / 128``
on other sensors (320x240, 346x260...), so a scene looks alike on any of them.

Rendering
=========
Each shape is rasterised once into a sprite (coverage at 4x4 super-sampling and a
texture map, both float32); per frame a Numba kernel samples the background at the
camera's offset (bilinear) and draws every sprite, back to front, under its affine
transform (bilinear coverage, alpha blending), then applies the illumination. Motions
are computed at 1 kHz and the frames are rendered at 1000/k fps, k in 1..5 chosen so
that no point of the scene moves more than about a pixel between two frames (the
emulator interpolates event times linearly in between). Linear intensities lie in
``[0.002, 1]``.

The emulator's parameters (:class:`~dvsstream.synth.emulator.EmulatorParams`) are
drawn per recording: thresholds 0.13-0.32, their per-pixel spread, the refractory
period, background activity 0.02-0.5 Hz per pixel and up to eight hot pixels.

Reproducibility: recording ``index`` of ``seed`` draws everything from
``numpy.random.SeedSequence([seed, index])`` (the emulator from ``[seed, index, 1]``),
so a recording does not depend on the number of recordings or of workers. The glyph
shapes depend on the Pillow version's default font.

Output of :func:`write_scene_recordings`: ``out/scene_0000.h5`` ... (dvsstream HDF5,
no labels; the ``source`` attribute holds a JSON description of the scene) and
``out/scenes_summary.json``. No torch, no Qt.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dvsstream.errors import DvsstreamError
from dvsstream.events import EVENT_DTYPE, sensor_size_of
from dvsstream.fileio import replace_atomically
from dvsstream.synth.emulator import Emulator, EmulatorParams
from dvsstream.synth.sprites import (
    GLYPHS,
    MIN_INTENSITY,
    TEXTURES,
    capsule_mask,
    draw_frames,
    shape_mask,
    texture,
)

__all__ = [
    "CAMERA_MOTIONS",
    "MOTIONS",
    "SHAPES",
    "TEXTURES",
    "Scene",
    "generate_scene",
    "make_scene",
    "render_frames",
    "scene_event_packets",
    "write_scene_recordings",
]

SHAPES = ("disc", "ellipse", "rectangle", "triangle", "polygon", "star", "ring", "bar", "blob", "glyph", "hand")
MOTIONS = ("translate", "rotate", "approach", "oscillate", "cross", "static", "articulated")
CAMERA_MOTIONS = ("none", "shake", "pan", "wander")
BASE_FPS = 1000  # motions are computed at this rate; frames at BASE_FPS / stride
MAX_STRIDE = 5
MIN_DURATION_S = 0.01  #: shortest recording (10 frames at most)
MAX_DURATION_S = 600.0  #: longest recording (its 1 kHz motion tracks are held in memory: ~1 GB at 600 s)


@dataclass
class Scene:
    """A scene ready to render (:func:`make_scene`). Arrays are per frame ``n`` and per
    sprite part ``K`` (parts are drawn in order, back to front)."""

    sensor_size: tuple[int, int]  #: (width, height)
    duration_s: float
    times_us: np.ndarray  #: int64 [n] frame times, µs, the first 0
    description: dict  #: JSON-able: the drawn kinds and parameters
    emulator: EmulatorParams
    emulator_seed: tuple[int, ...]  #: entropy of the emulator's SeedSequence
    background: np.ndarray  #: float32 [H + 2m, W + 2m] linear intensity
    margin: int  #: m, px
    illumination: np.ndarray  #: float32 [H, W] static multiplicative field
    gain: np.ndarray  #: float32 [n] global brightness per frame
    camera: np.ndarray  #: float64 [n, 2] camera offset (x, y), px
    sprite_alpha: np.ndarray  #: float32, all sprites' coverage, flat
    sprite_value: np.ndarray  #: float32, all sprites' intensity, flat
    sprite_shape: np.ndarray  #: int64 [S, 3] (offset, height, width)
    part_sprite: np.ndarray  #: int64 [K]
    parts: np.ndarray  #: float64 [n, K, 4] (cx, cy, angle rad, scale) on the sensor

    @property
    def fps(self) -> float:
        return 1e6 / float(self.times_us[1] - self.times_us[0]) if self.times_us.size > 1 else float(BASE_FPS)


# ============================================================ drawing the parameters
def _logu(rng, lo, hi) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _sample_texture(rng, unit: float, contrast: tuple[float, float]) -> dict:
    kind = str(rng.choice(TEXTURES, p=[0.3, 0.18, 0.14, 0.14, 0.24]))
    d = {"kind": kind, "contrast": 0.0 if kind == "flat" else float(rng.uniform(*contrast))}
    if kind == "grating":
        d.update(angle=float(rng.uniform(0, np.pi)), period=_logu(rng, 3, 24) * unit,
                 square=bool(rng.random() < 0.5), phase=float(rng.uniform(0, 2 * np.pi)))
    elif kind == "checker":
        d.update(angle=float(rng.uniform(0, np.pi / 2)), cell=_logu(rng, 3, 14) * unit)
    elif kind == "dots":
        d.update(cell=_logu(rng, 4, 12) * unit, density=float(rng.uniform(0.3, 0.9)),
                 sign=float(rng.choice([-1.0, 1.0])))
    elif kind == "noise":
        d.update(sigma=_logu(rng, 1.2, 12) * unit)
    d["seed"] = int(rng.integers(0, 2**31 - 1))
    return d


def _sample_shape(rng, kind: str, radius: float) -> dict:
    d = {"kind": kind, "radius": radius}
    if kind == "ellipse":
        d["ratio"] = float(rng.uniform(0.35, 0.8))
    elif kind == "rectangle":
        d["half"] = [radius * float(rng.uniform(0.5, 1.0)), radius * float(rng.uniform(0.25, 1.0))]
    elif kind in ("triangle", "polygon", "star"):
        m = {"triangle": 3, "polygon": int(rng.integers(5, 9)), "star": int(rng.integers(5, 8))}[kind]
        if kind == "star":
            ang = np.arange(2 * m) * np.pi / m + rng.uniform(0, 2 * np.pi)
            r = np.where(np.arange(2 * m) % 2 == 0, radius, radius * rng.uniform(0.35, 0.6))
        else:
            ang = rng.uniform(0, 2 * np.pi) + (np.arange(m) + rng.uniform(-0.3, 0.3, m)) * (2 * np.pi / m)
            r = radius * rng.uniform(0.65 if kind == "polygon" else 0.9, 1.0, m)
        d["vertices"] = np.round(np.stack([r * np.cos(ang), r * np.sin(ang)], 1), 3).tolist()
    elif kind == "ring":
        d["inner"] = radius * float(rng.uniform(0.45, 0.8))
    elif kind == "bar":
        d["half_width"] = radius * float(rng.uniform(0.08, 0.25))
    elif kind == "blob":
        d["harmonics"] = np.round(np.stack([rng.uniform(0, 0.12, 4), rng.uniform(0, 2 * np.pi, 4)], 1), 4).tolist()
    elif kind == "glyph":
        d["char"] = str(rng.choice(list(GLYPHS)))
    return d


def _sample_motion(rng, kind: str, unit: float, size: tuple[int, int], n_before: int) -> dict:
    w, h = size
    d = {"kind": kind, "x": float(rng.uniform(0.15, 0.85) * w), "y": float(rng.uniform(0.15, 0.85) * h),
         "angle": float(rng.uniform(0, 2 * np.pi)), "spin": 0.0, "scale": 1.0,
         "parallax": float(rng.uniform(1.0, 1.6)), "pauses": bool(rng.random() < 0.4)}
    if kind != "static" and rng.random() < 0.4:
        d["spin"] = float(rng.uniform(-0.8, 0.8))
    if kind in ("translate", "cross", "rotate", "approach"):
        slow = kind in ("rotate", "approach")
        d.update(speed=_logu(rng, 3, 25) * unit if slow else _logu(rng, 15, 120) * unit,
                 heading=float(rng.uniform(0, 2 * np.pi)), turn=float(rng.uniform(-0.6, 0.6)))
    if kind == "cross":
        d["target"] = int(rng.integers(0, n_before))
        d["t_cross"] = float(rng.uniform(0.25, 0.75))
    elif kind == "rotate":
        d["spin"] = float(rng.choice([-1, 1]) * _logu(rng, 0.5, 5.0))
    elif kind == "approach":
        lo, hi = float(rng.uniform(0.5, 0.8)), float(rng.uniform(1.3, 2.2))
        d.update(scale_range=[lo, hi], scale=float(np.sqrt(lo * hi)), rate=_logu(rng, 0.3, 1.2))
    elif kind in ("oscillate", "articulated"):
        d.update(freq=_logu(rng, 0.3, 3.0), amp=[float(rng.uniform(4, 30) * unit), float(rng.uniform(0, 20) * unit)],
                 axis=float(rng.uniform(0, np.pi)), ratio=float(rng.choice([1.0, 1.0, 2.0, 1.5])),
                 phase=float(rng.uniform(0, 2 * np.pi)))
        if kind == "articulated":
            d["amp"] = [a * 0.4 for a in d["amp"]]
    return d


def _sample_hand(rng, unit: float, size: tuple[int, int]) -> dict:
    """The articulated chain: lengths and widths (px), joint swings (rad, Hz)."""
    w, h = size
    edge = int(rng.integers(0, 5))  # 0-3: the shoulder just outside one edge; 4: inside
    fx, fy = float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.25, 0.75))
    shoulder = [[fx * w, h + 8 * unit], [fx * w, -8 * unit], [-8 * unit, fy * h], [w + 8 * unit, fy * h],
                [fx * w, fy * h]][edge]
    inward = math.atan2(h / 2 - shoulder[1], w / 2 - shoulder[0])
    n_fingers = int(rng.choice([0, 2, 3, 4]))
    return {
        "shoulder": shoulder,
        "lengths": [float(rng.uniform(22, 40) * unit), float(rng.uniform(18, 34) * unit)],
        "widths": [float(rng.uniform(3, 7) * unit), float(rng.uniform(2.5, 6) * unit)],
        "base_angle": float(inward + rng.uniform(-0.6, 0.6)),
        "bend": float(rng.uniform(-1.2, 1.2)),
        "swing": [float(rng.uniform(0.1, 0.7)), float(rng.uniform(0.2, 1.0))],
        "swing_freq": [_logu(rng, 0.3, 2.5), _logu(rng, 0.3, 3.0)],
        "swing_phase": [float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 2 * np.pi))],
        "fingers": [{"length": float(rng.uniform(6, 12) * unit), "width": float(rng.uniform(1.2, 2.4) * unit),
                     "spread": float(s), "wiggle": float(rng.uniform(0, 0.5)), "freq": _logu(rng, 0.5, 4.0),
                     "phase": float(rng.uniform(0, 2 * np.pi))}
                    for s in np.linspace(-0.6, 0.6, n_fingers) if n_fingers],
    }


def _sample_object(rng, unit: float, size: tuple[int, int], background: float, n_before: int) -> dict:
    shape_kind = str(rng.choice(SHAPES, p=[0.1, 0.08, 0.1, 0.08, 0.09, 0.07, 0.08, 0.1, 0.09, 0.09, 0.12]))
    sign = float(rng.choice([-1.0, 1.0], p=[0.4, 0.6]))
    level = float(np.clip(background * np.exp(sign * rng.uniform(0.4, 2.0)), 0.01, 1.0))
    obj = {"shape": _sample_shape(rng, shape_kind, float(rng.uniform(7, 28) * unit)),
           "texture": _sample_texture(rng, unit, (0.15, 0.8)), "level": level}
    if shape_kind == "hand":
        obj["texture"] = {"kind": "flat", "contrast": 0.0, "seed": 0} if rng.random() < 0.7 else obj["texture"]
        obj["hand"] = _sample_hand(rng, unit, size)
        motion = "articulated"
    else:
        kinds = ["translate", "rotate", "approach", "oscillate", "static"] + (["cross"] if n_before else [])
        probs = np.array([0.3, 0.18, 0.14, 0.2, 0.06] + ([0.12] if n_before else []))
        motion = str(rng.choice(kinds, p=probs / probs.sum()))
    obj["motion"] = _sample_motion(rng, motion, unit, size, n_before)
    return obj


def _sample_camera(rng, unit: float) -> dict:
    kind = str(rng.choice(CAMERA_MOTIONS, p=[0.6, 0.13, 0.13, 0.14]))
    d = {"kind": kind}
    if kind in ("shake", "wander"):
        amp, freq = ((0.3, 1.5), (1.5, 6.0)) if kind == "shake" else ((3.0, 14.0), (0.1, 0.6))
        d["waves"] = [[float(rng.uniform(*amp) * unit), _logu(rng, *freq), float(rng.uniform(0, 2 * np.pi))]
                      for _ in range(4)]  # x, x, y, y
    elif kind == "pan":
        d.update(speed=_logu(rng, 4, 25) * unit, heading=float(rng.uniform(0, 2 * np.pi)),
                 extent=float(rng.uniform(8, 30) * unit))
    return d


def _sample_emulator(rng) -> EmulatorParams:
    theta = float(rng.uniform(0.13, 0.32))
    return EmulatorParams(
        theta_on=theta * float(rng.uniform(0.85, 1.15)), theta_off=theta,
        threshold_sigma=float(rng.uniform(0.02, 0.05)), refractory_us=int(rng.integers(100, 1500)),
        noise_rate_hz=_logu(rng, 0.02, 0.5), noise_on_fraction=float(rng.uniform(0.4, 0.75)),
        n_hot_pixels=int(rng.integers(0, 9)), hot_pixel_rate_hz=_logu(rng, 5.0, 200.0))


def _sample_description(rng, size: tuple[int, int]) -> dict:
    unit = math.sqrt(size[0] * size[1]) / 128.0
    bg_level = _logu(rng, 0.03, 0.7)
    background = {"level": bg_level, "texture": _sample_texture(rng, unit, (0.1, 0.6))}
    n_objects = int(rng.choice([1, 2, 3, 4], p=[0.3, 0.3, 0.25, 0.15]))
    objects = [_sample_object(rng, unit, size, bg_level, i) for i in range(n_objects)]
    order = np.argsort([o["motion"]["parallax"] + (1.0 if o["motion"]["kind"] == "cross" else 0.0)
                        for o in objects], kind="stable")  # far objects first; crossers on top
    if rng.random() < 0.3:  # ... or crossing beneath
        order = order[::-1]
    lighting = {"gradient": [float(v) for v in rng.uniform(-0.4, 0.4, 2)], "vignette": float(rng.uniform(0, 0.5)),
                "drift": bool(rng.random() < 0.2), "drift_amp": float(rng.uniform(0.03, 0.15)),
                "drift_period_s": float(rng.uniform(3, 12)), "drift_phase": float(rng.uniform(0, 2 * np.pi))}
    camera = _sample_camera(rng, unit)
    if camera["kind"] != "none":  # a moving textured background fires everywhere: keep its contrast lower
        background["texture"]["contrast"] *= float(rng.uniform(0.3, 1.0))
    return {"unit": unit, "background": background, "objects": objects, "draw_order": [int(i) for i in order],
            "camera": camera, "lighting": lighting, "still": bool(rng.random() < 0.35)}


def _sprite(mask: np.ndarray, obj: dict, px: float) -> tuple[np.ndarray, np.ndarray]:
    tex = obj["texture"]
    value = obj["level"] * np.exp(tex["contrast"] * texture(tex, *mask.shape, px=px))
    return mask, np.clip(value, MIN_INTENSITY, 1.0).astype(np.float32)


# ============================================================ motion
def _envelope(rng, n: int, pauses: bool, move_s=(1.0, 4.0), pause_s=(0.3, 1.5), ramp_s: float = 0.12) -> np.ndarray:
    """Activity ``[n]`` at 1 kHz: 1 moving, 0 still, smooth ramps; pauses (when asked)
    of ``pause_s`` seconds after exponential moving spells of mean ``move_s``."""
    a = np.ones(n)
    if pauses:
        mean_move = rng.uniform(*move_s)
        t = rng.exponential(mean_move) * BASE_FPS
        while t < n:
            d = rng.uniform(*pause_s) * BASE_FPS
            a[int(t): int(t + d)] = 0.0
            t += d + rng.exponential(mean_move) * BASE_FPS
    k = int(ramp_s * BASE_FPS)
    return np.convolve(np.pad(a, k, mode="edge"), np.ones(k) / k, mode="same")[k: k + n]


def _effective_time(activity: np.ndarray) -> np.ndarray:
    """Seconds of motion elapsed at each 1 kHz step (stands still while activity is 0)."""
    s = np.cumsum(activity) / BASE_FPS
    return s - s[0]


def _reflect(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``p`` folded into ``[lo, hi]`` (bounces off both ends)."""
    span = hi - lo
    if span <= 0:
        return np.full_like(p, 0.5 * (lo + hi))
    q = np.mod(p - lo, 2 * span)
    return lo + np.where(q < span, q, 2 * span - q)


def _oscillation(m: dict, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (x, y) of an oscillation at effective times ``s``: a line, an ellipse or a
    Lissajous figure along ``axis``."""
    u = m["amp"][0] * np.sin(2 * np.pi * m["freq"] * s + m["phase"])
    v = m["amp"][1] * np.sin(2 * np.pi * m["freq"] * m["ratio"] * s + m["phase"] + np.pi / 2)
    c, sn = np.cos(m["axis"]), np.sin(m["axis"])
    return u * c - v * sn, u * sn + v * c


def _track(obj: dict, s: np.ndarray, size: tuple[int, int], tracks: list) -> tuple[np.ndarray, ...]:
    """``(x, y, angle, scale)`` ``[n]`` of a rigid object at effective times ``s``."""
    m, w, h = obj["motion"], size[0], size[1]
    kind = m["kind"]
    x, y = np.full(s.size, m["x"]), np.full(s.size, m["y"])
    scale = np.full(s.size, m["scale"])
    if kind in ("translate", "rotate", "approach", "cross"):
        heading = m["heading"] + (0.0 if kind == "cross" else m["turn"]) * s
        ds = np.diff(s, prepend=s[0])
        dx, dy = np.cumsum(m["speed"] * np.cos(heading) * ds), np.cumsum(m["speed"] * np.sin(heading) * ds)
        if kind == "cross":  # a straight line through the target at t_cross
            tx, ty = tracks[m["target"]]
            i = int(m["t_cross"] * (s.size - 1))
            x, y = tx[i] + dx - dx[i], ty[i] + dy - dy[i]
            lo_x, hi_x, lo_y, hi_y = -w, 2.0 * w, -h, 2.0 * h
        else:
            r = 0.5 * obj["shape"]["radius"]
            lo_x, hi_x, lo_y, hi_y = min(r, w / 2), max(w - r, w / 2), min(r, h / 2), max(h - r, h / 2)
            x, y = x + dx, y + dy
        x, y = _reflect(x, lo_x, hi_x), _reflect(y, lo_y, hi_y)
    elif kind == "oscillate":
        ox, oy = _oscillation(m, s)
        x, y = x + ox, y + oy
    if kind == "approach":
        lo, hi = np.log(m["scale_range"])
        scale = np.exp(_reflect(np.log(m["scale"]) + m["rate"] * s, lo, hi))
    angle = m["angle"] + m["spin"] * s
    return x, y, angle, scale


def _hand_parts(obj: dict, s: np.ndarray) -> tuple[list, list]:
    """Sprites and ``(x, y, angle, scale)`` tracks of the hand's bars: upper arm,
    forearm, fingers (drawn in that order)."""
    hd, m = obj["hand"], obj["motion"]
    ox, oy = _oscillation(m, s)
    sx, sy = hd["shoulder"][0] + ox, hd["shoulder"][1] + oy
    ph = [2 * np.pi * f * s + p for f, p in zip(hd["swing_freq"], hd["swing_phase"])]
    a1 = hd["base_angle"] + hd["swing"][0] * np.sin(ph[0])
    a2 = a1 + hd["bend"] + hd["swing"][1] * np.sin(ph[1])
    (l1, l2), (w1, w2) = hd["lengths"], hd["widths"]
    ex, ey = sx + l1 * np.cos(a1), sy + l1 * np.sin(a1)
    hx, hy = ex + l2 * np.cos(a2), ey + l2 * np.sin(a2)
    one = np.ones(s.size)
    bars = [(l1, w1, sx, sy, a1), (l2, w2, ex, ey, a2)]
    for f in hd["fingers"]:
        bars.append((f["length"], f["width"], hx, hy,
                     a2 + f["spread"] + f["wiggle"] * np.sin(2 * np.pi * f["freq"] * s + f["phase"])))
    sprites, tracks = [], []
    for length, width, x0, y0, a in bars:
        sprites.append(_sprite(capsule_mask(length + width, width), obj, 1.0))
        tracks.append((x0 + 0.5 * length * np.cos(a), y0 + 0.5 * length * np.sin(a), a, one))
    return sprites, tracks


def _camera_track(cam: dict, s: np.ndarray) -> np.ndarray:
    """Camera offset ``[n, 2]`` (px) at the scene's effective times ``s``."""
    out = np.zeros((s.size, 2))
    if cam["kind"] in ("shake", "wander"):
        for i, (amp, freq, phase) in enumerate(cam["waves"]):
            out[:, i // 2] += amp * np.sin(2 * np.pi * freq * s + phase)
    elif cam["kind"] == "pan":
        e = cam["extent"]
        out[:, 0] = _reflect(cam["speed"] * np.cos(cam["heading"]) * s, -e, e)
        out[:, 1] = _reflect(cam["speed"] * np.sin(cam["heading"]) * s, -e, e)
    return out


def _frame_stride(parts: np.ndarray, radii: np.ndarray, camera: np.ndarray) -> int:
    """Frames every ``stride`` ms (1..MAX_STRIDE) so that nothing moves more than about
    a pixel between two frames (``parts`` at 1 kHz, ``radii`` [K] px)."""
    if parts.shape[0] < 2:
        return 1
    d = np.abs(np.diff(parts, axis=0))  # [n-1, K, 4]
    move = d[..., 0] + d[..., 1] + (d[..., 2] * parts[1:, :, 3] + d[..., 3]) * radii
    fastest = max(float(move.max(initial=0.0)), float(np.abs(np.diff(camera, axis=0)).sum(1).max(initial=0.0)))
    return int(np.clip(np.floor(1.0 / max(fastest, 1e-9)), 1, MAX_STRIDE))


def render_frames(scene: Scene, start: int = 0, stop: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Frames ``start`` .. ``stop - 1`` of ``scene``: ``float32 [n, H, W]`` linear
    intensities, row 0 at the top, seen at ``scene.times_us[start:stop]``."""
    stop = scene.times_us.size if stop is None else min(stop, scene.times_us.size)
    w, h = scene.sensor_size
    n = max(stop - start, 0)
    if out is None:
        out = np.empty((n, h, w), np.float32)
    draw_frames(scene.background, float(scene.margin), np.ascontiguousarray(scene.camera[start:stop]),
                np.ascontiguousarray(scene.gain[start:stop]), scene.illumination, scene.sprite_alpha,
                scene.sprite_value, scene.sprite_shape, scene.part_sprite,
                np.ascontiguousarray(scene.parts[start:stop]), np.empty((h, w), np.float32),
                np.full(2, np.nan), out[:n])
    return out[:n]


# ============================================================ a scene
def _illumination(light: dict, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    u, v = (xx + 0.5) / w - 0.5, (yy + 0.5) / h - 0.5
    log_i = light["gradient"][0] * u + light["gradient"][1] * v - 4 * light["vignette"] * (u * u + v * v)
    return np.exp(log_i - log_i.max()).astype(np.float32)


def _background(desc: dict, size: tuple[int, int], margin: int) -> np.ndarray:
    bg = desc["background"]
    tex = texture(bg["texture"], size[1] + 2 * margin, size[0] + 2 * margin)
    return np.clip(bg["level"] * np.exp(bg["texture"]["contrast"] * tex), MIN_INTENSITY, 1.0).astype(np.float32)


def _objects(desc: dict, rng, n: int, still: np.ndarray, size: tuple[int, int]):
    """Sprites, their parts' 1 kHz tracks ``(x, y, angle, scale)`` and parallax, in
    drawing order."""
    per_object, centres = [], []
    for obj in desc["objects"]:
        s = _effective_time(_envelope(rng, n, obj["motion"]["pauses"]) * still)
        if obj["shape"]["kind"] == "hand":
            sprites, tracks = _hand_parts(obj, s)
            centres.append(tracks[1][:2])
        else:
            px = obj["motion"]["scale"]  # sprite pixel = image pixels at the middle scale
            sprites = [_sprite(shape_mask(obj["shape"], px), obj, px)]
            x, y, a, sc = _track(obj, s, size, centres)
            tracks = [(x, y, a, sc / px)]
            centres.append((x, y))
        per_object.append((sprites, tracks, obj["motion"]["parallax"]))
    return [per_object[i] for i in desc["draw_order"]]


def make_scene(seed: int, index: int = 0, duration_s: float = 10.0, sensor_size=(128, 128)) -> Scene:
    """Draw recording ``index`` of ``seed``: ``duration_s`` seconds on a sensor of
    ``sensor_size`` ``(width, height)`` (see the module docstring)."""
    if not duration_s > 0:
        raise ValueError(f"duration must be positive, got {duration_s}")
    size = tuple(int(v) for v in sensor_size_of(sensor_size))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    desc = _sample_description(rng, size)
    emu = _sample_emulator(rng)
    n = round(duration_s * BASE_FPS) + 1
    still = _envelope(rng, n, desc["still"], move_s=(1.5, 5.0), pause_s=(0.4, 2.0))
    s_scene = _effective_time(still)
    camera = _camera_track(desc["camera"], s_scene)
    drawn = _objects(desc, rng, n, still, size)

    shapes, alphas, values, part_sprite, tracks, radii = [], [], [], [], [], []
    off = 0
    for sprites, obj_tracks, parallax in drawn:
        for (mask, value), (x, y, a, sc) in zip(sprites, obj_tracks):
            shapes.append((off, mask.shape[0], mask.shape[1]))
            off += mask.size
            alphas.append(mask.ravel())
            values.append(value.ravel())
            part_sprite.append(len(shapes) - 1)
            tracks.append(np.stack([x - parallax * camera[:, 0], y - parallax * camera[:, 1], a, sc], -1))
            radii.append(0.5 * math.hypot(*mask.shape))
    parts = np.stack(tracks, 1)  # [n, K, 4]
    stride = _frame_stride(parts, np.asarray(radii), camera)
    idx = np.arange(0, n, stride)
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    light = desc["lighting"]
    gain = np.ones(n)
    if light["drift"]:  # slow, and it stops while the scene stands still
        gain = np.exp(light["drift_amp"] * np.sin(2 * np.pi * s_scene / light["drift_period_s"] + light["drift_phase"]))
    margin = int(np.ceil(np.abs(camera).max(initial=0.0))) + 2
    desc.update(sensor_size=list(size), duration_s=float(duration_s), fps=BASE_FPS / stride)
    return Scene(
        sensor_size=size, duration_s=float(duration_s), times_us=(idx * (1_000_000 // BASE_FPS)).astype(np.int64),
        description=desc, emulator=emu, emulator_seed=(int(seed), int(index), 1),
        background=_background(desc, size, margin), margin=margin, illumination=_illumination(light, size),
        gain=gain[idx].astype(np.float32), camera=np.ascontiguousarray(camera[idx]),
        sprite_alpha=np.concatenate(alphas).astype(np.float32), sprite_value=np.concatenate(values).astype(np.float32),
        sprite_shape=np.asarray(shapes, np.int64), part_sprite=np.asarray(part_sprite, np.int64),
        parts=np.ascontiguousarray(parts[idx]))


def scene_event_packets(scene: Scene, block: int = 50):
    """Events of ``scene`` through its emulator, one time-sorted
    :data:`~dvsstream.events.EVENT_DTYPE` packet per ``block`` frames (t in µs from 0)."""
    w, h = scene.sensor_size
    emu = Emulator(scene.sensor_size, scene.emulator, seed=np.random.SeedSequence(list(scene.emulator_seed)))
    buf = np.empty((block, h, w), np.float32)
    emu.reset(render_frames(scene, 0, 1, buf)[0], int(scene.times_us[0]))
    for i in range(1, scene.times_us.size, block):
        j = min(i + block, scene.times_us.size)
        yield emu.run(render_frames(scene, i, j, buf), scene.times_us[i:j])


def generate_scene(seed: int, index: int = 0, duration_s: float = 10.0, sensor_size=(128, 128)) -> tuple[np.ndarray, Scene]:
    """Events (time-sorted, ``t`` in ``[0, duration]`` µs) and the :class:`Scene` of
    recording ``index`` of ``seed``."""
    scene = make_scene(seed, index, duration_s, sensor_size)
    parts = list(scene_event_packets(scene))
    return (np.concatenate(parts) if parts else np.zeros(0, EVENT_DTYPE)), scene


# ============================================================ many recordings
def _kinds(desc: dict) -> dict:
    """The kinds a scene drew: ``shapes``, ``textures`` (objects and background),
    ``motions`` (lists) and ``camera``."""
    objs = desc["objects"]
    return {"shapes": [o["shape"]["kind"] for o in objs],
            "textures": [o["texture"]["kind"] for o in objs] + [desc["background"]["texture"]["kind"]],
            "motions": [o["motion"]["kind"] for o in objs], "camera": desc["camera"]["kind"]}


def _write_one(task: tuple) -> dict:
    """Make recording ``index`` and write it to ``out/scene_<index>.h5`` (runs in a
    worker process); the file appears under its name only once complete."""
    from dvsstream.io.hdf5 import RecordingWriter  # h5py only where needed

    index, seed, duration_s, size, out = task
    t0 = time.monotonic()
    scene = make_scene(seed, index, duration_s, size)
    info = {"generator": "dvsstream.synth.scenes", "seed": seed, "index": index,
            "emulator": asdict(scene.emulator), **scene.description}
    count = {}

    def write(tmp: Path) -> None:
        with RecordingWriter(tmp, size, "dvsstream-synth-scenes", source=json.dumps(info)) as writer:
            for packet in scene_event_packets(scene):
                writer.write(packet)
            count["events"] = writer.n_events

    path = Path(out, f"scene_{index:04d}.h5")
    replace_atomically(path, write)
    return {"index": index, "path": str(path), "sensor_size": list(size), "events": int(count["events"]),
            "events_per_s": count["events"] / duration_s, "wall_s": time.monotonic() - t0, **_kinds(scene.description)}


def _checked_sizes(sensor_size) -> list[tuple[int, int]]:
    """One ``(width, height)`` or a list of them, as a list; a one-line error otherwise."""
    sizes = [sensor_size] if len(sensor_size) == 2 and all(np.isscalar(v) for v in sensor_size) else list(sensor_size)
    out = []
    for s in sizes:
        try:
            w, h = (int(v) for v in s)
        except (TypeError, ValueError):
            raise DvsstreamError(f"--sensor-size {s!r}: give WIDTHxHEIGHT, e.g. 128x128") from None
        if not (8 <= w <= 4096 and 8 <= h <= 4096):
            raise DvsstreamError(f"--sensor-size {w}x{h}: width and height must lie in 8..4096")
        out.append((w, h))
    if not out:
        raise DvsstreamError("--sensor-size: give at least one WIDTHxHEIGHT")
    return out


def _make_scene_folder(out: Path) -> None:
    """Create ``out``; refuse a folder that holds anything (pre-training reads every
    recording under a folder) and a missing parent (the gesture set's rule)."""
    from dvsstream.synth.dataset import _make_output_folder

    if out.is_dir() and any(out.iterdir()):
        raise DvsstreamError(f"{out}: is not empty; choose an empty --out folder (pre-training reads every "
                             "recording under a folder: scenes mixed with other files would change what it sees)")
    _make_output_folder(out, ())


def write_scene_recordings(out_dir, n_recordings: int, duration_s: float, seed: int = 0, sensor_size=(128, 128),
                           workers: int = 1, *, progress: bool = True) -> dict:
    """Write ``n_recordings`` scenes of ``duration_s`` seconds to
    ``out_dir/scene_0000.h5`` ... (dvsstream HDF5, no labels; ``source`` is the JSON
    description of the scene, its seed and its emulator parameters) and
    ``out_dir/scenes_summary.json``.

    ``sensor_size``: ``(width, height)``, or a list of them used in turn (recording
    ``i`` gets ``sizes[i % len(sizes)]``). ``workers``: processes (1 = this one); the
    recordings do not depend on it. ``out_dir`` must be empty or new (its parent must
    exist). Returns a summary dict: ``recordings``, ``events``, ``events_per_s``
    (mean over the set), ``rate_min`` / ``rate_median`` / ``rate_max`` (events/s per
    recording), ``wall_s``, ``realtime`` (recorded seconds per wall second),
    ``kinds`` (how many objects of each shape, texture, motion; scenes per camera motion)
    and ``paths``."""
    from dvsstream.synth.dataset import _bar

    sizes = _checked_sizes(sensor_size)
    if int(n_recordings) < 1:
        raise DvsstreamError(f"--recordings must be at least 1, got {n_recordings}")
    if not (math.isfinite(duration_s) and MIN_DURATION_S <= duration_s <= MAX_DURATION_S):
        raise DvsstreamError(f"--duration {duration_s} s: a scene recording lasts {MIN_DURATION_S:g} to "
                             f"{MAX_DURATION_S:g} s (its motions are planned in memory: for more data, write more "
                             "recordings)")
    if int(workers) < 1:
        raise DvsstreamError(f"--workers must be at least 1, got {workers}")
    out = Path(out_dir)
    _make_scene_folder(out)
    tasks = [(i, int(seed), float(duration_s), sizes[i % len(sizes)], str(out)) for i in range(int(n_recordings))]
    t0 = time.monotonic()
    bar = _bar(len(tasks), progress)
    try:
        if workers <= 1:
            results = [_counted(bar, _write_one(t)) for t in tasks]
        else:
            with ProcessPoolExecutor(max_workers=int(workers)) as ex:
                results = [_counted(bar, r) for r in ex.map(_write_one, tasks, chunksize=1)]
    finally:
        bar.close()
    summary = _summary(out, results, float(duration_s), int(seed), sizes, time.monotonic() - t0)
    replace_atomically(out / "scenes_summary.json",
                       lambda tmp: tmp.write_text(json.dumps({**summary, "recordings_list": results}, indent=1)))
    return summary


def _counted(bar, result: dict) -> dict:
    bar.update(1)
    return result


def _summary(out: Path, results: list[dict], duration_s: float, seed: int, sizes, wall: float) -> dict:
    rates = np.array([r["events_per_s"] for r in results])
    kinds: dict[str, dict[str, int]] = {"shapes": {}, "textures": {}, "motions": {}, "camera": {}}
    for r in results:
        for key, counts in kinds.items():
            for k in (r[key] if isinstance(r[key], list) else [r[key]]):
                counts[k] = counts.get(k, 0) + 1
    n_events = sum(r["events"] for r in results)
    return {"out": str(out), "generator": "dvsstream.synth.scenes", "recordings": len(results),
            "duration_s": duration_s, "seed": seed, "sensor_sizes": [list(s) for s in sizes], "events": int(n_events),
            "events_per_s": n_events / (duration_s * len(results)), "rate_min": float(rates.min()),
            "rate_median": float(np.median(rates)), "rate_max": float(rates.max()), "wall_s": wall,
            "realtime": duration_s * len(results) / wall if wall > 0 else float("inf"), "kinds": kinds,
            "paths": [r["path"] for r in results]}
