"""Plots, drawn from run records alone (no training): per task and profile,
the test metric against the method's cost (search + train seconds), and against the
model width when more than one width was run. Error bars: std over seeds."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from bench.metrics import METRICS  # noqa: E402
from bench.tables import task_tables  # noqa: E402


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


def metric_vs_cost(summary: pd.DataFrame, task: str, profile: str, metric: str, stem: Path) -> list[Path]:
    ok = summary[summary["n"] > 0]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, (label, group) in enumerate(ok.groupby("method", sort=True)):
        name = label if group["width"].nunique() == 1 else f"{label} (one point per width)"
        _errorbar(ax, group["cost_s_mean"], group["test_metric_mean"], group["cost_s_std"].fillna(0),
                  group["test_metric_std"].fillna(0), name, fmt="o", color=f"C{i % 10}")
        if group["width"].nunique() > 1:
            for _, row in group.iterrows():
                ax.annotate(f"w={row['width']:g}", (row["cost_s_mean"], row["test_metric_mean"]),
                            textcoords="offset points", xytext=(5, 4), fontsize=7, color=f"C{i % 10}")
    if ok["cost_s_mean"].max() > 10 * max(ok["cost_s_mean"].min(), 1e-9):
        ax.set_xscale("log")
    n_seeds = f"n = {ok['n'].min()}" if ok["n"].nunique() == 1 else f"n = {ok['n'].min()}–{ok['n'].max()}"
    ax.set_xlabel("search + train time per run (s)")
    ax.set_ylabel(f"test {_metric_label(metric)}")
    ax.set_title(f"{task} ({profile}): mean ± std over seeds ({n_seeds})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, stem)


def metric_vs_width(summary: pd.DataFrame, task: str, profile: str, metric: str, stem: Path) -> list[Path]:
    ok = summary[summary["n"] > 0]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, (label, group) in enumerate(ok.groupby("method", sort=True)):
        group = group.sort_values("width")
        _errorbar(ax, group["width"], group["test_metric_mean"], None, group["test_metric_std"].fillna(0), label,
                  fmt="-o", color=f"C{i % 10}")
    ax.set_xscale("log", base=2)
    widths = sorted(ok["width"].unique())
    ax.set_xticks(widths, [f"{w:g}" for w in widths])
    ax.minorticks_off()
    ax.set_xlabel("model width multiplier (log scale)")
    ax.set_ylabel(f"test {_metric_label(metric)}")
    ax.set_title(f"{task} ({profile}): mean ± std over seeds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, stem)


def write_plots(records: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for (task, profile), (summary, metric) in task_tables(records).items():
        if not (summary["n"] > 0).any():
            continue  # nothing ok to draw; the table lists why
        written += metric_vs_cost(summary, task, profile, metric, out_dir / f"{task}.{profile}.metric_vs_time")
        if summary.loc[summary["n"] > 0, "width"].nunique() > 1:
            written += metric_vs_width(summary, task, profile, metric, out_dir / f"{task}.{profile}.metric_vs_width")
    return written
