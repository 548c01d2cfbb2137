"""The report: one self-contained HTML file (plots embedded as data URIs, no network
needed to view it) and its Markdown twin, computed from the run records alone.

The page answers first: a summary per task (which method, at what cost, can I trust
it), then the details. It is the list ``SECTIONS`` of section functions
(``ReportInput -> list[Block]``, ``bench.report_blocks``), in page order; a section
with nothing to say returns no block, and adding a section is adding one line there.
A table of contents with anchors links every section.
"""
from __future__ import annotations

import base64
import html
import re
import time
from pathlib import Path
from typing import Any

from bench.plots import write_plots
from bench.report_blocks import Block, ReportInput, Section
from bench.report_published import published_section
from bench.report_sections import (environment_section, learned_section, not_run_section, search_gain_section,
                                   statistics_section, tasks_section, tuned_section)
from bench.report_summary import summary_section
from bench.table_format import markdown_table

SECTIONS: list[Section] = [
    summary_section,
    tasks_section,
    learned_section,
    tuned_section,
    statistics_section,
    search_gain_section,
    published_section,
    not_run_section,
    environment_section,
]


def build_blocks(records: list[dict[str, Any]], plots: list[Path], results_dir: Path) -> list[Block]:
    """Title, one line of provenance, the contents, then every section in order."""
    report = ReportInput(records, plots, results_dir)
    body = [block for section in SECTIONS for block in section(report)]
    statuses = {s: sum(r.get("status") == s for r in records) for s in ("ok", "failed", "skipped")}
    intro = (f"{len(records)} run records in {results_dir} ({', '.join(f'{n} {s}' for s, n in statuses.items())}), "
             f"{time.strftime('%Y-%m-%d %H:%M %Z')}. Every number and plot is computed from those records.")
    contents = [b for b in body if b.kind == "h2"]
    return [Block("h1", "invbench report"), Block("p", intro), Block("toc", items=[b.text for b in contents]), *body]


def _inline(text: str) -> str:
    """HTML of one line: escaped, with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def to_markdown(blocks: list[Block], out_dir: Path) -> str:
    parts = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            parts.append(b.text)
        elif b.kind == "toc":
            parts.append("Contents: " + " · ".join(f"[{t}](#{Block('h2', t).anchor})" for t in b.items))
        elif b.kind == "items":
            parts.append("\n".join(f"- {item}" for item in b.items))
        elif b.kind == "table":
            parts.append(markdown_table(b.header, b.rows))
        elif b.kind == "image":
            parts.append(f"![{b.text}]({b.path.relative_to(out_dir).as_posix()})")
    return "\n\n".join(parts) + "\n"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1300px;margin:1em auto;padding:0 1em;color:#222;
font-size:14px}h1{margin:.2em 0;font-size:22px}h2{margin:1.2em 0 .3em;font-size:18px}h3{margin:.8em 0 .2em;
font-size:15px}p{margin:.3em 0}table{border-collapse:collapse;margin:.4em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left}th{background:#f3f3f3}
table.summary td:nth-child(n+3){text-align:right}nav{margin:.3em 0;color:#555}nav a{margin-right:.8em}
ul{margin:.3em 0}code{background:#f3f3f3;padding:0 3px}img{max-width:100%;display:block;margin:.6em 0}"""


def to_html(blocks: list[Block]) -> str:
    body = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            body.append(f'<{b.kind} id="{b.anchor}">{html.escape(b.text)}</{b.kind}>')
        elif b.kind == "p":
            body.append(f"<p>{_inline(b.text)}</p>")
        elif b.kind == "toc":
            links = "".join(f'<a href="#{Block("h2", t).anchor}">{html.escape(t)}</a>' for t in b.items)
            body.append(f"<nav>Contents: {links}</nav>")
        elif b.kind == "items":
            body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in b.items) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in b.rows)
            css = f' class="{b.css}"' if b.css else ""
            body.append(f"<table{css}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.kind == "image":
            png = b.path.read_bytes()
            width = int.from_bytes(png[16:20], "big") * 2 // 3  # 150 dpi drawn at 100 CSS pixels per inch
            data = base64.b64encode(png).decode()
            body.append(f'<img alt="{html.escape(b.text)}" style="width:{width}px" src="data:image/png;base64,{data}">')
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
