"""Launch a list of runs: skip those already done, execute the rest, summarise.

Launchers: ``inline`` (this process), ``pool`` (local worker processes through
``concurrent.futures``) and ``slurm`` (submitit job arrays, ``bench/slurm.py``).
Every launcher calls the same ``bench.runner.execute_run`` and writes the same
atomic records, so resuming works across launchers.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from bench import store
from bench.config import RunConfig, run_id_of
from bench.progress import Progress, SuiteProgress
from bench.registry import load_registry
from bench.runner import RunOptions, execute_run
from bench.threads import choose_threads, set_threads


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)  # ok / failed / skipped / reused
    failures: list[tuple[RunConfig, dict[str, Any]]] = field(default_factory=list)
    skips: list[tuple[RunConfig, dict[str, Any]]] = field(default_factory=list)

    def add(self, config: RunConfig, record: dict[str, Any]) -> None:
        self.counts[record["status"]] += 1
        if record.get("unsaved"):  # its result could not be written to runs/: a failure of this run
            self.counts["unsaved"] += 1
            self.failures.append((config, {**record, "error": f"record not written: {record['unsaved']}"}))
        elif record["status"] == "failed":
            self.failures.append((config, record))
        elif record["status"] == "skipped":
            self.skips.append((config, record))

    def report(self, results_dir: Any) -> str:
        lines = [
            f"{sum(self.counts[k] for k in ('ok', 'failed', 'skipped', 'reused'))} runs: {self.counts['ok']} ok, {self.counts['failed']} failed, "
            f"{self.counts['skipped']} skipped, {self.counts['reused']} reused (already ok)"
            + (f"; {self.counts['unsaved']} record(s) NOT written to runs/" if self.counts["unsaved"] else "")
        ]
        for config, record in self.failures:
            lines.append(f"  FAILED {config.describe()}: {record['error']}  [{store.record_path(results_dir, record['run_id'])}]")
        reasons = Counter(record["error"] for _, record in self.skips)
        for reason, n in reasons.items():
            lines.append(f"  skipped {n} run(s): {reason}")
        return "\n".join(lines)


def pending(configs: list[RunConfig], options: RunOptions, force: bool, summary: Summary) -> list[RunConfig]:
    """The runs without a valid ok record (all of them with ``force``); a record file
    that is not valid is reported and rerun."""
    registry = load_registry()
    todo = []
    for config in configs:
        path = store.record_path(options.results_dir, run_id_of(registry, config))
        record, problem = store.inspect_record(path)
        if problem is not None:
            store.warn_ignored(path, problem, "not a valid record, rerunning")
        if record is not None and record["status"] == "ok" and not force:
            summary.counts["reused"] += 1
        else:
            todo.append(config)
    return todo


def run_inline(configs: list[RunConfig], options: RunOptions, summary: Summary) -> None:
    """Execute runs one after the other in this process, with torch threads for the
    cores free when the suite starts (``bench.threads``; chosen once, so every run of
    the suite has the same count and its numbers are reproducible)."""
    if not configs:
        return
    previous = torch.get_num_threads()
    print(f"inline: {set_threads()} torch thread(s)", file=sys.stderr)
    suite_progress = SuiteProgress(len(configs), enabled=options.progress)
    progress = Progress(enabled=options.progress, position=1)
    try:
        for config in configs:
            suite_progress.started(config.describe())
            record = execute_run(config, options, progress)
            summary.add(config, record)
            suite_progress.finished(config.describe(), record)
    finally:
        suite_progress.close()
        torch.set_num_threads(previous)


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def _init_worker(threads: int, gpus: "multiprocessing.Queue | None") -> None:
    """Pool worker start-up: its share of the CPU cores, and its own GPU if any."""
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get()  # before CUDA is first touched in this process
    import torch

    torch.set_num_threads(threads)


def run_pool(configs: list[RunConfig], options: RunOptions, summary: Summary, jobs: int) -> None:
    """Execute runs in ``jobs`` worker processes (spawned, so no CUDA state is
    inherited), each with its share of the free cores as torch threads
    (``bench.threads.choose_threads``) and, when several GPUs are
    visible, one GPU of its own (round robin when there are more workers than GPUs)."""
    if not configs:
        return
    workers = max(1, min(jobs, len(configs)))
    context = multiprocessing.get_context("spawn")
    gpus = visible_gpus() if options.device != "cpu" else []
    queue = None
    if len(gpus) > 1:
        queue = context.Queue()
        for i in range(workers):
            queue.put(gpus[i % len(gpus)])
    threads = choose_threads(share=workers)
    print(f"pool: {workers} worker(s), {threads} torch thread(s) each"
          + (f", GPUs {','.join(gpus)} one per worker" if queue is not None else ""), file=sys.stderr)
    registry = load_registry()
    suite_progress = SuiteProgress(len(configs), enabled=options.progress)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads, queue))
    try:
        futures: dict[Future, RunConfig] = {
            pool.submit(execute_run, config, replace(options, progress=False)): config for config in configs}
        for future in as_completed(futures):
            config = futures[future]
            try:
                record = future.result()
            except BrokenProcessPool as exc:  # a worker was killed (e.g. out of memory): no record
                record = {"run_id": run_id_of(registry, config), "status": "failed",
                          "error": f"worker process died without a record ({exc})"}
            summary.add(config, record)
            suite_progress.finished(config.describe(), record)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        suite_progress.close()
    pool.shutdown()
