"""Paired statistics over run records: intervals over seeds, differences to a
baseline with a verdict, average ranks with a Friedman test and the Nemenyi critical
difference, and a normalised-score aggregate across tasks.

Everything here is a function of the records alone and sits low in the import graph
(numpy, scipy, pandas and ``bench.metrics`` only): tables, plots and the report call it,
never the reverse.

Pairing. Runs of two methods are paired when they share task, profile, width, depth
and seed: the harness gives them the same data split and the same initial weights, so
the seed-to-seed noise they share cancels in their difference.

Intervals (95 %), chosen by the number n of values (seeds, or paired differences):

- n < ``BOOTSTRAP_MIN_N`` (30): Student's t-interval, mean ± t(n−1) · s / √n. The suites
  run 2–3 seeds, and there a bootstrap is not trustworthy: resampling 3 values gives
  only 10 distinct resamples, and the bootstrap's spread of a mean is √((n−1)/n) of the
  usual standard error, so its intervals are far too narrow. Measured by
  ``benchmarks/interval_coverage.py`` (1,000 draws each; target 0.95): at n = 3 the
  t-interval covers the true mean in 93 % of draws of normal differences (88 % for
  skewed, exponential ones), the percentile bootstrap in 74 % (70 %), BCa in 73 %
  (68 %); at n = 2, 96 % against 48 %. The t-interval stays at least as good up to
  n = 20, and BCa overtakes it on skewed differences only from about n = 30. The
  t-interval is wide at n = 2 (t = 12.7) and n = 3 (t = 4.3): that width is the
  honest statement of what 2–3 seeds can tell.
- n ≥ 30: BCa bootstrap (``scipy.stats.bootstrap``, 9,999 resamples, seeded), which
  needs no normality and corrects for skew once there is enough data to resample.
- n = 1: the value, with no interval; n = 0: nothing. Neither raises.

A verdict compares a method with a baseline: "better" or "worse" when the interval of
the paired difference excludes 0 (in the direction the metric calls better: accuracy
up, MAE down), "no detectable difference" when it contains 0, "too few pairs" when
fewer than 2 seeds are paired (or the baseline has no ok run). The intervals are per
comparison, not adjusted for the several comparisons of a table; the rank test below
is the multiple-comparison procedure across tasks.

Across tasks (Demšar, JMLR 2006): one *block* is a (task, width, depth) configuration
of one profile, scored by each method's mean over its seeds (seeds are replicates of a
block, not blocks: counting them as blocks would treat three noisy copies of one task
as three tasks and overstate what the ranking generalises to). Methods are ranked
within each block (1 = best, ties averaged), the Friedman test asks whether the
average ranks differ at all (``scipy.stats.friedmanchisquare``; needs ≥ 3 methods and
≥ 2 blocks), and the Nemenyi critical difference CD = q(0.05; k, ∞) / √2 · √(k(k+1) /
(6N)) says which average ranks differ (q from ``scipy.stats.studentized_range``). We
compute the CD ourselves rather than depend on autorank: it is two lines over scipy,
while autorank brings statsmodels, baycomp and jinja2 and chooses its own test
(ANOVA or Friedman by normality tests that mean nothing on 3-4 blocks).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from bench.metrics import METRICS

CONFIDENCE = 0.95
BOOTSTRAP_MIN_N = 30  # below: t-interval (see the module docstring)
BOOTSTRAP_RESAMPLES = 9_999
AGGREGATE_RESAMPLES = 2_000
NO_DEPTH = -1  # stands for depth None in group keys (pandas drops None keys)

BETTER, WORSE, NO_DIFFERENCE, TOO_FEW = "better", "worse", "no detectable difference", "too few pairs"


# --- reading records -------------------------------------------------------------------

def _number(value: Any) -> float:
    """A finite float, or NaN for anything else (stored records are input too)."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def higher_is_better(metric: Any, stored: Any = None) -> bool:
    """The metric's direction: from ``bench.metrics`` when known, else the record's."""
    if isinstance(metric, str) and metric in METRICS:
        return METRICS[metric].higher_is_better
    return stored if isinstance(stored, bool) else True


SCORE_COLUMNS = ("task", "profile", "width", "depth", "seed", "label", "method", "metric", "higher_is_better",
                 "test_metric", "val_metric", "invariance", "cost_s")


def score_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per ok record with the fields the statistics need; records with no
    task, seed or label are left out (they cannot be paired). ``depth`` None is
    ``NO_DEPTH``; numbers that are missing or not numbers are NaN."""
    rows = []
    for r in records:
        if not isinstance(r, dict) or r.get("status") != "ok":
            continue
        seed, width = _number(r.get("seed")), _number(r.get("width", 1.0))
        label = r.get("label") or r.get("method")
        if not isinstance(r.get("task"), str) or not isinstance(label, str) or math.isnan(seed) or math.isnan(width):
            continue
        depth = _number(r.get("depth"))
        invariance = r.get("invariance") if isinstance(r.get("invariance"), dict) else {}
        search_s, train_s = _number(r.get("search_s")), _number(r.get("train_s"))
        rows.append({"task": r["task"], "profile": str(r.get("profile")), "width": width,
                     "depth": NO_DEPTH if math.isnan(depth) else int(depth), "seed": int(seed), "label": label,
                     "method": str(r.get("method") or label), "metric": str(r.get("metric")),
                     "higher_is_better": higher_is_better(r.get("metric"), r.get("higher_is_better")),
                     "test_metric": _number(r.get("test_metric")), "val_metric": _number(r.get("val_metric")),
                     "invariance": _number(invariance.get("score")),
                     "cost_s": (0.0 if math.isnan(search_s) else search_s) + (0.0 if math.isnan(train_s) else train_s)})
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def _frame(records: Iterable[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    return records if isinstance(records, pd.DataFrame) else score_frame(records)


def depth_value(depth: int) -> int | None:
    return None if depth == NO_DEPTH else int(depth)


# --- intervals -------------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """A mean with its interval over n values; ``statistic`` names how it was made."""

    mean: float
    low: float
    high: float
    n: int
    statistic: str


def interval_name(n: int, confidence: float = CONFIDENCE) -> str:
    """The name of the interval used for n values, for table headers and notes."""
    level = f"{100 * confidence:g} %"
    if n < 2:
        return "no interval (n < 2)"
    return f"{level} t-interval" if n < BOOTSTRAP_MIN_N else f"{level} BCa bootstrap"


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Mean of the finite ``values`` and its interval (t below ``BOOTSTRAP_MIN_N``
    values, BCa bootstrap from there; no interval below 2 values). Never raises."""
    x = np.asarray([v for v in np.asarray(values, dtype=float).ravel() if np.isfinite(v)])
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, interval_name(0, confidence))
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, interval_name(n, confidence))
    if np.ptp(x) <= 1e-12 * max(1.0, abs(mean)):  # identical values: a zero-width interval
        return Interval(mean, mean, mean, n, interval_name(n, confidence))
    half = scipy_stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    t_interval = Interval(mean, float(mean - half), float(mean + half), n, f"{100 * confidence:g} % t-interval")
    if n < BOOTSTRAP_MIN_N:
        return t_interval
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns, and returns NaN, on degenerate resamples
        result = scipy_stats.bootstrap((x,), np.mean, confidence_level=confidence, method="BCa",
                                       n_resamples=BOOTSTRAP_RESAMPLES, rng=np.random.default_rng(0))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return t_interval  # named as such
    return Interval(mean, low, high, n, interval_name(n, confidence))


def errorbar(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(low, high) of ``mean_interval``: seaborn's ``errorbar=`` callable, so plots draw
    the same intervals as the tables (the mean itself where n < 2)."""
    interval = mean_interval(values)
    if math.isnan(interval.low):
        return interval.mean, interval.mean
    return interval.low, interval.high


# --- paired differences ----------------------------------------------------------------

@dataclass(frozen=True)
class PairedDifference:
    """method − baseline on the seeds both ran, in the metric's units (for MAE a
    negative difference is an improvement; ``verdict`` reads the direction)."""

    task: str
    method: str
    baseline: str
    mean: float
    ci_low: float
    ci_high: float
    n: int  # paired seeds
    verdict: str
    statistic: str
    metric: str
    higher_is_better: bool
    seeds: tuple[int, ...] = ()
    method_mean: float = math.nan  # on the paired seeds
    baseline_mean: float = math.nan

    def as_tuple(self) -> tuple[float, float, float, int, str]:
        """(mean difference, ci_low, ci_high, n, verdict)."""
        return self.mean, self.ci_low, self.ci_high, self.n, self.verdict


def verdict(interval: Interval, higher: bool) -> str:
    """better / worse when the interval of method − baseline excludes 0 (in the metric's
    direction), no detectable difference when it contains 0, too few pairs below 2."""
    if interval.n < 2 or math.isnan(interval.low):
        return TOO_FEW
    if interval.low > 0 or interval.high < 0:
        return BETTER if (interval.low > 0) == higher else WORSE
    return NO_DIFFERENCE


def _select(frame: pd.DataFrame, task: str, profile: str | None, width: float | None, depth: int | None
            ) -> pd.DataFrame:
    mask = frame["task"] == task
    if profile is not None:
        mask &= frame["profile"] == profile
    if width is not None:
        mask &= np.isclose(frame["width"].astype(float), float(width))
    if depth is not None:
        mask &= frame["depth"] == depth
    return frame[mask]


PAIR_KEYS = ["profile", "width", "depth", "seed"]


def paired_difference(records: Iterable[dict[str, Any]] | pd.DataFrame, task: str, method: str, baseline: str, *,
                      profile: str | None = None, width: float | None = None, depth: int | None = None,
                      column: str = "test_metric", higher: bool | None = None,
                      confidence: float = CONFIDENCE) -> PairedDifference:
    """``method`` − ``baseline`` (record labels, e.g. "augnet", "erm") on ``task``,
    paired by (profile, width, depth, seed), with its interval and verdict.

    ``profile``, ``width``, ``depth`` (``NO_DEPTH`` for None) restrict the pairs; left
    None, every matching pair counts (n is then the number of pairs, not of seeds).
    ``column`` is the value compared ("test_metric", "val_metric", "invariance",
    "cost_s"); ``higher`` its direction (default: the task metric's). Several ok
    records of one label in one cell are averaged. Never raises on missing data:
    a missing baseline or method gives n = 0 and "too few pairs".
    """
    frame = _select(_frame(records), task, profile, width, depth)
    metric = str(frame["metric"].iloc[0]) if len(frame) else ""
    if higher is None:
        higher = bool(frame["higher_is_better"].iloc[0]) if len(frame) else True
        higher = higher if column in ("test_metric", "val_metric") else True
    sides = [frame[frame["label"] == label].groupby(PAIR_KEYS)[column].mean() for label in (method, baseline)]
    pairs = pd.concat(sides, axis=1, keys=["method", "baseline"], join="inner").dropna()
    interval = mean_interval((pairs["method"] - pairs["baseline"]).to_numpy(), confidence)
    seeds = tuple(sorted({int(s) for s in pairs.index.get_level_values("seed")})) if len(pairs) else ()
    return PairedDifference(task, method, baseline, interval.mean, interval.low, interval.high, interval.n,
                            verdict(interval, higher), interval.statistic, metric, higher, seeds,
                            float(pairs["method"].mean()) if len(pairs) else math.nan,
                            float(pairs["baseline"].mean()) if len(pairs) else math.nan)


def paired_differences(records: Iterable[dict[str, Any]] | pd.DataFrame, baselines: Sequence[str] = ("erm", "fixed"),
                       column: str = "test_metric") -> pd.DataFrame:
    """Every method's paired difference to each baseline, per (task, profile, width,
    depth): one row each, with the baseline's own row left out. Columns: task,
    profile, width, depth, method, baseline, n, mean, ci_low, ci_high, statistic,
    verdict, metric, higher_is_better, method_mean, baseline_mean."""
    frame = _frame(records)
    rows = []
    for (task, profile, width, depth), block in frame.groupby(["task", "profile", "width", "depth"], sort=True):
        labels = sorted(block["label"].unique())
        for baseline in baselines:
            if baseline not in labels:
                continue  # no baseline here: nothing to pair (the table says which baselines exist)
            for label in labels:
                if label == baseline:
                    continue
                d = paired_difference(block, task, label, baseline, column=column)
                rows.append({"task": task, "profile": profile, "width": width, "depth": depth_value(depth),
                             "method": label, "baseline": baseline, "n": d.n, "mean": d.mean, "ci_low": d.ci_low,
                             "ci_high": d.ci_high, "statistic": d.statistic, "verdict": d.verdict,
                             "metric": d.metric, "higher_is_better": d.higher_is_better, "method_mean": d.method_mean,
                             "baseline_mean": d.baseline_mean})
    columns = ["task", "profile", "width", "depth", "method", "baseline", "n", "mean", "ci_low", "ci_high",
               "statistic", "verdict", "metric", "higher_is_better", "method_mean", "baseline_mean"]
    return pd.DataFrame(rows, columns=columns)


def method_intervals(records: Iterable[dict[str, Any]] | pd.DataFrame, task: str, *, profile: str | None = None,
                     width: float | None = None, depth: int | None = None, column: str = "test_metric"
                     ) -> pd.DataFrame:
    """Per method label of ``task`` (filtered as in ``paired_difference``): the mean of
    ``column`` over seeds with its interval and n, beside the mean cost (search + train
    seconds) and invariance score; best first in the task metric's direction. Columns:
    method, n, mean, ci_low, ci_high, statistic, cost_s, invariance."""
    frame = _select(_frame(records), task, profile, width, depth)
    rows = []
    for label, group in frame.groupby("label", sort=True):
        per_seed = group.groupby(PAIR_KEYS)[[column, "cost_s", "invariance"]].mean()
        interval = mean_interval(per_seed[column].to_numpy())
        rows.append({"method": label, "n": interval.n, "mean": interval.mean, "ci_low": interval.low,
                     "ci_high": interval.high, "statistic": interval.statistic,
                     "cost_s": float(per_seed["cost_s"].mean()), "invariance": float(per_seed["invariance"].mean())})
    out = pd.DataFrame(rows, columns=["method", "n", "mean", "ci_low", "ci_high", "statistic", "cost_s", "invariance"])
    higher = bool(frame["higher_is_better"].iloc[0]) if len(frame) and column in ("test_metric", "val_metric") else True
    return out.sort_values("mean", ascending=not higher, ignore_index=True)


# --- ranks across tasks ----------------------------------------------------------------

def average_ranks(oriented: pd.DataFrame) -> pd.Series:
    """Mean over blocks (rows) of each method's (column's) rank within the block:
    1 = the highest oriented score, ties share the average rank."""
    ranks = scipy_stats.rankdata(-oriented.to_numpy(dtype=float), axis=1)
    return pd.Series(ranks.mean(axis=0), index=oriented.columns)


def nemenyi_critical_difference(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi's CD (Demšar 2006, eq. 5): two average ranks of k methods over N blocks
    differ at level ``alpha`` when they are at least this far apart."""
    if k < 2 or n_blocks < 1:
        return math.nan
    q = scipy_stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n_blocks)))


def friedman(oriented: pd.DataFrame) -> tuple[float, float]:
    """Friedman's χ² and p over blocks (rows) × methods (columns); NaN where scipy
    cannot test (fewer than 3 methods or 2 blocks, or every block tied)."""
    if oriented.shape[1] < 3 or oriented.shape[0] < 2:
        return math.nan, math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        try:
            result = scipy_stats.friedmanchisquare(*(oriented[c].to_numpy() for c in oriented.columns))
        except (ValueError, ZeroDivisionError):
            return math.nan, math.nan
    return float(result.statistic), float(result.pvalue)


def cliques(ranks: pd.Series, cd: float) -> list[list[str]]:
    """The maximal groups of methods (sorted by rank) whose average ranks all lie
    within less than ``cd`` of each other: not shown to differ (the CD diagram's bars)."""
    ordered = ranks.sort_values()
    names, values = list(ordered.index), ordered.to_numpy()
    groups: list[list[str]] = []
    if math.isnan(cd):
        return groups
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and values[j + 1] - values[i] < cd:
            j += 1
        if j > i and not any(set(names[i:j + 1]) <= set(g) for g in groups):
            groups.append(names[i:j + 1])
    return groups


def complete_matrix(present: pd.DataFrame) -> tuple[list[Any], list[str]]:
    """Blocks and methods of the largest complete sub-table found greedily: while a cell
    is missing, drop the block or method with the largest fraction of missing cells
    (on a tie, the method, which keeps the blocks that give the test its power).
    Returns the kept (blocks, methods)."""
    table = present.copy()
    while table.size and not table.to_numpy().all():
        missing_methods = 1 - table.mean(axis=0)
        missing_blocks = 1 - table.mean(axis=1)
        if missing_methods.max() >= missing_blocks.max():
            table = table.drop(columns=missing_methods.idxmax())
        else:
            table = table.drop(index=missing_blocks.idxmax())
    return list(table.index), list(table.columns)


def _block_name(block: tuple[str, float, int]) -> str:
    task, width, depth = block
    return f"{task} (width {width:g}" + (f", depth {depth})" if depth != NO_DEPTH else ")")


@dataclass
class RankResult:
    """The ranking of one profile's methods across its blocks (task × width × depth)."""

    profile: str
    blocks: list[str]  # names of the blocks used
    methods: list[str]
    average_rank: pd.Series  # by method, sorted best first
    friedman_statistic: float
    friedman_p: float
    critical_difference: float
    groups: list[list[str]]  # not shown to differ (Nemenyi)
    normalised: pd.DataFrame  # method, mean, ci_low, ci_high, n_blocks
    excluded_methods: dict[str, str] = field(default_factory=dict)  # method -> why
    excluded_blocks: dict[str, str] = field(default_factory=dict)  # block -> why
    seeds_per_cell: tuple[int, int] = (0, 0)  # min, max


def _oriented_means(frame: pd.DataFrame, column: str) -> tuple[pd.DataFrame, dict[tuple, dict[str, np.ndarray]]]:
    """Blocks × methods of mean oriented scores (higher = better), and each cell's
    oriented values per seed (for the bootstrap)."""
    values: dict[tuple, dict[str, np.ndarray]] = {}
    means: dict[tuple, dict[str, float]] = {}
    for (task, width, depth, label), cell in frame.groupby(["task", "width", "depth", "label"], sort=True):
        sign = 1.0 if bool(cell["higher_is_better"].iloc[0]) else -1.0
        per_seed = sign * cell.groupby("seed")[column].mean().dropna().to_numpy()
        if len(per_seed):
            values.setdefault((task, width, depth), {})[label] = per_seed
            means.setdefault((task, width, depth), {})[label] = float(per_seed.mean())
    return pd.DataFrame.from_dict(means, orient="index"), values


def _scale(oriented: np.ndarray, anchor: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block (row): the anchor's score and |best other − anchor| (NaN where 0)."""
    base = oriented[:, anchor:anchor + 1]
    gap = np.abs(np.delete(oriented, anchor, axis=1).max(axis=1, keepdims=True) - base)
    return base, np.where(gap > 0, gap, np.nan)


def normalised_scores(oriented: pd.DataFrame, anchor: str = "erm") -> pd.DataFrame:
    """(s − s_anchor) / |s_best − s_anchor| per block (row) of oriented scores (higher =
    better), where s_best is the best method other than the anchor: 0 = the anchor,
    +1 = the best method when it beats the anchor, −1 = the best method when every
    method is worse than the anchor (the usual "1 = best" scale, which would be
    undefined there, kept with its sign so that no block is dropped for it). NaN for a
    block where the best equals the anchor exactly."""
    values = oriented.to_numpy(dtype=float)
    base, gap = _scale(values, list(oriented.columns).index(anchor))
    return pd.DataFrame((values - base) / gap, index=oriented.index, columns=oriented.columns)


def _normalised_aggregate(means: pd.DataFrame, values: dict[tuple, dict[str, np.ndarray]], anchor: str,
                          confidence: float) -> pd.DataFrame:
    """Mean normalised score over blocks, with a percentile interval from a stratified
    bootstrap: each (block, method) cell's seeds resampled with replacement, on the
    scale fixed by the observed means (as rliable, Agarwal et al. 2021, resamples runs
    on fixed reference scores; re-estimating erm and the best method in each resample
    divides by gaps near 0 and gives intervals of ±30 on seed-noisy tasks). So erm's
    own interval shows its seed noise on the scale. Hand-written because
    ``scipy.stats.bootstrap`` resamples one sample, not strata of different sizes.
    Cells are resampled independently (no seed pairing), which errs wide; with 2–3
    seeds per cell it still errs narrow (the bootstrap variance of a mean of n values
    is (n−1)/n of the usual estimate): read it with the n beside it."""
    columns = ["method", "mean", "ci_low", "ci_high", "n_blocks"]
    if anchor not in means.columns or means.shape[1] < 2:
        return pd.DataFrame(columns=columns)
    point = normalised_scores(means, anchor)
    base, gap = _scale(means.to_numpy(dtype=float), list(means.columns).index(anchor))
    rng = np.random.default_rng(0)
    draws = np.empty((AGGREGATE_RESAMPLES, len(means.index), len(means.columns)))
    for i, block in enumerate(means.index):
        for j, method in enumerate(means.columns):
            v = values[block][method]
            draws[:, i, j] = v[rng.integers(0, len(v), size=(AGGREGATE_RESAMPLES, len(v)))].mean(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every block NaN: no normalised score at all
        resampled = np.nanmean((draws - base) / gap, axis=1)  # resamples × methods
    tail = 100 * (1 - confidence) / 2
    rows = []
    for j, method in enumerate(means.columns):
        finite = resampled[:, j][np.isfinite(resampled[:, j])]
        low, high = np.percentile(finite, [tail, 100 - tail]) if len(finite) else (math.nan, math.nan)
        rows.append({"method": method, "mean": float(point[method].mean()), "ci_low": float(low),
                     "ci_high": float(high), "n_blocks": int(point[method].notna().sum())})
    return pd.DataFrame(rows, columns=columns).sort_values("mean", ascending=False, ignore_index=True)


def rank_methods(records: Iterable[dict[str, Any]] | pd.DataFrame, profile: str, *, column: str = "test_metric",
                 anchor: str = "erm", confidence: float = CONFIDENCE) -> RankResult:
    """Average ranks, Friedman test, Nemenyi CD and normalised-score aggregate of the
    methods of ``profile`` over its blocks (task × width × depth), from seed means.
    Only a complete blocks × methods table can be ranked: the methods or blocks that
    would leave holes are dropped (``complete_matrix``) and named with the reason."""
    frame = _frame(records)
    frame = frame[frame["profile"] == profile]
    means, values = _oriented_means(frame, column)
    excluded_methods: dict[str, str] = {}
    excluded_blocks: dict[str, str] = {}
    if means.size:
        blocks, methods = complete_matrix(means.notna())
        for m in means.columns.difference(methods):
            lacking = [_block_name(b) for b in means.index if pd.isna(means.at[b, m])]
            excluded_methods[m] = "no ok run on " + ", ".join(lacking)
        for b in [b for b in means.index if b not in set(blocks)]:
            lacking = [m for m in methods if pd.isna(means.at[b, m])]
            excluded_blocks[_block_name(b)] = "no ok run of " + ", ".join(lacking) if lacking else "dropped"
        means = means.loc[blocks, methods] if blocks and methods else pd.DataFrame()
    ranks = average_ranks(means).sort_values() if means.size else pd.Series(dtype=float)
    statistic, p = friedman(means) if means.size else (math.nan, math.nan)
    cd = nemenyi_critical_difference(means.shape[1], means.shape[0]) if means.size else math.nan
    counts = [len(values[b][m]) for b in means.index for m in means.columns] if means.size else [0]
    normalised = (_normalised_aggregate(means, values, anchor, confidence) if means.size
                  else pd.DataFrame(columns=["method", "mean", "ci_low", "ci_high", "n_blocks"]))
    return RankResult(profile, [_block_name(b) for b in means.index], list(means.columns), ranks, statistic, p, cd,
                      cliques(ranks, cd) if len(ranks) else [], normalised, excluded_methods, excluded_blocks,
                      (min(counts), max(counts)))


def rank_profiles(records: Iterable[dict[str, Any]] | pd.DataFrame, **kwargs: Any) -> dict[str, RankResult]:
    """``rank_methods`` for every profile that has ok records."""
    frame = _frame(records)
    return {profile: rank_methods(frame, profile, **kwargs) for profile in sorted(frame["profile"].unique())}


# --- cost ------------------------------------------------------------------------------

def pareto_front(cost: list[float], value: list[float], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and metric."""
    sign = 1 if higher_is_better else -1
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -sign * value[i]))
    front, best = [], -float("inf")
    for i in order:
        if sign * value[i] > best:
            front.append(i)
            best = sign * value[i]
    return front

