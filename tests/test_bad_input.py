"""Every error a user can cause: one line on stderr, exit code 2, no record lost."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench import store
from tests.helpers import run_cli


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragments", [
    (("run", "--tasks", "no_such_task"), ("unknown task 'no_such_task'", "mnist_rot")),
    (("run", "--methods", "no_such_method"), ("unknown method 'no_such_method'", "erm")),
    (("run", "--suite", "no_such_suite"), ("unknown suite 'no_such_suite'", "quick")),
    (("run", "--widths", "1,abc"), ("malformed widths list",)),
    (("run", "--widths", "0,1"), ("widths must be positive",)),
    (("run", "--seeds", "0,,1"), ("empty item in seeds list",)),
    (("run", "--param", "erm"), ("expected METHOD.KEY=VALUE",)),
    (("run", "--device", "tpu"), ("invalid choice: 'tpu'",)),
    (("frobnicate",), ("unknown command 'frobnicate'",)),
    (("run", "--data-root", "/no/such/folder"), ("--data-root /no/such/folder is not a folder",)),
])
def test_bad_arguments(args: tuple[str, ...], fragments: tuple[str, ...], tmp_path: Path) -> None:
    assert_one_line_error(run_cli(*args, "--results-dir", str(tmp_path)) if args[0] == "run"
                          else run_cli(*args), *fragments)


def test_results_dir_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "results"
    target.write_text("precious")
    for command in ("run", "table", "plot"):
        extra = ("--suite", "smoke", "--tasks", "mnist_rot") if command == "run" else ()
        assert_one_line_error(run_cli(command, *extra, "--results-dir", str(target)), str(target))
    assert target.read_text() == "precious"


def test_table_and_plot_of_an_empty_results_dir(tmp_path: Path) -> None:
    for command in ("table", "plot"):
        assert_one_line_error(run_cli(command, "--results-dir", str(tmp_path)), "no run records", "run_bench.py run")


def test_full_mnist_offline_without_data_root(tmp_path: Path) -> None:
    # Records already written must survive the error.
    assert run_cli("run", "--suite", "smoke", "--tasks", "mnist_rot", "--methods", "erm", "--results-dir", str(tmp_path),
                   "--no-progress").returncode == 0
    before = {p: p.read_bytes() for p in store.runs_dir(tmp_path).glob("*.json")}
    result = run_cli("run", "--tasks", "mnist_rot", "--methods", "erm", "--profile", "paper", "--offline",
                     "--results-dir", str(tmp_path))
    assert_one_line_error(result, "mnist_rot", "full MNIST", "--data-root", "MNIST/raw")
    after = {p: p.read_bytes() for p in store.runs_dir(tmp_path).glob("*.json")}
    assert before == after


def test_unavailable_task_in_a_suite_is_skipped_not_an_error(tmp_path: Path) -> None:
    suite = tmp_path / "paper_mnist.yaml"
    suite.write_text("description: test\nprofile: paper\ntasks: [mnist_rot]\nmethods: [erm]\nseeds: [0]\n")
    result = run_cli("run", "--suite", str(suite), "--results-dir", str(tmp_path / "r"), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "1 skipped" in result.stdout and "full MNIST" in result.stdout
    [record] = store.load_records(tmp_path / "r")
    assert record["status"] == "skipped" and "--data-root" in record["error"]
    assert run_cli("table", "--results-dir", str(tmp_path / "r")).returncode == 0
    assert "skipped" in (tmp_path / "r" / "tables" / "mnist_rot.paper.md").read_text()


def test_malformed_suite_file(tmp_path: Path) -> None:
    suite = tmp_path / "bad.yaml"
    suite.write_text("profile: quick\ntasks: [mnist_rot]\n")
    assert_one_line_error(run_cli("run", "--suite", str(suite), "--results-dir", str(tmp_path)), "malformed")
