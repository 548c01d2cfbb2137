"""The invariance-recovery claim, checked in CI: on the glyphs task (the Mario-Iggy
protocol), at the quick budget and with the invariance_recovery suite's own Augerino
settings (lambda 0.05), the learned rotation half-range ends within 0.55-1.05 rad
(pi/4 = 0.785) in at least 2 of 3 seeds, starting from 0.16 rad.

It trains three quick runs (384 steps each) through the harness's training loop,
without validation and the evaluation extras of a full run (invariance score, probe,
curves): about 25 s of CPU per seed on one core.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import yaml

from bench.api import RunContext
from bench.config import RunConfig
from bench.progress import Progress
from bench.recovery import rotation_half_range
from bench.registry import load_registry
from bench.suites import SUITES_DIR
from bench.timing import PhaseTimer
from bench.training import fit

REGISTRY = load_registry()
BAND = (0.55, 1.05)  # rad: pi/4 -0.24 / +0.26


def suite_augerino_params(reg: float) -> dict[str, Any]:
    suite = yaml.safe_load((SUITES_DIR / "invariance_recovery.yaml").read_text())
    for entry in suite["methods"]:
        if isinstance(entry, dict) and entry["name"] == "augerino" and entry["params"]["reg"] == reg:
            return {**REGISTRY.method("augerino").defaults_for("quick"), **entry["params"]}
    raise AssertionError(f"the suite has no augerino entry with reg {reg}")


def learned_half_range(task_name: str, profile: str, params: dict[str, Any], seed: int) -> tuple[float, float]:
    """(start, end) rotation half-range of Augerino trained as a run of the harness would be."""
    task = REGISTRY.task(task_name).cls()
    config = RunConfig(task_name, profile, "augerino", seed=seed, method_params=params)
    data = task.load(profile, None, config.data_seed)
    data.val = None  # no per-epoch validation: the test reads the learned range only
    torch.manual_seed(config.init_seed)
    model = task.make_model(profile, 1.0, None)
    torch.manual_seed(config.train_seed)
    ctx = RunContext(config, task, task.profile(profile), data, torch.device("cpu"),
                     lambda: task.make_model(profile, 1.0, None), Progress(enabled=False))
    method = REGISTRY.method("augerino").cls(ctx, model, params)
    start = rotation_half_range(method.learned_augmentation())
    fit(method, PhaseTimer(torch.device("cpu")), torch.Generator().manual_seed(config.train_seed))
    return start, rotation_half_range(method.learned_augmentation())


def test_augerino_learns_plus_minus_pi_over_4_on_glyphs_in_2_of_3_seeds() -> None:
    params = suite_augerino_params(0.05)
    results = [learned_half_range("glyphs", "quick", params, seed) for seed in (0, 1, 2)]
    starts, ends = zip(*results)
    assert all(s < 0.2 for s in starts), starts  # it starts at +-9 degrees: the range is learned
    inside = [BAND[0] <= e <= BAND[1] for e in ends]
    assert sum(inside) >= 2, f"half-ranges {ends} (pi/4 = {math.pi / 4:.3f}); band {BAND}"


def test_augnet_trunk_settings_reach_the_optimiser_only_when_given() -> None:
    """The suite's AugNet runs one Adam at the official Mario-Iggy lr and decay on the
    trunk too (trunk_lr / trunk_weight_decay); left null, the trunk keeps the profile's."""
    suite = yaml.safe_load((SUITES_DIR / "invariance_recovery.yaml").read_text())
    entry = next(m for m in suite["methods"] if isinstance(m, dict) and m["name"] == "augnet")
    task = REGISTRY.task("glyphs").cls()
    augnet = REGISTRY.method("augnet")
    for overrides, expected in ((entry["params"], {"lr": 5e-4, "weight_decay": 1.0}), ({}, {})):
        params = {**augnet.defaults_for("smoke"), **overrides}
        config = RunConfig("glyphs", "smoke", "augnet", method_params=params)
        ctx = RunContext(config, task, task.profile("smoke"), task.load("smoke", None, 0), torch.device("cpu"),
                         lambda: task.make_model("smoke", 1.0, None), Progress(enabled=False))
        trunk, aug = augnet.cls(ctx, task.make_model("smoke", 1.0, None), params).param_groups()
        assert {k: v for k, v in trunk.items() if k != "params"} == expected
        assert (aug["lr"], aug["weight_decay"]) == (5e-4, 1.0)
