"""The import direction of the design: the data path never pulls in torch or Qt,
and the CLI starts without them."""

from __future__ import annotations

import subprocess
import sys

import pytest

DATA_PATH = [
    "dvsstream.events",
    "dvsstream.binning",
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
    "dvsstream.cli",
]


@pytest.mark.parametrize("module", DATA_PATH)
def test_data_path_imports_no_torch_no_qt(module):
    code = (
        f"import sys, {module}; "
        "bad = sorted(m for m in ('torch', 'PySide6', 'pyqtgraph', 'tonic') if m in sys.modules); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"
