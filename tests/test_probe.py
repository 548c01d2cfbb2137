"""The invariance audit: one score per op of the task's space, in every record."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from bench.probe import invariance_probe
from tests.helpers import run_cli


def test_probe_scores_one_for_an_invariance_the_model_has_and_less_for_one_it_lacks() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 2, 300)

    def energy_per_channel(v: torch.Tensor) -> torch.Tensor:  # invariant to sign flips and time reversal
        return v.pow(2).mean(-1)

    scores = invariance_probe(energy_per_channel, ("sign_flip", "time_reverse"), {"sfreq": 100}, x, 32, seed=0)
    assert list(scores) == ["sign_flip", "time_reverse"]
    assert scores["sign_flip"] > 0.99 and scores["time_reverse"] > 0.99

    def onset(v: torch.Tensor) -> torch.Tensor:  # the first samples: neither invariance
        return v[..., :50].flatten(1)

    scores = invariance_probe(onset, ("sign_flip", "time_reverse"), {"sfreq": 100}, x, 32, seed=0)
    assert scores["sign_flip"] < 0 and scores["time_reverse"] < 0.5

def test_every_record_carries_a_probe_over_the_task_space_and_list_ops_prints_assumptions(tmp_path: Path) -> None:
    result = run_cli("run", "--tasks", "sinusoids", "--methods", "erm", "--profile", "smoke", "--seeds", "0", "--results-dir",
                     str(tmp_path), "--no-progress")
    assert result.returncode == 0, result.stderr
    [path] = (tmp_path / "runs").glob("*.json")
    record = json.loads(path.read_text())
    assert set(record["invariance_probe"]) == {"frequency_shift"}
    assert -1.5 < record["invariance_probe"]["frequency_shift"] <= 1.0
    assert record["probe_s"] > 0 and abs(record["total_s"] - record["search_s"] - record["train_s"] - record["eval_s"]) < 1e-6
    listing = run_cli("list", "--ops")
    assert listing.returncode == 0
    assert "Rotate: the label does not change under rotations" in listing.stdout
    assert "molecule:" in listing.stdout and "eeg:" in listing.stdout
