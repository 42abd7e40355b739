"""``dvsstream synth``'s output folder as a DVS128 Gesture root: its tonic layout and its
HDF5 recordings give the same samples, and a folder inside it names the right root."""

from __future__ import annotations

import hashlib

import pytest

from dvsstream.datasets.load import load_dataset
from dvsstream.datasets.spec import FrameSpec
from dvsstream.errors import DvsstreamError
from dvsstream.synth.dataset import generate_gesture_set

SPEC = FrameSpec(n_bins=4, mode="time", downsample=4)


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory):
    """The same synthetic set (seed 3) written once as tonic's layout, once as HDF5."""
    base = tmp_path_factory.mktemp("synth")
    for fmt in ("tonic", "hdf5"):
        generate_gesture_set(base / fmt, samples_per_class=2, duration_s=0.1, seed=3, formats=(fmt,),
                             progress=False)
    return base / "tonic", base / "hdf5"


def _content(dataset) -> list[tuple[int, str]]:
    """(label, hash of the frames) of every sample, sorted: the set regardless of order."""
    out = []
    for i in range(len(dataset)):
        x, y = dataset[i]
        out.append((int(y), hashlib.sha1(x.numpy().tobytes()).hexdigest()))
    return sorted(out)


@pytest.mark.parametrize("split", ["train", "test"])
def test_synth_folder_is_a_gesture_root_in_either_format(two_sets, split):
    tonic_root, hdf5_root = two_sets
    a = load_dataset("dvsgesture", tonic_root, split, SPEC, cache_dir=False)
    b = load_dataset("dvsgesture", hdf5_root, split, SPEC, cache_dir=False)
    assert "tonic" in a.info["layout"] and "synth hdf5" in b.info["layout"]
    assert len(a) == len(b) == 11  # 2 per class: one train, one test
    assert _content(a) == _content(b)
    assert sorted(int(b[i][1]) for i in range(len(b))) == list(range(11))


def test_a_folder_inside_the_synth_output_names_it(two_sets):
    _, hdf5_root = two_sets
    with pytest.raises(DvsstreamError, match=f"pass --root {hdf5_root.resolve()}$"):
        load_dataset("dvsgesture", hdf5_root / "hdf5" / "train", "train", SPEC, cache_dir=False)
    with pytest.raises(DvsstreamError, match="pass --dataset dvsgesture"):
        load_dataset("cifar10dvs", hdf5_root, "train", SPEC, cache_dir=False)
    with pytest.raises(DvsstreamError, match=f"it holds the dvsstream synth output.*pass --root {hdf5_root.parent}"):
        load_dataset("dvsgesture", hdf5_root.parent, "train", SPEC, cache_dir=False)
