"""Result tables, computed from run records alone.

One table per (task, profile): a row per method label (method plus non-default
parameters), width and depth, with the test metric as mean ± sample std over the
seeds whose run is ok (n named in its own column), and failed / skipped runs shown
with their reason, never dropped. Written as CSV (numbers) and Markdown; the final
learned augmentation parameters per method go to ``<task>.<profile>.learned_augmentation.csv``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.diagnostics import MOVE_THRESHOLD
from bench.metrics import METRICS
from bench.search_gain import write_search_gain_tables
from bench.stat_tables import write_stat_tables
from bench.table_format import latex_label, latex_table, markdown_table
from bench.tuned import statistics_views, write_tuned_tables

# The numbers taken from each record, by column name.
RECORD_COLUMNS = ("run_id", "task", "profile", "method", "label", "trial", "method_kind", "width", "depth", "seed",
                  "status",
                  "error", "metric", "higher_is_better", "test_metric", "val_metric", "search_s", "train_s",
                  "eval_s", "total_s", "n_params", "n_params_method", "peak_memory_mb", "device")
MEAN_COLUMNS = ("test_metric", "val_metric", "invariance", "agreement", "aug_movement", "search_s", "train_s", "cost_s",
                "total_s")


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record; the invariance dict is flattened to two columns."""
    rows = []
    for record in records:
        row = {key: record.get(key) for key in RECORD_COLUMNS}
        invariance = record.get("invariance") or {}
        row["invariance"] = invariance.get("score")
        row["agreement"] = invariance.get("agreement")
        learning = record.get("learning")  # bench/diagnostics.py: did the learned augmentation move?
        learning = learning if isinstance(learning, dict) else {}
        row["aug_movement"] = learning.get("movement")
        row["aug_not_moved"] = learning.get("not_moved")
        row["cost_s"] = (row["search_s"] or 0.0) + (row["train_s"] or 0.0)  # the method's cost
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*RECORD_COLUMNS, "invariance", "agreement", "aug_movement", "aug_not_moved",
                                        "cost_s"])
    frame["depth"] = frame["depth"].astype(object).where(frame["depth"].notna(), None)
    return frame


def _status(group: pd.DataFrame) -> str:
    counts = group["status"].value_counts()
    if set(counts.index) == {"ok"}:
        return "ok"
    parts = [f"{counts[s]} {s}" for s in ("ok", "failed", "skipped") if s in counts]
    errors = group.loc[group["status"] != "ok", "error"].dropna().unique()
    return ", ".join(parts) + (": " + "; ".join(str(e) for e in errors) if len(errors) else "")


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Aggregate the records of one (task, profile) over seeds."""
    rows = []
    keys = ["label", "method", "width", "depth"]
    for (label, method, width, depth), group in frame.groupby(keys, dropna=False, sort=True):
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = {"method": label, "method_name": method, "width": width,
                               "depth": None if pd.isna(depth) else int(depth), "n": len(ok),
                               "n_failed": int((group["status"] == "failed").sum()),
                               "n_skipped": int((group["status"] == "skipped").sum())}
        for column in MEAN_COLUMNS:
            values = pd.to_numeric(ok[column], errors="coerce").dropna()
            row[f"{column}_mean"] = values.mean() if len(values) else math.nan
            row[f"{column}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
        row["n_params"] = ok["n_params"].iloc[0] if len(ok) else None
        row["n_aug_not_moved"] = int((ok["aug_not_moved"] == True).sum())  # noqa: E712 - None where no state
        row["status"] = _status(group)
        rows.append(row)
    return pd.DataFrame(rows)


def _decimals(value: float) -> int:
    return 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 4


def _num(value: Any, decimals: int | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    return f"{value:.{_decimals(value) if decimals is None else decimals}f}"


def _seconds(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):.1f}"


def _mean_std(row: pd.Series, column: str, n: int) -> str:
    mean, std = row[f"{column}_mean"], row[f"{column}_std"]
    if n == 0 or pd.isna(mean):
        return "–"
    # The std with the mean's precision: "361 ± 6", not "361 ± 5.9274".
    return f"{_num(mean)} ± {_num(std, _decimals(float(mean)))}" if n > 1 else f"{_num(mean)}"


TABLE_NOTE = ("Test {label}: mean ± sample std over the n seeds whose run is ok (n in its own column). "
              "Invariance: median over test examples of the AugNet invariance score under the task's reference "
              "group, then mean ± std over seeds. Aug moved: how far a learned augmentation moved from its start "
              "(bench/diagnostics.py: total variation of op weights, largest change of any other parameter; "
              "mean over seeds), NOT MOVED (k/n) when below {threshold:g} in k of the n seeds; – for methods that "
              "learn no augmentation. Times: mean seconds per run.")


def movement_cell(row: pd.Series, n: int) -> str:
    """The "aug moved" cell: mean movement over seeds, and the flag where it did not move."""
    if n == 0 or pd.isna(row["aug_movement_mean"]):
        return "–"
    flag = "" if row["n_aug_not_moved"] == 0 else f" NOT MOVED ({row['n_aug_not_moved']}/{n})"
    return f"{float(row['aug_movement_mean']):.3f}{flag}"


def table_note(label: str) -> str:
    return TABLE_NOTE.format(label=label, threshold=MOVE_THRESHOLD)


def table_rows(summary: pd.DataFrame, metric: str) -> tuple[list[str], list[list[str]]]:
    """The header and formatted cells of a task's result table (Markdown and HTML)."""
    label = METRICS[metric].label if metric in METRICS else metric
    show_depth = summary["depth"].notna().any()
    header = ["method", "width", *(["depth"] if show_depth else []), "n seeds",
              f"test {label} (mean ± std)", f"val {label} (mean ± std)", "invariance score (median; mean ± std)",
              "prediction agreement", "aug moved (max Δ)", "search s", "train s", "params", "status"]
    rows = []
    for _, row in summary.iterrows():
        n = int(row["n"])
        rows.append([row["method"], f"{row['width']:g}", *([str(row['depth'] or "–")] if show_depth else []), str(n),
                     _mean_std(row, "test_metric", n), _mean_std(row, "val_metric", n),
                     _mean_std(row, "invariance", n), _num(row["agreement_mean"]) if n else "–", movement_cell(row, n),
                     _seconds(row["search_s_mean"]) if n else "–", _seconds(row["train_s_mean"]) if n else "–",
                     f"{int(row['n_params']):,}" if row["n_params"] is not None and not pd.isna(row["n_params"])
                     else "–", row["status"]])
    return header, rows


def to_markdown(summary: pd.DataFrame, task: str, profile: str, metric: str) -> str:
    label = METRICS[metric].label if metric in METRICS else metric
    header, rows = table_rows(summary, metric)
    return "\n".join([f"## {task} ({profile} profile)", "", table_note(label), "",
                      markdown_table(header, rows)]) + "\n"


def task_tables(records: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[pd.DataFrame, str]]:
    """{(task, profile): (summary, metric)} for every task and profile in the records."""
    frame = records_frame(records)
    out = {}
    for (task, profile), group in frame.groupby(["task", "profile"], sort=True):
        metric = group["metric"].dropna().iloc[0] if group["metric"].notna().any() else "metric"
        out[(task, profile)] = (summarize(group), metric)
    return out


def flatten_numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """{"a/b/c": number} for every numeric leaf of nested dicts / lists."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, (int, float)):
        return {prefix: float(value)}
    out: dict[str, float] = {}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        out.update(flatten_numbers(item, f"{prefix}/{key}" if prefix else str(key)))
    return out


BOOKKEEPING = ("index", "unit", "count")  # numeric leaves that are not learned parameters


def is_learned_parameter(key: str) -> bool:
    last = key.rsplit("/", 1)[-1]
    return last not in BOOKKEEPING and not last.startswith("n_")


def learned_parameters(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Final learned augmentation parameters of the ok runs of one task and profile, as
    mean ± std over seeds per method label, width and parameter (a long table)."""
    rows = []
    for r in records:
        if r.get("status") == "ok" and r.get("learned_augmentation"):
            for key, value in flatten_numbers(r["learned_augmentation"]).items():
                if is_learned_parameter(key):
                    rows.append({"method": r.get("label") or r["method"], "width": r.get("width"), "parameter": key,
                                 "value": value})
    if not rows:
        return pd.DataFrame(columns=["method", "width", "parameter", "mean", "std", "n"])
    frame = pd.DataFrame(rows).groupby(["method", "width", "parameter"], sort=True)["value"]
    return frame.agg(mean="mean", std="std", n="count").reset_index()


def write_tables(records: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write ``<task>.<profile>.csv`` / ``.md`` / ``.tex`` per task, the statistics tables
    (``bench.stat_tables``) and ``runs.csv``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (task, profile), (summary, metric) in task_tables(records).items():
        csv, md, tex = (out_dir / f"{task}.{profile}.{ext}" for ext in ("csv", "md", "tex"))
        summary.assign(metric=metric).round(6).to_csv(csv, index=False)
        md.write_text(to_markdown(summary, task, profile, metric))
        label = METRICS[metric].label if metric in METRICS else metric
        tex.write_text(latex_table(*table_rows(summary, metric), f"{task} ({profile} profile). "
                                   + table_note(label), latex_label(f"{task}.{profile}")))
        written += [csv, md, tex]
        learned = learned_parameters([r for r in records if r.get("task") == task and r.get("profile") == profile])
        if len(learned):
            path = out_dir / f"{task}.{profile}.learned_augmentation.csv"
            learned.round(6).to_csv(path, index=False)
            written.append(path)
    written += write_stat_tables(statistics_views(records), out_dir)
    written += write_tuned_tables(records, out_dir)
    written += write_search_gain_tables(records, out_dir)
    runs = out_dir / "runs.csv"
    records_frame(records).to_csv(runs, index=False)
    return [*written, runs]
