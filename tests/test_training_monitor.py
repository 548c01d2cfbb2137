"""Per-epoch validation on a fixed subset when no selection reads it; the whole split
when ``select_best_val`` or ``patience`` does; the final val score always on the whole split."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import bench.training as training
from bench import store
from bench.cli import main
from bench.registry import load_registry


def smoke_erm(results: Path) -> dict:
    assert main(["run", "--suite", "smoke", "--tasks", "mnist_rot", "--methods", "erm", "--results-dir",
                 str(results), "--no-progress", "--no-report"]) == 0
    [record] = store.load_records(results)
    return record


def test_epochs_are_validated_on_a_subset_unless_a_selection_reads_them(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "MONITOR_EXAMPLES", 64)  # smoke's validation split has 128 examples
    full = smoke_erm(tmp_path / "a")
    assert [e["val_n"] for e in full["history"]] == [64]
    cls = load_registry().task("mnist_rot").cls
    selecting = {**cls.profiles, "smoke": replace(cls.profiles["smoke"], select_best_val=True)}
    monkeypatch.setattr(cls, "profiles", selecting)
    selected = smoke_erm(tmp_path / "b")
    assert [e["val_n"] for e in selected["history"]] == [128]
    # One epoch: the selected weights are the trained ones, so the whole-split scores agree.
    assert selected["history"][0]["val"]["accuracy"] == selected["val_metric"] == full["val_metric"]
