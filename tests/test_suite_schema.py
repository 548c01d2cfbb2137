"""Suite files and selection flags (issue 14 item 3): unknown keys, wrong types and
out-of-range values are one line naming the file (or flag), the key and what is
allowed, exit 2, before anything runs; duplicate configurations run once."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import build_parser, main, plan_runs
from bench.registry import load_registry

REGISTRY = load_registry()
GOOD = {"profile": "smoke", "tasks": "[sinusoids]", "methods": "[erm]", "seeds": "[0]"}


def suite_file(tmp_path: Path, **fields: str) -> Path:
    body = {**GOOD, **fields}
    path = tmp_path / "suite.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in body.items() if v is not None))
    return path


def refused(capsys, tmp_path: Path, argv: list[str], *fragments: str) -> None:
    results = tmp_path / "results"
    if "--results-dir" not in argv:
        argv = [*argv, "--results-dir", str(results)]
    code = main(["run", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in err[0], err[0]
    assert not results.exists(), "nothing may be written before the suite is checked"


@pytest.mark.parametrize("fields, fragments", [
    ({"widthz": "[1.0]"}, ("unknown key 'widthz'", "widths")),
    ({"method": "[erm]"}, ("unknown key 'method'",)),
    ({"tasks": "sinusoids"}, ("'tasks'", "a non-empty list of task names")),
    ({"methods": "[]"}, ("'methods'", "non-empty list")),
    ({"methods": "[{name: erm, prams: {}}]"}, ("'methods'",)),
    ({"seeds": "[0.7]"}, ("'seeds'", "integer seeds >= 0")),
    ({"seeds": "[-1]"}, ("'seeds'", ">= 0")),
    ({"seeds": "[true]"}, ("'seeds'",)),
    ({"widths": "[0]"}, ("'widths'", "> 0")),
    ({"widths": "[-1]"}, ("'widths'",)),
    ({"widths": "[.nan]"}, ("'widths'", "finite")),
    ({"widths": "[.inf]"}, ("'widths'", "finite")),
    ({"depths": "[0]"}, ("'depths'", "> 0")),
    ({"depths": "[1000]"}, ("depth 1000", "--max-depth")),
    ({"profile": "fast"}, ("'profile'", "smoke, quick, paper")),
    ({"profile": None}, ("missing key profile",)),
    ({"tune": "{trials: 0}"}, ("'tune'", "trials: N")),
    ({"tune": "{trails: 4}"}, ("'tune'",)),
    ({"train": "{lr: abc}"}, ("train.lr='abc'", "a number >= 0")),
    ({"max_params": "-5"}, ("'max_params'", "integer > 0")),
])
def test_bad_suite_file(fields, fragments, capsys, tmp_path: Path) -> None:
    path = suite_file(tmp_path, **fields)
    refused(capsys, tmp_path, ["--suite", str(path)], str(path), *fragments)


def test_suite_that_is_not_a_mapping(capsys, tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- erm\n- fixed\n")
    refused(capsys, tmp_path, ["--suite", str(path)], str(path), "mapping")
    path.write_text("tasks: [unclosed\n")
    refused(capsys, tmp_path, ["--suite", str(path)], str(path), "cannot be read")


@pytest.mark.parametrize("flags, fragments", [
    (["--widths", "nan"], ("--widths", "finite")),
    (["--widths", "inf"], ("--widths", "finite")),
    (["--widths", "0"], ("--widths", "positive")),
    (["--seeds", "-1"], ("--seeds", ">= 0")),
    (["--seeds", "0.5"], ("--seeds", "int")),
    (["--depths", "0"], ("--depths", "positive")),
    (["--tasks", "mnist_rot", "--depths", "3"], ("mnist_rot", "fixed depth")),  # not a failed record
    (["--depths", "100000"], ("depth 100000", "--max-depth")),
    (["--widths", "100000"], ("parameters", "--max-params")),
    (["--tune", "0"], ("--tune", "positive integer")),
    (["--results-dir", ""], ("--results-dir", "must not be empty")),
    (["--results-dir", "x" * 300], ("--results-dir", "300 bytes", "255")),
])
def test_bad_flag(flags, fragments, capsys, tmp_path: Path) -> None:
    tasks = [] if "--tasks" in flags else ["--tasks", "sinusoids"]
    argv = ["--suite", "smoke", *tasks, *flags]
    refused(capsys, tmp_path, argv, *fragments)


def test_results_dir_inside_a_file_or_unwritable(capsys, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("precious")
    base = ["--suite", "smoke", "--tasks", "sinusoids", "--methods", "erm"]
    refused(capsys, tmp_path, [*base, "--results-dir", str(blocker / "sub")],
            "is not a folder")
    assert blocker.read_text() == "precious"
    # /proc refuses new folders even to root (tests may run as root, where chmod does not bind)
    refused(capsys, tmp_path, [*base, "--results-dir", "/proc/invbench-results"],
            "/proc/invbench-results")


def test_model_bound_can_be_raised_explicitly() -> None:
    args = build_parser().parse_args(["run", "--suite", "smoke", "--tasks", "sinusoids", "--methods", "erm",
                                      "--depths", "150", "--max-depth", "200"])
    [config] = plan_runs(args, REGISTRY)[1]
    assert config.depth == 150


def plan(*argv: str):
    return plan_runs(build_parser().parse_args(["run", *argv]), REGISTRY)[1]


def test_duplicate_configurations_run_once(tmp_path: Path) -> None:
    once = plan("--suite", "smoke", "--tasks", "sinusoids", "--methods", "erm", "--seeds", "0")
    assert len(once) == 1
    assert plan("--suite", "smoke", "--tasks", "sinusoids", "--methods", "erm,erm", "--seeds", "0,0") == once
    assert len(plan("--suite", "smoke", "--tasks", "sinusoids,sinusoids", "--methods", "erm", "--seeds", "0,1")) == 2
    path = suite_file(tmp_path, methods="[erm, erm, {name: erm, params: {}}]", seeds="[0, 0]", widths="[1, 1.0]")
    assert plan("--suite", str(path)) == once
