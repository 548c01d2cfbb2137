"""Plugin discovery: every ``*.py`` in ``methods/`` and ``datasets/``, plus the
entry-point groups ``invbench.methods`` and ``invbench.datasets``.

Files are loaded by path under a private module name (``datasets`` is also a PyPI
package, so ``import datasets`` could pick the wrong one). Files whose name starts
with ``_`` are helpers, not plugins. A file that fails to import, or defines a
malformed plugin, is recorded in ``Registry.errors`` with its file name and error;
the other plugins still work.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.api import Method, Task
from bench.config import file_hash
from bench.errors import UserError
from bench.params import Param, declared, defaults
from bench.resources import check_resources

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"methods": Method, "datasets": Task}
ENTRY_POINT_GROUPS = {"methods": "invbench.methods", "datasets": "invbench.datasets"}


@dataclass(frozen=True)
class Plugin:
    name: str
    cls: type
    source: str  # file path, or "entry point <name> (<module>)"
    source_hash: str

    @property
    def description(self) -> str:
        return self.cls.description

    @property
    def declared(self) -> dict[str, Param]:
        """The declared hyper-parameters (a bare default is read as a Param of its type)."""
        return declared(self.cls.params)

    @property
    def defaults(self) -> dict[str, Any]:
        return defaults(self.cls.params)

    def defaults_for(self, profile: str) -> dict[str, Any]:
        """The method's defaults with its overrides for ``profile`` applied."""
        return {**self.defaults, **getattr(self.cls, "profile_params", {}).get(profile, {})}


@dataclass
class Registry:
    methods: dict[str, Plugin] = field(default_factory=dict)
    tasks: dict[str, Plugin] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (source, one-line error)

    def method(self, name: str) -> Plugin:
        return _lookup(self.methods, name, "method", self.errors)

    def task(self, name: str) -> Plugin:
        return _lookup(self.tasks, name, "task", self.errors)


def _lookup(table: dict[str, Plugin], name: str, what: str, errors: list[tuple[str, str]]) -> Plugin:
    if name in table:
        return table[name]
    hint = ""
    broken = [src for src, _ in errors if Path(src).stem == name]
    if broken:
        hint = f" (its plugin file {broken[0]} failed to load; see `python run_bench.py list`)"
    raise UserError(f"unknown {what} {name!r}{hint}; known {what}s: {', '.join(sorted(table)) or 'none'}")


def _check_plugin(cls: type, base: type) -> str | None:
    if not isinstance(cls.name, str) or not cls.name.isidentifier():
        return f"{cls.__name__}.name must be an identifier, got {cls.name!r}"
    if not isinstance(cls.description, str) or not cls.description.strip() or "\n" in cls.description.strip():
        return f"{cls.__name__}.description must be one non-empty line"
    if not isinstance(cls.params, dict):
        return f"{cls.__name__}.params must be a dict of Param declarations"
    params = declared(cls.params)
    for profile, overrides in {"": {}, **getattr(cls, "profile_params", {})}.items():
        if not isinstance(overrides, dict) or set(overrides) - set(params):
            return f"{cls.__name__}.profile_params[{profile!r}] may only override keys of params"
        # Defaults and overrides are values like any other: they must be allowed, and
        # already in normal form (else a spelled-out default would change the run id).
        for key, param in params.items():
            value = overrides.get(key, param.default)
            try:
                ok = param.normalise(value) == value and type(param.normalise(value)) is type(value)
            except ValueError as exc:
                ok, why = False, str(exc)
            else:
                why = "a value in normal form (e.g. 1.0, not 1, for a number)"
            if not ok:
                where = f"profile_params[{profile!r}]" if profile else "params"
                return f"{cls.__name__}.{where}[{key!r}] = {value!r} is not allowed: expected {why}"
    if base is Method:
        problem = check_resources(getattr(cls, "resources", {}), f"{cls.__name__}.resources")
        if problem:
            return problem
    if base is Task and not cls.profiles:
        return f"{cls.__name__}.profiles is empty"
    return None


def _plugin_classes(module: Any, base: type) -> list[type]:
    return [
        obj for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base
        and obj.__module__ == module.__name__ and obj.name
    ]


def _register(reg: Registry, kind: str, cls: type, source: str, source_hash: str) -> None:
    table = reg.methods if kind == "methods" else reg.tasks
    problem = _check_plugin(cls, KINDS[kind])
    if problem is None and cls.name in table:
        problem = f"duplicate {kind[:-1]} name {cls.name!r} (also in {table[cls.name].source})"
    if problem:
        reg.errors.append((source, problem))
        return
    table[cls.name] = Plugin(cls.name, cls, source, source_hash)


def load_plugin_module(path: Path) -> ModuleType:
    """Import a plugin (or ``_helper``) file by path, once per process.

    A plugin may build on another one in its folder this way, e.g.
    ``load_plugin_module(Path(__file__).with_name("mnist_rot.py")).MnistRot``.
    """
    path = Path(path).resolve()
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    module_name = f"_invbench_plugins.{path.parent.name}.{path.stem}_{tag}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _load_file(reg: Registry, kind: str, path: Path) -> None:
    try:
        module = load_plugin_module(path)
    except Exception as exc:  # noqa: BLE001 - any import error is reported, not raised
        last = traceback.extract_tb(exc.__traceback__)[-1]
        reg.errors.append((str(path), f"{type(exc).__name__}: {exc} (line {last.lineno})"))
        return
    classes = _plugin_classes(module, KINDS[kind])
    if not classes:
        reg.errors.append((str(path), f"defines no {KINDS[kind].__name__} subclass with a name"))
    for cls in classes:
        _register(reg, kind, cls, str(path), file_hash(path))


def _load_entry_points(reg: Registry, kind: str) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUPS[kind]):
        source = f"entry point {ep.name} ({ep.value})"
        try:
            obj = ep.load()
            classes = _plugin_classes(obj, KINDS[kind]) if inspect.ismodule(obj) else [obj]
            if not classes or not all(inspect.isclass(c) and issubclass(c, KINDS[kind]) for c in classes):
                raise TypeError(f"must name a {KINDS[kind].__name__} subclass or a module defining one")
            for cls in classes:
                path = Path(inspect.getfile(cls))
                _register(reg, kind, cls, source, file_hash(path))
        except Exception as exc:  # noqa: BLE001
            reg.errors.append((source, f"{type(exc).__name__}: {exc}"))


@lru_cache(maxsize=None)
def load_registry(root: Path = ROOT) -> Registry:
    """Discover the plugins under ``root`` (cached per process)."""
    reg = Registry()
    for kind in KINDS:
        for path in sorted((root / kind).glob("*.py")):
            if not path.name.startswith("_"):
                _load_file(reg, kind, path)
        _load_entry_points(reg, kind)
    return reg
