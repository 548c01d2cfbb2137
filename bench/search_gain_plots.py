"""The search-gain figure (``bench.search_gain``), per task and profile, from records
alone: left, each method's test metric minus its control's, every seed's paired
difference as a dot and the mean with the tables' interval; right, the method's
search seconds and its extra search + train seconds over the control, with the
interval of the paired difference."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from bench import stats
from bench.figures import metric_label, save_figure, short_labels
from bench.search_gain import search_gains


def _seed_differences(frame: pd.DataFrame, gains: pd.DataFrame) -> pd.DataFrame:
    """Per row of ``gains``, the per-seed method − control differences of the test
    metric (the values ``stats.paired_difference`` averages)."""
    rows = []
    for _, g in gains.iterrows():
        cell = frame[(frame["task"] == g["task"]) & (frame["profile"] == g["profile"])
                     & np.isclose(frame["width"], g["width"])
                     & (frame["depth"] == (stats.NO_DEPTH if g["depth"] is None else g["depth"]))]
        sides = [cell[cell["label"] == label].groupby("seed")["test_metric"].mean() for label in (g["method"],
                                                                                                 g["control"])]
        paired = pd.concat(sides, axis=1, keys=["method", "control"], join="inner").dropna()
        rows += [{"row": g["row"], "seed": seed, "difference": d}
                 for seed, d in (paired["method"] - paired["control"]).items()]
    return pd.DataFrame(rows, columns=["row", "seed", "difference"])


def search_gain_figure(frame: pd.DataFrame, gains: pd.DataFrame, task: str, profile: str, stem: Path) -> list[Path]:
    """The figure of one task and profile (``gains``: its rows of ``search_gains``)."""
    gains = gains.copy()
    several_widths = gains["width"].nunique() > 1 or gains["depth"].notna().any()
    names = short_labels(list(gains["method"]))
    gains["row"] = [names[m] + (f" (w={w:g}" + (f", d={d}" if d is not None else "") + ")" if several_widths else "")
                    for m, w, d in zip(gains["method"], gains["width"], gains["depth"])]
    dots = _seed_differences(frame, gains)
    metric, higher = str(gains["metric"].iloc[0]), bool(gains["higher_is_better"].iloc[0])
    order = list(gains["row"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 1.6 + 0.55 * len(order)), sharey=True,
                                      gridspec_kw={"width_ratios": [1.4, 1.0]})
    with sns.axes_style("whitegrid"):
        if len(dots):
            sns.stripplot(data=dots, x="difference", y="row", order=order, color="0.45", size=5, alpha=0.6,
                          jitter=0.1, ax=left)
    y = np.arange(len(order))
    for i, (_, g) in enumerate(gains.iterrows()):
        err = ([[g["gain"] - g["ci_low"]], [g["ci_high"] - g["gain"]]]
               if math.isfinite(g["ci_low"]) and math.isfinite(g["ci_high"]) else None)
        left.errorbar(g["gain"], i, xerr=err, fmt="D", color="black", capsize=4)
        cost_err = ([[g["extra_cost_s"] - g["extra_cost_ci_low"]], [g["extra_cost_ci_high"] - g["extra_cost_s"]]]
                    if math.isfinite(g["extra_cost_ci_low"]) and math.isfinite(g["extra_cost_ci_high"]) else None)
        right.barh(i - 0.18, g["search_s"] if math.isfinite(g["search_s"]) else 0, height=0.34, color="tab:blue",
                   label="search s (method)" if i == 0 else None)
        right.errorbar(g["extra_cost_s"], i + 0.18, xerr=cost_err, fmt="o", color="tab:red", capsize=3,
                       label="extra search + train s over the control" if i == 0 else None)
    left.axvline(0, color="grey", ls=":", lw=1)
    left.set_yticks(y, order, fontsize=8)
    left.set_ylabel("")
    left.set_xlabel(f"test {metric_label(metric)}: method − control ({'higher' if higher else 'lower'} is better)")
    n = sorted(set(gains["n"].astype(int)))
    n_text = f"n = {n[0]}" if len(n) == 1 else f"n = {n[0]}–{n[-1]}"
    left.set_title(f"{task} ({profile}): per-seed paired differences (dots), mean and "
                   f"{stats.interval_name(max(n))} ({n_text})", fontsize=9)
    left.grid(axis="x", alpha=0.3)
    right.axvline(0, color="grey", ls=":", lw=1)
    right.set_xlabel("seconds per run (under the machine's load when run)")
    right.set_title("cost of the search / learning", fontsize=9)
    right.legend(fontsize=7, loc="best")
    right.grid(axis="x", alpha=0.3)
    return save_figure(fig, stem)


def search_gain_figures(records: Iterable[dict[str, Any]], out_dir: Path) -> list[Path]:
    """``<task>.<profile>.search_gain.{png,pdf}`` for every task and profile with a
    method paired with its control."""
    records = [r for r in records if isinstance(r, dict)]
    gains = search_gains(records)
    frame = stats.score_frame(records)
    written: list[Path] = []
    for (task, profile), group in gains.groupby(["task", "profile"], sort=True):
        written += search_gain_figure(frame, group, task, profile, out_dir / f"{task}.{profile}.search_gain")
    return written
