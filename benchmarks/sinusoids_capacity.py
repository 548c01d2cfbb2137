"""The AugNet capacity study (Rommel et al. 2022, Fig. 4) at the official protocol, over seeds.

    python benchmarks/sinusoids_capacity.py                          # seeds 0-9, inline
    python benchmarks/sinusoids_capacity.py --seeds 0,1,2 -j 2 --results-dir /tmp/capacity

Runs the paper's four capacities, (neurons, hidden layers) = (1, 1), (2, 1), (2, 2),
(2, 3), for no augmentation (erm), the 'oracle' FrequencyShift (fixed) and AugNet
C = 10, with the settings of the ``sinusoids_capacity`` suite (``paper`` profile = the
official ``train_augnet.py`` protocol), through the harness (``bench.launch``: records
already ok in the results folder are reused). Prints a Markdown table: per capacity and
method, test accuracy and median invariance score as mean ± sample std over the seeds,
each seed's values, and the published value (Fig. 4 comes from one seed, 29, of the
official ``run_experiments.sh``; ``bench/published.yaml``). ``--all-methods`` adds
AugNet C = 1 and C = 4. The printed wall-clock is the whole script's; on a shared
machine it is a measurement under contention.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import launch, store  # noqa: E402
from bench.capacity import NOTE, PAPER_CAPACITIES, capacity_table  # noqa: E402
from bench.config import RunConfig  # noqa: E402
from bench.registry import load_registry  # noqa: E402
from bench.config import run_id_of  # noqa: E402
from bench.runner import RunOptions  # noqa: E402
from bench.suites import expand, load_suite  # noqa: E402

SUITE = "sinusoids_capacity"


def plan(seeds: tuple[int, ...], all_methods: bool) -> list[RunConfig]:
    """The suite's runs at the paper's capacities, for the given seeds."""
    suite = load_suite(SUITE).with_overrides(seeds=seeds)
    configs, _ = expand(suite, load_registry(), strict=False)
    return [c for c in configs if (c.width, c.depth) in PAPER_CAPACITIES
            and (all_methods or c.method != "augnet" or c.method_params["ncopies"] == 10)]


def planned_records(configs: list[RunConfig], results_dir: Path) -> list[dict[str, Any]]:
    registry = load_registry()
    records = (store.read_record(store.record_path(results_dir, run_id_of(registry, c))) for c in configs)
    return [r for r in records if r is not None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9", help="comma-separated seeds (default 0-9)")
    parser.add_argument("--results-dir", type=Path, default=Path("results"), help="records folder (default results/)")
    parser.add_argument("-j", "--jobs", type=int, default=0, help="worker processes (default: inline)")
    parser.add_argument("--all-methods", action="store_true", help="also AugNet C = 1 and C = 4")
    args = parser.parse_args()
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        print(f"error: --seeds must be comma-separated integers, got {args.seeds!r}", file=sys.stderr)
        return 2

    configs = plan(seeds, args.all_methods)
    store.prepare_results_dir(args.results_dir)
    options = RunOptions(args.results_dir, progress=False)
    summary = launch.Summary()
    todo = launch.pending(configs, options, False, summary)
    print(f"{len(configs)} runs ({len(todo)} to run) of suite {SUITE} at the paper's capacities, seeds "
          f"{args.seeds}; records in {store.runs_dir(args.results_dir)}", file=sys.stderr)
    start = time.perf_counter()
    if args.jobs:
        launch.run_pool(todo, options, summary, args.jobs)
    else:
        launch.run_inline(todo, options, summary)
    wall = time.perf_counter() - start
    print(summary.report(args.results_dir), file=sys.stderr)
    load = f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores" if hasattr(os, "getloadavg") else ""
    print(f"Sinusoids capacity study, paper profile (official protocol); {len(todo)} runs executed in "
          f"{wall:.0f} s wall-clock{load} (a shared machine: under contention).\n")
    print(capacity_table(planned_records(configs, args.results_dir)))
    print("\n" + NOTE)
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
