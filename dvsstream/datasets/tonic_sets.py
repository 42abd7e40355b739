"""tonic's vision classification datasets (``--dataset tonic:NAME``) read from tonic's own
``save_to`` folder, never downloaded.

==============  ==========================================================  ==========  =========
NAME            under ``root`` (tonic's layout)                             sensor      split
==============  ==========================================================  ==========  =========
NMNIST          ``NMNIST/Train|Test/<digit>/*.bin`` (ATIS, 5 bytes/event)    34x34       tonic's
NCALTECH101     ``NCALTECH101/Caltech101/<class>/*.bin``                    240x180     ceil 0.9
POKERDVS        ``POKERDVS/pips_train|pips_test/.../<..cl|he|di|sp>/*.npy``  35x35       tonic's
ASLDVS          ``ASLDVS/.../<letter>/*.mat``                               240x180     ceil 0.9
DVSLip          ``DVSLip/DVS-Lip/train|test/<word>/*.npy``                  128x128     tonic's
CIFAR10DVS      ``CIFAR10DVS/<class>/*.aedat4``: :mod:`~dvsstream.datasets.cifar10dvs`
DVSGesture      ``DVSGesture/ibmGestureTrain|ibmGestureTest/...``: :mod:`~dvsstream.datasets.dvsgesture`
==============  ==========================================================  ==========  =========

What comes from tonic (imported lazily, in the functions that need it): the class
names and their order (``NMNIST.classes``, ``POKERDVS.classes``, ``ASLDVS.classes``,
``DVSLip.classes``), the sensor sizes and the decoding of N-MNIST / N-Caltech101's ATIS
``.bin`` files (:func:`tonic.io.read_mnist_file`). tonic's other decoding lives in its
classes' ``__getitem__``, reproduced here exactly (the tests compare both on written
folders): POKER-DVS ``.npy`` columns ``t, x, y, p``; ASL-DVS ``.mat`` keys ``ts, x, y, pol``
with ``y = 179 - y``; DVS-Lip's structured ``.npy``; N-Caltech101 shifted so that its
smallest x and y are 0 (tonic states no sensor for it; frames use 240x180, the DAVIS240
extent the recordings fit, events beyond are not counted).

The file listing follows tonic's (the same labels from the same folder names), sorted so
that it does not depend on the file system. N-Caltech101 has no class list in tonic (its
labels are the folder names): its classes are the class folders found, sorted as tonic's
walk sorts them.

Unlike tonic's classes, a partial folder (tonic wants every file and downloads otherwise)
is read as it is, with one line saying how many files were found; a folder without the
set gives one line naming the tonic call that downloads it; a folder where some classes
have no files at all ("half there": a model would be trained without them, its labels
shifted) is refused. Split: tonic's own train / test where the set has one, else the
releases' per-class ceil(0.9 n) split (:func:`~dvsstream.datasets.release.release_split`).
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from dvsstream.errors import DvsstreamError
from dvsstream.datasets.listing import Sample, file_stamp
from dvsstream.datasets.release import SPLIT_RULE, SampleError, release_split

__all__ = [
    "NON_VISION",
    "TONIC_NATIVE",
    "TONIC_SETS",
    "TonicSet",
    "list_tonic",
    "read_tonic_events",
    "tonic_classes",
    "tonic_sensor_size",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TonicSet:
    """One tonic vision classification set as laid out under tonic's ``save_to``.

    ``name``: tonic's class name (its folder under ``save_to``). ``splits``: the train and
    test folders under ``<root>/<name>`` (None: no official split; ``folder`` holds every
    file). ``suffix``: the files' suffix. ``label_of``: the class name of a file's folder
    name, as tonic derives it (None: not a class folder). ``min_files``: how many files
    tonic's own check wants before it would download. ``download``: the tonic call that
    downloads the set (``{root}``, ``{train}``)."""

    name: str
    splits: Optional[tuple[str, str]]
    folder: str
    suffix: str
    label_of: Callable[[str], Optional[str]]
    min_files: int
    download: str

    def download_call(self, root: Path, split: str) -> str:
        return self.download.format(root=str(root), train="False" if split == "test" else "True")


#: the tonic vision classification sets read here (canonical NAME -> set)
TONIC_SETS: dict[str, TonicSet] = {s.name: s for s in (
    TonicSet("NMNIST", ("Train", "Test"), "", ".bin", lambda d: d[-1:] if d[-1:].isdigit() else None, 10000,
             'tonic.datasets.NMNIST(save_to="{root}", train={train})'),
    TonicSet("NCALTECH101", None, "Caltech101", ".bin", lambda d: d, 8709,
             'tonic.datasets.NCALTECH101(save_to="{root}")'),
    TonicSet("POKERDVS", ("pips_train", "pips_test"), "", ".npy", lambda d: d[-2:], 20,
             'tonic.datasets.POKERDVS(save_to="{root}", train={train})'),
    TonicSet("ASLDVS", None, "", ".mat", lambda d: d[-1:], 100800,
             'tonic.datasets.ASLDVS(save_to="{root}")'),
    TonicSet("DVSLip", ("DVS-Lip/train", "DVS-Lip/test"), "", ".npy", lambda d: d, 100,
             'tonic.datasets.DVSLip(save_to="{root}", train={train}) (after placing DVS-Lip.zip, a manual '
             'Google Drive download, in {root}/DVSLip)'),
)}

#: tonic sets that dvsstream's own loaders already read in tonic's layout (tonic:NAME -> loader)
TONIC_NATIVE = {"CIFAR10DVS": "cifar10dvs", "DVSGesture": "dvsgesture"}
_NATIVE_DOWNLOAD = {"CIFAR10DVS": 'tonic.datasets.CIFAR10DVS(save_to="{root}")',
                    "DVSGesture": 'tonic.datasets.DVSGesture(save_to="{root}", train=True)'}

#: tonic sets that are not vision classification sets, and what they are
NON_VISION = {
    "SHD": "an audio set (spoken digits through a 700-channel cochlea model)",
    "SSC": "an audio set (speech commands through a 700-channel cochlea model)",
    "NTIDIGITS18": "an audio set (spoken digits recorded by a silicon cochlea)",
    "SMNIST": "spike-encoded MNIST pixels (input neurons, not an event camera)",
    "DSEC": "a driving set for stereo and optical flow, not classification",
    "MVSEC": "a driving / flying set for depth and optical flow, not classification",
    "DAVISDATA": "recordings for ego-motion and SLAM, not classification",
    "TUMVIE": "a visual-inertial odometry set, not classification",
    "VPR": "a place recognition set, not classification",
    "NERDD": "a detection set, not classification",
    "EBSSA": "a space object detection set, not classification",
    "THREEET_EYETRACKING": "an eye tracking (regression) set, not classification",
}


def _tonic_class(name: str):
    import tonic.datasets  # a real dependency; imported here so that `import dvsstream` stays light

    return getattr(tonic.datasets, name)


def tonic_sensor_size(name: str) -> tuple[int, int]:
    """``(width, height)`` of the set's sensor, tonic's ``sensor_size`` (N-Caltech101,
    which tonic leaves unstated: 240x180)."""
    size = _tonic_class(name).sensor_size
    return (240, 180) if size is None else (int(size[0]), int(size[1]))


def _folder_classes(base: Path, ts: TonicSet) -> list[str]:
    return sorted({ts.label_of(p.parent.name) for p in base.rglob(f"*{ts.suffix}") if p.is_file()} - {None})


def tonic_classes(name: str, root=None) -> tuple[str, ...]:
    """The class names in label order: tonic's ``classes``; N-Caltech101's (no list in
    tonic): the class folders under ``root``, sorted as tonic walks them."""
    if name == "NCALTECH101":
        if root is None:
            raise DvsstreamError("tonic:NCALTECH101's classes are its class folders: the dataset folder (--root) "
                                 "is needed to name them")
        root = Path(root).expanduser()
        base = root / "NCALTECH101" / "Caltech101"
        classes = tuple(_folder_classes(base, TONIC_SETS[name])) if base.is_dir() else ()
        if not classes:
            raise _missing(TONIC_SETS[name], root, base, "all")
        return classes
    return tuple(str(c) for c in _tonic_class(name).classes)


def _file_label(name: str, classes: tuple[str, ...]) -> Callable[[str], Optional[int]]:
    """Folder name -> label index, as tonic's listing derives it (None: not a class folder)."""
    ts = TONIC_SETS[name]
    if name == "NMNIST":  # tonic: int(path[-1]); the classes are "0 - zero" ...
        return lambda d: int(d[-1]) if ts.label_of(d) is not None else None
    index = {c: i for i, c in enumerate(classes)}
    return lambda d: index.get(ts.label_of(d))


def _missing(ts: TonicSet, root: Path, where: Path, split: str) -> DvsstreamError:
    return DvsstreamError(f"tonic:{ts.name}: no {ts.suffix} files under {where}; dvsstream never downloads: "
                          f"{ts.download_call(root, split)} downloads it into {root}/{ts.name}")


def _list_folder(base: Path, ts: TonicSet, label: Callable[[str], Optional[int]]) -> dict[int, list[Path]]:
    """``{label: sorted files}`` of the set's files under ``base`` (recursively, as tonic walks)."""
    found: dict[int, list[Path]] = {}
    for dirpath, _dirs, files in os.walk(base):
        k = label(os.path.basename(dirpath))
        if k is None:
            continue
        found.setdefault(k, []).extend(Path(dirpath) / f for f in files if f.endswith(ts.suffix))
    return {k: sorted(v) for k, v in found.items() if v}


def _check_classes(ts: TonicSet, where: Path, classes: tuple[str, ...], found: dict[int, list[Path]],
                   root: Path, split: str) -> None:
    """A folder where some classes have no file at all: one line."""
    missing = [classes[k] for k in range(len(classes)) if k not in found]
    if missing:
        shown = ", ".join(missing[:8]) + (f", ... ({len(missing)} in all)" if len(missing) > 8 else "")
        raise DvsstreamError(f"tonic:{ts.name} at {where} is half there: {len(found)} of {len(classes)} classes have "
                             f"files, none for {shown}; complete it ({ts.download_call(root, split)} downloads it) "
                             f"or point --root at a complete copy")


def list_tonic(name: str, root: Path, split: str) -> tuple[list[Sample], dict[str, Any], tuple[str, ...]]:
    """The samples of ``split`` (``"train"``, ``"test"``, ``"all"``) of tonic set ``name``
    under ``root``, ``info`` for report.json and the class names. Raises one line
    (:class:`DvsstreamError`) for a missing set or one that is half there."""
    ts = TONIC_SETS[name]
    top = root / ts.name
    classes = tonic_classes(name, root)
    label = _file_label(name, classes)
    if ts.splits is not None:
        wanted = {"train": ("train",), "test": ("test",), "all": ("train", "test")}[split]
        folders = [(part, top / ts.splits[part == "test"]) for part in wanted]
        rule = f"tonic's own train / test split ({top}/{ts.splits[0]} and {top}/{ts.splits[1]})"
    else:
        folders = [(split, top / ts.folder if ts.folder else top)]
        rule = SPLIT_RULE
    samples: list[Sample] = []
    found_total = 0
    per_class: dict[str, int] = {c: 0 for c in classes}
    for part, where in folders:
        found = _list_folder(where, ts, label) if where.is_dir() else {}
        if not found:
            raise _missing(ts, root, where, part)
        _check_classes(ts, where, classes, found, root, part)
        for k in sorted(found):
            paths = [str(f) for f in found[k]]  # sorted: one folder's files in name order
            per_class[classes[k]] += len(paths)
            found_total += len(paths)
            keep = release_split(paths, split) if ts.splits is None else paths
            samples.extend(Sample(p, k, stamp=file_stamp(Path(p)), kind=f"tonic:{name}") for p in keep)
    where_text = " and ".join(str(f) for _, f in folders)
    msg = (f"tonic:{name} at {where_text}: found {found_total} {ts.suffix} files in {len(classes)} classes; "
           f"the {split} split holds {len(samples)}")
    if found_total < ts.min_files * len(folders):  # tonic checks each split's folder
        log.warning(msg + f" (a partial set: tonic's own check wants at least {ts.min_files} per split and would "
                          f"download the rest; reading what is there)")
    else:
        log.info(msg)
    info = {"layout": f"tonic {ts.name}", "folder": where_text, "found_per_class": per_class, "found": found_total,
            "tonic_check_min_files": ts.min_files, "split_rule": rule, "message": msg,
            "sensor_size": list(tonic_sensor_size(name))}
    return samples, info, classes


def check_native_folder(name: str, root: Path) -> None:
    """``tonic:CIFAR10DVS`` / ``tonic:DVSGesture``: tonic's folder must be there (the
    loaders also read other layouts; ``tonic:`` asks for tonic's)."""
    if not (root / name).is_dir():
        raise DvsstreamError(f"tonic:{name}: no {root / name} folder; dvsstream never downloads: "
                             f"{_NATIVE_DOWNLOAD[name].format(root=root)} downloads it into {root}/{name}")


# ------------------------------------------------------------------ decoding
def _events(t, x, y, p) -> np.ndarray:
    from dvsstream.events import EVENT_DTYPE

    t, x, y, p = (np.asarray(v).reshape(-1) for v in (t, x, y, p))
    if not (t.size == x.size == y.size == p.size):
        raise SampleError(f"t, x, y, p have different lengths ({t.size}, {x.size}, {y.size}, {p.size})")
    if t.size and (int(x.min()) < 0 or int(y.min()) < 0 or int(x.max()) > 65535 or int(y.max()) > 65535):
        raise SampleError(f"coordinates outside 0..65535 (x {int(x.min())}..{int(x.max())}, "
                          f"y {int(y.min())}..{int(y.max())})")
    ev = np.empty(t.size, EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, np.asarray(p) != 0
    return ev


def _read_atis_bin(path: str, name: str) -> np.ndarray:
    """N-MNIST / N-Caltech101 ``.bin``: tonic's :func:`tonic.io.read_mnist_file`."""
    from tonic.io import read_mnist_file

    data = Path(path).read_bytes()
    if len(data) % 5:
        raise SampleError(f"{len(data)} bytes, not a whole number of 5-byte events: truncated")
    ev = read_mnist_file(io.BytesIO(data), dtype=_tonic_class(name).dtype, is_stream=True)
    if name == "NCALTECH101" and ev.size:  # tonic's __getitem__
        ev["x"] -= ev["x"].min()
        ev["y"] -= ev["y"].min()
    return _events(ev["t"], ev["x"], ev["y"], ev["p"])


def _read_poker(path: str) -> np.ndarray:
    a = np.load(path, allow_pickle=False)
    if a.ndim != 2 or a.shape[1] != 4:
        raise SampleError(f"an array of shape {list(a.shape)}; expected POKER-DVS's [N, 4] (t, x, y, p)")
    return _events(a[:, 0], a[:, 1], a[:, 2], a[:, 3])


def _read_asl(path: str) -> np.ndarray:
    import scipy.io

    m = scipy.io.loadmat(path)
    missing = [k for k in ("ts", "x", "y", "pol") if k not in m]
    if missing:
        raise SampleError(f"no {', '.join(missing)} in the .mat file; expected ASL-DVS's ts, x, y, pol")
    height = tonic_sensor_size("ASLDVS")[1]
    return _events(m["ts"], m["x"], height - 1 - np.asarray(m["y"]).astype(np.int64), m["pol"])


def _read_lip(path: str) -> np.ndarray:
    a = np.load(path, allow_pickle=False)
    if a.dtype.names is None or not {"t", "x", "y", "p"} <= set(a.dtype.names):
        raise SampleError(f"fields {a.dtype.names}; expected DVS-Lip's structured x, y, p, t")
    return _events(a["t"], a["x"], a["y"], a["p"])


def read_tonic_events(path: str, name: str) -> np.ndarray:
    """One file of tonic set ``name`` decoded as tonic decodes it, as an
    :data:`~dvsstream.events.EVENT_DTYPE` array (``p`` 1 where tonic's is non-zero).
    Raises :class:`~dvsstream.datasets.release.SampleError` naming the file."""
    try:
        if name in ("NMNIST", "NCALTECH101"):
            return _read_atis_bin(path, name)
        if name == "POKERDVS":
            return _read_poker(path)
        if name == "ASLDVS":
            return _read_asl(path)
        return _read_lip(path)
    except SampleError as exc:
        raise SampleError(f"{path}: {exc}") from None
    except Exception as exc:  # anything a damaged file provokes in numpy / scipy
        raise SampleError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
