"""The result store: one JSON record per run in ``<results-dir>/runs/<run_id>.json``.

Records are written atomically (a temporary file in the same folder, then
``os.replace``), so a process killed mid-write leaves either the old record or none,
never half of one. Temporary files start with ``.`` and are never read as records. A
record that is rerun with ``--force`` is first copied to ``runs/archive/`` so no
result is ever lost.
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
    return runs_dir(results_dir) / f"{run_id}.json"


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None if it is missing or not a complete record."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or "run_id" not in record or "status" not in record:
        return None
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
    ``archive_any``) is archived first."""
    path = record_path(results_dir, record["run_id"])
    old = read_record(path)
    if old is not None and (archive_any or old.get("status") == "ok"):
        archive_record(results_dir, record["run_id"])
    write_json_atomic(path, record)
    return path


def load_records(results_dir: Path, warn: bool = True) -> list[dict[str, Any]]:
    """Every complete record under ``results_dir/runs``; unreadable files are
    reported on stderr and ignored (they are rerun, not trusted)."""
    records = []
    for path in sorted(runs_dir(results_dir).glob("*.json")):
        record = read_record(path)
        if record is None:
            if warn:
                print(f"warning: ignoring unreadable record {path}", file=sys.stderr)
            continue
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
