"""Tables from a hand-written set of records, against golden files.

The expected numbers can be checked by hand: erm's test accuracies are 0.80, 0.82,
0.84 (mean 0.82, sample std 0.02); fixed at width 1 has one ok seed and one failed.
The test only reads the golden files; after an intended format change, regenerate
them with ``python tests/regenerate_golden.py`` (a separate step, so a test run can
never write its own expectations) and review the diff.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench import store, tables
from bench.cli import main

DATA = Path(__file__).parent / "data"
GOLDEN = ("toy.quick.md", "toy.quick.csv", "toy.paper.md")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "records", store.runs_dir(tmp_path))
    return tmp_path


def test_tables_match_the_golden_files(results: Path) -> None:
    assert main(["table", "--results-dir", str(results)]) == 0
    for name in GOLDEN:
        assert (results / "tables" / name).read_text() == (DATA / "golden" / name).read_text(), name


def test_numbers_are_the_statistics_of_the_records(results: Path) -> None:
    summary, metric = tables.task_tables(store.load_records(results))[("toy", "quick")]
    assert metric == "accuracy"
    erm = summary[summary["method"] == "erm"].iloc[0]
    assert erm["n"] == 3
    assert erm["test_metric_mean"] == pytest.approx(0.82)
    assert erm["test_metric_std"] == pytest.approx(0.02)
    assert erm["train_s_mean"] == pytest.approx(12.0)
    fixed = summary[(summary["method"] == "fixed") & (summary["width"] == 1.0)].iloc[0]
    assert (fixed["n"], fixed["n_failed"]) == (1, 1)
    assert fixed["status"] == "1 ok, 1 failed: ValueError: boom"
    assert pd.isna(fixed["test_metric_std"])
    bilevel = summary[summary["method_name"] == "bilevel"].iloc[0]
    assert bilevel["method"] == "bilevel (steps=3)" and bilevel["cost_s_mean"] == pytest.approx(40.0)


def test_skipped_runs_are_listed_not_dropped(results: Path) -> None:
    summary, _ = tables.task_tables(store.load_records(results))[("toy", "paper")]
    assert list(summary["status"]) == ["1 skipped: data not here"]
    assert summary["n"].tolist() == [0]


def test_plots_from_records(results: Path) -> None:
    assert main(["plot", "--results-dir", str(results)]) == 0
    names = sorted(p.name for p in (results / "plots").iterdir())
    # Two widths of `fixed` -> the width plot too; the all-skipped paper profile has nothing to draw;
    # three methods at width 1 -> the rank diagram of the quick profile.
    assert names == ["ranks.quick.pdf", "ranks.quick.png",
                     "toy.quick.invariance_vs_width.pdf", "toy.quick.invariance_vs_width.png",
                     "toy.quick.metric_vs_time.pdf", "toy.quick.metric_vs_time.png",
                     "toy.quick.metric_vs_width.pdf", "toy.quick.metric_vs_width.png",
                     "toy.quick.scores.pdf", "toy.quick.scores.png"]
