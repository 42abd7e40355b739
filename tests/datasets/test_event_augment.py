"""Event-level augmentations (drop events, spatial jitter, time jitter) against tonic's
own transforms with the same seed, event for event, on a real recording; their
statistics; and how a training set applies them (afresh every epoch, past the cache)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dvsstream.datasets.event_augment import EventAugment
from dvsstream.errors import DvsstreamError
from dvsstream.io import open_source
from dvsstream.training.config import TrainConfig

tonic = pytest.importorskip("tonic")
TONIC_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])
SIZE = (128, 128)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    from conftest import REAL_DATA

    path = REAL_DATA / "neal_walking.aedat"
    if not path.is_file():
        pytest.skip(f"real recording {path} not found")
    with open_source(path) as source:
        ev = np.concatenate(list(source))[:40_000]
    tev = np.zeros(ev.size, TONIC_DTYPE)
    for f in "txyp":
        tev[f] = ev[f]
    return ev, tev


def by_event(ev):
    """The events as rows, in a canonical order (ties in time sort either way in tonic)."""
    rows = np.stack([ev[f].astype(np.int64) for f in "txyp"], 1)
    return rows[np.lexsort(rows.T[::-1])]


def tonic_result(transforms, tev, seed):
    np.random.seed(seed)
    return tonic.transforms.Compose(transforms)(tev.copy())


@pytest.mark.parametrize("seed", [0, 7])
def test_each_op_equals_tonic_with_the_same_seed(recording, seed):
    ev, tev = recording
    T = tonic.transforms
    cases = [
        (EventAugment(drop_p=0.3), [T.DropEvent(p=0.3)]),
        (EventAugment(spatial_var=2.0), [T.SpatialJitter(sensor_size=(*SIZE, 2), var_x=2.0, var_y=2.0,
                                                         clip_outliers=True)]),
        (EventAugment(time_std_us=5000.0), [T.TimeJitter(std=5000.0, clip_negative=True, sort_timestamps=True)]),
        (EventAugment(0.2, 1.5, 3000.0), [T.DropEvent(p=0.2),
                                          T.SpatialJitter(sensor_size=(*SIZE, 2), var_x=1.5, var_y=1.5,
                                                          clip_outliers=True),
                                          T.TimeJitter(std=3000.0, clip_negative=True, sort_timestamps=True)]),
    ]
    for ours_aug, theirs in cases:
        ours = ours_aug(ev, SIZE, seed)
        peer = tonic_result(theirs, tev, seed)
        assert ours.size == peer.size
        np.testing.assert_array_equal(by_event(ours), by_event(peer))
        if ours_aug.time_std_us:
            assert np.all(np.diff(ours["t"]) >= 0)  # sorted, as the binning's count split needs


def test_the_statistics_follow_the_definitions(recording):
    ev, _ = recording
    n = ev.size
    dropped = EventAugment(drop_p=0.25)(ev, SIZE, 3)
    assert dropped.size == n - int(0.25 * n + 0.5)
    assert np.all(np.diff(dropped["t"]) >= 0)  # the kept events keep their order

    rs = np.random.RandomState(11)
    shifts = rs.multivariate_normal([0, 0], [[4.0, 0], [0, 4.0]], n)
    assert shifts.var(axis=0) == pytest.approx([4.0, 4.0], rel=0.03)
    moved = EventAugment(spatial_var=4.0)(ev, SIZE, 11)
    x, y = np.trunc(ev["x"] + shifts[:, 0]), np.trunc(ev["y"] + shifts[:, 1])  # toward zero, as tonic's casts
    inside = (x >= 0) & (x < 128) & (y >= 0) & (y < 128)
    assert moved.size == np.count_nonzero(inside)  # only events moved off the sensor go
    dx = moved["x"].astype(float) - ev["x"][inside]
    assert dx.var() == pytest.approx(4.0, rel=0.1)  # truncation to whole pixels adds a little

    std = 2000.0
    late = ev.copy()
    late["t"] += 1_000_000  # far from 0: no event clipped
    jittered = EventAugment(time_std_us=std)(late, SIZE, 5)
    assert jittered.size == n
    dt = np.random.RandomState(5).normal(0, std, n)
    assert dt.std() == pytest.approx(std, rel=0.02)
    assert np.sort(jittered["t"]).tolist() == np.sort(np.trunc(late["t"] + dt).astype(np.int64)).tolist()


def test_off_by_default_and_bad_values_are_one_line():
    assert not EventAugment() and not TrainConfig().event_augment()
    assert TrainConfig(drop_event=0.1).event_augment() == EventAugment(drop_p=0.1)
    for kwargs in ({"drop_event": 1.0}, {"drop_event": -0.1}, {"spatial_jitter": float("nan")},
                   {"time_jitter_us": 1e12}):
        with pytest.raises(DvsstreamError) as info:
            TrainConfig(**kwargs)
        assert "\n" not in str(info.value) and str(info.value).startswith("--")


def _gesture_npy(root, n=600):
    """tonic's DVS128 Gesture layout, one training and one test user (test_datasets' writer)."""
    from test_datasets import make_gesture_npy

    return make_gesture_npy(root, users=((1, "lab"), (24, "lab")), n=n)


def test_a_training_set_augments_afresh_past_the_cache(tmp_path):
    from dvsstream.datasets.load import load_dataset
    from dvsstream.datasets.spec import FrameSpec

    root = _gesture_npy(tmp_path / "data")
    cache = tmp_path / "cache"
    spec = FrameSpec(n_bins=4, downsample=4)
    ds = load_dataset("dvsgesture", root, "train", spec, cache_dir=cache)
    ds.event_augment = EventAugment(drop_p=0.25, spatial_var=1.0)
    torch.manual_seed(0)
    a, _ = ds[2]
    b, _ = ds[2]
    assert not torch.equal(a, b)  # a new draw each time
    assert not list(cache.rglob("*.h5"))  # augmented frames are never cached
    torch.manual_seed(0)
    assert torch.equal(ds[2][0], a)  # reproducible from torch's seed
    assert float(a.sum()) <= 600 - int(0.25 * 600 + 0.5)
    ds.event_augment = None
    assert float(ds[2][0].sum()) == 600 and len(list(cache.rglob("*.h5"))) == 1


def test_train_takes_the_augmentation_options(tmp_path, capsys):
    from dvsstream.cli import main

    root = _gesture_npy(tmp_path / "data", n=300)
    out = tmp_path / "run"
    argv = ["train", "--dataset", "dvsgesture", "--root", str(root), "--model", "spikformer_dvs_tiny",
            "--epochs", "1", "--batch-size", "4", "--warmup-epochs", "0", "--no-hflip", "--device", "cpu",
            "--limit", "4", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
            "--drop-event", "0.2", "--spatial-jitter", "1", "--time-jitter-us", "500"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "event augmentation of the training samples" in text and "training frames held" not in text
    config = json.loads((out / "result.json").read_text())["train_config"]
    assert (config["drop_event"], config["spatial_jitter"], config["time_jitter_us"]) == (0.2, 1.0, 500.0)
    for bad in (["--drop-event", "1"], ["--drop-event", "-0.5"], ["--spatial-jitter", "nan"]):
        assert main([*argv[:-6], "--out", str(tmp_path / "bad"), *bad]) == 2
        assert capsys.readouterr().err.count("\n") == 1
