"""Every named suite expands against the registry: its tasks, methods, parameters and
profile exist, so `run --suite NAME` never fails on a typo in a shipped suite file."""
from __future__ import annotations

import pytest

from bench.registry import load_registry
from bench.suites import expand, load_suite, suite_names


@pytest.mark.parametrize("name", suite_names())
def test_shipped_suite_expands_to_runs(name: str) -> None:
    registry = load_registry()
    assert not registry.errors, registry.errors
    runs, _ = expand(load_suite(name), registry, strict=False)
    assert runs, f"suite {name} expands to no run"
