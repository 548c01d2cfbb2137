"""What the search buys: each augmentation-learning method against its own control.

A control is the run of the same method with ``learn_augmentation: False``
(``bench.config.CONTROL_PARAM``): the same search space, retrain, model, budget and
other parameters, the augmentation left at the method's initialisation (a random
policy for the bilevel methods), no search. A method's record and its control's are
found by their parameters alone (equal except ``CONTROL_PARAM``), so presets of other
parameters pair with their own controls.

Per task, profile, width and depth, one row per method with a control:

- ``gain``: method − control in the task metric, paired by seed
  (``stats.paired_difference``: Student's t interval below 30 pairs), with the
  verdict in the metric's direction (for MAE a negative gain is an improvement);
- ``search_s``: the method's mean search seconds (the bilevel search phase; 0 for
  methods that learn while training) and ``extra_cost_s``: method − control in
  search + train seconds, paired by seed with its interval -- what the learning cost
  over training with the frozen start (for AugNet and Augerino the gradient through
  the augmentation; seconds under the machine's load when run).

Tables: ``<task>.<profile>.search_gain.{csv,md,tex}`` (``bench.stat_tables``' format).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from bench import stats
from bench.config import CONTROL_PARAM, canonical_json
from bench.stat_tables import StatTable, _decimals, _interval, _signed, metric_label, write_table

COLUMNS = ["task", "profile", "width", "depth", "method", "control", "n", "gain", "ci_low", "ci_high", "statistic",
           "verdict", "metric", "higher_is_better", "method_mean", "control_mean", "search_s", "control_search_s",
           "extra_cost_s", "extra_cost_ci_low", "extra_cost_ci_high"]


def _key(record: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """(task, profile, method, params without CONTROL_PARAM) of an ok record of a
    method that declares the control parameter; None otherwise."""
    params = record.get("method_params")
    if record.get("status") != "ok" or not isinstance(params, dict) or CONTROL_PARAM not in params:
        return None
    rest = {k: v for k, v in params.items() if k != CONTROL_PARAM}
    return str(record.get("task")), str(record.get("profile")), str(record.get("method")), canonical_json(rest)


def control_pairs(records: Iterable[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(task, profile, method label, control label) for every method whose records
    include both the learning run and its control."""
    labels: dict[tuple, dict[bool, str]] = {}
    for r in records:
        key = _key(r)
        if key is not None and isinstance(r["method_params"][CONTROL_PARAM], bool):
            labels.setdefault(key, {})[r["method_params"][CONTROL_PARAM]] = str(r.get("label") or r.get("method"))
    return sorted((task, profile, sides[True], sides[False])
                  for (task, profile, _, _), sides in labels.items() if True in sides and False in sides)


def _mean_search_s(records: list[dict[str, Any]], task: str, profile: str, label: str, width: float,
                   depth: int) -> float:
    values = [float(r["search_s"]) for r in records
              if r.get("status") == "ok" and r.get("task") == task and r.get("profile") == profile
              and (r.get("label") or r.get("method")) == label
              and isinstance(r.get("width", 1.0), (int, float)) and math.isclose(float(r.get("width", 1.0)), width)
              and (stats.NO_DEPTH if r.get("depth") is None else r.get("depth")) == depth
              and isinstance(r.get("search_s"), (int, float)) and math.isfinite(r["search_s"])]
    return sum(values) / len(values) if values else math.nan


def search_gains(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (task, profile, width, depth, method with a control); ``COLUMNS``."""
    records = [r for r in records if isinstance(r, dict)]
    frame = stats.score_frame(records)
    rows = []
    for task, profile, method, control in control_pairs(records):
        cells = frame[(frame["task"] == task) & (frame["profile"] == profile) & frame["label"].isin([method, control])]
        for (width, depth), _ in cells.groupby(["width", "depth"], sort=True):
            where = {"profile": profile, "width": width, "depth": depth}
            gain = stats.paired_difference(cells, task, method, control, **where)
            cost = stats.paired_difference(cells, task, method, control, column="cost_s", **where)
            rows.append({"task": task, "profile": profile, "width": width, "depth": stats.depth_value(depth),
                         "method": method, "control": control, "n": gain.n, "gain": gain.mean,
                         "ci_low": gain.ci_low, "ci_high": gain.ci_high, "statistic": gain.statistic,
                         "verdict": gain.verdict, "metric": gain.metric, "higher_is_better": gain.higher_is_better,
                         "method_mean": gain.method_mean, "control_mean": gain.baseline_mean,
                         "search_s": _mean_search_s(records, task, profile, method, width, depth),
                         "control_search_s": _mean_search_s(records, task, profile, control, width, depth),
                         "extra_cost_s": cost.mean, "extra_cost_ci_low": cost.ci_low,
                         "extra_cost_ci_high": cost.ci_high})
    return pd.DataFrame(rows, columns=COLUMNS)


def _seconds(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.1f}"


def gain_table(gains: pd.DataFrame, task: str, profile: str) -> StatTable:
    """The search-gain table of one task and profile (rows of ``search_gains``)."""
    metric = str(gains["metric"].iloc[0])
    higher = bool(gains["higher_is_better"].iloc[0])
    decimals = _decimals(float(gains["control_mean"].abs().max()))
    show_depth = gains["depth"].notna().any()
    header = ["method", "control", "width", *(["depth"] if show_depth else []), "n pairs",
              f"method {metric}", f"control {metric}", "gain (method − control)", "95 % interval", "verdict",
              "search s (method)", "extra cost s (method − control)", "95 % interval (s)"]
    rows = []
    for _, g in gains.iterrows():
        rows.append([g["method"], g["control"], f"{g['width']:g}", *([str(g["depth"] or "–")] if show_depth else []),
                     str(int(g["n"])), f"{g['method_mean']:.{decimals}f}", f"{g['control_mean']:.{decimals}f}",
                     _signed(g["gain"], decimals), _interval(g["ci_low"], g["ci_high"], decimals), g["verdict"],
                     _seconds(g["search_s"]), _signed(g["extra_cost_s"], 1),
                     _interval(g["extra_cost_ci_low"], g["extra_cost_ci_high"], 1)])
    counts = sorted(set(gains["n"].astype(int)))
    n_text = f"n = {counts[0]}" if len(counts) == 1 else f"n = {counts[0]}–{counts[-1]}"
    note = (f"What the search (or learning) buys: the test {metric_label(metric)} of each augmentation-learning "
            f"method minus that of its control (learn_augmentation=False: same search space, retrain, model and "
            f"budget, the augmentation left at the method's initialisation -- for DADA a random policy of its "
            f"space -- and no search), paired by seed ({n_text} pairs per row): mean and its 95 % interval "
            f"(Student's t over the paired differences below {stats.BOOTSTRAP_MIN_N} pairs, BCa bootstrap from "
            f"there). {'Higher' if higher else 'Lower'} is better: 'better' means the interval lies entirely "
            f"{'above' if higher else 'below'} 0. Search s: the method's mean search phase in seconds (0 for "
            f"methods that learn while training); extra cost: method − control in search + train seconds, paired "
            f"by seed, measured under the machine's load when run. Intervals are per row, not adjusted for the "
            f"number of rows.")
    return StatTable(f"{task}.{profile}.search_gain", f"{task} ({profile} profile): what the search buys over its "
                     "control", note, header, rows, gains)


def search_gain_tables(records: Iterable[dict[str, Any]]) -> list[StatTable]:
    """One search-gain table per task and profile with at least one method paired
    with its control."""
    gains = search_gains(records)
    return [gain_table(group, task, profile) for (task, profile), group in gains.groupby(["task", "profile"],
                                                                                          sort=True)]


def write_search_gain_tables(records: Iterable[dict[str, Any]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [path for table in search_gain_tables(records) for path in write_table(table, out_dir)]
