"""Per-op assumption curves: how a trained predictor's test metric changes when the
test inputs are transformed by one op of the task's augmentation space, at magnitudes
0 ... 1 of the op's range.

Every augmentation is an invariance assumption ("rotating a digit keeps its class").
The curve of a model trained without augmentation (``erm``) falls where the
assumption breaks on the data (rotating a 6 past 90 degrees makes a 9) and where the
model never learned an invariance the labels have (a rotated molecule keeps its
energy); the curve of each trained method shows which invariances it bought (a flat
curve where erm's falls). Where the probe (``bench.probe``) scores
invariance at one magnitude, the curve reads the task metric over the whole range.

Protocol (fixed for every run, so curves compare across methods and tasks):
- the first ``CURVE_EXAMPLES`` = 128 test examples (CPU-cheap), the run's
  evaluation seed re-set before each op (same draws for every method of a seed);
- magnitudes ``CURVE_MAGNITUDES`` = 0, 0.25, 0.5, 0.75, 1 of the op's range (the
  task's range overrides included, e.g. rotations to 180 degrees on the MNIST tasks),
  a random sign per example where the op is symmetric; on/off ops read the
  magnitude as the probability of applying them; evaluation-mode ops (hard gates);
- the metric is the task's primary one, computed by ``Task.evaluate``.
Computed at the end of a run (``bench.runner``), timed with the probe and outside
the method's cost; stored in the record as ``assumption_curves``:
{op: [metric at each magnitude]} with ``assumption_magnitudes`` beside it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import matplotlib.pyplot as plt
import torch

from bench.augment import get_op
from bench.figures import metric_label, save_figure
from bench.recovery import legend_label
from bench.report_blocks import Block, ReportInput

CURVE_EXAMPLES = 128  # CPU-cheap: 15 ops x 4 magnitudes x C copies per run
CURVE_MAGNITUDES = (0.0, 0.25, 0.5, 0.75, 1.0)


def assumption_curves(predict: Callable[[torch.Tensor], torch.Tensor],
                      evaluate: Callable[[torch.Tensor, torch.Tensor], dict[str, float]], metric: str,
                      op_names: tuple[str, ...], facts: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
                      batch_size: int, seed: int) -> dict[str, list[float]]:
    """{op name: the task metric of ``predict`` on op-transformed test inputs at each
    of ``CURVE_MAGNITUDES``}. ``evaluate(outputs, targets)`` returns the task's metrics."""
    x, y = x[:CURVE_EXAMPLES], y[:CURVE_EXAMPLES]

    def metric_of(inputs: torch.Tensor) -> float:
        outputs = torch.cat([predict(inputs[i:i + batch_size]).float().cpu() for i in range(0, len(inputs), batch_size)])
        return float(evaluate(outputs, y.cpu())[metric])

    torch.manual_seed(seed)
    clean = metric_of(x)  # magnitude 0 is the identity for every op of the library
    curves = {}
    for name in op_names:
        op = get_op(name)
        torch.manual_seed(seed)
        values = [clean]
        for m in CURVE_MAGNITUDES[1:]:
            values.append(metric_of(op(x, m, training=False, **dict(facts))))
        curves[name] = values
    return curves


def curve_figure(records: list[dict[str, Any]], task: str, profile: str, stem: Path) -> list[Path]:
    """One panel per op: the task metric against the op's magnitude, one line per
    method label (mean over its ok runs with curves), erm drawn black."""
    runs = [r for r in records if r.get("status") == "ok" and r.get("assumption_curves")]
    if not runs:
        return []
    by_label: dict[str, list[dict[str, list[float]]]] = {}
    legend: dict[str, str] = {}
    for r in runs:
        by_label.setdefault(r.get("label") or r["method"], []).append(r["assumption_curves"])
        legend[r.get("label") or r["method"]] = legend_label(r)
    ops = list(runs[0]["assumption_curves"])
    magnitudes = runs[0].get("assumption_magnitudes") or list(CURVE_MAGNITUDES)
    cols = min(4, len(ops))
    rows = -(-len(ops) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, op in zip(axes.flat, ops):
        for i, (label, curves) in enumerate(sorted(by_label.items())):
            lines = [c[op] for c in curves if op in c]
            if not lines:
                continue
            mean = [sum(v) / len(v) for v in zip(*lines)]
            style = {"color": "black", "linewidth": 2} if label == "erm" else {"color": f"C{i % 10}"}
            ax.plot(magnitudes, mean, "-o", markersize=3, label=f"{legend[label]} (n={len(lines)})", **style)
        ax.set_title(op, fontsize=9)
        ax.set_xlabel("magnitude (fraction of range)", fontsize=7)
        ax.set_ylabel(metric_label(str(runs[0]["metric"])), fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(ops):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{task} ({profile}): test metric under each op of the augmentation space "
                 f"(first {CURVE_EXAMPLES} test examples, mean over seeds)", fontsize=9)
    return save_figure(fig, stem)


def breaking_point(curve: list[float], magnitudes: list[float], higher_is_better: bool, drop: float = 0.1
                   ) -> float | None:
    """The smallest magnitude at which the metric is worse than at magnitude 0 by more
    than ``drop`` (relative), or None where it never is."""
    base = curve[0]
    for m, v in zip(magnitudes, curve):
        worse = (base - v) if higher_is_better else (v - base)
        if worse > drop * max(abs(base), 1e-12):
            return m
    return None


def report_section(report: ReportInput) -> list[Block]:
    """Report section (``bench.report`` blocks): per task, per op, erm's metric at
    magnitudes 0 / 0.5 / 1 and the magnitude where it first drops by more than 10 %,
    each method's metric at magnitude 1 (means over seeds), and the figure. Empty when
    no record has curves."""
    records, plots = report.records, report.plots
    runs = [r for r in records if r.get("status") == "ok" and r.get("assumption_curves")]
    if not runs:
        return []
    blocks = [Block("h2", "Assumption curves"), Block("p", (
        f"Test metric on the first {CURVE_EXAMPLES} test examples transformed by each op of the task's augmentation "
        "space, at magnitudes 0-1 of the op's range. 'erm breaks at' is the smallest magnitude where the model "
        "trained without augmentation loses more than 10 % of its clean metric. Where erm's metric falls, either "
        "the label changes (the op's invariance assumption is false there: a glyph turned past pi/4 changes "
        "class) or the model never learned an invariance the labels have (rotating a molecule keeps its "
        "energy); a method whose curve stays flat where erm's falls bought that invariance. Means over seeds."))]
    for (task, profile) in sorted({(r["task"], r["profile"]) for r in runs}):
        mine = [r for r in runs if (r["task"], r["profile"]) == (task, profile)]
        labels = sorted({r.get("label") or r["method"] for r in mine})
        others = [lab for lab in labels if lab != "erm"]
        magnitudes = list(mine[0].get("assumption_magnitudes") or CURVE_MAGNITUDES)
        higher = bool(mine[0].get("higher_is_better", True))

        def mean_curve(label: str, op: str) -> list[float] | None:
            curves = [r["assumption_curves"][op] for r in mine
                      if (r.get("label") or r["method"]) == label and op in r["assumption_curves"]]
            return [sum(v) / len(v) for v in zip(*curves)] if curves else None

        rows = []
        for op in mine[0]["assumption_curves"]:
            erm = mean_curve("erm", op)
            if erm is None:
                cells = ["–"] * 4
            else:
                mid = erm[magnitudes.index(0.5)] if 0.5 in magnitudes else float("nan")
                point = breaking_point(erm, magnitudes, higher)
                cells = [f"{erm[0]:.3g}", f"{mid:.3g}", f"{erm[-1]:.3g}", "never" if point is None else f"{point:g}"]
            rows.append([op, *cells, *("–" if (c := mean_curve(lab, op)) is None else f"{c[-1]:.3g}" for lab in others)])
        blocks += [Block("h3", f"{task} ({profile}), {mine[0]['metric']}"),
                   Block("table", header=["op", "erm m=0", "erm m=0.5", "erm m=1", "erm breaks at",
                                          *(f"{lab} m=1" for lab in others)], rows=rows)]
        blocks += [Block("image", f"{task} assumption curves", path=p) for p in plots
                   if p.name == f"{task}.{profile}.assumption_curves.png"]
    return blocks
