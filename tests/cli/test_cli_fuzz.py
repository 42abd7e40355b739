"""A command-line fuzz test: every verb of ``dvsstream`` driven in-process through
:func:`dvsstream.cli.main` (and a few cases through a real subprocess) with generated bad
and odd values -- numbers (NaN, inf, negative, huge, not numbers), paths (missing, a
folder, the input itself, a file in a missing folder, an existing output), URIs (unknown
schemes, a refused TCP port, ``synthetic:`` with odd options) and their combinations.

For every case:

* no traceback, and the exit status is 0 or 2;
* on an error, at most 3 lines on stderr;
* nothing is created outside the test's folder (the command runs with the folder as its
  working directory and HOME; the repository tree and the folder's siblings are compared
  before and after);
* every input file is byte-identical afterwards, and after a refused command (exit 2)
  every file that was there before keeps its checksum (recordings, notes, a report and
  the window's settings named as outputs or ``--settings`` included);
* sizes up to 1e12 on every verb (:func:`huge_argv`) are refused before any work or used
  at what fits (issue 24: nothing exhausts the machine).

Long work is avoided by construction: the recordings are short (0.3 s), synthetic
sources carry a duration, paced replays go at least at half speed, synth always gets a
bad value, and so do ``teach`` and ``pretrain`` (:func:`_refused_by_construction`: one
value that is refused whatever else is drawn, every such value also run alone; a refused
``teach`` or ``pretrain`` writes nothing at all, no file and no folder). About 500 cases in
under a minute on 2 cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from cli_user import as_a_user_in, write_user_inputs  # noqa: E402  (tests/)
from dvsstream.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
#: previous outputs: replaced only with --force
PREVIOUS = ("old.h5", "old.mp4", "notes.txt", "report.json", "settings.json", "model.pt")
FUZZ = settings(max_examples=int(os.environ.get("DVSSTREAM_FUZZ_EXAMPLES", "25")), deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck), database=None)
#: teach and pretrain: four times as many (refused, and most before reading a recording)
FUZZ_MORE = settings(FUZZ, max_examples=4 * FUZZ.max_examples)
#: cases run, per verb (reported by test_zz_report)
COUNTS: dict[str, int] = {}
EXITS: dict[int, int] = {}


# ------------------------------------------------------------------ the playground
@pytest.fixture(scope="module")
def play(tmp_path_factory):
    """A folder with the inputs (a short HDF5 recording, a tonic .npy with x >= 128, a
    checkpoint, a file that is no checkpoint, an empty dataset root, a folder) and
    the state to compare: hashes of the inputs, the repository tree, the siblings."""
    root = tmp_path_factory.mktemp("fuzz")
    rng = write_user_inputs(root, seed=0)
    (root / "notes.txt").write_text("a user's notes\n")
    (root / "report.json").write_text('{"predictions": [], "source": "rec.h5"}\n')
    (root / "settings.json").write_text('{"dvsstream": "gui settings", "speed": 2.0}\n')
    (root / "folder").mkdir()
    (root / "data").mkdir()
    (root / "home").mkdir()
    (root / "model.pt").write_bytes(b"a previous teach checkpoint")
    inputs = [root / name for name in ("rec.h5", "ev.npy", "ck.pt", "garbage.pt")]
    inputs += _teach_play(root, rng)
    previous = {root / name: (root / name).read_bytes() for name in PREVIOUS}
    state = {"root": root, "inputs": {p: _hash(p) for p in inputs}, "previous": previous, "repo": _tree(REPO),
             "bytes": {p: p.read_bytes() for p in inputs},
             "siblings": sorted(p.name for p in root.parent.iterdir())}
    return state


#: teach's and pretrain's folders (see :func:`_teach_play`)
TEACH_FOLDERS = ("teach", "teach_one", "teach_bad", "teach_short", "teach_loose", "teach_same", "pretrain",
                 "pretrain_bad", "model_report")


def _teach_play(root: Path, rng) -> list[Path]:
    """The class folders of ``teach`` and the folders of ``pretrain`` (every file an
    input): ``teach/{a,b}/`` two classes of a 2.2 s recording each (a valid ROOT: what
    makes a case refused is elsewhere), ``teach_one/`` a single class, ``teach_bad/``
    a class whose only recording is unreadable (HDF5's first bytes, then junk),
    ``teach_short/`` a class of 0.3 s, ``teach_loose/`` a recording directly in ROOT,
    ``teach_same/`` two folders that are one label (``Wave``, ``wave``); ``pretrain/``
    recordings, ``pretrain_bad/`` only an unreadable one; ``model_report/`` the report
    of the previous ``model.pt``."""
    from dvsstream.events import make_events
    from dvsstream.io.hdf5 import RecordingWriter

    def recording(path: Path, seconds: float) -> Path:
        n = int(2000 * seconds)
        ev = make_events(np.sort(rng.integers(0, int(seconds * 1e6), n)), rng.integers(0, 128, n),
                         rng.integers(0, 128, n), rng.integers(0, 2, n))
        path.parent.mkdir(parents=True, exist_ok=True)
        with RecordingWriter(path, (128, 128)) as w:
            w.write(ev)
        return path

    broken = b"\x89HDF\r\n\x1a\n" + b"\x00junk, not an HDF5 file" * 20
    for top in ("teach", "teach_bad", "teach_short", "teach_loose"):
        recording(root / top / "a" / "rec0.h5", 2.2)
    recording(root / "teach" / "b" / "rec0.h5", 2.2)
    recording(root / "teach_one" / "a" / "rec0.h5", 2.2)
    (root / "teach_bad" / "b").mkdir()
    (root / "teach_bad" / "b" / "broken.h5").write_bytes(broken)
    recording(root / "teach_short" / "b" / "rec0.h5", 0.3)
    recording(root / "teach_loose" / "b" / "rec0.h5", 2.2)
    recording(root / "teach_loose" / "stray.h5", 0.5)
    recording(root / "teach_same" / "Wave" / "rec0.h5", 2.2)
    recording(root / "teach_same" / "wave" / "rec0.h5", 2.2)
    recording(root / "pretrain" / "r0.h5", 1.0)
    recording(root / "pretrain" / "day2" / "r1.h5", 1.0)
    (root / "pretrain_bad").mkdir()
    (root / "pretrain_bad" / "broken.h5").write_bytes(broken)
    (root / "model_report").mkdir()
    (root / "model_report" / "report.json").write_text('{"accuracy": 0.5}\n')
    return sorted(p for top in TEACH_FOLDERS for p in (root / top).rglob("*") if p.is_file())


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(top: Path) -> set[str]:
    """Every path under ``top`` but caches, virtual environments and git's own files."""
    skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "dvsstream.egg-info"}
    found = set()
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".venv")]
        found.update(os.path.relpath(os.path.join(folder, f), top) for f in files)
    return found


@pytest.fixture(autouse=True)
def _isolated(play, monkeypatch):
    """cwd and HOME in the playground; no display (the GUI says so instead of opening)."""
    as_a_user_in(play["root"], monkeypatch)


def _call(argv: list[str], verb: str) -> tuple[int, str, str]:
    """``main(argv)`` with stdout and stderr captured; SystemExit counts as its code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # main should not let one through, but judge it anyway
            code = exc.code if isinstance(exc.code, int) else 2
    COUNTS[verb] = COUNTS.get(verb, 0) + 1
    EXITS[code] = EXITS.get(code, 0) + 1
    if os.environ.get("DVSSTREAM_FUZZ_LOG"):  # every case and its last stderr line, for a look by eye
        print(f"FUZZ {code} | {' '.join(argv)} | {err.getvalue().strip().splitlines()[-1:]}", file=sys.__stdout__, flush=True)
    return code, out.getvalue(), err.getvalue()


def _check(play, argv: list[str], code: int, out: str, err: str) -> None:
    what = f"dvsstream {' '.join(argv)}"
    assert "Traceback" not in out + err, f"{what}\n{err[-3000:]}"
    assert code in (0, 2), f"{what}: exit {code}\n{err[-2000:]}"
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert 1 <= len(lines) <= 3, f"{what}: {len(lines)} lines on stderr\n{err[-2000:]}"
    replaceable = "--force" in argv
    named = _outputs(argv, play["root"]) if replaceable and code == 0 else set()
    for path, digest in play["inputs"].items():
        if path.resolve() in named:
            continue  # the command's own output, replaced as asked (_fresh restores it)
        assert path.is_file() and _hash(path) == digest, f"{what}: changed the input {path.name}"
    for path, data in play["previous"].items():
        assert path.is_file(), f"{what}: removed the previous output {path.name}"
        if not (replaceable and code == 0):
            assert path.read_bytes() == data, f"{what}: changed the previous output {path.name}"
    assert sorted(p.name for p in play["root"].parent.iterdir()) == play["siblings"], f"{what}: wrote beside"
    assert _tree(REPO) == play["repo"], f"{what}: wrote into the repository"
    stray = [p.name for p in play["root"].iterdir() if p.name.endswith(".tmp") or p.name.startswith(".teach-")]
    assert not stray, f"{what}: left temporaries {stray}"


def _outputs(argv: list[str], root: Path) -> set[Path]:
    """The resolved paths ``argv`` names as outputs (``--out``, ``--json-out``, convert's OUTPUT...)."""
    named = [argv[i + 1] for i, a in enumerate(argv[:-1])
             if a in ("--out", "--json-out", "--export", "--screenshot", "--export-clip")]
    if argv[0] == "convert" and len(argv) > 2:
        named.append(argv[2])
    return {(root / n).resolve() for n in named if n}


def _fresh(play) -> None:
    """Remove what a successful case wrote (outputs), keeping the inputs."""
    keep = {p.name for p in play["inputs"]} | set(PREVIOUS) | {"folder", "data", "home"} | set(TEACH_FOLDERS)
    for p in play["root"].iterdir():
        if p.name not in keep:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    for top in TEACH_FOLDERS:  # what a command wrote inside teach's and pretrain's folders
        for p in sorted((play["root"] / top).rglob("*"), reverse=True):
            if p not in play["inputs"] and not any(p in q.parents for q in play["inputs"]):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    for path, data in {**play["previous"], **play["bytes"]}.items():
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)


# ------------------------------------------------------------------ values
NUMBERS = st.one_of(
    st.sampled_from(["0", "-1", "-0.5", "nan", "-nan", "inf", "-inf", "1e308", "1e400", "99999999999999999999",
                     "abc", "", " ", "0x10", "1,5", "2", "0.5", "1e-9", "3", "16", "50", "400"]),
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
SPEEDS = st.sampled_from(["0", "-1", "-2", "nan", "inf", "abc", "1e-30", "0.5", "4", "1e6"])
INPUTS = st.sampled_from(["rec.h5", "ev.npy", "garbage.pt", "folder", "missing.h5", "no/such/dir/x.h5", "",
                          "old.h5", "/"])
OUTPUTS = st.sampled_from(["out.h5", "rec.h5", "ev.npy", "folder", "no/such/dir/x.h5", "/", "old.h5", "",
                           "./rec.h5", "folder/../rec.h5", "/nonexistent-dvsstream/x.h5", "notes.txt", "report.json",
                           "out.txt", "x.mp4", "s.png", "r.json"])
#: --settings: recordings, notes, a report, the window's own settings, a new name
SETTINGS = st.sampled_from(["rec.h5", "old.h5", "notes.txt", "report.json", "settings.json", "new.json", "folder",
                            "ck.pt"])
#: sizes up to the largest an option takes (1e12)
HUGE = st.sampled_from(["1e12", "999999999999", "1000000000", "1e9", "4294967296", "2147483648", "65536"])
HUGE_SIZES = st.sampled_from(["1000000000000x1000000000000", "100000x100000", "1000000x1", "65536x65536"])
SOURCES = st.sampled_from(["rec.h5", "ev.npy", "garbage.pt", "folder", "missing.h5", "bogus://x", "http://x",
                           "tcp://127.0.0.1:1", "unix:///nonexistent-dvsstream.sock", "camera:", "camera:NOPE",
                           "synthetic:rate=nan", "synthetic:rate=-1", "synthetic:rate=1e4,duration=0.2",
                           "synthetic:duration=inf", "synthetic:packet_us=0,duration=0.2",
                           "synthetic:rate=1e4,duration=0.2,noise=-1", "synthetic:bogus=1", "synthetic:rate="])
CHECKPOINTS = st.sampled_from(["ck.pt", "garbage.pt", "folder", "missing.pt", "rec.h5", "no/such/ck.pt"])
DEVICES = st.sampled_from(["cpu", "cpu", "foo", "cuda:99", "", "CPU", "cuda:x"])
REGIONS = st.sampled_from(["0,0,64,64", "-1,0,10,10", "0,0,0,0", "1000,1000,10,10", "a,b,c,d", "1,2,3", "0,0,128,128"])
SIZES = st.sampled_from(["64x64", "0x0", "-1x5", "axb", "32x32", "100000x100000", "64"])


def _options(draw, table: dict) -> list[str]:
    """A random subset of ``table`` (option -> strategy); flags map to None."""
    argv: list[str] = []
    for option, strategy in table.items():
        if draw(st.booleans()):
            argv += [option] if strategy is None else [option, draw(strategy)]
    return argv


@st.composite
def info_argv(draw):
    return ["info", draw(INPUTS)] + _options(draw, {"--peak-bin-us": NUMBERS, "--model-size": SIZES,
                                                   "--roi": REGIONS, "--resize": SIZES})


@st.composite
def convert_argv(draw):
    return ["convert", draw(INPUTS), draw(OUTPUTS)] + _options(draw, {"--force": None, "--roi": REGIONS})


@st.composite
def record_argv(draw):
    return ["record", "--source", draw(SOURCES), "--out", draw(OUTPUTS)] + _options(
        draw, {"--duration": NUMBERS, "--speed": SPEEDS, "--force": None})


@st.composite
def replay_argv(draw):
    return ["replay", draw(INPUTS)] + _options(draw, {"--speed": SPEEDS, "--progress-s": NUMBERS,
                                                     "--window-ms": NUMBERS, "--bins": NUMBERS, "--hop-ms": NUMBERS,
                                                     "--downsample": NUMBERS})


@st.composite
def run_argv(draw):
    return ["run", "--source", draw(SOURCES), "--duration", "3"] + _options(draw, {
        "--checkpoint": CHECKPOINTS, "--window-ms": NUMBERS, "--hop-ms": NUMBERS, "--bins": NUMBERS,
        "--mode": st.sampled_from(["step", "window", "bogus"]), "--speed": SPEEDS, "--device": DEVICES,
        "--json-out": OUTPUTS, "--force": None, "--quiet": None, "--roi": REGIONS, "--resize": SIZES,
        "--trust-checkpoint": None})


@st.composite
def render_argv(draw):
    return ["render", draw(INPUTS), "--out", draw(st.sampled_from(["a.gif", "old.mp4", "rec.h5", "folder",
                                                                   "no/dir/a.gif", "a.webm", "ck.pt"]))] + _options(
        draw, {"--checkpoint": CHECKPOINTS, "--start": NUMBERS, "--duration": NUMBERS,
               "--fps": st.sampled_from(["0", "-1", "nan", "1e9", "abc", "5"]), "--device": DEVICES,
               "--force": None})


@st.composite
def gui_argv(draw):
    return ["gui"] + _options(draw, {"--source": SOURCES, "--checkpoint": CHECKPOINTS, "--speed": SPEEDS,
                                     "--screenshot": OUTPUTS, "--exit-after": NUMBERS, "--device": DEVICES,
                                     "--settings": SETTINGS, "--force": None,
                                     "--export-clip": st.sampled_from(["a.gif", "old.mp4", "rec.h5", "x.avi"]),
                                     "--roi": REGIONS, "--resize": SIZES})


@st.composite
def dataset_argv(draw):
    verb = draw(st.sampled_from(["eval", "train"]))
    names = ["dvsgesture", "cifar10dvs", "mnist", "tonic:NMNIST", "tonic:shd"]
    argv = [verb, "--dataset", draw(st.sampled_from(names)),
            "--root", draw(st.sampled_from(["data", "missing", "rec.h5", "/nonexistent-dvsstream"])),
            "--out", draw(st.sampled_from(["res", "rec.h5", "no/such/res", "folder", "/nonexistent-dvsstream/r"]))]
    common = {"--device": DEVICES, "--batch-size": NUMBERS, "--limit": NUMBERS, "--workers": NUMBERS,
              "--cache-dir": st.sampled_from(["cache", "rec.h5", "no/such/cache"])}
    if verb == "eval":
        argv += ["--checkpoint", draw(CHECKPOINTS)]
        argv += _options(draw, {**common, "--export": OUTPUTS, "--force": None, "--trust-checkpoint": None})
    else:
        argv += _options(draw, {**common, "--epochs": NUMBERS, "--lr": NUMBERS, "--init": CHECKPOINTS,
                                "--seed": NUMBERS, "--preset": st.sampled_from(["quick", "paper", "fast", ""]),
                                "--no-test": None})
    return argv


@st.composite
def synth_argv(draw):  # always one bad value: generating a set takes seconds per sample
    return ["synth", "--out", draw(st.sampled_from(["set", "folder", "rec.h5", "no/such/set", "/"])),
            "--duration", draw(st.sampled_from(["0", "-1", "nan", "inf", "abc", ""]))] + _options(
        draw, {"--samples-per-class": NUMBERS, "--workers": NUMBERS, "--seed": NUMBERS,
               "--format": st.sampled_from(["hdf5", "tonic", "both", "zip"])})


#: numbers every numeric option refuses, whatever its type (positive or not, whole or not)
BAD_NUMBERS = st.sampled_from(["nan", "-nan", "inf", "-inf", "-1", "-0.5", "abc", "", " ", "0x10", "1,5", "1e400",
                               "1e13", "99999999999999999999"])


def _refused_by_construction(draw, verb: str, valid: list[str], bad: list[tuple[list[str], set[str]]],
                             table: dict, numeric: tuple[str, ...]) -> list[str]:
    """``verb`` and one value that is refused however the rest is drawn -- an entry of
    ``bad`` (argv, the options it owns), or ``valid`` with a :data:`BAD_NUMBERS` value
    for one of ``numeric`` (every numeric type refuses them) -- then a random subset of
    ``table`` without the options that value owns (none overrides or rescues it). So
    every case is refused before any training, by construction: these verbs train for
    minutes when everything is valid."""
    if draw(st.integers(0, 3)) == 0:
        option = draw(st.sampled_from(numeric))
        core, owned = valid + [option, draw(BAD_NUMBERS)], {option}
    else:
        core, owned = draw(st.sampled_from(bad))
    return [verb] + core + _options(draw, {k: v for k, v in table.items() if k not in owned})


#: teach's values that are refused however the other options are drawn: (argv after the
#: verb, the options they own). ROOT ``teach`` and ``--out m.pt`` are valid.
TEACH_BAD: list[tuple[list[str], set[str]]] = [
    *[([root, "--out", "m.pt"], set()) for root in ("missing", "rec.h5", "folder", "data", "teach_bad", "teach_short",
                                                   "teach_loose", "teach_same", "no/such/dir", "", ".")],
    (["teach_one", "--out", "m.pt"], {"--background-from-quiet"}),  # one class (the quiet ones would be two)
    *[(["teach", "--out", out], set()) for out in ("notes.txt", "rec.h5", "folder", "no/such/m.pt", "",
                                                    "/nonexistent-dvsstream/m.pt", "teach/a/m.pt", "x.h5")],
    (["teach", "--out", "model.pt"], {"--force"}),  # a previous output (and its report folder)
    (["teach", "--out", "m.pt", "--report-dir", "model_report"], {"--report-dir", "--force"}),
    (["teach", "--out", "ck.pt", "--init", "ck.pt", "--force"], {"--init", "--from-scratch"}),
    *[(["teach", "--out", "m.pt", "--report-dir", rep], {"--report-dir"}) for rep in ("rec.h5", "teach/rep",
                                                                                       "no/such/rep")],
    *[(["teach", "--out", "m.pt", "--init", init], {"--init"}) for init in ("garbage.pt", "missing.pt", "folder",
                                                                              "rec.h5", "", "no/such/ck.pt")],
    (["teach", "--out", "m.pt", "--init", "ck.pt", "--from-scratch"], {"--init", "--from-scratch"}),
    *[(["teach", "--out", "m.pt", "--background-name", name], {"--background-name"}) for name in ("", " ")],
    (["teach", "--out", "m.pt", "--model", "bogus"], {"--model"}),
    *[(["teach", "--out", "m.pt", "--device", dev], {"--device"}) for dev in ("cuda:99", "foo", "CPU")],
    (["teach", "--out", "m.pt", "--window-ms", "0.001", "--bins", "2"], {"--window-ms", "--bins"}),
    (["teach", "--out", "m.pt", "--window-ms", "100", "--bins", "4", "--hop-ms", "200"],
     {"--window-ms", "--bins", "--hop-ms"}),
    (["teach", "--out", "m.pt", "--roi", "1000,1000,10,10"], {"--roi", "--sensor-size"}),
    (["teach", "--out", "m.pt", "--resize", "32x32"], {"--resize", "--model"}),
    *[(["teach", "--out", "m.pt", option, "1e12"], {option}) for option in ("--bins", "--epoch-windows",
                                                                           "--min-events", "--window-ms")],
]
TEACH_OPTIONS = {
    "--force": None, "--report-dir": st.sampled_from(["rep", "folder", "model_report", "rec.h5", "teach/rep"]),
    "--model": st.sampled_from(["spikformer_dvs_tiny", "spikformer_dvs", "bogus"]), "--init": CHECKPOINTS,
    "--from-scratch": None, "--trust-checkpoint": None, "--window-ms": NUMBERS, "--hop-ms": NUMBERS,
    "--bins": NUMBERS, "--min-events": NUMBERS, "--background-from-quiet": None,
    "--background-name": st.sampled_from(["nothing", "", "A", "b", "rest"]), "--skip-unreadable": None,
    "--sensor-size": SIZES, "--epochs": NUMBERS, "--patience": NUMBERS, "--epoch-windows": NUMBERS,
    "--batch-size": NUMBERS, "--lr": NUMBERS, "--weight-decay": NUMBERS, "--no-augment": None, "--hflip": None,
    "--device": DEVICES, "--seed": NUMBERS, "--roi": REGIONS, "--resize": SIZES}
#: values teach accepts (combinations may not fit): the drawn bad value is then what the
#: command judges, not a NaN among the others
TEACH_ACCEPTED = {
    "--force": None, "--report-dir": st.sampled_from(["rep", "folder"]),
    "--model": st.sampled_from(["spikformer_dvs_tiny", "spikformer_lt_dvs_tiny"]), "--init": st.just("ck.pt"),
    "--trust-checkpoint": None, "--window-ms": st.sampled_from(["400", "200", "800", "100"]),
    "--hop-ms": st.sampled_from(["50", "100", "200"]), "--bins": st.sampled_from(["1", "2", "4", "8", "16"]),
    "--min-events": st.sampled_from(["0", "1", "16", "100"]), "--background-from-quiet": None,
    "--background-name": st.sampled_from(["nothing", "rest", "b"]), "--skip-unreadable": None,
    "--epochs": st.sampled_from(["1", "2"]), "--patience": st.sampled_from(["1", "5"]),
    "--epoch-windows": st.sampled_from(["4", "100", "1000000"]), "--batch-size": st.sampled_from(["1", "4", "1e12"]),
    "--lr": st.sampled_from(["1e-3", "1e-9", "50"]), "--weight-decay": st.sampled_from(["0", "0.06"]),
    "--no-augment": None, "--hflip": None, "--device": st.just("cpu"), "--seed": st.sampled_from(["0", "1e12"]),
    "--roi": st.sampled_from(["0,0,128,128", "32,32,64,64"]), "--resize": st.just("64x64")}
TEACH_NUMERIC = ("--window-ms", "--hop-ms", "--bins", "--min-events", "--epochs", "--patience", "--epoch-windows",
                 "--batch-size", "--lr", "--weight-decay", "--seed")


@st.composite
def teach_argv(draw):  # always refused (see _refused_by_construction): teaching takes minutes
    table = TEACH_OPTIONS if draw(st.integers(0, 3)) == 0 else TEACH_ACCEPTED
    return _refused_by_construction(draw, "teach", ["teach", "--out", "m.pt"], TEACH_BAD, table, TEACH_NUMERIC)


#: pretrain's values that are refused however the other options are drawn (see TEACH_BAD);
#: ``--dataset folder --root pretrain --out p`` is valid
PRETRAIN_BAD: list[tuple[list[str], set[str]]] = [
    *[(["--dataset", "folder", "--root", root, "--out", "p"], set()) for root in (
        "missing", "rec.h5", "folder", "data", "model_report", "pretrain_bad", "", " ", "no/such/dir")],
    *[(["--dataset", "folder", "--root", "pretrain", "--out", out], set()) for out in (
        "rec.h5", "pretrain", "no/such/p", "/nonexistent-dvsstream/p", "", "notes.txt")],
    *[(["--dataset", "folder", "--root", "pretrain", "--out", out], {"--force"}) for out in (
        "model_report", "teach")],  # folders of other files: not pretrain's earlier output
    *[(["--dataset", name, "--root", "data", "--out", "p"], set()) for name in (
        "dvsgesture", "cifar10dvs", "tonic:NMNIST", "bogus", "", "Folder")],
    (["--dataset", "dvsgesture", "--root", "pretrain", "--out", "p", "--bins", "4"], {"--bins"}),
    *[(["--dataset", "folder", "--root", "pretrain", "--out", "p", "--mask-ratio", r], {"--mask-ratio"})
      for r in ("0", "1", "-0.5", "1.5", "nan", "inf", "abc", "", "1e12")],
    *[(["--dataset", "folder", "--root", "pretrain", "--out", "p", "--cache-dir", c], {"--cache-dir"})
      for c in ("rec.h5", "no/such/cache", "pretrain", "")],
    (["--dataset", "folder", "--root", "pretrain", "--out", "p", "--window-ms", "0.001", "--bins", "2"],
     {"--window-ms", "--bins"}),
    (["--dataset", "folder", "--root", "pretrain", "--out", "p", "--roi", "1000,1000,10,10"], {"--roi"}),
    (["--dataset", "folder", "--root", "pretrain", "--out", "p", "--model", "bogus"], {"--model"}),
    *[(["--dataset", "folder", "--root", "pretrain", "--out", "p", "--device", dev], {"--device"})
      for dev in ("cuda:99", "foo")],
    *[(["--dataset", "folder", "--root", "pretrain", "--out", "p", "--filter", f], {"--filter"})
      for f in ("bogus:1", "ba:-1", "ba:nan", "ba")],
    *[(["--dataset", "folder", "--root", "pretrain", "--out", "p", option, "1e12"], {option})
      for option in ("--bins", "--decoder-dim", "--decoder-depth", "--min-events", "--window-ms")],
]
PRETRAIN_OPTIONS = {
    "--force": None, "--model": st.sampled_from(["spikformer_dvs_tiny", "spikformer_dvs", "bogus"]), "--mask-ratio": NUMBERS,
    "--target": st.sampled_from(["window", "steps", "bogus"]), "--decoder-dim": NUMBERS,
    "--decoder-depth": NUMBERS, "--window-ms": NUMBERS, "--bins": NUMBERS, "--min-events": NUMBERS,
    "--skip-unreadable": None, "--sensor-size": SIZES, "--frames": st.sampled_from(["count", "time", "x"]),
    "--epochs": NUMBERS, "--batch-size": NUMBERS, "--lr": NUMBERS, "--weight-decay": NUMBERS,
    "--warmup-epochs": NUMBERS, "--no-augment": None, "--no-hflip": None, "--device": DEVICES, "--workers": NUMBERS,
    "--cache-frames": st.sampled_from(["auto", "on", "off", "x"]), "--memory-budget-mb": NUMBERS,
    "--amp": st.sampled_from(["auto", "off", "fp16", "bf16", "x"]), "--channels-last": None, "--recompute": None,
    "--limit": NUMBERS, "--cache-dir": st.sampled_from(["cache", "rec.h5", "no/such/cache"]), "--resume": None,
    "--seed": NUMBERS, "--roi": REGIONS, "--resize": SIZES,
    "--filter": st.sampled_from(["ba:2000", "refractory:500", "none", "bogus:1"])}
PRETRAIN_ACCEPTED = {
    "--force": None, "--model": st.sampled_from(["spikformer_dvs_tiny", "spikformer_lt_dvs_tiny"]),
    "--mask-ratio": st.sampled_from(["0.5", "0.75", "1e-9", "0.999"]), "--target": st.sampled_from(["window", "steps"]),
    "--decoder-dim": st.sampled_from(["1", "3", "64", "1024"]), "--decoder-depth": st.sampled_from(["1", "24"]),
    "--window-ms": st.sampled_from(["400", "200", "100"]), "--bins": st.sampled_from(["1", "2", "4", "8", "16"]),
    "--min-events": st.sampled_from(["0", "1", "16"]), "--skip-unreadable": None, "--frames": st.just("count"),
    "--epochs": st.just("1"), "--batch-size": st.sampled_from(["1", "4", "1e12"]), "--lr": st.just("1e-3"),
    "--weight-decay": st.just("0"), "--warmup-epochs": st.sampled_from(["0", "1e12"]), "--no-augment": None,
    "--no-hflip": None, "--device": st.just("cpu"), "--workers": st.sampled_from(["0", "1e12"]),
    "--cache-frames": st.sampled_from(["auto", "on", "off"]), "--memory-budget-mb": st.sampled_from(["0", "1e12"]),
    "--amp": st.sampled_from(["auto", "off"]), "--channels-last": None, "--recompute": None,
    "--limit": st.sampled_from(["1", "1e12"]), "--cache-dir": st.just("cache"), "--seed": st.just("3"),
    "--roi": st.sampled_from(["0,0,128,128", "32,32,64,64"]), "--resize": st.just("64x64"),
    "--filter": st.sampled_from(["ba:2000", "refractory:500", "none"])}
PRETRAIN_NUMERIC = ("--mask-ratio", "--decoder-dim", "--decoder-depth", "--window-ms", "--bins", "--min-events",
                    "--epochs", "--batch-size", "--lr", "--weight-decay", "--warmup-epochs", "--workers",
                    "--memory-budget-mb", "--limit", "--seed")


@st.composite
def pretrain_argv(draw):  # always refused (see _refused_by_construction): pre-training takes minutes
    table = PRETRAIN_OPTIONS if draw(st.integers(0, 3)) == 0 else PRETRAIN_ACCEPTED
    return _refused_by_construction(draw, "pretrain", ["--dataset", "folder", "--root", "pretrain", "--out", "p"],
                                    PRETRAIN_BAD, table, PRETRAIN_NUMERIC)


@st.composite
def huge_argv(draw):
    """Every verb with sizes up to 1e12 on its size options (otherwise valid inputs):
    refused before any work (memory, disk) or used at what fits (a note)."""
    verb = draw(st.sampled_from(["info", "convert", "record", "replay", "run", "render", "gui", "eval", "train",
                                 "synth", "teach", "pretrain"]))
    if verb == "info":
        return ["info", "rec.h5"] + _options(draw, {"--peak-bin-us": HUGE, "--sensor-size": HUGE_SIZES})
    if verb == "convert":
        return ["convert", "ev.npy", "out.h5"] + _options(draw, {"--sensor-size": HUGE_SIZES})
    if verb == "record":
        return ["record", "--source", "rec.h5", "--out", draw(OUTPUTS)] + _options(
            draw, {"--duration": HUGE, "--start": HUGE, "--speed": HUGE, "--force": None})
    if verb == "replay":
        return ["replay", draw(st.sampled_from(["rec.h5", "ev.npy"]))] + _options(draw, {
            "--window-ms": HUGE, "--bins": HUGE, "--hop-ms": HUGE, "--downsample": HUGE, "--progress-s": HUGE,
            "--start": HUGE, "--sensor-size": HUGE_SIZES})
    if verb == "run":
        return ["run", "--source", draw(st.sampled_from(["rec.h5", "ev.npy"])), "--checkpoint", "ck.pt",
                "--duration", "3", "--quiet"] + _options(draw, {
                    "--window-ms": HUGE, "--hop-ms": HUGE, "--bins": HUGE, "--start": HUGE, "--speed": HUGE,
                    "--sensor-size": HUGE_SIZES, "--resize": HUGE_SIZES, "--json-out": OUTPUTS, "--force": None})
    if verb == "render":  # a start past the end is refused; a long duration ends with the file
        return ["render", "rec.h5", "--checkpoint", "ck.pt", "--out", draw(st.sampled_from(["a.gif", "old.h5"])),
                "--start", draw(HUGE)] + _options(draw, {"--duration": HUGE})
    if verb == "gui":
        return ["gui"] + _options(draw, {"--exit-after": HUGE, "--speed": HUGE, "--start": HUGE,
                                         "--settings": SETTINGS, "--screenshot": OUTPUTS, "--force": None})
    if verb in ("eval", "train"):
        argv = [verb, "--dataset", "dvsgesture", "--root", "data", "--out", draw(st.sampled_from(["res", "folder"]))]
        sizes = {"--batch-size": HUGE, "--limit": HUGE, "--workers": HUGE}
        if verb == "eval":
            return argv + ["--checkpoint", "ck.pt"] + _options(draw, {**sizes, "--export": OUTPUTS, "--force": None})
        return argv + _options(draw, {**sizes, "--epochs": HUGE, "--prefetch": HUGE, "--memory-budget-mb": HUGE,
                                      "--warmup-epochs": HUGE, "--seed": HUGE})
    if verb == "teach":  # always one size no window fits (the recordings: 2.2 s, 4400 events), or refused
        return ["teach", "teach", "--out", "m.pt", draw(st.sampled_from(["--bins", "--min-events", "--window-ms"])),
                draw(HUGE)] + _options(draw, {"--bins": HUGE, "--epochs": HUGE, "--patience": HUGE,
                                              "--epoch-windows": HUGE, "--batch-size": HUGE, "--hop-ms": HUGE,
                                              "--seed": HUGE, "--sensor-size": HUGE_SIZES})
    if verb == "pretrain":  # the same (1 s, 2000 events), or a decoder over its bounds
        return ["pretrain", "--dataset", "folder", "--root", "pretrain", "--out", draw(st.sampled_from(["p", "folder"])),
                draw(st.sampled_from(["--bins", "--min-events", "--window-ms", "--decoder-dim", "--decoder-depth"])),
                draw(HUGE)] + _options(draw, {"--bins": HUGE, "--epochs": HUGE, "--batch-size": HUGE,
                                              "--warmup-epochs": HUGE, "--workers": HUGE, "--limit": HUGE,
                                              "--memory-budget-mb": HUGE, "--seed": HUGE,
                                              "--sensor-size": HUGE_SIZES})
    # at least a billion samples: always refused (a set that fits would take minutes to make)
    return ["synth", "--out", draw(st.sampled_from(["set", "folder", "."])),
            "--samples-per-class", draw(st.sampled_from(["1e12", "999999999999", "1000000000", "4294967296"])),
            "--format", draw(st.sampled_from(["hdf5", "tonic", "both"]))] + _options(
        draw, {"--workers": HUGE, "--seed": HUGE, "--duration": HUGE})


#: numbers an option accepts, in odd combinations (windows that do not split into bins...)
VALID = st.sampled_from(["1", "2", "3", "8", "16", "0.5", "1e-3", "7", "50", "100", "400", "1000", "1e6"])


@st.composite
def valid_argv(draw):
    """Mostly accepted options: the work runs (on 0.3 s inputs), the combination may not fit."""
    verb = draw(st.sampled_from(["info", "convert", "record", "replay", "run"]))
    src = draw(st.sampled_from(["rec.h5", "ev.npy"]))
    if verb == "info":
        return ["info", src] + _options(draw, {"--peak-bin-us": VALID, "--model-size": SIZES})
    if verb == "convert":
        return ["convert", src, draw(st.sampled_from(["out.h5", "old.h5"]))] + _options(
            draw, {"--force": None, "--roi": REGIONS})
    if verb == "record":
        src = draw(st.sampled_from([src, "synthetic:rate=2e4,duration=0.2,seed=3"]))
        return ["record", "--source", src, "--out", draw(st.sampled_from(["out.h5", "old.h5"]))] + _options(
            draw, {"--duration": VALID, "--speed": st.sampled_from(["2", "8"]), "--force": None})
    if verb == "replay":
        return ["replay", src] + _options(draw, {"--window-ms": VALID, "--bins": VALID, "--hop-ms": VALID,
                                                 "--downsample": st.sampled_from(["1", "2", "3"])})
    return ["run", "--source", src, "--checkpoint", "ck.pt", "--duration", "3", "--quiet"] + _options(draw, {
        "--window-ms": VALID, "--hop-ms": VALID, "--bins": st.sampled_from(["1", "4", "8", "16"]),
        "--mode": st.sampled_from(["step", "window"]), "--json-out": st.sampled_from(["r.json", "old.h5"]),
        "--force": None, "--roi": REGIONS, "--resize": SIZES})


# ------------------------------------------------------------------ the tests
@FUZZ
@given(argv=valid_argv())
def test_fuzz_mostly_valid(play, argv):
    _fuzz(play, argv)


def _fuzz(play, argv: list[str], refused: bool = False) -> None:
    """One case; ``refused``: the case carries a bad value by construction, exit 2."""
    before, names = _checksums(play["root"]), sorted(p.name for p in play["root"].iterdir())
    code, out, err = _call(argv, argv[0])
    try:
        _check(play, argv, code, out, err)
        assert code == 2 or not refused, f"dvsstream {' '.join(argv)}: accepted (exit {code}), a bad value drawn"
        if code == 2:  # refused: every file that was there is as it was
            after = _checksums(play["root"])
            changed = sorted(name for name, digest in before.items() if after.get(name) != digest)
            assert not changed, f"dvsstream {' '.join(argv)}: refused but changed {changed}"
            if argv[0] in ("teach", "pretrain"):  # nothing written on a refusal: no file, no folder
                new = sorted(set(after) - set(before)) + sorted(
                    {p.name for p in play["root"].iterdir()} - set(names))
                assert not new, f"dvsstream {' '.join(argv)}: refused but wrote {new}"
    finally:
        _fresh(play)


def _checksums(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (HOME aside), by relative path."""
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "home"]
        for name in files:
            path = Path(folder, name)
            found[str(path.relative_to(root))] = _hash(path)
    return found


@FUZZ
@given(argv=st.one_of(info_argv(), convert_argv(), replay_argv()))
def test_fuzz_files(play, argv):
    _fuzz(play, argv)


@FUZZ
@given(argv=record_argv())
def test_fuzz_record(play, argv):
    _fuzz(play, argv)


@FUZZ
@given(argv=run_argv())
def test_fuzz_run(play, argv):
    _fuzz(play, argv)


@FUZZ
@given(argv=st.one_of(render_argv(), gui_argv()))
def test_fuzz_render_and_gui(play, argv):
    _fuzz(play, argv)


@FUZZ
@given(argv=st.one_of(dataset_argv(), synth_argv()))
def test_fuzz_datasets(play, argv):
    _fuzz(play, argv)


@FUZZ_MORE
@given(argv=teach_argv())
def test_fuzz_teach(play, argv):
    _fuzz(play, argv, refused=True)


@FUZZ_MORE
@given(argv=pretrain_argv())
def test_fuzz_pretrain(play, argv):
    _fuzz(play, argv, refused=True)


@pytest.mark.parametrize("argv", [["teach", *core] for core, _ in TEACH_BAD]
                         + [["pretrain", *core] for core, _ in PRETRAIN_BAD], ids=lambda argv: " ".join(argv))
def test_every_bad_teach_and_pretrain_value_alone_is_refused(play, argv):
    """Each bad value the strategies above build on, with nothing else drawn: refused
    (exit 2, one line) before any training, nothing written."""
    _fuzz(play, argv, refused=True)


@pytest.mark.parametrize("argv, needle", [
    # a traceback (MemoryError: 29 PiB for the binner's ring) after the recordings were read
    (["teach", "teach", "--out", "m.pt", "--bins", "1e12"], "--bins 1000000000000"),
    (["pretrain", "--dataset", "folder", "--root", "pretrain", "--out", "p", "--bins", "1e12"], "--bins"),
    # a traceback (the allocator's RuntimeError) / hours building 1e12 decoder blocks
    (["pretrain", "--dataset", "folder", "--root", "pretrain", "--out", "p", "--decoder-dim", "1e12"],
     "--decoder-dim"),
    (["pretrain", "--dataset", "folder", "--root", "pretrain", "--out", "p", "--decoder-depth", "1e12"],
     "--decoder-depth"),
    # the checkpoint would have replaced the user's notes once taught (--force)
    (["teach", "teach", "--out", "notes.txt", "--force"], "PyTorch checkpoint"),
    # an empty --root was the current folder: every recording under it read, then trained on
    (["pretrain", "--dataset", "folder", "--root", "", "--out", "p"], "--root is an empty name"),
    # --init is checked before the recordings are read (it named the unreadable recording)
    (["teach", "teach_bad", "--out", "m.pt", "--init", "missing.pt"], "missing.pt"),
    # pretrain wrote its last.pt, log.csv, result.json over those of any folder (a train run's)
    (["pretrain", "--dataset", "folder", "--root", "pretrain", "--out", "model_report"], "not an earlier pretrain"),
    # --epoch-windows draws them all at once every epoch
    (["teach", "teach", "--out", "m.pt", "--epoch-windows", "1e12"], "--epoch-windows"),
])
def test_teach_and_pretrain_what_the_fuzz_found(play, argv, needle):
    """What these verbs did before the fuzz covered them, now a one-line refusal."""
    code, out, err = _call(argv, argv[0])
    _check(play, argv, code, out, err)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


@FUZZ
@given(argv=huge_argv())
def test_fuzz_huge_sizes(play, argv):
    _fuzz(play, argv)


def _subprocess(play, *args: str) -> subprocess.CompletedProcess:
    root = play["root"]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(HOME=str(root / "home"), PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "dvsstream.cli", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("argv, needle", [
    (["convert", "rec.h5", "rec.h5", "--force"], "also an input"),
    (["convert", "rec.h5", "folder/../rec.h5", "--force"], "also an input"),
    (["info", "rec.h5", "--peak-bin-us", "0"], "--peak-bin-us"),
    (["replay", "rec.h5", "--speed", "nan"], "--speed"),
    (["run", "--device", "cuda:99", "--source", "rec.h5"], "cuda:99"),
    (["gui", "--checkpoint", "missing.pt", "--exit-after", "3"], "missing.pt"),
    (["record", "--source", "synthetic:rate=1e4,duration=0.2", "--out", "/nonexistent-dvsstream/x.h5"],
     "does not exist"),
    (["teach", "teach_bad", "--out", "m.pt"], "broken.h5"),
    (["teach", "teach", "--out", "notes.txt", "--force"], "checkpoint"),
    (["pretrain", "--dataset", "folder", "--root", "pretrain", "--out", "p", "--bins", "1e12"], "--bins"),
    (["pretrain", "--dataset", "folder", "--root", "pretrain", "--out", "p", "--mask-ratio", "1"], "--mask-ratio"),
])
def test_real_subprocess_bad_input_is_one_line(play, argv, needle):
    proc = _subprocess(play, *argv)
    COUNTS["subprocess"] = COUNTS.get("subprocess", 0) + 1
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    _check(play, argv, proc.returncode, proc.stdout, proc.stderr)
    assert not Path("/nonexistent-dvsstream").exists()


def test_zz_report(capsys):
    """How many cases ran (``pytest -s`` shows it)."""
    with capsys.disabled():
        print(f"\ncli fuzz: {sum(COUNTS.values())} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items()))
              + "; in-process exit status: " + ", ".join(f"{k}: {v}" for k, v in sorted(EXITS.items())))
