"""``--filter`` in the datasets: the FrameSpec carries it (and with it the frame cache's
key and folder), frames are made from the events it keeps, spikingjelly's frame folders
are not used under it, and ``train`` / ``eval`` pass it on through the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dvsstream.datasets.spec import FrameSpec, frames_from_events
from dvsstream.errors import DvsstreamError
from dvsstream.filters import parse_filter
from dvsstream.io import open_source


def test_the_spec_carries_a_canonical_filter():
    spec = FrameSpec(n_bins=4, downsample=2, noise_filter="BA:2000, refractory:500")
    assert spec.noise_filter == "ba:2000,refractory:500"
    assert spec.tag().endswith("-ba2000+refractory500") and "/" not in spec.tag() and ":" not in spec.tag()
    assert spec.to_dict()["noise_filter"] == "ba:2000,refractory:500"
    assert FrameSpec.from_dict(spec.to_dict()) == spec
    plain = FrameSpec(n_bins=4, downsample=2)
    assert "noise_filter" not in plain.to_dict()  # the cache keys of specs without a filter stay as they were
    assert plain.tag() == "T4-count-128x128-d2-spikingjelly"
    with pytest.raises(DvsstreamError, match="T must be"):
        FrameSpec(noise_filter="ba:0")


@pytest.mark.parametrize("mode", ["count", "time"])
def test_frames_are_made_from_the_events_the_filter_keeps(real_data, mode):
    with open_source(real_data("neal_walking.aedat")) as source:
        ev = np.concatenate(list(source))[:30_000]
    spec = FrameSpec(n_bins=8, mode=mode, downsample=2, noise_filter="ba:2000,refractory:1000")
    kept = parse_filter("ba:2000,refractory:1000").build((128, 128))(ev)
    plain = FrameSpec(n_bins=8, mode=mode, downsample=2)
    filtered = frames_from_events(ev, spec)
    np.testing.assert_array_equal(filtered, frames_from_events(kept, plain))
    assert filtered.sum() == kept.size < ev.size


def _gesture_npy(root: Path, n: int = 800) -> Path:
    """tonic's DVS128 Gesture layout, one training and one test user: class blobs over a
    carpet of isolated noise events."""
    from tonic_writer import make_gesture_npy  # tests/

    return make_gesture_npy(root, users=((1, "lab"), (24, "lab")), n=n, noise=n // 4)


def test_the_dataset_caches_filtered_frames_apart(tmp_path):
    from dvsstream.datasets.load import load_dataset
    from dvsstream.datasets.reading import read_sample_events

    root = _gesture_npy(tmp_path / "data")
    cache = tmp_path / "cache"
    spec = FrameSpec(n_bins=4, downsample=4, noise_filter="ba:5000")
    plain = FrameSpec(n_bins=4, downsample=4)
    filtered_set = load_dataset("dvsgesture", root, "test", spec, cache_dir=cache)
    plain_set = load_dataset("dvsgesture", root, "test", plain, cache_dir=cache)
    item = filtered_set._items[3]
    events = read_sample_events(item, spec, "dvsgesture")
    kept = parse_filter("ba:5000").build((128, 128))(events)
    x, _ = filtered_set[3]
    np.testing.assert_array_equal(x.numpy(), frames_from_events(kept, plain))
    assert float(x.sum()) == kept.size < float(plain_set[3][0].sum()) == events.size
    assert (cache / "dvsgesture" / spec.tag()).is_dir() and (cache / "dvsgesture" / plain.tag()).is_dir()
    assert spec.tag() != plain.tag()


def test_spikingjelly_frames_are_not_used_under_a_filter(tmp_path):
    from dvsstream.datasets.listing import sj_frames_layout

    (tmp_path / "frames_number_4_split_by_number").mkdir()
    layout, _ = sj_frames_layout(tmp_path, FrameSpec(n_bins=4), "<class>")
    assert layout is not None and layout.kind == "frames_npz"
    layout, why_not = sj_frames_layout(tmp_path, FrameSpec(n_bins=4, noise_filter="ba:2000"), "<class>")
    assert layout is None and "--filter ba:2000 needs the events" in why_not[0]


def test_train_keeps_the_filter_and_eval_uses_it(tmp_path, capsys):
    from dvsstream.cli import main

    root = _gesture_npy(tmp_path / "data", n=300)
    out = tmp_path / "run"
    argv = ["train", "--dataset", "dvsgesture", "--root", str(root), "--model", "spikformer_dvs_tiny",
            "--epochs", "1", "--batch-size", "4", "--warmup-epochs", "0", "--no-hflip", "--device", "cpu",
            "--limit", "4", "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--filter", "ba:5000"]
    assert main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["frame_spec"]["noise_filter"] == "ba:5000"
    capsys.readouterr()
    report_dir = tmp_path / "eval"
    common = ["eval", "--dataset", "dvsgesture", "--root", str(root), "--checkpoint", str(out / "last.pt"),
              "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    assert main([*common, "--out", str(report_dir)]) == 0
    spec = json.loads((report_dir / "report.json").read_text())["frame_spec"]
    assert spec["noise_filter"] == "ba:5000" and spec["source"] == "checkpoint meta"
    assert main([*common, "--out", str(tmp_path / "eval2"), "--filter", "none"]) == 0
    spec = json.loads((tmp_path / "eval2" / "report.json").read_text())["frame_spec"]
    assert "noise_filter" not in spec and spec["source"].endswith("--filter none")
    assert main([*common, "--out", str(tmp_path / "eval3"), "--filter", "ba:-3"]) == 2
