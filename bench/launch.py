"""Launch a list of runs: skip those already done, execute the rest, summarise.

Every launcher calls the same ``bench.runner.execute_run`` and writes the same
atomic records, so resuming works across launchers.
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from bench import store
from bench.config import RunConfig
from bench.progress import Progress
from bench.registry import load_registry
from bench.runner import RunOptions, execute_run, run_id_of


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)  # ok / failed / skipped / reused
    failures: list[tuple[RunConfig, dict[str, Any]]] = field(default_factory=list)
    skips: list[tuple[RunConfig, dict[str, Any]]] = field(default_factory=list)

    def add(self, config: RunConfig, record: dict[str, Any]) -> None:
        self.counts[record["status"]] += 1
        if record["status"] == "failed":
            self.failures.append((config, record))
        elif record["status"] == "skipped":
            self.skips.append((config, record))

    def report(self, results_dir: Any) -> str:
        lines = [
            f"{sum(self.counts.values())} runs: {self.counts['ok']} ok, {self.counts['failed']} failed, "
            f"{self.counts['skipped']} skipped, {self.counts['reused']} reused (already ok)"
        ]
        for config, record in self.failures:
            lines.append(f"  FAILED {describe(config)}: {record['error']}  [{store.record_path(results_dir, record['run_id'])}]")
        reasons = Counter(record["error"] for _, record in self.skips)
        for reason, n in reasons.items():
            lines.append(f"  skipped {n} run(s): {reason}")
        return "\n".join(lines)


def describe(config: RunConfig) -> str:
    depth = f" depth={config.depth}" if config.depth is not None else ""
    return f"{config.task}/{config.profile} {config.method} width={config.width:g}{depth} seed={config.seed}"


def pending(configs: list[RunConfig], options: RunOptions, force: bool, summary: Summary) -> list[RunConfig]:
    """The runs without an ok record (all of them with ``force``)."""
    registry = load_registry()
    todo = []
    for config in configs:
        record = store.read_record(store.record_path(options.results_dir, run_id_of(registry, config)))
        if record is not None and record["status"] == "ok" and not force:
            summary.counts["reused"] += 1
        else:
            todo.append(config)
    return todo


def run_inline(configs: list[RunConfig], options: RunOptions, summary: Summary) -> None:
    """Execute runs one after the other in this process, with progress bars."""
    bar = tqdm(configs, desc="runs", unit="run", position=0, file=sys.stderr, disable=not options.progress,
               dynamic_ncols=True)
    progress = Progress(enabled=options.progress, position=1)
    for i, config in enumerate(bar, 1):
        bar.set_description(f"run {i}/{len(configs)} {describe(config)}")
        summary.add(config, execute_run(config, options, progress))
    bar.close()
