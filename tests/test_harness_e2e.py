"""End-to-end: the smoke suite produces records, tables and plots; reruns resume."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import store
from bench.cli import main

REQUIRED_KEYS = {
    "run_id", "task", "profile", "method", "method_params", "width", "seed", "status", "error", "metric",
    "test_metric", "val_metric", "test", "val", "invariance", "search_s", "train_s", "eval_s", "total_s",
    "n_params", "peak_memory_mb", "device", "versions", "git", "timestamp", "history",
}


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("smoke")
    assert main(["run", "--suite", "smoke", "--tasks", "mnist_rot", "--methods", "erm,fixed", "--results-dir", str(results),
                 "--no-progress"]) == 0
    return results


def test_smoke_suite_writes_complete_records(smoke_results: Path) -> None:
    records = store.load_records(smoke_results)
    assert sorted(r["method"] for r in records) == ["erm", "fixed"]
    for record in records:
        assert REQUIRED_KEYS <= set(record), REQUIRED_KEYS - set(record)
        assert record["status"] == "ok", record["error"]
        assert 0.0 <= record["test_metric"] <= 1.0
        assert record["metric"] == "accuracy"
        assert record["total_s"] == pytest.approx(record["search_s"] + record["train_s"] + record["eval_s"])
        assert record["train_s"] > 0 and record["n_params"] > 0
        assert -10 < record["invariance"]["score"] <= 1.0
        assert 0.0 <= record["invariance"]["agreement"] <= 1.0
        assert len(record["history"]) == 1 and "val" in record["history"][0]
        # The file name is the run id, and the record is strict JSON.
        path = store.record_path(smoke_results, record["run_id"])
        json.loads(path.read_text())


def test_same_seed_same_numbers_on_cpu(smoke_results: Path, tmp_path: Path) -> None:
    assert main(["run", "--suite", "smoke", "--tasks", "mnist_rot", "--methods", "erm", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    again = store.load_records(tmp_path)[0]
    first = next(r for r in store.load_records(smoke_results) if r["method"] == "erm")
    assert again["run_id"] == first["run_id"]
    assert again["test_metric"] == first["test_metric"]
    assert again["invariance"]["score"] == first["invariance"]["score"]


def test_table_and_plot_from_records(smoke_results: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["table", "--results-dir", str(smoke_results)]) == 0
    assert main(["plot", "--results-dir", str(smoke_results)]) == 0
    md = (smoke_results / "tables" / "mnist_rot.smoke.md").read_text()
    assert "| erm |" in md and "| fixed |" in md and "mean ± std" in md
    csv = (smoke_results / "tables" / "mnist_rot.smoke.csv").read_text()
    assert csv.startswith("method,") and "test_metric_mean" in csv
    for suffix in ("png", "pdf"):
        plot = smoke_results / "plots" / f"mnist_rot.smoke.metric_vs_time.{suffix}"
        assert plot.stat().st_size > 1000


def test_rerun_skips_finished_runs(smoke_results: Path, capsys: pytest.CaptureFixture) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in store.runs_dir(smoke_results).glob("*.json")}
    assert main(["run", "--suite", "smoke", "--tasks", "mnist_rot", "--methods", "erm,fixed", "--results-dir",
                 str(smoke_results), "--no-progress"]) == 0
    assert "2 reused" in capsys.readouterr().out
    after = {p.name: p.stat().st_mtime_ns for p in store.runs_dir(smoke_results).glob("*.json")}
    assert before == after


def test_half_written_record_is_rerun_not_trusted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["run", "--suite", "smoke", "--tasks", "mnist_rot", "--methods", "erm,fixed", "--results-dir", str(tmp_path),
            "--no-progress"]
    assert main(args) == 0
    paths = sorted(store.runs_dir(tmp_path).glob("*.json"))
    victim = paths[0]
    text = victim.read_text()
    victim.write_text(text[: len(text) // 2])  # as if killed mid-write without the atomic rename
    (victim.parent / f".{victim.name}.123.tmp").write_text(text[:10])  # a leftover temporary file
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 ok" in out and "1 reused" in out
    assert store.read_record(victim)["status"] == "ok"


def test_force_reruns_and_archives_old_records(smoke_results: Path, tmp_path: Path) -> None:
    args = ["run", "--suite", "smoke", "--tasks", "mnist_rot", "--methods", "erm", "--results-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    assert main([*args, "--force"]) == 0
    assert len(list((store.runs_dir(tmp_path) / "archive").glob("*.json"))) == 1
    assert len(store.load_records(tmp_path)) == 1
