"""keep_freed_memory: freed tensors' pages are reused instead of faulted in afresh (in a
child process: the setting is process-wide, and conftest keeps it off in the test
process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = r"""
import json, resource, sys
import torch
from dvsstream.heap import keep_freed_memory
on = keep_freed_memory() if sys.argv[1] == "on" else False
def step():  # a step's worth of large activations, allocated, written and freed
    xs = [torch.ones(10 << 20) for _ in range(2)]  # 40 MB each: above glibc's largest mmap threshold
    return sum(float(x[0]) for x in xs)
step()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(json.dumps({"on": on, "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 10}))
"""


def _faults(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DVSSTREAM_KEEP_HEAP"}
    r = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_memory_is_reused_without_page_faults():
    off, on = _faults("off"), _faults("on")
    if not on["on"]:
        pytest.skip("not glibc (mallopt unavailable)")
    # 2 x 40 MB written per step: by default ~20,000 fresh 4 kB pages a step (fewer where
    # the kernel backs them with huge pages); kept in the heap, measured ~6,000 here (the
    # host reclaims some idle pages on its own)
    assert off["faults"] < 1000 or on["faults"] < off["faults"] / 2


def test_switched_off_by_the_environment_and_for_other_devices(monkeypatch):
    import torch

    import dvsstream.heap as heap

    monkeypatch.setattr(heap, "_applied", False)
    monkeypatch.setenv("DVSSTREAM_KEEP_HEAP", "0")
    assert heap.keep_freed_memory() is False
    monkeypatch.setenv("DVSSTREAM_KEEP_HEAP", "1")
    assert heap.keep_freed_memory(torch.device("cuda")) is False  # GPU work: the host's malloc is left alone
    assert heap._applied is False
