"""The releases' data, bit for bit: CIFAR10-DVS and DVS128 Gesture in every layout
(original .aedat, spikingjelly's extract / events_np / frames, raw AEDAT 3.1) give
frames equal to spikingjelly 2.0's own functions, with the releases' split.

Datasets are cut from the real DVS128 AEDAT 2 recordings in ../shared/data/real (the
clips keep the files' own header and raw records) and from AEDAT 3.1 files written
here; the spikingjelly layouts are made by spikingjelly's own converters."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dvsstream.datasets import release as rd
from dvsstream.datasets.load import load_dataset
from dvsstream.datasets.spec import FrameSpec
from dvsstream.errors import DvsstreamError
from dvsstream.io.aedat2 import read_header_lines

from sj_peer import real_file, spikingjelly_datasets

CLASSES = {"airplane": "neal_walking.aedat", "cat": "cam255_right_clamp_test1.aedat"}
PER_CLASS = 12  # the releases' split: ceil(0.9 * 12) = 11 train, 1 test
CLIP = 1500     # records per clip


def cut_clips(src: Path, out_dir: Path, cls: str, n: int = PER_CLASS, size: int = CLIP) -> list[Path]:
    """``cifar10_<cls>_<k>.aedat``: the source's header and ``size`` consecutive raw records."""
    with open(src, "rb") as f:
        _, offset = read_header_lines(src, f)
    raw = src.read_bytes()
    header, body = raw[:offset], raw[offset:]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        p = out_dir / f"cifar10_{cls}_{k}.aedat"
        p.write_bytes(header + body[k * size * 8:(k + 1) * size * 8])
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """An original-layout root, and a spikingjelly root (extract/, events_np/, frames) made
    from the same clips by spikingjelly's converters."""
    sjd = spikingjelly_datasets()
    from spikingjelly.datasets import cifar10_dvs
    from spikingjelly.datasets.base import _load_events

    base = tmp_path_factory.mktemp("c10")
    orig, sj = base / "orig", base / "sj"
    for cls, name in CLASSES.items():
        clips = cut_clips(real_file(name), orig / "CIFAR10DVS" / cls, cls)
        (sj / "extract" / cls).mkdir(parents=True)
        (sj / "events_np" / cls).mkdir(parents=True)
        for p in clips:
            shutil.copy(p, sj / "extract" / cls / p.name)
            cifar10_dvs._read_aedat_save_to_np(p, sj / "events_np" / cls / (p.stem + ".npz"))
    for split_by, T in (("number", 16), ("time", 8)):
        for cls in CLASSES:
            out = sj / f"frames_number_{T}_split_by_{split_by}" / cls
            out.mkdir(parents=True)
            for f in sorted((sj / "events_np" / cls).glob("*.npz")):
                sjd.integrate_events_file_to_frames_file_by_fixed_frames_number(
                    _load_events, str(f), str(out), split_by, T, 128, 128)
    return orig, sj, sjd, cifar10_dvs


def sj_frames(sjd, cifar10_dvs, path, split_by: str, T: int) -> np.ndarray:
    """spikingjelly's frames of one original file: _load_origin_data, then
    integrate_events_by_fixed_frames_number."""
    ev = cifar10_dvs._load_origin_data(path)
    return sjd.integrate_events_by_fixed_frames_number(ev, split_by, T, 128, 128).astype(np.float32)


def frames_of(root, split="all", **spec):
    d = load_dataset("cifar10dvs", root, split, FrameSpec(**spec), cache_dir=False)
    return d, [d[i] for i in range(len(d))]


# ------------------------------------------------------------------ conventions, frames
def test_original_aedat_read_like_spikingjelly(cifar):
    orig, _, _, cifar10_dvs = cifar
    for p in sorted((orig / "CIFAR10DVS").rglob("*.aedat"))[::5]:
        ours = rd.read_cifar10dvs_aedat(p)
        theirs = cifar10_dvs._load_origin_data(p)
        for k in "txyp":
            assert np.array_equal(ours[k].astype(np.int64), np.asarray(theirs[k]).astype(np.int64)), (p, k)
        # against dvsstream's upright reading: the transpose (ON = 1 in both)
        from dvsstream.io import open_file

        with open_file(p) as src:
            upright = np.concatenate(list(src))
        assert np.array_equal(ours["x"], upright["y"]) and np.array_equal(ours["y"], upright["x"])
        assert np.array_equal(ours["p"], upright["p"])


@pytest.mark.parametrize("split_by,T", [("number", 16), ("time", 8)])
def test_original_layout_frames_equal_spikingjelly(cifar, split_by, T):
    orig, _, sjd, cifar10_dvs = cifar
    mode = "count" if split_by == "number" else "time"
    d, items = frames_of(orig, n_bins=T, mode=mode)
    assert d.info["layout"] == "original CIFAR10DVS/<class>/*.aedat" and len(d) == 2 * PER_CLASS
    for (x, y), (path, label) in zip(items, d.samples):
        assert y == label == (0 if "airplane" in path else 3)
        want = sj_frames(sjd, cifar10_dvs, path, split_by, T)
        assert x.numpy().tobytes() == want.tobytes(), path  # bit-identical
        assert float(x.sum()) == CLIP


@pytest.mark.parametrize("layout", ["extract", "events_np", "frames"])
@pytest.mark.parametrize("split_by,T", [("number", 16), ("time", 8)])
def test_spikingjelly_layouts_same_frames(cifar, tmp_path, layout, split_by, T):
    orig, sj, sjd, cifar10_dvs = cifar
    root = tmp_path / layout
    root.mkdir()
    folder = {"extract": "extract", "events_np": "events_np", "frames": f"frames_number_{T}_split_by_{split_by}"}
    (root / folder[layout]).symlink_to(sj / folder[layout])
    mode = "count" if split_by == "number" else "time"
    d, items = frames_of(root, n_bins=T, mode=mode)
    assert d.info["layout"].startswith("spikingjelly " + folder[layout])
    assert len(d) == 2 * PER_CLASS
    for (x, y), (path, _) in zip(items, d.samples):
        src = orig / "CIFAR10DVS" / Path(path).parent.name / (Path(path).stem + ".aedat")
        assert x.numpy().tobytes() == sj_frames(sjd, cifar10_dvs, src, split_by, T).tobytes(), path


def test_native_convention_is_one_picture_in_every_layout(cifar, tmp_path):
    """native: dvsstream's upright reading, whichever layout the recording arrives in."""
    orig, sj, _, _ = cifar
    (tmp_path / "events_np").symlink_to(sj / "events_np")
    (tmp_path / "frames_number_16_split_by_number").symlink_to(sj / "frames_number_16_split_by_number")
    _, a = frames_of(orig, n_bins=16, convention="native")
    _, b = frames_of(tmp_path, n_bins=16, convention="native")          # frames folder
    (tmp_path / "frames_number_16_split_by_number").unlink()
    _, c = frames_of(tmp_path, n_bins=16, convention="native")          # events_np
    _, s = frames_of(orig, n_bins=16)                                   # spikingjelly's
    for (xa, _), (xb, _), (xc, _), (xs, _) in zip(a, b, c, s):
        assert np.array_equal(xa, xb) and np.array_equal(xa, xc)
        assert np.array_equal(xa.numpy(), xs.numpy().transpose(0, 1, 3, 2))


def test_downsampled_frames_are_pooled_spikingjelly_frames(cifar):
    orig, _, sjd, cifar10_dvs = cifar
    d, items = frames_of(orig, "test", n_bins=16, downsample=2)
    want = sj_frames(sjd, cifar10_dvs, d.samples[0][0], "number", 16).reshape(16, 2, 64, 2, 64, 2).sum((3, 5))
    assert np.array_equal(items[0][0].numpy(), want)


# ------------------------------------------------------------------ split
def test_split_is_the_releases(cifar):
    """spikingjelly's split_to_train_test_set (as the releases call it) on the sorted
    DatasetFolder order picks the same files."""
    orig, _, sjd, _ = cifar
    names = [(cls, n) for cls in sorted(CLASSES) for n in sorted(p.name for p in (orig / "CIFAR10DVS" / cls).iterdir())]
    label = {"airplane": 0, "cat": 3}
    folder = [(0, label[c]) for c, _ in names]  # a stand-in sample per file, its label
    train_set, test_set = sjd.split_to_train_test_set(0.9, folder, 10)
    want_train = {names[i][1] for i in train_set.indices}
    want_test = {names[i][1] for i in test_set.indices}
    train = load_dataset("cifar10dvs", orig, "train", FrameSpec(), cache_dir=False)
    test = load_dataset("cifar10dvs", orig, "test", FrameSpec(), cache_dir=False)
    assert {Path(p).name for p, _ in train.samples} == want_train and len(want_train) == 22
    assert {Path(p).name for p, _ in test.samples} == want_test == {"cifar10_airplane_9.aedat", "cifar10_cat_9.aedat"}
    assert test.info["split_rule"] == rd.SPLIT_RULE
    for n in (1, 3, 4, 10, 12, 1000):
        assert rd.release_n_train(n) == len(sjd.split_to_train_test_set(0.9, [(0, 0)] * n, 1)[0].indices)


def test_segment_index_matches_spikingjelly_on_edge_cases():
    sjd = spikingjelly_datasets()
    rng = np.random.default_rng(0)
    for n_ev, T, span in ((7, 16, 10_000), (1000, 16, 1_000_000), (33, 5, 34), (16, 16, 10**9)):
        t = np.sort(rng.integers(0, span, n_ev)).astype(np.int64)
        for split_by in ("number", "time"):
            try:
                want = sjd.cal_fixed_frames_number_segment_index(t, split_by, T)
            except IndexError:  # spikingjelly fails on an empty time slice; ours leaves it empty
                continue
            got = rd.segment_index(t, split_by, T)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), (n_ev, T, split_by)


def test_unsorted_time_split_matches_spikingjelly():
    sjd = spikingjelly_datasets()
    rng = np.random.default_rng(1)
    n = 4000
    ev = {"t": rng.integers(0, 100_000, n).astype(np.int64), "x": rng.integers(0, 128, n),
          "y": rng.integers(0, 128, n), "p": rng.integers(0, 2, n)}
    ev["t"][0], ev["t"][-1] = 0, 99_999
    want = sjd.integrate_events_by_fixed_frames_number(ev, "time", 8, 128, 128)
    arr = rd._event_array(ev["t"], ev["x"], ev["y"], ev["p"])
    assert np.array_equal(rd.spikingjelly_frames(arr, "time", 8), want)


# ------------------------------------------------------------------ bad input
def test_mixed_layouts_refused(cifar, tmp_path):
    orig, sj, _, _ = cifar
    shutil.copytree(orig / "CIFAR10DVS" / "cat", tmp_path / "CIFAR10DVS" / "cat")
    (tmp_path / "CIFAR10DVS" / "cat" / "cifar10_cat_0.aedat4").write_bytes(b"x")
    with pytest.raises(DvsstreamError, match=r"CIFAR10DVS mixes layouts: 1 tonic \.aedat4 and 12 original"):
        load_dataset("cifar10dvs", tmp_path)
    (tmp_path / "CIFAR10DVS" / "cat" / "cifar10_cat_0.aedat4").unlink()
    (tmp_path / "events_np").symlink_to(sj / "events_np")
    with pytest.raises(DvsstreamError, match=r"mixes layouts: .*CIFAR10DVS/ and spikingjelly's events_np/"):
        load_dataset("cifar10dvs", tmp_path)


def test_frames_folder_of_another_T(cifar, tmp_path):
    _, sj, _, _ = cifar
    (tmp_path / "frames_number_16_split_by_number").symlink_to(sj / "frames_number_16_split_by_number")
    with pytest.raises(DvsstreamError, match=r"frames_number_16_split_by_number holds T=16 frames split by number but the "
                                             r"frames asked for are T=10 split by number"):
        load_dataset("cifar10dvs", tmp_path, spec=FrameSpec(n_bins=10))
    (tmp_path / "events_np").symlink_to(sj / "events_np")  # binned from events instead, and said why
    d = load_dataset("cifar10dvs", tmp_path, spec=FrameSpec(n_bins=10), cache_dir=False)
    assert d.info["layout"].startswith("spikingjelly events_np") and "T=16" in d.info["layout_note"]


def _bad_npz_root(tmp_path, kind: str) -> Path:
    d = tmp_path / ("events_np" if kind != "frames" else "frames_number_4_split_by_number") / "dog"
    d.mkdir(parents=True)
    t = np.arange(100)
    np.savez(d / "cifar10_dog_0.npz", t=t, x=t % 128, y=t % 128, p=t % 2)
    if kind == "keys":
        np.savez(d / "cifar10_dog_1.npz", t=t, x=t, y=t)
    elif kind == "range":
        np.savez(d / "cifar10_dog_1.npz", t=t, x=t + 100, y=t, p=t % 2)
    else:
        np.savez(d / "cifar10_dog_0.npz", frames=np.zeros((4, 2, 128, 128)))
        np.savez(d / "cifar10_dog_1.npz", frames=np.zeros((5, 2, 128, 128)))
    return tmp_path


@pytest.mark.parametrize("kind,reason", [
    ("keys", r"cifar10_dog_1\.npz: missing key\(s\) p; expected an events npz with keys t, x, y, p"),
    ("range", r"cifar10_dog_1\.npz: x in \[100, 199\]; expected 0 <= x < 128"),
    ("frames", r"cifar10_dog_1\.npz: frames of shape \[5, 2, 128, 128\]; expected \[4, 2, 128, 128\] \(T=4\)"),
])
def test_bad_npz_skipped_with_one_line_and_nothing_cached(tmp_path, kind, reason):
    root = _bad_npz_root(tmp_path, kind)
    cache = tmp_path / "cache"
    d = load_dataset("cifar10dvs", root, "all", FrameSpec(n_bins=4), cache_dir=cache)
    assert len(d) == 2
    frames, label, why = d.get(1)
    assert frames is None and label == 5 and "\n" not in why
    import re

    assert re.search(reason, why), why
    assert d.get(0)[0] is not None
    assert len(list(cache.rglob("*.h5"))) == 1  # only the good sample's frames
