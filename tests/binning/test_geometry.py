"""Any sensor to a model's input: the region of interest and the resize in the
streaming binner, the default geometry for a sensor and a model, and ``run`` / the
window on a real 320x240 DVXplorer recording."""

from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

from dvsstream.binning import (
    BinningConfig,
    Geometry,
    StreamingBinner,
    events_to_frames,
    geometry_for,
    live_binning,
)
from dvsstream.events import EVENT_DTYPE, parse_roi, parse_size


def _random_events(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 400_000, n))
    ev["x"] = rng.integers(0, width, n)
    ev["y"] = rng.integers(0, height, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def _window_frames(binner: StreamingBinner, ev: np.ndarray) -> np.ndarray:
    windows = binner.push(ev) + binner.flush()
    return windows[0].frames


@pytest.mark.parametrize("roi, size", [((40, 0, 240, 240), (64, 64)), ((0, 0, 320, 240), (100, 75)),
                                       ((13, 7, 200, 150), (200, 150)), ((40, 0, 240, 240), (80, 80))])
def test_region_resize_is_exact_nearest_bin(roi, size):
    """Every event of the region lands in pixel (x * W // rw, y * H // rh); the rest is
    counted outside the region; nothing is lost."""
    ev = _random_events(200_000, 320, 240, seed=1)
    binner = StreamingBinner((320, 240), 400_000, 1, 400_000, roi=roi, size=size)
    frames = _window_frames(binner, ev)
    x0, y0, rw, rh = roi
    inside = (ev["x"] >= x0) & (ev["x"] < x0 + rw) & (ev["y"] >= y0) & (ev["y"] < y0 + rh)
    sel = ev[inside]
    want = np.zeros((2, size[1], size[0]), np.float32)
    np.add.at(want, (sel["p"].astype(int), (sel["y"].astype(np.int64) - y0) * size[1] // rh,
                     (sel["x"].astype(np.int64) - x0) * size[0] // rw), 1)
    np.testing.assert_array_equal(frames[0], want)
    assert binner.stats.binned == inside.sum() and binner.outside_roi == (~inside).sum()
    assert binner.stats.binned + binner.outside_roi == len(ev)


def test_integer_resize_equals_pooling():
    ev = _random_events(100_000, 128, 128, seed=2)
    pooled = _window_frames(StreamingBinner((128, 128), 400_000, 1, 400_000, downsample=2), ev)
    resized = _window_frames(StreamingBinner((128, 128), 400_000, 1, 400_000, size=(64, 64)), ev)
    np.testing.assert_array_equal(pooled, resized)


def test_resize_larger_than_region_is_refused():
    with pytest.raises(ValueError, match="larger than the 240x240 region"):
        StreamingBinner((320, 240), 400_000, 8, 50_000, roi=(40, 0, 240, 240), size=(256, 256))
    with pytest.raises(ValueError, match="not inside the 320x240 sensor"):
        StreamingBinner((320, 240), 400_000, 8, 50_000, roi=(200, 0, 240, 240), size=(64, 64))


@pytest.mark.parametrize("sensor, roi", [((128, 128), None), ((320, 240), (40, 0, 240, 240)),
                                         ((346, 260), (43, 0, 260, 260)), ((640, 480), (80, 0, 480, 480)),
                                         ((1280, 720), (280, 0, 720, 720))])
def test_default_geometry_is_the_largest_centred_square(sensor, roi):
    geo = geometry_for((64, 64), sensor)
    assert geo.roi == roi and geo.size == (64, 64)
    b = BinningConfig(400_000, 8, 50_000).replace(geometry=geo)
    assert b.frame_size(sensor) == (64, 64) and b.binner(sensor).frame_shape == (8, 2, 64, 64)


def test_geometry_overrides_and_bad_values():
    assert geometry_for((64, 64), (320, 240), roi=(0, 0, 128, 128)).roi == (0, 0, 128, 128)
    with pytest.raises(ValueError, match="not inside the 320x240 sensor"):
        geometry_for((64, 64), (320, 240), roi=(300, 0, 64, 64))
    with pytest.raises(ValueError, match="does not match the model's 64x64"):
        geometry_for((64, 64), (320, 240), resize=(32, 32))
    # a region smaller than the input is refused here, as the binner refuses it (info
    # used to describe a 0.5:1 "resize" that run then refused)
    with pytest.raises(ValueError, match="larger than the 40x40 region"):
        geometry_for((64, 64), (320, 240), roi=(0, 0, 40, 40))
    # a sensor smaller than the input sits centred in an input-sized region, never enlarged
    assert geometry_for((64, 64), (32, 32)) == Geometry((-16, -16, 64, 64), (64, 64))
    with pytest.raises(ValueError, match="span all of it"):  # past one edge only: a typo, not padding
        geometry_for((64, 64), (32, 32), roi=(8, 0, 64, 64))
    assert parse_roi("40, 0,240,240") == (40, 0, 240, 240) and parse_size("64X48") == (64, 48)
    for bad in ("1,2,3", "a,b,c,d", "0,0,-1,4"):
        with pytest.raises(ValueError):
            parse_roi(bad)
    with pytest.raises(ValueError):
        parse_size("64")


def _cli(*args, cwd=None):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "dvsstream.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_run_on_a_real_dvxplorer_recording(real_data, tmp_path):
    path = real_data("dvxplorer_sample.aedat4")
    out = tmp_path / "r.json"
    proc = _cli("run", "--source", str(path), "--quiet", "--json-out", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["events_read"] == 111_954
    assert report["events_read"] == (report["events_binned"] + report["events_out_of_bounds"]
                                     + report["events_outside_roi"] + report["events_late"])
    assert report["events_outside_roi"] > 0 and report["binning"]["roi"] == [40, 0, 240, 240]
    assert "region 240x240 at (40, 0), resized 3.75:1" in report["geometry"]
    assert "320x240 sensor, region 240x240" in proc.stderr and report["windows_classified"] > 0
    bad = _cli("run", "--source", str(path), "--roi", "300,0,64,64", "--quiet")
    assert bad.returncode == 2 and "not inside the 320x240 sensor" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    bad = _cli("run", "--source", str(path), "--resize", "32x32", "--quiet")
    assert bad.returncode == 2 and "does not match the model's 64x64" in bad.stderr
    bad = _cli("run", "--source", str(path), "--roi", "1,2,3")
    assert bad.returncode == 2 and "x,y,w,h" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("roi", [(7, -11, 64, 64), (-25, -43, 128, 128), (0, -12, 64, 64)])
def test_a_region_past_a_small_sensors_edge_bins_zeros_there(roi):
    """A 78x42 sensor seen through a larger region (centred, zeros past the edges): the
    streaming window equals the batch binner's frames, which equal the sensor's frames
    placed in a zero frame; every event is binned or counted outside the region."""
    ev = _random_events(50_000, 78, 42, seed=4)
    x0, y0, rw, rh = roi
    binner = StreamingBinner((78, 42), 400_000, 1, 400_000, roi=roi, size=(rw, rh))
    frames = _window_frames(binner, ev)
    batch = events_to_frames(ev, (78, 42), 1, mode="time", t_start=0, t_end=399_999, roi=roi, size=(rw, rh))
    whole = events_to_frames(ev, (78, 42), 1, mode="time", t_start=0, t_end=399_999)
    want = np.zeros((1, 2, rh, rw), np.float32)
    xs, xe = max(x0, 0), min(x0 + rw, 78)
    want[..., -y0:-y0 + 42, xs - x0:xe - x0] = whole[..., :, xs:xe]
    np.testing.assert_array_equal(frames, want)
    np.testing.assert_array_equal(batch, want)
    assert binner.stats.binned + binner.outside_roi == ev.size == whole.sum()


@pytest.mark.parametrize("sensor", [(34, 34), (78, 42)])
def test_resize_enlarges_a_small_sensor_keeping_every_event(sensor):
    """``--resize`` on a sensor smaller than the model's input: the whole sensor, each
    pixel landing in its own input pixel (x * 64 // w) where an axis is enlarged and the
    nearest-bin shrink where it is not; the streaming window equals the batch binner's,
    and every event is binned. Without ``--resize`` the default is unchanged (centred)."""
    w, h = sensor
    geo = geometry_for((64, 64), sensor, resize=(64, 64))
    assert geo == Geometry((0, 0, w, h), (64, 64)) and "enlarged" in geo.describe(sensor)
    assert geometry_for((64, 64), sensor).roi != (0, 0, w, h)  # default: centred in zeros
    ev = _random_events(50_000, w, h, seed=5)
    binner = StreamingBinner(sensor, 400_000, 1, 400_000, roi=geo.roi, size=geo.size)
    frames = _window_frames(binner, ev)
    batch = events_to_frames(ev, sensor, 1, mode="time", t_start=0, t_end=399_999, roi=geo.roi, size=geo.size)
    want = np.zeros((1, 2, 64, 64), np.float32)
    np.add.at(want, (0, ev["p"].astype(int), ev["y"].astype(np.int64) * 64 // h, ev["x"].astype(np.int64) * 64 // w), 1)
    np.testing.assert_array_equal(frames, want)
    np.testing.assert_array_equal(batch, want)
    assert binner.stats.binned == ev.size == want.sum()
    # a region inside a larger sensor is still never enlarged
    with pytest.raises(ValueError, match="larger than the 40x40 region"):
        StreamingBinner((128, 128), 400_000, 1, 400_000, roi=(0, 0, 40, 40), size=(64, 64))


def test_the_window_shows_what_the_model_sees_of_a_small_sensor():
    """The event image cropped to a region past its edge (the attention's backdrop in
    the window and the clips): zeros there, the sensor's pixels in place, both layouts."""
    from dvsstream.render.display import crop_region

    rgb = np.arange(42 * 78 * 3, dtype=np.int64).reshape(42, 78, 3) % 251 + 1
    got = crop_region(rgb, (7, -11, 64, 64), channels_first=False)
    assert got.shape == (64, 64, 3) and not got[:11].any() and not got[53:].any()
    np.testing.assert_array_equal(got[11:53], rgb[:, 7:71])
    chw = crop_region(np.moveaxis(rgb, -1, 0), (7, -11, 64, 64))
    np.testing.assert_array_equal(chw, np.moveaxis(got, -1, 0))
    inside = crop_region(rgb, (40, 0, 20, 30), channels_first=False)
    assert np.shares_memory(inside, rgb)  # inside the image: a view, as before


def test_run_on_a_sensor_smaller_than_the_model(real_data, tmp_path):
    """The real N-CARS sample (78x42, no geometry in its header) under the 64x64 model:
    info says where it sits, run classifies it (before: "resize 64x64 is larger than
    the 42x42 region", nothing to do about it), every event accounted for; a recording
    cannot be cropped to a region past its edge."""
    path = real_data("ncars_sample.dat")
    info = _cli("info", str(path))
    assert info.returncode == 0 and "region 64x64 at (7, -11) (past the sensor's edge: zeros there)" in info.stdout
    out = tmp_path / "r.json"
    proc = _cli("run", "--source", str(path), "--window-ms", "80", "--hop-ms", "10", "--bins", "8", "--quiet",
                "--json-out", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["binning"]["roi"] == [7, -11, 64, 64] and report["windows_classified"] > 0
    assert report["events_read"] == 2009 == report["events_binned"] + report["events_outside_roi"]
    bad = _cli("convert", str(path), str(tmp_path / "c.h5"), "--roi=7,-11,64,64")
    assert bad.returncode == 2 and "not inside the 78x42 sensor" in bad.stderr and not (tmp_path / "c.h5").exists()


@pytest.mark.skipif(not all(__import__("importlib").util.find_spec(m) for m in ("PySide6", "pytestqt")),
                    reason="PySide6 and pytest-qt are needed")
def test_window_outlines_and_moves_the_region(qtbot, tmp_path, real_data, monkeypatch):
    from dvsstream.gui import state
    from dvsstream.gui.qt.window import MainWindow
    from dvsstream.gui.state import Settings

    monkeypatch.setenv(state.SETTINGS_ENV, str(tmp_path / "settings.json"))
    win = MainWindow(Settings(output_dir=str(tmp_path)), None, source=str(real_data("dvxplorer_sample.aedat4")))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win._last_pred is not None, timeout=20_000)
    ev = win.event_view
    assert win.controller.pipeline.binning.roi == (40, 0, 240, 240) and not win.errors
    assert ev.region_item.isVisible() and tuple(ev.region_item.pos()) == (40, 0)
    assert ev.image.image.shape == (240, 320, 3)  # the whole sensor is shown
    ev.region_item.setPos((70, 0))  # a drag: the model sees the region under the outline
    qtbot.waitUntil(lambda: win.controller.pipeline.binning.roi == (70, 0, 240, 240), timeout=10_000)
    assert not win.errors
    assert win.set_region((200, 0, 240, 240)) is False and "not inside" in win.last_error
    assert win.controller.pipeline.binning.roi == (70, 0, 240, 240)


def test_info_shows_the_region_a_model_sees(real_data):
    path = real_data("dvxplorer_sample.aedat4")
    proc = _cli("info", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "model sees:  320x240 sensor, region 240x240 at (40, 0), resized 3.75:1" in proc.stdout
    proc = _cli("info", str(path), "--model-size", "32x24")
    assert "the whole sensor, pooled by 10 to 32x24" in proc.stdout
    bad = _cli("info", str(path), "--roi", "300,0,64,64")
    assert bad.returncode == 2 and "not inside the 320x240 sensor" in bad.stderr and "Traceback" not in bad.stderr


def test_convert_crops_a_region_and_counts_the_rest(real_data, tmp_path):
    from dvsstream.io.hdf5 import RecordingReader
    from dvsstream.io import open_source

    path = real_data("dvxplorer_sample.aedat4")
    with open_source(path) as src:
        ev = np.concatenate(list(src))
    out = tmp_path / "crop.h5"
    proc = _cli("convert", str(path), str(out), "--roi", "40,0,240,240")
    assert proc.returncode == 0, proc.stderr
    inside = (ev["x"] >= 40) & (ev["x"] < 280)
    assert f"wrote {inside.sum():,} events" in proc.stdout and f"{(~inside).sum():,} events outside" in proc.stdout
    with RecordingReader(out) as rec:
        got = rec.read()
        assert tuple(rec.sensor_size) == (240, 240)
    want = ev[inside]
    assert np.array_equal(got["t"], want["t"]) and np.array_equal(got["p"], want["p"])
    assert np.array_equal(got["x"], want["x"] - 40) and np.array_equal(got["y"], want["y"])
    bad = _cli("convert", str(path), str(tmp_path / "bad.h5"), "--roi", "300,0,64,64")
    assert bad.returncode == 2 and "not inside the 320x240 sensor" in bad.stderr
    assert not (tmp_path / "bad.h5").exists()


def test_record_duration_counts_from_the_stream_not_the_region(real_data, tmp_path):
    """With a region, ``duration_s`` is still event time from the stream's first event,
    and every event of that span is either written (shifted) or counted outside."""
    from dvsstream.io.hdf5 import RecordingReader
    from dvsstream.io.record import record
    from dvsstream.io import open_source

    path = real_data("dvxplorer_sample.aedat4")
    with open_source(path) as src:
        ev = np.concatenate(list(src))
    span = ev[ev["t"] < ev["t"][0] + 100_000]
    roi = (200, 100, 120, 140)  # a corner the first events need not touch
    with open_source(path) as src:
        summary = record(src, tmp_path / "c.h5", duration_s=0.1, roi=roi)
    inside = (span["x"] >= 200) & (span["y"] >= 100) & (span["y"] < 240)
    assert summary["events"] == inside.sum() and summary["outside_roi"] == (~inside).sum()
    with RecordingReader(tmp_path / "c.h5") as rec:
        got = rec.read()
    assert np.array_equal(got["t"], span["t"][inside]) and np.array_equal(got["x"], span["x"][inside] - 200)


# ------------------------------------------------------------ offline geometry (eval, train)
def _read(path) -> np.ndarray:
    from dvsstream.io import open_source

    with open_source(path) as src:
        return np.concatenate(list(src))


@pytest.mark.parametrize("roi, size", [((40, 0, 240, 240), (64, 64)), ((13, 7, 200, 150), (48, 36))])
def test_offline_region_frames_equal_the_streaming_windows(real_data, roi, size):
    """events_to_frames with a region and a resize over each streaming window's span gives
    that window's frames, bit for bit, and counts the same events."""
    from dvsstream.binning import events_to_frames

    ev = _read(real_data("dvxplorer_sample.aedat4"))
    binner = StreamingBinner((320, 240), 160_000, 8, 40_000, roi=roi, size=size)
    windows = binner.push(ev)
    assert len(windows) >= 10
    for w in windows:
        frames, stats = events_to_frames(ev, (320, 240), 8, "time", t_start=w.t_start, t_end=w.t_end - 1,
                                         roi=roi, size=size, return_stats=True)
        np.testing.assert_array_equal(frames, w.frames)
        assert stats.binned == w.events and frames.sum() == w.events
        assert stats.events == stats.binned + stats.out_of_bounds + stats.out_of_window


def test_frame_spec_region_is_the_binner_mapping(real_data):
    """A FrameSpec with a region and a resize: count frames equal events_to_frames's with the
    same geometry; every event is in the frames or outside the region; the region's pixel
    (x, y) lands in (x * W // w, y * H // h)."""
    from dvsstream.binning import events_to_frames, region_frames
    from dvsstream.datasets.spec import FrameSpec, frames_from_events

    ev = _read(real_data("dvxplorer_sample.aedat4"))
    roi, size = (40, 0, 240, 240), (64, 64)
    spec = FrameSpec(n_bins=8, sensor_size=(320, 240), roi=roi, size=size, convention="native")
    frames = frames_from_events(ev, spec)
    want, stats = events_to_frames(ev, (320, 240), 8, "count", roi=roi, size=size, return_stats=True)
    assert frames.shape == spec.frame_shape == (8, 2, 64, 64)
    np.testing.assert_array_equal(frames, want)
    inside = (ev["x"] >= 40) & (ev["x"] < 280)
    assert frames.sum() == inside.sum() == 109_712 and stats.out_of_window == 2_242
    sel = ev[inside]
    ref = np.zeros((2, 64, 64), np.float64)
    np.add.at(ref, (sel["p"].astype(int), sel["y"].astype(np.int64) * 64 // 240,
                    (sel["x"].astype(np.int64) - 40) * 64 // 240), 1)
    np.testing.assert_array_equal(frames.sum(axis=0), ref)
    # pooled by a whole factor: region_frames equals the reshape-sum pooling
    full = events_to_frames(ev, (320, 240), 4, "count")
    pooled = full[..., 0:240, 40:280].reshape(4, 2, 60, 4, 60, 4).sum(axis=(3, 5))
    np.testing.assert_array_equal(region_frames(full, roi, (60, 60)), pooled)


def test_frame_spec_geometry_fields_and_bad_values():
    from dvsstream.datasets.spec import FrameSpec
    from dvsstream.errors import DvsstreamError

    class Config:
        img_size = (64, 64)
        T = 8

    assert FrameSpec.for_model(Config).to_dict() == FrameSpec(n_bins=8, downsample=2).to_dict()  # cache keys kept
    dvx = FrameSpec.for_model(Config, (320, 240))
    assert (dvx.roi, dvx.size, dvx.frame_shape) == ((40, 0, 240, 240), (64, 64), (8, 2, 64, 64))
    assert FrameSpec.from_dict(dvx.to_dict()) == dvx and "roi40_0_240x240-to64x64" in dvx.tag()
    moved = FrameSpec.for_model(Config).with_geometry((64, 64), roi=(16, 16, 96, 96))
    assert (moved.roi, moved.size, moved.downsample) == ((16, 16, 96, 96), (64, 64), 1)
    assert FrameSpec(sensor_size=(128, 128), roi=(0, 0, 64, 64), downsample=2).frame_shape == (16, 2, 32, 32)
    with pytest.raises(DvsstreamError, match="not inside the 128x128 sensor"):
        FrameSpec(roi=(100, 0, 64, 64))
    with pytest.raises(DvsstreamError, match="larger than the 64x64 region"):
        FrameSpec(roi=(0, 0, 64, 64), size=(96, 96))
    with pytest.raises(DvsstreamError, match="both set"):
        FrameSpec(size=(32, 32), downsample=2)
    with pytest.raises(DvsstreamError, match="does not match the model's 64x64"):
        FrameSpec.for_model(Config, resize=(32, 32))


def test_eval_with_a_region_end_to_end(tmp_path, capsys):
    """dvsstream eval --roi on a CIFAR10-DVS folder (tonic's layout, AEDAT 4 files written
    here): the report records the region, and each sample's confidence is the model's on
    frames of that region (resized 96 -> 32), which differ from the whole sensor's."""
    import csv

    import torch

    from dvsstream.cli import main
    from dvsstream.datasets.load import load_dataset
    from dvsstream.datasets.spec import FrameSpec
    from dvsstream.models import create_model, save_checkpoint
    from dvsstream.io.aedat4 import write_aedat4

    root = tmp_path / "data"
    for label, cls in ((0, "airplane"), (3, "cat")):
        (root / "CIFAR10DVS" / cls).mkdir(parents=True)
        for i in range(2):
            ev = _random_events(4000, 128, 128, seed=10 * label + i)
            ev["x"] = np.where(ev["x"] < 64, ev["x"] // (2 + label), ev["x"])
            write_aedat4(root / "CIFAR10DVS" / cls / f"cifar10_{cls}_{i}.aedat4", ev, (128, 128))
    torch.manual_seed(0)
    model = create_model("spikformer_dvs_tiny", num_classes=10, T=4, img_size=(32, 32))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.mul_(10 if name.startswith("head") else 6)
    save_checkpoint(model, tmp_path / "m.pt")
    args = ["eval", "--dataset", "cifar10dvs", "--root", str(root), "--checkpoint", str(tmp_path / "m.pt"),
            "--device", "cpu", "--split", "all", "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "out"), "--roi", "16,16,96,96"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    spec = FrameSpec.from_dict(report["frame_spec"])
    assert (spec.roi, spec.size, spec.frame_shape) == ((16, 16, 96, 96), (32, 32), (4, 2, 32, 32))
    assert report["samples"] == 4
    data = load_dataset("cifar10dvs", root, "all", spec, cache_dir=False)
    whole = load_dataset("cifar10dvs", root, "all", FrameSpec(n_bins=4, downsample=4), cache_dir=False)
    model.eval()
    with open(tmp_path / "out" / "samples.csv") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        frames, _, _ = data.get(i)
        assert not np.array_equal(frames, whole.get(i)[0])
        with torch.no_grad():
            probs = torch.softmax(model(torch.from_numpy(frames)[None]), -1)[0]
        assert float(row["confidence"]) == pytest.approx(float(probs.max()), abs=1e-5)
        assert int(row["prediction"] if row["prediction"].isdigit() else data.classes.index(row["prediction"])) \
            == int(probs.argmax())
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--roi", "64,64,96,96"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not inside the 128x128 sensor" in err and len(err.splitlines()) == 1 and not (tmp_path / "bad").exists()


@pytest.mark.parametrize("dataset, convention, stored, live", [
    ("dvsgesture", "spikingjelly", (16, 8, 96, 96), (16, 8, 96, 96)),
    ("cifar10dvs", "native", (16, 8, 96, 96), (16, 8, 96, 96)),
    ("cifar10dvs", "spikingjelly", (16, 8, 96, 96), (8, 16, 96, 96)),  # the releases' frames: transposed
])
def test_live_use_takes_the_region_a_checkpoint_was_trained_on(tmp_path, dataset, convention, stored, live):
    """A checkpoint whose frame_spec has a region (train --roi) is fed that region by
    run and the window on a sensor of the same size, in the readers' coordinates; on
    another sensor, or when --roi / --resize are given, the usual rules apply."""
    from dvsstream.models import create_model, save_checkpoint
    from dvsstream.stream.pipeline import load_classifier_model

    model = create_model("spikformer_dvs_tiny", num_classes=4, T=4, img_size=(32, 32))
    spec = {"n_bins": 4, "mode": "count", "sensor_size": [128, 128], "downsample": 1,
            "convention": convention, "roi": list(stored), "size": [32, 32]}
    save_checkpoint(model, tmp_path / "m.pt", frame_spec=spec, dataset=dataset)
    loaded = load_classifier_model(str(tmp_path / "m.pt"), device="cpu")
    base, model_size, meta = loaded.binning, loaded.model.config.img_size[::-1], loaded.meta
    assert live_binning(base, model_size, meta, (128, 128)).roi == live
    assert live_binning(base, model_size, meta, (128, 128), roi=(0, 0, 64, 64)).roi == (0, 0, 64, 64)
    assert live_binning(base, model_size, meta, (320, 240)).roi == geometry_for((32, 32), (320, 240)).roi
