"""Regenerate tests/data/golden/ from tests/data/records/ after an intended change of
the table format: ``python tests/regenerate_golden.py``, then review ``git diff``.

Kept apart from tests/test_tables.py on purpose: a test that may write its own
expectations compares them with themselves.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import store  # noqa: E402
from bench.cli import main  # noqa: E402
from tests.test_tables import DATA, GOLDEN  # noqa: E402


def regenerate() -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        shutil.copytree(DATA / "records", store.runs_dir(results))
        if main(["table", "--results-dir", str(results)]) != 0:
            raise SystemExit("table failed; golden files unchanged")
        written = []
        for name in GOLDEN:
            target = DATA / "golden" / name
            target.write_text((results / "tables" / name).read_text())
            written.append(target)
    return written


if __name__ == "__main__":
    for path in regenerate():
        print(f"wrote {path.relative_to(ROOT)}")
