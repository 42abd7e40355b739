"""``--filter`` through the verbs: ``convert`` and ``record`` write what the filter keeps
(and say so in the file), the live pipeline bins what the offline filter keeps, ``run``
reports the share removed, and bad filters are one line with exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dvsstream.cli import main
from dvsstream.filters import parse_filter
from dvsstream.io import open_source
from dvsstream.io.hdf5 import RecordingReader

GESTURE = "dvSave-2024_06_20_16_06_00.aedat4"


def read_all(path):
    with open_source(path) as source:
        return np.concatenate(list(source)), tuple(source.sensor_size)


def offline(spec, path):
    ev, size = read_all(path)
    return ev, parse_filter(spec).build(size)(ev)


@pytest.mark.parametrize("name", [GESTURE, "neal_walking.aedat"])  # a declared sensor; one convert grows
def test_convert_writes_the_events_the_filter_keeps(real_data, tmp_path, capsys, name):
    path = real_data(name)
    ev, kept = offline("ba:2000,refractory:1000", path)
    out = tmp_path / "filtered.h5"
    assert main(["convert", str(path), str(out), "--filter", "ba:2000", "--filter", "refractory:1000"]) == 0
    with RecordingReader(out) as rec:
        written = rec.read()
        assert rec.attrs["noise_filter"] == "ba:2000,refractory:1000"
    np.testing.assert_array_equal(written, kept)
    removed = ev.size - kept.size
    assert (f"--filter ba:2000,refractory:1000 removed {removed:,} events ({100 * removed / ev.size:.1f} %)"
            in capsys.readouterr().out)


def test_record_from_a_file_writes_the_events_the_filter_keeps(real_data, tmp_path):
    path = real_data(GESTURE)
    _, kept = offline("denoise:5000", path)
    out = tmp_path / "rec.h5"
    assert main(["record", "--source", str(path), "--out", str(out), "--filter", "denoise:5000"]) == 0
    with RecordingReader(out) as rec:
        np.testing.assert_array_equal(rec.read(), kept)
        assert rec.attrs["noise_filter"] == "denoise:5000"


def test_without_filter_the_file_has_no_filter_attribute(real_data, tmp_path):
    out = tmp_path / "plain.h5"
    assert main(["convert", str(real_data("ncars_sample.dat")), str(out)]) == 0
    with RecordingReader(out) as rec:
        assert "noise_filter" not in rec.attrs and rec.read().size == 2009


@pytest.mark.parametrize("bad", ["ba:0", "ba:-1", "ba:nan", "ba:99999999999", "refractory:1.5", "median:10", "ba"])
@pytest.mark.parametrize("verb", ["convert", "record", "run"])
def test_bad_filters_are_one_line_and_status_2_before_any_work(real_data, tmp_path, capsys, verb, bad):
    path = real_data("ncars_sample.dat")
    out = tmp_path / "out.h5"
    args = {"convert": ["convert", str(path), str(out)], "record": ["record", "--source", str(path), "--out", str(out)],
            "run": ["run", "--source", str(path)]}[verb]
    assert main([*args, "--filter", bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--filter" in err and "Traceback" not in err
    assert not out.exists()


def test_the_pipeline_bins_what_the_offline_filter_keeps(real_data):
    """Packets of 1 ms through the live filter, then the binner: the same windows as the
    recording filtered in one call and binned."""
    from dvsstream.stream.pipeline import Pipeline, load_classifier_model

    path = real_data(GESTURE)
    ev, kept = offline("ba:2000", path)
    loaded = load_classifier_model(device="cpu")
    pipe = Pipeline(open_source(path, packet_us=1000), loaded, drop_stale=False, event_filter="ba:2000")
    stats = pipe.run()
    assert stats.events_read == ev.size
    assert stats.events_filtered == ev.size - kept.size
    assert stats.events_binned == kept.size and stats.events_late == 0
    assert stats.filter == "ba:2000" and stats.filter_removed_share == pytest.approx(1 - kept.size / ev.size)
    windows = list(pipe.binning.binner((128, 128))(np.array_split(kept, 31)))
    assert [(p.t_start, p.t_end, p.events) for p in pipe.predictions] == \
        [(w.t_start, w.t_end, w.events) for w in windows]


def test_set_filter_takes_effect_and_counts_stay_whole(real_data):
    from dvsstream.stream.pipeline import Pipeline

    path = real_data(GESTURE)
    ev, kept = offline("refractory:1000", path)
    pipe = Pipeline(open_source(path, packet_us=1000), None, drop_stale=False, event_filter="ba:2000")
    pipe.set_filter("refractory:1000")  # before the first packet: this filter sees every event
    assert pipe.filter_spec == "refractory:1000"
    stats = pipe.run()
    assert stats.events_filtered == ev.size - kept.size and stats.events_binned == kept.size
    assert stats.events_read == ev.size


def test_run_reports_the_share_removed(real_data, tmp_path, capsys):
    path = real_data(GESTURE)
    report_path = tmp_path / "run.json"
    assert main(["run", "--source", str(path), "--device", "cpu", "--quiet", "--duration", "1",
                 "--filter", "ba:2000", "--json-out", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["filter"] == "ba:2000" and report["events_filtered"] > 0
    assert report["events_read"] == (report["events_binned"] + report["events_out_of_bounds"] + report["events_late"]
                                     + report["events_outside_roi"] + report["events_shed"] + report["events_filtered"])
    share = 100 * report["events_filtered"] / report["events_read"]
    assert f"{report['events_filtered']:,} removed by --filter ba:2000 ({share:.1f} %)" in capsys.readouterr().err
