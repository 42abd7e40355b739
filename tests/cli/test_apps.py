"""The scripts in ``apps/`` run as a user runs them, in a subprocess: ``--help`` lists
only what a user may pass, options an app sets itself are refused (exit 2, no
traceback), the GUI apps run unattended (``--screenshot --exit-after``, offscreen) and
the evaluation apps evaluate a tiny fake dataset. Every subprocess gets its own HOME,
settings file and config folders, so nothing of the user's is read or written."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "apps"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

GUI_COMMON = {"-h", "--help", "--checkpoint", "--screenshot", "--exit-after", "--settings", "--device", "--verbose", "-v",
              "--reset-settings", "--export-clip", "--force", "--roi", "--resize", "--sensor-size", "--trust-checkpoint",
              "--start", "--filter", "--teach"}
EVAL_COMMON = {"-h", "--help", "--root", "--checkpoint", "--model", "--split", "--device", "--batch-size", "--limit",
               "--workers", "--cache-dir", "--out", "--convention", "--label-order", "--export", "--roi", "--resize",
               "--trust-checkpoint", "--force", "--filter"}
#: app -> (the options its --help lists, the options it sets itself)
OPTIONS = {
    "live_gui.py": (GUI_COMMON | {"--serial"}, {"--source", "--speed", "--deterministic"}),
    "replay_gestures.py": (GUI_COMMON | {"--recording", "--speed", "--deterministic"}, {"--source"}),
    "eval_cifar10dvs.py": (EVAL_COMMON, {"--dataset"}),
    "eval_gesture.py": (EVAL_COMMON, {"--dataset"}),
}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """One HOME for the module's subprocesses (matplotlib builds its font cache there once)."""
    return tmp_path_factory.mktemp("home")


def _run(app: str, *args: str, home: Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVSSTREAM_", "XDG_", "MPL"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
               MPLCONFIGDIR=str(home / ".matplotlib"), DVSSTREAM_GUI_SETTINGS=str(cwd / "gui.json"),
               QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, str(APPS / app), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _listed_options(help_text: str) -> set[str]:
    """The option strings of the ``options:`` section of an argparse ``--help``."""
    section = help_text.split("\noptions:\n", 1)[1]
    return {opt for line in section.splitlines() if re.match(r"\s{2}-", line)
            for opt in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", line.split("  ", 2)[1])}


@pytest.mark.parametrize("app", sorted(OPTIONS))
def test_help_lists_only_what_a_user_may_pass(app, home, tmp_path):
    listed, fixed = OPTIONS[app]
    proc = _run(app, "--help", home=home, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _listed_options(proc.stdout) == listed
    usage = proc.stdout.split("\n\n", 1)[0]
    assert usage.startswith(f"usage: {app}")
    assert not any(opt in usage for opt in fixed), "an option the app sets itself is offered"
    assert "apps/" + app in proc.stdout  # the docstring's examples


@pytest.mark.parametrize("app, option", [(app, opt) for app, (_, fixed) in sorted(OPTIONS.items())
                                         for opt in sorted(fixed)])
def test_an_option_the_app_sets_is_refused(app, option, home, tmp_path):
    value = {"--dataset": ["cifar10dvs"], "--speed": ["2"], "--deterministic": [], "--source": ["synthetic:"]}[option]
    proc = _run(app, "--root", "r", "--checkpoint", "c", option, *value, home=home, cwd=tmp_path, timeout=60) \
        if app.startswith("eval") else _run(app, option, *value, home=home, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{app}: error: {option} is set by this app; ")
    assert not (tmp_path / "gui.json").exists()  # refused before anything ran


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("app, extra", [("replay_gestures.py", ["--recording", "arm_rotations", "--speed", "2"]),
                                        ("live_gui.py", [])])  # no camera here: the window says so
def test_gui_app_unattended(app, extra, home, tmp_path):
    pytest.importorskip("PySide6")
    proc = _run(app, *extra, "--screenshot", "x.png", "--exit-after", "3", "--verbose", home=home, cwd=tmp_path)
    no_camera = app == "live_gui.py"  # an unattended run that saw a failure exits 2
    assert proc.returncode == (2 if no_camera else 0), proc.stdout[-2000:] + proc.stderr[-3000:]
    shot = tmp_path / "x.png"
    assert shot.is_file() and shot.stat().st_size > 10_000
    w, h = _png_size(shot)
    assert w >= 800 and h >= 500
    assert "screenshot saved" in proc.stdout
    settings = json.loads((tmp_path / "gui.json").read_text())  # the temporary settings, not the user's
    assert isinstance(settings, dict) and settings
    assert not (home / ".config" / "dvsstream" / "gui.json").exists()
    if no_camera:  # the window names what is missing, and stderr has the same one line
        assert "camera" in proc.stdout
        failures = [line for line in proc.stderr.splitlines() if line.startswith("dvsstream gui: The source")]
        assert len(failures) == 1 and "no iniVation camera" in failures[0]


# ------------------------------------------------------------------ evaluation apps
def _events(label: int, n: int, seed: int) -> np.ndarray:
    from dvsstream.events import EVENT_DTYPE

    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 100_000, n))
    ev["x"] = np.clip(rng.normal(16 + (label % 5) * 24, 6, n), 0, 127).astype(np.uint16)
    ev["y"] = np.clip(rng.normal(24 + (label // 5) * 64, 6, n), 0, 127).astype(np.uint16)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def _checkpoint(path: Path, num_classes: int) -> Path:
    import torch

    from dvsstream.models import create_model, save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(create_model("spikformer_dvs_tiny", num_classes=num_classes, T=2, img_size=(32, 32)), path)
    return path


def _eval_outputs_ok(out: Path, dataset: str, samples: int, classes: int) -> None:
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == dataset and report["samples"] == samples
    assert np.array(report["confusion_matrix"]).shape == (classes, classes)
    with open(out / report["files"].pop("samples")) as f:
        assert len(f.read().splitlines()) == 1 + samples
    for name in report["files"].values():
        w, h = _png_size(out / name)
        assert w >= 750 and h >= 300, name


def test_eval_cifar10dvs_app(home, tmp_path):
    from dvsstream.datasets.cifar10dvs import CIFAR10DVS_CLASSES
    from dvsstream.io.aedat4 import write_aedat4

    for label, cls in enumerate(CIFAR10DVS_CLASSES):
        (tmp_path / "data" / "CIFAR10DVS" / cls).mkdir(parents=True)
        write_aedat4(tmp_path / "data" / "CIFAR10DVS" / cls / f"{cls}_0.aedat4", _events(label, 400, label), (128, 128))
    ckpt = _checkpoint(tmp_path / "c10.pt", 10)
    proc = _run("eval_cifar10dvs.py", "--root", "data", "--checkpoint", str(ckpt), "--split", "all",
                "--device", "cpu", home=home, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    _eval_outputs_ok(tmp_path / "eval-cifar10dvs", "cifar10dvs", 10, 10)  # the app's default --out
    assert "confusion.png" in proc.stdout and "confidence.png" in proc.stdout


def test_eval_gesture_app(home, tmp_path):
    d = tmp_path / "data" / "DVSGesture" / "ibmGestureTest" / "user24_led"
    d.mkdir(parents=True)
    for label in range(11):
        ev = _events(label % 10, 400, label)
        np.save(d / f"{label}.npy", np.stack([ev["x"], ev["y"], ev["p"], ev["t"] // 1000], 1).astype(np.float64))
    ckpt10 = _checkpoint(tmp_path / "c10.pt", 10)
    proc = _run("eval_gesture.py", "--root", "data", "--checkpoint", str(ckpt10), home=home, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr  # 10 classes for an 11-class set
    assert proc.stderr.strip().startswith("dvsstream: error:") and len(proc.stderr.strip().splitlines()) == 1
    ckpt = _checkpoint(tmp_path / "g.pt", 11)
    proc = _run("eval_gesture.py", "--root", "data", "--checkpoint", str(ckpt), "--out", "g", "--device", "cpu",
                home=home, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    _eval_outputs_ok(tmp_path / "g", "dvsgesture", 11, 11)
