"""Datasets from a local folder: fake CIFAR10-DVS / DVS128 Gesture folders written in the
real formats (AEDAT 4 through dv-processing, tonic's .npy, raw AEDAT 3.1 + labels CSV),
the splits, the frame cache and corrupt samples."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dvsstream.datasets import cifar10dvs, frame_dataset, reading
from dvsstream.datasets.cifar10dvs import CIFAR10DVS_CLASSES
from dvsstream.datasets.dvsgesture import GESTURE_CLASSES
from dvsstream.datasets.in_memory import collate_frames
from dvsstream.datasets.load import load_dataset
from dvsstream.datasets.spec import FrameSpec
from dvsstream.errors import DvsstreamError
from dvsstream.io.aedat3 import write_aedat31
from dvsstream.io.aedat4 import write_aedat4
from dvsstream.io.base import LABEL_DTYPE
from tonic_writer import class_events, make_gesture_npy  # noqa: F401  (tests/; others import them from here)


def make_cifar(root: Path, per_class: int = 3, n_events: int = 2000, classes=CIFAR10DVS_CLASSES) -> Path:
    for label, cls in enumerate(CIFAR10DVS_CLASSES):
        if cls not in classes:
            continue
        d = root / "CIFAR10DVS" / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            write_aedat4(d / f"cifar10_{cls}_{i}.aedat4", class_events(label, n_events, 100 * label + i), (128, 128))
    return root


def make_gesture_raw(root: Path, users=((1, "fluorescent"), (2, "lab"), (24, "natural")), per_seg: int = 800,
                     trials: bool = True) -> Path:
    d = root / "DvsGesture"
    d.mkdir(parents=True, exist_ok=True)
    names = []
    for user, light in users:
        parts, labels = [], []
        t = 1_000_000
        for label in range(len(GESTURE_CLASSES)):
            parts.append(class_events(label, per_seg, 1000 * user + label, t0=t, duration=400_000))
            labels.append((t, t + 400_000, label))
            t += 500_000  # a gap without a label between gestures
        ev = np.concatenate(parts)
        name = f"user{user:02d}_{light}.aedat"
        write_aedat31(d / name, ev, np.array(labels, dtype=LABEL_DTYPE))
        names.append((user, name))
    if trials:
        (d / "trials_to_train.txt").write_text("".join(f"{n}\n" for u, n in names if u <= 23))
        (d / "trials_to_test.txt").write_text("".join(f"{n}\n" for u, n in names if u > 23))
    return root


SPEC = FrameSpec(n_bins=4, mode="count", downsample=2)


# ------------------------------------------------------------------ constants vs tonic
def test_class_names_match_tonic():
    from tonic.datasets import CIFAR10DVS, DVSGesture

    assert CIFAR10DVS_CLASSES == tuple(sorted(CIFAR10DVS.classes, key=CIFAR10DVS.classes.get))
    assert GESTURE_CLASSES == tuple(DVSGesture.classes)
    assert tuple(CIFAR10DVS.sensor_size[:2]) == (128, 128) == tuple(DVSGesture.sensor_size[:2])


def test_framespec_validation_and_model_spec():
    assert FrameSpec().frame_shape == (16, 2, 128, 128)
    assert SPEC.frame_shape == (4, 2, 64, 64)
    with pytest.raises(DvsstreamError):
        FrameSpec(downsample=3)
    with pytest.raises(DvsstreamError):
        FrameSpec(mode="binary")
    from dvsstream.models import get_config

    assert FrameSpec.for_model(get_config("spikformer_dvs_tiny")) == FrameSpec(8, "count", (128, 128), 2)
    assert FrameSpec.from_dict(SPEC.to_dict()) == SPEC


# ------------------------------------------------------------------ CIFAR10-DVS
def test_cifar_split_counts_sorted(tmp_path):
    make_cifar(tmp_path, per_class=10, n_events=300, classes=("airplane", "cat"))
    train = load_dataset("cifar10dvs", tmp_path, "train", SPEC, cache_dir=False)
    test = load_dataset("cifar10dvs", tmp_path, "test", SPEC, cache_dir=False)
    everything = load_dataset("cifar10dvs", tmp_path, "all", SPEC, cache_dir=False)
    assert len(train) == 18 and len(test) == 2 and len(everything) == 20
    # last 10 % in sorted (lexicographic) file-name order: "..._9" sorts last
    assert [Path(p).name for p, _ in test.samples] == ["cifar10_airplane_9.aedat4", "cifar10_cat_9.aedat4"]
    assert [y for _, y in test.samples] == [0, 3]
    assert not set(p for p, _ in train.samples) & set(p for p, _ in test.samples)
    assert cifar10dvs.cifar10dvs_split([f"{i}" for i in range(1000)], "test") == [f"{i}" for i in sorted(map(str, range(1000)))][900:]


def test_cifar_partial_folder_logs_counts(tmp_path, caplog):
    make_cifar(tmp_path, per_class=3, n_events=300, classes=("airplane", "bird", "truck"))
    with caplog.at_level(logging.INFO, logger=cifar10dvs.__name__):
        d = load_dataset("cifar10dvs", tmp_path, "train", SPEC, cache_dir=False)
    # the releases' ceil split: ceil(0.9 * 3) = 3 train, 0 test
    assert len(d) == 9 and [y for _, y in d.samples] == [0, 0, 0, 2, 2, 2, 9, 9, 9]
    assert len(load_dataset("cifar10dvs", tmp_path, "test", SPEC, cache_dir=False)) == 0
    assert "found 9 of 10000" in caplog.text and "airplane 3" in caplog.text and "partial" in caplog.text
    assert d.info["found_per_class"]["cat"] == 0


def test_cifar_missing_folder_says_what_is_expected(tmp_path):
    with pytest.raises(DvsstreamError, match=r"CIFAR10DVS.*not found.*<class>/\*\.aedat4"):
        load_dataset("cifar10dvs", tmp_path)
    (tmp_path / "CIFAR10DVS" / "cat").mkdir(parents=True)
    with pytest.raises(DvsstreamError, match=r"no \.aedat4, \.aedat or \.npz files.*extract/<class>/\*\.aedat"):
        load_dataset("cifar10dvs", tmp_path)
    with pytest.raises(DvsstreamError, match="does not exist"):
        load_dataset("cifar10dvs", tmp_path / "nope")


def test_cifar_frames_and_cache(tmp_path, monkeypatch):
    make_cifar(tmp_path, per_class=2, n_events=1000, classes=("airplane", "ship"))
    cache = tmp_path / "cache"
    d = load_dataset("cifar10dvs", tmp_path, "all", SPEC, cache_dir=cache)
    x, y = d[0]
    assert x.dtype == torch.float32 and tuple(x.shape) == (4, 2, 64, 64) and y == 0
    assert float(x.sum()) == 1000  # every event counted once, after sum-pooling
    first = [d[i][0] for i in range(len(d))]
    assert d.event_reads == 4
    assert len(list(cache.rglob("*.h5"))) == 4

    # second pass (new dataset object, as a new epoch / process would): no event I/O at all
    calls = []
    no_io = lambda *a: calls.append(a) or pytest.fail("event I/O")  # noqa: E731
    monkeypatch.setattr(reading, "read_file_events", no_io)  # where it lives
    monkeypatch.setattr(frame_dataset, "read_file_events", no_io)  # where FrameDataset looks it up
    d2 = load_dataset("cifar10dvs", tmp_path, "all", SPEC, cache_dir=cache)
    for i in range(len(d2)):
        assert torch.equal(d2[i][0], first[i])
    assert calls == [] and d2.event_reads == 0
    monkeypatch.undo()

    # a different FrameSpec is a different cache entry (recomputed)
    d3 = load_dataset("cifar10dvs", tmp_path, "all", FrameSpec(n_bins=2, mode="time", downsample=4), cache_dir=cache)
    x3, _ = d3[0]
    assert tuple(x3.shape) == (2, 2, 32, 32) and d3.event_reads == 1
    assert len(list(cache.rglob("*.h5"))) == 5

    # a changed source file (size / mtime) is recomputed
    p = Path(d.samples[0][0])
    write_aedat4(p, class_events(0, 500, 7), (128, 128))
    d4 = load_dataset("cifar10dvs", tmp_path, "all", SPEC, cache_dir=cache)
    assert float(d4[0][0].sum()) == 500 and d4.event_reads == 1


def test_corrupt_sample_skipped_and_reported(tmp_path):
    make_cifar(tmp_path, per_class=2, n_events=500, classes=("dog",))
    bad = tmp_path / "CIFAR10DVS" / "dog" / "cifar10_dog_1.aedat4"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated: the file table is gone
    garbage = tmp_path / "CIFAR10DVS" / "dog" / "cifar10_dog_2.aedat4"
    garbage.write_bytes(b"#!AER-DAT4.0\r\n" + os.urandom(300))
    cache = tmp_path / "cache"
    d = load_dataset("cifar10dvs", tmp_path, "all", SPEC, cache_dir=cache)
    assert len(d) == 3
    out = [d[i] for i in range(3)]
    assert [y for _, y in out] == [5, -1, -1]
    assert [Path(p).name for p, _ in d.skipped] == ["cifar10_dog_1.aedat4", "cifar10_dog_2.aedat4"]
    assert all("cifar10_dog" in reason for _, reason in d.skipped)
    frames, labels = collate_frames(out)
    assert frames.shape[0] == 1 and labels.tolist() == [5]
    # later passes skip it from the cache marker, without reading the file
    d2 = load_dataset("cifar10dvs", tmp_path, "all", SPEC, cache_dir=cache)
    assert [p for p, _ in d2.collect_skipped()] == [p for p, _ in d.skipped]
    assert d2[1][1] == -1 and d2.event_reads == 0
    # through a DataLoader with workers the skips still drop out of the batches
    loader = torch.utils.data.DataLoader(d2, batch_size=3, num_workers=1, collate_fn=collate_frames)
    (fr, lab), = list(loader)
    assert lab.tolist() == [5]


def test_limit_spreads_and_caps(tmp_path):
    make_cifar(tmp_path, per_class=3, n_events=200, classes=CIFAR10DVS_CLASSES[:5])
    d = load_dataset("cifar10dvs", tmp_path, "all", SPEC, cache_dir=False, limit=5)
    assert sorted(y for _, y in d.samples) == [0, 1, 2, 3, 4]
    d = load_dataset("cifar10dvs", tmp_path, "all", SPEC, cache_dir=False, limit=100)
    assert len(d) == 15 and d.info["limit_exceeds"]


# ------------------------------------------------------------------ DVS128 Gesture
def test_gesture_tonic_layout(tmp_path):
    make_gesture_npy(tmp_path)
    train = load_dataset("dvsgesture", tmp_path, "train", SPEC, cache_dir=tmp_path / "c")
    test = load_dataset("dvsgesture", tmp_path, "test", SPEC, cache_dir=tmp_path / "c")
    assert len(train) == 22 and len(test) == 11
    assert train.info["layout"].startswith("tonic")
    assert [y for _, y in test.samples] == list(range(11))
    x, y = test[3]
    assert y == 3 and tuple(x.shape) == (4, 2, 64, 64) and float(x.sum()) == 1500
    # ms -> µs as tonic does: a time-bin split spans the whole 1.5 s sample
    ev = reading.read_file_events(test.samples[3][0])
    assert ev["t"][-1] > 1_000_000
    with pytest.raises(DvsstreamError, match="ibmGestureTest"):
        (tmp_path / "DVSGesture" / "ibmGestureTest").rename(tmp_path / "elsewhere")
        load_dataset("dvsgesture", tmp_path, "test", SPEC, cache_dir=False)


def test_gesture_raw_layout_segments_and_split(tmp_path, monkeypatch):
    make_gesture_raw(tmp_path)
    train = load_dataset("dvsgesture", tmp_path, "train", SPEC, cache_dir=tmp_path / "c")
    test = load_dataset("dvsgesture", tmp_path, "test", SPEC, cache_dir=tmp_path / "c")
    assert train.info["layout"].startswith("raw") and "trials_to_train" in train.info["split_rule"]
    assert len(train) == 22 and len(test) == 11
    assert all("user24" in p for p, _ in test.samples)
    for i in range(len(test)):
        x, y = test[i]
        assert y == i and float(x.sum()) == 800  # exactly the segment's events, no gap events
    assert test.event_reads == 1  # one file, all its segments
    # the whole file's segments were cached on the first read: a new pass reads nothing
    again = load_dataset("dvsgesture", tmp_path, "test", SPEC, cache_dir=tmp_path / "c")
    assert [again[i][1] for i in range(11)] == list(range(11)) and again.event_reads == 0
    # the clip length eval compares with a checkpoint's window: the segments' 0.4 s (the
    # labels' [start, end)), not the whole recording's 5.4 s (nor nothing, for "path#segment")
    assert again.clip_seconds() == pytest.approx(0.4)


def test_gesture_raw_without_trials_uses_user_split_and_missing_csv(tmp_path):
    make_gesture_raw(tmp_path, users=((3, "led"), (25, "lab")), trials=False, per_seg=100)
    (tmp_path / "DvsGesture" / "user03_led_labels.csv").unlink()
    train = load_dataset("dvsgesture", tmp_path, "train", SPEC, cache_dir=False)
    test = load_dataset("dvsgesture", tmp_path, "test", SPEC, cache_dir=False)
    assert len(train) == 0 and len(train.skipped) == 1 and "labels file" in train.skipped[0][1]
    assert len(test) == 11 and "user number" in test.info["split_rule"]


def test_gesture_missing_folder_message(tmp_path):
    with pytest.raises(DvsstreamError, match=r"ibmGestureTrain\|ibmGestureTest.*DvsGesture/\*\.aedat.*synth") as e:
        load_dataset("dvsgesture", tmp_path)
    assert len(str(e.value).replace(str(tmp_path), "R")) < 300  # the layouts named briefly, once


def test_gesture_mixed_layouts_and_spikingjelly_frames_of_another_T(tmp_path):
    make_gesture_npy(tmp_path, users=((24, "led"),), n=300)
    (tmp_path / "events_np" / "test" / "0").mkdir(parents=True)
    with pytest.raises(DvsstreamError, match=r"mixes layouts: tonic at .*DVSGesture, sj at .*events_np"):
        load_dataset("dvsgesture", tmp_path)
    other = tmp_path / "sj"
    (other / "frames_number_10_split_by_time" / "test" / "3").mkdir(parents=True)
    with pytest.raises(DvsstreamError, match=r"frames_number_10_split_by_time holds T=10 frames split by time but the frames "
                                             r"asked for are T=4 split by number.*no events_np/ or extract/DvsGesture/"):
        load_dataset("dvsgesture", other, spec=SPEC)
    # the same folder, asked for what it holds
    np.savez(other / "frames_number_10_split_by_time" / "test" / "3" / "user24_led_0.npz",
             frames=np.ones((10, 2, 128, 128)))
    d = load_dataset("dvsgesture", other, spec=FrameSpec(n_bins=10, mode="time", downsample=4), cache_dir=False)
    x, y = d[0]
    assert y == 3 and tuple(x.shape) == (10, 2, 32, 32) and float(x.max()) == 16.0
