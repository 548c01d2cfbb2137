"""The report's first section, the answer: per task, the methods ranked by the task's
metric with mean, 95 % interval and n (``bench.stats.method_intervals``), their cost
(search + train seconds), invariance score and learning flag (``bench.tables``), and
one sentence read off the paired differences to the leader
(``bench.stats.paired_difference``): who is ahead, who is within noise of it, and the
cheapest method within noise."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from bench import stats
from bench.figures import metric_label
from bench.report_blocks import Block, ReportInput
from bench.tables import movement_cell, task_tables

SUMMARY_CSS = "summary"


def _num(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def _seconds(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _interval(row: pd.Series) -> str:
    if row["n"] == 0:
        return "–"
    if not math.isfinite(row["ci_low"]):
        return f"{_num(row['mean'])} (one seed)"
    return f"{_num(row['mean'])} [{_num(row['ci_low'])}, {_num(row['ci_high'])}]"


def main_block(frame: pd.DataFrame) -> tuple[float, int]:
    """The (width, depth) of a task and profile with the most ok runs (width 1 first):
    the comparison the summary shows; the width sweeps stay in the task sections."""
    counts = frame.groupby(["width", "depth"]).size().reset_index(name="runs")
    counts["not_one"] = (counts["width"] - 1.0).abs() > 1e-9
    best = counts.sort_values(["runs", "not_one"], ascending=[False, True]).iloc[0]
    return float(best["width"]), int(best["depth"])


def reading(task_frame: pd.DataFrame, ranked: pd.DataFrame, task: str, profile: str, width: float, depth: int,
            not_moved: list[str]) -> tuple[str, str]:
    """A headline and one paragraph generated from the numbers: the leader, who is
    within noise of it, who is detectably behind, the cheapest method within noise of
    the leader, and the learned augmentations that did not move."""
    ranked = ranked[ranked["n"] > 0]
    if ranked.empty:
        return "no ok run", "No ok run to compare."
    leader = ranked.iloc[0]
    if len(ranked) == 1:
        return f"only {leader['method']} ran", f"Only {leader['method']} has ok runs (n = {leader['n']})."
    close, behind, unknown = [leader["method"]], [], []
    for _, other in ranked.iloc[1:].iterrows():
        d = stats.paired_difference(task_frame, task, leader["method"], other["method"], profile=profile,
                                    width=width, depth=depth)
        if d.verdict == stats.BETTER:
            behind.append(other["method"])
        elif d.verdict == stats.NO_DIFFERENCE:
            close.append(other["method"])
        else:
            unknown.append(other["method"])
    if behind:
        headline = f"{leader['method']} best, detectably ahead of {', '.join(behind)}"
    elif len(close) > 1:
        headline = f"no detectable difference between {len(close)} methods"
    else:
        headline = f"{leader['method']} has the best mean; too few paired seeds to tell more"
    parts = [f"{leader['method']} has the best mean ({_num(leader['mean'])})"]
    if len(close) > 1:
        parts.append(f"within noise of it (the 95 % interval of the paired difference contains 0): "
                     f"{', '.join(close[1:])}")
    if behind:
        parts.append(f"detectably behind it: {', '.join(behind)}")
    if unknown:
        parts.append(f"too few paired seeds to tell: {', '.join(unknown)}")
    sentence = "; ".join(parts) + "."
    candidates = ranked[ranked["method"].isin(close)]
    cheapest = candidates.sort_values("cost_s").iloc[0]
    if len(close) > 1 and cheapest["method"] != leader["method"]:
        sentence += (f" The cheapest method within noise of the leader is {cheapest['method']} "
                     f"({_seconds(cheapest['cost_s'])} s against {_seconds(leader['cost_s'])} s).")
    if not_moved:
        sentence += (f" The learned augmentation of {', '.join(not_moved)} did not move from its start in some "
                     "seed: its number is that of its base training.")
    return headline, sentence


def _summary_rows(records: list[dict[str, Any]], frame: pd.DataFrame, task: str, profile: str
                  ) -> tuple[list[list[str]], str, str, str]:
    width, depth = main_block(frame)
    ranked = stats.method_intervals(frame, task, profile=profile, width=width, depth=depth)
    records = [r for r in records if r.get("task") == task and r.get("profile") == profile]
    summary, _ = task_tables(records)[(task, profile)]
    here = summary[((summary["width"].astype(float) - width).abs() < 1e-9)
                   & (summary["depth"].fillna(stats.NO_DEPTH).astype(int) == depth)].set_index("method")
    rows, not_moved = [], []
    for rank, (_, row) in enumerate(ranked.iterrows(), start=1):
        table_row = here.loc[row["method"]]
        n = int(table_row["n"])
        if table_row["n_aug_not_moved"]:
            not_moved.append(row["method"])
        search, train = table_row["search_s_mean"], table_row["train_s_mean"]
        moved = movement_cell(table_row, n)
        if moved == "–" and any(r.get("learned_augmentation") for r in records if r.get("status") == "ok"
                                and (r.get("label") or r.get("method")) == row["method"]):
            moved = "not recorded"  # it learns an augmentation but records no learning diagnostic
        rows.append([str(rank), row["method"], _interval(row), str(row["n"]),
                     f"{_seconds(row['cost_s'])} ({_seconds(search)} + {_seconds(train)})", _num(row["invariance"]),
                     moved])
    statistic = ", ".join(sorted(set(ranked.loc[ranked["n"] > 0, "statistic"])))
    where = f"width {width:g}" + ("" if depth == stats.NO_DEPTH else f", depth {depth}")
    return rows, *reading(frame, ranked, task, profile, width, depth, not_moved), f"{where}; {statistic}"


def summary_section(report: ReportInput) -> list[Block]:
    frame = stats.score_frame(report.records)
    blocks = [Block("h2", "Summary: which method, at what cost")]
    if frame.empty:
        return blocks + [Block("p", "No ok run yet: nothing to compare (see Not run below).")]
    for (task, profile), task_frame in frame.groupby(["task", "profile"], sort=True):
        metric = str(task_frame["metric"].iloc[0])
        better = "higher" if bool(task_frame["higher_is_better"].iloc[0]) else "lower"
        rows, headline, sentence, where = _summary_rows(report.records, task_frame, task, profile)
        header = ["rank", "method", f"test {metric_label(metric)} mean [95 % interval]", "n seeds",
                  "cost s (search + train)", "invariance score", "aug moved"]
        blocks += [Block("h3", f"{task} ({profile}): {headline}"),
                   Block("table", header=header, rows=rows, css=SUMMARY_CSS),
                   Block("p", f"{sentence} ({where}; {better} is better; mean seconds per run.)")]
    return blocks
