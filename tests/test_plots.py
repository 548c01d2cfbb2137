"""Plots from hand-made records: the Pareto front, and which figures are drawn."""
from __future__ import annotations

from pathlib import Path

import pytest
from typing import Any

from bench.plots import write_plots
from bench.stats import pareto_front
from bench.tables import flatten_numbers, learned_parameters


def test_pareto_front_keeps_only_points_nothing_beats_on_cost_and_metric() -> None:
    cost = [1.0, 2.0, 3.0, 2.5, 0.5]
    accuracy = [0.80, 0.90, 0.95, 0.85, 0.60]
    assert pareto_front(cost, accuracy, higher_is_better=True) == [4, 0, 1, 2]  # 3 is beaten by 1
    mae = [10.0, 8.0, 9.0]  # lower is better: the cheapest, then only improvements
    assert pareto_front([1.0, 2.0, 3.0], mae, higher_is_better=False) == [0, 1]


def test_flatten_numbers_names_each_leaf_by_its_path() -> None:
    learned = {"widths": {"rotate": 3.1, "scale": 0.2}, "layers": [{"weights": [0.5, 0.5]}], "flag": True}
    assert flatten_numbers(learned) == {"widths/rotate": 3.1, "widths/scale": 0.2, "layers/0/weights/0": 0.5,
                                        "layers/0/weights/1": 0.5}


def record(method: str, width: float, seed: int, accuracy: float, invariance: float) -> dict[str, Any]:
    widths = {"translate_x": 0.01, "translate_y": 0.01, "rotate": 0.5, "scale": 0.01, "stretch": 0.01, "shear": 0.01}
    history = [{"epoch": e, "train_loss": 1.0 / (e + 1), "augmentation": {**widths, "rotate": 0.5 * e}}
               for e in range(3)] if method == "augerino" else [{"epoch": 0, "train_loss": 1.0}]
    return {"run_id": f"{method}{width}{seed}", "task": "toy", "profile": "quick", "method": method, "label": method,
            "method_kind": "baseline", "width": width, "depth": None, "seed": seed, "status": "ok", "error": None,
            "metric": "accuracy", "higher_is_better": True, "test_metric": accuracy, "val_metric": accuracy,
            "search_s": 0.0, "train_s": 10.0 * width, "eval_s": 1.0, "total_s": 10.0 * width + 1, "n_params": 100,
            "invariance": {"score": invariance, "agreement": 0.5, "n": 10}, "history": history,
            "invariance_probe": {"rotate": invariance, "invert": -0.2}}


def test_every_figure_of_a_width_sweep_is_written_as_png_and_pdf(tmp_path: Path) -> None:
    records = [record(m, w, s, 0.5 + 0.1 * w + 0.01 * s, 0.2 * w) for m in ("erm", "augerino")
               for w in (0.5, 1.0, 2.0) for s in (0, 1)]
    written = {p.name for p in write_plots(records, tmp_path)}
    for figure in ("scores", "metric_vs_time", "metric_vs_width", "invariance_vs_width", "learned_augerino",
                   "invariance_probe"):
        assert {f"toy.quick.{figure}.png", f"toy.quick.{figure}.pdf"} <= written, figure
    assert all((tmp_path / name).stat().st_size > 1000 for name in written)


def test_a_single_width_draws_no_width_figures(tmp_path: Path) -> None:
    written = {p.name for p in write_plots([record("erm", 1.0, 0, 0.5, 0.1)], tmp_path)}
    assert "toy.quick.metric_vs_time.png" in written
    assert not any("width" in name or "learned_" in name for name in written)


def test_short_labels_drop_parameters_shared_by_every_variant_of_a_method() -> None:
    from bench.figures import short_labels

    labels = ["augnet (layers=f, ncopies=1)", "augnet (layers=f, ncopies=10)", "augnet (layers=f)", "erm",
              "augerino (reg=0.1)"]
    assert short_labels(labels) == {"augnet (layers=f, ncopies=1)": "augnet (ncopies=1)",
                                    "augnet (layers=f, ncopies=10)": "augnet (ncopies=10)",
                                    "augnet (layers=f)": "augnet", "erm": "erm",
                                    "augerino (reg=0.1)": "augerino (reg=0.1)"}


def test_learned_parameters_are_averaged_over_seeds_without_bookkeeping_numbers() -> None:
    records = [{**record("augerino", 1.0, s, 0.5, 0.1), "learned_augmentation": {"widths": {"rotate": w}, "n_ops": 6}}
               for s, w in ((0, 3.0), (1, 5.0))]
    table = learned_parameters(records)
    assert table.to_dict("records") == [{"method": "augerino", "width": 1.0, "parameter": "widths/rotate",
                                         "mean": 4.0, "std": pytest.approx(2 ** 0.5), "n": 2}]
