"""What a clip frame shows (issue 24, item 7): values readable at every bar length, a
legend swatch for both polarities in one pixel, the synthetic-only caveat, the whole
sensor with the model's region outlined, and a render that starts at the first
prediction -- on drawn frames and on the real DVXplorer recording."""

from __future__ import annotations

import av
import numpy as np
import pytest

from dvsstream.render import display
from dvsstream.render.clip import (
    NOTE_FILL,
    OUTLINE,
    ClipFrame,
    clip_geometry,
    legend_items,
    render_frame,
)
from dvsstream.render.recording import render_recording

NAMES = ("Hand clapping", "Right hand wave", "Air guitar")
NOTE = display.domain_note(True, "file", "DVXplorer")


def decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def near(pixels: np.ndarray, colour, tol: int = 3) -> np.ndarray:
    """Mask of the pixels within ``tol`` (each channel) of ``colour``."""
    return (np.abs(pixels.astype(np.int16) - np.asarray(colour, np.int16)) <= tol).all(-1)


def frame(p: float, size=(48, 64), **kw) -> ClipFrame:
    probs = np.array([p, (1 - p) * 0.75, (1 - p) * 0.25], np.float32)
    return ClipFrame(events=np.zeros((2,) + size, np.uint8), t_us=0, class_names=NAMES, probs=probs, **kw)


@pytest.mark.parametrize("p", [0.0, 0.003, 0.3, 0.6, 0.92, 1.0])
def test_values_are_beside_the_bars_and_inside_the_picture(p):
    """A long bar (92 %, 100 %) no longer runs under its value: the value has a column of
    its own right of the track, and its text is really drawn there."""
    layout: dict = {}
    pic = render_frame(frame(p, note=NOTE), layout=layout)
    height, width = pic.shape[:2]
    rows = layout["bars"]
    assert [r["class"] for r in rows] == [0, 1, 2]
    for row in rows:
        bx1, tx1 = row["bar"][2], row["track"][2]
        vx0, vy0, vx1, vy1 = row["value"]
        assert bx1 <= tx1 < vx0 and 0 <= vx0 < vx1 <= width and 0 <= vy0 < vy1 <= height
        box = pic[vy0:vy1, vx0:vx1]
        ink = near(box, display.TEXT, 90) | near(box, display.ACCENT, 90)
        assert ink.sum() >= 10  # the digits are there, light on the dark panel
        assert not near(box, display.BAR_TRACK, 2).any()  # and no part of a bar or track under them
    top = rows[int(np.argmax(frame(p).probs))]
    full = top["track"][2] - top["track"][0]
    assert top["bar"][2] - top["bar"][0] == pytest.approx(float(frame(p).probs.max()) * full, abs=1)


def test_legend_has_a_swatch_for_both_polarities():
    items = dict(legend_items())
    assert list(items) == ["ON", "OFF", "both", "attention"]
    mixed = np.zeros((2, 1, 1), np.float32) + display.EVENT_LEVEL / 2  # as many ON as OFF events
    assert items["both"] == tuple(int(v) for v in display.event_rgb(mixed)[0, 0])
    pic = render_frame(frame(0.5))  # no events: that colour can only be the legend's
    scale, image_h, _, _ = clip_geometry((48, 64))
    panel = pic[:, 64 * scale:]
    swatch = near(panel, items["both"], 1)
    assert swatch.sum() >= 100 and np.nonzero(swatch.any(1))[0].min() > 0.9 * image_h  # at the bottom


def test_the_synthetic_only_caveat_is_drawn():
    assert NOTE and "synthetic" in NOTE
    assert display.domain_note(True, "file", "dvsstream emulator") is None  # our own recordings: no caveat
    assert display.domain_note(False, "camera") is None
    for probs in (0.5, None):
        with_note = render_frame(frame(0.5, note=NOTE) if probs else ClipFrame(np.zeros((2, 48, 64)), 0, note=NOTE))
        without = render_frame(frame(0.5) if probs else ClipFrame(np.zeros((2, 48, 64)), 0))
        assert near(with_note, NOTE_FILL, 2).sum() > 2000 > 20 * near(without, NOTE_FILL, 2).sum()  # AA edges


def test_the_whole_sensor_is_drawn_with_the_region_outlined():
    """A 320x240 sensor whose model sees the centred 240x240: every sensor pixel is in
    the picture, the region's edge is dashed, the attention tints only the region."""
    events = np.zeros((2, 240, 320), np.uint8)
    events[1, 100:140, 5:20] = 8  # ON events left of the region (a shoulder, say)
    clip = ClipFrame(events=events, t_us=0, class_names=NAMES, probs=[0.2, 0.7, 0.1],
                     attention=np.full((4, 4), 4.0), levels=(0.0, 4.0), region=(40, 0, 240, 240))
    pic = render_frame(clip)
    scale, image_h, panel_w, total_w = clip_geometry((240, 320))
    assert scale == 2 and pic.shape == (image_h, total_w, 3) and (image_h, total_w - panel_w) in {(480, 640), (480, 641)}
    assert near(pic[200:280, 10:40], display.EVENT_ON).all()  # outside the region, drawn, untinted
    outline = near(pic[:480, :640], OUTLINE, 2)
    left, right = outline[:, 80:83].any(1), outline[:, 557:560].any(1)
    assert 0.3 < left.mean() < 0.8 and 0.3 < right.mean() < 0.8  # dashed, down both sides
    tinted = display.blend_overlay(np.array([[display.EVENT_BACKGROUND]], np.uint8), np.ones((1, 1)), (0.0, 1.0))
    assert near(pic[300:320, 300:320], tinted[0, 0], 2).all()  # inside: the attention at its strongest
    assert near(pic[300:320, 600:620], display.EVENT_BACKGROUND, 2).all()  # outside: none


@pytest.fixture
def dvxplorer(real_data):
    return real_data("dvxplorer_sample.aedat4")


def test_render_of_a_real_dvxplorer_file_starts_at_the_first_prediction(dvxplorer, tmp_path):
    """The 0.59 s, 320x240 DVXplorer recording with the shipped (synthetic-only) model:
    every frame has a prediction, shows the whole sensor with the 240x240 region outlined,
    and carries the caveat. ``--start 0`` still renders the frames before it."""
    out = tmp_path / "c.mp4"
    summary = render_recording(str(dvxplorer), out, fps=20)
    assert summary.start_s == pytest.approx(0.4)  # one model window (400 ms) in
    frames = decode(out)
    assert len(frames) == summary.frames == 4 and summary.size == (1016, 480)
    for pic in frames:
        panel = pic[:, 640:]
        assert near(panel[60:100], display.ACCENT, 40).sum() > 300  # the top class's name: a prediction
        assert near(panel, NOTE_FILL, 12).sum() > 2000  # the caveat
        assert near(pic[:, 80:82, :], OUTLINE, 40).any(1).mean() > 0.3  # the region's left edge
    everything = render_recording(str(dvxplorer), tmp_path / "all.mp4", fps=20, start_s=0.0)
    assert everything.frames == 12 and everything.start_s == 0.0
