"""Learned augmentation in the ops' own units: Augerino's widths as half-ranges,
AugNet's strongest values per unit, the bilevel methods drawn over their search
(not their frozen retrain), every axis with its unit, the reference band."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest

from bench import learned_plots
from bench.augment.lie import AFFINE_2D, family_of, half_range

WIDTHS = {"translate_x": 2.0, "translate_y": 2.0, "rotate": 2.0, "scale": 2.0, "stretch": 0.0, "shear": 2.0}


def test_a_width_is_read_as_the_half_range_in_the_generators_unit() -> None:
    assert family_of(list(WIDTHS)) is AFFINE_2D
    assert half_range(AFFINE_2D, "rotate", 2.0) == (1.0, "radians")  # t ~ U[-w/2, w/2]
    assert half_range(AFFINE_2D, "translate_x", 2.0) == pytest.approx((0.05, "fraction of the side"))  # 0.1 t / 2
    assert half_range(AFFINE_2D, "scale", 2.0) == (pytest.approx(math.e), "scale factor")
    assert half_range(AFFINE_2D, "shear", 2.0) == (pytest.approx(math.sinh(1.0)), "shear factor")


def run(method: str, seed: int, **fields: Any) -> dict[str, Any]:
    return {"task": "mnist_rot", "profile": "quick", "method": method, "label": method, "width": 1.0, "seed": seed,
            "status": "ok", **fields}


def augerino(seed: int) -> dict[str, Any]:
    history = [{"epoch": e, "augmentation": {**WIDTHS, "rotate": 1.0 + e}} for e in range(3)]
    return run("augerino", seed, history=history, learned_augmentation=history[-1]["augmentation"])


def augnet(seed: int) -> dict[str, Any]:
    def layer(m: float) -> dict[str, Any]:
        return {"rotate": {"weight": 0.7, "magnitude": m, "max_value": 180 * m, "unit": "degrees"},
                "translate_x": {"weight": 0.3, "magnitude": m, "max_value": 0.45 * m, "unit": "fraction of the width"}}
    history = [{"epoch": e, "augmentation": {"layers": [layer(0.2 * e)], "penalty_weight": 0.5}} for e in range(3)]
    return run("augnet", seed, history=history, learned_augmentation=history[-1]["augmentation"])


def bilevel(seed: int, searched: bool = True) -> dict[str, Any]:
    search = [{"step": s, "op_weights": {"rotate": 0.5 + 0.1 * s, "invert": 0.5 - 0.1 * s},
               "state": {"probabilities": {"max_abs_change": 0.02 * s}, "magnitudes": {"max_abs_change": 0.01 * s},
                         "weights": {"entropy": 1 - 0.1 * s}}} for s in range(3)]
    retrain = [{"epoch": e, "train_loss": 1.0} for e in range(3)]  # the frozen policy: nothing to draw
    return run("dada", seed, history=retrain, search_history=search if searched else None,
               learning={"not_moved": False, "movement": 0.2})


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    """The axes of every figure, read before it is saved."""
    figures: dict[str, list[dict[str, Any]]] = {}

    def capture(fig: plt.Figure, stem: Path) -> list[Path]:
        figures[stem.name] = [{"title": ax.get_title(), "x": ax.get_xlabel(), "y": ax.get_ylabel(),
                               "lines": {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}}
                              for ax in fig.axes if ax.axison]
        plt.close(fig)
        return [stem.with_name(stem.name + ".png")]
    monkeypatch.setattr(learned_plots, "save_figure", capture)
    return figures


def test_every_panel_states_its_unit_and_draws_the_learned_trajectory(drawn: dict[str, list[dict[str, Any]]],
                                                                       tmp_path: Path) -> None:
    records = [augerino(0), augerino(1), augnet(0), bilevel(0), bilevel(1, searched=False)]
    learned_plots.learned_figures(records, "mnist_rot", "quick", tmp_path)
    assert set(drawn) == {"mnist_rot.quick.learned_search", "mnist_rot.quick.learned_augnet",
                          "mnist_rot.quick.learned_augerino"}
    for name, axes in drawn.items():
        for ax in axes:
            assert ax["x"] in ("epoch", "search step") and ax["y"], (name, ax)
    augerino_axes = {ax["y"]: ax for ax in drawn["mnist_rot.quick.learned_augerino"]}
    assert set(augerino_axes) == {"radians", "fraction of the side", "scale factor", "shear factor"}
    assert augerino_axes["radians"]["lines"]["rotate"] == [0.5, 1.0, 1.5]  # w / 2 per epoch
    # mnist_rot's reference symmetry, +-180 degrees, drawn as pi radians on the rotation panel.
    assert any(v == [pytest.approx(math.pi)] * 2 for v in augerino_axes["radians"]["lines"].values())
    augnet_axes = {ax["y"]: ax for ax in drawn["mnist_rot.quick.learned_augnet"]}
    assert set(augnet_axes) == {"weight (probability)", "degrees", "fraction of the width"}  # one panel per unit
    assert augnet_axes["degrees"]["lines"]["rotate"] == pytest.approx([0.0, 36.0, 72.0])
    search_axes = drawn["mnist_rot.quick.learned_search"]
    assert {ax["x"] for ax in search_axes} == {"search step"}  # the search, not the retrain epochs
    assert search_axes[0]["lines"]["rotate"] == pytest.approx([0.5, 0.6, 0.7])


def test_the_final_table_gives_each_seed_in_the_ops_units() -> None:
    header, rows = learned_plots.final_augmentation_table([augerino(1), augerino(0), augnet(0), bilevel(0)])
    assert header[-2:] == ["final learned augmentation (own units)", "aug moved"]
    assert [(r[0], r[2]) for r in rows] == [("augerino", "0"), ("augerino", "1"), ("augnet", "0"), ("dada", "0")]
    assert rows[0][3].startswith("translate_x ±0.05 fraction of the side") and "rotate ±1.5 radians" in rows[0][3]
    assert "scale ×2.718" in rows[0][3]  # a factor, exp(w / 2), not a ± range
    assert rows[2][3] == "L1 rotate w 0.70 ≤72 degrees"
    assert rows[3][3].startswith("rotate 0.700, invert 0.300") and rows[3][4] == "moved 0.200"


def test_learned_fields_of_an_unknown_shape_are_left_out_not_a_crash(drawn: dict[str, list[dict[str, Any]]],
                                                                     tmp_path: Path) -> None:
    """Stored records are input too: a truncated search history, a non-numeric AugNet
    weight, an unknown Augerino generator."""
    broken_search = {**bilevel(0), "search_history": [{"step": 0}]}
    broken_augnet = augnet(0)
    broken_augnet["history"][1]["augmentation"]["layers"][0]["rotate"]["weight"] = "x"
    broken_augerino = run("augerino", 0, history=[{"epoch": 0, "augmentation": {"rotate": 1.0, "warp": 2.0}}])
    records = [broken_search, broken_augnet, broken_augerino, {**augerino(1), "learning": "junk"}]
    assert [learned_plots.learned_kind(r) for r in records] == [None, None, None, "augerino"]
    learned_plots.learned_figures(records, "mnist_rot", "quick", tmp_path)
    assert set(drawn) == {"mnist_rot.quick.learned_augerino"}
    _, rows = learned_plots.final_augmentation_table(records)
    assert [(r[0], r[2], r[4]) for r in rows] == [("augerino", "1", "not recorded")]
