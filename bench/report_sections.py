"""The report's sections after the summary: results per task, the learned
augmentations, paired comparisons and ranks, what each search buys against its
control, the runs that did not run (one line per task), and the environment."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bench.figures import metric_label
from bench.learned_plots import final_augmentation_table
from bench.report_blocks import Block, ReportInput, first_line
from bench.search_gain import search_gain_tables
from bench.stat_tables import StatTable, stat_tables
from bench.tables import table_note, table_rows, task_tables
from bench.tuned import statistics_views, tuned_tables

DATA_ROOT_HINT = ("A task skipped for missing data runs once its data is on disk: download it once (online) or "
                  "pass `--data-root DIR` to `python run_bench.py run` (the README says what each task expects).")


def _has_ok(records: list[dict[str, Any]], task: str, profile: str) -> bool:
    return any(r.get("status") == "ok" and r.get("task") == task and r.get("profile") == profile for r in records)


def tasks_section(report: ReportInput) -> list[Block]:
    """Per task and profile with an ok run: its full table and plots."""
    blocks = [Block("h2", "Results per task")]
    for (task, profile), (summary, metric) in task_tables(report.records).items():
        if not _has_ok(report.records, task, profile):
            continue  # one line under "Not run"
        header, rows = table_rows(summary, metric)
        blocks += [Block("h3", f"{task} ({profile} profile)"), Block("p", table_note(metric_label(metric))),
                   Block("table", header=header, rows=rows)]
        blocks += [Block("image", text=p.stem, path=p) for p in report.pngs(f"{task}.{profile}.")
                   if ".learned_" not in p.name]
    return blocks if len(blocks) > 1 else []


def learned_section(report: ReportInput) -> list[Block]:
    """What the methods learned, in the ops' own units: trajectories and the final
    distributions per seed (``bench.learned_plots``)."""
    blocks = []
    for task, profile in sorted({(r.get("task"), r.get("profile")) for r in report.records
                                 if r.get("status") == "ok"}, key=str):
        images = report.pngs(f"{task}.{profile}.learned_")
        header, rows = final_augmentation_table([r for r in report.records
                                                 if r.get("task") == task and r.get("profile") == profile])
        if not images and not rows:
            continue
        blocks.append(Block("h3", f"{task} ({profile} profile): learned augmentation"))
        blocks += [Block("image", text=p.stem, path=p) for p in images]
        if rows:
            blocks += [Block("p", "Final learned augmentation per seed, in the ops' units (Augerino: the half-range "
                                  "of each generator; AugNet: each layer's strongest op; bilevel: the ops of largest "
                                  "policy weight)."), Block("table", header=header, rows=rows)]
    return [Block("h2", "Learned augmentation"), *blocks] if blocks else []


def table_blocks(heading: str, tables: list[StatTable], plots: list[Path]) -> list[Block]:
    """A section of statistics tables, each with its note and its figure (the plot
    whose stem is the table's); nothing when there is no table."""
    if not tables:
        return []
    blocks = [Block("h2", heading)]
    for table in tables:
        blocks += [Block("h3", table.title), Block("p", table.note),
                   Block("table", header=table.header, rows=table.rows)]
        blocks += [Block("image", text=p.stem, path=p) for p in plots if p.suffix == ".png" and p.stem == table.stem]
    return blocks


def statistics_section(report: ReportInput) -> list[Block]:
    """Paired differences to erm and fixed per task, then the ranks across tasks with
    their diagram, per profile (``bench.stat_tables``, ``bench.stat_plots``)."""
    return table_blocks("Paired comparisons and ranks", stat_tables(statistics_views(report.records)), report.plots)


def tuned_section(report: ReportInput) -> list[Block]:
    """Default vs tuned per task (``bench.tuned``: equal-budget tuning, selection by
    the validation metric), where the records hold tuning trials."""
    return table_blocks("Default vs tuned (equal-budget tuning)", tuned_tables(report.records), report.plots)


CONTROLS_HINT = ("No control runs in these records, so nothing says what each search buys over its "
                 "augmentation left at its start or a random policy. The default suite leaves them out to stay "
                 "within 10 minutes on 2 cores; `python run_bench.py run --suite controls --results-dir <this "
                 "folder>` adds them (the methods' runs are reused), then `report` again.")


def search_gain_section(report: ReportInput) -> list[Block]:
    """What each search buys against its control (``bench.search_gain``); when the
    records hold augmentation-learning runs but no control, how to add the controls."""
    tables = search_gain_tables(report.records)
    if tables:
        return table_blocks("What the search buys: each method against its control", tables, report.plots)
    learning = any(r.get("status") == "ok" and r.get("method_kind") in ("learned_invariance", "bilevel")
                   for r in report.records)
    return [Block("h2", "What the search buys"), Block("p", CONTROLS_HINT)] if learning else []


def not_run_section(report: ReportInput) -> list[Block]:
    """Skipped runs: one line per task and reason, the --data-root hint once; failed
    runs: one row each with the first line of the error (the record has the rest)."""
    skipped = Counter((r.get("task", "?"), r.get("profile", "?"), first_line(r.get("error")))
                      for r in report.records if r.get("status") == "skipped")
    failed = [r for r in report.records if r.get("status") == "failed"]
    if not skipped and not failed:
        return []
    blocks = [Block("h2", "Not run")]
    if skipped:
        blocks.append(Block("items", items=[f"{task} ({profile}): {n} run{'s' if n > 1 else ''} skipped: {reason}"
                                            for (task, profile, reason), n in sorted(skipped.items())]))
        blocks.append(Block("p", DATA_ROOT_HINT))
    if failed:
        rows = [[r.get("task", "?"), r.get("profile", "?"), r.get("label") or r.get("method", "?"),
                 f"{r.get('width', 1):g}", str(r.get("seed")), first_line(r.get("error"))]
                for r in sorted(failed, key=lambda r: (r.get("task", ""), r.get("method", ""), r.get("seed", 0)))]
        blocks += [Block("p", "Failed runs (the traceback is in each record):"),
                   Block("table", header=["task", "profile", "method", "width", "seed", "error"], rows=rows)]
    return blocks


def environment_section(report: ReportInput) -> list[Block]:
    records = report.records

    def count(values: list[str]) -> str:
        return "; ".join(f"{v} ({n} runs)" for v, n in Counter(values).most_common())

    rows = [["records", str(len(records))],
            ["devices", count([str(r.get("device")) for r in records])],
            ["hosts", count([str((r.get("host") or {}).get("hostname")) for r in records])],
            ["git commits", count([str((r.get("git") or {}).get("commit"))[:12]
                                   + (" (uncommitted changes)" if (r.get("git") or {}).get("dirty") else "")
                                   for r in records])]]
    versions: dict[str, list[str]] = {}
    for r in records:
        for lib, version in (r.get("versions") or {}).items():
            versions.setdefault(lib, []).append(str(version))
    rows += [[f"version of {lib}", count(v)] for lib, v in sorted(versions.items())]
    return [Block("h2", "Environment"), Block("table", header=["what", "value (runs)"], rows=rows)]
