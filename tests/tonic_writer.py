"""Small folders written in tonic's own ``save_to`` layouts and file formats, for the tests
of ``--dataset tonic:NAME``: N-MNIST and N-Caltech101's ATIS ``.bin`` (5 bytes per event,
what :func:`tonic.io.read_mnist_file` decodes), POKER-DVS and DVS-Lip ``.npy``, ASL-DVS
``.mat``, and DVS128 Gesture's preprocessed ``.npy`` (:func:`make_gesture_npy`). The
events depend on the class (a blob at a class-specific place), so that a model can
learn them."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from dvsstream.datasets.dvsgesture import GESTURE_CLASSES
from dvsstream.events import EVENT_DTYPE

NMNIST_DIGITS = tuple(str(d) for d in range(10))
POKER_CLASSES = ("cl", "he", "di", "sp")


def atis_bytes(x, y, t, p) -> bytes:
    """N-MNIST's ``.bin`` records: byte 0 x, byte 1 y, byte 2 bit 7 polarity and bits
    6..0 the time's bits 22..16, bytes 3 and 4 its bits 15..0 (µs, < 2**23)."""
    x, y, t, p = (np.asarray(v, np.int64) for v in (x, y, t, p))
    if t.size and (t.min() < 0 or t.max() >= 2 ** 23):
        raise ValueError("ATIS .bin times are 23-bit")
    raw = np.empty((x.size, 5), np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = ((p & 1) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return raw.tobytes()


def class_blob(label: int, n: int, width: int, height: int, seed: int, duration: int = 300_000,
               saccades: bool = True) -> tuple[np.ndarray, ...]:
    """``(x, y, t, p)`` of ``n`` events around a class-specific spot of a ``width`` x
    ``height`` sensor, moved along N-MNIST's three saccades (a triangle) when asked."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, duration, n))
    cx = width * (0.2 + 0.6 * ((label % 4) / 3))
    cy = height * (0.25 + 0.5 * ((label // 4 % 3) / 2))
    if saccades:  # three 100 ms saccades: right-down, left-down, back up
        phase = np.minimum(t * 3 // duration, 2)
        frac = (t - phase * duration / 3) / (duration / 3)
        dx = np.select([phase == 0, phase == 1], [3.5 * frac, 3.5 + 3.5 * frac], 7 - 7 * frac)
        dy = np.select([phase == 0, phase == 1], [7 * frac, 7 - 7 * frac], 0 * frac)
        cx, cy = cx - 2 + dx, cy - 3 + dy
    x = np.clip(np.round(rng.normal(cx, width / 16, n)), 0, width - 1).astype(np.int64)
    y = np.clip(np.round(rng.normal(cy, height / 16, n)), 0, height - 1).astype(np.int64)
    p = rng.integers(0, 2, n)
    return x, y, t, p


def make_nmnist(root: Path, train: int = 2, test: int = 1, n_events: int = 300,
                digits: Sequence[str] = NMNIST_DIGITS, seed: int = 0) -> Path:
    """``root/NMNIST/Train|Test/<digit>/<k>.bin``; returns ``root``."""
    for part, per_class in (("Train", train), ("Test", test)):
        for d in digits:
            folder = root / "NMNIST" / part / d
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                s = seed + 1000 * int(d) + k + (0 if part == "Train" else 500)
                (folder / f"{k:05d}.bin").write_bytes(atis_bytes(*class_blob(int(d), n_events, 34, 34, s)))
    return root


def make_ncaltech(root: Path, classes: Iterable[str] = ("Faces_easy", "accordion", "airplanes"), per_class: int = 3,
                  n_events: int = 400, seed: int = 0) -> Path:
    """``root/NCALTECH101/Caltech101/<class>/image_<k>.bin`` (events offset by a few
    pixels, as the recordings are, which tonic shifts back to 0)."""
    for label, cls in enumerate(classes):
        folder = root / "NCALTECH101" / "Caltech101" / cls
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            x, y, t, p = class_blob(label, n_events, 200, 150, seed + 100 * label + k, saccades=False)
            (folder / f"image_{k + 1:04d}.bin").write_bytes(atis_bytes(x + 5 + k, y + 3, t, p))
    return root


def make_poker(root: Path, train: int = 5, test: int = 2, n_events: int = 200, seed: int = 0,
               classes: Sequence[str] = POKER_CLASSES, placeholders: bool = True) -> Path:
    """``root/POKERDVS/pips_train|pips_test/<class>/<k>.npy``: ``[N, 4]`` columns t, x, y, p
    (what tonic's POKERDVS reads). ``placeholders``: empty ``pips_*.tar.gz`` beside them,
    so that tonic's own class finds its archive and does not try to fetch it."""
    for part, per_class in (("pips_train", train), ("pips_test", test)):
        for label, cls in enumerate(POKER_CLASSES):
            if cls not in classes:
                continue
            folder = root / "POKERDVS" / part / cls
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                x, y, t, p = class_blob(label, n_events, 35, 35, seed + 100 * label + k + len(part), 20_000, False)
                np.save(folder / f"{cls}{k}.npy", np.stack([t, x, y, p], axis=1).astype(np.int64))
        if placeholders:
            (root / "POKERDVS" / f"{part}.tar.gz").write_bytes(b"")
    return root


def make_asl(root: Path, letters: Iterable[str] = "abcdefghijklmnopqrstuvwxyz", per_class: int = 2,
             n_events: int = 300, seed: int = 0) -> Path:
    """``root/ASLDVS/<letter>/<letter>_<k>.mat`` with ASL-DVS's keys ts, x, y, pol (column
    vectors, y upside down: tonic flips it)."""
    import scipy.io

    for label, letter in enumerate(letters):
        folder = root / "ASLDVS" / letter
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            x, y, t, p = class_blob(label, n_events, 240, 180, seed + 10 * label + k, 100_000, False)
            scipy.io.savemat(folder / f"{letter}_{k:04d}.mat", {"ts": t[:, None], "x": x[:, None],
                                                                "y": y[:, None], "pol": p[:, None]})
    return root


def make_dvslip(root: Path, words: Sequence[str], per_class: int = 1, n_events: int = 200, seed: int = 0) -> Path:
    """``root/DVSLip/DVS-Lip/train|test/<word>/<k>.npy``: structured x, y, p, t (DVS-Lip's)."""
    dtype = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "?")])
    for part in ("train", "test"):
        for label, word in enumerate(words):
            folder = root / "DVSLip" / "DVS-Lip" / part / word
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                x, y, t, p = class_blob(label, n_events, 128, 128, seed + 10 * label + k, 50_000, False)
                a = np.empty(t.size, dtype)
                a["t"], a["x"], a["y"], a["p"] = t, x, y, p
                np.save(folder / f"{k}.npy", a)
    return root


def class_events(label: int, n: int, seed: int, t0: int = 0, duration: int = 200_000) -> np.ndarray:
    """Events whose position depends on the class: a blob centred on a class-specific spot."""
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = t0 + np.sort(rng.integers(0, duration, n))
    cx, cy = 16 + (label % 5) * 24, 24 + (label // 5) * 64
    ev["x"] = np.clip(rng.normal(cx, 6, n), 0, 127).astype(np.uint16)
    ev["y"] = np.clip(rng.normal(cy, 6, n), 0, 127).astype(np.uint16)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def make_gesture_npy(root: Path, users=((1, "fluorescent"), (2, "lab"), (24, "natural")), n: int = 1500,
                     noise: int = 0) -> Path:
    """tonic's preprocessed layout: (N, 4) float arrays x, y, p, t with t in ms; each
    sample a class blob of ``n`` events and ``noise`` isolated events anywhere (what a
    noise filter removes)."""
    for user, light in users:
        folder = "ibmGestureTrain" if user <= 23 else "ibmGestureTest"
        d = root / "DVSGesture" / folder / f"user{user:02d}_{light}"
        d.mkdir(parents=True, exist_ok=True)
        for label in range(len(GESTURE_CLASSES)):
            ev = class_events(label, n, 1000 * user + label, duration=1_500_000)
            if noise:
                rng = np.random.default_rng(1_000_000 + 1000 * user + label)
                extra = np.zeros(noise, ev.dtype)
                extra["x"], extra["y"] = rng.integers(0, 128, noise), rng.integers(0, 128, noise)
                extra["p"], extra["t"] = rng.integers(0, 2, noise), rng.integers(0, 1_500_000, noise)
                ev = np.sort(np.concatenate([ev, extra]), order="t", kind="stable")
            arr = np.stack([ev["x"], ev["y"], ev["p"], ev["t"] // 1000], axis=1).astype(np.float64)
            np.save(d / f"{label}.npy", arr)
    return root
