"""Invariance recovery, read from records: the learned rotation half-range of each
run over optimiser steps, and the papers' figure (the range against the true band).

Half-range, in radians, from a method's ``learned_augmentation``:
- Augerino: rotation angles are U[-w/2, w/2], so half the width ``rotate`` (the
  notebook's ``lowbd``/``upbd`` = -+width2 / 2);
- AugNet: the rotate op of its layer draws angles up to its ``max_value`` (degrees,
  the task's range times the magnitude), with that op's weight in the layer; the
  half-range is the largest ``max_value`` over layers, converted to radians.
Other methods learn no rotation range (None).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from bench.figures import save_figure
from bench.report_blocks import Block, ReportInput

IN_BAND = (0.7, 1.34)  # x the true half-range: 0.55-1.05 rad around pi/4
# The true rotation half-range of each task's labels (their reference symmetry).
TRUE_HALF_RANGE = {"glyphs": math.pi / 4, "mnist_updown": math.pi / 4, "mnist_rot": math.pi}


def rotation_half_range(augmentation: dict[str, Any] | None) -> float | None:
    """Learned rotation half-range (radians) of one ``learned_augmentation`` entry."""
    if not isinstance(augmentation, dict):
        return None
    if isinstance(augmentation.get("rotate"), (int, float)):  # Augerino: widths by generator
        return float(augmentation["rotate"]) / 2
    ranges = [op["max_value"] for op in _rotate_ops(augmentation) if isinstance(op.get("max_value"), (int, float))]
    return math.radians(max(ranges)) if ranges else None


def _rotate_ops(augmentation: dict[str, Any]) -> list[dict[str, Any]]:
    """AugNet's rotate entries over its layers (stored records are input: shapes checked)."""
    layers = augmentation.get("layers")
    return [layer["rotate"] for layer in layers if isinstance(layer, dict) and isinstance(layer.get("rotate"), dict)
            ] if isinstance(layers, list) else []


def rotation_weight(augmentation: dict[str, Any] | None) -> float | None:
    """AugNet: the largest weight of a rotate op over its layers (None elsewhere)."""
    ops = _rotate_ops(augmentation) if isinstance(augmentation, dict) else []
    weights = [op["weight"] for op in ops if isinstance(op.get("weight"), (int, float))]
    return max(weights) if weights else None


def rotation_curve(record: dict[str, Any]) -> list[tuple[int, float]]:
    """(optimiser step, half-range) from the start of training to its end."""
    points = []
    start = rotation_half_range(record.get("augmentation_start"))
    if start is not None:
        points.append((0, start))
    for entry in record.get("history") or []:
        value = rotation_half_range(entry.get("augmentation"))
        if value is not None and "step" in entry:
            points.append((int(entry["step"]), value))
    return points


def recovery_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per ok run that learns a rotation range: its final half-range and more."""
    rows = []
    for r in records:
        if r.get("status") != "ok":
            continue
        final = rotation_half_range(r.get("learned_augmentation"))
        if final is None:
            continue
        true = TRUE_HALF_RANGE.get(r["task"])
        rows.append({"task": r["task"], "profile": r["profile"], "label": r.get("label") or r["method"],
                     "method": r["method"], "seed": r["seed"], "half_range": final,
                     "start": rotation_half_range(r.get("augmentation_start")),
                     "rotate_weight": rotation_weight(r.get("learned_augmentation")),
                     "true_half_range": true, "test_metric": r.get("test_metric"),
                     "steps": (r.get("history") or [{}])[-1].get("step")})
    return rows


def legend_label(record: dict[str, Any]) -> str:
    """The method and its lambda (Augerino's reg, AugNet's penalty): what tells the
    suite's entries apart."""
    params = record.get("method_params") or {}
    key = {"augerino": "reg", "augnet": "penalty"}.get(record["method"])
    return f"{record['method']} λ={params[key]}" if key in params else record["method"]


def rotation_range_figure(records: list[dict[str, Any]], task: str, profile: str, stem: Path) -> list[Path]:
    """The papers' figure: the learned rotation range [-h, h] over optimiser steps, one
    colour per method label, one line per seed, against the true band (dashed)."""
    runs = [r for r in records if r.get("status") == "ok" and len(rotation_curve(r)) > 1]
    if not runs:
        return []
    labels = sorted({r.get("label") or r["method"] for r in runs})
    short = {label: legend_label(next(r for r in runs if (r.get("label") or r["method"]) == label)) for label in labels}
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for i, label in enumerate(labels):
        for j, r in enumerate(sorted((r for r in runs if (r.get("label") or r["method"]) == label),
                                     key=lambda r: r["seed"])):
            steps, half = zip(*rotation_curve(r))
            ax.fill_between(steps, [-h for h in half], half, color=f"C{i % 10}", alpha=0.06, linewidth=0)
            kw = {"label": short[label]} if j == 0 else {}
            ax.plot(steps, half, color=f"C{i % 10}", linewidth=1.2, **kw)
            ax.plot(steps, [-h for h in half], color=f"C{i % 10}", linewidth=1.2)
    true = TRUE_HALF_RANGE.get(task)
    if true is not None:
        for sign in (-1, 1):
            ax.axhline(sign * true, color="black", linestyle="--", linewidth=1)
        ax.text(ax.get_xlim()[0], true, f" true ±{true:.2f} rad", va="bottom", fontsize=7)
    ticks = [k * math.pi / 4 for k in range(-4, 5)]
    names = {0: "0", 1: "π/4", 2: "π/2", 3: "3π/4", 4: "π"}
    ax.set_yticks(ticks, [("−" if k < 0 else "") + names[abs(k)] for k in range(-4, 5)])
    ax.set_ylim(-math.pi - 0.2, math.pi + 0.2)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("learned rotation range (rad)")
    ax.set_title(f"{task} ({profile}): learned rotation range, one line per seed", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return save_figure(fig, stem)


TABLE_HEADER = ["task", "method", "start", "final half-range per seed", "in band", "rotate weight",
                "test metric (mean)"]


def recovery_table(records: list[dict[str, Any]]) -> list[list[str]]:
    """Per task and method label: the start half-range, the final one per seed, how many
    seeds end within 0.7-1.34 x the task's true half-range, the rotate weight per seed
    and the mean test metric (the report's table and the README's recovery block). The
    references (erm, fixed, ...) of a task and profile with such runs get a row with
    their test metric only."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in recovery_rows(records):
        groups.setdefault((row["task"], row["profile"], row["label"]), []).append(row)
    rows: dict[tuple[str, str, str], list[str]] = {}
    for (task, profile, label), group in groups.items():
        group.sort(key=lambda g: g["seed"])
        true = group[0]["true_half_range"]
        inside = sum(1 for g in group if true is not None and IN_BAND[0] * true <= g["half_range"] <= IN_BAND[1] * true)
        weights = [g["rotate_weight"] for g in group if g["rotate_weight"] is not None]
        metric = [g["test_metric"] for g in group if g["test_metric"] is not None]
        start = group[0]["start"]
        rows[task, profile, label] = [f"{task} ({profile})", label, "–" if start is None else f"{start:.2f}",
                                      ", ".join(f"{g['half_range']:.2f}" for g in group),
                                      "–" if true is None else f"{inside}/{len(group)}",
                                      ", ".join(f"{w:.2f}" for w in weights) if weights else "–",
                                      f"{sum(metric) / len(metric):.3f}" if metric else "–"]
    learning = {(task, profile) for task, profile, _ in groups}
    references: dict[tuple[str, str, str], list[float]] = {}
    for r in records:
        key = (r.get("task"), r.get("profile"), str(r.get("label") or r.get("method")))
        if (r.get("status") == "ok" and key[:2] in learning and key not in groups
                and isinstance(r.get("test_metric"), (int, float))):
            references.setdefault(key, []).append(float(r["test_metric"]))
    for (task, profile, label), metric in references.items():
        rows[task, profile, label] = [f"{task} ({profile})", label, "–", "–", "–", "–",
                                      f"{sum(metric) / len(metric):.3f}"]
    return [rows[key] for key in sorted(rows)]


def report_section(report: ReportInput) -> list[Block]:
    """Report section (``bench.report`` blocks): the recovery table and the
    rotation-range figures. Empty when no run learns a rotation."""
    table = recovery_table(report.records)
    if not table:
        return []
    blocks = [Block("h2", "Invariance recovery: learned rotation ranges"), Block("p", (
        "Learned rotation half-range (rad) at the start and, per seed, at the end of training. 'in band' counts "
        f"seeds within {IN_BAND[0]}-{IN_BAND[1]} x the task's true half-range (pi/4 on glyphs and mnist_updown: "
        "0.55-1.05 rad; pi on mnist_rot). AugNet's range is its rotate op's, with that op's weight in its layer.")),
        Block("table", header=TABLE_HEADER, rows=table)]
    return blocks + [Block("image", p.stem, path=p) for p in report.plots if p.name.endswith(".rotation_range.png")]
