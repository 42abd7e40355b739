"""dvsstream.cli.validate: the argparse types, the input/output checks, the device and
memory checks -- each failure one line naming what, why and what to do."""

from __future__ import annotations

import argparse
import os

import pytest

from dvsstream.errors import DvsstreamError
from dvsstream.cli.validate import check_device, check_input, check_output_file, check_output_folder, check_source
from dvsstream.cli.args import at_most, device_name, finite_float, nonneg_float, nonneg_int, positive_float, positive_int
from dvsstream.binning import check_window
from dvsstream.heap import available_memory_bytes, check_memory


@pytest.mark.parametrize("kind, good, bad", [
    (finite_float, {"0": 0.0, "-2.5": -2.5, "1e3": 1000.0}, ["nan", "inf", "-inf", "1e400", "abc", "", "1e13"]),
    (positive_float, {"0.5": 0.5, "3": 3.0}, ["0", "-1", "nan", "inf", "x"]),
    (nonneg_float, {"0": 0.0, "7": 7.0}, ["-0.001", "nan", "-inf"]),
    (positive_int, {"1": 1, "16": 16, "1e6": 1_000_000, "16.0": 16}, ["0", "-5", "1.5", "nan", "inf", "1e13"]),
    (nonneg_int, {"0": 0, "3": 3}, ["-1", "0.5", "abc"]),
    (device_name, {"cpu": "cpu", "cuda": "cuda", "cuda:1": "cuda:1"}, ["foo", "", "cuda:", "cuda:x", "CPU"]),
    (at_most(positive_float, 1000), {"1000": 1000.0, "20": 20.0}, ["1000.5", "1e9", "0"]),
])
def test_types_accept_and_refuse(kind, good, bad):
    for text, value in good.items():
        assert kind(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError) as err:
            kind(text)
        assert "\n" not in str(err.value) and repr(text) in str(err.value)


def test_inputs(tmp_path):
    f = tmp_path / "a.h5"
    f.write_bytes(b"x")
    check_input(f)
    check_input("camera:", uri_ok=True)
    for path, needle in [(tmp_path / "missing.h5", "no such file"), (tmp_path, "is a folder"), ("", "empty"),
                         ("bogus://x", "unknown source scheme")]:
        with pytest.raises(DvsstreamError, match=needle):
            check_input(path, uri_ok=True)
    check_source("synthetic:rate=1e4,duration=0.5,noise=0")
    for uri, needle in [("synthetic:rate=nan", "rate must be"), ("synthetic:duration=-1", "duration must be"),
                        ("synthetic:noise=-1", "noise must be"), ("synthetic:rate=1e12", "at most 1e9")]:
        with pytest.raises(DvsstreamError, match=needle):
            check_source(uri)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_or_device_is_refused_before_anything_waits_on_it(tmp_path, capsys):
    """`dvsstream info <(cat rec.aedat)` or a named pipe: opening it would wait for a
    writer (and the readers seek); one line, exit 2."""
    from dvsstream.cli import main

    fifo = tmp_path / "stream.fifo"
    os.mkfifo(fifo)
    with pytest.raises(DvsstreamError, match="not a regular file"):
        check_input(fifo)
    assert main(["info", str(fifo)]) == 2
    assert main(["convert", os.devnull, str(tmp_path / "out.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("not a regular file" in line for line in err), err
    assert not (tmp_path / "out.h5").exists()


def test_an_output_is_never_an_input_nor_a_folder(tmp_path):
    src = tmp_path / "rec.h5"
    src.write_bytes(b"precious")
    os.link(src, tmp_path / "hard.h5")
    (tmp_path / "sub").mkdir()
    for out in (src, tmp_path / "sub" / ".." / "rec.h5", tmp_path / "hard.h5"):
        with pytest.raises(DvsstreamError, match="also an input"):
            check_output_file(out, inputs=[src], force=True)
    with pytest.raises(DvsstreamError, match="is a folder"):
        check_output_file(tmp_path / "sub", inputs=[src])
    with pytest.raises(DvsstreamError, match="does not exist"):
        check_output_file(tmp_path / "no" / "x.h5")
    with pytest.raises(DvsstreamError, match="--force"):
        check_output_file(src, force=False)
    assert check_output_file(tmp_path / "new.h5", inputs=[src, "camera:"], force=False) == tmp_path / "new.h5"
    assert src.read_bytes() == b"precious"


def test_output_folders_are_made_only_where_named(tmp_path):
    check_output_folder(tmp_path / "new")  # its parent exists: the command makes it
    check_output_folder(tmp_path)
    with pytest.raises(DvsstreamError, match="does not exist"):
        check_output_folder(tmp_path / "a" / "b")
    (tmp_path / "f").write_text("x")
    with pytest.raises(DvsstreamError, match="is a file"):
        check_output_folder(tmp_path / "f")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # checking made nothing


def test_window_arithmetic_in_option_names():
    check_window(160, 16, 10)
    check_window(400, 8, 50)
    with pytest.raises(DvsstreamError, match=r"--hop-ms 7 must be a multiple of the bin length 6.25 ms"):
        check_window(100, 16, 7)
    with pytest.raises(DvsstreamError, match="does not split into --bins 16"):
        check_window(0.5, 16, 10)
    with pytest.raises(DvsstreamError, match="at most --window-ms"):
        check_window(100, 10, 200)


def test_device_check_names_the_remedy():
    import torch

    check_device("cpu")
    check_device(None)
    if not torch.cuda.is_available():
        with pytest.raises(DvsstreamError, match="CUDA is not available.*--device cpu"):
            check_device("cuda")
    with pytest.raises(DvsstreamError, match="cuda:99"):
        check_device("cuda:99")


def test_memory_check_says_how_much():
    have = available_memory_bytes()
    assert have is None or have > 10 ** 6  # this machine has more than a megabyte free
    check_memory(1000, "a test", "use less", available=lambda: 10 ** 9)
    with pytest.raises(DvsstreamError, match=r"about 2.0 GB of memory but 1.0 GB is available; use less"):
        check_memory(2e9, "a test", "use less", available=lambda: 10 ** 9)
    check_memory(1e30, "unknown memory", "-", available=lambda: None)  # unknown: not refused


def test_run_memory_estimate_grows_with_the_bins():
    from dvsstream.stream.live import run_memory_bytes
    from dvsstream.models import get_config
    from dvsstream.binning.geometry import BinningConfig

    cfg = get_config("spikformer_dvs_tiny")
    small = run_memory_bytes(cfg, BinningConfig(400_000, 8, 50_000, downsample=2), (128, 128))
    big = run_memory_bytes(cfg, BinningConfig(400_000, 100_000, 50_000, downsample=2), (128, 128))
    assert big == pytest.approx(small * 100_000 / 8)
    # measured on the shipped model: 0.15 MB a step; the estimate is an upper bound within 3x
    assert 0.15e6 * 8 < small < 3 * 0.15e6 * 8 + 3 * 8 * 2 * 64 * 64 * 4


def test_the_command_line_lets_waiting_openmp_threads_sleep():
    """torch's OpenMP threads spin while they wait unless told otherwise; on a shared CPU that
    made training 2-3x slower. The command line sets OMP_WAIT_POLICY=PASSIVE before torch
    loads, and keeps a user's own setting."""
    import subprocess
    import sys

    code = ("import os; from dvsstream.cli import main; main(['--version']); "
            "import torch; print(os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "ACTIVE"
