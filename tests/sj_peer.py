"""spikingjelly 2.0 as a test-only peer (``pip install --no-deps spikingjelly==2.0.0 loguru``).

Its ``datasets`` package imports torchvision and torchaudio at load time, for things these
tests never call (downloads, archive extraction, ``DatasetFolder``, audio). When those are
not installed they are stubbed here -- inside the tests only; they are never dependencies
of dvsstream. The functions the tests compare with (the AEDAT readers, the frame
integration, the split) are spikingjelly's own, unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def _stub(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    mod.__path__ = []  # a package, so that submodules can be stubbed below it
    return mod


def _unavailable(*_a, **_k):
    raise RuntimeError("stubbed in dvsstream's tests: torchvision / torchaudio are not installed")


def _missing(name: str) -> bool:
    return name not in sys.modules and importlib.util.find_spec(name) is None


def _install_stubs() -> None:
    import torch

    if _missing("torchvision"):
        class DatasetFolder(torch.utils.data.Dataset):  # only subclassed at import time
            def __init__(self, *a, **k):
                _unavailable()

        utils = _stub("torchvision.datasets.utils", check_integrity=_unavailable, download_url=_unavailable,
                      extract_archive=_unavailable, verify_str_arg=_unavailable)
        datasets = _stub("torchvision.datasets", DatasetFolder=DatasetFolder, utils=utils)
        transforms = _stub("torchvision.transforms")
        tv = _stub("torchvision", datasets=datasets, transforms=transforms)
        for m in (tv, datasets, utils, transforms):
            sys.modules.setdefault(m.__name__, m)
    if _missing("torchaudio"):
        sys.modules.setdefault("torchaudio", _stub("torchaudio", load=_unavailable))


def spikingjelly_datasets():
    """``spikingjelly.datasets`` (with torchvision / torchaudio stubbed when absent), or
    skip the test when spikingjelly is not installed."""
    if importlib.util.find_spec("spikingjelly") is None:
        pytest.skip("spikingjelly is not installed (test-only peer: pip install --no-deps spikingjelly==2.0.0 loguru)")
    _install_stubs()
    try:
        return importlib.import_module("spikingjelly.datasets")
    except ImportError as exc:  # e.g. loguru missing
        pytest.skip(f"spikingjelly.datasets cannot be imported here ({exc})")


def real_file(name: str) -> Path:
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"{path} not available (the shared real recordings are absent)")
    return path
