"""A stick figure that performs the eleven DVS128 Gesture classes, rendered as
intensity frames for the DVS emulator (:mod:`dvsstream.synth.emulator`).

The figure
==========
Upper body facing the camera: head (disc), neck, torso (a wide capsule that
runs off the bottom of the image), a shoulder bar, and two arms of three
segments each (upper arm, forearm, hand). Every segment is an anti-aliased
thick line segment ("capsule") with its own intensity, drawn back to front by
depth over a static, smoothly textured background (painter's algorithm), so
an arm in front of the torso occludes it and one behind is hidden.

Geometry is 3-D in *body units* (pixels at scale 1): ``x`` to the image's
right, ``y`` down, ``z`` towards the camera, origin at the middle of the chest;
the image is an orthographic projection (``x``, ``y``) scaled by ``scale`` and
shifted to ``(cx, cy)``. Frames are ``[128, 128]`` (row 0 at the top) linear
intensities in ``(0, 1]``.

Handedness and rotation sense
-----------------------------
As in DVS128 Gesture, the subject faces the sensor, so **the subject's right
arm appears on the image's left** (small ``x``). "right_hand_wave" moves the arm
on the image's left. Arm rotations are named by their sense **as seen in the
image** displayed with row 0 at the top (``x`` right, ``y`` down):
"clockwise" means clockwise on the screen. Mirroring an image left-right turns
right_arm_clockwise into left_arm_counter_clockwise (and so on), so a
left-right flip augmentation must swap those labels (or be switched off).

Classes (index, name, choreography)
-----------------------------------
0 hand_clapping: both hands meet and part in front of the chest.
1 right_hand_wave / 2 left_hand_wave: the elbow out to the side, the forearm up,
  swinging left and right about the elbow; the other arm hangs.
3 right_arm_clockwise / 4 right_arm_counter_clockwise / 5 left_arm_clockwise /
  6 left_arm_counter_clockwise: the hand draws a large circle beside the body.
7 arm_roll: both hands circle around a common point in front of the chest, half
  a turn apart (forearms rolling around each other).
8 air_drums: both hands beat down and up alternately at belly height, apart.
9 air_guitar: one arm held up and out (the neck), the other hand strumming
  quickly at the hip (the strumming hand is the subject's right one in ~70 %).
10 other_gestures: smooth random, non-periodic arm movements (one or both arms).

Every sample draws its own speed (period), amplitude, phase, position, scale,
pose offsets, body sway, background texture, contrast (a figure brighter than the
background by a random factor; dark-on-bright figures only on request, see
:data:`DARK_FIGURE_FRACTION`) and sensor parameters: see :func:`sample_params`.
No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

__all__ = [
    "CLASS_NAMES",
    "N_CLASSES",
    "SENSOR_SIZE",
    "GestureParams",
    "sample_params",
    "pose",
    "figure_segments",
    "make_background",
    "render_frames",
]

CLASS_NAMES = (
    "hand_clapping",
    "right_hand_wave",
    "left_hand_wave",
    "right_arm_clockwise",
    "right_arm_counter_clockwise",
    "left_arm_clockwise",
    "left_arm_counter_clockwise",
    "arm_roll",
    "air_drums",
    "air_guitar",
    "other_gestures",
)
N_CLASSES = len(CLASS_NAMES)
SENSOR_SIZE = (128, 128)  # (width, height)

# body constants, body units (px at scale 1)
HEAD = np.array([0.0, -42.0, 0.0])
HEAD_R = 10.5
NECK = (np.array([0.0, -33.0, 0.0]), np.array([0.0, -22.0, 0.0]), 4.5)
TORSO = (np.array([0.0, -10.0, 0.0]), np.array([0.0, 60.0, 0.0]), 16.0)
SHOULDER_BAR = 6.5
SHOULDER_X, SHOULDER_Y = 19.0, -19.0
L_UPPER, L_FORE, L_HAND = 22.0, 20.0, 6.0
R_UPPER, R_FORE, R_HAND = 4.6, 4.0, 4.6
REACH = L_UPPER + L_FORE


@dataclass
class GestureParams:
    """Everything random about one sample (see :func:`sample_params`)."""

    class_id: int
    period_s: float  # gesture period
    amplitude: float  # scales the motion's size (about 1)
    phase: float  # rad
    direction: float  # +1 / -1 where a class allows either sense (arm_roll)
    mirror: bool  # swap sides (air_guitar only: left-handed strumming)
    cx: float  # image position of the chest (px)
    cy: float
    scale: float  # body size factor
    pose_jitter: np.ndarray  # small offsets of the gesture's working points (body units)
    sway_amp: float  # body sway (px) and its period
    sway_period_s: float
    sway_phase: float
    background: float  # mean background intensity
    texture: float  # relative texture amplitude
    torso: float  # part intensities
    upper_arm: float
    forearm: float
    hand: float
    head: float
    theta: float  # emulator nominal threshold
    noise_rate_hz: float
    n_hot_pixels: int
    hot_pixel_rate_hz: float
    refractory_us: int
    texture_seed: int
    other: dict = field(default_factory=dict)  # random trajectories of "other"


#: share of samples with a dark figure on a bright background. 0 by default: with both
#: contrast signs, ON/OFF no longer tell an arm's leading edge from its trailing edge,
#: and a tiny Spikformer then confuses clockwise with counter-clockwise rotations
#: (measured on 0.4 s windows: 81.8 % held-out with 25 % dark figures, 94.9 % with none).
DARK_FIGURE_FRACTION = 0.0


def sample_params(class_id: int, rng: np.random.Generator,
                  dark_fraction: float = DARK_FIGURE_FRACTION) -> GestureParams:
    """Draw the random parameters of one sample of ``class_id`` (``dark_fraction``:
    probability of a dark figure on a bright background)."""
    if not 0 <= class_id < N_CLASSES:
        raise ValueError(f"class_id must be in 0..{N_CLASSES - 1}, got {class_id}")
    base_period = {0: 0.5, 1: 0.55, 2: 0.55, 3: 1.1, 4: 1.1, 5: 1.1, 6: 1.1, 7: 0.5, 8: 0.5, 9: 0.28, 10: 1.0}
    period = base_period[class_id] * float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
    bright = rng.random() >= dark_fraction
    if bright:  # bright figure on a dark background
        bg = rng.uniform(0.06, 0.35)
        def part():
            return float(min(1.0, bg * np.exp(rng.uniform(0.5, 1.4))))
    else:  # dark figure on a bright background
        bg = rng.uniform(0.45, 0.95)
        def part():
            return float(max(0.01, bg * np.exp(-rng.uniform(0.5, 1.4))))
    torso = part()
    upper = torso if rng.random() < 0.5 else part()  # sleeves or not
    fore = upper if rng.random() < 0.4 else part()
    hand = part()
    head = part()
    other = {}
    if class_id == 10:
        other = _other_trajectories(rng)
    return GestureParams(
        class_id=class_id,
        period_s=period,
        amplitude=float(rng.uniform(0.75, 1.2)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        direction=float(rng.choice([-1.0, 1.0])),
        mirror=bool(class_id == 9 and rng.random() < 0.3),
        cx=float(64 + rng.uniform(-10, 10)),
        cy=float(74 + rng.uniform(-6, 8)),
        scale=float(rng.uniform(0.82, 1.12)),
        pose_jitter=rng.normal(0, 3.0, 8),
        sway_amp=float(rng.uniform(0.0, 1.5)),
        sway_period_s=float(rng.uniform(1.5, 4.0)),
        sway_phase=float(rng.uniform(0, 2 * np.pi)),
        background=float(bg),
        texture=float(rng.uniform(0.05, 0.35)),
        torso=torso,
        upper_arm=upper,
        forearm=fore,
        hand=hand,
        head=head,
        theta=float(rng.uniform(0.12, 0.25)),
        noise_rate_hz=float(np.exp(rng.uniform(np.log(0.05), np.log(0.6)))),
        n_hot_pixels=int(rng.integers(0, 5)),
        hot_pixel_rate_hz=float(np.exp(rng.uniform(np.log(20.0), np.log(300.0)))),
        refractory_us=int(rng.integers(100, 1000)),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
        other=other,
    )


# ============================================================ kinematics
def _unit(v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-9)


def _ik(shoulder, target, pole):
    """Two-link inverse kinematics: elbow and hand positions ``[n, 3]`` for a
    hand aimed at ``target``, the elbow bending towards ``pole`` (direction)."""
    d = target - shoulder
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(dist, 1e-9)
    dist = np.clip(dist, abs(L_UPPER - L_FORE) + 2.0, REACH - 0.5)
    a = (L_UPPER**2 - L_FORE**2 + dist**2) / (2 * dist)
    h = np.sqrt(np.maximum(L_UPPER**2 - a**2, 0.0))
    pole = np.broadcast_to(pole, u.shape)
    v = pole - np.sum(pole * u, axis=-1, keepdims=True) * u
    v = _unit(v)
    elbow = shoulder + a * u + h * v
    hand = shoulder + dist * u
    return elbow, hand


def _fk(shoulder, d1, d2):
    elbow = shoulder + L_UPPER * _unit(d1)
    return elbow, elbow + L_FORE * _unit(d2)


def _vec(x, y, z, n):
    return np.stack([np.broadcast_to(np.asarray(c, float), (n,)) for c in (x, y, z)], axis=-1)


def _rest_arm(s, t, p: GestureParams, shoulder):
    """A relaxed hanging arm on side ``s`` (-1 image left, +1 image right)."""
    n = t.size
    sw = 1.5 * np.sin(2 * np.pi * t / (p.sway_period_s * 1.3) + p.sway_phase + s)
    target = shoulder + _vec(s * (7 + p.pose_jitter[7] * 0.5) + sw, 39.0, 8.0, n)
    return _ik(shoulder, target, np.array([s * 0.3, 0.0, -1.0]))


def _other_trajectories(rng, n_pts: int = 96):
    """Random smooth waypoint paths for both arms of an "other" gesture:
    hand targets relative to the shoulder, one every 0.25-0.7 s (absolute
    time, so a longer sample just continues the movement; ~40 s covered)."""
    out = {}
    active = rng.choice(["both", "left", "right"], p=[0.5, 0.25, 0.25])
    for side in (-1, 1):
        moving = active == "both" or (active == "right") == (side == -1)
        pts = np.stack([
            side * rng.uniform(-20, 38, n_pts),
            rng.uniform(-35, 38, n_pts),
            rng.uniform(0, 25, n_pts),
        ], axis=-1)
        knots = np.concatenate([[0.0], np.cumsum(rng.uniform(0.25, 0.7, n_pts - 1))]) - rng.uniform(0, 0.25)
        out[side] = {"moving": bool(moving), "pts": pts, "knots": knots,
                     "pole": np.array([side * rng.uniform(0.2, 1.0), rng.uniform(-0.2, 0.6), -1.0])}
    return out


def _smooth_path(pts, knots, t):
    """Cosine-eased piecewise interpolation of waypoints at times ``t`` (s);
    held at the ends."""
    t = np.clip(t, knots[0], knots[-1])
    i = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, len(knots) - 2)
    span = np.maximum(knots[i + 1] - knots[i], 1e-6)
    f = (t - knots[i]) / span
    f = 0.5 - 0.5 * np.cos(np.pi * f)
    return pts[i] + (pts[i + 1] - pts[i]) * f[:, None]


def pose(p: GestureParams, t: np.ndarray) -> dict:
    """Joint positions (body units) at times ``t`` (s): a dict with
    ``shoulder``/``elbow``/``hand`` -> ``{-1: [n,3], +1: [n,3]}`` (side -1 =
    image left = the subject's right) and ``offset`` [n, 2] (body sway, px)."""
    t = np.asarray(t, float)
    n = t.size
    c = p.class_id
    A = p.amplitude
    j = p.pose_jitter
    phi = 2 * np.pi * t / p.period_s + p.phase
    sh = {s: _vec(s * SHOULDER_X, SHOULDER_Y, 0.0, n) for s in (-1, 1)}
    arms = {}
    if c == 0:  # hand clapping
        cy = 4 + j[0]
        for s in (-1, 1):
            gap = 4.5 + A * 14 * (0.5 - 0.5 * np.cos(phi)) ** 0.8
            target = _vec(s * gap, cy, 16 + j[1], n)
            arms[s] = _ik(sh[s], target, np.array([s * 1.0, 0.6, -0.4]))
    elif c in (1, 2):  # hand wave
        s_w = -1 if c == 1 else 1
        beta = np.radians(65 + 2 * j[0])  # upper arm from the downward vertical
        d1 = _vec(s_w * np.sin(beta), np.cos(beta), 0.25, n)
        alpha = np.radians(12 + 2 * j[1]) + np.radians(32) * A * np.sin(phi)  # forearm from up
        d2 = np.stack([s_w * np.sin(alpha), -np.cos(alpha), np.full(n, 0.15)], axis=-1)
        arms[s_w] = _fk(sh[s_w], d1, d2)
        arms[-s_w] = _rest_arm(-s_w, t, p, sh[-s_w])
    elif c in (3, 4, 5, 6):  # arm circles
        s_c = -1 if c in (3, 4) else 1
        sense = 1.0 if c in (3, 5) else -1.0  # clockwise on screen (y down)
        psi = sense * phi
        radius = min(REACH * 0.42 * A, REACH * 0.5)
        center = sh[s_c] + _vec(s_c * (REACH * 0.5 + j[0]), -4 + j[1], 10.0, n)
        target = center + radius * np.stack([np.cos(psi), np.sin(psi), np.zeros(n)], axis=-1)
        arms[s_c] = _ik(sh[s_c], target, np.array([s_c * 0.5, 0.6, -1.0]))
        arms[-s_c] = _rest_arm(-s_c, t, p, sh[-s_c])
    elif c == 7:  # arm roll
        r = 10.0 * A
        cen = _vec(j[0] * 0.5, 2 + j[1], 18.0, n)
        for s in (-1, 1):
            ang = p.direction * phi + (0 if s < 0 else np.pi)
            target = cen + np.stack([s * 3 + r * np.cos(ang), r * 0.8 * np.sin(ang), 3 * np.sin(ang)], axis=-1)
            arms[s] = _ik(sh[s], target, np.array([s * 1.0, 0.5, -0.3]))
    elif c == 8:  # air drums
        for s in (-1, 1):
            u = 0.5 - 0.5 * np.cos(phi + (0 if s < 0 else np.pi) + 0.3 * j[2])
            y = 10 + j[0] + A * 16 * u**2  # quick strike down, slower lift
            target = _vec(s * (26 + j[1] * 0.7), 0, 15, n)
            target[:, 1] = y
            arms[s] = _ik(sh[s], target, np.array([s * 1.0, 0.3, -0.6]))
    elif c == 9:  # air guitar
        strum = 1 if p.mirror else -1
        fret = -strum
        slide = 4.0 * np.sin(2 * np.pi * t / (p.period_s * 4.3) + p.phase)
        neck = sh[fret] + _vec(fret * (32 + j[0]) + fret * slide, -8 + j[1] - 0.5 * slide, 12.0, n)
        arms[fret] = _ik(sh[fret], neck, np.array([fret * 0.3, 1.0, -0.4]))
        sy = A * 9 * np.sin(phi)
        hand = _vec(strum * (-3 + j[2] * 0.5), 24 + j[3] * 0.7, 14.0, n)
        hand[:, 1] += sy
        hand[:, 0] += strum * 0.3 * sy
        arms[strum] = _ik(sh[strum], hand, np.array([strum * 1.0, 0.2, -0.5]))
    else:  # other gestures: random smooth paths, not periodic
        for s in (-1, 1):
            o = p.other[s]
            if o["moving"]:
                rel = _smooth_path(o["pts"], o["knots"], t)
                arms[s] = _ik(sh[s], sh[s] + rel, o["pole"])
            else:
                arms[s] = _rest_arm(s, t, p, sh[s])
    offset = np.stack([p.sway_amp * np.sin(2 * np.pi * t / p.sway_period_s + p.sway_phase),
                       0.3 * p.sway_amp * np.sin(4 * np.pi * t / p.sway_period_s)], axis=-1)
    return {
        "shoulder": sh,
        "elbow": {s: arms[s][0] for s in (-1, 1)},
        "hand": {s: arms[s][1] for s in (-1, 1)},
        "offset": offset,
    }


def figure_segments(p: GestureParams, t: np.ndarray) -> np.ndarray:
    """Capsules to draw at times ``t``: ``float32 [n, K, 6]`` rows
    ``(x0, y0, x1, y1, radius, intensity)`` in image pixels, sorted back to
    front per frame."""
    t = np.asarray(t, float)
    n = t.size
    q = pose(p, t)
    rows = []  # (p0 [n,3], p1 [n,3], radius, value)

    def const(v):
        return np.broadcast_to(np.asarray(v, float), (n, 3))

    rows.append((const(TORSO[0]), const(TORSO[1]), TORSO[2], p.torso))
    rows.append((const([-SHOULDER_X + 2, SHOULDER_Y, 0]), const([SHOULDER_X - 2, SHOULDER_Y, 0]), SHOULDER_BAR, p.torso))
    rows.append((const(NECK[0]), const(NECK[1]), NECK[2], p.head))
    head = const(HEAD) + np.stack([0.6 * q["offset"][:, 0], np.zeros(n), np.full(n, 0.5)], axis=-1)
    rows.append((head, head, HEAD_R, p.head))
    for s in (-1, 1):
        S, E, H = q["shoulder"][s], q["elbow"][s], q["hand"][s]
        hand_dir = _unit(H - E)
        rows.append((S, E, R_UPPER, p.upper_arm))
        rows.append((E, H, R_FORE, p.forearm))
        rows.append((H, H + L_HAND * hand_dir, R_HAND, p.hand))
    k = len(rows)
    seg = np.empty((n, k, 6), np.float32)
    depth = np.empty((n, k))
    ox = q["offset"][:, 0]
    oy = q["offset"][:, 1]
    for i, (a, b, r, v) in enumerate(rows):
        seg[:, i, 0] = p.cx + p.scale * (a[:, 0] + ox)
        seg[:, i, 1] = p.cy + p.scale * (a[:, 1] + oy)
        seg[:, i, 2] = p.cx + p.scale * (b[:, 0] + ox)
        seg[:, i, 3] = p.cy + p.scale * (b[:, 1] + oy)
        seg[:, i, 4] = p.scale * r
        seg[:, i, 5] = v
        depth[:, i] = 0.5 * (a[:, 2] + b[:, 2]) + i * 1e-3  # ties: list order
    order = np.argsort(depth, axis=1, kind="stable")
    return np.take_along_axis(seg, order[:, :, None], axis=1)


def make_background(p: GestureParams, size=SENSOR_SIZE) -> np.ndarray:
    """Static textured background ``float32 [H, W]``: smooth blobs plus fine
    grain around ``p.background``."""
    w, h = size
    rng = np.random.default_rng(p.texture_seed)
    img = np.zeros((h, w))
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    for _ in range(12):
        cxb, cyb = rng.uniform(-10, w + 10), rng.uniform(-10, h + 10)
        sig = rng.uniform(6, 30)
        img += rng.normal() * np.exp(-((xx - cxb) ** 2 + (yy - cyb) ** 2) / (2 * sig * sig))
    img += 0.4 * rng.normal(size=(h, w))
    img = (img - img.mean()) / max(img.std(), 1e-9)
    out = p.background * np.exp(p.texture * np.clip(img, -2.5, 2.5))
    return np.clip(out, 0.005, 1.0).astype(np.float32)


@nb.njit(cache=True, nogil=True)
def _render(bg, segs, out):
    n, k, _ = segs.shape
    h, w = bg.shape
    for f in range(n):
        img = out[f]
        img[:, :] = bg
        for i in range(k):
            x0, y0, x1, y1, r, val = segs[f, i, 0], segs[f, i, 1], segs[f, i, 2], segs[f, i, 3], segs[f, i, 4], segs[f, i, 5]
            xa = max(int(np.floor(min(x0, x1) - r - 1)), 0)
            xb = min(int(np.ceil(max(x0, x1) + r + 1)), w - 1)
            ya = max(int(np.floor(min(y0, y1) - r - 1)), 0)
            yb = min(int(np.ceil(max(y0, y1) + r + 1)), h - 1)
            dx = x1 - x0
            dy = y1 - y0
            ll = dx * dx + dy * dy
            for y in range(ya, yb + 1):
                py = y + 0.5
                for x in range(xa, xb + 1):
                    px = x + 0.5
                    if ll > 1e-12:
                        u = ((px - x0) * dx + (py - y0) * dy) / ll
                        if u < 0.0:
                            u = 0.0
                        elif u > 1.0:
                            u = 1.0
                    else:
                        u = 0.0
                    ex = px - (x0 + u * dx)
                    ey = py - (y0 + u * dy)
                    cov = r + 0.5 - np.sqrt(ex * ex + ey * ey)
                    if cov <= 0.0:
                        continue
                    if cov > 1.0:
                        cov = 1.0
                    img[y, x] = img[y, x] * (1.0 - cov) + val * cov


def render_frames(background: np.ndarray, segments: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Draw ``segments`` (``[n, K, 6]`` from :func:`figure_segments`) over
    ``background`` ``[H, W]``: ``float32 [n, H, W]`` linear intensities.
    Pixel ``(row y, column x)`` covers ``[x, x+1) x [y, y+1)`` in segment
    coordinates."""
    bg = np.ascontiguousarray(background, dtype=np.float32)
    segs = np.ascontiguousarray(segments, dtype=np.float32)
    n = segs.shape[0]
    if out is None:
        out = np.empty((n, *bg.shape), np.float32)
    _render(bg, segs, out)
    return out
