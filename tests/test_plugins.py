"""Plugin discovery, failure isolation, the README's example plugin, entry points."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import store
from bench.registry import load_registry
from tests.helpers import ROOT, copy_repo, run_cli

FAILING_METHOD = '''
"""A method that raises during training (test plugin)."""
from bench.api import Method


class Exploding(Method):
    name = "exploding"
    description = "Raises in its first training step."
    params = {}

    def training_loss(self, x, y):
        raise ValueError("boom from the exploding plugin")
'''

NAN_METHOD = '''
"""A method whose loss is NaN (test plugin)."""
from bench.api import Method


class NotANumber(Method):
    name = "not_a_number"
    description = "Returns a NaN loss."
    params = {}

    def training_loss(self, x, y):
        loss = self.task.loss(self.model(x), y)
        return loss * float("nan"), {}
'''


@pytest.fixture(scope="module")
def repo_with_bad_plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    (repo / "methods" / "exploding.py").write_text(FAILING_METHOD)
    (repo / "methods" / "not_a_number.py").write_text(NAN_METHOD)
    (repo / "methods" / "broken_syntax.py").write_text("def oops(:\n")
    (repo / "methods" / "broken_import.py").write_text("import a_package_that_does_not_exist\n")
    return repo


def test_registry_finds_the_shipped_plugins() -> None:
    reg = load_registry()
    assert {"erm", "fixed"} <= set(reg.methods)
    assert "mnist_rot" in reg.tasks
    assert reg.errors == []
    assert reg.method("erm").source.endswith("methods/erm.py")


def test_broken_plugin_files_do_not_break_list(repo_with_bad_plugins: Path) -> None:
    result = run_cli("list", cwd=repo_with_bad_plugins)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "erm" in out and "exploding" in out and "mnist_rot" in out
    assert re.search(r"broken_syntax\.py: SyntaxError", out)
    assert re.search(r"broken_import\.py: ModuleNotFoundError: .*a_package_that_does_not_exist", out)


def test_failing_and_nan_runs_are_recorded_and_the_suite_goes_on(repo_with_bad_plugins: Path, tmp_path: Path) -> None:
    result = run_cli("run", "--suite", "smoke", "--tasks", "mnist_rot", "--methods", "exploding,erm,not_a_number", "--results-dir",
                     str(tmp_path), "--no-progress", cwd=repo_with_bad_plugins)
    assert result.returncode == 1, result.stderr
    assert "1 ok, 2 failed" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr.replace("warning:", "")
    records = {r["method"]: r for r in store.load_records(tmp_path)}
    assert records["erm"]["status"] == "ok"
    assert records["exploding"]["status"] == "failed"
    assert "boom from the exploding plugin" in records["exploding"]["error"]
    assert "Traceback" in records["exploding"]["traceback"]
    assert records["not_a_number"]["status"] == "failed"
    assert "NonFiniteError" in records["not_a_number"]["error"]
    # Failed runs appear in the table with their reason.
    assert run_cli("table", "--results-dir", str(tmp_path), cwd=repo_with_bad_plugins).returncode == 0
    md = (tmp_path / "tables" / "mnist_rot.smoke.md").read_text()
    assert "boom from the exploding plugin" in md and "| erm |" in md


def readme_plugin() -> tuple[str, str]:
    """The file name and source of the example plugin in the README."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Add your own method", 1)[1]
    match = re.search(r"```python\n# (methods/\w+\.py)\n(.*?)```", section, re.S)
    assert match, "the README's plugin example is missing"
    return match.group(1), match.group(2)


def test_readme_plugin_example_runs(tmp_path: Path) -> None:
    name, source = readme_plugin()
    repo = copy_repo(tmp_path / "repo")
    (repo / name).write_text(source)
    listing = run_cli("list", cwd=repo)
    assert "label_smoothing" in listing.stdout and "smoothing = 0.1" in listing.stdout
    result = run_cli("run", "--suite", "smoke", "--tasks", "mnist_rot", "--methods", "label_smoothing,erm",
                     "--param", "label_smoothing.smoothing=0.2", "--results-dir", str(tmp_path / "results"),
                     "--no-progress", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    records = {r["method"]: r for r in store.load_records(tmp_path / "results")}
    assert records["label_smoothing"]["status"] == "ok"
    assert records["label_smoothing"]["method_params"] == {"smoothing": 0.2}
    assert records["label_smoothing"]["label"] == "label_smoothing (smoothing=0.2)"


def test_entry_point_plugins_are_registered(tmp_path: Path) -> None:
    """A method in another installed package, declared in the invbench.methods group."""
    package = tmp_path / "site" / "thirdparty_invbench"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent('''
        from bench.api import Method

        class ThirdParty(Method):
            name = "third_party"
            description = "A method shipped by another package."
            params = {"alpha": 1.0}
    '''))
    dist = tmp_path / "site" / "thirdparty_invbench-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-invbench\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[invbench.methods]\nthird_party = thirdparty_invbench:ThirdParty\n")
    code = ("import sys; sys.path.insert(0, %r); from bench.registry import load_registry; "
            "r = load_registry(); print(r.method('third_party').source, r.errors)") % str(tmp_path / "site")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "entry point third_party" in out.stdout and out.stdout.strip().endswith("[]")


def test_method_params_are_validated() -> None:
    result = run_cli("run", "--suite", "smoke", "--tasks", "mnist_rot", "--param", "erm.nope=1", "--results-dir", "/tmp/unused-invbench")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: method 'erm' has no parameter nope (--param); its parameters: none"]
