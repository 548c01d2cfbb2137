"""Writers of a table given as a header and rows of text cells: Markdown and LaTeX.

The LaTeX writer is ours (a dozen lines) rather than pandas' ``Styler.to_latex``, which
needs jinja2, a dependency the project does not otherwise have. It writes a booktabs
``table`` with the caption above the ``tabular`` and escapes every LaTeX special
character and the few non-ASCII symbols our tables use, so the file compiles as is
with ``\\usepackage{booktabs}``.
"""
from __future__ import annotations

import re
from typing import Sequence

LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "±": r"$\pm$", "−": r"$-$", "–": "--", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$",
                 "χ": r"$\chi$", "²": r"$^2$", "α": r"$\alpha$", "λ": r"$\lambda$", "κ": r"$\kappa$",
                 "π": r"$\pi$", "σ": r"$\sigma$", "√": r"$\surd$", "°": r"$^\circ$", "|": r"\textbar{}",
                 "<": r"\textless{}", ">": r"\textgreater{}"}
_LATEX_PATTERN = re.compile("|".join(re.escape(c) for c in LATEX_ESCAPES))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def latex_escape(text: str) -> str:
    return _LATEX_PATTERN.sub(lambda m: LATEX_ESCAPES[m.group(0)], str(text))


def latex_label(stem: str) -> str:
    """A ``\\label`` key for a table file stem, e.g. ``tab:mnist-rot.quick``."""
    return "tab:" + re.sub(r"[^A-Za-z0-9:.-]", "-", stem)


def _is_numeric(cell: str) -> bool:
    return bool(re.match(r"^[+\-−]?\d", cell))


def latex_table(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str, label: str) -> str:
    """A booktabs table; columns whose cells all start with a number are right-aligned."""
    align = "".join("r" if rows and all(_is_numeric(str(r[j])) or str(r[j]) == "–" for r in rows) else "l"
                    for j in range(len(header)))
    line = lambda cells: " & ".join(latex_escape(c) for c in cells) + r" \\"  # noqa: E731
    return "\n".join([r"% Written by invbench from run records; needs \usepackage{booktabs}.",
                      r"\begin{table}[htbp]", r"\centering", rf"\caption{{{latex_escape(caption)}}}",
                      rf"\label{{{label}}}", rf"\begin{{tabular}}{{{align}}}", r"\toprule", line(header), r"\midrule",
                      *(line(row) for row in rows), r"\bottomrule", r"\end{tabular}", r"\end{table}"]) + "\n"
