"""Equal-budget tuning (issue 16 item 2): ``--tune N`` draws N configurations per
method x task, each an ordinary record; the tables select by the validation metric
only and report the selected configuration's test metric beside the default's."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench import store
from bench.cli import build_parser, main, plan_runs
from bench.registry import load_registry
from bench.tuned import tuned_summary

REGISTRY = load_registry()


def plan(*argv: str):
    return plan_runs(build_parser().parse_args(["run", *argv]), REGISTRY)[1]


def test_trials_are_reproducible_equal_in_number_and_trial_0_is_the_plain_run() -> None:
    argv = ("--suite", "smoke", "--tasks", "mnist_rot", "--methods", "erm,augnet,randaugment", "--seeds", "0,1")
    tuned, plain = plan(*argv, "--tune", "4"), plan(*argv)
    assert [c.semantic() for c in tuned] == [c.semantic() for c in plan(*argv, "--tune", "4")]
    for method in ("erm", "augnet", "randaugment"):
        configs = [c for c in tuned if c.method == method]
        assert sorted({c.trial for c in configs}) == [0, 1, 2, 3], method  # the same N for every method, erm included
        assert all(sum(c.trial == t for c in configs) == 2 for t in range(4)), "every trial over every seed"
        trial0 = [c.semantic() for c in configs if c.trial == 0]
        assert trial0 == [c.semantic() for c in plain if c.method == method], "trial 0 is the default run"
        epochs = {c.train_params.get("epochs") for c in configs}
        assert epochs == {None}, "the per-trial budget is never tuned"


def test_tuned_suite_runs_selects_by_validation_and_resumes(tmp_path: Path, capsys) -> None:
    argv = ["run", "--suite", "smoke", "--tasks", "sinusoids", "--methods", "erm,fixed", "--seeds", "0,1",
            "--tune", "3", "--results-dir", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    records = [json.loads(p.read_text()) for p in store.runs_dir(tmp_path).glob("*.json")]
    assert len(records) == 2 * 3 * 2 and {r["trial"] for r in records} == {0, 1, 2}
    capsys.readouterr()
    assert main(argv) == 0 and "12 reused" in capsys.readouterr().out  # resumable: nothing reruns
    assert len(list(store.runs_dir(tmp_path).glob("*.json"))) == 12

    summary = tuned_summary(records).set_index("method")
    for method in ("erm", "fixed"):
        runs = pd.DataFrame([r for r in records if r["method"] == method])
        by_config = runs.groupby("label")[["val_metric", "test_metric"]].mean()
        best = by_config["val_metric"].idxmax()  # accuracy: higher is better
        row = summary.loc[method]
        assert row["trials"] == 3 and row["seeds"] == 2 and row["selected"] == best
        assert row["tuned_test_mean"] == by_config.loc[best, "test_metric"]
        assert row["default_test_mean"] == by_config.loc[method, "test_metric"]
        assert abs(row["tuning_s"] - runs["total_s"].sum()) < 1e-9
    assert main(["table", "--results-dir", str(tmp_path)]) == 0
    text = (tmp_path / "tables" / "sinusoids.smoke.tuned.md").read_text()
    assert "default test accuracy" in text and "tuned test accuracy" in text and "tuning s" in text
    # paired statistics of the tuned configurations against tuned erm, beside the defaults'
    paired = pd.read_csv(tmp_path / "tables" / "sinusoids.smoke.tuned.paired.csv")
    fixed_tuned = summary.loc["fixed", "tuned_test_mean"] - summary.loc["erm", "tuned_test_mean"]
    assert paired.set_index("method").loc["fixed", "mean"] == pytest.approx(fixed_tuned)
    default = pd.read_csv(tmp_path / "tables" / "sinusoids.smoke.paired.csv")
    assert set(default["method"]) == {"fixed"}, "drawn trials stay out of the default statistics"


def test_tune_in_a_suite_file(tmp_path: Path) -> None:
    path = tmp_path / "tuned.yaml"
    path.write_text("profile: smoke\ntasks: [sinusoids]\nmethods: [erm]\nseeds: [0]\ntune: {trials: 5}\n")
    assert sorted(c.trial for c in plan("--suite", str(path))) == [0, 1, 2, 3, 4]
    assert sorted(c.trial for c in plan("--suite", "tuned_quick", "--tasks", "qm9", "--methods", "erm",
                                        "--seeds", "0")) == [0, 1, 2, 3]
