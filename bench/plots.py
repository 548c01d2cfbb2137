"""Plots, drawn from run records alone (no training), per task and profile: the test
metric against the method's cost (search + train seconds) with the Pareto front; the
test metric and the invariance score against the model width when several widths
were run; the learned augmentation parameters over training; the invariance probe
(methods x ops) as a heatmap. Error bars: sample std over seeds."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.metrics import METRICS  # noqa: E402
from bench.tables import flatten_numbers, is_learned_parameter, task_tables  # noqa: E402


def _metric_label(metric: str) -> str:
    return METRICS[metric].label if metric in METRICS else metric


def _save(fig: plt.Figure, stem: Path) -> list[Path]:
    fig.tight_layout()
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def _errorbar(ax: plt.Axes, x: Any, y: Any, xerr: Any, yerr: Any, label: str, **kw: Any) -> None:
    ax.errorbar(x, y, xerr=xerr, yerr=yerr, label=label, capsize=3, markersize=6, **kw)


def pareto_front(cost: list[float], value: list[float], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and metric."""
    sign = 1 if higher_is_better else -1
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -sign * value[i]))
    front, best = [], -float("inf")
    for i in order:
        if sign * value[i] > best:
            front.append(i)
            best = sign * value[i]
    return front


def _n_label(ok: pd.DataFrame) -> str:
    return f"n = {ok['n'].min()}" if ok["n"].nunique() == 1 else f"n = {ok['n'].min()}–{ok['n'].max()}"


def metric_vs_cost(summary: pd.DataFrame, task: str, profile: str, metric: str, stem: Path) -> list[Path]:
    ok = summary[summary["n"] > 0].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, (label, group) in enumerate(ok.groupby("method", sort=True)):
        name = label if group["width"].nunique() == 1 else f"{label} (one point per width)"
        _errorbar(ax, group["cost_s_mean"], group["test_metric_mean"], group["cost_s_std"].fillna(0),
                  group["test_metric_std"].fillna(0), name, fmt="o", color=f"C{i % 10}")
        if group["width"].nunique() > 1:
            for _, row in group.iterrows():
                ax.annotate(f"w={row['width']:g}", (row["cost_s_mean"], row["test_metric_mean"]),
                            textcoords="offset points", xytext=(5, 4), fontsize=7, color=f"C{i % 10}")
    higher = METRICS[metric].higher_is_better if metric in METRICS else True
    front = ok.iloc[pareto_front(ok["cost_s_mean"].tolist(), ok["test_metric_mean"].tolist(), higher)]
    ax.plot(front["cost_s_mean"], front["test_metric_mean"], "--", color="grey", lw=1, zorder=0,
            label="Pareto front (mean cost vs mean metric)")
    if ok["cost_s_mean"].max() > 10 * max(ok["cost_s_mean"].min(), 1e-9):
        ax.set_xscale("log")
    ax.set_xlabel("search + train time per run (s)")
    ax.set_ylabel(f"test {_metric_label(metric)}")
    ax.set_title(f"{task} ({profile}): mean ± std over seeds ({_n_label(ok)})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, stem)


LINESTYLES = ("-", "--", ":", "-.")


def short_labels(labels: list[str]) -> dict[str, str]:
    """Drop the parameters that every label of the same method shares, e.g.
    "augnet (layers=x, ncopies=1)", "augnet (layers=x, ncopies=10)" -> "augnet (ncopies=1)" ..."""
    parsed = {}
    for label in labels:
        name, _, inner = label.partition(" (")
        parsed[label] = (name, [p for p in inner.rstrip(")").split(", ") if p] if inner else [])
    out = {}
    for label, (name, params) in parsed.items():
        siblings = [p for n, p in parsed.values() if n == name]
        common = set.intersection(*(set(p) for p in siblings)) if len(siblings) > 1 else set()
        kept = [p for p in params if p not in common]
        out[label] = f"{name} ({', '.join(kept)})" if kept else name
    return out


def _vs_width(summary: pd.DataFrame, column: str, ylabel: str, title: str, stem: Path) -> list[Path]:
    """One colour per method label, one line style per depth; legend beside the axes."""
    ok = summary[summary["n"] > 0]
    depths = sorted(ok["depth"].fillna(-1).unique())
    methods = sorted(ok["method"].unique())
    short = short_labels(methods)
    n_lines = len(methods) * len(depths)
    fig, ax = plt.subplots(figsize=(9.6, max(4.4, 0.25 * n_lines + 1.0)))
    for (label, depth), group in ok.groupby(["method", ok["depth"].fillna(-1)], sort=True):
        group = group.sort_values("width")
        name = textwrap.fill(short[label], 45) + (f", depth {int(depth)}" if len(depths) > 1 else "")
        _errorbar(ax, group["width"], group[f"{column}_mean"], None, group[f"{column}_std"].fillna(0), name,
                  fmt="o", linestyle=LINESTYLES[depths.index(depth) % len(LINESTYLES)],
                  color=f"C{methods.index(label) % 10}")
    ax.set_xscale("log", base=2)
    widths = sorted(ok["width"].unique())
    ax.set_xticks(widths, [f"{w:g}" for w in widths])
    ax.minorticks_off()
    ax.set_xlabel("model width multiplier (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}: mean ± std over seeds ({_n_label(ok)})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(fig, stem)


def metric_vs_width(summary: pd.DataFrame, task: str, profile: str, metric: str, stem: Path) -> list[Path]:
    return _vs_width(summary, "test_metric", f"test {_metric_label(metric)}", f"{task} ({profile})", stem)


def invariance_vs_width(summary: pd.DataFrame, task: str, profile: str, stem: Path) -> list[Path]:
    """The AugNet paper's expressivity figure: invariance to the task's reference
    group against model width (AugNet's stays flat; augmentation's depends on capacity)."""
    return _vs_width(summary, "invariance", "invariance score (median over test examples)",
                     f"{task} ({profile}) invariance", stem)


MAX_TRAJECTORIES = 12


def learned_augmentation_trajectories(records: list[dict[str, Any]], task: str, profile: str, stem: Path
                                      ) -> list[Path]:
    """Learned augmentation parameters per epoch: one panel per method, drawn from the
    ok run with the lowest seed at the most common width of that method."""
    runs: dict[str, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r.get("seed", 0), abs(float(r.get("width", 1)) - 1))):
        if r.get("status") == "ok" and any("augmentation" in e for e in r.get("history") or []):
            runs.setdefault(r.get("label") or r["method"], r)
    if not runs:
        return []
    fig, axes = plt.subplots(len(runs), 1, figsize=(6.4, 3.2 * len(runs)), squeeze=False)
    for ax, (label, record) in zip(axes[:, 0], sorted(runs.items())):
        epochs = [e["epoch"] + 1 for e in record["history"] if "augmentation" in e]
        series = [flatten_numbers(e["augmentation"]) for e in record["history"] if "augmentation" in e]
        learned = [k for k in series[-1] if is_learned_parameter(k)]
        # The parameters that moved most, then the largest.
        spread = {k: max(s.get(k, 0.0) for s in series) - min(s.get(k, 0.0) for s in series) for k in learned}
        keys = sorted(learned, key=lambda k: (-spread[k], -abs(series[-1][k])))[:MAX_TRAJECTORIES]
        for i, key in enumerate(sorted(keys)):
            ax.plot(epochs, [s.get(key, float("nan")) for s in series], "-o", markersize=3, color=f"C{i % 10}",
                    label=key)
        shown = "" if len(learned) <= MAX_TRAJECTORIES else f" ({MAX_TRAJECTORIES} that moved most, of {len(learned)})"
        ax.set_title(f"{task} ({profile}) {label}: seed {record['seed']}, width {record['width']:g}{shown}",
                     fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("learned parameter value")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    return _save(fig, stem)


def probe_heatmap(records: list[dict[str, Any]], task: str, profile: str, stem: Path) -> list[Path]:
    """Methods x ops: mean over ok runs (seeds, widths) of the invariance probe."""
    rows: dict[str, list[dict[str, float]]] = {}
    for r in records:
        if r.get("status") == "ok" and r.get("invariance_probe"):
            rows.setdefault(r.get("label") or r["method"], []).append(r["invariance_probe"])
    if not rows:
        return []
    ops = list(next(iter(rows.values()))[0])
    table = pd.DataFrame({m: pd.DataFrame(p).mean() for m, p in sorted(rows.items())}).T[ops]
    fig, ax = plt.subplots(figsize=(max(6.0, 3.5 + 0.45 * len(ops)), 1.6 + 0.4 * len(table)))
    image = ax.imshow(table.to_numpy(), vmin=-1, vmax=1, cmap="RdBu", aspect="auto")
    ax.set_xticks(range(len(ops)), ops, rotation=60, ha="right", fontsize=7)
    short = short_labels([str(m) for m in table.index])
    ax.set_yticks(range(len(table)), [textwrap.fill(short[str(m)], 40) for m in table.index], fontsize=7)
    for (i, j), v in np.ndenumerate(table.to_numpy()):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="invariance score (1 = invariant)")
    n = min(len(p) for p in rows.values())
    ax.set_title(f"{task} ({profile}): invariance probe per op (mean over n ≥ {n} runs)", fontsize=9)
    return _save(fig, stem)


def write_plots(records: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for (task, profile), (summary, metric) in task_tables(records).items():
        if not (summary["n"] > 0).any():
            continue  # nothing ok to draw; the table lists why
        stem = out_dir / f"{task}.{profile}"
        mine = [r for r in records if r.get("task") == task and r.get("profile") == profile]
        written += metric_vs_cost(summary, task, profile, metric, stem.with_name(stem.name + ".metric_vs_time"))
        if summary.loc[summary["n"] > 0, "width"].nunique() > 1:
            written += metric_vs_width(summary, task, profile, metric, stem.with_name(stem.name + ".metric_vs_width"))
            written += invariance_vs_width(summary, task, profile, stem.with_name(stem.name + ".invariance_vs_width"))
        written += learned_augmentation_trajectories(mine, task, profile,
                                                     stem.with_name(stem.name + ".learned_augmentation"))
        written += probe_heatmap(mine, task, profile, stem.with_name(stem.name + ".invariance_probe"))
    return written
