"""The record schema (bench/records.py) at every reader: a stored record that is not
trustworthy is reported once by file name and left out (``run`` reruns it), never
trusted and never a traceback; ``merge`` writes only ``runs/<validated id>.json``."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import launch, records, store
from bench.cli import build_parser, main, plan_runs
from bench.registry import load_registry
from bench.config import run_id_of
from bench.runner import RunOptions

DATA = Path(__file__).parent / "data" / "records"
GOOD = json.loads((DATA / "00000000000000a0.json").read_text())  # a valid ok record (erm, toy, quick, seed 0)
SELECT = ["--tasks", "sinusoids", "--methods", "erm", "--profile", "smoke", "--seeds", "0,1"]


def suite(results: Path) -> tuple[list, list[str]]:
    registry = load_registry()
    _, configs = plan_runs(build_parser().parse_args(["status", *SELECT, "--results-dir", str(results)]), registry)
    return configs, [run_id_of(registry, c) for c in configs]


def put(results: Path, name: str, content: object) -> Path:
    path = store.runs_dir(results) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("change, problem", [
    ({"run_id": "../../settings"}, "run_id is not 16 lowercase hex digits"),
    ({"run_id": "00000000000000A0"}, "run_id is not"),
    ({"run_id": "00000000000000a1"}, "differs from the file name"),
    ({"width": "abc"}, "width has the wrong type"),
    ({"width": 0}, "width has the wrong type"),
    ({"seed": 0.7}, "seed has the wrong type"),
    ({"seed": True}, "seed has the wrong type"),
    ({"test_metric": "high"}, "test_metric has the wrong type"),
    ({"test_metric": None}, "no test_metric (required for status ok)"),
    ({"status": "great"}, "status has the wrong type"),
    ({"status": {"ok": 1}}, "status has the wrong type"),  # unhashable: found by the fuzz test
    ({"status": "failed", "error": None}, "no error (required for status failed)"),
    ({"task": "../x"}, "task has the wrong type"),
    ({"label": "$\\frac{"}, "label has the wrong type"),
    ({"train_s": -1.0}, "train_s has the wrong type"),
    ({"n_params": 10 ** 400}, "n_params has the wrong type"),
    ({"learned_augmentation": {"a": 1e300}}, "out of range"),
    ({"history": [{"epoch": "0", "augmentation": {}}]}, "history has the wrong type"),
])
def test_record_problem_names_what_is_wrong(change: dict, problem: str) -> None:
    assert records.record_problem(GOOD, "00000000000000a0") is None
    assert problem in records.record_problem({**GOOD, **change}, "00000000000000a0")


def test_json_constants_and_deep_nesting_are_not_valid_json() -> None:
    for text in ('{"a": NaN}', '{"a": Infinity}', "[" * 100_000 + "]" * 100_000):
        with pytest.raises(ValueError):
            records.parse_record(text)


def test_a_stub_or_mistyped_record_is_rerun_not_reused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    configs, ids = suite(tmp_path)
    put(tmp_path, ids[0], {"run_id": ids[0], "status": "ok"})  # the stub of the issue: trusted before
    put(tmp_path, ids[1], {**GOOD, "run_id": ids[1], "width": "abc"})
    summary = launch.Summary()
    todo = launch.pending(configs, RunOptions(tmp_path), False, summary)
    assert todo == configs and summary.counts["reused"] == 0
    err = capsys.readouterr().err
    assert err.count("not a valid record, rerunning") == 2 and ids[0] in err and ids[1] in err
    # A valid ok record is still reused.
    put(tmp_path, ids[0], {**GOOD, "run_id": ids[0]})
    assert launch.pending(configs, RunOptions(tmp_path), False, launch.Summary()) == configs[1:]


def test_status_counts_an_invalid_record_as_missing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, ids = suite(tmp_path)
    put(tmp_path, ids[0], {"run_id": ids[0], "status": "ok"})
    (store.runs_dir(tmp_path) / f"{ids[1]}.json").mkdir()  # a folder named like a record
    assert main(["status", *SELECT, "--results-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "0 ok, 0 failed, 0 skipped, 0 running, 0 crashed, 2 missing" in out
    assert f"{ids[0]}.json: no task" in err and f"{ids[1]}.json: a folder, not a file" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["table", "plot", "report"])
def test_readers_leave_out_bad_records_with_one_warning_each(tmp_path: Path, command: str,
                                                             capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(DATA, store.runs_dir(tmp_path))
    good = {p.name for p in store.runs_dir(tmp_path).glob("*.json")}
    put(tmp_path, "00000000000000f0", {**GOOD, "run_id": "00000000000000f0", "width": "abc"})
    put(tmp_path, "00000000000000f1", {**GOOD, "run_id": "00000000000000f1", "test_metric": "high"})
    put(tmp_path, "00000000000000f2", '{"run_id": "00000000000000f2", "sta')
    assert main([command, "--results-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    for stem in ("f0", "f1", "f2"):
        assert err.count(f"00000000000000{stem}.json") == 1, err
    assert "Traceback" not in err
    if command == "table":
        runs = (tmp_path / "tables" / "runs.csv").read_text()
        assert runs.count("\n") == len(good) + 1 and "00000000000000f" not in runs
        golden = (DATA.parent / "golden" / "toy.quick.md").read_text()
        assert (tmp_path / "tables" / "toy.quick.md").read_text() == golden  # as if the bad files were absent


def test_hostile_merge_writes_nothing_outside_into(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hostile, into = tmp_path / "deep" / "hostile", tmp_path / "deep" / "into"
    (tmp_path / "settings.json").write_text("unrelated")
    (tmp_path / "deep" / "settings.json").parent.mkdir(parents=True)
    (tmp_path / "deep" / "settings.json").write_text("unrelated")
    put(hostile, "00000000000000a0", {**GOOD})  # one valid record: merged
    put(hostile, "x", {**GOOD, "run_id": "../../settings"})
    put(hostile, "00000000000000b0", {**GOOD, "run_id": "../../settings"})
    put(hostile, "00000000000000c0", {**GOOD, "run_id": "/tmp/settings"})
    put(hostile, "settings", {**GOOD, "run_id": "settings"})
    put(hostile, "..", {**GOOD, "run_id": ".."})
    before = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("deep/into")}
    assert main(["merge", str(hostile), "--into", str(into)]) == 0
    out, err = capsys.readouterr()
    assert "1 added" in out and err.count("warning") == 5 and "Traceback" not in err
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("deep/into")}
    assert after == before  # nothing outside --into changed
    assert sorted(p.name for p in store.runs_dir(into).iterdir()) == ["00000000000000a0.json"]


def test_merge_keeps_an_invalid_file_in_into_in_the_archive(tmp_path: Path) -> None:
    source, into = tmp_path / "source", tmp_path / "into"
    put(source, "00000000000000a0", GOOD)
    put(into, "00000000000000a0", {**GOOD, "width": "abc"})  # hand-edited: not trusted, not destroyed
    assert main(["merge", str(source), "--into", str(into)]) == 0
    assert store.read_record(store.record_path(into, "00000000000000a0")) == GOOD
    [kept] = (store.runs_dir(into) / "archive").glob("*.json")
    assert json.loads(kept.read_text())["width"] == "abc"


def test_record_path_refuses_anything_but_an_id(tmp_path: Path) -> None:
    for bad in ("../../settings", "", "a" * 15, "g" * 16, "0" * 16 + "/"):
        with pytest.raises(ValueError):
            store.record_path(tmp_path, bad)


def test_plot_of_only_failed_records_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    put(tmp_path, "00000000000000b1", json.loads((DATA / "00000000000000b1.json").read_text()))  # failed
    assert main(["plot", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no plot drawn: no record in" in err and len(err.strip().splitlines()) == 1


def test_merge_into_a_folder_named_like_a_record_fails_that_record_only(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    source, into = tmp_path / "source", tmp_path / "into"
    put(source, "00000000000000a0", GOOD)
    put(source, "00000000000000a1", {**GOOD, "run_id": "00000000000000a1", "seed": 1})
    (store.runs_dir(into) / "00000000000000a0.json").mkdir(parents=True)
    assert main(["merge", str(source), "--into", str(into)]) == 1
    out, err = capsys.readouterr()
    assert "1 added" in out and "1 NOT written" in out and "Traceback" not in err
    assert "cannot write" in err and "00000000000000a0.json" in err
    assert store.read_record(store.record_path(into, "00000000000000a1"))["seed"] == 1


@pytest.mark.parametrize("command, output", [("table", "tables"), ("plot", "plots"), ("report", "report.html")])
def test_an_output_path_the_file_system_refuses_is_one_clear_error(tmp_path: Path, command: str, output: str,
                                                                   capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(DATA, store.runs_dir(tmp_path))
    (tmp_path / output).mkdir() if output.endswith(".html") else (tmp_path / output).write_text("a file")
    assert main([command, "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
