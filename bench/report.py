"""The report: one self-contained HTML file (plots embedded as data URIs, no network
needed to view it) and its Markdown twin, computed from the run records alone.

Sections: environment, published vs reproduced (``bench/published.yaml``), one table
and its plots per task and profile, and the failed / skipped runs with their reasons.
Claims are stated neutrally: "reproduced", "not reproduced (ours X vs published Y)",
"not run (reason)".
"""
from __future__ import annotations

import base64
import html
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench import assumption_curves, claims, recovery
from bench.metrics import METRICS
from bench.plots import write_plots
from bench.stat_tables import stat_tables
from bench.table_format import markdown_table
from bench.tables import table_note, table_rows, task_tables

PUBLISHED = Path(__file__).resolve().parent / "published.yaml"


@dataclass
class Block:
    """One piece of the report: a heading, a paragraph, a table or an image."""

    kind: str  # h1 | h2 | h3 | p | table | image
    text: str = ""
    header: list[str] | None = None
    rows: list[list[str]] | None = None
    path: Path | None = None


def load_published(path: Path = PUBLISHED) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["entries"])


def _matches(record: dict[str, Any], entry: dict[str, Any]) -> bool:
    params = record.get("method_params") or {}
    return (record.get("task") == entry["task"] and record.get("profile") == entry["profile"]
            and record.get("method") == entry["method"]
            and all(params.get(k) == v for k, v in (entry.get("params") or {}).items())
            and float(record.get("width", 1.0)) == float(entry.get("width", 1.0))
            and record.get("depth") == entry.get("depth"))


def _value(record: dict[str, Any], compare: str) -> float | None:
    if compare == "invariance":
        return (record.get("invariance") or {}).get("score")
    return record.get("test_metric")


def reproduce(entry: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """The reproduced cell of one published entry: mean ± std over matching ok runs,
    and each seed's value (``per_seed``). An entry may name the seeds its published
    value comes from (``seeds``); from a single seed, the verdict also says whether
    the published value lies within the range of our seeds' values."""
    matching = [r for r in records if _matches(r, entry)]
    ok = sorted(((r.get("seed"), v) for r in matching if r.get("status") == "ok"
                 and (v := _value(r, entry["compare"])) is not None), key=lambda sv: str(sv[0]))
    values = [v for _, v in ok]
    protocol = (f"{entry['task']} / {entry['profile']} / {entry['method']}"
                f"{' ' + str(entry['params']) if entry.get('params') else ''} / width {entry.get('width', 1.0):g}"
                f"{' / depth ' + str(entry['depth']) if entry.get('depth') is not None else ''}")
    out = {"protocol": protocol, "published": entry["value"], "published_seeds": entry.get("seeds"),
           "n": len(values), "mean": None, "std": None, "per_seed": ok}
    if not values:
        reasons = sorted({str(r.get("error")) for r in matching if r.get("status") != "ok" and r.get("error")})
        why = "; ".join(reasons) if reasons else "no record of this protocol in the results"
        out["verdict"] = f"not run ({why})"
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


def published_blocks(records: list[dict[str, Any]], published: list[dict[str, Any]]) -> list[Block]:
    header = ["claim", "protocol (task / profile / method / width / depth)", "compared", "published (seeds)",
              "reproduced (mean ± std, n seeds)", "ours per seed", "verdict", "source"]
    rows = []
    for entry in published:
        cell = reproduce(entry, records)
        ours = "–" if cell["mean"] is None else (
            f"{cell['mean']:.3f}" + (f" ± {cell['std']:.3f}" if cell["std"] is not None else "") + f" (n = {cell['n']})")
        seeds = entry.get("seeds")
        published_cell = f"{entry['value']:.3f} ± {entry.get('tolerance', 0):g}" + (
            f" ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}: {', '.join(map(str, seeds))})" if seeds else "")
        per_seed = ", ".join(f"{seed}: {value:.3f}" for seed, value in cell["per_seed"]) or "–"
        rows.append([entry["claim"], cell["protocol"], entry["compare"], published_cell,
                     ours, per_seed, cell["verdict"], entry["source"]])
    return [Block("h2", "Published vs reproduced"),
            Block("p", "Each published number (bench/published.yaml, with its source) next to the mean over our "
                       "ok runs of the same protocol and each of our seeds' values. 'reproduced' means within the "
                       "tolerance given with the published value; test_metric is the final-epoch test metric, "
                       "invariance the median invariance score under the task's reference group. Where a "
                       "published number comes from named seeds (e.g. one seed), they are given with it: a "
                       "single-seed number is one draw, to be compared with the spread of ours."),
            Block("table", header=header, rows=rows)]


def environment_blocks(records: list[dict[str, Any]]) -> list[Block]:
    def count(values: list[str]) -> str:
        return "; ".join(f"{v} ({n} runs)" for v, n in Counter(values).most_common())

    rows = [["records", str(len(records))],
            ["devices", count([str(r.get("device")) for r in records])],
            ["hosts", count([str((r.get("host") or {}).get("hostname")) for r in records])],
            ["git commits", count([str((r.get("git") or {}).get("commit"))[:12] + (" (uncommitted changes)" if (r.get("git") or {}).get("dirty") else "") for r in records])]]
    versions: dict[str, list[str]] = {}
    for r in records:
        for lib, version in (r.get("versions") or {}).items():
            versions.setdefault(lib, []).append(str(version))
    rows += [[f"version of {lib}", count(v)] for lib, v in sorted(versions.items())]
    return [Block("h2", "Environment"), Block("table", header=["what", "value (runs)"], rows=rows)]


def task_blocks(records: list[dict[str, Any]], plots: list[Path]) -> list[Block]:
    blocks = [Block("h2", "Results per task")]
    for (task, profile), (summary, metric) in task_tables(records).items():
        label = METRICS[metric].label if metric in METRICS else metric
        header, rows = table_rows(summary, metric)
        blocks += [Block("h3", f"{task} ({profile} profile)"), Block("p", table_note(label)),
                   Block("table", header=header, rows=rows)]
        blocks += [Block("image", text=p.stem, path=p) for p in plots
                   if p.suffix == ".png" and p.name.startswith(f"{task}.{profile}.")]
    return blocks


def statistics_blocks(records: list[dict[str, Any]], plots: list[Path]) -> list[Block]:
    """Paired differences to erm and fixed per task, then the ranks across tasks with
    their diagram, per profile (``bench.stat_tables``, ``bench.stat_plots``)."""
    tables = stat_tables(records)
    if not tables:
        return []
    blocks = [Block("h2", "Paired comparisons and ranks")]
    for table in tables:
        blocks += [Block("h3", table.title), Block("p", table.note),
                   Block("table", header=table.header, rows=table.rows)]
        blocks += [Block("image", text=p.stem, path=p) for p in plots if p.suffix == ".png" and p.stem == table.stem]
    return blocks


def problem_blocks(records: list[dict[str, Any]]) -> list[Block]:
    bad = [r for r in records if r.get("status") != "ok"]
    if not bad:
        return [Block("h2", "Failed and skipped runs"), Block("p", "None: every run is ok.")]
    rows = [[r.get("task", "?"), r.get("profile", "?"), r.get("label") or r.get("method", "?"), f"{r.get('width', 1):g}",
             str(r.get("seed")), r.get("status", "?"), str(r.get("error") or "")] for r in
            sorted(bad, key=lambda r: (r.get("task", ""), r.get("method", ""), r.get("seed", 0)))]
    return [Block("h2", "Failed and skipped runs"),
            Block("table", header=["task", "profile", "method", "width", "seed", "status", "reason"], rows=rows)]


def build_blocks(records: list[dict[str, Any]], plots: list[Path], results_dir: Path) -> list[Block]:
    ok = sum(r.get("status") == "ok" for r in records)
    intro = (f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from {len(records)} run records in {results_dir} "
             f"({ok} ok). Every number and plot below is computed from those records.")
    return [Block("h1", "invbench report"), Block("p", intro), *environment_blocks(records),
            *published_blocks(records, load_published()), *task_blocks(records, plots),
            *statistics_blocks(records, plots), *recovery.report_blocks(records, plots),
            *assumption_curves.report_blocks(records, plots), *claims.report_blocks(records, plots),
            *problem_blocks(records)]


def to_markdown(blocks: list[Block], out_dir: Path) -> str:
    parts = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            parts.append(b.text)
        elif b.kind == "table":
            parts.append(markdown_table(b.header, b.rows))
        elif b.kind == "image":
            parts.append(f"![{b.text}]({b.path.relative_to(out_dir).as_posix()})")
    return "\n\n".join(parts) + "\n"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}
th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}"""


def to_html(blocks: list[Block]) -> str:
    body = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.kind == "image":
            data = base64.b64encode(b.path.read_bytes()).decode()
            body.append(f'<img alt="{html.escape(b.text)}" src="data:image/png;base64,{data}">')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>invbench report</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(records: list[dict[str, Any]], results_dir: Path) -> list[Path]:
    """Write ``report.html`` and ``report.md`` (with ``plots/``) into ``results_dir``."""
    plots = write_plots(records, results_dir / "plots")
    blocks = build_blocks(records, plots, results_dir)
    html_path, md_path = results_dir / "report.html", results_dir / "report.md"
    html_path.write_text(to_html(blocks))
    md_path.write_text(to_markdown(blocks, results_dir))
    return [html_path, md_path]


def published_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The published-vs-reproduced cells as a frame (for scripts and tests)."""
    return pd.DataFrame([{**e, **reproduce(e, records)} for e in load_published()])
