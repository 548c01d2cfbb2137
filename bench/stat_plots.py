"""Statistical figures with seaborn, from the ok records alone (``stats.score_frame``);
every interval is the one the tables print (``bench.stats.errorbar``: a 95 %
t-interval over seeds below 30 seeds), and every title names it and its n.

Per task and profile: ``scores`` (each seed as a dot, the mean with its interval per
method), ``metric_vs_time`` (test metric against search + train seconds, runs and
means with intervals on both axes, and the Pareto front of the means),
``metric_vs_width`` / ``invariance_vs_width`` (mean line and interval band against the
model width, when several widths were run). Per profile: ``ranks`` (the critical-
difference diagram of average ranks across tasks, and the normalised-score aggregate).
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from bench import stats
from bench.figures import method_palette, metric_label, save_figure, short_labels


def _n_text(counts: pd.Series) -> str:
    low, high = int(counts.min()), int(counts.max())
    return f"n = {low}" if low == high else f"n = {low}–{high}"


def _interval_text(counts: pd.Series) -> str:
    """How the intervals of a figure were made, e.g. "95 % t-interval over seeds, n = 3"."""
    names = sorted({stats.interval_name(int(n)) for n in counts})
    return f"{' / '.join(names)} over seeds, {_n_text(counts)}"


def _direction(higher: bool) -> str:
    return "higher is better" if higher else "lower is better"


def _wrapped(labels: list[str], width: int = 40) -> dict[str, str]:
    return {label: textwrap.fill(short, width) for label, short in short_labels(labels).items()}


def scores(frame: pd.DataFrame, task: str, profile: str, metric: str, stem: Path) -> list[Path]:
    """Test metric per method: every seed as a dot, the mean and its interval as a
    diamond with caps; methods ordered best first; one colour per width if several."""
    data = frame.dropna(subset=["test_metric"]).copy()
    if data.empty:
        return []
    higher = bool(data["higher_is_better"].iloc[0])
    order = data.groupby("label")["test_metric"].mean().sort_values(ascending=not higher).index.tolist()
    names = _wrapped(order)
    data["method"] = data["label"].map(names)
    several_widths = data["width"].nunique() > 1
    data["model width"] = data["width"].map(lambda w: f"{w:g}")
    hue = "model width" if several_widths else None
    fig, ax = plt.subplots(figsize=(7.5, 1.6 + 0.5 * len(order) * (1 + 0.3 * several_widths)))
    with sns.axes_style("whitegrid"):
        sns.stripplot(data=data, x="test_metric", y="method", order=[names[m] for m in order], hue=hue,
                      dodge=several_widths, jitter=0.15, size=4, alpha=0.5, color=None if hue else "0.45",
                      ax=ax, legend=False)
        sns.pointplot(data=data, x="test_metric", y="method", order=[names[m] for m in order], hue=hue,
                      dodge=0.4 if several_widths else False, errorbar=stats.errorbar, linestyle="none",
                      markers="D", capsize=0.2, err_kws={"linewidth": 1.5}, color=None if hue else "black", ax=ax)
    if not several_widths and "erm" in order:
        ax.axvline(data.loc[data["label"] == "erm", "test_metric"].mean(), color="grey", ls=":", lw=1,
                   label="erm mean")
        ax.legend(fontsize=8, loc="best")
    counts = data.groupby(["label", "width"])["seed"].nunique()
    ax.set_xlabel(f"test {metric_label(metric)} ({_direction(higher)})")
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{task} ({profile}): seeds (dots), mean and {_interval_text(counts)}", fontsize=9)
    return save_figure(fig, stem)


def _means_with_intervals(data: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    rows = []
    for key, group in data.groupby(keys, sort=True):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        for column in columns:
            interval = stats.mean_interval(group[column].to_numpy())
            row.update({f"{column}_mean": interval.mean, f"{column}_low": interval.low,
                        f"{column}_high": interval.high, "n": interval.n})
        rows.append(row)
    return pd.DataFrame(rows)


def cost_vs_score(frame: pd.DataFrame, task: str, profile: str, metric: str, stem: Path) -> list[Path]:
    """The AugNet paper's cost figure: test metric against search + train seconds.
    Faint dots: runs; crosses: mean and interval on both axes per method and width;
    dashed: the Pareto front of the means (nothing is both cheaper and better)."""
    data = frame.dropna(subset=["test_metric", "cost_s"]).copy()
    if data.empty:
        return []
    higher = bool(data["higher_is_better"].iloc[0])
    labels = sorted(data["label"].unique())
    palette = method_palette(labels)
    names = _wrapped(labels, 45)
    means = _means_with_intervals(data, ["label", "width"], ["cost_s", "test_metric"])
    fig, ax = plt.subplots(figsize=(8.4, 4.6))
    with sns.axes_style("whitegrid"):
        sns.scatterplot(data=data, x="cost_s", y="test_metric", hue="label", palette=palette, alpha=0.3, s=18,
                        legend=False, ax=ax)
    several_widths = means["width"].nunique() > 1
    for label, group in means.groupby("label", sort=True):
        xerr = np.abs(np.vstack([group["cost_s_mean"] - group["cost_s_low"],
                                 group["cost_s_high"] - group["cost_s_mean"]]))
        yerr = np.abs(np.vstack([group["test_metric_mean"] - group["test_metric_low"],
                                 group["test_metric_high"] - group["test_metric_mean"]]))
        ax.errorbar(group["cost_s_mean"], group["test_metric_mean"], xerr=np.nan_to_num(xerr),
                    yerr=np.nan_to_num(yerr), fmt="o", capsize=3, markersize=6, color=palette[label],
                    label=names[label] + (" (one point per width)" if several_widths else ""))
        if several_widths:
            for _, row in group.iterrows():
                ax.annotate(f"w={row['width']:g}", (row["cost_s_mean"], row["test_metric_mean"]),
                            textcoords="offset points", xytext=(5, 4), fontsize=7, color=palette[label])
    front = means.iloc[stats.pareto_front(means["cost_s_mean"].tolist(), means["test_metric_mean"].tolist(), higher)]
    ax.plot(front["cost_s_mean"], front["test_metric_mean"], "--", color="grey", lw=1, zorder=0,
            label="Pareto front of the means")
    if data["cost_s"].max() > 10 * max(data["cost_s"].min(), 1e-9):
        ax.set_xscale("log")
    ax.set_xlabel("search + train seconds per run (under the machine's load when run)")
    ax.set_ylabel(f"test {metric_label(metric)} ({_direction(higher)})")
    ax.set_title(f"{task} ({profile}): runs (dots), mean and {_interval_text(means['n'])}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return save_figure(fig, stem)


def versus_width(frame: pd.DataFrame, column: str, ylabel: str, title: str, stem: Path) -> list[Path]:
    """Mean line and interval band against the model width: one colour per method,
    one line style per depth. The y-axis spans the seeds' values with a margin: a band
    wider than that (2 seeds: t = 12.7) runs off the axes, as the title says."""
    data = frame.dropna(subset=[column]).copy()
    if data.empty or data["width"].nunique() < 2:
        return []
    labels = sorted(data["label"].unique())
    names = _wrapped(labels, 45)
    data["method"] = data["label"].map(names)
    data["depth "] = data["depth"].map(lambda d: "–" if d == stats.NO_DEPTH else str(d))
    several_depths = data["depth "].nunique() > 1
    palette = {names[k]: v for k, v in method_palette(labels).items()}
    n_lines = len(labels) * data["depth "].nunique()
    fig, ax = plt.subplots(figsize=(9.6, max(4.4, 0.25 * n_lines + 1.0)))
    with sns.axes_style("whitegrid"):
        style = {"style": "depth ", "markers": True, "dashes": True} if several_depths else {"marker": "o"}
        sns.lineplot(data=data, x="width", y=column, hue="method", hue_order=[names[k] for k in labels],
                     palette=palette, errorbar=stats.errorbar, err_style="band", err_kws={"alpha": 0.15}, ax=ax,
                     **style)
    low, high = data[column].min(), data[column].max()
    margin = 0.25 * (high - low) if high > low else 0.05 * max(abs(high), 1e-3)
    ax.set_ylim(low - margin, high + margin)
    ax.set_xscale("log", base=2)
    widths = sorted(data["width"].unique())
    ax.set_xticks(widths, [f"{w:g}" for w in widths])
    ax.minorticks_off()
    ax.set_xlabel("model width multiplier (log scale)")
    ax.set_ylabel(ylabel)
    counts = data.groupby(["label", "width", "depth"])["seed"].nunique()
    ax.set_title(f"{title}: mean and {_interval_text(counts)} (band; wider bands run off the axes)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return save_figure(fig, stem)


def task_figures(frame: pd.DataFrame, task: str, profile: str, metric: str, out_dir: Path) -> list[Path]:
    """Every statistical figure of one task and profile (``frame``: its ok records)."""
    stem = out_dir / f"{task}.{profile}"
    higher = bool(frame["higher_is_better"].iloc[0]) if len(frame) else True
    written = scores(frame, task, profile, metric, stem.with_name(stem.name + ".scores"))
    written += cost_vs_score(frame, task, profile, metric, stem.with_name(stem.name + ".metric_vs_time"))
    written += versus_width(frame, "test_metric", f"test {metric_label(metric)} ({_direction(higher)})",
                            f"{task} ({profile})", stem.with_name(stem.name + ".metric_vs_width"))
    # The AugNet paper's expressivity figure: invariance to the task's reference group
    # against model width (AugNet's stays flat; augmentation's depends on capacity).
    written += versus_width(frame, "invariance", "invariance score (median over test examples)",
                            f"{task} ({profile}) invariance", stem.with_name(stem.name + ".invariance_vs_width"))
    return written


def critical_difference_diagram(ax: plt.Axes, result: stats.RankResult) -> None:
    """Demšar's diagram: the average-rank axis (1 = best, on the left), each method
    joined to its rank, the CD as a bar, and thick lines joining methods whose ranks
    are closer than CD (not shown to differ)."""
    ranks = result.average_rank
    k = len(ranks)
    names = _wrapped(list(ranks.index), 32)
    n_groups = len(result.groups)
    ax.set_xlim(0.5, k + 0.5)
    ax.hlines(0, 1, k, color="black", lw=1)
    for r in range(1, k + 1):
        ax.vlines(r, 0, 0.08, color="black", lw=1)
        ax.text(r, 0.12, str(r), ha="center", va="bottom", fontsize=8)
    cd = result.critical_difference
    if math.isfinite(cd):
        ax.hlines(0.45, 1, min(1 + cd, k + 0.5), color="black", lw=1.5)
        ax.text(1 + min(cd, k - 0.5) / 2, 0.5, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    for g, group in enumerate(result.groups):
        y = -0.12 - 0.1 * g
        ax.hlines(y, ranks[group].min() - 0.04, ranks[group].max() + 0.04, color="black", lw=3)
    top = -0.2 - 0.1 * n_groups
    half = math.ceil(k / 2)
    for i, (method, rank) in enumerate(ranks.items()):
        left = i < half
        row = i if left else k - 1 - i
        y = top - 0.25 * row
        edge = 0.5 if left else k + 0.5
        ax.plot([rank, rank, edge], [0, y, y], color="0.3", lw=0.8)
        ax.text(edge + (-0.05 if left else 0.05), y, f"{names[method]} ({rank:.2f})", ha="right" if left else "left",
                va="center", fontsize=8, clip_on=False)
    ax.set_ylim(top - 0.25 * (half - 1) - 0.2, 0.8)
    ax.axis("off")


def rank_figure(result: stats.RankResult, stem: Path) -> list[Path]:
    """The profile's CD diagram (top) and its normalised-score aggregate (bottom)."""
    k = len(result.methods)
    if k < 2:
        return []
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10.0, 2.4 + 0.55 * k),
                                      gridspec_kw={"height_ratios": [1.0 + 0.12 * k, 0.4 + 0.3 * k]})
    fig.subplots_adjust(left=0.3, right=0.7)
    critical_difference_diagram(top, result)
    test = (f"Friedman χ² = {result.friedman_statistic:.2f}, p = {result.friedman_p:.3g}"
            if math.isfinite(result.friedman_p) else "no Friedman test (needs ≥ 3 methods and ≥ 2 blocks)")
    top.set_title(f"{result.profile}: average rank over N = {len(result.blocks)} blocks (task × width × depth); "
                  f"{test}; Nemenyi CD at α = 0.05", fontsize=9)
    normalised = result.normalised.dropna(subset=["mean"])
    if len(normalised):
        palette = method_palette(result.methods)
        names = _wrapped(list(normalised["method"]), 32)
        y = np.arange(len(normalised))
        for i, (_, row) in enumerate(normalised.iterrows()):
            low, high = row["ci_low"], row["ci_high"]
            err = [[max(row["mean"] - low, 0)], [max(high - row["mean"], 0)]] if math.isfinite(low) else None
            bottom.errorbar(row["mean"], i, xerr=err, fmt="D", capsize=3, color=palette[row["method"]])
        bottom.set_yticks(y, [names[m] for m in normalised["method"]], fontsize=8)
        bottom.invert_yaxis()
        bottom.axvline(0, color="grey", ls=":", lw=1)
        bottom.axvline(1, color="grey", ls=":", lw=1)
        bottom.set_xlabel("normalised score (0 = erm, 1 = best other method per block), mean over blocks")
        low, high = result.seeds_per_cell
        seeds = f"{low}" if low == high else f"{low}–{high}"
        bottom.set_title(f"mean and 95 % stratified-bootstrap interval (seeds resampled in each block; "
                         f"{seeds} seeds per method and block)", fontsize=9)
        bottom.grid(axis="x", alpha=0.3)
    else:
        bottom.axis("off")
    left_out = [f"{m} ({why})" for m, why in result.excluded_methods.items()]
    if left_out:
        fig.text(0.5, 0.0, textwrap.fill("Left out of the ranking: " + "; ".join(left_out), 120), ha="center",
                 va="top", fontsize=7)
    return save_figure(fig, stem, outside_text=True)


def rank_figures(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``ranks.<profile>`` for every profile with at least 2 methods ranked."""
    written: list[Path] = []
    for profile, result in stats.rank_profiles(frame).items():
        written += rank_figure(result, out_dir / f"ranks.{profile}")
    return written
