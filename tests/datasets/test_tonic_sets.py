"""``--dataset tonic:NAME``: folders written in tonic's own layouts and formats
(tests/tonic_writer.py) read by dvsstream and by tonic's own dataset classes, which must
agree on every file, label, class name and event; the frames, the splits, the geometry of
small and non-square sensors, and the one-line refusals."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tonic_writer import atis_bytes, class_blob, make_asl, make_dvslip, make_ncaltech, make_nmnist, make_poker

from dvsstream.datasets.load import load_dataset
from dvsstream.datasets.names import canonical_name, dataset_classes, dataset_sensor_size, loader_name
from dvsstream.datasets.reading import read_sample_events
from dvsstream.datasets.release import SPLIT_RULE
from dvsstream.datasets.spec import FrameSpec, frames_from_events
from dvsstream.datasets.tonic_sets import read_tonic_events
from dvsstream.errors import DvsstreamError
from dvsstream.events import EVENT_DTYPE

tonic = pytest.importorskip("tonic")


class _TinyConfig:  # what FrameSpec.for_model reads of a model config: the tiny model's input
    img_size = (64, 64)
    T = 4


def _no_download(monkeypatch, cls) -> None:
    """tonic's class reads our small folder: its file-count check (which wants the whole
    set and downloads otherwise) passes, and a download would fail the test."""
    monkeypatch.setattr(cls, "_check_exists", lambda self: True)

    def refuse(*args, **kwargs):
        raise AssertionError("tonic tried to download")

    monkeypatch.setattr(cls, "download", refuse)


def _as_native(ev) -> np.ndarray:
    out = np.empty(len(ev), EVENT_DTYPE)
    out["t"], out["x"], out["y"], out["p"] = ev["t"], ev["x"], ev["y"], ev["p"]
    return out


def _assert_same_as_tonic(ds, ref, class_of_target=lambda t: t) -> None:
    """dvsstream's dataset ``ds`` and tonic's ``ref`` list the same files with the same
    labels, and every file decodes to the same events (t, x, y, p)."""
    ours = sorted((path, label) for path, label in ds.samples)
    theirs = sorted((str(Path(p)), ds.classes.index(class_of_target(t)) if not isinstance(class_of_target(t), int)
                     else class_of_target(t)) for p, t in zip(ref.data, ref.targets))
    assert ours == theirs and len(ours) > 0
    by_path = {str(Path(p)): i for i, p in enumerate(ref.data)}
    for item in ds._items:
        events, _ = ref[by_path[item.path]]
        mine = read_sample_events(item, ds.spec, ds.name)
        for field in "txyp":
            # (tonic's ASL-DVS events keep the .mat's column shape [N, 1])
            want = events[field].reshape(-1).astype(np.int64)
            np.testing.assert_array_equal(mine[field].astype(np.int64), want, err_msg=field)


# ------------------------------------------------------------------ the ATIS .bin writer
def test_atis_writer_round_trips_through_tonic(tmp_path):
    x, y, t, p = class_blob(3, 500, 34, 34, seed=1)
    t[-1] = 2 ** 23 - 1  # the largest 23-bit time
    path = tmp_path / "a.bin"
    path.write_bytes(atis_bytes(x, y, t, p))
    ev = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
    assert path.stat().st_size == 5 * 500
    for field, want in zip("xytp", (x, y, t, p)):
        np.testing.assert_array_equal(ev[field], want)


# ------------------------------------------------------------------ equality with tonic
@pytest.mark.parametrize("train", [True, False])
def test_nmnist_equals_tonic(tmp_path, monkeypatch, train):
    root = make_nmnist(tmp_path, train=2, test=1)
    _no_download(monkeypatch, tonic.datasets.NMNIST)
    ref = tonic.datasets.NMNIST(save_to=str(root), train=train)
    spec = FrameSpec.for_model(_TinyConfig, dataset_sensor_size("tonic:NMNIST"))
    ds = load_dataset("tonic:NMNIST", root, "train" if train else "test", spec, cache_dir=False)
    assert ds.classes == tuple(tonic.datasets.NMNIST.classes) and len(ds) == (20 if train else 10)
    assert [str(Path(p)) for p in ref.data] == [p for p, _ in ds.samples]  # tonic's order too (sorted walk)
    _assert_same_as_tonic(ds, ref)
    assert ds.info["split_rule"].startswith("tonic's own train / test split")
    # the frames are dvsstream's binning of tonic's events, centred in zeros in the 64x64 input
    events, label = ref[3]
    frames, lab = ds[3]
    want = frames_from_events(_as_native(events), spec)
    np.testing.assert_array_equal(frames.numpy(), want)
    assert lab == label and frames.shape == (4, 2, 64, 64) and float(frames.sum()) == len(events)
    inner = frames[:, :, 15:49, 15:49]
    assert float(inner.sum()) == len(events)  # the 34x34 sensor at (15, 15), zeros around it


def test_ncaltech101_equals_tonic_and_uses_the_ceil_split(tmp_path, monkeypatch):
    classes = ("Faces_easy", "accordion", "airplanes")
    root = make_ncaltech(tmp_path, classes, per_class=11)
    _no_download(monkeypatch, tonic.datasets.NCALTECH101)
    ref = tonic.datasets.NCALTECH101(save_to=str(root))
    spec = FrameSpec.for_model(_TinyConfig, dataset_sensor_size("tonic:NCALTECH101"))
    assert spec.sensor_size == (240, 180) and spec.roi == (30, 0, 180, 180)  # the largest centred square
    ds = load_dataset("tonic:NCALTECH101", root, "all", spec, cache_dir=False)
    assert ds.classes == classes == dataset_classes("tonic:NCALTECH101", root)
    _assert_same_as_tonic(ds, ref, class_of_target=lambda t: t)  # tonic's targets are the folder names
    first = read_sample_events(ds._items[0], spec, ds.name)
    assert first["x"].min() == 0 and first["y"].min() == 0  # shifted as tonic shifts them
    train = load_dataset("tonic:NCALTECH101", root, "train", spec, cache_dir=False)
    test = load_dataset("tonic:NCALTECH101", root, "test", spec, cache_dir=False)
    assert (len(train), len(test)) == (30, 3)  # per class ceil(0.9 * 11) = 10 and 1
    assert not {p for p, _ in train.samples} & {p for p, _ in test.samples}
    assert [p for p, _ in test.samples] == [str(root / "NCALTECH101" / "Caltech101" / c / "image_0011.bin")
                                            for c in classes]
    assert train.info["split_rule"] == SPLIT_RULE and test[0][0].shape == (4, 2, 64, 64)


@pytest.mark.parametrize("train", [True, False])
def test_pokerdvs_equals_tonic_constructed_as_is(tmp_path, train):
    """POKER-DVS: tonic's own class, unpatched, reads the written folder (its archive
    placeholders and >= 20 files are there, so it fetches nothing)."""
    root = make_poker(tmp_path, train=5, test=5)
    ref = tonic.datasets.POKERDVS(save_to=str(root), train=train)
    ds = load_dataset("tonic:POKERDVS", root, "train" if train else "test",
                      FrameSpec.for_model(_TinyConfig, dataset_sensor_size("tonic:POKERDVS")), cache_dir=False)
    assert ds.classes == tuple(tonic.datasets.POKERDVS.classes) == ("cl", "he", "di", "sp")
    assert dataset_sensor_size("tonic:POKERDVS") == (35, 35)
    # tonic holds the arrays, not the paths: compare events by content, in its (sorted) order per class
    ours = sorted(((lab, read_sample_events(item, ds.spec, ds.name).tobytes()) for item, (_, lab)
                   in zip(ds._items, ds.samples)))
    theirs = sorted((t, _as_native(ref[i][0]).tobytes()) for i, t in enumerate(ref.targets))
    assert ours == theirs and len(ours) == 20


def test_asldvs_equals_tonic(tmp_path, monkeypatch):
    root = make_asl(tmp_path, per_class=2)
    _no_download(monkeypatch, tonic.datasets.ASLDVS)
    ref = tonic.datasets.ASLDVS(save_to=str(root))
    spec = FrameSpec.for_model(_TinyConfig, dataset_sensor_size("tonic:ASLDVS"))
    ds = load_dataset("tonic:ASLDVS", root, "all", spec, cache_dir=False)
    assert ds.classes == tuple(tonic.datasets.ASLDVS.classes) and len(ds) == 52
    _assert_same_as_tonic(ds, ref)  # y flipped as tonic flips it
    assert ds.info["split_rule"] == SPLIT_RULE


def test_dvslip_equals_tonic(tmp_path):
    words = tonic.datasets.DVSLip.classes
    root = make_dvslip(tmp_path, words)  # 100 words x 1: tonic's own check passes unpatched
    ref = tonic.datasets.DVSLip(save_to=str(root), train=False)
    ds = load_dataset("tonic:DVSLip", root, "test", FrameSpec.for_model(_TinyConfig, (128, 128)), cache_dir=False)
    assert ds.classes == tuple(words) and len(ds) == 100
    _assert_same_as_tonic(ds, ref)


# ------------------------------------------------------------------ geometry
def test_resize_enlarges_a_small_sensor_keeping_every_event(tmp_path):
    root = make_nmnist(tmp_path, train=1, test=1, digits=[str(d) for d in range(10)])
    centred = FrameSpec.for_model(_TinyConfig, (34, 34))
    enlarged = FrameSpec.for_model(_TinyConfig, (34, 34), resize=(64, 64))
    assert (centred.roi, centred.size) == ((-15, -15, 64, 64), (64, 64))
    assert (enlarged.roi, enlarged.size, enlarged.frame_shape) == ((0, 0, 34, 34), (64, 64), (4, 2, 64, 64))
    a = load_dataset("tonic:NMNIST", root, "test", centred, cache_dir=False)
    b = load_dataset("tonic:NMNIST", root, "test", enlarged, cache_dir=False)
    native = frames_from_events(read_sample_events(a._items[0], a.spec, a.name),
                                FrameSpec(n_bins=4, sensor_size=(34, 34)))
    fa, fb = a[0][0].numpy(), b[0][0].numpy()
    assert fa.sum() == fb.sum() == native.sum()  # every event kept
    np.testing.assert_array_equal(fa[..., 15:49, 15:49], native)
    idx = np.arange(34) * 64 // 34  # nearest pixel: sensor pixel i -> input pixel i * 64 // 34
    np.testing.assert_array_equal(fb[..., idx[:, None], idx[None, :]], native)
    assert fb[..., np.setdiff1d(np.arange(64), idx), :].sum() == 0


def test_frames_are_cached_under_a_portable_folder(tmp_path):
    root = make_nmnist(tmp_path / "data", train=1, test=1)
    spec = FrameSpec.for_model(_TinyConfig, (34, 34))
    ds = load_dataset("tonic:NMNIST", root, "train", spec, cache_dir=tmp_path / "cache")
    first = [ds[i][0] for i in range(len(ds))]
    assert ds.event_reads == 10 and (tmp_path / "cache" / "tonic-NMNIST").is_dir()
    again = load_dataset("tonic:NMNIST", root, "train", spec, cache_dir=tmp_path / "cache")
    assert all(np.array_equal(f, again[i][0]) for i, f in enumerate(first)) and again.event_reads == 0


# ------------------------------------------------------------------ partial, missing, half there
def test_a_partial_folder_is_read_with_one_line(tmp_path, caplog):
    root = make_nmnist(tmp_path, train=2, test=1)
    with caplog.at_level(logging.WARNING, logger="dvsstream.datasets"):
        ds = load_dataset("tonic:nmnist", root, "train", FrameSpec.for_model(_TinyConfig, (34, 34)), cache_dir=False)
    lines = [r.getMessage() for r in caplog.records]
    assert len(ds) == 20 and len(lines) == 1
    assert "found 20 .bin files" in lines[0] and "at least 10000" in lines[0] and "\n" not in lines[0]


def test_missing_set_names_the_tonic_call_and_downloads_nothing(tmp_path):
    spec = FrameSpec.for_model(_TinyConfig, (34, 34))
    with pytest.raises(DvsstreamError) as e:
        load_dataset("tonic:NMNIST", tmp_path, "train", spec, cache_dir=False)
    msg = str(e.value)
    assert f'tonic.datasets.NMNIST(save_to="{tmp_path}", train=True)' in msg
    assert str(tmp_path / "NMNIST" / "Train") in msg and "\n" not in msg
    make_nmnist(tmp_path, train=1, test=0)  # Train only (an empty Test/): the test split names train=False
    with pytest.raises(DvsstreamError, match=r"train=False"):
        load_dataset("tonic:NMNIST", tmp_path, "test", spec, cache_dir=False)
    with pytest.raises(DvsstreamError, match=r'tonic\.datasets\.CIFAR10DVS\(save_to='):
        load_dataset("tonic:CIFAR10DVS", tmp_path, "test", FrameSpec(), cache_dir=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["NMNIST"]  # nothing fetched or written


def test_a_folder_half_there_is_refused(tmp_path):
    root = make_nmnist(tmp_path, train=1, test=1, digits=[d for d in "0123456789" if d not in "37"])
    with pytest.raises(DvsstreamError, match=r"half there: 8 of 10 classes have files, none for 3 - three, 7 - seven"):
        load_dataset("tonic:NMNIST", root, "train", FrameSpec.for_model(_TinyConfig, (34, 34)), cache_dir=False)
    poker = make_poker(tmp_path / "p", classes=("cl", "he", "di"))
    with pytest.raises(DvsstreamError, match="none for sp"):
        load_dataset("tonic:POKERDVS", poker, "test", FrameSpec.for_model(_TinyConfig, (35, 35)), cache_dir=False)


def test_a_truncated_bin_is_skipped_with_its_reason(tmp_path):
    root = make_nmnist(tmp_path, train=1, test=1)
    bad = root / "NMNIST" / "Test" / "4" / "00000.bin"
    bad.write_bytes(bad.read_bytes()[:-2])
    ds = load_dataset("tonic:NMNIST", root, "test", FrameSpec.for_model(_TinyConfig, (34, 34)), cache_dir=False)
    frames, label, reason = ds.get(4)
    assert frames is None and label == 4 and "truncated" in reason and str(bad) in reason
    with pytest.raises(Exception, match="truncated"):
        read_tonic_events(str(bad), "NMNIST")


def test_a_spec_for_another_sensor_is_refused(tmp_path):
    root = make_nmnist(tmp_path, train=1, test=1)
    with pytest.raises(DvsstreamError, match="sensor is 34x34"):
        load_dataset("tonic:NMNIST", root, "test", FrameSpec(), cache_dir=False)


# ------------------------------------------------------------------ names
def test_names():
    assert canonical_name("tonic:nmnist") == canonical_name(" TONIC:NMNIST ") == "tonic:NMNIST"
    assert canonical_name("tonic:dvsgesture") == "tonic:DVSGesture" and loader_name("tonic:dvsgesture") == "dvsgesture"
    assert loader_name("tonic:CIFAR10DVS") == "cifar10dvs" and loader_name("tonic:DVSLip") == "tonic:DVSLip"
    assert canonical_name("gesture") == "dvsgesture"
    with pytest.raises(DvsstreamError, match=r"tonic:SHD is an audio set .*not a vision classification set"):
        canonical_name("tonic:SHD")
    with pytest.raises(DvsstreamError, match=r"unknown tonic dataset 'tonic:MNIST'.*NMNIST, NCALTECH101, CIFAR10DVS"):
        canonical_name("tonic:MNIST")
    with pytest.raises(DvsstreamError, match=r"did you mean tonic:NMNIST"):
        canonical_name("nmnist")
    assert dataset_sensor_size("tonic:ASLDVS") == (240, 180) and dataset_sensor_size("cifar10dvs") == (128, 128)


def test_tonic_cifar10dvs_and_dvsgesture_are_the_existing_loaders_on_tonics_folder(tmp_path):
    """tonic:CIFAR10DVS and tonic:DVSGesture read tonic's folders with dvsstream's own
    loaders (the same samples, classes and split as --dataset cifar10dvs / dvsgesture);
    another layout under --root is not tonic's: one line naming the tonic call."""
    from test_datasets import make_cifar, make_gesture_npy, make_gesture_raw

    root = make_gesture_npy(make_cifar(tmp_path / "t", per_class=2, n_events=300), n=300)
    for tonic_name, ours in (("tonic:cifar10dvs", "cifar10dvs"), ("tonic:DVSGESTURE", "dvsgesture")):
        a = load_dataset(tonic_name, root, "all", FrameSpec(), cache_dir=False)
        b = load_dataset(ours, root, "all", FrameSpec(), cache_dir=False)
        assert a.samples == b.samples and a.classes == b.classes and len(a) > 0
        assert a.info["split_rule"] == b.info["split_rule"]
    raw = make_gesture_raw(tmp_path / "raw", per_seg=100)
    assert len(load_dataset("dvsgesture", raw, "all", FrameSpec(), cache_dir=False)) > 0
    with pytest.raises(DvsstreamError, match=r'no .*DVSGesture folder.*tonic\.datasets\.DVSGesture\(save_to='):
        load_dataset("tonic:DVSGesture", raw, "all", FrameSpec(), cache_dir=False)
