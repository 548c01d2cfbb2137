"""Every method learns: end to end through the CLI (in-process), at a budget small
enough for CI, each method's test score must beat the best constant predictor
clearly, so a trainer that learns nothing (a constant predictor scores 0.13 on
mnist_rot, which 0 <= accuracy <= 1 never caught) fails here.

The tasks' ``smoke`` profiles check plumbing in a second and do not learn; the
learning budget below replaces the smoke profile of a task for these tests only
(more examples and epochs; a few seconds per run on 2 CPU cores). Methods that
apply to the 1-op ``sinusoids`` task run there (a fraction of a second); the
image-only and multi-op bilevel methods run on ``mnist_rot``.

"Clearly": a classifier must beat the best constant predictor on the test split
(its majority-class frequency, at least chance) by 3 binomial standard errors of
that frequency; a regressor's MAE must be below 0.9 x the MAE of the best constant
(the test median). ``INVBENCH_BREAK_TRAINER=lr0`` or ``=noise`` breaks the trainer
for every test here (learning rate 0 / training inputs replaced by noise) to show
that these tests then fail; ``test_the_learning_check_fails_for_a_broken_trainer``
keeps that demonstration in CI on one cheap case.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from bench import runner, store, training
from bench.cli import main
from bench.config import RunConfig
from bench.registry import load_registry

# Task -> changes to its smoke profile that make every method below learn in seconds.
LEARNING_BUDGET: dict[str, dict[str, Any]] = {
    "sinusoids": {"epochs": 10, "lr": 1e-2, "options": {"n_per_class": 60}},
    # 12 epochs. The bilevel retrains at this tiny budget are fragile: measured on seed 0
    # with 2 torch threads, test accuracy by epochs 8 / 12 / 16: dada 0.207 / 0.477 /
    # 0.566, faster_aa 0.449 / 0.336 / 0.207 (bar 0.220, erm 0.543 at 8): their training
    # loss falls steadily while the clean test accuracy swings, a finding stated in
    # docs/notes/learn-bilevel.md, not hidden by this choice. The tests run with one
    # thread (tests/conftest.py): at 12 epochs dada 0.387 (estimator relax, the default since
    # 2026-12-06; 0.375 with gumbel), faster_aa 0.316.
    "mnist_rot": {"epochs": 12, "lr": 3e-3, "options": {"n_train": 1024, "base_k": 8}},
    "qm9_lumo": {"epochs": 8, "lr": 3e-3, "options": {"n_train": 1024}},
    "qm9_gap": {"epochs": 8, "lr": 3e-3, "options": {"n_train": 1024}},
}
WIDTH = {"sinusoids": "16"}  # the default width 1 is 2 hidden neurons: the capacity study's smallest model
# (method, task): every method of methods/ (checked below) on a task it applies to.
CASES = [("erm", "sinusoids"), ("fixed", "sinusoids"), ("augerino", "sinusoids"), ("augnet", "sinusoids"),
         ("dada", "mnist_rot"), ("faster_aa", "mnist_rot"), ("randaugment", "mnist_rot"),
         ("trivialaugment", "mnist_rot"), ("erm", "qm9_lumo"), ("erm", "qm9_gap")]
Z = 3.0  # binomial standard errors above the best constant predictor (one-sided p < 0.0014 by chance)
REGRESSION_FRACTION = 0.9


def break_trainer(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """A deliberately broken trainer, in bench/training.py: learning rate 0, or
    training inputs replaced by noise (an augmentation that destroys the input)."""
    if how == "lr0":
        make_optimizer = training.make_optimizer

        def frozen(groups: list[dict[str, Any]], profile: Any) -> torch.optim.Optimizer:
            optimizer = make_optimizer(groups, profile)
            for group in optimizer.param_groups:
                group["lr"] = 0.0
            return optimizer
        monkeypatch.setattr(training, "make_optimizer", frozen)
    elif how == "noise":
        iterate_batches = training.iterate_batches

        def destroyed(*args: Any, **kwargs: Any) -> Any:
            for x, y in iterate_batches(*args, **kwargs):
                yield torch.randn_like(x), y
        monkeypatch.setattr(training, "iterate_batches", destroyed)
    else:
        raise ValueError(f"INVBENCH_BREAK_TRAINER={how!r}: use lr0 or noise")


@pytest.fixture
def learning_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = load_registry()
    for task, change in LEARNING_BUDGET.items():
        cls = registry.task(task).cls
        smoke = cls.profiles["smoke"]
        budget = dataclasses.replace(smoke, **{**change, "options": {**smoke.options, **change["options"]}})
        monkeypatch.setattr(cls, "profiles", {**cls.profiles, "smoke": budget})
    monkeypatch.setattr(runner, "_DATA_CACHE", {})  # its key does not see the budget
    if os.environ.get("INVBENCH_BREAK_TRAINER"):
        break_trainer(monkeypatch, os.environ["INVBENCH_BREAK_TRAINER"])


def run_one(method: str, task: str, results: Path) -> dict[str, Any]:
    assert main(["run", "--tasks", task, "--methods", method, "--profile", "smoke", "--seeds", "0",
                 "--widths", WIDTH.get(task, "1"), "--results-dir", str(results), "--no-progress",
                 "--no-report"]) == 0
    [record] = store.load_records(results)
    assert record["status"] == "ok", record["error"]
    return record


def assert_learned(record: dict[str, Any]) -> None:
    """The test score beats the best constant predictor clearly (see the module docstring)."""
    registry = load_registry()
    config = RunConfig(record["task"], record["profile"], record["method"], record["width"], record["depth"],
                       record["seed"])
    data = runner.load_task_data(registry, config, None)
    y = data.test.y
    if record["higher_is_better"]:
        num_classes = registry.task(record["task"]).cls.num_classes
        constant = max(torch.bincount(y).max().item() / len(y), 1 / num_classes)
        bound = constant + Z * math.sqrt(constant * (1 - constant) / len(y))
        assert record["test_metric"] > bound, (f"{record['label']} on {record['task']}: test accuracy "
                                               f"{record['test_metric']:.4f}, best constant {constant:.4f}")
    else:
        mad_mev = data.info["mad_ev"] * 1000
        constant = (y - y.median()).abs().mean().item() * mad_mev
        assert record["test_metric"] < REGRESSION_FRACTION * constant, (
            f"{record['label']} on {record['task']}: test MAE {record['test_metric']:.1f} meV, "
            f"best constant {constant:.1f} meV")


def test_every_method_has_a_learning_case() -> None:
    assert {m for m, _ in CASES} == set(load_registry().methods)


@pytest.mark.parametrize("method, task", CASES)
def test_method_learns(method: str, task: str, tmp_path: Path, learning_budget: None) -> None:
    assert_learned(run_one(method, task, tmp_path))


@pytest.mark.parametrize("how", ["lr0", "noise"])
def test_the_learning_check_fails_for_a_broken_trainer(how: str, tmp_path: Path, learning_budget: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if os.environ.get("INVBENCH_BREAK_TRAINER"):
        pytest.skip("the trainer is already broken for every test")
    break_trainer(monkeypatch, how)
    with pytest.raises(AssertionError, match="best constant"):
        assert_learned(run_one("fixed", "sinusoids", tmp_path))
