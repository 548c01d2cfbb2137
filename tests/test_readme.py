"""``readme --check / --write``: the README's generated blocks (tables, cost table)
are a function of committed records; an edited number is caught."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import store
from bench.cli import main
from tests.helpers import ROOT

DATA = Path(__file__).parent / "data" / "records"
README = "# Results\n\n<!-- table:demo:toy:quick -->\n<!-- end -->\n\nprose\n\n<!-- cost:demo -->\n<!-- end -->\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(DATA, store.runs_dir(tmp_path / "results" / "demo"))
    (tmp_path / "README.md").write_text(README)
    return tmp_path


def readme(project: Path, *flags: str, records: str = "results") -> int:
    return main(["readme", *flags, "--records", str(project / records), "--readme", str(project / "README.md")])


def test_write_then_check_passes_and_an_edited_number_fails(project: Path, capsys: pytest.CaptureFixture) -> None:
    assert readme(project, "--write") == 0
    text = (project / "README.md").read_text()
    assert "| erm | 1 | 3 | 0.8200 ± 0.0200 |" in text and "prose" in text
    assert "| toy | 12.0 s (1.00×) | 30.0 + 10.0 s (3.33×) | 20.0 s (1.67×) |" in text
    assert readme(project, "--check") == 0
    capsys.readouterr()
    (project / "README.md").write_text(text.replace("0.8200 ± 0.0200", "0.8300 ± 0.0200"))
    assert readme(project, "--check") == 1
    assert "block <!-- table:demo:toy:quick --> differs" in capsys.readouterr().out
    (project / "README.md").write_text(text.replace("12.0 s (1.00×)", "11.0 s (1.00×)"))
    assert readme(project, "--check") == 1


def test_records_of_another_machine_pass_within_seed_noise_only(project: Path, capsys: pytest.CaptureFixture) -> None:
    assert readme(project, "--write") == 0
    other = store.runs_dir(project / "other" / "demo")
    shutil.copytree(DATA, other)

    def shift_erm(by: float) -> None:
        for path in other.glob("00000000000000a*.json"):
            record = json.loads((DATA / path.name).read_text())
            record.update(test_metric=record["test_metric"] + by, train_s=record["train_s"] * 2,
                          invariance={**record["invariance"], "agreement": 0.5})  # no std: not compared
            path.write_text(json.dumps(record))

    shift_erm(0.03)  # erm 0.8500 against 0.8200 ± 0.0200 (3 seeds): Welch p ~ 0.14, and twice the seconds
    assert readme(project, "--check", records="other") == 1  # not identical
    capsys.readouterr()
    assert readme(project, "--check", "--seed-noise", records="other") == 0
    assert "within seed noise" in capsys.readouterr().out
    shift_erm(0.2)  # 1.0200: t = 12 on 4 df, p ~ 3e-4, below 0.05 / the cells compared
    assert readme(project, "--check", "--seed-noise", records="other") == 1
    out = capsys.readouterr().out
    assert "0.8200 ± 0.0200 -> 1.0200 ± 0.0200 (Welch p = " in out and "block <!-- table:demo:toy:quick -->" in out
    assert main(["readme", "--write", "--seed-noise", "--records", str(project / "other"),
                 "--readme", str(project / "README.md")]) == 2  # --seed-noise goes with --check
    shift_erm(0.0)
    (other / "00000000000000a2.json").unlink()  # n seeds 2, not 3: never tolerated
    assert readme(project, "--check", "--seed-noise", records="other") == 1


def test_bad_markers_and_folders_are_one_clear_error(project: Path, capsys: pytest.CaptureFixture) -> None:
    cases = [("<!-- table:demo -->\n<!-- end -->\n", "needs a task"),
             ("<!-- table:demo:nosuchtask -->\n<!-- end -->\n", "no records of task 'nosuchtask'"),
             ("<!-- table:missing:toy -->\n<!-- end -->\n", "no run records in"),
             ("<!-- recovery:demo -->\n<!-- end -->\n", "no run of suite 'demo' learns a rotation range"),
             ("<!-- recovery:demo:toy -->\n<!-- end -->\n", "takes no task"),
             ("no markers here\n", "no generated blocks")]
    for text, message in cases:
        (project / "README.md").write_text(text)
        assert readme(project, "--check") == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert readme(project, "--check", records="nowhere") == 2


def test_the_committed_readme_matches_the_committed_records(capsys: pytest.CaptureFixture) -> None:
    text = (ROOT / "README.md").read_text()
    if "<!-- table:" not in text and "<!-- cost:" not in text:
        pytest.skip("README.md has no generated blocks yet (the lead wires them with docs/results/<suite>/runs)")
    assert main(["readme", "--check", "--records", str(ROOT / "docs" / "results"),
                 "--readme", str(ROOT / "README.md")]) == 0, capsys.readouterr().out


def test_gain_and_tuned_blocks_need_their_records(project: Path, capsys: pytest.CaptureFixture) -> None:
    (project / "README.md").write_text("<!-- gain:demo:toy -->\n<!-- end -->\n")
    assert readme(project, "--check") == 2  # the demo records hold no learn_augmentation=False control
    assert "no method paired with its learn_augmentation=False control on task 'toy'" in capsys.readouterr().err
    (project / "README.md").write_text("<!-- tuned:demo:toy -->\n<!-- end -->\n")
    assert readme(project, "--check") == 2  # nor tuning trials
    assert "no tuning trials of task 'toy'" in capsys.readouterr().err


def test_an_edited_search_gain_in_the_committed_readme_is_caught(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- gain:quick+controls:mnist_rot -->")
    block = text[start:text.index("<!-- end -->", start)]
    row = next(line for line in block.splitlines() if line.startswith("| dada |"))
    cells = row.split(" | ")
    gain = next(i for i, c in enumerate(cells) if c.startswith(("+", "-")) and "." in c)
    cells[gain] = "+0.5000"  # a search gain nobody measured
    edited = tmp_path / "README.md"
    edited.write_text(text.replace(row, " | ".join(cells)))
    assert main(["readme", "--check", "--records", str(ROOT / "docs" / "results"), "--readme", str(edited)]) == 1


def test_paired_and_ranks_blocks_come_from_the_records(project: Path, capsys: pytest.CaptureFixture) -> None:
    (project / "README.md").write_text("<!-- paired:demo:toy:quick -->\n<!-- end -->\n\n<!-- ranks:demo -->\n<!-- end -->\n")
    assert readme(project, "--write") == 0
    text = (project / "README.md").read_text()
    # fixed 0.90 (seed 0) against erm 0.80 (seed 0): one pair, no interval, no verdict.
    assert "| fixed | erm | 1 | 1 | +0.1000 | – | no interval (n < 2) | too few pairs |" in text
    assert "| fixed | 1.00 | a | 1.000 |" in text and "| erm | 3.00 | a | 0.000 |" in text
    assert readme(project, "--check") == 0
    (project / "README.md").write_text(text.replace("| fixed | 1.00 |", "| fixed | 2.00 |"))
    assert readme(project, "--check") == 1
    assert "block <!-- ranks:demo --> differs" in capsys.readouterr().out


def test_bad_paired_and_ranks_markers_are_one_clear_error(project: Path, capsys: pytest.CaptureFixture) -> None:
    cases = [("<!-- paired:demo -->\n<!-- end -->\n", "is not <!-- paired:demo:TASK[:PROFILE] -->"),
             ("<!-- ranks:demo:toy:quick -->\n<!-- end -->\n", "is not <!-- ranks:demo[:PROFILE] -->"),
             ("<!-- paired:demo:toy:quick.tuned -->\n<!-- end -->\n",
              "no paired comparison with erm or fixed on task 'toy' at profile 'quick.tuned'"),
             ("<!-- ranks:demo:paper -->\n<!-- end -->\n", "no ranking of 2 or more methods across tasks at profile")]
    for text, message in cases:
        (project / "README.md").write_text(text)
        assert readme(project, "--check") == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_the_capacity_block_keeps_its_seeds_and_capacities_exact_under_seed_noise() -> None:
    from bench.readme import seed_noise_cells
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- capacity:sinusoids_capacity -->\n") + len("<!-- capacity:sinusoids_capacity -->\n")
    block = text[start:text.index("<!-- end -->", start)]
    row = next(line for line in block.splitlines() if line.startswith("| (2, 1) | augnet C=10 | 5 |"))
    assert seed_noise_cells(block, block) == ([], 24)  # 12 rows x (accuracy, invariance)
    assert seed_noise_cells(block, block.replace(row, row.replace("| 5 |", "| 4 |", 1))) is None  # n seeds: exact
    mean, std = row.split(" | ")[3].split(" ± ")
    nudged = row.replace(f"{mean} ± {std}", f"{float(mean) + float(std) / 2:.3f} ± {std}", 1)
    (change,), compared = seed_noise_cells(block, block.replace(row, nudged))
    assert change.column == "test accuracy (mean ± std)" and 0.4 < change.p < 0.5  # half a std, 5 seeds each
    moved = row.replace(f"{mean} ± {std}", f"{float(mean) + 5 * float(std):.3f} ± {std}", 1)
    (change,), compared = seed_noise_cells(block, block.replace(row, moved))
    assert change.p < 0.05 / compared  # five stds with 5 seeds each: not seed noise


def test_the_claims_block_reads_several_suites_and_an_edited_verdict_is_caught(tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture) -> None:
    text = (ROOT / "README.md").read_text()
    marker = "<!-- claims:invariance_recovery+sinusoids_capacity -->\n"
    block = text[text.index(marker) + len(marker):text.index("<!-- end -->", text.index(marker))]
    glyphs = next(line for line in block.splitlines() if "Mario-Iggy" in line and "(glyphs)" in line)
    sinusoids = next(line for line in block.splitlines() if "sinusoids" in line)
    # rows of both suites are filled from their records (not "not run")
    assert "not run" not in glyphs and "not run" not in sinusoids and "per seed" in sinusoids
    edited = tmp_path / "README.md"
    edited.write_text(text.replace(glyphs, glyphs.replace("| reproduced |", "| not reproduced |")))
    assert main(["readme", "--check", "--records", str(ROOT / "docs" / "results"), "--readme", str(edited)]) == 1
    assert "block <!-- claims:invariance_recovery+sinusoids_capacity --> differs" in capsys.readouterr().out
    for bad, message in [("<!-- claims:invariance_recovery:glyphs -->", "takes no task"),
                         ("<!-- table:quick+nosuchsuite:mnist_rot -->", "no run records in")]:
        edited.write_text(f"{bad}\n<!-- end -->\n")
        assert main(["readme", "--check", "--records", str(ROOT / "docs" / "results"), "--readme", str(edited)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
