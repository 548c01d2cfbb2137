"""The result store: one JSON record per run in ``<results-dir>/runs/<run_id>.json``.

Records are written atomically (a temporary file in the same folder, then
``os.replace``), so a process killed mid-write leaves either the old record or none,
never half of one. Temporary files start with ``.`` and are never read as records. A
record that is rerun with ``--force`` is first copied to ``runs/archive/`` so no
result is ever lost.

Every record read goes through ``inspect_record``: a file that is not a complete,
well-typed record (``bench.records``) is left out with one warning naming it, never
trusted. The file name of a record is always its validated id, never a path taken
from a record's content.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.records import MAX_RECORD_BYTES, is_run_id, parse_record, record_problem


def runs_dir(results_dir: Path) -> Path:
    return results_dir / "runs"


def prepare_results_dir(results_dir: Path) -> None:
    """Create ``results_dir/runs``; a clear error if the path is a file or not writable."""
    for path in (results_dir, runs_dir(results_dir)):
        if path.exists() and not path.is_dir():
            raise UserError(f"results dir {path} exists and is not a folder; pass --results-dir DIR with a folder path")
    try:
        runs_dir(results_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create results dir {results_dir}: {exc.strerror}") from None


def _strict(obj: Any) -> Any:
    """NaN and inf become null, so records are strict JSON that any tool can read."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    return obj


def write_json_atomic(path: Path, obj: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_strict(obj), f, indent=1, sort_keys=True, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_path(results_dir: Path, run_id: str) -> Path:
    """``runs/<run_id>.json``; ``run_id`` must have the form of an id (never a path)."""
    if not is_run_id(run_id):
        raise ValueError(f"not a run id: {run_id!r}")
    return runs_dir(results_dir) / f"{run_id}.json"


def inspect_record(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the record at ``path``, None) when it is a trustworthy record, else (None, why).
    A missing file is (None, None): nothing to report."""
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            return None, f"larger than {MAX_RECORD_BYTES >> 20} MiB"
        record = parse_record(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except IsADirectoryError:
        return None, "a folder, not a file"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    except ValueError as exc:  # bad JSON, bad UTF-8
        return None, f"not valid JSON ({str(exc)[:80]})"
    problem = record_problem(record, path.name[:-len(".json")] if path.name.endswith(".json") else None)
    return (None, problem) if problem else (record, None)


def warn_ignored(path: Path, problem: str, action: str = "left out") -> None:
    print(f"warning: {action}: {path}: {problem}", file=sys.stderr)


def read_record(path: Path, warn: bool = False) -> dict[str, Any] | None:
    """The record at ``path``, or None if it is missing or not a trustworthy record
    (reported on stderr with ``warn``)."""
    record, problem = inspect_record(path)
    if problem and warn:
        warn_ignored(path, problem)
    return record


def archive_record(results_dir: Path, run_id: str) -> Path:
    """Copy the current record of ``run_id`` to ``runs/archive/`` (never overwriting one there)."""
    archive = runs_dir(results_dir) / "archive"
    archive.mkdir(exist_ok=True)
    stem = f"{run_id}.{time.strftime('%Y%m%dT%H%M%S')}"
    dest, n = archive / f"{stem}.json", 1
    while dest.exists():
        dest, n = archive / f"{stem}.{n}.json", n + 1
    shutil.copy2(record_path(results_dir, run_id), dest)
    return dest


def write_record(results_dir: Path, record: dict[str, Any], archive_any: bool = False) -> Path:
    """Write ``record`` atomically; an ok record it replaces (any record with
    ``archive_any``) is archived first, and so is a file there that is not a valid
    record (it may be a hand-edited result: kept for inspection, never trusted)."""
    path = record_path(results_dir, record["run_id"])
    old, problem = inspect_record(path)
    if (old is not None and (archive_any or old["status"] == "ok")) or (problem is not None and path.is_file()):
        archive_record(results_dir, record["run_id"])
    write_json_atomic(path, record)
    return path


def write_unsaved(results_dir: Path, record: dict[str, Any]) -> Path:
    """Keep a record that could not be written to ``runs/`` in ``unsaved/`` (never read
    as a record: check it, then move it to ``runs/<run_id>.json`` by hand)."""
    folder = results_dir / "unsaved"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['run_id']}.{time.strftime('%Y%m%dT%H%M%S')}.json"
    text = json.dumps(_strict(record), indent=1, sort_keys=True, default=str)  # whatever made runs/ fail
    path.write_text(text)
    return path


def load_records(results_dir: Path, warn: bool = True) -> list[dict[str, Any]]:
    """Every trustworthy record under ``results_dir/runs``; other ``*.json`` entries are
    reported on stderr (with ``warn``) and left out (``run`` reruns them)."""
    records = []
    for path in sorted(runs_dir(results_dir).glob("*.json")):
        record = read_record(path, warn=warn)
        if record is not None:
            records.append(record)
    return records


def require_records(results_dir: Path) -> list[dict[str, Any]]:
    """Records for `table` / `plot`; a clear error when there are none."""
    if results_dir.exists() and not results_dir.is_dir():
        raise UserError(f"results dir {results_dir} is a file, not a folder")
    records = load_records(results_dir) if runs_dir(results_dir).is_dir() else []
    if not records:
        raise UserError(
            f"no run records in {runs_dir(results_dir)}; run `python run_bench.py run "
            f"--results-dir {results_dir}` first"
        )
    return records
