"""What every figure module shares: a file-only matplotlib backend, saving a figure as
PNG and PDF, short legend labels, one colour per method label, the metric's axis label."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from bench.metrics import METRICS  # noqa: E402


def metric_label(metric: str) -> str:
    return METRICS[metric].label if metric in METRICS else metric


def save_figure(fig: plt.Figure, stem: Path, outside_text: bool = False) -> list[Path]:
    """``<stem>.png`` (150 dpi) and ``<stem>.pdf``; closes the figure. ``outside_text``:
    the figure has text outside its axes, so crop to what is drawn instead of
    ``tight_layout`` (which would squeeze the axes to make room)."""
    if not outside_text:
        fig.tight_layout()
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    bbox = "tight" if outside_text else None
    fig.savefig(paths[0], dpi=150, bbox_inches=bbox)
    fig.savefig(paths[1], bbox_inches=bbox)
    plt.close(fig)
    return paths


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


def method_palette(labels: list[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per method label (sorted), the same in every figure of one call."""
    names = sorted(set(labels))
    colours = sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colours))
