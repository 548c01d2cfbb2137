"""Plots, drawn from run records alone (no training): per task and profile, the
statistical figures of ``bench.stat_plots`` (scores with intervals, metric against
cost, metric and invariance against model width), the learned augmentation
parameters over training and the invariance probe (methods x ops) as a heatmap; per
profile, the rank diagram across tasks."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench import stats
from bench.assumption_curves import curve_figure
from bench.figures import save_figure, short_labels
from bench.recovery import rotation_range_figure
from bench.stat_plots import rank_figures, task_figures
from bench.tables import flatten_numbers, is_learned_parameter


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
    return save_figure(fig, stem)


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
    return save_figure(fig, stem)


def write_plots(records: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = stats.score_frame(records)
    written: list[Path] = []
    for (task, profile), mine_ok in frame.groupby(["task", "profile"], sort=True):
        # Tasks with no ok run have nothing to draw; the table lists why.
        metric = str(mine_ok["metric"].iloc[0])
        written += task_figures(mine_ok, task, profile, metric, out_dir)
        stem = out_dir / f"{task}.{profile}"
        mine = [r for r in records if r.get("task") == task and r.get("profile") == profile]
        written += learned_augmentation_trajectories(mine, task, profile,
                                                     stem.with_name(stem.name + ".learned_augmentation"))
        written += probe_heatmap(mine, task, profile, stem.with_name(stem.name + ".invariance_probe"))
        written += rotation_range_figure(mine, task, profile, stem.with_name(stem.name + ".rotation_range"))
        written += curve_figure(mine, task, profile, stem.with_name(stem.name + ".assumption_curves"))
    return written + rank_figures(frame, out_dir)
