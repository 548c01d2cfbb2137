"""``readme --check | --write``: the README's published tables, regenerated from
committed records.

A block of the README between two marker comments is generated::

    <!-- table:SUITE:TASK -->            result table(s) of TASK (every profile in the records)
    <!-- table:SUITE:TASK:PROFILE -->    the result table of TASK at one profile
    <!-- cost:SUITE -->                  cost of each method relative to erm, per task
    <!-- capacity:SUITE -->              the AugNet capacity study beside the published values (bench.capacity)
    <!-- gain:SUITE:TASK -->             what each search buys over its control (search_gain table)
    <!-- tuned:SUITE:TASK -->            default vs tuned configuration per method (tuned table)
    <!-- paired:SUITE:TASK[:PROFILE] --> paired differences to erm and fixed (95 % intervals, verdicts)
    <!-- ranks:SUITE[:PROFILE] -->       average ranks, Friedman test, normalised score across tasks
    <!-- recovery:SUITE -->              learned rotation half-ranges per task, method and seed (bench.recovery)
    <!-- claims:SUITE -->                the seed papers' claims table (bench.claims)
    ...generated text...
    <!-- end -->

SUITE names a folder under the records folder given on the command line (e.g.
``docs/results`` holding ``quick/runs/*.json``); SUITE may join several folders with
``+`` (``quick+controls``: the default suite's runs and their controls; the claims
block picks each claim's records by task, profile, method and parameters). PROFILE may name a tuned view
(``quick.tuned``: each tuned method's selected configuration, ``bench.tuned``); without
it a block shows every profile's table, each under its title. ``--write`` replaces each block's
text; ``--check`` regenerates every block and exits 1 naming each block that differs.

Tolerance. The records are the numbers: regenerating from the same committed records
is identical on any machine (the check is exact). Records produced again on the same
machine, same commit, seeds and threads, are identical too. On another machine (or
with another thread count) CPU floating point differs and each seed's run drifts, so
for a fresh results folder ``--seed-noise`` asks whether the new records could come
from the same seed distribution: each "mean ± std" cell of a row with an "n seeds"
count is compared with the README's by Welch's t-test (scipy's
``ttest_ind_from_stats``), and a cell fails when its p is below 0.05 divided by the
number of such cells in the README (Bonferroni: a rerun of unchanged code fails with
probability at most 5 %). With 3 seeds that test only catches large changes (it is the
honest tolerance for 3 seeds). Cells without a std (seconds, prediction agreement,
augmentation movement, single-seed values) and the cost table are not compared; the
methods, widths, depths, n seeds, parameter counts and statuses must be identical.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from scipy.stats import ttest_ind_from_stats

from bench import capacity, claims, recovery, store
from bench.errors import UserError
from bench.search_gain import search_gain_tables
from bench.stat_tables import StatTable, stat_tables
from bench.table_format import markdown_table
from bench.tables import records_frame, table_rows, task_tables
from bench.tuned import statistics_views, tuned_tables

BLOCK = re.compile(r"(<!-- (table|cost|capacity|recovery|claims|gain|tuned|paired|ranks):([A-Za-z0-9_+-]+)((?::[A-Za-z0-9_.-]+){0,2}) -->\n)"
                   r"(.*?)(<!-- end -->)", re.S)
MEAN_STD = re.compile(r"^(-?[0-9][0-9,]*(?:\.[0-9]+)?) ± ([0-9][0-9,]*(?:\.[0-9]+)?)$")
EXACT_COLUMNS = ("method", "task", "width", "depth", "n seeds", "params", "status", "(neurons, layers)")
FAMILY_ALPHA = 0.05  # --seed-noise: family-wise error rate over all compared cells
SEARCH_SHOWN_S = 0.05  # mean search seconds below which a label is shown without a search phase
KIND_ORDER = {"baseline": 0, "learned_invariance": 1, "bilevel": 2}


def result_tables(records: list[dict[str, Any]], task: str, profile: str | None) -> str:
    found = {key: value for key, value in task_tables([r for r in records if r["task"] == task]).items()
             if profile is None or key[1] == profile}
    if not found:
        raise UserError(f"readme: no records of task {task!r}" + (f" at profile {profile!r}" if profile else ""))
    return "\n\n".join(markdown_table(*table_rows(summary, metric)) for _, (summary, metric) in sorted(found.items()))


def statistics_tables(records: list[dict[str, Any]]) -> list[StatTable]:
    """The paired and rank tables that ``table`` writes (defaults, and tuned views)."""
    return stat_tables(statistics_views(records))


@dataclass(frozen=True)
class StatBlock:
    """A block kind that shows tables of ``build(records)`` chosen by their stem."""

    build: Callable[[list[dict[str, Any]]], list[StatTable]]
    stem: str  # "{task}.{profile}.tuned": the stem of the tables it shows
    missing: str  # the error when the records hold none

    @property
    def takes_task(self) -> bool:
        return "{task}" in self.stem

    def usage(self, kind: str, suite: str) -> str:
        return f"<!-- {kind}:{suite}" + (":TASK[:PROFILE]" if self.takes_task else "[:PROFILE]") + " -->"

    def select(self, tables: list[StatTable], task: str | None, profile: str | None) -> list[StatTable]:
        pattern = re.escape(self.stem).replace(re.escape("{task}"), re.escape(task or "")).replace(
            re.escape("{profile}"), re.escape(profile) if profile else "[A-Za-z0-9_.-]+")
        return [t for t in tables if re.fullmatch(pattern, t.stem)]


STAT_BLOCKS = {
    "gain": StatBlock(search_gain_tables, "{task}.{profile}.search_gain",
                      "no method paired with its learn_augmentation=False control on task {task!r}"),
    "tuned": StatBlock(tuned_tables, "{task}.{profile}.tuned", "no tuning trials of task {task!r}"),
    "paired": StatBlock(statistics_tables, "{task}.{profile}.paired",
                        "no paired comparison with erm or fixed on task {task!r}"),
    "ranks": StatBlock(statistics_tables, "ranks.{profile}", "no ranking of 2 or more methods across tasks"),
}


def stat_block_text(found: list[StatTable]) -> str:
    """One table as is; several each under its title (e.g. the default and tuned views)."""
    if len(found) == 1:
        return markdown_table(found[0].header, found[0].rows)
    return "\n\n".join(f"*{t.title}*\n\n{markdown_table(t.header, t.rows)}" for t in found)


def cost_table(records: list[dict[str, Any]]) -> str:
    """Per task, each method's (each label's) search + train seconds (mean over its ok
    runs at width 1 without a depth) and the ratio to erm's."""
    frame = records_frame(records)
    frame = frame[(frame["status"] == "ok") & (frame["width"] == 1.0) & frame["depth"].isna()]
    if frame.empty:
        raise UserError("readme: no ok records at width 1 for the cost table")
    # One column per label: a method's learn_augmentation=False control (same method
    # name) is its own column, not averaged into the method's.
    frame = frame.assign(label=frame["label"].fillna(frame["method"]))
    kinds = dict(zip(frame["label"], frame["method_kind"]))
    methods = sorted(kinds, key=lambda m: (m != "erm", KIND_ORDER.get(str(kinds[m]), 3), m))
    # Labels with a search phase (a control draws its policy in milliseconds: none).
    mean_search = frame.groupby("label")["search_s"].mean()
    searched = set(mean_search[mean_search >= SEARCH_SHOWN_S].index)
    header = ["task", *[f"{m} (search + retrain)" if kinds[m] == "bilevel" and m in searched else m
                        for m in methods]]
    rows = []
    for task, group in frame.groupby("task", sort=True):
        means = group.groupby("label")[["search_s", "train_s"]].mean()
        base = means.loc["erm"].sum() if "erm" in means.index else None
        row = [task]
        for m in methods:
            if m not in means.index:
                row.append("–")
                continue
            search, train = float(means.loc[m, "search_s"]), float(means.loc[m, "train_s"])
            ratio = f" ({(search + train) / base:.2f}×)" if base else ""
            row.append(f"{search:.1f} + {train:.1f} s{ratio}" if m in searched else f"{train:.1f} s{ratio}")
        rows.append(row)
    return markdown_table(header, rows)


class Blocks:
    """The generated text of each block, from ``records_root/<suite>`` (read once per suite)."""

    def __init__(self, records_root: Path):
        self.root = records_root
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.built: dict[tuple[str, Callable], list[StatTable]] = {}

    def suite(self, name: str) -> list[dict[str, Any]]:
        """The records of one suite folder, or of several joined by ``+`` (e.g. ``quick+controls``)."""
        if name not in self.records:
            parts = [part for part in name.split("+") if part]
            self.records[name] = (store.require_records(self.root / name) if parts == [name]
                                  else [r for part in parts for r in self.suite(part)])
        return self.records[name]

    def tables(self, suite: str, build: Callable[[list[dict[str, Any]]], list[StatTable]]) -> list[StatTable]:
        if (suite, build) not in self.built:
            self.built[suite, build] = build(self.suite(suite))
        return self.built[suite, build]

    def stat_block(self, kind: str, suite: str, args: str, parts: list[str]) -> str:
        block = STAT_BLOCKS[kind]
        most = 2 if block.takes_task else 1
        if len(parts) > most or (block.takes_task and not parts):
            raise UserError(f"readme: <!-- {kind}:{suite}{args} --> is not {block.usage(kind, suite)}")
        task, profile = (parts + [None])[:2] if block.takes_task else (None, parts[0] if parts else None)
        found = block.select(self.tables(suite, block.build), task, profile)
        if not found:
            raise UserError("readme: " + block.missing.format(task=task)
                            + (f" at profile {profile!r}" if profile else ""))
        return stat_block_text(found) + "\n"

    def render(self, kind: str, suite: str, args: str) -> str:
        parts = [p for p in args.split(":") if p]
        if kind in ("cost", "capacity", "recovery", "claims"):
            if parts:
                raise UserError(f"readme: <!-- {kind}:{suite}{args} --> takes no task; write <!-- {kind}:{suite} -->")
            if kind == "cost":
                return cost_table(self.suite(suite)) + "\n"
            if kind == "claims":
                return markdown_table(claims.HEADER, claims.claims_rows(self.suite(suite))) + "\n"
            if kind == "recovery":
                rows = recovery.recovery_table(self.suite(suite))
                if not rows:
                    raise UserError(f"readme: no run of suite {suite!r} learns a rotation range")
                return markdown_table(recovery.TABLE_HEADER, rows) + "\n"
            rows = capacity.capacity_rows(self.suite(suite))
            if not rows:
                raise UserError(f"readme: no sinusoids records at the paper profile and capacities in suite {suite!r}")
            return markdown_table(capacity.HEADER, rows) + "\n"
        if kind in STAT_BLOCKS:
            return self.stat_block(kind, suite, args, parts)
        if not parts:
            raise UserError(f"readme: <!-- {kind}:{suite} --> needs a task: <!-- {kind}:{suite}:TASK -->")
        return result_tables(self.suite(suite), parts[0], parts[1] if len(parts) > 1 else None) + "\n"


def blocks(text: str) -> list[re.Match]:
    found = list(BLOCK.finditer(text))
    if not found:
        raise UserError("readme: no generated blocks (<!-- table:SUITE:TASK --> ... <!-- end -->) in the README")
    return found


def regenerate(text: str, records_root: Path) -> str:
    source = Blocks(records_root)
    return BLOCK.sub(lambda m: m.group(1) + source.render(m.group(2), m.group(3), m.group(4)) + m.group(6), text)


def _cells(block: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()
            if line.startswith("|")]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _std_floor(text: str) -> float:
    """Half a unit of the cell's last printed digit: a std printed as 0.000 may be up to 0.0005."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0 ** -decimals


def _seed_noise_p(old: re.Match, new: re.Match, n: int | None) -> float:
    """How likely seed noise alone moves a mean this far: Welch's t-test of the two
    "mean ± std" cells of n seeds each (scipy); without an n, 1 within one old std, else 0."""
    m1, s1 = _number(old.group(1)), max(_number(old.group(2)), _std_floor(old.group(2)))
    m2, s2 = _number(new.group(1)), max(_number(new.group(2)), _std_floor(new.group(2)))
    if n is None or n < 2:
        return 1.0 if abs(m1 - m2) <= _number(old.group(2)) else 0.0
    return float(ttest_ind_from_stats(m1, s1, n, m2, s2, n, equal_var=False).pvalue)


@dataclass(frozen=True)
class CellChange:
    row: str
    column: str
    old: str
    new: str
    p: float  # Welch's t-test: seed noise alone moves the mean this far with probability p


def seed_noise_cells(old: str, new: str) -> tuple[list[CellChange], int] | None:
    """Same table from another machine's records: None when the rows, columns or an
    ``EXACT_COLUMNS`` cell differ (or a "mean ± std" cell is no longer one); otherwise
    the changed "mean ± std" cells with their p and how many such cells were compared.
    Other cells (seconds, agreement, movement: no std) are not compared."""
    old_rows, new_rows = _cells(old), _cells(new)
    if len(old_rows) != len(new_rows):
        return None
    header: list[str] = []
    changes, compared = [], 0
    for i, (a_row, b_row) in enumerate(zip(old_rows, new_rows)):
        if i + 1 < len(old_rows) and all(set(c) <= {"-", ":"} and c for c in old_rows[i + 1]):
            header = a_row  # the row above a |---| separator
        if len(a_row) != len(b_row):
            return None
        columns = header or a_row
        n_text = dict(zip(columns, a_row)).get("n seeds", "")
        n = int(n_text) if n_text.isdigit() else None
        for column, a, b in zip(columns, a_row, b_row):
            ma = MEAN_STD.match(a)
            compared += bool(ma)
            if a == b:
                continue
            if column in EXACT_COLUMNS:
                return None
            if ma:
                mb = MEAN_STD.match(b)
                if not mb:
                    return None
                changes.append(CellChange(" / ".join(a_row[:2]), column, a, b, _seed_noise_p(ma, mb, n)))
    return changes, compared


def check(text: str, records_root: Path, seed_noise: bool = False) -> list[str]:
    """Why the records do not reproduce the blocks of ``text``: one line per block
    (exact check), or per structural difference and per "mean ± std" cell that seed
    noise does not explain (``seed_noise``: Welch p below FAMILY_ALPHA / the number of
    cells compared, Bonferroni over the whole README)."""
    source = Blocks(records_root)
    differ: list[str] = []
    changed: list[tuple[str, CellChange]] = []
    compared = 0
    for m in blocks(text):
        marker = m.group(1).strip()
        if m.group(2) == "cost" and seed_noise:
            continue  # seconds of another machine
        new = source.render(m.group(2), m.group(3), m.group(4))
        if not seed_noise:
            if m.group(5) != new:
                differ.append(f"block {marker} differs")
            continue
        found = seed_noise_cells(m.group(5), new)
        if found is None:
            differ.append(f"block {marker} differs in its rows, columns or exact cells ({', '.join(EXACT_COLUMNS)})")
            continue
        changed += [(marker, c) for c in found[0]]
        compared += found[1]
    threshold = FAMILY_ALPHA / max(compared, 1)
    differ += [f"block {marker} differs: {c.row}, {c.column}: {c.old} -> {c.new} (Welch p = {c.p:.2g} < "
               f"{FAMILY_ALPHA}/{compared})" for marker, c in changed if c.p < threshold]
    return differ


def readme_command(readme: Path, records_root: Path, write: bool, seed_noise: bool) -> int:
    if not readme.is_file():
        raise UserError(f"readme: {readme} is not a file")
    if not records_root.is_dir():
        raise UserError(f"readme: records folder {records_root} is not a folder (it holds SUITE/runs/*.json)")
    text = readme.read_text(encoding="utf-8")
    blocks(text)
    if write:
        new = regenerate(text, records_root)
        if new != text:
            readme.write_text(new, encoding="utf-8")
        print(f"{readme}: {len(blocks(new))} block(s) regenerated from {records_root}"
              + ("" if new != text else " (unchanged)"))
        return 0
    differ = check(text, records_root, seed_noise)
    for reason in differ:
        print(f"{readme}: {reason} from what {records_root} gives")
    if differ and not seed_noise:
        print(f"regenerate: python run_bench.py readme --write --records {records_root}")
    if not differ:
        print(f"{readme}: every generated block matches the records in {records_root}"
              + (" (within seed noise, family-wise 5 %)" if seed_noise else ""))
    return 1 if differ else 0
