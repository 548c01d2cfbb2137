"""Thread choice on a shared machine: the free cores, an explicit OMP_NUM_THREADS wins,
and OpenMP's wait policy is set before torch loads."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench import threads
from tests.helpers import ROOT


def test_free_cores_subtract_the_load() -> None:
    assert threads.free_cores(cores=2, busy=0.1) == 2
    assert threads.free_cores(cores=2, busy=1.2) == 1
    assert threads.free_cores(cores=2, busy=6.0) == 1  # never below one
    assert threads.free_cores(cores=16, busy=3.6) == 12


def test_choose_threads_shares_the_free_cores_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setattr(threads, "busy_cores", lambda: 2.0)
    assert threads.choose_threads() == 6
    assert threads.choose_threads(share=2) == 3
    monkeypatch.setattr(threads, "busy_cores", lambda: 7.6)  # another suite holds the machine
    assert threads.choose_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose_threads() == 3


def test_the_entry_point_calms_openmp_before_torch_loads() -> None:
    code = (
        "import os, sys\n"
        "seen = {}\n"
        "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and 'torch' not in seen:\n"
        "            seen['torch'] = os.environ.get('OMP_WAIT_POLICY')\n"
        "sys.meta_path.insert(0, Hook())\n"
        "import run_bench\n"
        "print(seen.get('torch', 'torch never imported'))\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "PASSIVE"
