"""The AugNet capacity study (Rommel et al. 2022, Fig. 4) as one table, from run records
alone: per paper capacity and method, test accuracy and invariance score as mean ±
sample std over the seeds, each seed's value, and the published value (one seed, 29;
``bench/published.yaml``). ``benchmarks/sinusoids_capacity.py`` prints it after its
runs; the README's ``<!-- capacity:SUITE -->`` block regenerates it from committed
records."""
from __future__ import annotations

import statistics
from typing import Any

from bench.report_published import load_published, matches
from bench.table_format import markdown_table

TASK, PROFILE = "sinusoids", "paper"
# (width, depth) of the paper's capacities, and their (neurons, hidden layers) label.
PAPER_CAPACITIES = {(0.5, 1): "(1, 1)", (1.0, 1): "(2, 1)", (1.0, 2): "(2, 2)", (1.0, 3): "(2, 3)"}
HEADER = ["(neurons, layers)", "method", "n seeds", "test accuracy (mean ± std)", "invariance (mean ± std)",
          "paper accuracy", "paper invariance", "accuracy per seed", "invariance per seed"]
NOTE = ("Invariance: median over test examples of the AugNet score under FrequencyShift(p = 1, ±0.5 Hz), on the "
        "predictor's outputs. 'paper': Fig. 4 read off the figure, one seed (29).")


def method_label(method: str, params: dict[str, Any]) -> str:
    if method == "augnet":
        return f"augnet C={params.get('ncopies')}"
    return {"erm": "erm (no augmentation)", "fixed": "fixed (oracle)"}.get(method, method)


def capacity(record: dict[str, Any]) -> str | None:
    """The record's paper capacity label, or None when it is not one of the study's runs."""
    if record.get("task") != TASK or record.get("profile") != PROFILE:
        return None
    return PAPER_CAPACITIES.get((float(record.get("width", 1.0)), record.get("depth")))


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def _published(record: dict[str, Any], compare: str, published: list[dict[str, Any]]) -> str:
    for entry in published:
        if entry["compare"] == compare and matches(record, entry):
            seeds = entry.get("seeds")
            return f"{entry['value']:.2f}" + (f" (seed {', '.join(map(str, seeds))})" if seeds else "")
    return "–"


def capacity_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    published = load_published()
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        label = capacity(record)
        if label is not None and record.get("status") == "ok":
            key = (label, method_label(record["method"], record.get("method_params") or {}))
            cells.setdefault(key, []).append(record)
    rows = []
    for (label, method), runs in sorted(cells.items()):
        runs = sorted(runs, key=lambda r: r["seed"])
        accuracy = [r["test_metric"] for r in runs]
        invariance = [(r.get("invariance") or {}).get("score") for r in runs]
        known = [v for v in invariance if v is not None]
        rows.append([label, method, str(len(runs)), _mean_std(accuracy), _mean_std(known),
                     _published(runs[0], "test_metric", published), _published(runs[0], "invariance", published),
                     ", ".join(f"{r['seed']}: {a:.2f}" for r, a in zip(runs, accuracy)),
                     ", ".join(f"{r['seed']}: {v:.2f}" for r, v in zip(runs, invariance) if v is not None)])
    return rows


def capacity_table(records: list[dict[str, Any]]) -> str:
    """The Markdown table (no note); empty rows when no record is of the study."""
    return markdown_table(HEADER, capacity_rows(records))
