"""``status``: where each run of a suite stands, from records and heartbeats only.

A run is ``running`` while its heartbeat is live, whatever record it has (a
``--force`` rerun); otherwise its record's status (ok / failed / skipped); otherwise
``crashed`` if a stale heartbeat remains (see ``bench.heartbeat``), else ``missing``.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import heartbeat, store
from bench.config import RunConfig, run_id_of
from bench.registry import Registry

STATES = ("ok", "failed", "skipped", "running", "crashed", "missing")


def run_state(record: dict[str, Any] | None, beat: dict[str, Any] | None, now: float) -> str:
    if beat is not None and heartbeat.is_live(beat, now):
        return "running"
    if record is not None:
        return record["status"]
    return "crashed" if beat is not None else "missing"


def suite_status(configs: list[RunConfig], registry: Registry, results_dir: Path
                 ) -> list[tuple[RunConfig, str, str, dict[str, Any] | None]]:
    """(config, run id, state, heartbeat) for each run of the suite."""
    beats = heartbeat.heartbeats(results_dir) if store.runs_dir(results_dir).is_dir() else {}
    now = time.time()
    rows = []
    for config in configs:
        run_id = run_id_of(registry, config)
        record = store.read_record(store.record_path(results_dir, run_id), warn=True)
        rows.append((config, run_id, run_state(record, beats.get(run_id), now), beats.get(run_id)))
    return rows


def format_status(rows: list[tuple[RunConfig, str, str, dict[str, Any] | None]], results_dir: Path) -> str:
    counts = Counter(state for _, _, state, _ in rows)
    lines = [f"{len(rows)} runs in {store.runs_dir(results_dir)}: "
             + ", ".join(f"{counts[s]} {s}" for s in STATES)]
    for config, run_id, state, beat in rows:
        if state in ("running", "crashed"):
            where = f" (pid {beat['pid']} on {beat['host']}, last beat {time.time() - beat['beat']:.0f} s ago)"
            lines.append(f"  {state:<8} {config.describe()} [{run_id}]{where}")
        elif state == "failed":
            lines.append(f"  failed   {config.describe()} [{run_id}]")
    if counts["crashed"] or counts["missing"] or counts["failed"]:
        lines.append("rerun the same `run` command to run the crashed, missing and failed runs")
    return "\n".join(lines)
