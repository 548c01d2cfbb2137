"""Failure isolation around the record write: a record that cannot be written is a
clear error for that run, its result is kept in ``unsaved/`` (or printed), and the
suite goes on; Ctrl-C in the inline launcher leaves no half-state."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from bench import runner, store
from bench.cli import build_parser, main, plan_runs
from bench.registry import load_registry

SELECT = ["--tasks", "sinusoids", "--methods", "erm", "--profile", "smoke", "--seeds", "0,1", "--no-report",
          "--no-progress"]


def ids(results: Path) -> list[str]:
    registry = load_registry()
    _, configs = plan_runs(build_parser().parse_args(["status", *SELECT[:-2], "--results-dir", str(results)]),
                           registry)
    return [runner.run_id_of(registry, c) for c in configs]


def leftovers(results: Path) -> list[str]:
    """Temporary files and heartbeats: what a cut-short run must not leave behind."""
    return sorted(p.name for p in store.runs_dir(results).iterdir() if p.name.startswith(".") or
                  p.suffix == ".running")


def test_a_record_path_that_is_a_folder_fails_that_run_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first, second = ids(tmp_path)
    (store.runs_dir(tmp_path) / f"{first}.json").mkdir(parents=True)
    assert main(["run", *SELECT, "--results-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and f"cannot write {store.runs_dir(tmp_path) / first}.json" in err
    assert "2 runs: 2 ok" in out and "1 record(s) NOT written" in out and "record not written" in out
    [kept] = (tmp_path / "unsaved").glob(f"{first}.*.json")
    assert json.loads(kept.read_text())["status"] == "ok"  # the computed result is not lost
    assert store.read_record(store.record_path(tmp_path, second))["status"] == "ok"  # the suite went on
    assert leftovers(tmp_path) == []


def test_a_disk_error_keeps_the_result_or_prints_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    def full_disk(path: Path, obj: object) -> None:
        if path.suffix == ".json":
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "write_json_atomic", full_disk)
    monkeypatch.setattr(store, "write_unsaved", lambda results_dir, record: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))
    assert main(["run", *SELECT, "--results-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and err.count("No space left on device") >= 2
    printed = [line for line in err.splitlines() if line.startswith("unsaved record of run ")]
    assert len(printed) == 2  # both results on stderr, as JSON
    record = json.loads(printed[0].split(": ", 1)[1])
    assert record["status"] == "ok" and record["test_metric"] is not None
    assert "2 record(s) NOT written" in out


def test_ctrl_c_in_a_run_leaves_no_half_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    first, second = ids(tmp_path)
    fit, calls = runner.fit, []

    def interrupted_second_run(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fit(*args, **kwargs)

    monkeypatch.setattr(runner, "fit", interrupted_second_run)
    assert main(["run", *SELECT, "--results-dir", str(tmp_path)]) == 130
    assert "interrupted: finished runs are kept" in capsys.readouterr().err
    assert sorted(p.name for p in store.runs_dir(tmp_path).iterdir()) == [f"{first}.json"]  # no tmp, no heartbeat
    monkeypatch.setattr(runner, "fit", fit)
    assert main(["run", *SELECT, "--results-dir", str(tmp_path)]) == 0
    assert "1 ok, 0 failed, 0 skipped, 1 reused" in capsys.readouterr().out


def test_ctrl_c_during_the_write_keeps_the_old_record_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    first, _ = ids(tmp_path)
    assert main(["run", *SELECT, "--results-dir", str(tmp_path)]) == 0
    before = store.record_path(tmp_path, first).read_bytes()
    replace = store.os.replace

    def interrupted_replace(src: str, dst: object) -> None:
        if str(dst).endswith(".json") and "archive" not in str(dst):
            raise KeyboardInterrupt  # between the temporary file and the rename
        replace(src, dst)

    monkeypatch.setattr(store.os, "replace", interrupted_replace)
    assert main(["run", *SELECT, "--results-dir", str(tmp_path), "--force"]) == 130
    monkeypatch.setattr(store.os, "replace", replace)
    assert store.record_path(tmp_path, first).read_bytes() == before  # the old record, whole
    assert leftovers(tmp_path) == []
