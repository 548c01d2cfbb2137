"""Published vs reproduced: each number of ``bench/published.yaml`` beside the mean of
our ok runs of the same protocol. Claims stated neutrally: "reproduced", "not
reproduced (ours X vs published Y)", "not run (reason)". Only numbers with an ok run
get a table row: claims whose runs all failed or were skipped fold into one line per
reason, and claims with no record at all into one line per suite that would run them,
with the command."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.report_blocks import Block, ReportInput, first_line

PUBLISHED = Path(__file__).resolve().parent / "published.yaml"
NO_RECORD = "no record of this protocol in the results"


def load_published(path: Path = PUBLISHED) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["entries"])


def matches(run: dict[str, Any], entry: dict[str, Any]) -> bool:
    """A record, or a ``RunConfig.semantic()`` dict, is of the entry's protocol."""
    params = run.get("method_params") or {}
    return (run.get("task") == entry["task"] and run.get("profile") == entry["profile"]
            and run.get("method") == entry["method"]
            and all(params.get(k) == v for k, v in (entry.get("params") or {}).items())
            and float(run.get("width", 1.0)) == float(entry.get("width", 1.0))
            and run.get("depth") == entry.get("depth"))


def _value(record: dict[str, Any], compare: str) -> float | None:
    if compare == "invariance":
        return (record.get("invariance") or {}).get("score")
    return record.get("test_metric")


def reproduce(entry: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """The reproduced cell of one published entry: mean ± std over matching ok runs,
    and each seed's value (``per_seed``). An entry may name the seeds its published
    value comes from (``seeds``); from a single seed, the verdict also says whether
    the published value lies within the range of our seeds' values. ``n_records``:
    matching records of any status (0: the protocol was never run)."""
    matching = [r for r in records if matches(r, entry)]
    ok = sorted(((r.get("seed"), v) for r in matching if r.get("status") == "ok"
                 and (v := _value(r, entry["compare"])) is not None), key=lambda sv: str(sv[0]))
    values = [v for _, v in ok]
    protocol = (f"{entry['task']} / {entry['profile']} / {entry['method']}"
                f"{' ' + str(entry['params']) if entry.get('params') else ''} / width {entry.get('width', 1.0):g}"
                f"{' / depth ' + str(entry['depth']) if entry.get('depth') is not None else ''}")
    out = {"protocol": protocol, "published": entry["value"], "published_seeds": entry.get("seeds"),
           "n": len(values), "n_records": len(matching), "mean": None, "std": None, "per_seed": ok}
    if not values:
        reasons = sorted({str(r.get("error")) for r in matching if r.get("status") != "ok" and r.get("error")})
        out["verdict"] = f"not run ({'; '.join(reasons) if reasons else NO_RECORD})"
        return out
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    out.update(mean=mean, std=std)
    if abs(mean - entry["value"]) <= entry.get("tolerance", 0.0):
        out["verdict"] = "reproduced"
    else:
        out["verdict"] = f"not reproduced (ours {mean:.3f} vs published {entry['value']:.3f})"
    if len(entry.get("seeds") or ()) == 1 and len(values) > 1:
        inside = min(values) <= entry["value"] <= max(values)
        out["verdict"] += (f"; the published single seed is {'within' if inside else 'outside'} the range of "
                           f"our seeds [{min(values):.3f}, {max(values):.3f}]")
    return out


def suite_runs() -> dict[str, list[dict[str, Any]]]:
    """The runs of every suite (bench/suites/*.yaml) as ``RunConfig.semantic()`` dicts."""
    from bench.registry import load_registry  # the plugins are loaded only for never-run claims
    from bench.suites import expand, load_suite, suite_names

    registry = load_registry()
    out = {}
    for name in suite_names():
        try:
            runs, _ = expand(load_suite(name), registry, strict=False)
        except Exception:  # noqa: BLE001 - a suite that does not expand here fills nothing
            continue
        out[name] = [run.semantic() for run in runs]
    return out


def _values(entries: list[dict[str, Any]]) -> str:
    """"3 published values (claim; claim)"."""
    claims = sorted({e["claim"] for e in entries})
    return f"{len(entries)} published value{'s' if len(entries) > 1 else ''} ({'; '.join(claims)})"


def run_command(suite: str) -> str:
    return f"python run_bench.py run --suite {suite} -j 2"


def folded_lines(entries: list[dict[str, Any]]) -> list[str]:
    """One line per suite that would fill the given never-run entries, with the command."""
    runs = suite_runs()
    by_suite: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        # The smallest suite that runs the protocol.
        suites = sorted((len(r), name) for name, r in runs.items() if any(matches(run, entry) for run in r))
        by_suite.setdefault(suites[0][1] if suites else "", []).append(entry)
    lines = []
    for suite, waiting in sorted(by_suite.items()):
        what = _values(waiting)
        lines.append(f"{what}: no suite runs this protocol; add one." if not suite else
                     f"{what}: not run yet; fill with `{run_command(suite)}`")
    return lines


def published_section(report: ReportInput) -> list[Block]:
    header = ["claim", "protocol (task / profile / method / width / depth)", "compared", "published (seeds)",
              "reproduced (mean ± std, n seeds)", "ours per seed", "verdict", "source"]
    rows, never_run = [], []
    not_ok: dict[str, list[dict[str, Any]]] = {}
    for entry in load_published():
        cell = reproduce(entry, report.records)
        if cell["n_records"] == 0:
            never_run.append(entry)
            continue
        if cell["n"] == 0:  # run, but no ok value: one line per reason, below
            reasons = sorted({first_line(r.get("error")) or str(r.get("status")) for r in report.records
                              if matches(r, entry) and r.get("status") != "ok"})
            not_ok.setdefault(f"not run ({'; '.join(reasons) or 'no value recorded'})", []).append(entry)
            continue
        spread = f" ± {cell['std']:.3f}" if cell["std"] is not None else ""
        ours = "–" if cell["mean"] is None else f"{cell['mean']:.3f}{spread} (n = {cell['n']})"
        seeds = entry.get("seeds")
        published_cell = f"{entry['value']:.3f} ± {entry.get('tolerance', 0):g}" + (
            f" ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}: {', '.join(map(str, seeds))})" if seeds else "")
        per_seed = ", ".join(f"{seed}: {value:.3f}" for seed, value in cell["per_seed"]) or "–"
        rows.append([entry["claim"], cell["protocol"], entry["compare"], published_cell,
                     ours, per_seed, cell["verdict"], entry["source"]])
    blocks = [Block("h2", "Published vs reproduced")]
    if rows:
        blocks += [Block("p", "Each published number (bench/published.yaml, with its source) next to the mean over "
                              "our ok runs of the same protocol and each of our seeds' values. 'reproduced' means "
                              "within the tolerance given with the published value; test_metric is the final-epoch "
                              "test metric, invariance the median invariance score under the task's reference "
                              "group. A published number from named seeds (e.g. one seed) is one draw, to be "
                              "compared with the spread of ours."),
                   Block("table", header=header, rows=rows)]
    lines = [f"{_values(entries)}: {verdict}" for verdict, entries in sorted(not_ok.items())]
    lines += folded_lines(never_run) if never_run else []
    if lines:
        blocks.append(Block("items", items=lines))
    return blocks


def published_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The published-vs-reproduced cells as a frame (for scripts and tests)."""
    return pd.DataFrame([{**e, **reproduce(e, records)} for e in load_published()])
