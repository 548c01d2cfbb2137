"""``merge DIR... --into DIR``: the union of several results folders.

Per run id the newest ok record wins (by its timestamp); when no record of a run is
ok, the newest record wins. Records are keyed by run id, so there is never a
duplicate. A record already in ``--into`` that is replaced is first copied to
``runs/archive/`` (as ``--force`` does), so merging never destroys a result. On a
tie (same timestamp) the record already in ``--into`` stays, then the first folder
named wins.

Only valid records are merged (``bench.records``; the others are reported and left
out), and each is written to ``runs/<run_id>.json`` of ``--into`` under its
validated id, so a hostile folder cannot make merge write anywhere else.
"""
from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import store
from bench.errors import UserError

OLDEST = datetime.min.replace(tzinfo=timezone.utc)


def record_time(record: dict[str, Any]) -> datetime:
    """The record's timestamp (``%Y-%m-%dT%H:%M:%S%z``); the oldest possible if unreadable."""
    try:
        return datetime.strptime(str(record.get("timestamp")), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return OLDEST


def rank(record: dict[str, Any]) -> tuple[bool, datetime]:
    return record.get("status") == "ok", record_time(record)


def source_records(folder: Path) -> list[dict[str, Any]]:
    """The records of one folder to merge; a clear error when it has none."""
    if not folder.exists():
        raise UserError(f"merge: {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"merge: {folder} is not a folder")
    records = store.load_records(folder) if store.runs_dir(folder).is_dir() else []
    if not records:
        raise UserError(f"merge: no valid run records in {store.runs_dir(folder)}; pass results folders "
                        "(each holding runs/<run_id>.json)")
    return records


def merge(sources: list[Path], into: Path) -> Counter:
    """Merge ``sources`` into ``into``; return counts (added, replaced, kept, not written)."""
    if into.exists() and not into.is_dir():
        raise UserError(f"merge: --into {into} is a file, not a folder")
    per_source = [source_records(folder) for folder in sources]  # validate every input before writing
    store.prepare_results_dir(into)
    best: dict[str, dict[str, Any]] = {}
    for records in per_source:
        for record in records:
            current = best.get(record["run_id"])
            if current is None or rank(record) > rank(current):
                best[record["run_id"]] = record
    counts: Counter = Counter()
    for run_id, record in sorted(best.items()):
        existing = store.read_record(store.record_path(into, run_id), warn=True)
        if existing is not None and (existing == record or rank(existing) >= rank(record)):
            counts["kept"] += 1
            continue
        try:
            store.write_record(into, record, archive_any=True)
        except OSError as exc:  # e.g. runs/<id>.json is a folder there: that record only, the others go on
            print(f"error: merge: cannot write {store.record_path(into, run_id)}: {exc.strerror or exc}; "
                  f"the record stays in the source folder", file=sys.stderr)
            counts["not written"] += 1
            continue
        counts["replaced" if existing is not None else "added"] += 1
    return counts
