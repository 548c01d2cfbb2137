"""Named suites (``bench/suites/<name>.yaml``) and their expansion into runs.

A suite file names a profile, tasks, methods (a name, or ``{name: ..., params:
{...}}`` for a preset), seeds, widths and optionally depths. ``--suite`` also takes a
path to such a file. Explicit CLI flags (``--tasks``, ``--methods`` ...) replace the
corresponding field of the suite.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from bench.config import CONTROL_PARAM, RunConfig
from bench.errors import UserError
from bench.registry import Registry

SUITES_DIR = Path(__file__).resolve().parent / "suites"


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    profile: str
    tasks: tuple[str, ...]
    methods: tuple[MethodSpec, ...]
    seeds: tuple[int, ...]
    widths: tuple[float, ...] = (1.0,)
    depths: tuple[int | None, ...] = (None,)

    def with_overrides(self, **overrides: Any) -> "Suite":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def _method_spec(entry: Any, source: str) -> MethodSpec:
    if isinstance(entry, str):
        return MethodSpec(entry)
    if isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("params", {}), dict):
        return MethodSpec(entry["name"], dict(entry.get("params", {})))
    raise UserError(f"suite {source}: a method entry must be a name or {{name: ..., params: {{...}}}}, got {entry!r}")


def load_suite(name_or_path: str) -> Suite:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SUITES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UserError(f"unknown suite {name_or_path!r}; known suites: {', '.join(suite_names())} (or a path to a .yaml file)")
    try:
        raw = yaml.safe_load(path.read_text())
        return Suite(
            name=path.stem,
            description=str(raw.get("description", "")),
            profile=str(raw["profile"]),
            tasks=tuple(raw["tasks"]),
            methods=tuple(_method_spec(m, str(path)) for m in raw["methods"]),
            seeds=tuple(int(s) for s in raw["seeds"]),
            widths=tuple(float(w) for w in raw.get("widths", [1.0])),
            depths=tuple(raw.get("depths", [None])),
        )
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed file is the user's to fix
        raise UserError(f"suite file {path} is malformed ({type(exc).__name__}: {exc}); "
                        "it needs profile, tasks, methods and seeds") from None


def expand(suite: Suite, registry: Registry, strict: bool) -> tuple[list[RunConfig], list[str]]:
    """The runs of a suite, and the (task, method) pairs left out as not applicable.

    Method parameters are validated and completed with the method's defaults (so the
    run id does not depend on whether a default was spelled out). With ``strict``
    (tasks and methods named on the command line) an inapplicable pair is an error.
    """
    runs, left_out = [], []
    for task_name in suite.tasks:
        task_cls = registry.task(task_name).cls
        if suite.profile not in task_cls.profiles:
            raise UserError(f"task {task_name!r} has no profile {suite.profile!r}; "
                            f"choose one of: {', '.join(task_cls.profiles)}")
        for spec in suite.methods:
            plugin = registry.method(spec.name)
            unknown = set(spec.params) - set(plugin.defaults)
            if unknown:
                raise UserError(f"method {spec.name!r} has no parameter {', '.join(sorted(unknown))}; "
                                f"its parameters: {', '.join(plugin.defaults) or 'none'}")
            reason = plugin.cls.supports(task_cls())
            if reason:
                if strict:
                    raise UserError(f"method {spec.name!r} does not apply to task {task_name!r}: {reason}")
                left_out.append(f"{spec.name} x {task_name}: {reason}")
                continue
            params = {**plugin.defaults_for(suite.profile), **spec.params}
            if not isinstance(params.get(CONTROL_PARAM, True), bool):
                raise UserError(f"method {spec.name!r}: {CONTROL_PARAM} must be true or false, "
                                f"got {params[CONTROL_PARAM]!r}")
            for width in suite.widths:
                for depth in suite.depths:
                    for seed in suite.seeds:
                        runs.append(RunConfig(task_name, suite.profile, spec.name, width, depth, seed, params))
    return runs, left_out
