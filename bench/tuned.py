"""Default vs tuned, from run records alone (``tune: {trials: N}`` / ``--tune N``).

Per (task, profile, method, width, depth) whose records include tuning trials
(``trial`` >= 1, ``bench.tuning``): the configurations are the default one (the
record label is the bare method name: trial 0, possibly a reused plain run) and
each drawn trial. The tuned configuration is the one of best mean *validation*
metric over the seeds, among those with every seed ok (the test metric never
enters the choice); its test metric is reported over the same seeds beside the
default's. Tuning cost: the search + train + eval seconds of every trial run, all
seeds, failed ones included: the real price of a method that needs tuning.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.metrics import METRICS
from bench.stat_tables import StatTable, write_table

NOTE = ("Test {metric}: mean ± sample std over the n seeds. default: the method's default configuration (trial 0); "
        "tuned: of the N configurations (trial 0 and N-1 drawn from the declared distributions, the same N and "
        "per-trial budget for every method), the one of best mean validation {metric} over the seeds (test never "
        "used to choose). cost s/run: search + train seconds of one default run (mean over seeds); tuning s: search "
        "+ train + eval seconds of all N x n trial runs.")


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in records:
        trial = r.get("trial")
        rows.append({
            "task": r.get("task"), "profile": r.get("profile"), "method": r.get("method"), "width": r.get("width"),
            "depth": r.get("depth"), "seed": r.get("seed"), "label": r.get("label") or r.get("method"),
            "trial": trial if isinstance(trial, int) else None, "status": r.get("status"), "metric": r.get("metric"),
            "higher_is_better": r.get("higher_is_better", True), "test": r.get("test_metric"),
            "val": r.get("val_metric"), "cost": (r.get("search_s") or 0.0) + (r.get("train_s") or 0.0),
            "total": r.get("total_s") or 0.0, "amp": r.get("amp", "none")})
    return pd.DataFrame(rows)


def _mean_std(values: pd.Series) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if not len(values):
        return "–"
    mean = float(values.mean())
    decimals = 1 if abs(mean) >= 10 else 4
    if len(values) == 1:
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {float(values.std(ddof=1)):.{decimals}f}"


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.0f}" if value >= 100 else f"{value:.2g}" if value < 1 else f"{value:.1f}"


def tuned_summary(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per tuned (task, profile, method, width, depth), numbers and labels."""
    frame = _frame(records)
    if frame.empty or not (frame["trial"].fillna(0) >= 1).any():
        return pd.DataFrame()
    frame["depth"] = frame["depth"].astype(object).where(frame["depth"].notna(), None)
    rows = []
    keys = ["task", "profile", "method", "width", "depth", "amp"]
    for (task, profile, method, width, depth, amp), group in frame.groupby(keys, dropna=False, sort=True):
        drawn = group[group["trial"].fillna(0) >= 1]
        if drawn.empty:
            continue
        bare = group["label"].str.replace(r" \[[a-z0-9]+\]$", "", regex=True)  # "erm [bf16]": the precision tag
        default = group[bare == method]
        pool = pd.concat([default, drawn])
        higher = bool(group["higher_is_better"].iloc[0])
        seeds = max(1, pool.groupby("label")["seed"].nunique().max())
        candidates = []
        for label, runs in pool.groupby("label"):
            ok = runs[runs["status"] == "ok"]
            val = pd.to_numeric(ok["val"], errors="coerce")
            if ok["seed"].nunique() == seeds and val.notna().all() and len(val):
                candidates.append((float(val.mean()), label))
        best = (max if higher else min)(candidates)[1] if candidates else None
        ok = pool[pool["status"] == "ok"]
        default_ok, best_ok = ok[ok["label"].isin(default["label"])], ok[ok["label"] == best]
        rows.append({
            "task": task, "profile": profile, "method": method, "width": width,
            "depth": None if pd.isna(depth) else int(depth),
            "metric": group["metric"].dropna().iloc[0] if group["metric"].notna().any() else "metric",
            "trials": pool["label"].nunique(), "seeds": seeds,
            "default_test_mean": pd.to_numeric(default_ok["test"], errors="coerce").mean(),
            "default_test_std": pd.to_numeric(default_ok["test"], errors="coerce").std(ddof=1),
            "default_n": len(default_ok), "default_test": _mean_std(default_ok["test"]),
            "tuned_test_mean": pd.to_numeric(best_ok["test"], errors="coerce").mean(),
            "tuned_test_std": pd.to_numeric(best_ok["test"], errors="coerce").std(ddof=1),
            "tuned_n": len(best_ok), "tuned_test": _mean_std(best_ok["test"]),
            "tuned_val": pd.to_numeric(best_ok["val"], errors="coerce").mean(), "selected": best or "none complete",
            "default_cost_s": pd.to_numeric(default_ok["cost"], errors="coerce").mean(),
            "tuning_s": float(pd.to_numeric(pool["total"], errors="coerce").fillna(0).sum()),
            "n_failed": int((pool["status"] == "failed").sum())})
    return pd.DataFrame(rows)


def is_drawn_trial(record: dict[str, Any]) -> bool:
    trial = record.get("trial")
    return isinstance(trial, int) and not isinstance(trial, bool) and trial >= 1


def statistics_views(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records the paired statistics and ranks read: the default runs (drawn
    trials left out, so a tuning suite's tables compare defaults), and for tuned
    groups the selected configuration's runs under the method's name and the profile
    ``<profile>.tuned`` (tables ``<task>.<profile>.tuned.paired``, ``ranks.<profile>.tuned``):
    tuned against tuned erm."""
    out = [r for r in records if not is_drawn_trial(r)]
    summary = tuned_summary(records)
    if summary.empty:
        return out
    selected = {(r["task"], r["profile"], r["method"], r["width"], None if pd.isna(r["depth"]) else int(r["depth"])):
                r["selected"] for _, r in summary.iterrows()}
    for r in records:
        key = (r.get("task"), r.get("profile"), r.get("method"), r.get("width"), r.get("depth"))
        if key in selected and (r.get("label") or r.get("method")) == selected[key]:
            out.append({**r, "label": r["method"], "profile": f"{r['profile']}.tuned"})
    return out


def tuned_tables(records: list[dict[str, Any]]) -> list[StatTable]:
    """A default-vs-tuned table per (task, profile) that has tuning trials."""
    summary = tuned_summary(records)
    tables = []
    if summary.empty:
        return tables
    for (task, profile), group in summary.groupby(["task", "profile"], sort=True):
        metric = str(group["metric"].iloc[0])
        label = METRICS[metric].label if metric in METRICS else metric
        show_depth = group["depth"].notna().any()
        header = ["method", "width", *(["depth"] if show_depth else []), "N trials", "n seeds",
                  f"default test {label}", f"tuned test {label}", "selected configuration", "cost s/run", "tuning s",
                  "failed trial runs"]
        rows = [[r["method"], f"{r['width']:g}", *([str(r["depth"] or "–")] if show_depth else []), str(r["trials"]),
                 str(r["seeds"]), r["default_test"], r["tuned_test"], r["selected"],
                 _seconds(r["default_cost_s"]), _seconds(r["tuning_s"]),
                 str(r["n_failed"])] for _, r in group.iterrows()]
        tables.append(StatTable(f"{task}.{profile}.tuned", f"{task} ({profile} profile): default vs tuned",
                                NOTE.format(metric=label), header, rows, group.reset_index(drop=True)))
    return tables


def write_tuned_tables(records: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    return [path for table in tuned_tables(records) for path in write_table(table, out_dir)]
