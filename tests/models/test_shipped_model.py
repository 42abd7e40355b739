"""The shipped gesture model on the shipped gesture recordings, binned as live use bins them."""

from pathlib import Path

import numpy as np
import pytest
import torch

from dvsstream.binning import StreamingBinner, events_to_frames
from dvsstream.models import load_model, shipped_checkpoint
from dvsstream.io.hdf5 import RecordingReader

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
GESTURE_FILES = sorted(RECORDINGS.glob("gestures_*.h5"))
WINDOW_US, N_BINS, HOP_US, DOWNSAMPLE = 400_000, 8, 50_000, 2


@pytest.fixture(scope="module")
def model():
    return load_model(shipped_checkpoint()).eval()


def window_frames(ev, t0):
    """Frames of the window [t0, t0 + 400 ms): 8 time bins of 50 ms at 64x64."""
    fr = events_to_frames(ev, (128, 128), N_BINS, "time", t_start=t0, t_end=t0 + WINDOW_US - 1)
    return fr.reshape(N_BINS, 2, 64, DOWNSAMPLE, 64, DOWNSAMPLE).sum((3, 5))


def test_shipped_checkpoint_describes_its_binning(model):
    ckpt = torch.load(shipped_checkpoint(), map_location="cpu", weights_only=True)
    meta = ckpt["meta"]
    assert meta["frame_spec"] == {"n_bins": 8, "mode": "time", "sensor_size": [128, 128], "downsample": 2}
    assert meta["live_binning"] == {"window_us": WINDOW_US, "n_bins": N_BINS, "hop_us": HOP_US,
                                    "downsample": DOWNSAMPLE}
    assert len(meta["classes"]) == model.num_classes == 11
    assert shipped_checkpoint().with_suffix(".md").is_file()  # the model card


def test_shipped_model_classifies_every_shipped_gesture(model):
    assert len(GESTURE_FILES) == 3
    correct = total = 0
    for path in GESTURE_FILES:
        with RecordingReader(path) as rec:
            ev, labels = rec.read(), rec.labels
        for start, end, label in labels.tolist():
            starts = range(start, end - WINDOW_US + 1, 200_000)
            x = torch.from_numpy(np.stack([window_frames(ev, a) for a in starts]))
            with torch.inference_mode():
                preds = model(x).argmax(-1).tolist()
            assert max(set(preds), key=preds.count) == label, (path.name, label, preds)
            correct += sum(p == label for p in preds)
            total += len(preds)
    assert total == 108 and correct >= 104  # measured: 106 of 108 windows


def test_streaming_windows_equal_the_offline_crops():
    with RecordingReader(GESTURE_FILES[0]) as rec:
        ev = rec.read()
    binner = StreamingBinner((128, 128), WINDOW_US, N_BINS, HOP_US, downsample=DOWNSAMPLE, t_origin=0)
    windows = list(binner(np.array_split(ev, 50)))
    assert len(windows) > 100
    for w in windows[::17]:
        np.testing.assert_array_equal(w.frames, window_frames(ev, w.t_start))
