"""Shared test helpers: a throw-away copy of the repository and a CLI runner."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = ("run_bench.py", "bench", "methods", "datasets")


def copy_repo(dest: Path) -> Path:
    """Copy the code (not results, not tests) so a test may add or edit plugins."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in CODE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python run_bench.py ARGS`` in a fresh interpreter, offline, without bars."""
    env = {**os.environ, "INVBENCH_OFFLINE": "1", "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "run_bench.py", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def smoke_records_by_task(method: str, tasks: str, results_dir: Path) -> dict[str, dict]:
    """Run ``method`` on ``tasks`` (comma-separated) with the smoke profile, seed 0, through
    the CLI; assert it exited 0 and return its records by task."""
    from bench import store

    result = run_cli("run", "--tasks", tasks, "--methods", method, "--profile", "smoke", "--seeds", "0",
                     "--results-dir", str(results_dir), "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    records = store.load_records(results_dir)
    by_task = {r["task"]: r for r in records}
    assert len(by_task) == len(records), "more than one record per task"
    return by_task
