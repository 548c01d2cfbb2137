"""Fuzz the record readers: a few hundred randomly corrupted records (truncated JSON,
wrong types, path-like ids, huge numbers, unicode, bad bytes, deep nesting, folders
named like records) beside valid ones. ``run``, ``status``, ``table``, ``plot``,
``report`` and ``merge`` (the CLI's main, in-process) must never trace back, never
write outside their results folders, and never lose a valid record."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench import store
from bench.cli import build_parser, main, plan_runs
from bench.registry import load_registry
from bench.config import run_id_of

DATA = Path(__file__).parent / "data" / "records"
N_CORRUPT = 300
SELECT = ["--tasks", "sinusoids", "--methods", "erm", "--profile", "smoke", "--seeds", "0,1"]
ODD_VALUES: list[Any] = [
    "abc", "", -1, 0, 1e308, -1e308, 10 ** 30, 10 ** 400, None, [], {}, [[[]]], True, False, "../../settings",
    "/etc/passwd", "..", "ü\u202eé漢字", "\x00", "x" * 10_000, "$\\frac{", {"score": "high"}, [1, "a", None],
    {"epoch": "0"}, 3.5, "NaN",
]
PATH_IDS = ["../../settings", "/tmp/settings", "..", ".", "a/b", "", "0" * 15, "0" * 17, "G" * 16, "../" * 8,
            "00000000000000A0", "00000000000000a0/../../x", "ü" * 16]


def corrupt(rng: random.Random, good: dict[str, Any], name: str) -> str | bytes | None:
    """A corrupted record's file content (None: make a folder instead)."""
    record = json.loads(json.dumps(good))
    record["run_id"] = name
    kind = rng.randrange(9)
    if kind == 0:  # truncated
        text = json.dumps(record)
        return text[:rng.randrange(len(text))]
    if kind == 1:  # a field of the wrong type or range
        for _ in range(rng.randint(1, 3)):
            record[rng.choice(sorted(record) + ["history", "invariance_probe", "learning"])] = rng.choice(ODD_VALUES)
        return json.dumps(record)
    if kind == 2:  # a path-like id
        record["run_id"] = rng.choice(PATH_IDS)
        return json.dumps(record)
    if kind == 3:  # huge numbers
        record[rng.choice(["test_metric", "train_s", "width", "seed", "n_params"])] = rng.choice(
            [10 ** 400, 1e308, -10 ** 30, 2 ** 63])
        return json.dumps(record)
    if kind == 4:  # non-standard JSON constants
        return json.dumps(record).replace(str(record["test_metric"]), rng.choice(["NaN", "Infinity", "-Infinity"]))
    if kind == 5:  # bytes that are not UTF-8
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
    if kind == 6:  # deep nesting
        depth = rng.choice([40, 5000])
        record["learned_augmentation"] = json.loads("[" * depth + "]" * depth) if depth < 100 else None
        return json.dumps(record) if depth < 100 else '{"run_id": "x", "a": ' + "[" * depth + "]" * depth + "}"
    if kind == 7:  # not an object, or a record without what its status needs
        return rng.choice(["[]", "null", "3", '"ok"', json.dumps({"run_id": name, "status": "ok"}),
                           json.dumps({**record, "status": "failed", "error": None})])
    return None  # a folder named like a record


def snapshot(root: Path, exclude: tuple[Path, ...]) -> dict[str, bytes | None]:
    out = {}
    for path in sorted(root.rglob("*")):
        if any(path == e or e in path.parents for e in exclude):
            continue
        out[str(path.relative_to(root))] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return out


def test_readers_survive_hundreds_of_corrupted_records(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = random.Random(14)
    results, into = tmp_path / "results", tmp_path / "into"
    runs = store.runs_dir(results)
    shutil.copytree(DATA, runs)
    valid = {p.name: p.read_bytes() for p in runs.glob("*.json")}
    registry = load_registry()
    _, configs = plan_runs(build_parser().parse_args(["status", *SELECT]), registry)
    suite_ids = [run_id_of(registry, c) for c in configs]
    goods = [json.loads(v) for v in valid.values()]
    names: set[str] = set(valid)
    for i in range(N_CORRUPT):
        stem = suite_ids[i] if i < len(suite_ids) else rng.choice(
            [f"{rng.getrandbits(64):016x}", f"bad{i}", f"ü{i}", f"{i:016x}.x", f"{i:016X}"])
        if f"{stem}.json" in names:
            continue
        names.add(f"{stem}.json")
        content = corrupt(rng, rng.choice(goods), stem)
        path = runs / f"{stem}.json"
        if content is None:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    n_files = len(list(runs.glob("*.json")))
    assert n_files > 250
    # A mutation may leave a record valid (a failed record without a test metric): the schema says which.
    accepted = {p.name for p in runs.glob("*.json") if store.inspect_record(p)[0] is not None}
    assert set(valid) <= accepted and len(accepted) < len(valid) + 10
    (tmp_path / "settings.json").write_text("unrelated")
    outside = snapshot(tmp_path, (results, into))

    commands = [(["table", "--results-dir", str(results)], 0), (["plot", "--results-dir", str(results)], 0),
                (["report", "--results-dir", str(results)], 0),
                (["status", *SELECT, "--results-dir", str(results)], 0),
                (["merge", str(results), "--into", str(into)], 0),
                # exit 1 when a suite run's record path is a folder: that run's record cannot be written
                (["run", *SELECT, "--results-dir", str(results), "--no-progress"],
                 int(any((runs / f"{i}.json").is_dir() for i in suite_ids)))]
    for argv, code in commands:
        capsys.readouterr()
        assert main(argv) == code, argv[0]
        err = capsys.readouterr().err
        assert "Traceback" not in err, (argv[0], err[-2000:])
        assert snapshot(tmp_path, (results, into)) == outside, argv[0]  # nothing written outside
        assert all((runs / name).read_bytes() == data for name, data in valid.items()), argv[0]  # none lost
        if argv[0] == "table":  # (run writes the tables again, with the runs it reran)
            runs_csv = pd.read_csv(results / "tables" / "runs.csv", dtype={"run_id": str})
        if argv[0] in ("table", "plot", "report"):
            assert err.count("warning: left out:") == n_files - len(accepted), argv[0]  # each bad file once

    assert sorted(runs_csv["run_id"]) == sorted(name[:-len(".json")] for name in accepted)  # the valid ones only
    merged = sorted(p.name for p in store.runs_dir(into).iterdir())
    assert merged == sorted(accepted)  # every valid record, nothing else
    # run reran the suite's runs whose files were corrupted (the corrupted ones are archived).
    assert all(store.read_record(store.record_path(results, i))["status"] == "ok" for i in suite_ids
               if (runs / f"{i}.json").is_file())
