"""Paired statistics from hand-made records whose answers are known by hand: paired
differences and verdicts (accuracy and MAE), ranks and Friedman's χ² against a
by-hand computation, the Nemenyi CD against Demšar's (2006) table, the normalised
score, the LaTeX export and the figures' intervals."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bench import stat_plots, stat_tables, stats
from bench.table_format import latex_table


def record(method: str, seed: int, value: Any, task: str = "toy", metric: str = "accuracy", width: float = 1.0,
           profile: str = "quick", status: str = "ok", cost: float = 10.0) -> dict[str, Any]:
    return {"run_id": f"{task}-{method}-{width}-{seed}", "task": task, "profile": profile, "method": method,
            "label": method, "width": width, "depth": None, "seed": seed, "status": status, "metric": metric,
            "higher_is_better": metric != "mae", "test_metric": value, "val_metric": value, "search_s": 0.0,
            "train_s": cost, "invariance": {"score": 0.5, "agreement": 0.9}}


BASELINE = [0.70, 0.80, 0.90]  # large seed-to-seed spread, shared by the paired method


def test_a_method_better_by_002_on_every_seed_is_better_although_seeds_spread_by_020() -> None:
    records = [record("erm", s, v) for s, v in enumerate(BASELINE)]
    records += [record("augnet", s, v + 0.02) for s, v in enumerate(BASELINE)]
    d = stats.paired_difference(records, "toy", "augnet", "erm")
    assert d.n == 3 and d.seeds == (0, 1, 2)
    assert d.mean == pytest.approx(0.02)
    assert 0 < d.ci_low <= d.mean <= d.ci_high  # the interval excludes 0 ...
    assert d.verdict == "better"
    # ... because the runs are paired: the two methods' own intervals overlap almost entirely.
    own = [stats.mean_interval([v + shift for v in BASELINE]) for shift in (0.0, 0.02)]
    assert own[0].high > own[1].low + 0.3
    assert d.as_tuple() == (d.mean, d.ci_low, d.ci_high, 3, "better")


def test_pairs_are_matched_by_seed_and_width_not_by_position() -> None:
    records = [record("erm", s, v) for s, v in ((0, 0.5), (1, 0.6), (2, 0.7))]
    records += [record("augnet", s, v) for s, v in ((1, 0.61), (2, 0.71), (3, 0.2))]  # seed 3 has no erm
    records += [record("erm", 1, 0.0, width=2.0), record("augnet", 1, 0.9, width=2.0)]  # another width
    d = stats.paired_difference(records, "toy", "augnet", "erm", width=1.0)
    assert (d.n, d.seeds) == (2, (1, 2)) and d.mean == pytest.approx(0.01)
    assert d.baseline_mean == pytest.approx(0.65) and d.method_mean == pytest.approx(0.66)


def test_a_noisy_method_has_no_detectable_difference_and_its_interval_is_the_t_interval() -> None:
    differences = [0.05, -0.04, 0.01]
    records = [record("erm", s, v) for s, v in enumerate(BASELINE)]
    records += [record("noisy", s, v + d) for s, (v, d) in enumerate(zip(BASELINE, differences))]
    d = stats.paired_difference(records, "toy", "noisy", "erm")
    mean, sd = np.mean(differences), np.std(differences, ddof=1)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, df = 2), from a printed table
    assert (d.mean, d.ci_low, d.ci_high) == pytest.approx((mean, mean - half, mean + half))
    assert d.verdict == "no detectable difference" and d.statistic == "95 % t-interval"


def test_for_mae_a_lower_value_is_better_and_a_higher_one_worse() -> None:
    records = [record("erm", s, v, metric="mae") for s, v in enumerate((300.0, 320.0, 340.0))]
    records += [record("augerino", s, v - 5.0 + 0.1 * s, metric="mae") for s, v in enumerate((300.0, 320.0, 340.0))]
    records += [record("dada", s, v + 5.0 - 0.1 * s, metric="mae") for s, v in enumerate((300.0, 320.0, 340.0))]
    better = stats.paired_difference(records, "toy", "augerino", "erm")
    worse = stats.paired_difference(records, "toy", "dada", "erm")
    assert better.mean == pytest.approx(-4.9) and better.ci_high < 0 and better.verdict == "better"
    assert worse.mean == pytest.approx(4.9) and worse.ci_low > 0 and worse.verdict == "worse"
    assert not better.higher_is_better


def test_one_seed_a_missing_baseline_and_bad_stored_values_never_crash() -> None:
    one = stats.paired_difference([record("erm", 0, 0.5), record("augnet", 0, 0.6)], "toy", "augnet", "erm")
    assert one.n == 1 and one.mean == pytest.approx(0.1) and math.isnan(one.ci_low) and one.verdict == "too few pairs"
    missing = stats.paired_difference([record("augnet", 0, 0.6)], "toy", "augnet", "erm")
    assert missing.n == 0 and math.isnan(missing.mean) and missing.verdict == "too few pairs"
    assert stats.paired_difference([], "toy", "augnet", "erm").n == 0
    broken = [record("erm", 0, "abc"), record("augnet", 0, 0.6), {**record("erm", 1, 0.5), "seed": None},
              record("augnet", 1, 0.7), record("erm", 2, 0.4, status="failed"), "not a record"]
    assert stats.paired_difference(broken, "toy", "augnet", "erm").n == 0


def test_intervals_by_number_of_values() -> None:
    assert stats.mean_interval([]).n == 0
    assert (stats.mean_interval([3.0]).mean, stats.mean_interval([3.0]).statistic) == (3.0, "no interval (n < 2)")
    same = stats.mean_interval([0.02, 0.02, 0.02])
    assert (same.low, same.high) == (0.02, 0.02)
    two = stats.mean_interval([0.0, 1.0])  # t(0.975, 1) = 12.706
    assert two.high - two.low == pytest.approx(2 * 12.7062047 * 0.5, rel=1e-6)
    many = stats.mean_interval(np.random.default_rng(0).exponential(size=40))
    assert many.statistic == "95 % BCa bootstrap" and many.low < many.mean < many.high
    assert stats.errorbar([0.0, 1.0]) == (two.low, two.high)
    assert stats.errorbar([0.4]) == (0.4, 0.4)


# Four blocks x three methods, ranks by hand (1 = best):
#   block  erm   A     B      ranks erm, A, B
#   t1     0.70  0.90  0.80   3 1 2
#   t2     0.75  0.85  0.70   2 1 3
#   t3     0.50  0.60  0.65   3 2 1
#   t4 MAE 11    10    12     2 1 3
# average ranks: A 1.25, B 2.25, erm 2.5
# Friedman: 12N/(k(k+1)) * (sum R^2 - k(k+1)^2/4) = 4 * (1.5625 + 5.0625 + 6.25 - 12) = 3.5, p = exp(-3.5/2)
# normalised (0 = erm, 1 = best other): A 1, 1, 0.1/0.15, 1 -> 11/12; B 0.5, -0.5, 1, -1 -> 0
TABLE = {"t1": (0.70, 0.90, 0.80), "t2": (0.75, 0.85, 0.70), "t3": (0.50, 0.60, 0.65), "t4": (11.0, 10.0, 12.0)}


def ranked_records() -> list[dict[str, Any]]:
    out = []
    for task, values in TABLE.items():
        for method, value in zip(("erm", "A", "B"), values):
            for seed, shift in enumerate((-0.001, 0.001)):  # mean = value
                out.append(record(method, seed, value + shift, task=task, metric="mae" if task == "t4" else "accuracy"))
    return out


def test_average_ranks_friedman_and_critical_difference_match_the_hand_computation() -> None:
    result = stats.rank_methods(ranked_records(), "quick")
    assert result.blocks == ["t1 (width 1)", "t2 (width 1)", "t3 (width 1)", "t4 (width 1)"]
    assert result.average_rank.to_dict() == pytest.approx({"A": 1.25, "B": 2.25, "erm": 2.5})
    assert list(result.average_rank.index) == ["A", "B", "erm"]  # best first
    assert result.friedman_statistic == pytest.approx(3.5)
    assert result.friedman_p == pytest.approx(math.exp(-3.5 / 2))
    # Demšar (2006), Table 5(a): q_0.05 = 2.343 for k = 3.
    assert result.critical_difference == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 4)), abs=1e-3)
    assert result.groups == [["A", "B", "erm"]]  # 1.25 apart < CD 1.66
    normalised = result.normalised.set_index("method")
    assert normalised.loc["A", "mean"] == pytest.approx((3 + 0.1 / 0.15) / 4)
    assert normalised.loc["B", "mean"] == pytest.approx(0.0)
    assert normalised.loc["erm", "mean"] == 0.0
    # Seeds at ±0.001 around each mean, on a scale fixed by the means: a bound moves by at
    # most the mean over blocks of 0.001 / gap (gaps 0.2, 0.1, 0.15, 1.0).
    reach = (0.001 / 0.2 + 0.001 / 0.1 + 0.001 / 0.15 + 0.001 / 1.0) / 4
    for method in ("A", "B", "erm"):
        row = normalised.loc[method]
        assert row["mean"] - reach - 1e-12 <= row["ci_low"] <= row["mean"]
        assert row["mean"] <= row["ci_high"] <= row["mean"] + reach + 1e-12
        assert row["ci_high"] - row["ci_low"] > 0.3 * reach  # the seeds' spread shows
    assert result.seeds_per_cell == (2, 2)


def test_critical_difference_matches_demsar_table_for_more_methods() -> None:
    for k, q in ((2, 1.960), (4, 2.569), (5, 2.728), (10, 3.164)):
        assert stats.nemenyi_critical_difference(k, 6) == pytest.approx(q * math.sqrt(k * (k + 1) / 36), abs=2e-3)


def test_a_method_missing_from_one_task_is_left_out_of_the_ranking_and_named() -> None:
    records = ranked_records()
    records += [record("dada", s, 0.9, task=t) for t in ("t1", "t2") for s in (0, 1)]  # not on t3, t4
    result = stats.rank_methods(records, "quick")
    assert sorted(result.methods) == ["A", "B", "erm"]
    assert "dada" in result.excluded_methods and "t3 (width 1)" in result.excluded_methods["dada"]
    assert result.friedman_statistic == pytest.approx(3.5)


def test_groups_join_methods_whose_ranks_are_closer_than_cd() -> None:
    import pandas as pd

    ranks = pd.Series({"a": 1.0, "b": 1.5, "c": 3.0, "d": 3.4})
    assert stats.cliques(ranks, 1.0) == [["a", "b"], ["c", "d"]]
    assert stats.cliques(ranks, 2.1) == [["a", "b", "c"], ["b", "c", "d"]]


def test_when_every_method_is_worse_than_erm_the_best_sits_at_minus_one() -> None:
    import pandas as pd

    oriented = pd.DataFrame({"erm": [0.9], "A": [0.8], "B": [0.7]})
    assert stats.normalised_scores(oriented).iloc[0].tolist() == pytest.approx([0.0, -1.0, -2.0])


def test_two_methods_rank_without_a_friedman_test() -> None:
    records = [r for r in ranked_records() if r["method"] != "B"]
    result = stats.rank_methods(records, "quick")
    assert math.isnan(result.friedman_p) and result.average_rank.to_dict() == pytest.approx({"A": 1.0, "erm": 2.0})
    assert "No Friedman test" in stat_tables.rank_table(result).note


def parse_latex_rows(tex: str) -> tuple[str, list[list[str]]]:
    """The column spec and the cells (unescaped) of a booktabs tabular."""
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1)
    body = tex.split("\\toprule\n")[1].split("\\bottomrule")[0].replace("\\midrule\n", "")
    rows = [line[: -len(" \\\\")] for line in body.strip().split("\n")]
    unescape = {r"\&": "&", r"\%": "%", r"\_": "_", r"\#": "#", r"$\pm$": "±", r"$-$": "−", "--": "–",
                r"\textless{}": "<", r"\textgreater{}": ">", r"\{": "{", r"\}": "}", r"\$": "$"}
    cells = []
    for row in rows:
        parts = re.split(r"(?<!\\)&", row)
        for escaped, plain in unescape.items():
            parts = [p.replace(escaped, plain) for p in parts]
        cells.append([p.strip() for p in parts])
    return spec, cells


def test_latex_table_escapes_every_cell_and_parses_back() -> None:
    header = ["method", "n", "a & b"]
    rows = [["aug_net (p=50%)", "3", "0.82 ± 0.01"], ["{x} #1 $", "–", "−0.5 < 1"]]
    tex = latex_table(header, rows, "Caption with 95 % and n_seeds", "tab:x")
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 1
    assert r"\caption{Caption with 95 \% and n\_seeds}" in tex
    spec, cells = parse_latex_rows(tex)
    assert spec == "lrr" and cells == [header, *rows]


def test_tables_are_written_as_csv_markdown_and_latex_naming_their_statistic_and_n(tmp_path: Path) -> None:
    records = ranked_records() + [record("fixed", s, 0.72, task="t1") for s in (0, 1)]
    written = {p.name for p in stat_tables.write_stat_tables(records, tmp_path)}
    assert {"t1.quick.paired.csv", "t1.quick.paired.md", "t1.quick.paired.tex", "ranks.quick.csv",
            "ranks.quick.md", "ranks.quick.tex"} <= written
    md = (tmp_path / "t1.quick.paired.md").read_text()
    assert "n = 2 pairs per row" in md and "t-interval" in md and "| fixed | erm | 1 | 2 | +0.0200 |" in md
    spec, cells = parse_latex_rows((tmp_path / "t1.quick.paired.tex").read_text())
    assert cells[0][:5] == ["method", "baseline", "width", "n pairs", "method − baseline (mean)"]
    assert all(len(row) == len(spec) for row in cells)
    assert ["fixed", "erm", "1", "2", "+0.0200"] in [row[:5] for row in cells]
    ranks = (tmp_path / "ranks.quick.md").read_text()
    assert "N = 4 blocks" in ranks and "Friedman χ² = 3.50 (df = 2)" in ranks and "| A | 1.25 |" in ranks


def test_the_scores_figure_draws_the_tables_intervals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[Any] = []
    monkeypatch.setattr(stat_plots, "save_figure", lambda fig, stem, **kw: drawn.append(fig) or [stem])
    records = [record("erm", s, v) for s, v in enumerate(BASELINE)]
    frame = stats.score_frame(records)
    stat_plots.scores(frame, "toy", "quick", "accuracy", tmp_path / "toy.quick.scores")
    expected = stats.mean_interval(BASELINE)
    spans = []  # (min, max) of each drawn line (seaborn draws an error bar and its caps as one)
    for line in drawn[0].axes[0].lines:
        x = np.asarray(line.get_xdata(), dtype=float)
        spans.append((np.nanmin(x), np.nanmax(x)))
    assert any(np.allclose(span, [expected.low, expected.high]) for span in spans)
    assert "95 % t-interval over seeds, n = 3" in drawn[0].axes[0].get_title()


def test_every_statistical_figure_is_written_from_records(tmp_path: Path) -> None:
    records = ranked_records() + [record(m, s, 0.5 + 0.1 * w, task="t1", width=w, cost=5.0 * w)
                                  for m in ("erm", "A", "B") for s in (0, 1) for w in (0.5, 2.0)]
    frame = stats.score_frame(records)
    written = {p.name for p in stat_plots.task_figures(frame[frame["task"] == "t1"], "t1", "quick", "accuracy",
                                                       tmp_path)}
    written |= {p.name for p in stat_plots.rank_figures(frame, tmp_path)}
    for name in ("t1.quick.scores", "t1.quick.metric_vs_time", "t1.quick.metric_vs_width",
                 "t1.quick.invariance_vs_width", "ranks.quick"):
        assert {f"{name}.png", f"{name}.pdf"} <= written, name
    assert all((tmp_path / name).stat().st_size > 1000 for name in written)


def test_friedman_matches_scipy_on_a_table_with_ties() -> None:
    import pandas as pd

    oriented = pd.DataFrame({"a": [1.0, 2.0, 3.0, 1.0], "b": [1.0, 1.0, 2.0, 3.0], "c": [0.0, 3.0, 1.0, 2.0]})
    expected = scipy_stats.friedmanchisquare(oriented["a"], oriented["b"], oriented["c"])
    assert stats.friedman(oriented) == pytest.approx((expected.statistic, expected.pvalue))
    assert stats.average_ranks(oriented).to_dict() == pytest.approx({"a": 1.875, "b": 1.875, "c": 2.25})


def test_method_intervals_rank_methods_best_first_with_cost_and_n() -> None:
    records = [record("erm", s, v, metric="mae", cost=10.0) for s, v in enumerate((300.0, 310.0, 320.0))]
    records += [record("augnet", s, v, metric="mae", cost=30.0) for s, v in enumerate((290.0, 300.0))]
    table = stats.method_intervals(records, "toy")
    assert table["method"].tolist() == ["augnet", "erm"]  # MAE: lower first
    erm = table.set_index("method").loc["erm"]
    assert (erm["n"], erm["mean"], erm["cost_s"]) == (3, pytest.approx(310.0), pytest.approx(10.0))
    assert erm["ci_low"] == pytest.approx(310.0 - 4.302652729911275 * 10.0 / math.sqrt(3))
