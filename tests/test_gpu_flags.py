"""GPU fast-path flags, checked on the CPU: --amp bf16, --deterministic, --device
auto, and CUDA synchronisation around timed phases."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench import store, timing
from bench.cli import main
from bench.config import RunConfig
from bench.errors import UserError
from bench.registry import load_registry
from bench.config import run_id_of
from bench.runner import resolve_device
from bench.training import autocast

RUN = ["run", "--tasks", "mnist_rot", "--methods", "erm", "--profile", "smoke", "--seeds", "0", "--no-progress"]


def test_amp_bf16_run_is_recorded_with_its_own_id(tmp_path: Path) -> None:
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        assert main([*RUN, "--results-dir", str(tmp_path), "--amp", "bf16", "--deterministic"]) == 0
    finally:
        torch.use_deterministic_algorithms(deterministic)
    assert main([*RUN, "--results-dir", str(tmp_path)]) == 0  # the same run in float32: a second record
    records = {r["amp"]: r for r in store.load_records(tmp_path)}
    assert sorted(records) == ["bf16", "none"]
    bf16, fp32 = records["bf16"], records["none"]
    assert bf16["status"] == "ok" and math.isfinite(bf16["test_metric"])
    assert bf16["run_id"] != fp32["run_id"] and bf16["label"] == "erm [bf16]" and fp32["label"] == "erm"
    assert bf16["deterministic"] is True and bf16["cudnn_benchmark"] is False
    assert fp32["deterministic"] is False and fp32["cudnn_benchmark"] is True
    assert bf16["history"][0]["train_loss"] != fp32["history"][0]["train_loss"]  # bf16 really was used


def test_amp_keeps_seeds_and_changes_only_the_id() -> None:
    registry = load_registry()
    fp32 = RunConfig("mnist_rot", "smoke", "erm", 1.0, None, 0, {})
    bf16 = replace(fp32, amp="bf16")
    assert run_id_of(registry, fp32) != run_id_of(registry, bf16)
    assert fp32.train_seed == bf16.train_seed and fp32.semantic() == bf16.semantic()


def test_autocast_runs_layers_in_bf16_only_when_asked() -> None:
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast(torch.device("cpu"), "bf16"):
        assert layer(x).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "none"):
        assert layer(x).dtype == torch.float32
    with pytest.raises(UserError, match="unknown --amp"):
        autocast(torch.device("cpu"), "fp8")


def test_device_auto_picks_cuda_when_present() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_timed_phases_synchronise_cuda_before_reading_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(timing.torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    clock = timing.time.perf_counter
    monkeypatch.setattr(timing.time, "perf_counter", lambda: events.append("clock") or clock())
    timer = timing.PhaseTimer(torch.device("cuda"))
    with timer.phase("train"):
        events.append("work")
    assert events == ["sync", "clock", "work", "sync", "clock"]
