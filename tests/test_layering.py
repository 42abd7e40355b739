"""The import direction of the design: the data path never pulls in torch or Qt,
and the CLI starts without them."""

from __future__ import annotations

import subprocess
import sys

import pytest

DATA_PATH = [
    "dvsstream.events",
    "dvsstream.binning",
    "dvsstream.release_data",
    "dvsstream.recording",
    "dvsstream.sources",
    "dvsstream.sources.aedat2",
    "dvsstream.sources.aedat3",
    "dvsstream.sources.aedat4",
    "dvsstream.sources.npy",
    "dvsstream.sources.hdf5",
    "dvsstream.sources.camera",
    "dvsstream.sources.network",
    "dvsstream.sources.synthetic",
    "dvsstream.emulator",
    "dvsstream.gestures",
    "dvsstream.synth",
    "dvsstream.plots",
    "dvsstream.fileio",
    "dvsstream.cli",
    "dvsstream.gui.clip",  # clips: torch and PyAV load only when a clip is written
]


def imported(module: str, heavy: tuple[str, ...]) -> str:
    """Which of ``heavy`` a fresh interpreter has loaded after importing ``module``."""
    code = f"import sys, {module}; print(','.join(sorted(m for m in {heavy!r} if m in sys.modules)))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("module", DATA_PATH)
def test_data_path_imports_no_torch_no_qt(module):
    bad = imported(module, ("torch", "PySide6", "pyqtgraph", "tonic"))
    assert bad == "", f"{module} imports {bad}"


@pytest.mark.parametrize("module", ["dvsstream.pipeline", "dvsstream.live", "dvsstream.models", "dvsstream.gui.app"])
def test_engine_imports_no_qt(module):
    """Qt and pyqtgraph live only in the GUI's views and window."""
    bad = imported(module, ("PySide6", "pyqtgraph"))
    assert bad == "", f"{module} imports {bad}"
