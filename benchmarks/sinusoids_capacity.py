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
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import launch, store  # noqa: E402
from bench.config import RunConfig  # noqa: E402
from bench.registry import load_registry  # noqa: E402
from bench.report_published import load_published  # noqa: E402
from bench.config import run_id_of  # noqa: E402
from bench.runner import RunOptions  # noqa: E402
from bench.suites import expand, load_suite  # noqa: E402

SUITE = "sinusoids_capacity"
# (width, depth) of the paper's capacities, and their (neurons, hidden layers) label.
PAPER_CAPACITIES = {(0.5, 1): "(1, 1)", (1.0, 1): "(2, 1)", (1.0, 2): "(2, 2)", (1.0, 3): "(2, 3)"}


def method_label(config: RunConfig) -> str:
    if config.method == "augnet":
        return f"augnet C={config.method_params['ncopies']}"
    return {"erm": "erm (no augmentation)", "fixed": "fixed (oracle)"}.get(config.method, config.method)


def plan(seeds: tuple[int, ...], all_methods: bool) -> list[RunConfig]:
    """The suite's runs at the paper's capacities, for the given seeds."""
    suite = load_suite(SUITE).with_overrides(seeds=seeds)
    configs, _ = expand(suite, load_registry(), strict=False)
    return [c for c in configs if (c.width, c.depth) in PAPER_CAPACITIES
            and (all_methods or c.method != "augnet" or c.method_params["ncopies"] == 10)]


def published_value(config: RunConfig, compare: str, published: list[dict[str, Any]]) -> str:
    """The published value of this cell and its seeds, or '–'."""
    for e in published:
        if (e["task"] == config.task and e["method"] == config.method and e["compare"] == compare
                and float(e.get("width", 1.0)) == config.width and e.get("depth") == config.depth
                and all(config.method_params.get(k) == v for k, v in (e.get("params") or {}).items())):
            seeds = e.get("seeds")
            return f"{e['value']:.2f}" + (f" (seed {', '.join(map(str, seeds))})" if seeds else "")
    return "–"


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def table(configs: list[RunConfig], results_dir: Path) -> str:
    registry, published = load_registry(), load_published()
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for config in configs:
        record = store.read_record(store.record_path(results_dir, run_id_of(registry, config)))
        key = (PAPER_CAPACITIES[(config.width, config.depth)], method_label(config))
        cells.setdefault(key, []).append({"config": config, "record": record})
    lines = ["| (neurons, layers) | method | n seeds | test accuracy (mean ± std) | invariance (mean ± std) "
             "| paper accuracy | paper invariance | accuracy per seed | invariance per seed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (capacity, label), runs in sorted(cells.items()):
        ok = [r for r in runs if r["record"] is not None and r["record"]["status"] == "ok"]
        accuracy = [r["record"]["test_metric"] for r in ok]
        invariance = [r["record"]["invariance"]["score"] for r in ok]
        config = runs[0]["config"]
        per_seed_acc = ", ".join(f"{r['config'].seed}: {a:.2f}" for r, a in zip(ok, accuracy))
        per_seed_inv = ", ".join(f"{r['config'].seed}: {v:.2f}" for r, v in zip(ok, invariance))
        lines.append(f"| {capacity} | {label} | {len(ok)} | {mean_std(accuracy)} | {mean_std(invariance)} "
                     f"| {published_value(config, 'test_metric', published)} "
                     f"| {published_value(config, 'invariance', published)} | {per_seed_acc} | {per_seed_inv} |")
    return "\n".join(lines)


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
    print(table(configs, args.results_dir))
    print("\nInvariance: median over test examples of the AugNet score under FrequencyShift(p = 1, ±0.5 Hz), "
          "on the predictor's outputs. 'paper': Fig. 4 read off the figure, one seed (29).")
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
