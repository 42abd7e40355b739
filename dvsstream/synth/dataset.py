"""The synthetic gesture set: the stick figure of :mod:`dvsstream.synth.gestures`
seen through the DVS emulator of :mod:`dvsstream.synth.emulator`.

Output layout (``out`` = the output folder)
===========================================
``out/hdf5/{train,test}/<class_name>_<index:04d>.h5``
    dvsstream HDF5 recordings (:mod:`dvsstream.io.hdf5`), one gesture each,
    with one label segment ``[0, duration)`` µs and the eleven ``class_names``.
    The ``source`` attribute holds a JSON description (class, user, lighting,
    seed, the drawn parameters).

``out/tonic/DVSGesture/ibmGesture{Train,Test}/userNN_<lighting>/<class>.npy``
    tonic 1.7.0's preprocessed DVS128 Gesture layout:
    ``tonic.datasets.DVSGesture(save_to="out/tonic", train=...)`` reads it.
    Each ``.npy`` is a plain ``float64 (N, 4)`` array with columns
    ``x, y, p, t`` and ``t`` in **milliseconds** (fractional, µs resolution),
    as the real files; tonic multiplies ``t`` by 1000 on load. ``p`` is 1 for
    ON, 0 for OFF.

    Sample ``index`` (0 .. samples_per_class-1) of every class is one
    "recording session", so a session folder holds one file per class, as in
    the real set. The last ``test_fraction`` of the sessions (rounded, at least
    one when there are two or more) form the test split. Within a split,
    session ``k`` goes to lighting ``LIGHTINGS[k % 5]`` and user
    ``first_user + k // 5``; training users are numbered from 1, test users
    follow the last training user (:func:`session_of`). With 20 samples per
    class: users 1-4 train (16 sessions), user 5 test (4 sessions). The HDF5
    file ``<class_name>_<index>.h5`` and ``userNN_<lighting>/<class>.npy``
    of the same sample hold the same events.

    tonic 1.7.0 only trusts a folder when (a) the archive it would have
    downloaded exists (``DVSGesture/ibmGestureTrain.tar.gz`` /
    ``ibmGestureTest.tar.gz``; only its presence is checked) and (b) the split
    folder holds at least 100 ``.npy`` files; otherwise it tries to download
    the real set. We write each archive as a genuine ``.tar.gz`` of that
    split's synthetic folder (so extracting it restores the folder), never a
    copy of IBM's file. A split with fewer than 100 samples (fewer than ~10
    sessions, i.e. about ``samples_per_class < 10 / test_fraction`` for the
    test split) does not satisfy (b): tonic's own class would then try to
    download; :mod:`dvsstream.datasets` reads any size. The summary warns.

``out/synth_summary.json``
    the summary (:data:`dvsstream.synth.SUMMARY_NAME`); it marks the folder, so that
    ``dvsstream train`` / ``eval --root out`` read the set from it (tonic's layout, else
    the HDF5 files: :mod:`dvsstream.datasets.synth_layout`).

Every sample draws its random parameters from
``numpy.random.SeedSequence([seed, class_id, index])``, so a set is the same
for a seed whatever the number of workers, and a sample does not depend on
``samples_per_class`` or on the other classes.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dvsstream.synth import SUMMARY_NAME
from dvsstream.synth import gestures as G
from dvsstream.synth.emulator import Emulator
from dvsstream.errors import DvsstreamError
from dvsstream.events import EVENT_DTYPE
from dvsstream.fileio import replace_atomically
from dvsstream.heap import check_disk_space, check_memory

__all__ = [
    "CLASS_NAMES",
    "write_gesture_recording",
    "LIGHTINGS",
    "generate_sample",
    "sample_frames",
    "session_of",
    "events_to_tonic_array",
    "generate_gesture_set",
    "check_set_fits",
    "set_resources",
]

CLASS_NAMES = G.CLASS_NAMES
#: lighting-condition names of the real set's session folders
LIGHTINGS = ("fluorescent", "fluorescent_led", "lab", "led", "natural")
DEFAULT_FPS = 1000.0
TONIC_MIN_FILES = 100  # tonic 1.7.0 DVSGesture._check_exists

# What a set costs, measured on the default set (0.4 s samples, 1000 fps, all classes):
# 21,900 events per second of sample on average (13,000-34,000 by class); on disk 5.8
# bytes an event in HDF5 and 40.7 in tonic's layout (the .npy files and their .tar.gz);
# a sample's working memory 9 MB plus 0.6 MB per second. The estimates round up.
EVENTS_PER_S = 25_000
DISK_BYTES_PER_EVENT = {"hdf5": 7.0, "tonic": 45.0}
#: bookkeeping per sample (its task, its future in a pool and its result), bytes
BYTES_PER_SAMPLE = 2_000
#: a worker's memory: the process with numpy and h5py, a sample's fixed part, and per second of sample
WORKER_BYTES, SAMPLE_BYTES_PER_S = 150e6, 3e6


# ============================================================ one sample
def _params(class_id: int, index: int, seed: int) -> G.GestureParams:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(class_id), int(index)]))
    return G.sample_params(class_id, rng)


def sample_frames(class_id: int, index: int, seed: int, duration_s: float = 2.0, fps: float = DEFAULT_FPS):
    """The intensity frames of one sample: ``(frames [n, 128, 128] float32,
    times_us [n] int64, params)`` (``n = duration * fps + 1``, the first at
    t = 0). For looking at the gestures; :func:`generate_sample` renders in
    blocks instead."""
    p = _params(class_id, index, seed)
    times_us = _frame_times(duration_s, fps)
    segs = G.figure_segments(p, times_us * 1e-6)
    return G.render_frames(G.make_background(p), segs), times_us, p


def _frame_times(duration_s: float, fps: float) -> np.ndarray:
    n = int(round(duration_s * fps))
    return np.rint(np.arange(n + 1) * (1e6 / fps)).astype(np.int64)


def generate_sample(class_id: int, index: int, seed: int, duration_s: float = 2.0,
                    fps: float = DEFAULT_FPS, block: int = 100) -> tuple[np.ndarray, G.GestureParams]:
    """Events of sample ``index`` of class ``class_id`` for ``seed``:
    ``(EVENT_DTYPE array, time-sorted, t in [0, duration] µs; params)``.

    Frames are rendered ``block`` at a time (bounded memory) at ``fps``
    virtual frames per second and fed to an :class:`~dvsstream.synth.emulator.Emulator`
    with the sample's sensor parameters."""
    if duration_s <= 0:
        raise ValueError(f"duration must be positive, got {duration_s}")
    p = _params(class_id, index, seed)
    times_us = _frame_times(duration_s, fps)
    segs = G.figure_segments(p, times_us * 1e-6)
    bg = G.make_background(p)
    emu = Emulator(G.SENSOR_SIZE, theta_on=p.theta, theta_off=p.theta, threshold_sigma=0.03,
                   refractory_us=p.refractory_us, noise_rate_hz=p.noise_rate_hz,
                   n_hot_pixels=p.n_hot_pixels, hot_pixel_rate_hz=p.hot_pixel_rate_hz,
                   seed=np.random.SeedSequence([int(seed), int(class_id), int(index), 1]))
    emu.reset(G.render_frames(bg, segs[:1])[0], int(times_us[0]))
    buf = np.empty((block, bg.shape[0], bg.shape[1]), np.float32)
    parts = []
    for i in range(1, times_us.size, block):
        j = min(i + block, times_us.size)
        frames = G.render_frames(bg, segs[i:j], buf[: j - i])
        parts.append(emu.run(frames, times_us[i:j]))
    events = np.concatenate(parts) if parts else np.zeros(0, EVENT_DTYPE)
    return events, p


def write_gesture_recording(path, class_ids, seed: int, duration_s: float = 2.0,
                            fps: float = DEFAULT_FPS) -> dict:
    """One HDF5 recording of several gestures performed one after the other
    (``duration_s`` each; sample ``k`` of the sequence is ``generate_sample(class_ids[k],
    k, seed)``), with one label segment per gesture and the class names: a demo input
    for replay and live classification. Returns ``{"path", "events", "labels"}``."""
    from dvsstream.io.hdf5 import RecordingWriter  # h5py only where needed

    step_us = int(round(duration_s * 1e6))
    with RecordingWriter(path, G.SENSOR_SIZE, "dvsstream-synth", class_names=list(CLASS_NAMES),
                         source=json.dumps({"generator": "dvsstream.synth.dataset.write_gesture_recording",
                                            "class_ids": [int(c) for c in class_ids], "seed": int(seed),
                                            "duration_s": duration_s})) as writer:
        for k, class_id in enumerate(class_ids):
            events, _ = generate_sample(int(class_id), k, seed, duration_s, fps)
            events["t"] += k * step_us
            writer.write(events)
            writer.add_label(k * step_us, (k + 1) * step_us, int(class_id))
        return {"path": str(path), "events": writer.n_events, "labels": len(class_ids)}


def session_of(index: int, samples_per_class: int, test_fraction: float = 0.2) -> tuple[str, int, str]:
    """``(split, user, lighting)`` of sample ``index`` (see the module docstring)."""
    n_test = _n_test(samples_per_class, test_fraction)
    n_train = samples_per_class - n_test
    if index < n_train:
        split, k, user0 = "train", index, 1
    else:
        split, k, user0 = "test", index - n_train, (n_train + len(LIGHTINGS) - 1) // len(LIGHTINGS) + 1
    return split, user0 + k // len(LIGHTINGS), LIGHTINGS[k % len(LIGHTINGS)]


def _n_test(samples_per_class: int, test_fraction: float) -> int:
    if samples_per_class < 2 or test_fraction <= 0:
        return 0
    if test_fraction >= 1:
        return samples_per_class
    return int(min(samples_per_class - 1, max(1, round(samples_per_class * test_fraction))))


def events_to_tonic_array(events: np.ndarray) -> np.ndarray:
    """``float64 (N, 4)`` rows ``(x, y, p, t_ms)`` as tonic's DVSGesture files."""
    out = np.empty((events.size, 4), np.float64)
    out[:, 0] = events["x"]
    out[:, 1] = events["y"]
    out[:, 2] = events["p"]
    out[:, 3] = events["t"] / 1000.0
    return out


def _params_json(p: G.GestureParams) -> dict:
    d = asdict(p)
    d.pop("other", None)
    d["pose_jitter"] = [round(float(v), 4) for v in p.pose_jitter]
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


def _work(task) -> dict:
    """Make and write one sample (runs in a worker process)."""
    (class_id, index, seed, duration_s, fps, out, formats, samples_per_class, test_fraction) = task
    from dvsstream.io.hdf5 import RecordingWriter  # h5py only where needed

    split, user, lighting = session_of(index, samples_per_class, test_fraction)
    events, p = generate_sample(class_id, index, seed, duration_s, fps)
    name = CLASS_NAMES[class_id]
    end_us = int(round(duration_s * 1e6))
    info = {"generator": "dvsstream.synth.dataset", "class_id": class_id, "class_name": name, "index": index,
            "seed": seed, "split": split, "user": user, "lighting": lighting, "duration_s": duration_s,
            "fps": fps, "params": _params_json(p)}
    if "hdf5" in formats:
        path = Path(out, "hdf5", split, f"{name}_{index:04d}.h5")
        with RecordingWriter(path, G.SENSOR_SIZE, "dvsstream-synth", class_names=list(CLASS_NAMES),
                             source=json.dumps(info), overwrite=True) as w:
            w.write(events)
            w.add_label(0, end_us, class_id)
    if "tonic" in formats:
        folder = Path(out, "tonic", "DVSGesture", _tonic_split(split), f"user{user:02d}_{lighting}")
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{class_id}.npy", events_to_tonic_array(events))
    return {"class_id": class_id, "index": index, "split": split, "events": int(events.size)}


def _tonic_split(split: str) -> str:
    return "ibmGestureTrain" if split == "train" else "ibmGestureTest"


# ============================================================ the set
def generate_gesture_set(out_dir, samples_per_class: int = 20, duration_s: float = 2.0, seed: int = 0,
                         formats=("hdf5", "tonic"), workers: int = 1, *, fps: float = DEFAULT_FPS,
                         test_fraction: float = 0.2, classes=None, progress: bool = True) -> dict:
    """Generate the synthetic gesture set into ``out_dir`` (layout in the
    module docstring).

    Parameters
    ----------
    samples_per_class: samples of each class (= recording sessions), split
        by session into train and test (``test_fraction`` of the sessions, the
        last ones, are test; 0 = all train, 1 = all test).
    duration_s: seconds per sample; ``fps``: virtual frame rate of the renderer.
    seed: the set's seed (same seed, same set, whatever ``workers``).
    formats: any of ``"hdf5"``, ``"tonic"``.
    workers: processes (1 = in this process).
    classes: class indices to make (default all eleven).
    progress: a tqdm bar on stderr.

    Returns a summary dict: ``samples``, ``events``, ``events_per_sample``,
    ``splits`` (samples per split), ``wall_s``, ``samples_per_s``, ``paths``,
    ``warnings``.
    """
    formats = _checked_formats(formats, samples_per_class, duration_s, fps, test_fraction)
    classes = list(range(G.N_CLASSES)) if classes is None else [int(c) for c in classes]
    out = Path(out_dir)
    check_set_fits(out, samples_per_class, duration_s, formats, workers, fps=fps, n_classes=len(classes))
    _make_output_folder(out, formats)
    tonic_root = out / "tonic" / "DVSGesture"

    tasks = [(c, i, int(seed), float(duration_s), float(fps), str(out), formats, int(samples_per_class),
              float(test_fraction)) for i in range(samples_per_class) for c in classes]
    t0 = time.monotonic()
    results = _run_tasks(tasks, workers, progress)

    splits = {"train": 0, "test": 0}
    for r in results:
        splits[r["split"]] += 1
    warnings = []
    paths = {}
    if "hdf5" in formats:
        paths["hdf5"] = str(out / "hdf5")
    if "tonic" in formats:
        paths["tonic"] = str(out / "tonic")
        warnings += _write_tonic_archives(tonic_root)
    wall = time.monotonic() - t0
    n_events = sum(r["events"] for r in results)
    summary = {
        "out": str(out),
        "samples": len(results),
        "classes": len(classes),
        "samples_per_class": int(samples_per_class),
        "duration_s": float(duration_s),
        "seed": int(seed),
        "formats": list(formats),
        "splits": splits,
        "events": int(n_events),
        "events_per_sample": n_events / max(1, len(results)),
        "wall_s": wall,
        "samples_per_s": len(results) / wall if wall > 0 else float("inf"),
        "paths": paths,
        "warnings": warnings,
    }
    _write_summary_file(out, summary, fps, test_fraction)
    return summary


def set_resources(samples_per_class: int, duration_s: float, formats=("hdf5", "tonic"), workers: int = 1,
                  fps: float = DEFAULT_FPS, n_classes: int = G.N_CLASSES) -> tuple[float, float]:
    """Estimated ``(memory, disk)`` bytes of a set (see :data:`EVENTS_PER_S`): memory
    for every sample's bookkeeping and each worker's sample, disk for the events in
    ``formats``; rounded up (a slower ``fps`` does not make fewer events)."""
    n = float(samples_per_class) * n_classes
    per_sample_s = max(1.0, fps / DEFAULT_FPS) * SAMPLE_BYTES_PER_S
    memory = n * BYTES_PER_SAMPLE + max(1, int(workers)) * (WORKER_BYTES + duration_s * per_sample_s)
    disk = n * duration_s * EVENTS_PER_S * sum(DISK_BYTES_PER_EVENT[f] for f in formats)
    return memory, disk


def check_set_fits(out, samples_per_class: int, duration_s: float, formats=("hdf5", "tonic"), workers: int = 1,
                   fps: float = DEFAULT_FPS, n_classes: int = G.N_CLASSES) -> None:
    """Before anything is made: refuse (one line) a set that needs more memory than the
    machine has or more disk than ``out``'s file system has free (:func:`set_resources`)."""
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    memory, disk = set_resources(samples_per_class, duration_s, formats, workers, fps, n_classes)
    n = int(samples_per_class) * n_classes
    what = f"a set of {n:,} samples of {duration_s:g} s"
    advice = "use fewer --samples-per-class or a shorter --duration"
    check_memory(memory, what, advice + (" or fewer --workers" if workers > 1 else ""))
    check_disk_space(disk, out, what, advice + (" or one --format" if len(formats) > 1 else ""))


def _checked_formats(formats, samples_per_class: int, duration_s: float, fps: float,
                     test_fraction: float) -> tuple[str, ...]:
    """``formats`` as a tuple, after checking :func:`generate_gesture_set`'s arguments
    (a one-line :class:`~dvsstream.errors.DvsstreamError` for a bad one)."""
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    bad = [f for f in formats if f not in ("hdf5", "tonic")]
    if bad or not formats:
        raise DvsstreamError(f"formats must be 'hdf5' and/or 'tonic', got {list(formats)}")
    if samples_per_class < 1:
        raise DvsstreamError(f"samples per class must be at least 1, got {samples_per_class}")
    if not duration_s > 0:
        raise DvsstreamError(f"the duration must be positive, got {duration_s} s")
    if not fps > 0:
        raise DvsstreamError(f"the frame rate must be positive, got {fps}")
    if not 0 <= test_fraction <= 1:
        raise DvsstreamError(f"test_fraction must be in [0, 1], got {test_fraction}")
    return formats


def _make_output_folder(out: Path, formats: tuple[str, ...]) -> None:
    """Create ``out`` (and its ``hdf5/{train,test}`` folders); refuse a missing parent
    folder and a folder that already holds a set in one of ``formats``."""
    if not out.parent.is_dir():  # the folder named is made; missing parents (a typo?) never are
        raise DvsstreamError(f"{out}: its folder {out.parent} does not exist; create it first or choose another")
    try:
        out.mkdir(exist_ok=True)
        if "hdf5" in formats:
            for split in ("train", "test"):
                Path(out, "hdf5", split).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DvsstreamError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    tonic_root = out / "tonic" / "DVSGesture"
    for split in ("train", "test"):
        for fmt, folder, pattern in (("hdf5", out / "hdf5" / split, "*.h5"),
                                     ("tonic", tonic_root / _tonic_split(split), "*/*.npy")):
            if fmt in formats and folder.is_dir() and any(folder.glob(pattern)):
                raise DvsstreamError(f"{folder}: already holds a gesture set; choose an empty --out folder "
                                     "(two sets in one folder would mix their samples)")


def _run_tasks(tasks: list[tuple], workers: int, progress: bool) -> list[dict]:
    """:func:`_work` on every task, in this process (``workers <= 1``) or in a pool of
    ``workers`` processes; the results in task order."""
    results = []
    bar = _bar(len(tasks), progress)
    try:
        if workers <= 1:
            for task in tasks:
                results.append(_work(task))
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=int(workers)) as ex:
                for r in ex.map(_work, tasks, chunksize=1):
                    results.append(r)
                    bar.update(1)
    finally:
        bar.close()
    return results


def _write_tonic_archives(tonic_root: Path) -> list[str]:
    """Each split's ``.tar.gz`` beside its folder (tonic checks it exists); a warning
    for each split with fewer files than tonic's class accepts."""
    warnings = []
    for split in ("train", "test"):
        folder = tonic_root / _tonic_split(split)
        folder.mkdir(parents=True, exist_ok=True)
        n_files = len(list(folder.glob("*/*.npy")))
        _write_archive(tonic_root / f"{_tonic_split(split)}.tar.gz", folder)
        if n_files < TONIC_MIN_FILES:
            warnings.append(
                f"{folder}: {n_files} samples; tonic 1.7.0's DVSGesture class needs at least "
                f"{TONIC_MIN_FILES} .npy files in a split to accept the folder (it tries to download "
                "otherwise); dvsstream's own dataset reader accepts it")
    return warnings


def _write_summary_file(out: Path, summary: dict, fps: float, test_fraction: float) -> None:
    """``out/synth_summary.json`` (:data:`~dvsstream.synth.SUMMARY_NAME`): the summary, the class names, ``fps`` and
    ``test_fraction`` (written atomically)."""
    def dump(tmp: Path) -> None:
        with open(tmp, "w") as f:
            json.dump({**summary, "class_names": list(CLASS_NAMES), "fps": fps, "test_fraction": test_fraction}, f,
                      indent=1)

    replace_atomically(out / SUMMARY_NAME, dump)


def _write_archive(path: Path, folder: Path) -> None:
    """A real ``.tar.gz`` of ``folder`` (member names relative to the
    ``DVSGesture`` folder, as tonic extracts them)."""
    tmp = path.with_name(path.name + ".part")
    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        tar.add(folder, arcname=folder.name)
    os.replace(tmp, path)


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _bar(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="sample", file=sys.stderr, desc="synth", dynamic_ncols=True, mininterval=0.5)


#: the clip length (s) the shipped model ``gesture_tiny`` was trained on: its 400 ms
#: window of 8 bins of 50 ms (``dvsstream/data/gesture_tiny.md``); ``dvsstream synth``'s default
SHIPPED_CLIP_S = 0.4
SHIPPED_BINS = 8


def shipped_model_mismatch(duration_s: float) -> str | None:
    """One line when clips of ``duration_s`` seconds differ from the window the shipped
    model saw (:func:`dvsstream.binning.clips.clip_mismatch`, the rule ``eval`` applies too)."""
    from dvsstream.binning.clips import clip_mismatch

    return clip_mismatch(duration_s, SHIPPED_CLIP_S, SHIPPED_BINS, "the shipped model (gesture_tiny)",
                         f"--duration {SHIPPED_CLIP_S:g}, the default, matches it")

