"""What every report section shares: the pieces of a page (``Block``) and what a
section is given (``ReportInput``). A section is a function ``ReportInput ->
list[Block]``; ``bench.report.SECTIONS`` lists them in page order."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class Block:
    """One piece of the report: a heading, a paragraph, a table, an image, a list of
    one-line items (`code` spans allowed) or the contents."""

    kind: str  # h1 | h2 | h3 | p | table | image | items | toc (items: the h2 texts)
    text: str = ""
    header: list[str] | None = None
    rows: list[list[str]] | None = None
    path: Path | None = None
    items: list[str] = field(default_factory=list)
    css: str = ""  # an HTML class for the block (tests find the summary by it)

    @property
    def anchor(self) -> str:
        """The id of a heading: its text in lower case, runs of other characters as '-'."""
        return re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-")


@dataclass
class ReportInput:
    """What every section reads: the records, the plots already written (PNG and
    PDF) and the results folder the report goes to."""

    records: list[dict[str, Any]]
    plots: list[Path]
    results_dir: Path

    def pngs(self, prefix: str) -> list[Path]:
        return [p for p in self.plots if p.suffix == ".png" and p.name.startswith(prefix)]


Section = Callable[[ReportInput], list[Block]]


def first_line(text: Any) -> str:
    """The first non-empty line of an error message (the rest is detail for the record)."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[0] if lines else ""
