"""The statistics tables, from run records alone (numbers from ``bench.stats``):

- ``<task>.<profile>.paired.{csv,md,tex}``: each method's paired difference to erm and
  to fixed per width and depth, with its interval, n and verdict;
- ``ranks.<profile>.{csv,md,tex}``: average rank, Friedman test, Nemenyi critical
  difference and the normalised-score aggregate across the profile's tasks.

Each table carries a note that names its statistic and its n.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from bench import stats
from bench.metrics import METRICS
from bench.table_format import latex_label, latex_table, markdown_table

BASELINES = ("erm", "fixed")


@dataclass
class StatTable:
    """One table: its file stem, title, note (statistic and n), text cells and numbers."""

    stem: str
    title: str
    note: str
    header: list[str]
    rows: list[list[str]]
    frame: pd.DataFrame


def _decimals(scale: float) -> int:
    """Decimals for differences on a metric whose values are about ``scale``."""
    scale = abs(scale) if math.isfinite(scale) else 0.0
    return 1 if scale >= 100 else 2 if scale >= 10 else 4


def _signed(value: float, decimals: int) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:+.{decimals}f}"


def _interval(low: float, high: float, decimals: int) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "–"
    return f"[{low:+.{decimals}f}, {high:+.{decimals}f}]"


def metric_label(metric: str) -> str:
    return METRICS[metric].label if metric in METRICS else metric


def paired_table(diffs: pd.DataFrame, task: str, profile: str) -> StatTable:
    """The paired-difference table of one task and profile (rows of ``stats.paired_differences``)."""
    metric = str(diffs["metric"].iloc[0])
    higher = bool(diffs["higher_is_better"].iloc[0])
    decimals = _decimals(float(diffs["baseline_mean"].abs().max()))
    show_depth = diffs["depth"].notna().any()
    header = ["method", "baseline", "width", *(["depth"] if show_depth else []), "n pairs",
              "method − baseline (mean)", "95 % interval", "interval", "verdict"]
    rows = []
    for _, d in diffs.iterrows():
        rows.append([d["method"], d["baseline"], f"{d['width']:g}", *([str(d["depth"] or "–")] if show_depth else []),
                     str(int(d["n"])), _signed(d["mean"], decimals), _interval(d["ci_low"], d["ci_high"], decimals),
                     d["statistic"], d["verdict"]])
    counts = sorted(set(diffs["n"].astype(int)))
    n_text = f"n = {counts[0]}" if len(counts) == 1 else f"n = {counts[0]}–{counts[-1]}"
    note = (f"Paired difference of the test {metric_label(metric)}, method − baseline, over the seeds both ran "
            f"(same task, profile, width, depth and seed; {n_text} pairs per row): mean and its interval "
            f"(Student's t over the paired differences below {stats.BOOTSTRAP_MIN_N} pairs, BCa bootstrap from "
            f"there). {'Higher' if higher else 'Lower'} is better, so 'better' means an interval entirely "
            f"{'above' if higher else 'below'} 0 and 'worse' one entirely {'below' if higher else 'above'}; "
            f"'no detectable difference': the interval contains 0; 'too few pairs': fewer than 2. Intervals are "
            f"per comparison, not adjusted for the number of rows.")
    return StatTable(f"{task}.{profile}.paired", f"{task} ({profile} profile): paired differences to "
                     + " and ".join(sorted(diffs["baseline"].unique())), note, header, rows, diffs)


def _number(value: float, decimals: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


def rank_table(result: stats.RankResult) -> StatTable:
    """The across-task table of one profile: average rank and normalised score."""
    k, n_blocks = len(result.methods), len(result.blocks)
    normalised = result.normalised.set_index("method") if len(result.normalised) else pd.DataFrame()
    group_of = {m: ", ".join(chr(ord("a") + i) for i, g in enumerate(result.groups) if m in g)
                for m in result.methods}
    header = ["method", "average rank (1 = best)", "Nemenyi group", "normalised score (mean over blocks)",
              "95 % interval (stratified bootstrap)", "n blocks"]
    rows, numbers = [], []
    for method, rank in result.average_rank.items():
        score = normalised.loc[method] if method in normalised.index else None
        low, high = (score["ci_low"], score["ci_high"]) if score is not None else (math.nan, math.nan)
        rows.append([method, f"{rank:.2f}", group_of.get(method) or "–",
                     _number(score["mean"]) if score is not None else "–",
                     f"[{low:.3f}, {high:.3f}]" if math.isfinite(low) and math.isfinite(high) else "–",
                     str(int(score["n_blocks"])) if score is not None else str(n_blocks)])
        numbers.append({"method": method, "average_rank": rank, "nemenyi_group": group_of.get(method) or "",
                        "normalised_mean": score["mean"] if score is not None else math.nan,
                        "normalised_ci_low": low, "normalised_ci_high": high,
                        "n_blocks": n_blocks, "friedman_chi2": result.friedman_statistic,
                        "friedman_p": result.friedman_p, "critical_difference": result.critical_difference})
    seeds = result.seeds_per_cell
    seeds_text = f"{seeds[0]}" if seeds[0] == seeds[1] else f"{seeds[0]}–{seeds[1]}"
    if math.isfinite(result.friedman_p):
        test = (f"Friedman χ² = {result.friedman_statistic:.2f} (df = {k - 1}), p = {result.friedman_p:.3g}; "
                f"Nemenyi critical difference (α = 0.05) CD = {result.critical_difference:.2f}: two average ranks "
                f"closer than CD are not shown to differ (methods sharing a group letter).")
    else:
        test = ("No Friedman test: it needs at least 3 methods and 2 blocks with results for all of them"
                + (f" (CD = {result.critical_difference:.2f} shown for reference)."
                   if math.isfinite(result.critical_difference) else "."))
    excluded = "; ".join([f"{m} left out: {why}" for m, why in result.excluded_methods.items()]
                         + [f"block {b} left out: {why}" for b, why in result.excluded_blocks.items()])
    note = (f"Profile {result.profile}: k = {k} methods ranked by their mean test metric over seeds within each of "
            f"N = {n_blocks} blocks (a block is one task × width × depth: {', '.join(result.blocks) or 'none'}; "
            f"{seeds_text} seeds per method and block); rank 1 is the best (accuracy highest, MAE lowest), ties "
            f"share the average rank. {test} Normalised score per block: (s − s_erm) / |s_best − s_erm| with "
            f"s_best the best method other than erm, so 0 = erm, 1 = the best method when it beats erm, −1 = the "
            f"best method when none beats erm; mean over the n blocks (a block where the best other method ties erm "
            f"exactly has no score), 95 % percentile interval from a bootstrap of the seeds within each block and "
            f"method on that fixed scale ({stats.AGGREGATE_RESAMPLES} resamples; with 2–3 seeds it is optimistic)."
            + (f" {excluded}." if excluded else ""))
    return StatTable(f"ranks.{result.profile}", f"Ranks across tasks ({result.profile} profile)", note, header, rows,
                     pd.DataFrame(numbers))


def stat_tables(records: Iterable[dict[str, Any]] | pd.DataFrame) -> list[StatTable]:
    """Every paired-difference table (per task and profile with erm or fixed), then
    every rank table (per profile with at least 2 methods ranked)."""
    frame = stats.score_frame(records) if not isinstance(records, pd.DataFrame) else records
    diffs = stats.paired_differences(frame, BASELINES)
    # erm − fixed is fixed − erm with its sign turned: keep the latter only.
    diffs = diffs[~((diffs["baseline"] == "fixed") & (diffs["method"] == "erm"))]
    out = [paired_table(group, task, profile)
           for (task, profile), group in diffs.groupby(["task", "profile"], sort=True)]
    for result in stats.rank_profiles(frame).values():
        if len(result.methods) >= 2:
            out.append(rank_table(result))
    return out


def write_table(table: StatTable, out_dir: Path) -> list[Path]:
    """``<stem>.csv`` (numbers), ``.md`` and ``.tex`` of one table."""
    csv, md, tex = (out_dir / f"{table.stem}.{ext}" for ext in ("csv", "md", "tex"))
    table.frame.round(6).to_csv(csv, index=False)
    md.write_text(f"## {table.title}\n\n{table.note}\n\n{markdown_table(table.header, table.rows)}\n")
    tex.write_text(latex_table(table.header, table.rows, f"{table.title}. {table.note}", latex_label(table.stem)))
    return [csv, md, tex]


def write_stat_tables(records: Iterable[dict[str, Any]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [path for table in stat_tables(records) for path in write_table(table, out_dir)]
