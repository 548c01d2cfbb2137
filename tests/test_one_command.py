"""One command from install to report: `python run_bench.py` runs the default suite
and writes tables, plots and report; off a terminal it prints one line per run."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from bench.cli import main
from bench.progress import SuiteProgress, run_line
from tests.helpers import copy_repo, run_cli

TINY_DEFAULT = """description: a one-run stand-in for the default suite (test only)
profile: smoke
seeds: [0]
widths: [1.0]
tasks: [mnist_rot]
methods: [erm]
"""


def test_no_arguments_runs_the_default_suite_then_writes_tables_plots_and_report(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    (repo / "bench" / "suites" / "quick.yaml").write_text(TINY_DEFAULT)  # the default suite, made tiny
    result = run_cli(cwd=repo)  # exactly `python run_bench.py`; its output is a pipe, not a terminal
    assert result.returncode == 0, result.stdout + result.stderr
    results = repo / "results"
    assert (results / "report.html").is_file() and (results / "report.md").is_file()
    assert (results / "tables" / "mnist_rot.smoke.md").is_file()
    assert list((results / "plots").glob("*.png"))
    assert f"report: {Path('results') / 'report.html'}" in result.stdout
    # Not a terminal: one line per finished run, no bar redrawn with carriage returns.
    assert "\r" not in result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("[1/1] ")]
    assert line.startswith("[1/1] mnist_rot/smoke erm width=1 seed=0: ok accuracy=") and line.endswith(" s")


def test_no_report_only_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--suite", "smoke", "--tasks", "mnist_rot", "--methods", "erm", "--results-dir",
                 str(tmp_path), "--no-report"]) == 0
    assert list((tmp_path / "runs").glob("*.json"))
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "tables").exists()
    assert "report:" not in capsys.readouterr().out


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_suite_progress_prints_lines_off_a_terminal_and_a_bar_on_one() -> None:
    record = {"status": "ok", "metric": "accuracy", "test_metric": 0.91234, "wall_s": 12.4}
    log = io.StringIO()
    progress = SuiteProgress(2, stream=log)
    progress.finished("mnist_rot/quick erm width=1 seed=0", record)
    progress.finished("qm9/quick erm width=1 seed=0", {"status": "failed", "wall_s": 3.0})
    progress.close()
    assert log.getvalue().splitlines() == ["[1/2] mnist_rot/quick erm width=1 seed=0: ok accuracy=0.9123 12 s",
                                           "[2/2] qm9/quick erm width=1 seed=0: failed 3 s"]
    terminal = FakeTerminal()
    progress = SuiteProgress(2, stream=terminal)
    progress.finished("mnist_rot/quick erm width=1 seed=0", record)
    progress.close()
    assert "[1/2]" not in terminal.getvalue() and "\r" in terminal.getvalue()  # tqdm redraws in place
    quiet = io.StringIO()
    progress = SuiteProgress(1, enabled=False, stream=quiet)
    progress.finished("x", record)
    progress.close()
    assert quiet.getvalue() == ""
    assert run_line(1, 1, "x", {"status": "skipped"}) == "[1/1] x: skipped"


def test_no_arguments_launch_a_pool_of_one_worker_per_usable_core(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import cli, threads
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert cli.one_command_launch() == ["-j", "2"]  # measured 2.2x faster than inline on 2 idle cores
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    assert cli.one_command_launch() == []  # one core: inline, with its thread
    seen: list[tuple[str, int | None]] = []
    monkeypatch.setattr(cli, "cmd_run", lambda args: seen.append((args.suite, args.jobs)) or 0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert main([]) == 0
    assert main(["--suite", "smoke"]) == 0  # any explicit run keeps the inline default
    assert seen == [("quick", 2), ("smoke", None)]
