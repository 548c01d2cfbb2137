"""The learning diagnostic (bench/diagnostics.py): movement and entropy per group, the
"did not move" flag on a run whose augmentation cannot move and its absence on one
that does, through the runner, the record and the table."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from bench import diagnostics, store
from tests.helpers import copy_repo, run_cli

AUGMENTATION_METHODS = '''
"""Two test plugins with one augmentation state each: frozen (never optimised) and
moving (its own optimiser group, pushed by a loss term)."""
import torch
from torch import nn

from bench.api import Method


class FrozenAug(Method):
    name = "frozen_aug"
    description = "Learns no augmentation: its state never changes."
    params = {}

    def __init__(self, ctx, model, hparams):
        super().__init__(ctx, model, hparams)
        self.raw = nn.Parameter(torch.zeros(3))

    def augmentation_state(self):
        return {"weights": torch.softmax(self.raw.detach(), -1).cpu(),
                "magnitudes": torch.sigmoid(self.raw.detach()).cpu()}


class MovingAug(FrozenAug):
    name = "moving_aug"
    description = "Its state moves in training: the loss pushes raw[0] up at lr 0.3."
    params = {}

    def param_groups(self):
        return [{"params": list(self.model.parameters())}, {"params": [self.raw], "lr": 0.3}]

    def training_loss(self, x, y):
        return self.task.loss(self.model(x), y) - self.raw[0], {}
'''


def test_unchanged_state_is_flagged_and_a_moved_one_is_not() -> None:
    start = {"weights": torch.full((2, 4), 0.25), "magnitudes": torch.full((5,), 0.5)}
    same = diagnostics.learning_record(start, start, {k: v.clone() for k, v in start.items()})
    assert same["not_moved"] and not same["moved"] and same["movement"] == 0.0
    weights = same["groups"]["weights"]
    assert weights["entropy_start"] == pytest.approx(1.0) and weights["uniform"] == 0.25 and weights["k"] == 4

    jitter = {"weights": start["weights"] + torch.tensor([0.01, -0.01, 0.0, 0.0]),
              "magnitudes": start["magnitudes"] + 0.04}  # below the threshold everywhere
    assert diagnostics.learning_record(start, None, jitter)["not_moved"]

    end = {"weights": torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]]),
           "magnitudes": start["magnitudes"]}
    moved = diagnostics.learning_record(start, end, end)
    assert moved["moved"] and not moved["not_moved"]
    weights = moved["groups"]["weights"]
    assert weights["total_variation"] == pytest.approx(0.45 / 2)  # row 1 moved 0.45 of its mass, row 2 none
    assert weights["movement"] == weights["total_variation"] and weights["moved"]
    assert weights["max_abs_change"] == pytest.approx(0.45) and weights["max_weight_end"] == pytest.approx(0.7)
    row = torch.tensor([0.7, 0.1, 0.1, 0.1])
    expected_entropy = (-(row * row.log()).sum() / math.log(4) + 1.0) / 2
    assert weights["entropy_end"] == pytest.approx(float(expected_entropy), abs=1e-6)
    assert not moved["groups"]["magnitudes"]["moved"]
    assert moved["phases"]["search"]["weights"] == pytest.approx(0.45) and moved["phases"]["train"]["weights"] == 0
    assert moved["groups"]["magnitudes"]["start"] == [0.5] * 5  # small groups are recorded in full


def test_state_contract_is_checked() -> None:
    with pytest.raises(ValueError, match="rows summing to 1"):
        diagnostics.snapshot({"layer0/weights": torch.tensor([0.5, 0.2])})
    with pytest.raises(TypeError, match="not a tensor"):
        diagnostics.snapshot({"widths": [1.0, 2.0]})
    with pytest.raises(ValueError, match="changed shape"):
        diagnostics.learning_record({"widths": torch.zeros(2)}, None, {"widths": torch.zeros(3)})
    assert diagnostics.learning_record(None, None, None) is None


def test_trajectory_summary_is_compact() -> None:
    start = {"weights": torch.full((10,), 0.1), "probabilities": torch.full((10, 2), 0.5)}
    now = {"weights": torch.softmax(torch.arange(10.0), -1), "probabilities": torch.full((10, 2), 0.6)}
    summary = diagnostics.state_summary(now, start)
    assert summary["probabilities"] == {"max_abs_change": pytest.approx(0.1), "mean_abs_change": pytest.approx(0.1)}
    assert summary["weights"]["max_weight"] == pytest.approx(float(now["weights"].max()), abs=1e-6)
    assert 0 < summary["weights"]["entropy"] < 1


def test_runner_records_the_flag_for_a_run_that_cannot_move_and_not_for_one_that_does(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    (repo / "methods" / "augmentation_plugins.py").write_text(AUGMENTATION_METHODS)
    results = tmp_path / "results"
    run = run_cli("run", "--tasks", "mnist_rot", "--methods", "erm,frozen_aug,moving_aug", "--profile", "smoke",
                  "--seeds", "0", "--results-dir", str(results), "--no-progress", cwd=repo)
    assert run.returncode == 0, run.stdout + run.stderr
    records = {r["method"]: r for r in store.load_records(results)}
    assert records["erm"]["learning"] is None and records["erm"]["search_history"] is None

    frozen = records["frozen_aug"]["learning"]
    assert frozen["not_moved"] and frozen["movement"] == 0.0 and frozen["threshold"] == diagnostics.MOVE_THRESHOLD

    moving = records["moving_aug"]["learning"]
    assert moving["moved"] and not moving["not_moved"]
    assert moving["groups"]["magnitudes"]["end"][0] > moving["groups"]["magnitudes"]["start"][0] + 0.1
    assert moving["phases"]["search"]["magnitudes"] == 0 and moving["phases"]["train"]["magnitudes"] > 0.1

    table = run_cli("table", "--results-dir", str(results), cwd=repo)
    assert table.returncode == 0, table.stderr
    rows = {line.split("|")[1].strip(): line for line in (results / "tables" / "mnist_rot.smoke.md").read_text()
            .splitlines() if line.startswith("| ") and "method" not in line}
    assert "NOT MOVED (1/1)" in rows["frozen_aug"]
    assert "NOT MOVED" not in rows["moving_aug"] and f"{moving['movement']:.3f}" in rows["moving_aug"]
    assert "NOT MOVED" not in rows["erm"]
