"""Clips (dvsstream.render.clip, .writer, .recording; ``dvsstream render``): real renders
of the shipped recording with the shipped model, decoded back with PyAV; the
last-N-seconds buffer; safe writes; one-line CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from dvsstream.cli import main
from dvsstream.errors import DvsstreamError
from dvsstream.render import display
from dvsstream.render.clip import ClipFrame, render_frame
from dvsstream.render.recording import render_recording
from dvsstream.render.writer import ClipBuffer, ClipWriter, check_clip_output
from dvsstream.stream.live import default_recording

RECORDING = default_recording()
needs_recording = pytest.mark.skipif(RECORDING is None, reason="the shipped recording is not here")
NAMES = ("clap", "wave", "roll")


def decode(path: Path) -> list[np.ndarray]:
    """Every frame of a clip as ``uint8 [H, W, 3]``."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def near(frames: np.ndarray, colour, tol: int = 40) -> int:
    """How many pixels lie within ``tol`` (each channel) of ``colour``."""
    diff = np.abs(frames.astype(np.int16) - np.asarray(colour, np.int16))
    return int(np.count_nonzero((diff <= tol).all(-1)))


def synthetic_frame(t_us: int, size=(32, 48), seed: int = 0, probs=(0.2, 0.7, 0.1), label=1) -> ClipFrame:
    rng = np.random.default_rng(seed)
    events = rng.poisson(0.5, (2,) + size).astype(np.float32)
    return ClipFrame(events=events, t_us=t_us, class_names=NAMES, probs=probs, label=label,
                     attention=rng.random((4, 6)) * 4, levels=(0.0, 4.0))


# ------------------------------------------------------------------ rendering a recording
@needs_recording
def test_render_mp4_of_the_shipped_recording(tmp_path):
    out = tmp_path / "clip.mp4"
    summary = render_recording(str(RECORDING), out, start_s=1.0, duration_s=2.0, fps=10)
    assert summary.frames == 20 and summary.duration_s == pytest.approx(2.0)
    assert out.is_file() and summary.bytes == out.stat().st_size
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    frames = decode(out)
    assert abs(len(frames) - 20) <= 1
    h, w = frames[0].shape[:2]
    assert (w, h) == summary.size and h >= 384 and h % 2 == 0 and w % 2 == 0
    stack = np.stack(frames)
    assert len({f.tobytes() for f in frames}) > len(frames) // 2  # it moves
    events = stack[:, :, :h]  # the 128 x 128 sensor scaled by 3: the left 384 x 384
    assert near(events, display.EVENT_ON) > 1000 and near(events, display.EVENT_OFF) > 1000
    assert near(stack[:, :, h:], (255, 176, 0)) > 500  # the top class and its bar in the accent colour


@needs_recording
def test_render_gif_through_the_cli_is_deterministic(tmp_path, capsys):
    outs = [tmp_path / "a.gif", tmp_path / "b.gif"]
    for out in outs:
        assert main(["render", str(RECORDING), "--out", str(out), "--start", "2", "--duration", "1",
                     "--fps", "10"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("wrote 10 frames (1.00 s of stream from 2 s, 10 fps, 684x384") and str(outs[1]) in line
    assert outs[0].read_bytes() == outs[1].read_bytes()  # unpaced, nothing skipped: the same clip
    frames = decode(outs[0])
    assert len(frames) == 10 and frames[0].shape == (384, 684, 3)
    stack = np.stack(frames)
    assert len({f.tobytes() for f in frames}) == 10
    assert near(stack[:, :, :384], display.EVENT_ON, 30) > 1000 and near(stack[:, :, :384], display.EVENT_OFF, 30) > 1000
    with av.open(str(outs[0])) as container:
        pts = [f.pts for f in container.decode(video=0)]
    assert np.diff(pts).tolist() == [10] * 9  # 1/100 s ticks: 10 fps


# ------------------------------------------------------------------ one frame
def test_frame_is_compact_and_rendered_at_a_readable_even_size():
    counts = np.zeros((2, 35, 47), np.float32)
    counts[1, 3, 4] = 1000.0  # clipped, not wrapped
    counts[0, 10, 10] = 2.0
    frame = ClipFrame(counts, 1_500_000, NAMES, probs=[0.1, 0.8, 0.1], label=2)
    assert frame.events.dtype == np.uint8 and frame.events[1, 3, 4] == 255
    picture = render_frame(frame)
    assert picture.dtype == np.uint8 and picture.shape[2] == 3
    assert picture.shape[0] >= 384 and picture.shape[0] % 2 == 0 and picture.shape[1] % 2 == 0
    scale = 11  # ceil(384 / 35)
    assert tuple(picture[3 * scale + 5, 4 * scale + 5]) == display.EVENT_ON  # nearest neighbour, integer factor
    assert tuple(picture[0, 0]) == display.EVENT_BACKGROUND


def test_overlay_uses_the_windows_rule():
    frame = synthetic_frame(0)
    plain = ClipFrame(frame.events, 0, NAMES, probs=frame.probs, label=frame.label)
    with_att, without = render_frame(frame), render_frame(plain)
    rgb = display.blend_overlay(display.event_rgb(frame.events), frame.attention, frame.levels)
    scale = 384 // 32
    assert np.array_equal(with_att[: 32 * scale: scale, : 48 * scale: scale], rgb)
    assert np.array_equal(with_att[:, 48 * scale:], without[:, 48 * scale:])  # the panel does not change


def test_frame_from_a_prediction_as_the_window_draws_it():
    from types import SimpleNamespace

    spatial = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)  # [heads, h, w], summed over 16 queries
    pred = SimpleNamespace(probs=np.array([0.1, 0.6, 0.3]), label=2,
                           attention={0: {"spatial": spatial, "matrix": np.zeros((2, 16, 16))}})
    frame = ClipFrame.from_prediction(np.ones((2, 8, 8), np.float32), 250_000, NAMES, pred, head_dim=16)
    assert frame.label == 2 and frame.probs.dtype == np.float32 and frame.levels == display.overlay_levels(16)
    assert np.allclose(frame.attention, display.overlay_map(pred.attention))
    assert ClipFrame.from_prediction(None, 0, NAMES, pred, overlay=False, sensor_hw=(8, 8)).attention is None


def test_many_classes_show_the_top_few():
    names = tuple(f"class number {i}" for i in range(40))
    probs = np.full(40, 0.5 / 39)
    probs[17] = 0.5
    frame = ClipFrame(np.zeros((2, 128, 128)), 0, names, probs=probs, label=3)
    picture = render_frame(frame)
    assert picture.shape == (384, 684, 3)
    assert near(picture[:, 384:], (255, 176, 0)) > 300  # the top class's bar and name


def test_frame_before_the_first_prediction():
    frame = ClipFrame(np.zeros((2, 16, 16)), 0, NAMES)
    assert render_frame(frame).shape == (384, 16 * 24 + 300, 3)


# ------------------------------------------------------------------ the buffer
def test_buffer_keeps_the_last_seconds_sampled_by_stream_time(tmp_path):
    buf = ClipBuffer(seconds=3, fps=10)
    frames = [synthetic_frame(t, seed=i % 7) for i, t in enumerate(range(0, 10_000_000, 25_000))]  # 40 fps, 10 s
    kept = 0
    for f in frames:
        due = buf.due(f.t_us)
        assert buf.push(f) == due
        kept += due
    assert kept == 100  # one per 100 ms of stream time
    assert len(buf) == 30 and buf.duration_s == pytest.approx(3.0)
    assert [f.t_us for f in buf.frames()] == list(range(7_000_000, 10_000_000, 100_000))
    out = tmp_path / "last.gif"
    assert buf.export(out) == 30
    assert len(decode(out)) == 30


def test_buffer_fills_slots_a_slow_display_missed_and_cuts_at_seeks():
    buf = ClipBuffer(seconds=10, fps=20)
    for t in range(0, 2_000_000, 200_000):  # 5 fps of display: each frame stands for 4 slots
        buf.push(synthetic_frame(t))
    assert len(buf) == 37  # slots 0 .. 36 (the last frame at 1.8 s opens slot 36)
    times = [f.t_us for f in buf.frames()]
    assert times[:5] == [0, 0, 0, 0, 200_000]
    buf.push(synthetic_frame(100_000))  # time went back (a loop): a cut, nothing filled
    buf.push(synthetic_frame(5_000_000))  # a jump ahead: a cut
    assert len(buf) == 39
    buf.push(synthetic_frame(5_000_000, size=(16, 16)))  # another sensor: start again
    assert len(buf) == 1


def test_empty_buffer_is_a_clear_error(tmp_path):
    with pytest.raises(DvsstreamError, match="nothing to save"):
        ClipBuffer(5, 20).export(tmp_path / "x.mp4")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ safe writes
def test_existing_clip_is_refused_and_kept_byte_identical(tmp_path):
    buf = ClipBuffer(seconds=1, fps=10)
    for t in range(0, 1_000_000, 100_000):
        buf.push(synthetic_frame(t, seed=t))
    out = tmp_path / "talk.mp4"
    assert buf.export(out) == 10
    before = out.read_bytes()
    with pytest.raises(DvsstreamError) as err:
        buf.export(out)
    message = str(err.value)
    assert "\n" not in message and str(out) in message and "--force" in message
    assert out.read_bytes() == before
    with pytest.raises(ValueError):  # a failure half way: the old clip stays, no temporary left
        with ClipWriter(out, 10, overwrite=True) as writer:
            writer.write(render_frame(synthetic_frame(0)))
            writer.write(np.zeros((10, 10, 3), np.uint8))
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["talk.mp4"]
    assert buf.export(out, fps=5, overwrite=True) == 10
    assert out.read_bytes() != before


@pytest.mark.parametrize("name, match", [("clip.avi", "unknown clip format '.avi'"), ("clip", "unknown clip format"),
                                         ("missing/clip.mp4", "does not exist")])
def test_bad_clip_paths(tmp_path, name, match):
    with pytest.raises(DvsstreamError, match=match):
        check_clip_output(tmp_path / name)


# ------------------------------------------------------------------ the command
def test_render_bad_input_is_one_line_and_status_2(tmp_path, capsys):
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"keep me")
    source = str(RECORDING) if RECORDING is not None else str(existing)
    cases = [
        ([str(tmp_path / "nope.h5"), "--out", str(tmp_path / "a.mp4")], "nope.h5"),
        ([source, "--out", str(tmp_path / "a.webm")], "is written as an MP4 or GIF clip, but its name ends in .webm"),
        ([source, "--out", str(existing)], "--force"),
        ([source, "--out", str(tmp_path / "a.mp4"), "--duration", "-1"], "--duration"),
        ([source, "--out", str(tmp_path / "no" / "a.mp4")], "does not exist"),
        ([source, "--out", str(tmp_path / "a.gif"), "--fps", "0"], "--fps"),
    ]
    for args, needle in cases:
        assert main(["render", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("dvsstream: error:") and needle in err, err
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.mp4"]


@pytest.mark.parametrize("module", ["dvsstream.render", "dvsstream.render.clip", "dvsstream.render.writer",
                                    "dvsstream.render.recording"])
def test_clip_module_loads_no_torch_qt_or_av(module):
    code = (f"import sys, {module}; "
            "print(','.join(m for m in ('torch', 'PySide6', 'pyqtgraph', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
