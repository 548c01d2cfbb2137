"""Launchers: the pool and the slurm path (submitit's executors) write the same
records as inline; a killed pool resumes with no duplicate."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench import heartbeat, store
from bench.cli import main
from bench.errors import UserError
from bench.threads import usable_cores
from bench.slurm import executor_parameters, load_settings
from tests.helpers import ROOT

SMOKE = ["--tasks", "mnist_rot", "--methods", "erm,fixed", "--profile", "smoke", "--seeds", "0", "--no-progress"]
COMPARED = ("test", "val", "invariance", "history", "n_params", "label", "status")


def by_id(results: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in store.load_records(results)}


def test_pool_gives_the_same_records_as_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # CPU numbers are bit-identical for a given thread count: pin it (an explicit
    # OMP_NUM_THREADS wins over the free-core guess) for the inline run and the pool workers.
    worker_threads = max(1, usable_cores() // 2)
    monkeypatch.setenv("OMP_NUM_THREADS", str(worker_threads))
    assert main(["run", *SMOKE, "--results-dir", str(tmp_path / "inline")]) == 0
    assert main(["run", *SMOKE, "--launcher", "pool", "-j", "2", "--results-dir", str(tmp_path / "pool")]) == 0
    inline, pool = by_id(tmp_path / "inline"), by_id(tmp_path / "pool")
    assert sorted(inline) == sorted(pool) and len(inline) == 2
    for run_id, record in inline.items():
        assert record["status"] == "ok" and pool[run_id]["torch_threads"] == record["torch_threads"] == worker_threads
        for key in COMPARED:
            assert pool[run_id][key] == record[key], key
    # Nothing left behind: no heartbeat, no temporary file.
    assert sorted(p.suffix for p in store.runs_dir(tmp_path / "pool").iterdir()) == [".json", ".json"]


def test_killed_pool_is_completed_by_a_rerun_without_duplicates(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["--tasks", "mnist_rot", "--methods", "erm,fixed", "--profile", "smoke", "--seeds", "0,1",
            "--results-dir", str(tmp_path), "--no-progress"]
    env = {**os.environ, "INVBENCH_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "run_bench.py", "run", *args, "-j", "2"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not list(store.runs_dir(tmp_path).glob("*.json")) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its workers: their own session
        proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in store.runs_dir(tmp_path).glob("*.json")}
    assert 1 <= len(first) < 4, "kill the pool mid-suite"

    # Runs cut short leave heartbeats whose pid is dead: crashed, never running.
    deadline = time.time() + 10
    while any(heartbeat.is_live(b) for b in heartbeat.heartbeats(tmp_path).values()) and time.time() < deadline:
        time.sleep(0.1)
    capsys.readouterr()
    assert main(["status", *args[:-1]]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    left = len(heartbeat.heartbeats(tmp_path))  # runs cut short (usually one or two)
    assert f"{len(first)} ok" in line and "0 running" in line and f"{left} crashed" in line
    assert f"{4 - len(first) - left} missing" in line

    assert main(["run", *args]) == 0  # resume, here with the inline launcher
    out = capsys.readouterr().out
    assert f"{4 - len(first)} ok" in out and f"{len(first)} reused" in out
    records = store.load_records(tmp_path)
    assert len(records) == 4 and len({r["run_id"] for r in records}) == 4
    assert all(r["status"] == "ok" for r in records)
    assert all(p.stat().st_mtime_ns == first[p.name] for p in store.runs_dir(tmp_path).glob("*.json") if p.name in first)
    assert not list(store.runs_dir(tmp_path).glob("*.running")) and not (store.runs_dir(tmp_path) / "archive").exists()


def test_slurm_path_through_submitit_debug_executor(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text("partition: gpu\ntime: 30\nslurm_account: lab\nmethods:\n  fixed: {time: 90}\n")
    results = tmp_path / "results"
    args = ["run", *SMOKE, "--results-dir", str(results)]
    assert main([*args, "--launcher", "slurm", "--slurm-cluster", "debug", "--slurm-config", str(config),
                 "--slurm-cpus", "2"]) == 0
    err = capsys.readouterr().err
    # Runs are grouped by resources: one array per method here (fixed needs more time).
    assert err.count("submitted 1 run(s) as job array") == 2
    assert "'time': 30" in err and "'time': 90" in err and "'cpus': 2" in err and "'partition': 'gpu'" in err
    records = store.load_records(results)
    assert sorted(r["method"] for r in records) == ["erm", "fixed"] and all(r["status"] == "ok" for r in records)
    assert (results / "slurm").is_dir()  # submitit's logs
    # A sweep started on the cluster is finished (here: found complete) locally.
    assert main(args) == 0
    assert "2 reused" in capsys.readouterr().out


def test_slurm_resources_precedence_and_parameters(tmp_path: Path) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text("time: 30\ngpus: 1\nmem: 16\nslurm_qos: high\nmethods:\n  dada: {slurm_time: 480}\n")
    settings = load_settings({"time": 45, "partition": None}, config, "debug")
    assert settings.base["time"] == 45 and settings.base["gpus"] == 1  # flag beats file, file beats default
    assert settings.resources_for("augerino", {"slurm_time": 240})["time"] == 240  # the method file beats the flag
    assert settings.resources_for("dada", {"time": 240})["time"] == 480  # the file's methods section beats all
    params = executor_parameters(settings.resources_for("erm", {}), settings.extra)
    assert params["timeout_min"] == 45 and params["gpus_per_node"] == 1 and params["mem_gb"] == 16
    assert params["slurm_qos"] == "high" and "slurm_partition" not in params


@pytest.mark.parametrize("text, message", [
    ("time: [1, 2]\n", "time must be"),
    ("walltime: 10\n", "unknown resource 'walltime'"),
    ("- a\n", "must be a mapping"),
])
def test_bad_slurm_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text(text)
    with pytest.raises(UserError, match=message):
        load_settings({}, config, "debug")


def test_launcher_flag_mistakes_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["run", *SMOKE, "--results-dir", str(tmp_path)]
    assert main([*base, "--launcher", "inline", "-j", "2"]) == 2
    assert "-j/--jobs is for --launcher pool" in capsys.readouterr().err
    assert main([*base, "--slurm-time", "10"]) == 2
    assert "need(s) --launcher slurm" in capsys.readouterr().err
    assert main([*base, "--launcher", "slurm", "--slurm-config", str(tmp_path / "missing.yaml")]) == 2
    assert "is not a file" in capsys.readouterr().err
    if shutil.which("sbatch") is None:
        assert main([*base, "--launcher", "slurm"]) == 2
        assert "sbatch is not on this machine" in capsys.readouterr().err
    assert main([*base, "--launcher", "pool", "-j", "0"]) == 2
    assert "expected a positive integer" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.slow
def test_slurm_path_through_submitit_local_executor(tmp_path: Path) -> None:
    """Jobs as separate processes (submitit's local executor): minutes on 2 busy cores."""
    assert main(["run", *SMOKE, "--results-dir", str(tmp_path), "--launcher", "slurm",
                 "--slurm-cluster", "local"]) == 0
    records = store.load_records(tmp_path)
    assert sorted(r["method"] for r in records) == ["erm", "fixed"] and all(r["status"] == "ok" for r in records)
