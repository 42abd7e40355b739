"""Varied synthetic scenes for pre-training (dvsstream.synth.scenes, ``synth --kind scenes``)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from dvsstream import open_source
from dvsstream.cli import main
from dvsstream.events import EVENT_DTYPE, is_sorted
from dvsstream.io.hdf5 import RecordingReader
from dvsstream.synth.scenes import (
    CAMERA_MOTIONS,
    MOTIONS,
    SHAPES,
    TEXTURES,
    generate_scene,
    make_scene,
    render_frames,
    scene_event_packets,
    write_scene_recordings,
)
from dvsstream.synth.sprites import MIN_INTENSITY


def read_all(path) -> tuple[np.ndarray, tuple[int, int]]:
    src = open_source(path)
    try:
        packets = list(src)
        return (np.concatenate(packets) if packets else np.zeros(0, EVENT_DTYPE)), tuple(src.sensor_size)
    finally:
        src.close()


def signal_events(scene) -> np.ndarray:
    """The scene's events without sensor noise (no background activity, no hot pixels)."""
    quiet = dataclasses.replace(scene, emulator=dataclasses.replace(scene.emulator, noise_rate_hz=0.0, n_hot_pixels=0))
    return np.concatenate(list(scene_event_packets(quiet)))


def test_same_seed_same_events_other_seed_other_scene():
    a, sa = generate_scene(3, 1, 0.4)
    b, sb = generate_scene(3, 1, 0.4)
    np.testing.assert_array_equal(a, b)
    assert sa.description == sb.description
    c, sc = generate_scene(3, 2, 0.4)
    d, sd = generate_scene(4, 1, 0.4)
    assert sc.description != sa.description and sd.description != sa.description
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


@pytest.mark.parametrize("size", [(128, 128), (346, 260)])
def test_events_are_sorted_in_bounds_and_frames_are_intensities(size):
    ev, scene = generate_scene(11, 0, 0.3, size)
    w, h = size
    assert ev.dtype == EVENT_DTYPE and ev.size > 0 and is_sorted(ev)
    assert ev["x"].max() < w and ev["y"].max() < h
    assert ev["t"].min() >= 0 and ev["t"].max() <= 300_000
    frames = render_frames(scene, 0, 5)
    assert frames.shape == (5, h, w) and frames.dtype == np.float32
    assert frames.min() >= MIN_INTENSITY * 0.2 and frames.max() <= 1.0
    assert scene.times_us[0] == 0 and scene.times_us[-1] == 300_000 and np.all(np.diff(scene.times_us) > 0)


def test_the_set_is_varied():
    """Over 40 scenes the generator draws (almost) every kind of shape, texture, motion
    and camera motion, and the scenes differ from each other."""
    descs = [make_scene(7, i, 0.05).description for i in range(40)]
    objects = [o for d in descs for o in d["objects"]]
    shapes = {o["shape"]["kind"] for o in objects}
    textures = {o["texture"]["kind"] for o in objects} | {d["background"]["texture"]["kind"] for d in descs}
    motions = {o["motion"]["kind"] for o in objects}
    cameras = {d["camera"]["kind"] for d in descs}
    assert len(shapes) >= len(SHAPES) - 1 and shapes <= set(SHAPES)
    assert textures == set(TEXTURES)
    assert len(motions) >= len(MOTIONS) - 1 and motions <= set(MOTIONS)
    assert cameras == set(CAMERA_MOTIONS)
    assert {len(d["objects"]) for d in descs} == {1, 2, 3, 4}
    assert len({json.dumps(d, sort_keys=True) for d in descs}) == 40
    emulators = [make_scene(7, i, 0.05).emulator for i in range(10)]
    assert len({e.theta_on for e in emulators}) == 10 and len({e.noise_rate_hz for e in emulators}) == 10


def test_signal_events_cover_most_of_the_sensor_over_a_set():
    seen = np.zeros((128, 128), bool)
    for i in range(10):
        ev = signal_events(make_scene(5, i, 0.5))
        seen[ev["y"], ev["x"]] = True
    assert seen.mean() > 0.8, seen.mean()


def test_event_rates_resemble_dvs128_recordings():
    """Real DVS128 recordings of hand gestures have ~30-65 k ev/s, a walking person ~8 k:
    the set's median lies in that span and no recording is absurd."""
    rates, on = [], []
    for i in range(12):
        ev, _ = generate_scene(9, i, 0.6)
        rates.append(ev.size / 0.6)
        on.append(ev["p"].mean())
    assert 8e3 < np.median(rates) < 80e3, rates
    assert min(rates) > 300 and max(rates) < 1.5e6, rates
    assert 0.35 < np.median(on) < 0.65


def test_a_still_scene_fires_only_noise():
    """No flicker: frames of a scene that does not move are identical, so the emulator
    gives no signal events (sensor noise only)."""
    scene = make_scene(2, 3, 0.3)
    n = scene.times_us.size
    still = dataclasses.replace(scene, parts=np.repeat(scene.parts[:1], n, 0), camera=np.zeros((n, 2)),
                                gain=np.ones(n, np.float32))
    frames = render_frames(still)
    assert np.all(frames == frames[0])
    assert signal_events(still).size == 0
    assert signal_events(scene).size > 0


def test_written_recordings_read_back(tmp_path):
    sizes = [(128, 128), (346, 260), (320, 240)]
    out = tmp_path / "scenes"
    s = write_scene_recordings(out, 3, 0.3, seed=6, sensor_size=sizes, progress=False)
    assert s["recordings"] == 3 and len(s["paths"]) == 3
    total = 0
    for i, (path, size) in enumerate(zip(s["paths"], sizes)):
        assert path.endswith(f"scene_{i:04d}.h5")
        ev, sensor = read_all(path)
        assert sensor == size
        expected, _ = generate_scene(6, i, 0.3, size)
        np.testing.assert_array_equal(ev, expected)
        with RecordingReader(path) as rec:
            info = json.loads(rec.source)
            assert rec.n_events == ev.size and rec.class_names == []
        assert info["generator"] == "dvsstream.synth.scenes" and info["seed"] == 6 and info["index"] == i
        assert info["sensor_size"] == list(size) and info["objects"] and "theta_on" in info["emulator"]
        total += ev.size
    assert s["events"] == total
    summary = json.loads((out / "scenes_summary.json").read_text())
    assert summary["recordings"] == 3 and summary["events"] == total
    assert sorted(p.name for p in out.iterdir()) == ["scene_0000.h5", "scene_0001.h5", "scene_0002.h5",
                                                     "scenes_summary.json"]


def test_a_folder_that_holds_anything_is_refused_and_left_alone(tmp_path):
    from dvsstream.errors import DvsstreamError

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(DvsstreamError, match="not empty"):
        write_scene_recordings(folder, 1, 0.1, progress=False)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    with pytest.raises(DvsstreamError, match="does not exist"):
        write_scene_recordings(tmp_path / "no" / "such", 1, 0.1, progress=False)
    for kwargs in ({"n_recordings": 0}, {"duration_s": float("nan")}, {"duration_s": 601.0}, {"duration_s": 0.001}, {"sensor_size": (4, 4)},
                   {"workers": 0}):
        args = {"n_recordings": 1, "duration_s": 0.1, **kwargs}
        with pytest.raises(DvsstreamError):
            write_scene_recordings(tmp_path / "new", progress=False, **args)
    assert not (tmp_path / "new").exists()


def test_cli_scenes_end_to_end(tmp_path, capsys):
    out = tmp_path / "pre"
    rc = main(["synth", "--kind", "scenes", "--out", str(out), "--recordings", "2", "--duration", "0.3",
               "--seed", "5", "--workers", "2", "--sensor-size", "128x128,346x260"])
    assert rc == 0
    assert "synth: 2 scene recordings of 0.3 s" in capsys.readouterr().out
    ev, sensor = read_all(out / "scene_0001.h5")
    assert sensor == (346, 260)
    np.testing.assert_array_equal(ev, generate_scene(5, 1, 0.3, (346, 260))[0])  # workers change nothing
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["synth", "--kind", "scenes", "--out", str(out), "--recordings", "1", "--duration", "0.1"]) == 2
    assert "holds other files" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("argv, message", [
    (["--kind", "scenes", "--recordings", "0"], "--recordings"),
    (["--kind", "scenes", "--sensor-size", "128"], "--sensor-size"),
    (["--kind", "scenes", "--sensor-size", "2x2"], "--sensor-size"),
    (["--kind", "scenes", "--duration", "nan"], "--duration"),
    (["--kind", "scenes", "--duration", "1000"], "--duration 1000.0 s"),
    (["--kind", "scenes", "--format", "tonic"], "--format is not an option of --kind scenes"),
    (["--kind", "scenes", "--samples-per-class", "2"], "--samples-per-class"),
    (["--recordings", "3"], "--recordings is not an option of --kind gestures"),
    (["--sensor-size", "346x260"], "--sensor-size is not an option of --kind gestures"),
    (["--kind", "movies"], "--kind"),
])
def test_cli_bad_values_are_one_line_errors(tmp_path, capsys, argv, message):
    assert main(["synth", "--out", str(tmp_path / "x")] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_every_sprite_has_an_empty_border():
    """The renderer skips samples on a sprite's border row/column: every shape, at any
    size and sprite scale, must leave it empty."""
    from dvsstream.synth.scenes import _sample_shape
    from dvsstream.synth.sprites import capsule_mask, shape_mask

    rng = np.random.default_rng(0)
    masks = [capsule_mask(rng.uniform(5, 60), rng.uniform(1, 10)) for _ in range(10)]
    for kind in SHAPES[:-1]:
        for _ in range(8):
            shape = _sample_shape(rng, kind, float(rng.uniform(3, 60)))
            masks.append(shape_mask(shape, float(rng.uniform(0.6, 1.6))))
    for m in masks:
        assert m.sum() > 1.0  # something is drawn
        assert not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())
