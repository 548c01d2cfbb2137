"""The report: published-vs-reproduced cells, numbers equal to the records' statistics,
and the HTML rendered by headless Chromium (Debian's package, installed by .ci/run)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench import report, store, tables
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
    cell = report.reproduce(ENTRY, records)
    assert cell["n"] == 2 and cell["mean"] == pytest.approx(0.93) and cell["std"] == pytest.approx(0.0424264, abs=1e-6)
    assert cell["verdict"] == "reproduced"
    cell = report.reproduce({**ENTRY, "value": 0.5}, records)
    assert cell["verdict"] == "not reproduced (ours 0.930 vs published 0.500)"
    assert report.reproduce(ENTRY, [sinusoid_record(0, None, status="skipped")])["verdict"] == "not run (why)"
    assert report.reproduce(ENTRY, [])["verdict"] == "not run (no record of this protocol in the results)"


def test_a_single_seed_published_value_is_compared_with_each_of_our_seeds() -> None:
    records = [sinusoid_record(2, 0.96), sinusoid_record(0, 0.90), sinusoid_record(1, 0.85)]
    cell = report.reproduce({**ENTRY, "seeds": [29]}, records)  # published 0.97, tolerance 0.1
    assert cell["per_seed"] == [(0, 0.90), (1, 0.85), (2, 0.96)] and cell["published_seeds"] == [29]
    assert cell["verdict"] == "reproduced; the published single seed is outside the range of our seeds [0.850, 0.960]"
    cell = report.reproduce({**ENTRY, "seeds": [29], "value": 0.70}, records)
    assert cell["verdict"] == ("not reproduced (ours 0.903 vs published 0.700); "
                               "the published single seed is outside the range of our seeds [0.850, 0.960]")
    cell = report.reproduce({**ENTRY, "seeds": [29], "value": 0.88}, records)
    assert cell["verdict"] == "reproduced; the published single seed is within the range of our seeds [0.850, 0.960]"
    assert report.reproduce(ENTRY, records)["verdict"] == "reproduced"  # no seeds named: no per-seed clause
    row = report.published_blocks(records, [{**ENTRY, "seeds": [29]}])[-1].rows[0]
    assert "(1 seed: 29)" in row[3] and row[5] == "0: 0.900, 1: 0.850, 2: 0.960"


def test_the_sinusoid_entries_say_they_come_from_one_seed_and_match_the_capacity_suite() -> None:
    from bench.suites import load_suite

    suite = load_suite("sinusoids_capacity")
    augnet_params = [m.params for m in suite.methods if m.name == "augnet"]
    entries = [e for e in report.load_published() if e["task"] == "sinusoids"]
    assert len(entries) == 24  # 3 methods x 4 capacities x (accuracy, invariance)
    for e in entries:
        assert e["seeds"] == [29] and "one seed" in e["source"] and e["profile"] == suite.profile
        assert (e["width"], e["depth"]) in {(0.5, 1), (1.0, 1), (1.0, 2), (1.0, 3)}
        if e["method"] == "augnet":
            assert any(params == e["params"] for params in augnet_params)


def test_every_published_entry_names_its_source_and_a_known_comparison() -> None:
    entries = report.load_published()
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
    assert "## Failed and skipped runs" in text and "skipped" in text
    assert "## Paired comparisons and ranks" in text and "### Ranks across tasks (quick profile)" in text
    assert "(plots/ranks.quick.png)" in text
    assert "## Published vs reproduced" in text and "not run" in text
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images and all((results / i).is_file() for i in images)


CHECK = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.target.src || 'error')), true);
const originalError = console.error; console.error = (...a) => { window.__errors.push(a.join(' ')); originalError(...a); };
window.addEventListener('load', () => {
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const marker = document.createElement('pre'); marker.id = 'render-check';
  marker.textContent = JSON.stringify({images: images.length, broken: broken, errors: window.__errors});
  document.body.appendChild(marker);
});
</script>"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "headless Chromium is needed for this test: apt-get install chromium (.ci/run installs it)"
    return path


def test_html_report_renders_in_headless_chromium_with_every_image_and_no_console_error(results: Path,
                                                                                        tmp_path: Path) -> None:
    page = (results / "report.html").read_text()
    assert "http://" not in page and "https://" not in page  # self-contained: nothing fetched
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + CHECK, 1))
    profile = tmp_path / "chromium-profile"
    done = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="render-check">(.*?)</pre>', done.stdout, re.S)
    assert found, "the page did not finish loading"
    check = json.loads(found.group(1).replace("&quot;", '"'))
    assert check["images"] >= 2 and check["broken"] == 0 and check["errors"] == []
    console_errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert not console_errors, console_errors
    screenshot = results / "report_screenshot.png"
    shot = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,2000",
                           f"--screenshot={screenshot}", (results / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
