"""The report: the summary first (ranks, intervals, costs, the generated reading),
published-vs-reproduced cells and the folding of never-run claims, the learned
augmentation in the ops' units, numbers equal to the records' statistics, and the
HTML rendered by headless Chromium (Debian's package, installed by .ci/run): every
image loads, no console error, and the first screen (1400 x 900) holds the summary
table and no "not run" or "skipped" row."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

from bench import report, report_published, report_summary, stats, store, tables
from bench.report_blocks import ReportInput
from bench.cli import main

DATA = Path(__file__).parent / "data"
ENTRY = {"claim": "c", "source": "s", "task": "sinusoids", "profile": "quick", "method": "augnet",
         "params": {"ncopies": 10}, "width": 1.0, "depth": 2, "compare": "invariance", "value": 0.97, "tolerance": 0.1}


def sinusoid_record(seed: int, score: float | None, status: str = "ok", ncopies: int = 10, depth: int = 2
                    ) -> dict[str, Any]:
    return {"task": "sinusoids", "profile": "quick", "method": "augnet", "method_params": {"ncopies": ncopies},
            "width": 1.0, "depth": depth, "seed": seed, "status": status, "error": None if status == "ok" else "why",
            "invariance": {"score": score} if score is not None else None, "test_metric": 0.9}


def test_reproduced_cell_averages_only_runs_of_the_exact_protocol() -> None:
    records = [sinusoid_record(0, 0.90), sinusoid_record(1, 0.96), sinusoid_record(2, 0.10, ncopies=1),
               sinusoid_record(3, 0.10, depth=3), sinusoid_record(4, None, status="failed")]
    cell = report_published.reproduce(ENTRY, records)
    assert cell["n"] == 2 and cell["mean"] == pytest.approx(0.93) and cell["std"] == pytest.approx(0.0424264, abs=1e-6)
    assert cell["verdict"] == "reproduced"
    cell = report_published.reproduce({**ENTRY, "value": 0.5}, records)
    assert cell["verdict"] == "not reproduced (ours 0.930 vs published 0.500)"
    assert report_published.reproduce(ENTRY, [sinusoid_record(0, None, status="skipped")])["verdict"] == "not run (why)"
    assert report_published.reproduce(ENTRY, [])["verdict"] == "not run (no record of this protocol in the results)"


def test_a_single_seed_published_value_is_compared_with_each_of_our_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [sinusoid_record(2, 0.96), sinusoid_record(0, 0.90), sinusoid_record(1, 0.85)]
    cell = report_published.reproduce({**ENTRY, "seeds": [29]}, records)  # published 0.97, tolerance 0.1
    assert cell["per_seed"] == [(0, 0.90), (1, 0.85), (2, 0.96)] and cell["published_seeds"] == [29]
    assert cell["verdict"] == "reproduced; the published single seed is outside the range of our seeds [0.850, 0.960]"
    cell = report_published.reproduce({**ENTRY, "seeds": [29], "value": 0.70}, records)
    assert cell["verdict"] == ("not reproduced (ours 0.903 vs published 0.700); "
                               "the published single seed is outside the range of our seeds [0.850, 0.960]")
    cell = report_published.reproduce({**ENTRY, "seeds": [29], "value": 0.88}, records)
    assert cell["verdict"] == "reproduced; the published single seed is within the range of our seeds [0.850, 0.960]"
    assert report_published.reproduce(ENTRY, records)["verdict"] == "reproduced"  # no seeds named: no per-seed clause
    monkeypatch.setattr(report_published, "load_published", lambda: [{**ENTRY, "seeds": [29]}])
    blocks = report_published.published_section(ReportInput(records, [], Path(".")))
    row = [b for b in blocks if b.kind == "table"][0].rows[0]
    assert "(1 seed: 29)" in row[3] and row[5] == "0: 0.900, 1: 0.850, 2: 0.960"


def test_the_sinusoid_entries_say_they_come_from_one_seed_and_match_the_capacity_suite() -> None:
    from bench.suites import load_suite

    suite = load_suite("sinusoids_capacity")
    augnet_params = [m.params for m in suite.methods if m.name == "augnet"]
    entries = [e for e in report_published.load_published() if e["task"] == "sinusoids"]
    assert len(entries) == 24  # 3 methods x 4 capacities x (accuracy, invariance)
    for e in entries:
        assert e["seeds"] == [29] and "one seed" in e["source"] and e["profile"] == suite.profile
        assert (e["width"], e["depth"]) in {(0.5, 1), (1.0, 1), (1.0, 2), (1.0, 3)}
        if e["method"] == "augnet":
            assert any(params == e["params"] for params in augnet_params)


def test_every_published_entry_names_its_source_and_a_known_comparison() -> None:
    entries = report_published.load_published()
    assert len(entries) >= 10
    for e in entries:
        assert e["source"] and e["compare"] in ("invariance", "test_metric") and isinstance(e["value"], float)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "records", store.runs_dir(tmp_path))
    assert main(["report", "--results-dir", str(tmp_path)]) == 0
    return tmp_path


def markdown_rows(text: str, heading: str) -> list[list[str]]:
    section = text.split(f"### {heading}")[1].split("\n#")[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def test_report_tables_hold_the_statistics_of_the_records(results: Path) -> None:
    text = (results / "report.md").read_text()
    summary, _ = tables.task_tables(store.load_records(results))[("toy", "quick")]
    rows = markdown_rows(text, "toy (quick profile)")
    assert len(rows) == len(summary)
    for row, (_, expected) in zip(rows, summary.iterrows()):
        assert row[0] == expected["method"] and int(row[2]) == expected["n"]
        if expected["n"] > 0:
            mean = float(row[3].split(" ± ")[0])
            assert mean == pytest.approx(expected["test_metric_mean"], abs=1e-4)
    assert "## Not run" in text and "- toy (paper): 1 run skipped: data not here" in text
    assert text.count("--data-root DIR") == 1  # the hint once, not per run
    assert "## Paired comparisons and ranks" in text and "### Ranks across tasks (quick profile)" in text
    assert "(plots/ranks.quick.png)" in text
    # No published protocol was run: the claims fold into one line per suite, with its command.
    assert "## Published vs reproduced" in text and "| claim |" not in text
    assert "fill with `python run_bench.py run --suite sinusoids_capacity -j 2`" in text
    # The answer first: the summary comes before every other section and the environment last.
    headings = re.findall(r"^## (.*)$", text, re.M)
    assert headings[0].startswith("Summary") and headings[-1] == "Environment"
    assert all(f"(#{report.Block('h2', h).anchor})" in text for h in headings)  # the contents link each
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images and all((results / i).is_file() for i in images)


def score_record(label: str, seed: int, accuracy: float, train_s: float) -> dict[str, Any]:
    return {"task": "toy", "profile": "quick", "method": label, "label": label, "width": 1.0, "depth": None,
            "seed": seed, "status": "ok", "metric": "accuracy", "higher_is_better": True, "test_metric": accuracy,
            "search_s": 0.0, "train_s": train_s, "invariance": {"score": 0.5}}


def test_the_summary_ranks_with_intervals_and_reads_who_leads_and_who_is_within_noise() -> None:
    accuracies = {"a": [0.90, 0.91, 0.92], "b": [0.80, 0.81, 0.82], "c": [0.95, 0.85, 0.90]}
    cost = {"a": 100.0, "b": 50.0, "c": 20.0}
    records = [score_record(m, s, v, cost[m]) for m, values in accuracies.items() for s, v in enumerate(values)]
    blocks = report_summary.summary_section(ReportInput(records, [], Path(".")))
    heading, table, reading = blocks[1:]
    # b is behind a by exactly 0.1 in every seed (interval [0.1, 0.1]); c - a = +0.05, -0.06, -0.02 contains 0.
    assert heading.text == "toy (quick): a best, detectably ahead of b"
    assert [row[1] for row in table.rows] == ["a", "c", "b"] and table.css == report_summary.SUMMARY_CSS
    expected = stats.method_intervals(records, "toy").set_index("method")
    low, high = expected.loc["a", ["ci_low", "ci_high"]]
    assert table.rows[0][2] == f"0.910 [{low:.3f}, {high:.3f}]" and table.rows[0][3] == "3"
    assert table.rows[1][4] == "20 (0.0 + 20)"
    assert reading.text.startswith("a has the best mean (0.910); within noise of it (the 95 % interval of the "
                                   "paired difference contains 0): c; detectably behind it: b.")
    assert "The cheapest method within noise of the leader is c (20 s against 100 s)." in reading.text


def test_claims_whose_runs_all_failed_or_skipped_fold_into_one_line_per_reason(monkeypatch: pytest.MonkeyPatch
                                                                               ) -> None:
    entries = [ENTRY, {**ENTRY, "claim": "d", "compare": "test_metric"}, {**ENTRY, "width": 2.0}]
    monkeypatch.setattr(report_published, "load_published", lambda: entries)
    monkeypatch.setattr(report_published, "suite_runs", lambda: {})
    skipped = sinusoid_record(0, None, status="skipped")
    skipped["error"] = "data not here\n(details over\nseveral lines)"
    blocks = report_published.published_section(ReportInput([skipped], [], Path(".")))
    assert [b.kind for b in blocks] == ["h2", "items"]
    assert blocks[1].items == ["2 published values (c; d): not run (data not here)",
                               "1 published value (c): no suite runs this protocol; add one."]


def test_claims_never_run_fold_into_one_line_per_suite_with_its_command() -> None:
    blocks = report_published.published_section(ReportInput([], [], Path(".")))
    assert [b.kind for b in blocks] == ["h2", "items"]  # no table of empty rows
    lines = blocks[1].items
    assert len(lines) == len({line.split("--suite ")[-1] for line in lines})  # one line per suite
    assert any(line.startswith("24 published values") and
               line.endswith("`python run_bench.py run --suite sinusoids_capacity -j 2`") for line in lines)
    assert sum(int(line.split()[0]) for line in lines) == len(report_published.load_published())


CHECK = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.target.src || 'error')), true);
const originalError = console.error; console.error = (...a) => { window.__errors.push(a.join(' ')); originalError(...a); };
window.addEventListener('load', () => {
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const screen = window.innerHeight;
  const summary = document.querySelector('table.summary');
  const box = summary ? summary.getBoundingClientRect() : null;
  const firstRows = [...document.querySelectorAll('tr, li')]
    .filter(e => e.getBoundingClientRect().top < screen).map(e => e.textContent);
  const marker = document.createElement('pre'); marker.id = 'render-check';
  marker.textContent = JSON.stringify({images: images.length, broken: broken, errors: window.__errors,
    width: window.innerWidth, height: screen, summaryTop: box && box.top, summaryBottom: box && box.bottom,
    firstRows: firstRows});
  document.body.appendChild(marker);
});
</script>"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
FIRST_SCREEN = (1400, 900)  # a laptop browser window, CSS pixels


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        reason = ("NO HEADLESS CHROMIUM: the report is NOT checked as a reader sees it (images, console, first "
                  "screen); apt-get install chromium (.ci/run installs it)")
        warnings.warn(reason)
        pytest.skip(reason)
    return path


def render(page: Path, profile: Path) -> tuple[dict[str, Any], str]:
    """Load ``page`` with the check script in a 1400 x 900 window; the check's JSON and stderr."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("<head>", "<head>" + CHECK, 1))
    width, height = FIRST_SCREEN
    done = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                           f"--window-size={width},{height}", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120)
    probe.unlink()
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="render-check">(.*?)</pre>', done.stdout, re.S)
    assert found, "the page did not finish loading"
    return json.loads(html.unescape(found.group(1))), done.stderr


def test_html_report_renders_in_headless_chromium_with_every_image_and_no_console_error(results: Path,
                                                                                        tmp_path: Path) -> None:
    page = (results / "report.html").read_text()
    assert "http://" not in page and "https://" not in page  # self-contained: nothing fetched
    check, stderr = render(results / "report.html", tmp_path / "chromium-profile")
    assert check["images"] >= 2 and check["broken"] == 0 and check["errors"] == []
    console_errors = [line for line in stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert not console_errors, console_errors


def test_the_first_screen_holds_the_summary_table_and_no_empty_row(results: Path, tmp_path: Path) -> None:
    """The records hold a skipped run, a failed run and 27 never-run published claims:
    none of that may reach the first screen; the whole summary table must."""
    check, _ = render(results / "report.html", tmp_path / "chromium-profile")
    # --dump-dom lays out a 1400 x 900 window whose viewport is a little shorter (757 px here):
    # checking that viewport is stricter than the 900 px screenshot.
    assert check["width"] == FIRST_SCREEN[0] and 600 <= check["height"] <= FIRST_SCREEN[1], check
    assert check["summaryTop"] is not None, "no summary table on the page"
    assert 0 <= check["summaryTop"] and check["summaryBottom"] <= check["height"], check
    assert any("bilevel" in row for row in check["firstRows"])  # the summary's rows are among them
    empty = [row for row in check["firstRows"] if re.search(r"not run|skipped", row, re.I)]
    assert not empty, empty
    screenshot = results / "report_first_screen.png"
    width, height = FIRST_SCREEN
    shot = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
                           f"--window-size={width},{height}", f"--screenshot={screenshot}",
                           (results / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
