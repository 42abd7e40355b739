"""Every message speaks the command line's language (issue 24, item 3).

A broad list of bad command lines -- every verb with missing files, bad values, bad names
-- runs through :func:`dvsstream.cli.main` in-process. Each must end with exit status 2 and
one line on stderr (``dvsstream: error: ...``), nothing on stdout, and no message may name
a Python function, parameter or attribute, a traceback, a site-packages path or a Python
warning class (:func:`python_words`). Warnings raised while a command runs are collected
with the interpreter's default filters and count as printed.

Then one test per example of the issue, through a real subprocess where what a user sees
depends on the process (torch's warnings, ``python -m dvsstream``).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from cli_user import as_a_user_in, write_user_inputs  # tests/
from dvsstream.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "dvsstream" / "data" / "gesture_tiny.pt"


# ------------------------------------------------------------------ the check
def _option_dests() -> set[str]:
    """The Python names (``dest``) of every option of every verb that differ from the
    option's spelling (``sensor_size`` for ``--sensor-size``): a message naming one
    speaks Python where the command line says ``--sensor-size``."""
    dests = set()
    parser = build_parser()
    for action in parser._actions:
        for sub in getattr(action, "choices", None) or {}:
            for a in action.choices[sub]._actions:
                if "_" in a.dest and a.option_strings:
                    dests.add(a.dest)
    return dests


#: Python's names for what the command line calls otherwise
PYTHON_NAMES = _option_dests() | {"out_of_bounds", "special_events", "skipped_events", "num_classes", "weights_only",
                                  "map_location", "state_dict", "img_size", "n_bins", "window_us", "hop_us"}
PATTERNS = [
    (re.compile(r"\b[a-z][a-z0-9_]+=[\w(\[{'\"]"), "a keyword argument (name=value)"),
    (re.compile(r"\b[A-Za-z_]\w*\(\)"), "a function call (name())"),
    (re.compile(r"(?<![\w/~.\\-])\.[a-z]\w*_\w+"), "an attribute (.name_with_underscores)"),
    (re.compile(r"Traceback|File \"|site-packages|dist-packages"), "a traceback or a library path"),
    (re.compile(r"\b\w*(Warning|Error)\b|\bwarnings\.warn"), "a Python warning or exception class"),
    (re.compile(r"(?<![-\w])(" + "|".join(sorted(PYTHON_NAMES)) + r")\b"), "a Python parameter name"),
]


def python_words(text: str, argv: list[str]) -> list[str]:
    """What in ``text`` (a command's output) is Python rather than the command line's
    language; the command's own arguments (paths, ``synthetic:rate=...``) echoed back
    are the user's words and not judged."""
    words = set(argv) | {"key=value"}  # how a synthetic: source's options are written
    words |= {part for arg in argv if arg.startswith("synthetic:") for part in arg[10:].split(",")}
    for arg in sorted(words, key=len, reverse=True):
        if len(arg) > 1:
            text = text.replace(arg, " ")
    found = []
    for pattern, what in PATTERNS:
        for m in pattern.finditer(text):
            found.append(f"{what}: {m.group(0)!r} in {text[max(0, m.start() - 60):m.end() + 60]!r}")
    return found


def test_the_check_finds_python():
    for text in ("pass sensor_size=(width, height) to set it", "see .special_events for the count",
                 "use load_model() to build it", "counted in out_of_bounds", "/usr/lib/python3/site-packages/x.py",
                 "UserWarning: Detected pickle protocol 4", "build it with num_classes=11"):
        assert python_words(text, []), text
    for text in ("dvsstream: error: --sensor-size 0x0: must be positive", "T=8 bins", "rec.h5: no such file",
                 "the models are: spikformer_dvs, spikformer_dvs_tiny", "ROOT/.dvsstream-cache", "./out_1.h5",
                 "warning: 3 event(s) outside the 64x64 sensor were dropped and counted"):
        assert not python_words(text, []), (text, python_words(text, []))
    assert not python_words("synthetic:rate=nan: rate must be a finite number", ["synthetic:rate=nan"])


# ------------------------------------------------------------------ the playground
@pytest.fixture(scope="module")
def play(tmp_path_factory):
    """Inputs: a short recording, a tonic .npy, the shipped checkpoint, a file that is no
    checkpoint, one that torch reads only fully unpickled (saved with pickle protocol 4,
    whose loading makes torch warn), an empty dataset root, a folder, previous outputs."""
    import torch

    root = tmp_path_factory.mktemp("messages")
    write_user_inputs(root, seed=1)
    state = torch.load(SHIPPED, weights_only=True)
    state["meta"]["saved"] = datetime.datetime(2024, 1, 1)  # a Python object: read only when trusted
    torch.save(state, root / "pickle.pt", pickle_protocol=4)  # torch's weights-only reader warns of protocol 4
    for name in ("folder", "data", "home"):
        (root / name).mkdir()
    return root


@pytest.fixture(autouse=True)
def _isolated(play, monkeypatch):
    as_a_user_in(play, monkeypatch)


def _call(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)``: exit status, stdout, stderr with the warnings raised meanwhile
    appended as Python would print them (its default filters, every occurrence)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)  # hidden by Python's defaults
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    text = err.getvalue() + "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno)
                                    for w in caught)
    return code, out.getvalue(), text


def _one_line_error(argv: list[str], needle: str | None = None) -> str:
    code, out, err = _call(argv)
    what = f"dvsstream {' '.join(argv)}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"{what}: exit {code}\n{out[-1500:]}\n{err[-1500:]}"
    assert len(lines) == 1 and lines[0].startswith("dvsstream: error: "), f"{what}:\n{err[-3000:]}"
    assert not out.strip(), f"{what}: printed before its error:\n{out[-1500:]}"
    found = python_words(out + err, argv)
    assert not found, f"{what}:\n" + "\n".join(found)
    if needle is not None:
        assert needle in lines[0], f"{what}: {lines[0]!r} does not say {needle!r}"
    return lines[0]


DATASET = ["--dataset", "dvsgesture", "--root", "data"]
#: (argv, a piece of the expected line or None): every verb, missing files, bad values, bad names
BAD = [
    ([], "required"),
    (["bogus"], "invalid choice"),
    (["--foo", "info", "rec.h5"], "--foo"),
    # info
    (["info"], "file"),
    (["info", "missing.h5"], "missing.h5"),
    (["info", "folder"], "folder"),
    (["info", "garbage.pt"], "garbage.pt"),
    (["info", ""], None),
    (["info", "rec.h5", "--peak-bin-us", "0"], "--peak-bin-us"),
    (["info", "rec.h5", "--peak-bin-us", "nan"], "--peak-bin-us"),
    (["info", "rec.h5", "--resiz", "32x32"], "did you mean --resize"),
    (["info", "rec.h5", "--resize", "32x32"], "--resize 32x32"),
    (["info", "rec.h5", "--roi", "-10,0,64,64"], "not inside the 128x128 sensor"),
    (["info", "rec.h5", "--roi", "1,2,3"], "--roi"),
    (["info", "rec.h5", "--model-size", "axb"], "--model-size"),
    (["info", "rec.h5", "--sensor-size", "0x0"], "--sensor-size"),
    (["info", "rec.h5", "extra"], "extra"),
    # convert
    (["convert", "missing.h5", "out.h5"], "missing.h5"),
    (["convert", "rec.h5", "rec.h5"], "input"),
    (["convert", "rec.h5", "old.h5"], "--force"),
    (["convert", "rec.h5", "no/such/x.h5"], "no/such"),
    (["convert", "rec.h5", "out.h5", "--roi", "-1,0,10,10"], "not inside"),
    (["convert", "garbage.pt", "out.h5"], "garbage.pt"),
    # record
    (["record", "--source", "missing.h5", "--out", "o.h5"], "missing.h5"),
    (["record", "--source", "bogus://x", "--out", "o.h5"], "scheme"),
    (["record", "--source", "synthetic:rate=nan", "--out", "o.h5"], "rate"),
    (["record", "--source", "synthetic:bogus=1", "--out", "o.h5"], "bogus"),
    (["record", "--source", "rec.h5", "--out", "o.h5", "--duration", "-1"], "--duration"),
    (["record", "--source", "rec.h5", "--out", "o.h5", "--speed", "0"], "--speed"),
    (["record", "--source", "rec.h5", "--out", "rec.h5", "--force"], "input"),
    (["record", "--source", "rec.h5"], "--out"),
    # replay
    (["replay", "missing.h5"], "missing.h5"),
    (["replay", "rec.h5", "--window-ms", "1e12"], "--window-ms"),
    (["replay", "rec.h5", "--bins", "0"], "--bins"),
    (["replay", "rec.h5", "--hop-ms", "7"], "--hop-ms"),
    (["replay", "rec.h5", "--speed", "nan"], "--speed"),
    (["replay", "rec.h5", "--window-ms", "10", "--bins", "3"], "--bins"),
    (["replay", "rec.h5", "--downsample", "-2"], "--downsample"),
    (["replay", "rec.h5", "--downsample", "3"], "rec.h5: the 128x128 region does not divide into blocks of 3x3"),
    # run
    (["run", "--source", "missing.h5"], "missing.h5"),
    (["run", "--source", "rec.h5", "--checkpoint", "garbage.pt"], "garbage.pt"),
    (["run", "--source", "rec.h5", "--checkpoint", "pickle.pt"], "--trust-checkpoint"),
    (["run", "--source", "rec.h5", "--checkpoint", "missing.pt"], "missing.pt"),
    (["run", "--source", "rec.h5", "--checkpoint", "rec.h5"], "rec.h5"),
    (["run", "--source", "rec.h5", "--window-ms", "1e12"], "--window-ms"),
    (["run", "--source", "rec.h5", "--roi", "-10,0,64,64"], "not inside"),
    (["run", "--source", "rec.h5", "--roi", "0,0,0,0"], None),
    (["run", "--source", "rec.h5", "--resize", "32x32"], "--resize"),
    (["run", "--source", "rec.h5", "--roi", "0,0,63,64"], "frames of 64x64 (the model's input or --resize)"),
    (["run", "--source", "rec.h5", "--mode", "bogus"], "--mode"),
    (["run", "--source", "rec.h5", "--device", "foo"], "--device"),
    (["run", "--source", "rec.h5", "--device", "cuda:99"], "cuda:99"),
    (["run", "--source", "rec.h5", "--json-out", "rec.h5", "--force"], "input"),
    (["run", "--source", "rec.h5", "--json-out", "no/such/r.json"], "no/such"),
    (["run", "--source", "rec.h5", "--bins", "7"], "--bins"),
    (["run", "--source", "rec.h5", "--hop-ms", "1e12"], "--hop-ms"),
    (["run", "--source", "rec.h5", "--start", "-5"], "--start"),
    (["run", "--source", "rec.h5", "--sensor-size", "-1x5"], "--sensor-size"),
    (["run", "--source", "rec.h5", "--window"], "--window"),
    (["run", "--source", "unix:///nonexistent-dvsstream.sock", "--duration", "1"], None),
    # render
    (["render", "missing.h5", "--out", "a.gif"], "missing.h5"),
    (["render", "rec.h5", "--out", "a.webm"], None),
    (["render", "rec.h5", "--out", "old.mp4"], "--force"),
    (["render", "rec.h5", "--out", "a.gif", "--fps", "0"], "--fps"),
    (["render", "rec.h5", "--out", "a.gif", "--checkpoint", "garbage.pt"], "garbage.pt"),
    (["render", "rec.h5", "--out", "a.gif", "--checkpoint", "pickle.pt"], "--trust-checkpoint"),
    (["render", "rec.h5", "--out", "a.gif", "--start", "1000"], "--start"),
    # gui
    (["gui", "--checkpoint", "missing.pt"], "missing.pt"),
    (["gui", "--source", "missing.h5"], "missing.h5"),
    (["gui", "--speed", "0"], "--speed"),
    (["gui", "--exit-after", "-1"], "--exit-after"),
    (["gui", "--device", "foo"], "--device"),
    # eval
    (["eval", "--dataset", "dvsgesture", "--root", "missing", "--checkpoint", "ck.pt", "--out", "res"], "--root"),
    (["eval", *DATASET, "--checkpoint", "ck.pt", "--out", "res", "--model", "nosuchmodel"], "the models are"),
    (["eval", "--dataset", "mnist", "--root", "data", "--checkpoint", "ck.pt", "--out", "res"], "--dataset"),
    (["eval", *DATASET, "--checkpoint", "garbage.pt", "--out", "res"], "garbage.pt"),
    (["eval", *DATASET, "--checkpoint", "missing.pt", "--out", "res"], "missing.pt"),
    (["eval", *DATASET, "--checkpoint", "ck.pt", "--out", "res"], "data"),
    (["eval", *DATASET, "--checkpoint", "ck.pt", "--out", "res", "--batch-size", "0"], "--batch-size"),
    (["eval", *DATASET, "--checkpoint", "ck.pt", "--out", "res", "--workers", "-1"], "--workers"),
    (["eval", *DATASET, "--checkpoint", "ck.pt", "--out", "res", "--export", "ck.pt", "--force"], "input"),
    (["eval", *DATASET, "--checkpoint", "ck.pt", "--out", "rec.h5"], "--out"),
    (["eval", *DATASET, "--checkpoint", "ck.pt"], "--out"),
    # train
    (["train", *DATASET, "--out", "res", "--model", "nosuchmodel"], "the models are"),
    (["train", *DATASET, "--out", "res", "--init", "garbage.pt"], None),  # the data are looked at first
    (["train", *DATASET, "--out", "res", "--init", "missing.pt"], "missing.pt"),
    (["train", "--dataset", "dvsgesture", "--root", "missing", "--out", "res"], "--root"),
    (["train", *DATASET, "--out", "res", "--epochs", "0"], "--epochs"),
    (["train", *DATASET, "--out", "res", "--lr", "nan"], "--lr"),
    (["train", *DATASET, "--out", "res", "--frames", "bogus"], "--frames"),
    (["train", *DATASET, "--out", "res"], "data"),
    # synth
    (["synth", "--out", "set", "--duration", "0"], "--duration"),
    (["synth", "--out", "no/such/set"], "no/such"),
    (["synth", "--out", "rec.h5"], "rec.h5"),
    (["synth", "--out", "set", "--format", "zip"], "--format"),
    (["synth", "--out", "set", "--samples-per-class", "0"], "--samples-per-class"),
]


@pytest.mark.parametrize("argv, needle", BAD, ids=[" ".join(a) or "(none)" for a, _ in BAD])
def test_bad_command_line_is_one_line_in_the_command_lines_language(argv, needle):
    _one_line_error(argv, needle)


# ------------------------------------------------------------------ the examples
def _subprocess(cwd: Path, *args: str, module: str = "dvsstream") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(HOME=str(cwd / "home"), PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_python_dash_m_dvsstream(play):
    proc = _subprocess(play, "--version")
    assert proc.returncode == 0 and proc.stdout.startswith("dvsstream "), proc.stderr
    proc = _subprocess(play, "info", "rec.h5")
    assert proc.returncode == 0 and "events:      3,000" in proc.stdout, proc.stderr


def test_checkpoint_needing_full_unpickling_no_torch_warning(play):
    """Before: torch's two-line UserWarning with its site-packages path, then our line."""
    proc = _subprocess(play, "run", "--source", "rec.h5", "--checkpoint", "pickle.pt")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "dvsstream: error: cannot read checkpoint pickle.pt: it holds Python objects besides weights; if you trust "
        "the file (unpickling it may run code), pass --trust-checkpoint"], proc.stderr
    # trusted, it is read (torch's warning silenced there too) and runs
    proc = _subprocess(play, "run", "--source", "rec.h5", "--checkpoint", "pickle.pt", "--trust-checkpoint", "--quiet")
    assert proc.returncode == 0 and "Warning" not in proc.stderr and "site-packages" not in proc.stderr, proc.stderr


def test_events_outside_the_sensor_one_line_with_the_count(real_data):
    """Before: ``run`` printed "N event(s) outside the 64x64 sensor were dropped" once per
    packet (45 lines); now one line with the total, the same as ``info``'s."""
    path = str(real_data("neal_walking.aedat"))
    code, out, err = _call(["run", "--source", path, "--sensor-size", "64x64", "--quiet"])
    assert code == 0, err
    dropped = [line for line in err.splitlines() if "outside the 64x64 sensor" in line]
    summary = next(line for line in err.splitlines() if "out of bounds" in line)
    total = int(re.search(r"([\d,]+) out of bounds", summary).group(1).replace(",", ""))
    assert total > 0 and dropped == [f"warning: {total} event(s) outside the 64x64 sensor were dropped and counted"]
    code, out_info, err_info = _call(["info", path, "--sensor-size", "64x64"])
    assert code == 0 and [line for line in err_info.splitlines() if "outside" in line] == dropped
    assert not python_words(out + err + out_info + err_info, [path])


def test_per_packet_warnings_count_across_packets(tmp_path):
    """Readers that meet a condition packet after packet keep one line whose count is the
    total: AEDAT 2.0 special events, AEDAT 3.1 non-polarity events, events beyond the sensor."""
    from dvsstream.events import make_events
    from dvsstream.io import open_source
    from dvsstream.io.aedat2 import AEDAT2_RECORD, write_aedat2

    rng = np.random.default_rng(2)
    n = 5000
    ev = make_events(np.sort(rng.integers(0, 1_000_000, n)), rng.integers(0, 128, n), rng.integers(0, 128, n),
                     rng.integers(0, 2, n))
    path = write_aedat2(tmp_path / "rec.aedat", ev)
    raw = path.read_bytes()
    body = len(raw) - n * AEDAT2_RECORD.itemsize
    rec = np.frombuffer(raw[body:], dtype=AEDAT2_RECORD).copy()
    rec["addr"][::10] |= 0x8000  # 500 special events, spread over every chunk
    path.write_bytes(raw[:body] + rec.tobytes())
    with open_source(path, chunk_events=300, sensor_size=(64, 64)) as src:
        kept = sum(p.size for p in src)
        stats = src.stats
    assert stats.packets_read > 10
    special = [w for w in stats.warnings if "special" in w]
    assert special == ["rec.aedat: 500 special (external / timestamp-reset) event(s) carry no pixel and were skipped"]
    outside = [w for w in stats.warnings if "outside" in w]
    assert outside == [f"{stats.out_of_bounds} event(s) outside the 64x64 sensor were dropped and counted"]
    assert kept + stats.out_of_bounds + 500 == n
    assert not python_words(" ".join(stats.warnings), [])


def test_prophesee_geometry_warnings_name_the_option(real_data):
    """Before: "pass sensor_size=(width, height) to set it"."""
    path = str(real_data("ncars_sample.dat"))
    code, out, err = _call(["info", path])
    assert code == 0 and "set it with --sensor-size WxH" in err, err
    code, out2, err2 = _call(["info", path, "--sensor-size", "64x64"])
    assert code == 0 and "the given sensor size 64x64" in err2, err2
    assert not python_words(out + err + out2 + err2, [path])


def test_unknown_model_lists_the_models():
    """Before: "ck.pt holds a spikformer_dvs_tiny but --model nosuchmodel was given"."""
    from dvsstream.models import list_models

    line = _one_line_error(["eval", *DATASET, "--checkpoint", "ck.pt", "--out", "res", "--model", "nosuchmodel"])
    assert line == f"dvsstream: error: --model nosuchmodel: unknown model; the models are: {', '.join(list_models())}"
    line = _one_line_error(["train", *DATASET, "--out", "res", "--model", "spikformer_dvs_tny"])
    assert "did you mean spikformer_dvs_tiny?" in line
    assert not Path("res").exists()


def test_window_too_long_names_window_ms():
    """Before: "--hop-ms 50 must be a multiple of the bin length 1.25e+11 ms"."""
    for verb in (["run", "--source", "rec.h5"], ["replay", "rec.h5"]):
        line = _one_line_error([*verb, "--window-ms", "1e12"])
        assert "argument --window-ms: '1e12' ms is too long a window (at most 3600000 ms, an hour)" in line
        assert "--hop-ms" not in line


def test_negative_roi_parses_and_is_refused_as_a_region():
    """Before: "argument --roi: expected one argument"; only --roi=-10,... worked."""
    for argv in (["run", "--source", "rec.h5", "--roi", "-10,0,64,64"], ["info", "rec.h5", "--roi", "-10,0,64,64"],
                 ["run", "--source", "rec.h5", "--roi=-10,0,64,64"]):
        line = _one_line_error(argv)
        assert "region 64x64 at (-10, 0) is not inside the 128x128 sensor" in line, line
    # a negative number is a value too (refused by the option's type, by name)
    assert "'-1e3' must be 0 or more" in _one_line_error(["run", "--source", "rec.h5", "--start", "-1e3"])


def test_no_abbreviations():
    """Before: ``info F --resiz 32x32`` took --resiz for --resize (and printed 5 lines)."""
    line = _one_line_error(["info", "rec.h5", "--resiz", "32x32"])
    assert line == ("dvsstream: error: unrecognized arguments: --resiz 32x32; did you mean --resize? "
                    "(see dvsstream info --help)")
    _one_line_error(["run", "--source", "rec.h5", "--check", "ck.pt"], "--check")
    _one_line_error(["eval", *DATASET, "--checkpoint", "ck.pt", "--out", "res", "--batch", "4"], "--batch")


def test_apps_refuse_abbreviations(play):
    """The scripts in apps/ too (their parsers are the CLI's, or set up by app_parser)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(HOME=str(play / "home"), PYTHONPATH=str(REPO))
    for script, args in (("eval_gesture.py", ["--root", "data", "--checkpoint", "ck.pt", "--batch", "4"]),
                         ("live_gui.py", ["--check", "ck.pt"]), ("replay_gestures.py", ["--exit", "1"])):
        proc = subprocess.run([sys.executable, str(REPO / "apps" / script), *args], cwd=play, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr, (script, proc.stderr)


def test_checkpoint_architecture_mismatch_names_the_option(tmp_path):
    """Before: "... with dim=64 but the model has dim=256; use load_model() ..."."""
    from dvsstream.models import CheckpointError, create_model, load_checkpoint, save_checkpoint

    save_checkpoint(create_model("spikformer_dvs_tiny", num_classes=11), tmp_path / "tiny.pt")
    big = create_model("spikformer_dvs_small" if "spikformer_dvs_small" in _models() else "spikformer_dvs",
                       num_classes=11)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(big, tmp_path / "tiny.pt")
    message = str(info.value)
    assert "--model spikformer_dvs_tiny" in message and not python_words(message, [str(tmp_path / "tiny.pt")])


def _models() -> list[str]:
    from dvsstream.models import list_models

    return list_models()


# ------------------------------------------------------------------ the fuzz test's command lines
def _fuzz_strategies():
    """The fuzz test's generated command lines (tests/cli/test_cli_fuzz.py): the same
    names of inputs as this module's playground."""
    pytest.importorskip("hypothesis")
    import test_cli_fuzz as fuzz  # beside this file (pytest puts the folder on sys.path)
    from hypothesis import strategies as st

    return st.one_of(fuzz.info_argv(), fuzz.convert_argv(), fuzz.record_argv(), fuzz.replay_argv(), fuzz.run_argv(),
                     fuzz.render_argv(), fuzz.gui_argv(), fuzz.dataset_argv(), fuzz.synth_argv(), fuzz.valid_argv())


def test_fuzzed_command_lines_speak_the_command_lines_language(play):
    """Whatever the fuzz test throws at the verbs: an error is one line, and no message
    (errors, warnings, notes, results) is Python."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings

    inputs = {p: p.read_bytes() for p in play.iterdir() if p.is_file()}
    keep = set(inputs) | {play / name for name in ("folder", "data", "home")}

    @settings(max_examples=int(os.environ.get("DVSSTREAM_FUZZ_EXAMPLES", "40")), deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck), database=None)
    @given(argv=_fuzz_strategies())
    def case(argv):
        try:
            code, out, err = _call(argv)
            what = f"dvsstream {' '.join(argv)}"
            assert code in (0, 2), f"{what}: exit {code}\n{err[-2000:]}"
            if code == 2:
                lines = [line for line in err.splitlines() if line.strip()]
                # (the window's own "dvsstream gui: no display ..." is item 4's)
                last = lines[-1] if lines else ""
                assert last.startswith(("dvsstream: error: ", "dvsstream gui: ")), f"{what}:\n{err[-2000:]}"
                assert all(line.startswith(("warning: ", "note: ")) for line in lines[:-1]), f"{what}:\n{err[-2000:]}"
            found = python_words(out + err, argv)
            assert not found, f"{what}:\n" + "\n".join(found)
        finally:
            for p in play.iterdir():
                if p not in keep:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            for p, data in inputs.items():
                if not p.is_file() or p.read_bytes() != data:
                    p.write_bytes(data)

    assert hypothesis  # the module, for the skip above
    case()
