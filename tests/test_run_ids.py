"""Run ids hash the semantic config and the plugin sources, nothing else."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.config import RunConfig
from bench.registry import load_registry
from bench.config import run_id_of
from bench.suites import MethodSpec, expand, load_suite
from tests.helpers import copy_repo


def plan_ids(**overrides) -> list[str]:
    registry = load_registry()
    suite = load_suite("smoke").with_overrides(tasks=("mnist_rot",), **overrides)
    configs, _ = expand(suite, registry, strict=False)
    return [run_id_of(registry, c) for c in configs]


def test_same_config_same_id_and_defaults_need_not_be_spelled() -> None:
    registry = load_registry()
    a = RunConfig("mnist_rot", "quick", "erm", 1, None, 0, {})
    b = RunConfig("mnist_rot", "quick", "erm", 1.0, None, 0, {})
    assert run_id_of(registry, a) == run_id_of(registry, b)
    assert run_id_of(registry, a) != run_id_of(registry, RunConfig("mnist_rot", "quick", "erm", 1.0, None, 1, {}))
    assert run_id_of(registry, a) != run_id_of(registry, RunConfig("mnist_rot", "quick", "erm", 0.5, None, 0, {}))
    assert run_id_of(registry, a) != run_id_of(registry, RunConfig("mnist_rot", "smoke", "erm", 1.0, None, 0, {}))


def test_order_of_flags_and_lists_does_not_matter() -> None:
    forward = plan_ids(methods=(MethodSpec("erm"), MethodSpec("fixed")), seeds=(0, 1))
    backward = plan_ids(seeds=(1, 0), methods=(MethodSpec("fixed"), MethodSpec("erm")))
    assert sorted(forward) == sorted(backward) and len(set(forward)) == 4


def test_method_params_enter_the_id() -> None:
    registry = load_registry()
    a = RunConfig("mnist_rot", "smoke", "erm", 1.0, None, 0, {"x": 1})
    b = RunConfig("mnist_rot", "smoke", "erm", 1.0, None, 0, {"x": 2})
    assert run_id_of(registry, a) != run_id_of(registry, b)


def test_editing_a_method_file_changes_the_id(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path)
    code = ("from bench.registry import load_registry; from bench.config import run_id_of; "
            "from bench.config import RunConfig; "
            "print(run_id_of(load_registry(), RunConfig('mnist_rot', 'smoke', 'erm', 1.0, None, 0, {})))")

    def current_id() -> str:
        out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120,
                             env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    before = current_id()
    assert before == current_id()  # stable across processes
    erm = repo / "methods" / "erm.py"
    erm.write_text(erm.read_text() + "\n# an edit\n")
    edited_method = current_id()
    assert edited_method != before
    # Shared code every run executes (here an augmentation op) enters the id too: no stale reuse.
    ops = repo / "bench" / "augment" / "image.py"
    ops.write_text(ops.read_text() + "\n# an edit\n")
    edited_ops = current_id()
    assert edited_ops != edited_method
    # Record plumbing does not: rewriting how a record is stored does not change its numbers.
    store = repo / "bench" / "store.py"
    store.write_text(store.read_text() + "\n# an edit\n")
    assert current_id() == edited_ops


def test_profile_params_override_defaults_per_profile() -> None:
    from bench.api import Method
    from bench.registry import Plugin, Registry

    class Budgeted(Method):
        name = "budgeted"
        description = "test"
        params = {"search_epochs": 20, "lam": 0.1}
        profile_params = {"smoke": {"search_epochs": 1}}

    registry = Registry(methods={"budgeted": Plugin("budgeted", Budgeted, "test", "h")},
                        tasks=dict(load_registry().tasks))
    smoke = load_suite("smoke").with_overrides(tasks=("mnist_rot",), methods=(MethodSpec("budgeted"),))
    [config], _ = expand(smoke, registry, strict=False)
    assert config.method_params == {"search_epochs": 1, "lam": 0.1}
    assert config.label(registry.method("budgeted").defaults_for("smoke")) == "budgeted"
    quick = smoke.with_overrides(profile="quick", seeds=(0,), methods=(MethodSpec("budgeted", {"lam": 0.5}),))
    [config], _ = expand(quick, registry, strict=False)
    assert config.method_params == {"search_epochs": 20, "lam": 0.5}
    assert config.label(registry.method("budgeted").defaults_for("quick")) == "budgeted (lam=0.5)"
