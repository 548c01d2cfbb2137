"""Where a quick run's time goes: data preparation, search, training steps, per-epoch
validation, final evaluation (test + val predictions, with C copies for the
learned-invariance methods), the invariance score and the invariance probe.

    flock /tmp/heavy.lock python benchmarks/run_breakdown.py                 # the default suite's methods, mnist_rot
    python benchmarks/run_breakdown.py --tasks mnist_rot,qm9 --methods erm,augerino --seed 0

Each run is the harness's own ``bench.runner.execute_run`` in this process (records
go to a temporary folder); the script only wraps the functions the runner calls, to
time them: ``load_task_data`` (data preparation, cached per task within a process,
so the first run of a task pays it), ``evaluate_split`` inside ``bench.training.fit``
(per-epoch validation), ``evaluate_split`` in the runner (final test/val),
``invariance_score`` and ``invariance_probe``. Search and training steps come from
the record's own timer. Prints one Markdown row per run and the suite total
estimated for ``--seeds`` seeds; start-up (imports) is printed once.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.threads import calm_openmp, set_threads  # noqa: E402

calm_openmp()

import bench.runner as runner  # noqa: E402
import bench.training as training  # noqa: E402
from bench.config import RunConfig  # noqa: E402
from bench.registry import load_registry  # noqa: E402
from bench.suites import load_suite  # noqa: E402

IMPORT_S = time.perf_counter() - START
SPENT: dict[str, float] = defaultdict(float)
COLUMNS = ("data", "search", "train steps", "epoch val", "final eval", "inv. score", "probe")


def timed(name: str, fn: Callable) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - start
    return wrapper


def main() -> None:
    suite = load_suite("quick")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="mnist_rot", help="comma-separated tasks (default mnist_rot)")
    parser.add_argument("--methods", default=",".join(m.name for m in suite.methods),
                        help="comma-separated methods (default: the quick suite's)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=len(suite.seeds), help="seeds in the suite, for the estimate")
    args = parser.parse_args()

    runner.load_task_data = timed("data", runner.load_task_data)
    training.evaluate_split = timed("epoch val", training.evaluate_split)  # what fit() calls per epoch
    runner.evaluate_split = timed("final eval", runner.evaluate_split)
    runner.invariance_score = timed("inv. score", runner.invariance_score)
    runner.invariance_probe = timed("probe", runner.invariance_probe)
    threads = set_threads()
    registry = load_registry()
    print(f"{args.profile} profile, seed {args.seed}, {threads} torch thread(s), load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; start-up (imports) {IMPORT_S:.1f} s\n")
    print("| run | " + " | ".join(COLUMNS) + " | wall s |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    totals: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp:
        options = runner.RunOptions(Path(tmp), progress=False)
        for task in args.tasks.split(","):
            for method in args.methods.split(","):
                params = registry.method(method).defaults_for(args.profile)
                config = RunConfig(task, args.profile, method, 1.0, None, args.seed, params)
                SPENT.clear()
                record = runner.execute_run(config, options)
                if record["status"] != "ok":
                    print(f"| {task} {method} | {record['status']}: {record['error']} |")
                    continue
                SPENT["search"] = record["search_s"]
                SPENT["train steps"] = record["train_s"]
                row = [SPENT[c] for c in COLUMNS]
                for c in COLUMNS:
                    totals[c] += SPENT[c]
                totals["wall"] += record["wall_s"]
                print(f"| {task} {method} | " + " | ".join(f"{v:.1f}" for v in row) + f" | {record['wall_s']:.1f} |")
    print("| **sum** | " + " | ".join(f"{totals[c]:.1f}" for c in COLUMNS) + f" | {totals['wall']:.1f} |")
    per_seed = totals["wall"] + IMPORT_S
    print(f"\nestimated suite ({args.seeds} seeds of these runs, one process): {per_seed * args.seeds / 60:.1f} min "
          f"inline; with -j 2 on 2 idle cores about half of that when each run is as fast on one thread")


if __name__ == "__main__":
    main()
