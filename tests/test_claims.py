"""The claims table, the rotation-range reading of records and the assumption curves."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from bench.assumption_curves import CURVE_MAGNITUDES, assumption_curves, breaking_point, curve_figure
from bench.claims import claim_row, load_claims, ours
from bench.recovery import recovery_rows, recovery_table, rotation_curve, rotation_half_range, rotation_range_figure

CLAIM = {"paper": "Augerino", "claim": "range +-pi/4", "source": "notebook", "compare": "rotation_half_range",
         "value": math.pi / 4, "tolerance": 0.26, "needs": "CPU minutes", "cause": "",
         "match": {"task": "glyphs", "profile": "quick", "method": "augerino", "params": {"reg": 0.05}}}


def augerino_record(seed: int, widths: list[float], profile: str = "quick", reg: float = 0.05) -> dict[str, Any]:
    history = [{"epoch": i, "step": 12 * (i + 1), "augmentation": {"rotate": w, "translate_x": 0.01}}
               for i, w in enumerate(widths)]
    return {"status": "ok", "task": "glyphs", "profile": profile, "method": "augerino", "label": "augerino",
            "method_params": {"reg": reg, "safe": False}, "seed": seed, "width": 1.0, "depth": None,
            "augmentation_start": {"rotate": 0.31}, "history": history, "test_metric": 1.0, "metric": "accuracy",
            "learned_augmentation": history[-1]["augmentation"]}


def test_every_claim_names_its_source_protocol_and_needs() -> None:
    claims = load_claims()
    assert {c["paper"] for c in claims} == {"Augerino", "AugNet"}
    for c in claims:
        assert c["source"] and c["needs"] and c["compare"] in ("test_metric", "invariance", "rotation_half_range",
                                                                "cost_ratio")
        assert {"task", "profile", "method"} <= set(c["match"])


def test_verdicts_follow_the_records() -> None:
    inside = [augerino_record(s, [0.5, 1.6]) for s in range(3)]
    assert claim_row(CLAIM, inside)[4] == "reproduced"
    outside = [augerino_record(s, [0.5, 0.2]) for s in range(3)]
    row = claim_row(CLAIM, outside)
    assert row[4] == "not reproduced" and "no cause known" in row[5]  # never a silent miss
    assert claim_row({**CLAIM, "cause": "task: digits"}, outside)[5] == "task: digits"
    other_params = [augerino_record(0, [0.5, 1.6], reg=0.1)]
    assert claim_row(CLAIM, other_params)[4] == "not run" and "CPU minutes" in claim_row(CLAIM, other_params)[5]
    smoke = [augerino_record(0, [0.3, 0.33], profile="smoke")]
    row = claim_row(CLAIM, smoke)
    assert row[4] == "not reproduced (at another budget)" and row[5].startswith("budget: ours at the smoke profile")
    assert claim_row({**CLAIM, "value": None}, inside)[4] == "no published value"


def test_rotation_half_range_of_augerino_and_augnet() -> None:
    assert rotation_half_range({"rotate": 1.5, "scale": 0.1}) == 0.75
    augnet = {"layers": [{"rotate": {"weight": 0.3, "magnitude": 0.25, "max_value": 45.0, "unit": "deg"},
                          "translate_x": {"weight": 0.7, "magnitude": 0.1, "max_value": 0.1, "unit": ""}}]}
    assert math.isclose(rotation_half_range(augnet), math.pi / 4)
    assert rotation_half_range({"layers": [{"translate_x": {"max_value": 0.1}}]}) is None
    assert rotation_half_range(None) is None
    # stored records are input: odd shapes read as "no rotation range", never a crash
    assert rotation_half_range({"layers": ["x", {"rotate": "y"}, {"rotate": {"max_value": "z"}}]}) is None
    assert rotation_half_range({"layers": 3}) is None and rotation_half_range([1]) is None


def test_the_record_schema_checks_the_new_fields() -> None:
    from bench.records import FIELDS

    assert FIELDS["assumption_curves"]({"rotate": [1.0, 0.5]}) and not FIELDS["assumption_curves"]({"rotate": ["a"]})
    assert FIELDS["assumption_magnitudes"]([0, 0.5, 1]) and not FIELDS["assumption_magnitudes"]("0.5")
    assert FIELDS["history"]([{"epoch": 0, "step": 12}]) and not FIELDS["history"]([{"epoch": 0, "step": -1}])
    assert not FIELDS["augmentation_start"]([1])


def test_rotation_curve_and_figure(tmp_path: Path) -> None:
    records = [augerino_record(s, [0.5, 1.0, 1.6]) for s in range(2)]
    assert rotation_curve(records[0]) == [(0, 0.155), (12, 0.25), (24, 0.5), (36, 0.8)]
    rows = recovery_rows(records)
    assert [r["half_range"] for r in rows] == [0.8, 0.8] and rows[0]["steps"] == 36
    erm = {**records[0], "method": "erm", "label": "erm", "learned_augmentation": None, "test_metric": 0.5}
    row, reference = recovery_table([*records, erm])  # 0.8 rad lies in 0.55-1.05 around pi/4
    assert row[0] == "glyphs (quick)" and row[3] == "0.80, 0.80" and row[4] == "2/2"
    assert reference == ["glyphs (quick)", "erm", "–", "–", "–", "–", "0.500"]  # the reference: its metric only
    paths = rotation_range_figure(records, "glyphs", "quick", tmp_path / "glyphs.quick.rotation_range")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in paths)


def test_assumption_curves_separate_an_invariant_model_from_one_that_is_not(tmp_path: Path) -> None:
    """A predictor of the total ink (rotation-invariant, not invert-invariant) keeps its
    accuracy under rotation and loses it under inversion."""
    generator = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 1, 16, 16)
    y = torch.randint(0, 2, (64,), generator=generator)
    x[:, :, 6:10, 6:10] = 0.3 + 0.5 * y.view(-1, 1, 1, 1).float()  # class = bright or dim centre square

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        ink = inputs.flatten(1).sum(1) / 16  # mean intensity over the square's area
        return torch.stack([0.55 - ink, ink - 0.55], 1)

    def evaluate(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {"accuracy": float((outputs.argmax(1) == targets).float().mean())}

    curves = assumption_curves(predict, evaluate, "accuracy", ("rotate", "invert"), {}, x, y, 32, seed=0)
    assert len(curves["rotate"]) == len(CURVE_MAGNITUDES) and curves["rotate"][0] == 1.0
    assert min(curves["rotate"]) >= 0.95
    assert curves["invert"][-1] < 0.6  # inverted: the dim centre holds more ink than the bright one
    assert breaking_point(curves["invert"], list(CURVE_MAGNITUDES), True) is not None
    assert breaking_point(curves["rotate"], list(CURVE_MAGNITUDES), True) is None
    record = {"status": "ok", "method": "erm", "label": "erm", "metric": "accuracy", "assumption_curves": curves,
              "assumption_magnitudes": list(CURVE_MAGNITUDES)}
    assert len(curve_figure([record], "toy", "smoke", tmp_path / "toy.smoke.assumption_curves")) == 2


def test_a_claim_matching_several_configurations_says_they_are_pooled() -> None:
    claim = {**CLAIM, "match": {"task": "glyphs", "profile": "quick", "method": "augerino"}}
    one = [augerino_record(s, [1.6]) for s in range(2)]
    _, described, _ = ours(claim, one, any_profile=False)
    assert "pooled" not in described
    _, described, _ = ours(claim, one + [augerino_record(0, [1.0], reg=0.1)], any_profile=False)
    assert "n = 3" in described and "2 configurations pooled" in described
