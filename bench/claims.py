"""The claims table: every headline claim of the two seed papers (``claims`` in
``bench/published.yaml``) with its published value, this suite's value computed from
the records, the verdict and, for each claim not reproduced, the cause the suite can
show - never a silent miss.

Verdicts:
- "reproduced" / "not reproduced": ours (mean over matching ok runs) within / outside
  the claim's tolerance of the published value;
- "at another budget": no record at the claim's profile, but records of the same
  task and method at another one: ours is shown from them, and the cause is the
  budget (the profile they ran at);
- "no published value": the number is not transcribed yet (the row still shows ours);
- "not run": no matching record; the row says what reproducing it needs (GPU, data).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.recovery import rotation_half_range
from bench.report_blocks import Block, ReportInput

PUBLISHED = Path(__file__).resolve().parent / "published.yaml"
HEADER = ["paper", "headline claim", "published", "ours (records)", "verdict", "cause / needs", "source"]


def load_claims(path: Path = PUBLISHED) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text()).get("claims") or [])


def _matches(record: dict[str, Any], match: dict[str, Any], method: str, any_profile: bool) -> bool:
    params = record.get("method_params") or {}
    return (record.get("status") == "ok" and record.get("task") == match["task"] and record.get("method") == method
            and (any_profile or record.get("profile") == match["profile"])
            and all(params.get(k) == v for k, v in (match.get("params") or {}).items())
            and ("width" not in match or float(record.get("width", 1.0)) == float(match["width"]))
            and ("depth" not in match or record.get("depth") == match["depth"]))


def _value(record: dict[str, Any], compare: str) -> float | None:
    if compare == "invariance":
        return (record.get("invariance") or {}).get("score")
    if compare == "rotation_half_range":
        return rotation_half_range(record.get("learned_augmentation"))
    return record.get("test_metric")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def ours(claim: dict[str, Any], records: list[dict[str, Any]], any_profile: bool) -> tuple[float | None, str, list]:
    """(our value, its description, the records used) for one claim."""
    match, compare = claim["match"], claim["compare"]
    mine = [r for r in records if _matches(r, match, match["method"], any_profile)]
    if compare == "cost_ratio":
        base = [r for r in records if any(_matches(r, match, m, any_profile) for m in match["baseline_methods"])]
        if not mine or not base:
            return None, "–", []
        ratio = _mean([r["total_s"] for r in mine]) / _mean([r["total_s"] for r in base])
        return ratio, (f"{ratio:.2f} ({match['method']} {_mean([r['total_s'] for r in mine]):.0f} s / "
                       f"{', '.join(match['baseline_methods'])} {_mean([r['total_s'] for r in base]):.0f} s)"), mine + base
    values = [(r["seed"], v) for r in mine if (v := _value(r, compare)) is not None]
    if not values:
        return None, "–", []
    mean = _mean([v for _, v in values])
    profiles = sorted({r["profile"] for r in mine})
    # A claim whose match leaves parameters open can pick several configurations: say
    # so, rather than count them as seeds of one.
    configurations = {repr(sorted((r.get("method_params") or {}).items())) for r in mine}
    pooled = f"; {len(configurations)} configurations pooled" if len(configurations) > 1 else ""
    return mean, (f"{mean:.3f} (n = {len(values)}; per seed " + ", ".join(f"{v:.2f}" for _, v in sorted(values))
                  + f"; {'/'.join(profiles)}{pooled})"), mine


def claim_row(claim: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    value, tolerance = claim.get("value"), claim.get("tolerance", 0.0)
    published = "not transcribed" if value is None else f"{value:g} ± {tolerance:g}"
    mine, described, _ = ours(claim, records, any_profile=False)
    cause = claim.get("cause") or ""
    if mine is None:
        mine, described, used = ours(claim, records, any_profile=True)
        if mine is None:
            return [claim["paper"], claim["claim"], published, "–", "not run", f"needs: {claim['needs']}",
                    claim["source"]]
        budget = "/".join(sorted({r["profile"] for r in used}))
        cause = (f"budget: ours at the {budget} profile, the claim's protocol is {claim['match']['profile']} "
                 f"({claim['needs']})" + (f"; {cause}" if cause else ""))
    if value is None:
        verdict = "no published value"
        cause = cause or f"needs: {claim['needs']}"
    elif abs(mine - value) <= tolerance:
        verdict = "reproduced"
        cause = "" if "budget:" not in cause else cause
    else:
        verdict = "not reproduced"
        cause = cause or "no cause known yet: the suite shows no difference of task, setting or budget"
    if "budget:" in cause and verdict in ("reproduced", "not reproduced"):
        verdict += " (at another budget)"
    return [claim["paper"], claim["claim"], published, described, verdict, cause, claim["source"]]


def claims_rows(records: list[dict[str, Any]], claims: list[dict[str, Any]] | None = None) -> list[list[str]]:
    return [claim_row(c, records) for c in (load_claims() if claims is None else claims)]


def report_section(report: ReportInput) -> list[Block]:
    """Report section (``bench.report`` blocks): the claims table."""
    records, plots = report.records, report.plots
    return [Block("h2", "Claims of the seed papers"), Block("p", (
        "Each headline claim of Augerino (Benton et al. 2020) and AugNet (Rommel et al. 2022) with its published "
        "value (bench/published.yaml, `claims`), ours computed from these records (mean over seeds), the "
        "verdict within the stated tolerance, and for every claim not reproduced or not run its cause or what "
        "it needs. Rotation ranges are half-ranges in radians.")),
        Block("table", header=HEADER, rows=claims_rows(records))]
