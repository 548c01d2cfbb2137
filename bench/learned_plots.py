"""What the methods learn, where they learn it, in the ops' own units (from records).

- Bilevel methods (Faster AA, DADA) learn in their *search*: drawn over search steps
  from the record's ``search_history`` (each op's share of the policy weight; how far
  probabilities and magnitudes moved from the start; the weights' normalised entropy).
  Their retrain epochs use a frozen policy and are not drawn.
- AugNet learns while training: per layer, the op weights (a distribution) on one
  panel and each op's strongest value ``low + (high - low) * magnitude`` in the op's
  own unit (``learned_augmentation``'s ``max_value`` / ``unit``) on panels per unit.
- Augerino learns while training: its widths as half-ranges in the generators' units
  (``bench.augment.lie.half_range``).

The task's reference symmetry (``Task.reference_extent`` of the registered task) is
drawn as a band on the panel of the op it matches. Value axes start at 0, so a
movement is seen in proportion to the value.
Every seed is drawn (solid, dashed, dotted ...). ``final_augmentation_table`` gives
the final learned distributions per seed.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from bench.augment.lie import family_of, half_range
from bench.diagnostics import MOVE_THRESHOLD
from bench.figures import save_figure

SEED_STYLES = ("-", "--", ":", "-.")
TOP_OPS = 6  # bilevel: the ops of largest final weight drawn by name


def _ok(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((r for r in records if r.get("status") == "ok"), key=lambda r: (r.get("seed", 0), r.get("width", 1)))


def _style(i: int) -> str:
    return SEED_STYLES[i % len(SEED_STYLES)]


def _extent(record: dict[str, Any], op: str, unit: str) -> float | None:
    """The reference half-range of ``op`` in ``unit`` (degrees <-> radians converted),
    from the registered task's ``reference_extent`` (the task definition, as
    bench/published.yaml for the published numbers); None where there is none."""
    from bench.registry import load_registry  # the plugins, loaded once per process

    tasks = load_registry().tasks
    plugin = tasks.get(record.get("task"))
    value = getattr(plugin.cls, "reference_extent", {}).get(op) if plugin else None
    if not value:
        return None
    extent, own = float(value[0]), value[1]
    if own == unit:
        return extent
    if (own, unit) == ("degrees", "radians"):
        return math.radians(extent)
    if (own, unit) == ("radians", "degrees"):
        return math.degrees(extent)
    return None


def _finish(ax: plt.Axes, xlabel: str, floor: float | None = 0.0) -> None:
    """Plain tick labels (no offset), whole-number x ticks, the y axis from ``floor``
    (0; a factor's 1) so a movement is seen in proportion to the value, a light grid
    and the legend."""
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if floor is not None:
        # From the floor, with room above the highest line (a flat line is not hidden in the frame).
        highest = max((max(line.get_ydata(), default=floor) for line in ax.get_lines()), default=floor)
        ax.set_ylim(floor, max(ax.get_ylim()[1], floor + 1.08 * (highest - floor)))
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)


def _band(ax: plt.Axes, extent: float | None, unit: str) -> None:
    if extent is not None:
        ax.axhspan(0, extent, color="0.85", alpha=0.5, zorder=0)
        ax.axhline(extent, color="0.4", lw=1, ls="--", zorder=0, label=f"reference ±{extent:g} {unit}")


def _seeds_note(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"seed {r.get('seed')} {_style(i)}" for i, r in enumerate(runs))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _augnet_state(state: Any) -> bool:
    """An AugNet ``learned_augmentation``: layers of {op: {weight, max_value, unit}}."""
    return (isinstance(state, dict) and isinstance(state.get("layers"), list) and bool(state["layers"])
            and all(isinstance(layer, dict) and layer and all(
                isinstance(v, dict) and _number(v.get("weight")) and _number(v.get("max_value"))
                and isinstance(v.get("unit"), str) for v in layer.values()) for layer in state["layers"]))


def _augerino_state(state: Any) -> bool:
    """An Augerino ``learned_augmentation``: {generator: width} of a known family."""
    return (isinstance(state, dict) and bool(state) and all(_number(v) for v in state.values())
            and family_of(list(state)) is not None)


def _shape(state: dict[str, Any]) -> Any:
    return [sorted(layer) for layer in state["layers"]] if "layers" in state else sorted(state)


def learned_kind(record: dict[str, Any]) -> str | None:
    """How an ok record's learned augmentation can be drawn: "search" (a bilevel
    ``search_history``), "augnet" or "augerino" (per-epoch ``history``), or None (none,
    or stored in a shape this module does not know: stored records are input too)."""
    if record.get("status") != "ok":
        return None
    search = record.get("search_history")
    if isinstance(search, list) and search and all(
            isinstance(h, dict) and _number(h.get("step")) and isinstance(h.get("op_weights"), dict)
            and h["op_weights"] and all(_number(v) for v in h["op_weights"].values())
            and isinstance(h.get("state"), dict) and all(isinstance(g, dict) for g in h["state"].values())
            for h in search):
        return "search"
    history = record.get("history")
    entries = [e for e in history if isinstance(e, dict) and "augmentation" in e] if isinstance(history, list) else []
    if not entries or not all(_number(e.get("epoch")) for e in entries):
        return None
    for kind, valid in (("augnet", _augnet_state), ("augerino", _augerino_state)):
        states = [e["augmentation"] for e in entries]
        if all(valid(s) for s in states) and all(_shape(s) == _shape(states[-1]) for s in states):
            return kind
    return None


def _by_label(records: list[dict[str, Any]], kind: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in _ok(records):
        if learned_kind(r) == kind:
            out.setdefault(r.get("label") or r.get("method") or "?", []).append(r)
    return out


def _value(entry: dict[str, Any], group: str, field: str) -> float:
    value = (entry["state"].get(group) or {}).get(field)
    return float(value) if _number(value) else math.nan


def _epochs(record: dict[str, Any]) -> tuple[list[int], list[Any]]:
    entries = [e for e in record["history"] if isinstance(e, dict) and "augmentation" in e]
    return [int(e["epoch"]) + 1 for e in entries], [e["augmentation"] for e in entries]


def search_figure(records: list[dict[str, Any]], title: str, stem: Path) -> list[Path]:
    """Bilevel searches: one row per method, three panels over search steps."""
    runs = _by_label(records, "search")
    if not runs:
        return []
    fig, axes = plt.subplots(len(runs), 3, figsize=(15, 3.3 * len(runs)), squeeze=False)
    for row, (label, mine) in zip(axes, sorted(runs.items())):
        final = mine[0]["search_history"][-1]["op_weights"]
        top = sorted(final, key=lambda op: -final[op])[:TOP_OPS]
        for i, r in enumerate(mine):
            history = r["search_history"]
            steps = [h["step"] for h in history]
            for c, op in enumerate(top):
                row[0].plot(steps, [h["op_weights"].get(op, math.nan) for h in history], _style(i), color=f"C{c}",
                            label=op if i == 0 else None)
            for c, group in enumerate(("probabilities", "magnitudes")):
                row[1].plot(steps, [_value(h, group, "max_abs_change") for h in history],
                            _style(i), color=f"C{c}", label=f"{group}: max |change|" if i == 0 else None)
            row[2].plot(steps, [_value(h, "weights", "entropy") for h in history], _style(i),
                        color="C0", label="op weights" if i == 0 else None)
        row[0].axhline(1 / len(final), color="0.4", ls="--", lw=1, label=f"uniform (1/{len(final)})")
        row[1].axhline(MOVE_THRESHOLD, color="0.4", ls="--", lw=1, label="'moved' threshold")
        row[0].set(title=f"{label}: op weights ({TOP_OPS} largest at the end)",
                   ylabel="share of policy weight (probability)")
        row[1].set(title=f"{label}: movement from the start", ylabel="max |change| (on the [0, 1] scale)")
        row[2].set(title=f"{label}: entropy of the op weights", ylabel="entropy / log K (1 = uniform)")
        for ax in row:
            _finish(ax, "search step")
        row[0].text(0.0, -0.25, _seeds_note(mine), transform=row[0].transAxes, fontsize=7)
    fig.suptitle(f"{title}: policy search (the retrain uses the final policy, frozen)", fontsize=10)
    return save_figure(fig, stem)


def augnet_figure(records: list[dict[str, Any]], title: str, stem: Path) -> list[Path]:
    """AugNet: per layer, op weights, then each unit's strongest op values over epochs."""
    runs = _by_label(records, "augnet")
    panels = []  # (label, layer, unit or None)
    for label, mine in sorted(runs.items()):
        for k, layer in enumerate(_epochs(mine[0])[1][-1]["layers"]):
            units = sorted({op["unit"] for op in layer.values()})
            panels.append([(label, k, None), *((label, k, u) for u in units)])
    if not panels:
        return []
    columns = max(len(p) for p in panels)
    fig, axes = plt.subplots(len(panels), columns, figsize=(3.4 * columns, 2.8 * len(panels)), squeeze=False)
    for row_axes, row in zip(axes, panels):
        for ax in row_axes[len(row):]:
            ax.axis("off")
        for ax, (label, k, unit) in zip(row_axes, row):
            mine = runs[label]
            for i, r in enumerate(mine):
                epochs, states = _epochs(r)
                ops = list(states[-1]["layers"][k])
                for c, op in enumerate(ops):
                    if unit is not None and states[-1]["layers"][k][op]["unit"] != unit:
                        continue
                    field = "weight" if unit is None else "max_value"
                    ax.plot(epochs, [s["layers"][k][op][field] for s in states], _style(i), color=f"C{c}",
                            marker="o", ms=2, label=op if i == 0 else None)
            if unit is None:
                n_ops = len(_epochs(mine[0])[1][-1]["layers"][k])
                ax.axhline(1 / n_ops, color="0.4", ls="--", lw=1)
                ax.set(title=f"{label} layer {k + 1}: op weights", ylabel="weight (probability)")
            else:
                ops = [op for op, v in _epochs(mine[0])[1][-1]["layers"][k].items() if v["unit"] == unit]
                for op in ops:
                    _band(ax, _extent(mine[0], op, unit), unit)
                ax.set(title=f"{label} layer {k + 1}: strongest value", ylabel=unit)
            _finish(ax, "epoch")
    fig.suptitle(f"{title}: AugNet layers ({_seeds_note(next(iter(runs.values())))})", fontsize=10)
    return save_figure(fig, stem)


def augerino_figure(records: list[dict[str, Any]], title: str, stem: Path) -> list[Path]:
    """Augerino: the half-range of each generator over epochs, one panel per unit."""
    runs = {}
    for label, mine in _by_label(records, "augerino").items():
        runs[label] = (mine, family_of(list(_epochs(mine[0])[1][-1])))
    if not runs:
        return []
    rows = []
    for label, (mine, family) in sorted(runs.items()):
        units: dict[str, list[str]] = {}
        for name in family.names:
            units.setdefault(half_range(family, name, 1.0)[1], []).append(name)
        rows.append((label, mine, family, units))
    columns = max(len(u) for *_, u in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(4.2 * columns, 3.0 * len(rows)), squeeze=False)
    for row_axes, (label, mine, family, units) in zip(axes, rows):
        for ax in row_axes[len(units):]:
            ax.axis("off")
        for ax, (unit, names) in zip(row_axes, sorted(units.items())):
            for i, r in enumerate(mine):
                epochs, states = _epochs(r)
                for c, name in enumerate(names):
                    ax.plot(epochs, [half_range(family, name, s[name])[0] for s in states], _style(i),
                            color=f"C{c}", marker="o", ms=2, label=name if i == 0 else None)
            for name in names:
                _band(ax, _extent(mine[0], name, unit), unit)
            ax.set(title=f"{label}: half-range", ylabel=unit)
            _finish(ax, "epoch", floor=1.0 if unit == "scale factor" else 0.0)
    fig.suptitle(f"{title}: Augerino widths ({_seeds_note(rows[0][1])})", fontsize=10)
    return save_figure(fig, stem)


def learned_figures(records: list[dict[str, Any]], task: str, profile: str, out_dir: Path) -> list[Path]:
    """Every learned-augmentation figure of one task and profile, at its most common
    width (width sweeps are compared in the statistics figures)."""
    widths = [float(r.get("width", 1.0)) for r in _ok(records)]
    if not widths:
        return []
    width = max(set(widths), key=lambda w: (widths.count(w), w == 1.0))
    records = [r for r in records if float(r.get("width", 1.0)) == width]
    title = f"{task} ({profile}, width {width:g})"
    stem = out_dir / f"{task}.{profile}.learned_"
    return [*search_figure(records, title, stem.with_name(stem.name + "search")),
            *augnet_figure(records, title, stem.with_name(stem.name + "augnet")),
            *augerino_figure(records, title, stem.with_name(stem.name + "augerino"))]


def _final_cell(record: dict[str, Any]) -> str | None:
    """The final learned augmentation of one run, in one line and the ops' units
    (AugNet and Augerino: ``learned_augmentation``, else the last epoch's; bilevel: the
    end of the search)."""
    kind = learned_kind(record)
    if kind == "search":
        final = record["search_history"][-1]["op_weights"]
        top = sorted(final, key=lambda op: -final[op])[:3]
        return (", ".join(f"{op} {final[op]:.3f}" for op in top)
                + f" (share of policy weight; uniform {1 / len(final):.3f})")
    if kind is None:
        return None
    learned = record.get("learned_augmentation")
    if not (_augnet_state if kind == "augnet" else _augerino_state)(learned):
        learned = _epochs(record)[1][-1]
    if kind == "augnet":
        cells = []
        for k, layer in enumerate(learned["layers"]):
            op, v = max(layer.items(), key=lambda item: item[1]["weight"])
            cells.append(f"L{k + 1} {op} w {v['weight']:.2f} ≤{v['max_value']:.3g} {v['unit']}")
        return "; ".join(cells)
    family, cells = family_of(list(learned)), []
    for name in family.names:
        value, unit = half_range(family, name, learned[name])
        cells.append(f"{name} ×{value:.4g}" if unit == "scale factor" else f"{name} ±{value:.3g} {unit}")
    return ", ".join(cells)


def final_augmentation_table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: per method label and seed, the final learned augmentation and
    whether it moved (``bench.diagnostics``)."""
    rows = []
    for r in sorted(_ok(records), key=lambda r: (r.get("label") or r["method"], r.get("width", 1), r.get("seed", 0))):
        cell = _final_cell(r)
        if cell is None:
            continue
        learning = r.get("learning") if isinstance(r.get("learning"), dict) else {}
        movement = learning.get("movement")
        moved = ("not recorded" if not learning else "NOT MOVED" if learning.get("not_moved") else
                 f"moved {movement:.3f}" if _number(movement) else "moved")
        rows.append([r.get("label") or r["method"], f"{r.get('width', 1):g}", str(r.get("seed")), cell, moved])
    return ["method", "width", "seed", "final learned augmentation (own units)", "aug moved"], rows
