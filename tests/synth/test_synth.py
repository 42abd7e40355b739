"""The synthetic gesture set (dvsstream.synth.gestures, dvsstream.synth.dataset)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dvsstream.synth import gestures as G
from dvsstream.binning import events_to_frames
from dvsstream.cli import main
from dvsstream.events import EVENT_DTYPE, is_sorted
from dvsstream.io.hdf5 import RecordingReader
from dvsstream.synth.dataset import (
    CLASS_NAMES,
    events_to_tonic_array,
    generate_gesture_set,
    generate_sample,
    sample_frames,
    session_of,
)


def test_class_names_mirror_dvs128_gesture():
    assert CLASS_NAMES == (
        "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
        "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
        "arm_roll", "air_drums", "air_guitar", "other_gestures",
    )


@pytest.mark.parametrize("class_id", range(11))
def test_every_class_produces_sorted_in_bounds_events(class_id):
    ev, p = generate_sample(class_id, 0, seed=11, duration_s=0.3)
    assert ev.dtype == EVENT_DTYPE
    assert ev.size > 300
    assert is_sorted(ev)
    assert ev["x"].max() < 128 and ev["y"].max() < 128
    assert ev["t"].min() >= 0 and ev["t"].max() <= 300_000
    assert p.class_id == class_id


def test_frames_are_intensities_and_show_a_figure():
    frames, times, p = sample_frames(1, 0, seed=3, duration_s=0.01, fps=1000)
    assert frames.shape == (11, 128, 128) and frames.dtype == np.float32
    assert times[0] == 0 and times[-1] == 10_000
    assert frames.min() > 0 and frames.max() <= 1.0
    # the head is drawn where the parameters put it
    hx, hy = int(p.cx), int(p.cy + p.scale * G.HEAD[1])
    assert abs(frames[0, hy, hx] - p.head) < 1e-3


def test_samples_are_deterministic_for_a_seed():
    a, _ = generate_sample(4, 2, seed=5, duration_s=0.2)
    b, _ = generate_sample(4, 2, seed=5, duration_s=0.2)
    c, _ = generate_sample(4, 2, seed=6, duration_s=0.2)
    d, _ = generate_sample(4, 3, seed=5, duration_s=0.2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_session_split_by_user():
    sessions = [session_of(i, 20) for i in range(20)]
    assert [s[0] for s in sessions].count("test") == 4
    train_users = {u for s, u, _ in sessions if s == "train"}
    test_users = {u for s, u, _ in sessions if s == "test"}
    assert max(train_users) < min(test_users)
    assert sessions[0] == ("train", 1, "fluorescent")
    assert len(set(sessions)) == 20


def test_hdf5_recordings_with_labels(tmp_path):
    s = generate_gesture_set(tmp_path, samples_per_class=2, duration_s=0.1, seed=1, formats=("hdf5",),
                             progress=False)
    assert s["samples"] == 22 and s["splits"] == {"train": 11, "test": 11}
    files = sorted((tmp_path / "hdf5").rglob("*.h5"))
    assert len(files) == 22
    with RecordingReader(tmp_path / "hdf5" / "test" / "air_drums_0001.h5") as r:
        assert r.class_names == list(CLASS_NAMES)
        assert r.labels.tolist() == [(0, 100_000, 8)]
        ev = r.read()
        assert ev.size > 0 and ev["t"].max() <= 100_000
        info = json.loads(r.source)
        assert info["class_name"] == "air_drums" and info["split"] == "test"
    # the same sample as generate_sample makes
    expected, _ = generate_sample(8, 1, seed=1, duration_s=0.1)
    np.testing.assert_array_equal(ev, expected)
    assert json.loads((tmp_path / "synth_summary.json").read_text())["samples"] == 22


def test_tonic_folder_loads_through_tonic(tmp_path, monkeypatch):
    tonic = pytest.importorskip("tonic")

    def no_download(self):
        raise AssertionError("tonic tried to download: the folder was not accepted")

    monkeypatch.setattr(tonic.datasets.DVSGesture, "download", no_download)
    # tonic 1.7.0 wants >= 100 files in a split: 10 sessions x 11 classes, all test
    s = generate_gesture_set(tmp_path, samples_per_class=10, duration_s=0.04, seed=2, formats=("tonic",),
                             test_fraction=1.0, progress=False)
    assert s["splits"] == {"train": 0, "test": 110}
    root = tmp_path / "tonic" / "DVSGesture"
    assert (root / "ibmGestureTest.tar.gz").is_file()
    assert (root / "ibmGestureTest" / "user01_fluorescent" / "0.npy").is_file()
    assert (root / "ibmGestureTest" / "user02_natural" / "10.npy").is_file()
    ds = tonic.datasets.DVSGesture(save_to=str(tmp_path / "tonic"), train=False)
    assert len(ds) == 110
    assert sorted(ds.targets) == sorted(list(range(11)) * 10)
    assert set(ds.users) == {1, 2}
    events, target = ds[0]
    assert events.dtype.names == ("x", "y", "p", "t")
    raw = np.load(ds.data[0])
    assert raw.shape[1] == 4 and raw.dtype == np.float64
    ours, _ = generate_sample(target, _index_of(ds.data[0]), seed=2, duration_s=0.04)
    np.testing.assert_array_equal(events["x"], ours["x"])
    np.testing.assert_array_equal(events["p"], ours["p"].astype(bool))
    assert np.all(np.abs(events["t"] - ours["t"]) <= 1)  # tonic truncates ms * 1000 to int
    assert any("ibmGestureTrain" in w for w in s["warnings"])  # the empty train split is flagged


def _index_of(path: str) -> int:
    from dvsstream.synth.dataset import LIGHTINGS

    folder = path.replace("\\", "/").split("/")[-2]
    user, lighting = folder.split("_", 1)
    return (int(user[4:]) - 1) * len(LIGHTINGS) + LIGHTINGS.index(lighting)


def test_tonic_array_format():
    ev = np.zeros(3, EVENT_DTYPE)
    ev["t"] = [1, 1500, 2_000_001]
    ev["x"] = [1, 2, 127]
    ev["y"] = [3, 4, 0]
    ev["p"] = [1, 0, 1]
    a = events_to_tonic_array(ev)
    np.testing.assert_allclose(a, [[1, 3, 1, 0.001], [2, 4, 0, 1.5], [127, 0, 1, 2000.001]])


def test_cli_synth_tiny_set(tmp_path, capsys):
    out = tmp_path / "set"
    rc = main(["synth", "--out", str(out), "--samples-per-class", "1", "--duration", "0.05", "--seed", "3",
               "--format", "both", "--workers", "2"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "synth: 11 samples" in captured.out
    assert len(list((out / "hdf5" / "train").glob("*.h5"))) == 11
    assert len(list((out / "tonic" / "DVSGesture" / "ibmGestureTrain").glob("user01_*/*.npy"))) == 11
    # workers do not change the samples
    a = np.load(out / "tonic" / "DVSGesture" / "ibmGestureTrain" / "user01_fluorescent" / "7.npy")
    ev, _ = generate_sample(7, 0, seed=3, duration_s=0.05)
    np.testing.assert_array_equal(a, events_to_tonic_array(ev))
    # a second run into the same folder is refused with a message
    assert main(["synth", "--out", str(out), "--samples-per-class", "1", "--duration", "0.05"]) == 2
    assert "already holds" in capsys.readouterr().err


def test_bad_arguments_are_user_errors(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--samples-per-class", "0"]) == 2
    assert main(["synth", "--out", str(tmp_path), "--duration", "-1"]) == 2
    assert main(["synth", "--out", str(tmp_path), "--workers", "0"]) == 2


def test_classes_are_separable_by_a_nearest_centroid(tmp_path):
    """A loose sanity bound: spatial event-count features, nearest centroid
    trained on one seed and tested on another, well above chance (1/11)."""

    def feature(ev):
        fr = events_to_frames(ev, (128, 128), 1)[0]  # [2, 128, 128]
        f = fr.reshape(2, 16, 8, 16, 8).sum((2, 4)).ravel()
        return f / (np.linalg.norm(f) + 1e-9)

    def make(seed, n):
        return [(feature(generate_sample(c, i, seed, 0.6)[0]), c) for c in range(11) for i in range(n)]

    train, test = make(21, 4), make(22, 3)
    xs = np.array([f for f, _ in train])
    ys = np.array([c for _, c in train])
    centroids = np.stack([xs[ys == c].mean(0) for c in range(11)])
    pred = [int(np.argmin(((centroids - f) ** 2).sum(1))) for f, _ in test]
    acc = np.mean([p == c for p, (_, c) in zip(pred, test)])
    assert acc > 0.3, acc


def test_contrast_sign_is_bright_figure_unless_asked():
    from dvsstream.synth import gestures as G
    def figure_brighter(p):
        return p.torso > p.background and p.hand > p.background

    rng = np.random.default_rng(0)
    assert all(figure_brighter(G.sample_params(c % G.N_CLASSES, rng)) for c in range(60))
    assert not any(figure_brighter(G.sample_params(c % G.N_CLASSES, rng, dark_fraction=1.0)) for c in range(60))


def test_gesture_recording_has_one_label_per_gesture(tmp_path):
    from dvsstream.io.hdf5 import RecordingReader
    from dvsstream.synth.dataset import CLASS_NAMES, write_gesture_recording

    info = write_gesture_recording(tmp_path / "seq.h5", [1, 3, 9], seed=5, duration_s=0.3)
    with RecordingReader(tmp_path / "seq.h5") as rec:
        assert rec.n_events == info["events"] > 0
        assert rec.labels["label"].tolist() == [1, 3, 9]
        assert rec.labels["start"].tolist() == [0, 300_000, 600_000]
        assert list(rec.class_names) == list(CLASS_NAMES)
        ev = rec.read()
    assert ev["t"].min() >= 0 and ev["t"].max() < 900_000
    assert all(np.any((ev["t"] >= a) & (ev["t"] < a + 300_000)) for a in (0, 300_000, 600_000))
