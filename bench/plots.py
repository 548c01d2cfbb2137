"""Plots, drawn from run records alone (no training): per task and profile, the
statistical figures of ``bench.stat_plots`` (scores with intervals, metric against
cost, metric and invariance against model width), the learned augmentation where
it is learned, in the ops' units (``bench.learned_plots``), and the invariance probe
(methods x ops) as a heatmap; per profile, the rank diagram across tasks."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench import stats
from bench.figures import save_figure, short_labels
from bench.learned_plots import learned_figures
from bench.search_gain_plots import search_gain_figures
from bench.stat_plots import rank_figures, task_figures
from bench.tuned import statistics_views


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
    frame = stats.score_frame(statistics_views(records))  # defaults, and tuned groups' selections
    written: list[Path] = []
    for (task, profile), mine_ok in frame.groupby(["task", "profile"], sort=True):
        # Tasks with no ok run have nothing to draw; the table lists why.
        metric = str(mine_ok["metric"].iloc[0])
        written += task_figures(mine_ok, task, profile, metric, out_dir)
        stem = out_dir / f"{task}.{profile}"
        mine = [r for r in records if r.get("task") == task and r.get("profile") == profile]
        written += learned_figures(mine, task, profile, out_dir)
        written += probe_heatmap(mine, task, profile, stem.with_name(stem.name + ".invariance_probe"))
    return written + rank_figures(frame, out_dir) + search_gain_figures(records, out_dir)
