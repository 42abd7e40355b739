"""Shared pytest fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

#: the tests' shared helpers (dvwriter, sj_peer, reference_models, model_testing) import by
#: name from every subfolder
sys.path.insert(0, str(Path(__file__).resolve().parent))

# train/eval on a CPU keep freed memory in the heap for the rest of the process
# (dvsstream.heap); the test process, which runs many of them, keeps glibc's default
os.environ.setdefault("DVSSTREAM_KEEP_HEAP", "0")

#: real DVS128 recordings shared between checkouts (not part of the repository);
#: see ../shared/data/real/README.md. Tests that need them skip when absent.
REAL_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real"


def real_file(name: str) -> Path:
    """Path of a real recording, or ``pytest.skip`` when it is not there."""
    path = REAL_DATA / name
    if not path.is_file():
        pytest.skip(f"real recording {name} not found in {REAL_DATA}")
    return path


@pytest.fixture
def real_data():
    """A function ``name -> Path`` for the real recordings; skips the test
    when the folder or the file is missing."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real recordings folder {REAL_DATA} not found")
    return real_file


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test (modules that train use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): bit-for-bit comparisons
    need the same kernels, and on shared cores several OpenMP threads spin and slow each
    other down by an order of magnitude."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
