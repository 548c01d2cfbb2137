"""Named suites (``bench/suites/<name>.yaml``) and their expansion into runs.

A suite file names a profile, tasks, methods (a name, or ``{name: ..., params:
{...}}`` for a preset), seeds, widths and optionally depths, ``train`` (overrides of
the profile's shared training settings, ``bench.api.TRAIN_PARAMS``), ``tune:
{trials: N}`` (equal-budget tuning, ``bench.tuning``) and ``max_params``. ``--suite``
also takes a path to such a file. Explicit CLI flags (``--tasks``, ``--methods`` ...)
replace the corresponding field of the suite.

The file is checked against a schema (unknown keys, types, ranges) and every value
is normalised while the suite expands, before any run starts: a bad one is one line
naming the file (or flag), the key and what is allowed. Duplicate configurations
run once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from bench.api import TRAIN_PARAMS, Task
from bench.config import RunConfig, canonical_json
from bench.errors import UserError
from bench.params import normalise
from bench.registry import Registry
from bench.tuning import draw_trials

SUITES_DIR = Path(__file__).resolve().parent / "suites"
PROFILES = ("smoke", "quick", "paper")


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
    train: dict[str, Any] = field(default_factory=dict, hash=False)  # TRAIN_PARAMS overrides
    tune_trials: int = 1  # configurations drawn per method x task; 1: the defaults only
    tune_seed: int = 0
    max_params: int | None = None  # None: each task's own bound (Task.max_params)
    max_depth: int | None = None  # None: each task's own bound (Task.max_depth)
    source: str = ""  # the suite file, named in errors

    def with_overrides(self, **overrides: Any) -> "Suite":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


# --- the schema of a suite file ---------------------------------------------------------

def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def seed_ok(v: Any) -> bool:
    return is_int(v) and v >= 0


def width_ok(v: Any) -> bool:
    return is_number(v) and v > 0


def depth_ok(v: Any) -> bool:
    return v is None or (is_int(v) and v > 0)


def _list_of(ok: Callable[[Any], bool], what: str) -> tuple[Callable[[Any], bool], str]:
    def check(v: Any) -> bool:
        return isinstance(v, list) and len(v) > 0 and all(ok(x) for x in v)
    return check, f"a non-empty list of {what}"


def _method_entry_ok(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, dict) and isinstance(v.get("name"), str)
                                  and set(v) <= {"name", "params"} and isinstance(v.get("params", {}), dict))


SCHEMA: dict[str, tuple[Callable[[Any], bool], str]] = {
    "description": (lambda v: isinstance(v, str), "a string"),
    "profile": (lambda v: v in PROFILES, f"one of {', '.join(PROFILES)}"),
    "tasks": _list_of(lambda v: isinstance(v, str), "task names, e.g. [mnist_rot, qm9]"),
    "methods": _list_of(_method_entry_ok, "method names or {name: ..., params: {...}} entries"),
    "seeds": _list_of(seed_ok, "integer seeds >= 0"),
    "widths": _list_of(width_ok, "finite width multipliers > 0"),
    "depths": _list_of(depth_ok, "integer depths > 0 (or null: the task's default)"),
    "train": (lambda v: isinstance(v, dict), f"a mapping of {', '.join(TRAIN_PARAMS)} to values"),
    "tune": (lambda v: isinstance(v, dict) and set(v) <= {"trials", "seed"} and is_int(v.get("trials"))
             and v["trials"] >= 1 and seed_ok(v.get("seed", 0)),
             "{trials: N} with an integer N >= 1 (and optionally seed: an integer >= 0)"),
    "max_params": (lambda v: is_int(v) and v > 0, "an integer > 0"),
    "max_depth": (lambda v: is_int(v) and v > 0, "an integer > 0"),
}
REQUIRED = ("profile", "tasks", "methods", "seeds")


def _method_spec(entry: Any) -> MethodSpec:
    if isinstance(entry, str):
        return MethodSpec(entry)
    return MethodSpec(entry["name"], dict(entry.get("params", {})))


def load_suite(name_or_path: str) -> Suite:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SUITES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UserError(f"unknown suite {name_or_path!r}; known suites: {', '.join(suite_names())} "
                        "(or a path to a .yaml file)")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"suite file {path} cannot be read ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise UserError(f"suite file {path}: expected a mapping with keys {', '.join(REQUIRED)}, got {raw!r:.60}")
    unknown = sorted(map(str, set(raw) - set(SCHEMA)))
    if unknown:
        raise UserError(f"suite file {path}: unknown key {', '.join(map(repr, unknown))}; "
                        f"allowed keys: {', '.join(SCHEMA)}")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise UserError(f"suite file {path}: missing key {', '.join(missing)} (required: {', '.join(REQUIRED)})")
    for key, value in raw.items():
        ok, what = SCHEMA[key]
        if not ok(value):
            raise UserError(f"suite file {path}: key {key!r} must be {what}, got {value!r:.80}")
    tune = raw.get("tune", {})
    return Suite(
        name=path.stem,
        description=raw.get("description", ""),
        profile=raw["profile"],
        tasks=tuple(raw["tasks"]),
        methods=tuple(_method_spec(m) for m in raw["methods"]),
        seeds=tuple(raw["seeds"]),
        widths=tuple(float(w) for w in raw.get("widths", [1.0])),
        depths=tuple(raw.get("depths", [None])),
        train=normalise(TRAIN_PARAMS, raw.get("train", {}), "train", f"suite file {path}"),
        tune_trials=tune.get("trials", 1),
        tune_seed=tune.get("seed", 0),
        max_params=raw.get("max_params"),
        max_depth=raw.get("max_depth"),
        source=str(path),
    )


# --- expansion ------------------------------------------------------------------------------

def check_model_size(task: Task, profile: str, width: float, depth: int | None,
                     max_params: int | None, max_depth: int | None) -> None:
    """The task builds a model of this width/depth (on the meta device: no memory, no
    time) within its bounds, which ``--max-params`` / ``--max-depth`` raise."""
    depth_bound = max_depth or task.max_depth
    if depth is not None and depth > depth_bound:
        raise UserError(f"depth {depth} of task {task.name!r} is above its bound {depth_bound}; "
                        "raise it explicitly with --max-depth")
    with torch.device("meta"):
        model = task.make_model(profile, width, depth)  # a UserError names the depths allowed
    n = sum(p.numel() for p in model.parameters())
    bound = max_params or task.max_params
    if n > bound:
        raise UserError(f"task {task.name!r} at width {width:g}, depth {depth} has {n:,} parameters, above its "
                        f"bound {bound:,}; raise it explicitly with --max-params")


def expand(suite: Suite, registry: Registry, strict: bool) -> tuple[list[RunConfig], list[str]]:
    """The runs of a suite, and the (task, method) pairs left out as not applicable.

    Method parameters are normalised and completed with the method's defaults (so the
    run id does not depend on whether a default was spelled out, or on 25 vs 25.0);
    training overrides equal to the profile's value are dropped. With ``strict``
    (tasks and methods named on the command line) an inapplicable pair is an error.
    With ``tune_trials`` N > 1, each method x task gets N configurations (trial 0 the
    defaults). A configuration listed twice runs once.
    """
    try:
        return _expand(suite, registry, strict)
    except UserError as exc:
        raise UserError(f"{exc} (suite {suite.source or suite.name} with the command line's overrides)") from None


def _expand(suite: Suite, registry: Registry, strict: bool) -> tuple[list[RunConfig], list[str]]:
    runs, left_out = [], []
    for task_name in suite.tasks:
        task_cls = registry.task(task_name).cls
        if suite.profile not in task_cls.profiles:
            raise UserError(f"task {task_name!r} has no profile {suite.profile!r}; "
                            f"choose one of: {', '.join(task_cls.profiles)}")
        task = task_cls()
        profile = task.profile(suite.profile)
        for width in suite.widths:
            for depth in suite.depths:
                check_model_size(task, suite.profile, width, depth, suite.max_params, suite.max_depth)
        for spec in suite.methods:
            plugin = registry.method(spec.name)
            given = normalise(plugin.declared, spec.params, spec.name)
            reason = plugin.cls.supports(task)
            if reason:
                if strict:
                    raise UserError(f"method {spec.name!r} does not apply to task {task_name!r}: {reason}")
                left_out.append(f"{spec.name} x {task_name}: {reason}")
                continue
            params = {**plugin.defaults_for(suite.profile), **given}
            problem = plugin.cls.check_params(task, params)
            if problem:
                raise UserError(f"method {spec.name!r} on task {task_name!r}: {problem}")
            trials = draw_trials(plugin.declared, params, set(given), profile, suite.train,
                                 suite.tune_trials, (suite.tune_seed, task_name, suite.profile, spec.name))
            for trial, (method_params, train) in enumerate(trials):
                if trial and plugin.cls.check_params(task, method_params):
                    continue  # a draw that does not fit this task (never trial 0)
                train = {k: v for k, v in train.items() if v is not None and getattr(profile, k) != v}
                for width in suite.widths:
                    for depth in suite.depths:
                        for seed in suite.seeds:
                            runs.append(RunConfig(task_name, suite.profile, spec.name, width, depth, seed,
                                                  method_params, train_params=train,
                                                  trial=trial if suite.tune_trials > 1 else None))
    unique: dict[str, RunConfig] = {}
    for config in runs:
        unique.setdefault(canonical_json(config.semantic()), config)
    return list(unique.values()), left_out
