"""The learning diagnostic: did a method's learned augmentation move from its start?

A method that learns augmentation exposes its parameters through
``Method.augmentation_state()``: named groups of tensors in their interpretable space
(probabilities, magnitudes or levels in [0, 1], Augerino's widths ...); a group whose
name ends in ``weights`` holds probability distributions over its last dimension. The
runner takes the state right after the method is built (the start), after
``search()`` and at the end of training, and records ``learning_record(...)`` as the
record field ``learning``. A comparison between policies that never left their start
is then visible in the tables and the report ("NOT MOVED"), never silent.

Schema of the record field ``learning`` (None for methods without a state):

    {"threshold": 0.05,            # MOVE_THRESHOLD, in the groups' own units
     "movement": float,            # max over groups of their "movement"
     "moved": bool,                # some group's movement >= threshold
     "not_moved": bool,            # the flag: not moved
     "groups": {name: {
         "shape": [int, ...], "n": int,
         "max_abs_change": float, "mean_abs_change": float,   # |end - start|, elementwise
         "movement": float,        # weights groups: total_variation; others: max_abs_change
         "moved": bool,
         # groups named *weights (distributions over the last dimension, K entries):
         "k": int, "uniform": 1 / K,
         "total_variation": float, # mean over rows of 0.5 * sum |end - start| (mass moved)
         "entropy_start": float, "entropy_end": float,  # mean over rows of H / log K (1 = uniform)
         "max_weight_start": float, "max_weight_end": float,  # largest weight of any row
         # groups of at most SMALL_GROUP values:
         "start": [...], "end": [...]}},
     "phases": {"search": {name: max_abs_change}, "train": {name: max_abs_change}}}

``phases`` splits the change: start -> after search, after search -> end (a bilevel
method moves in its search, a learned-invariance method while training).

The threshold, 0.05 in the group's own units (5 % of the range of a probability or a
level, 5 % of the probability mass of a distribution; for Augerino's widths 0.05 of a
radian or of the translation scale), is set against noise. ``benchmarks/
learning_noise.py`` replays the two bilevel searches' optimisers (same shapes, initial
values, learning rates and sparsity of updates) with gradients of no consistent
direction: in searches as short as the old quick ones (about 30 steps) that noise
moves no group beyond 0.042 (0 of 20 replays pass), and the searches at the old quick
budgets stayed below it (Faster AA 32 steps: stage weights 0.0497, probabilities 0.021,
magnitudes 0.030; DADA 30 steps: 0.008 / 0.025 / 0.034). Noise alone grows with the
number of steps (Faster AA 248 steps: 0.076 for the stage weights; DADA 310 steps:
0.20 for the probabilities), so the flag says "did not move" and passing it says
"moved", not "learned": compare a group's movement with that script's noise floor
for the same number of steps, and read the groups and ``search_history`` for where
the parameters went.
"""
from __future__ import annotations

import math
from typing import Any

import torch

MOVE_THRESHOLD = 0.05
SMALL_GROUP = 16  # groups with at most this many values are recorded in full
WEIGHT_ROW_TOLERANCE = 1e-3


def is_distribution(name: str) -> bool:
    return name.endswith("weights")


def snapshot(state: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    """A detached float64 CPU copy of a method's augmentation state, checked against
    the contract of ``Method.augmentation_state``."""
    if state is None:
        return None
    out = {}
    for name, value in state.items():
        if not torch.is_tensor(value):
            raise TypeError(f"augmentation_state group {name!r} is a {type(value).__name__}, not a tensor")
        v = value.detach().to("cpu", torch.float64).clone()
        if is_distribution(name) and v.numel():
            sums = v.reshape(-1, v.shape[-1]).sum(-1)
            if (sums - 1).abs().max() > WEIGHT_ROW_TOLERANCE:
                raise ValueError(f"augmentation_state group {name!r} should hold distributions (rows summing "
                                 f"to 1); its rows sum to {sums.min():.4g} .. {sums.max():.4g}")
        out[name] = v
    return out


def _rows(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, v.shape[-1]) if v.dim() else v.reshape(1, 1)


def normalised_entropy(weights: torch.Tensor) -> float | None:
    """Mean over rows of H(row) / log K: 1 for uniform rows, 0 for one-hot ones;
    None where K = 1."""
    rows = _rows(weights)
    k = rows.shape[-1]
    if k < 2:
        return None
    h = -(rows * rows.clamp_min(1e-300).log()).sum(-1)
    return float((h / math.log(k)).mean())


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _max_abs(delta: torch.Tensor) -> float:
    return float(delta.abs().max()) if delta.numel() else 0.0


def group_change(name: str, start: torch.Tensor, end: torch.Tensor) -> dict[str, Any]:
    """How far one group moved from ``start`` to ``end`` (see the module docstring)."""
    if start.shape != end.shape:
        raise ValueError(f"augmentation_state group {name!r} changed shape: {list(start.shape)} -> {list(end.shape)}")
    delta = end - start
    out: dict[str, Any] = {"shape": list(start.shape), "n": start.numel(), "max_abs_change": _round(_max_abs(delta)),
                           "mean_abs_change": _round(float(delta.abs().mean()) if delta.numel() else 0.0)}
    if is_distribution(name) and start.numel():
        k = start.shape[-1] if start.dim() else 1
        tv = float(0.5 * _rows(delta).abs().sum(-1).mean())
        out.update(k=k, uniform=_round(1 / k), total_variation=_round(tv),
                   entropy_start=_round(normalised_entropy(start)), entropy_end=_round(normalised_entropy(end)),
                   max_weight_start=_round(float(start.max())), max_weight_end=_round(float(end.max())))
        out["movement"] = out["total_variation"]
    else:
        out["movement"] = out["max_abs_change"]
    out["moved"] = bool(out["movement"] >= MOVE_THRESHOLD)
    if start.numel() <= SMALL_GROUP:
        out["start"] = [_round(v) for v in start.flatten().tolist()]
        out["end"] = [_round(v) for v in end.flatten().tolist()]
    return out


def learning_record(start: dict[str, torch.Tensor] | None, after_search: dict[str, torch.Tensor] | None,
                    end: dict[str, torch.Tensor] | None) -> dict[str, Any] | None:
    """The record field ``learning`` from the three snapshots (None without a state)."""
    if start is None or end is None:
        return None
    if set(start) != set(end):
        raise ValueError(f"augmentation_state groups changed: {sorted(start)} -> {sorted(end)}")
    groups = {name: group_change(name, start[name], end[name]) for name in start}
    movement = max((g["movement"] for g in groups.values()), default=0.0)
    moved = any(g["moved"] for g in groups.values())
    middle = after_search if after_search is not None else start
    phases = {"search": {n: _round(_max_abs(middle[n] - start[n])) for n in start},
              "train": {n: _round(_max_abs(end[n] - middle[n])) for n in start}}
    return {"threshold": MOVE_THRESHOLD, "movement": _round(movement), "moved": moved, "not_moved": not moved,
            "groups": groups, "phases": phases}


def state_summary(state: dict[str, torch.Tensor], start: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    """A compact per-group summary of ``state`` against ``start`` for trajectories
    (``search_history``): max and mean absolute change, and for weights groups the
    normalised entropy and the largest weight."""
    state, start = snapshot(state), snapshot(start)
    out = {}
    for name, value in state.items():
        delta = value - start[name]
        entry: dict[str, Any] = {"max_abs_change": _round(_max_abs(delta)),
                                 "mean_abs_change": _round(float(delta.abs().mean()) if delta.numel() else 0.0)}
        if is_distribution(name) and value.numel():
            entry.update(entropy=_round(normalised_entropy(value)), max_weight=_round(float(value.max())))
        out[name] = entry
    return out
