"""The streaming pipeline and ``dvsstream run``: accounting, modes, back-pressure,
recording while classifying, a real loopback NetworkWriter, real DVS128 recordings."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from dvsstream.stream.live import RunConfig, classify_stream, default_recording
from dvsstream.binning.geometry import BinningConfig
from dvsstream.stream.pipeline import Pipeline, load_classifier_model
from dvsstream.io.hdf5 import RecordingReader
from dvsstream.io import open_source

RECORDING = default_recording()
N_EVENTS = 155_439  # events in recordings/gestures_waves_and_clap.h5


@pytest.fixture(scope="module")
def loaded():
    return load_classifier_model(device="cpu")


def fresh(loaded):
    """The module's model with fresh stepping state (pipelines reset it themselves too)."""
    loaded.model.reset()
    return loaded


def offline_windows(path, binning: BinningConfig):
    with RecordingReader(path) as rec:
        ev = rec.read()
    return ev, list(binning.binner((128, 128))(np.array_split(ev, 97)))


def test_deterministic_replay_accounts_for_every_event(loaded):
    pipe = Pipeline(open_source(RECORDING, packet_us=1000), fresh(loaded), drop_stale=False)
    stats = pipe.run()
    ev, windows = offline_windows(RECORDING, loaded.binning)
    assert ev.size == N_EVENTS
    assert stats.events_read == N_EVENTS == stats.events_binned + stats.events_out_of_bounds + stats.events_late
    assert stats.events_out_of_bounds == 0 and stats.events_late == 0
    assert stats.windows_skipped == 0
    assert stats.windows == stats.windows_classified == len(windows) == len(pipe.predictions)
    assert [(p.t_start, p.t_end, p.events) for p in pipe.predictions] == \
        [(w.t_start, w.t_end, w.events) for w in windows]
    labelled = [p for p in pipe.predictions if p.label is not None]
    assert len(labelled) >= 140
    assert np.mean([p.top == p.label for p in labelled]) >= 0.9  # measured: 97.4 %


def test_window_mode_logits_equal_the_model_on_offline_windows(loaded):
    pipe = Pipeline(open_source(RECORDING, packet_us=5000), fresh(loaded), mode="window", drop_stale=False)
    pipe.run()
    _, windows = offline_windows(RECORDING, loaded.binning)
    x = torch.from_numpy(np.stack([w.frames for w in windows[::10]]))
    with torch.inference_mode():
        want = torch.softmax(loaded.model(x), -1).numpy()
    got = np.stack([p.probs for p in list(pipe.predictions)[::10]])
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_step_mode_primes_on_the_first_window_then_steps_one_bin(loaded):
    pipe = Pipeline(open_source(RECORDING, packet_us=1000), fresh(loaded), mode="step", drop_stale=False)
    pipe.run()
    preds = list(pipe.predictions)
    T = loaded.binning.n_bins
    assert preds[0].steps == T and all(p.steps == 1 for p in preds[1:-1])  # hop = one bin
    _, windows = offline_windows(RECORDING, loaded.binning)
    with torch.inference_mode():
        first = torch.softmax(loaded.model(torch.from_numpy(windows[0].frames)[None]), -1)[0].numpy()
    np.testing.assert_allclose(preds[0].probs, first, atol=1e-5)
    # stepping carries state: later predictions differ from a from-reset window, yet agree on the class
    agree = np.mean([p.top == q.top for p, q in zip(preds, step_free(loaded))])
    assert agree >= 0.9


def step_free(loaded):
    pipe = Pipeline(open_source(RECORDING, packet_us=1000), fresh(loaded), mode="window", drop_stale=False)
    pipe.run()
    return list(pipe.predictions)


class SlowConsumer:
    """A prediction consumer that takes 30 ms: the classifier falls behind a fast source."""

    def __init__(self):
        self.n = 0

    def __call__(self, pred):
        self.n += 1
        time.sleep(0.03)


def test_overload_skips_stale_windows_counts_them_and_records_every_event(loaded, tmp_path):
    slow = SlowConsumer()
    src = open_source("synthetic:rate=2e5,duration=3,seed=5,realtime=0")
    pipe = Pipeline(src, fresh(loaded), drop_stale=True, queue_size=1, on_prediction=slow,
                    event_view=True)
    pipe.start_recording(tmp_path / "rec.h5")
    stats = pipe.run()
    assert stats.windows_skipped > 0
    assert stats.windows == stats.windows_classified + stats.windows_skipped
    assert slow.n == stats.windows_classified
    assert stats.events_read == stats.events_binned  # windows are skipped, events are not lost
    with RecordingReader(tmp_path / "rec.h5") as rec:
        assert rec.n_events == stats.events_read == stats.recorded_events
    img = pipe.snapshot()["event_image"]
    assert img.shape == (2, 128, 128) and img.sum() > 0


def test_wait_policy_never_skips(loaded):
    src = open_source("synthetic:rate=2e5,duration=1,seed=5,realtime=0")
    pipe = Pipeline(src, fresh(loaded), drop_stale=False, queue_size=1, on_prediction=SlowConsumer())
    stats = pipe.run()
    assert stats.windows_skipped == 0 and stats.windows == stats.windows_classified > 0


def test_event_view_holds_the_current_window(loaded):
    pipe = Pipeline(open_source(RECORDING, packet_us=1000), fresh(loaded), drop_stale=False, event_view=True)
    pipe.run()
    img, t_end = pipe.view.read()
    with RecordingReader(RECORDING) as rec:
        ev = rec.read()
    window = loaded.binning.window_us
    sel = ev[(ev["t"] >= t_end - window) & (ev["t"] < t_end)]
    want = np.zeros((2, 128, 128), np.float32)
    np.add.at(want, (sel["p"].astype(int), sel["y"].astype(int), sel["x"].astype(int)), 1)
    np.testing.assert_array_equal(img, want)


def test_loop_restarts_binning_and_state(loaded):
    src = open_source(RECORDING, packet_us=1000, loop=True)
    pipe = Pipeline(src, fresh(loaded), drop_stale=False)
    pipe.start()
    deadline = time.monotonic() + 60
    while pipe.snapshot_stats().restarts < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pipe.stop()
    stats = pipe.snapshot_stats()
    assert stats.restarts >= 2 and pipe.error is None
    assert stats.events_read == stats.events_binned + stats.events_late + stats.events_out_of_bounds
    assert stats.events_late == 0  # the jump back in time started new binners
    assert stats.events_read > src.n_events  # a whole loop and more is counted
    import gc

    from dvsstream.binning import StreamingBinner

    gc.collect()  # a retired binner is not kept (a window looping for hours grew by one ring a loop)
    assert sum(type(o) is StreamingBinner and o is not pipe._binner for o in gc.get_objects()) == 0


def test_a_looped_recording_shorter_than_the_window_is_classified_every_loop(loaded, tmp_path):
    """0.2 s of the shipped recording under a 400 ms window, looped (the window's default):
    each loop ends as the stream would, with the pending window classified -- the same
    prediction as the replay without loop makes at its end (before: none, ever)."""
    from dvsstream.io.hdf5 import RecordingWriter

    with RecordingReader(RECORDING) as rec:
        ev, sensor = rec.read(), rec.sensor_size
    short = tmp_path / "short.h5"
    with RecordingWriter(short, sensor, "test") as w:
        w.write(ev[ev["t"] < ev["t"][0] + 200_000])
    assert loaded.binning.window_us > 200_000
    once: list = []
    Pipeline(open_source(short, packet_us=1000), fresh(loaded), drop_stale=False, on_prediction=once.append).run()
    assert len(once) == 1
    looped: list = []
    src = open_source(short, packet_us=1000, loop=True)
    pipe = Pipeline(src, fresh(loaded), drop_stale=False, on_prediction=looped.append)
    pipe.start()
    deadline = time.monotonic() + 60
    while len(looped) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    pipe.stop()
    assert len(looped) >= 3 and pipe.error is None and src.loops >= 3
    for p in looped[:3]:
        assert p.t_end == once[0].t_end and np.array_equal(p.probs, once[0].probs)


def test_attention_taps_in_the_pipeline(loaded):
    pipe = Pipeline(open_source(RECORDING, packet_us=1000), fresh(loaded), drop_stale=False, attention=True,
                    energy_every_s=0.0)
    pipe.run()
    p = pipe.latest
    cfg = loaded.model.config
    n = loaded.model.num_tokens
    gh, gw = loaded.model.grid
    assert sorted(p.attention) == list(range(cfg.depth))
    for maps in p.attention.values():
        assert maps["matrix"].shape == (cfg.heads, n, n)
        assert maps["spatial"].shape == (cfg.heads, gh, gw)
    assert 0 < p.firing_rate < 1
    assert 0 < pipe.snapshot_stats().energy_mj_per_window < 1


def test_model_input_size_must_match_the_sensor(loaded):
    """A 320x240 sensor feeds the 64x64 model through its centred 240x240 region by
    default; a binning that makes other frames is refused in one line."""
    src = open_source("synthetic:rate=1e4,duration=0.5", sensor_size=(320, 240))
    pipe = Pipeline(src, loaded)
    assert pipe.binning.roi == (40, 0, 240, 240) and pipe.binning.frame_size((320, 240)) == (64, 64)
    with pytest.raises(ValueError, match="the model takes 64x64 frames but the binning makes 160x120"):
        Pipeline(src, loaded, binning=BinningConfig(400_000, 8, 50_000, downsample=2))
    src.close()


def test_network_stream_gives_the_same_predictions_as_the_file(loaded, tmp_path):
    """A real dv-processing NetworkWriter on loopback stands in for a camera: every
    event it sent arrives, and the predictions equal those of replaying the file."""
    pytest.importorskip("dv_processing")
    from dvwriter import free_port, start_writer

    with RecordingReader(RECORDING) as rec:
        ev = rec.read()
    port = free_port()
    proc = start_writer(f"127.0.0.1:{port}", ev, tmp_path, packet_events=2000,
                        sensor_size=(128, 128), camera="DVS128_TEST")
    try:
        net = Pipeline(open_source(f"tcp://127.0.0.1:{port}"), fresh(loaded), drop_stale=False)
        stats = net.run()
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
    assert stats.events_read == ev.size == stats.events_binned
    assert net.source.stats.events_read == ev.size
    file = Pipeline(open_source(RECORDING), fresh(loaded), drop_stale=False)
    file.run()
    got, want = list(net.predictions), list(file.predictions)
    assert len(got) == len(want) > 100
    assert [p.t_end for p in got] == [p.t_end for p in want]
    np.testing.assert_allclose(np.stack([p.probs for p in got]), np.stack([p.probs for p in want]), atol=1e-5)


REAL_FILES = {
    "dvSave-2024_06_20_15_59_41.aedat4": 348_461,
    "neal_walking.aedat": 70_304,
    "cam255_right_clamp_test1.aedat": 110_228,
}


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_replay_real_dvs128_recordings(real_data, name, loaded):
    path = real_data(name)
    if name.endswith(".aedat4"):
        pytest.importorskip("dv_processing")
    report = classify_stream(str(path), RunConfig(device="cpu"))
    assert report["events_read"] == REAL_FILES[name]
    assert report["events_read"] == report["events_binned"] + report["events_out_of_bounds"] + report["events_late"]
    assert report["windows_skipped"] == 0
    assert len(report["predictions"]) == report["windows_classified"] > 10
    for p in report["predictions"]:
        assert abs(sum(p["probs"]) - 1) < 1e-3


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "dvsstream.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_run_writes_the_report(tmp_path):
    out = tmp_path / "run.json"
    res = run_cli("run", "--json-out", str(out))
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("t = ")]
    report = json.loads(out.read_text())
    assert len(lines) == len(report["predictions"]) == report["windows_classified"] > 100
    for key in ("predictions", "events_read", "events_binned", "events_out_of_bounds", "windows_skipped",
                "latency_ms"):
        assert key in report
    assert report["events_read"] == N_EVENTS == report["events_binned"] + report["events_out_of_bounds"]
    assert report["windows_skipped"] == 0 and report["deterministic"]
    assert {"p50", "p95"} <= set(report["latency_ms"])
    first = report["predictions"][0]
    assert {"t_end_us", "top", "probs"} <= set(first) and len(first["probs"]) == 11
    assert report["accuracy"] >= 0.9
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # the spilled predictions are gone
    before = out.read_bytes()  # a previous report is replaced only with --force
    res = run_cli("run", "--json-out", str(out))
    assert res.returncode == 2 and "--force" in res.stderr and out.read_bytes() == before


def test_spilled_predictions_make_the_same_report(tmp_path):
    """``predictions_file``: predictions go to a JSON Lines file as they come (none kept
    in memory) and write_json assembles the same report as from memory."""
    from dvsstream.stream.live import write_json

    kept = classify_stream(str(RECORDING), RunConfig(device="cpu", duration_s=2.0))
    spill = tmp_path / "p.jsonl"
    spilled = classify_stream(str(RECORDING), RunConfig(device="cpu", duration_s=2.0), predictions_file=spill)
    assert "predictions" not in spilled
    n = spilled["windows_classified"]
    assert len(spill.read_text().splitlines()) == n == len(kept["predictions"]) > 20
    write_json(spilled, tmp_path / "a.json", spill)
    write_json(kept, tmp_path / "b.json")
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("a.json", "b.json"))

    def same(r):
        return [(q["t_end_us"], q["top"], q["probs"], q.get("label")) for q in r["predictions"]]
    assert same(a) == same(b)  # a deterministic replay: the same predictions either way
    assert a["accuracy"] == b["accuracy"] and a["labelled_windows"] == b["labelled_windows"]
    assert a["events_read"] == b["events_read"] and a["latency_ms"]["n"] == n


@pytest.mark.parametrize("args, message", [
    (["--source", "/no/such/file.h5"], "/no/such/file.h5"),
    (["--hop-ms", "33"], "multiple of the bin length"),
    (["--source", "synthetic:rate=1e4", "--speed", "2"], "recordings only"),
    (["--checkpoint", "/no/such.pt"], "/no/such.pt"),
    (["--json-out", "/nonexistent-dvsstream-folder/r.json"], "does not exist"),  # never created
    (["--json-out", "/"], "is a folder"),  # refused before the run, nothing left behind
])
def test_cli_run_bad_input_is_one_line(args, message):
    res = run_cli("run", *args)
    assert res.returncode == 2
    assert message in res.stderr and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_a_lagging_real_time_source_is_shed_counted_and_still_recorded(loaded, tmp_path):
    """A paced replay whose consumer is too slow (the source waits for it): once the
    pipeline is more than max_lag behind the sensor clock it stops binning, counts the
    events it sheds and the windows they would have made, and records every event."""
    src = open_source(RECORDING, speed=4, packet_us=1000)
    pipe = Pipeline(src, fresh(loaded), drop_stale=False, queue_size=1, max_lag_ms=200,
                    on_prediction=lambda p: time.sleep(0.08))
    pipe.start_recording(tmp_path / "rec.h5")
    stats = pipe.run()
    assert stats.events_shed > 0 and stats.windows_skipped > 0
    assert stats.events_read == N_EVENTS == (stats.events_binned + stats.events_out_of_bounds
                                             + stats.events_late + stats.events_shed)
    assert stats.windows == stats.windows_classified + stats.windows_skipped
    with RecordingReader(tmp_path / "rec.h5") as rec:
        assert rec.n_events == N_EVENTS


def test_unpaced_replays_never_shed(loaded):
    pipe = Pipeline(open_source(RECORDING), fresh(loaded), drop_stale=False,
                    on_prediction=lambda p: time.sleep(0.002))
    assert pipe.max_lag_us is None
    assert pipe.run().events_shed == 0


def test_step_mode_attention_is_averaged_over_the_window():
    """``spatial_window`` is the mean of the per-step spatial attention over the last T
    steps, the same steps a fresh T+1-step forward gives (the overlay the GUI draws)."""
    import torch

    from dvsstream.binning import Window
    from dvsstream.models import record_attention
    from dvsstream.stream.classifier import Classifier
    from dvsstream.stream.pipeline import load_classifier_model

    loaded = load_classifier_model()
    T = loaded.binning.n_bins
    _, h, w = 2, *loaded.model.config.img_size
    frames = (torch.rand(T + 1, 2, h, w, generator=torch.Generator().manual_seed(0)) < 0.05).float() * 3
    clf = Classifier(loaded, mode="step", attention=True, firing_rates=False)
    _, _, _, first = clf(Window(frames[:T].numpy(), 0, T, T, 1))
    _, steps, _, second = clf(Window(frames[1:].numpy(), 1, T + 1, 1, 1))
    assert steps == 1
    model = loaded.model
    model.reset()
    with torch.inference_mode(), record_attention(model, firing_rates=False) as taps:
        model.step_frames(frames.unsqueeze(0))
    for block, maps in taps.spatial.items():
        per_step = maps[:, 0].float().numpy()  # [T+1, heads, h, w]
        assert np.allclose(first[block]["spatial_window"], per_step[:T].mean(0), atol=1e-5)
        assert np.allclose(second[block]["spatial_window"], per_step[1:].mean(0), atol=1e-5)
        assert np.allclose(second[block]["spatial"], per_step[T], atol=1e-5)
