"""`status` (records + heartbeats) and `merge` (newest ok record wins, nothing lost)."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import heartbeat, store
from bench.cli import build_parser, main, plan_runs
from bench.registry import load_registry
from bench.config import run_id_of

SELECT = ["--tasks", "mnist_rot", "--methods", "erm,fixed", "--profile", "smoke", "--seeds", "0,1,2,3"]


def suite_ids(results: Path) -> list[str]:
    registry = load_registry()
    _, configs = plan_runs(build_parser().parse_args(["status", *SELECT, "--results-dir", str(results)]), registry)
    return [run_id_of(registry, c) for c in configs]


def fake_record(run_id: str, status: str, timestamp: str, value: float = 0.5) -> dict:
    """A minimal valid record (bench/records.py) of status ``status``."""
    return {"run_id": run_id if len(run_id) == 16 else rid(run_id), "status": status, "timestamp": timestamp,
            "task": "toy", "profile": "quick", "method": "erm", "width": 1.0, "seed": 0, "metric": "accuracy",
            "test_metric": value if status == "ok" else None, "search_s": 0.0, "train_s": 1.0, "eval_s": 0.1,
            "total_s": 1.1, "error": None if status == "ok" else "why"}


def rid(name: str) -> str:
    """A valid run id for a short test name ("r1" -> "00000000000000r1" in hex)."""
    return name.encode().hex().rjust(16, "0")


def put(results: Path, record: dict) -> None:
    store.prepare_results_dir(results)
    store.write_json_atomic(store.record_path(results, record["run_id"]), record)


def put_heartbeat(results: Path, run_id: str, pid: int, beat: float, interval_s: float = 30.0) -> None:
    info = {"run_id": run_id, "pid": pid, "host": platform.node(), "start": beat, "beat": beat, "interval_s": interval_s}
    store.write_json_atomic(heartbeat.heartbeat_path(results, run_id), info)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: its pid names no process
    return proc.pid


def test_status_counts_records_and_heartbeats(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ids = suite_ids(tmp_path)
    assert len(ids) == 8
    now = time.time()
    put(tmp_path, fake_record(ids[0], "ok", "2026-01-01T00:00:00+0000"))
    put(tmp_path, fake_record(ids[1], "failed", "2026-01-01T00:00:00+0000"))
    put(tmp_path, fake_record(ids[2], "skipped", "2026-01-01T00:00:00+0000"))
    put_heartbeat(tmp_path, ids[3], os.getpid(), now)  # live: this process, just beaten
    put_heartbeat(tmp_path, ids[4], os.getpid(), now - 100, interval_s=30)  # no beat for > 3 intervals
    put_heartbeat(tmp_path, ids[5], dead_pid(), now)  # fresh beat, but its process is gone
    put(tmp_path, fake_record(ids[6], "ok", "2026-01-01T00:00:00+0000"))
    put_heartbeat(tmp_path, ids[6], os.getpid(), now)  # a --force rerun in progress: running
    assert main(["status", *SELECT, "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "8 runs in" in out
    assert "1 ok, 1 failed, 1 skipped, 2 running, 2 crashed, 1 missing" in out
    assert out.count("crashed  mnist_rot/smoke") == 2


def test_status_of_an_empty_folder_is_all_missing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["status", *SELECT, "--results-dir", str(tmp_path / "none")]) == 0
    assert "0 ok, 0 failed, 0 skipped, 0 running, 0 crashed, 8 missing" in capsys.readouterr().out
    assert not (tmp_path / "none").exists()  # status only reads


def test_heartbeat_beats_while_running_and_is_removed(tmp_path: Path) -> None:
    store.prepare_results_dir(tmp_path)
    with heartbeat.Heartbeat(tmp_path, "abc", interval_s=0.05) as beat:
        first = heartbeat.read_heartbeat(beat.path)
        time.sleep(0.3)
        later = heartbeat.read_heartbeat(beat.path)
        assert first["pid"] == os.getpid() and later["beat"] > first["beat"]
        assert heartbeat.is_live(later)
        assert not heartbeat.is_live(later, now=later["beat"] + 1.0)  # > 3 intervals without a beat
    assert not beat.path.exists()
    assert store.load_records(tmp_path, warn=False) == []  # heartbeats are never read as records


def test_merge_keeps_the_newest_ok_record_and_loses_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b, into = tmp_path / "a", tmp_path / "b", tmp_path / "into"
    old, mid, new = "2026-01-01T10:00:00+0000", "2026-01-02T10:00:00+0100", "2026-01-03T10:00:00+0000"
    put(a, fake_record("r1", "ok", old, 1.0)); put(b, fake_record("r1", "ok", new, 2.0))  # newer ok wins
    put(a, fake_record("r2", "ok", old, 1.0)); put(b, fake_record("r2", "failed", new))  # ok beats newer failure
    put(a, fake_record("r3", "failed", old)); put(b, fake_record("r3", "skipped", mid))  # no ok: newest wins
    put(into, fake_record("r4", "ok", old, 4.0))  # only in --into: untouched
    put(into, fake_record("r5", "ok", old, 5.0)); put(a, fake_record("r5", "ok", mid, 5.5))  # replaced, archived
    put(into, fake_record("r6", "ok", new, 6.0)); put(b, fake_record("r6", "ok", mid, 6.5))  # kept
    put(into, fake_record("r7", "failed", new)); put(a, fake_record("r7", "ok", old, 7.0))  # ok replaces failure
    assert main(["merge", str(a), str(b), "--into", str(into)]) == 0
    out = capsys.readouterr().out
    assert "3 added, 2 replaced" in out and "1 kept" in out
    merged = {r["run_id"]: r for r in store.load_records(into)}
    merged = {name: merged[rid(name)] for name in ("r1", "r2", "r3", "r4", "r5", "r6", "r7")}
    assert len(list(store.runs_dir(into).glob("*.json"))) == 7  # one file per run id: no duplicate
    assert merged["r1"]["test_metric"] == 2.0 and merged["r2"]["status"] == "ok"
    assert merged["r3"]["status"] == "skipped" and merged["r4"]["test_metric"] == 4.0
    assert merged["r5"]["test_metric"] == 5.5 and merged["r6"]["test_metric"] == 6.0 and merged["r7"]["status"] == "ok"
    archived = sorted(json.loads(p.read_text())["run_id"] for p in (store.runs_dir(into) / "archive").glob("*.json"))
    assert archived == [rid("r5"), rid("r7")]  # the replaced records are kept, the failed one too
    # Merging again changes nothing.
    assert main(["merge", str(a), str(b), "--into", str(into)]) == 0
    assert "0 added, 0 replaced, 6 kept" in capsys.readouterr().out
    assert len(list((store.runs_dir(into) / "archive").glob("*.json"))) == 2


def test_merge_bad_input_is_one_clear_error_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good, empty, into = tmp_path / "good", tmp_path / "empty", tmp_path / "into"
    put(good, fake_record("r1", "ok", "2026-01-01T10:00:00+0000"))
    empty.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [([str(good), str(tmp_path / "missing")], str(into), "does not exist"),
             ([str(good), str(empty)], str(into), "no valid run records in"),
             ([str(a_file)], str(into), "is not a folder"),
             ([str(good)], str(a_file), "is a file, not a folder")]
    for sources, target, message in cases:
        assert main(["merge", *sources, "--into", target]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not into.exists()
    assert main(["merge", "--into", str(into)]) == 2  # no source folder
    assert "required: DIR" in capsys.readouterr().err
