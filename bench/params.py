"""Declared hyper-parameters: one ``Param`` per parameter, written in the plugin file
that uses it (DomainBed's ``_hparam(name, default, random_fn)``, benchopt's
one-file-per-plugin), never in a central table.

A ``Param`` says the default, the type, what is allowed (a range, choices, a list's
element type), and the distribution a tuner draws from. The harness normalises every
value through it while it expands a suite, before any run starts, so a bad value is
one line naming the parameter, the value and what is allowed, and equal values give
one run id (``25`` and ``25.0`` for a float are both ``25.0``).

This is a low module: it imports nothing of the harness but ``bench.errors``.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from bench.errors import UserError


# --- distributions a tuner draws from -------------------------------------------------
# Each is called with a ``random.Random`` (seeded by the tuner: reproducible on every
# machine) and the parameter's effective default (``base``), which relative
# distributions such as ``log_scale`` multiply.

@dataclass(frozen=True)
class Distribution:
    def sample(self, rng: random.Random, base: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _round(value: float) -> float:
    """Three significant digits: readable labels, and the value a user would type."""
    return float(f"{value:.3g}")


@dataclass(frozen=True)
class LogUniform(Distribution):
    low: float
    high: float

    def sample(self, rng: random.Random, base: Any) -> float:
        return _round(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def describe(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float

    def sample(self, rng: random.Random, base: Any) -> float:
        return _round(rng.uniform(self.low, self.high))

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class IntUniform(Distribution):
    low: int
    high: int  # inclusive

    def sample(self, rng: random.Random, base: Any) -> int:
        return rng.randint(self.low, self.high)

    def describe(self) -> str:
        return f"integer uniform {{{self.low}..{self.high}}}"


@dataclass(frozen=True)
class Choice(Distribution):
    options: tuple[Any, ...]

    def sample(self, rng: random.Random, base: Any) -> Any:
        return rng.choice(self.options)

    def describe(self) -> str:
        return f"one of {', '.join(map(str, self.options))}"


@dataclass(frozen=True)
class LogScale(Distribution):
    """The default times 10^U(-decades, +decades): for settings whose good value
    depends on the task (a learning rate of the task profile's optimiser)."""

    decades: float

    def sample(self, rng: random.Random, base: Any) -> float:
        return _round(float(base) * 10 ** rng.uniform(-self.decades, self.decades))

    def describe(self) -> str:
        return f"default x 10^U(-{self.decades:g}, {self.decades:g})"


def log_uniform(low: float, high: float) -> LogUniform:
    return LogUniform(low, high)


def uniform(low: float, high: float) -> Uniform:
    return Uniform(low, high)


def int_uniform(low: int, high: int) -> IntUniform:
    return IntUniform(low, high)


def choice(*options: Any) -> Choice:
    return Choice(tuple(options))


def log_scale(decades: float) -> LogScale:
    return LogScale(decades)


# --- the declaration ------------------------------------------------------------------

KINDS = (int, float, bool, str, list, dict, object)  # object: anything; ``check`` decides


@dataclass(frozen=True)
class Param:
    """One hyper-parameter.

    ``kind``: int, float, bool, str, list (elements of ``item``, each in [low, high]) or
    dict (checked by ``check``). ``choices``: literal values accepted as they are (for a
    str parameter: the only values; for a number: names beside the numbers, e.g.
    ``"auto"``). ``low``/``high``: inclusive bounds of numbers (of the elements of a
    list). ``nullable``: None is allowed ("the harness's / profile's value").
    ``check``: a further check of a value of the right kind, returning the normalised
    value or raising ``ValueError`` saying what is allowed (e.g. names of ops).
    ``tune``: the distribution a tuner draws from; None: never tuned. ``allowed_text``
    replaces the generated description of what is allowed (for ``object`` kinds).
    """

    default: Any
    kind: type = float
    low: float | None = None
    low_exclusive: bool = False  # low itself is not allowed (a learning rate > 0)
    high: float | None = None
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    item: type | None = None
    length: int | None = None
    check: Callable[[Any], Any] | None = field(default=None, compare=False)
    tune: Distribution | None = None
    allowed_text: str = ""
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TypeError(f"Param kind must be one of {', '.join(k.__name__ for k in KINDS)}, got {self.kind!r}")
        if self.kind is list and self.item not in (int, float, str):
            raise TypeError("a list Param needs item=int, float or str")

    # What is allowed, in words (for errors and `list`).
    def allowed(self) -> str:
        if self.allowed_text:
            return self.allowed_text
        parts = []
        if self.kind is list:
            bounds = self._bounds()
            size = f"{self.length} " if self.length else ""
            item = _kind_name(self.item).split(" ", 1)[1]
            parts.append(f"a list of {size}{item}s{f' {bounds}' if bounds else ''}")
        elif self.kind is str and self.choices:
            parts.append(f"one of {', '.join(map(str, self.choices))}")
        else:
            bounds = self._bounds()
            parts.append(_kind_name(self.kind) + (f" {bounds}" if bounds else ""))
            if self.choices:
                parts.append(", ".join(map(str, self.choices)))
        if self.nullable:
            parts.append("null")
        return " or ".join(parts)

    def _bounds(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_exclusive else '['}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{'>' if self.low_exclusive else '>='} {self.low:g}"
        if self.high is not None:
            return f"<= {self.high:g}"
        return ""

    def normalise(self, value: Any) -> Any:
        """The value in canonical form (ints of a float parameter become floats), or
        ``ValueError`` with what is allowed."""
        if value is None:
            if self.nullable:
                return None
            raise ValueError(self.allowed())
        if self.choices and _in(value, self.choices):
            return value
        if self.kind is str and self.choices:
            raise ValueError(self.allowed())
        if self.kind is list:
            if not isinstance(value, (list, tuple)) or (self.length is not None and len(value) != self.length):
                raise ValueError(self.allowed())
            try:
                items = [self._scalar(v, self.item) for v in value]
            except ValueError:
                raise ValueError(self.allowed()) from None
            return self._checked(items)
        try:
            scalar = self._scalar(value, self.kind)
        except ValueError:
            raise ValueError(self.allowed()) from None
        return self._checked(scalar)

    def _checked(self, value: Any) -> Any:
        if self.check is None:
            return value
        return self.check(value)  # its ValueError says what is allowed

    def _scalar(self, value: Any, kind: type) -> Any:
        if kind is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if kind is str:
            if isinstance(value, str):
                return value
            raise ValueError
        if kind is object:
            return value
        if kind is dict:
            if isinstance(value, dict):
                return dict(value)
            raise ValueError
        # int / float: never a bool, never a string (YAML already read numbers)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError
        if not math.isfinite(value):
            raise ValueError
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        else:
            value = float(value)
        if self.low is not None and (value < self.low or (self.low_exclusive and value == self.low)):
            raise ValueError
        if self.high is not None and value > self.high:
            raise ValueError
        return value

    def describe(self) -> str:
        """For `list`: type and allowed values, and the tuning distribution."""
        tune = f"; tuned: {self.tune.describe()}" if self.tune else ""
        return f"{self.allowed()}{tune}"


def _in(value: Any, options: tuple[Any, ...]) -> bool:
    # 1 == True in Python: only a value of the same type matches a choice.
    return any(type(value) is type(o) and value == o for o in options)


def _kind_name(kind: type | None) -> str:
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string", dict: "a mapping"}.get(
        kind, "a value")


def as_param(declared: Any) -> Param:
    """A ``Param`` as it is, or a bare default (third-party plugins written before
    declarations existed) as a ``Param`` of the default's type, without bounds."""
    if isinstance(declared, Param):
        return declared
    if declared is None:
        return Param(None, kind=str, nullable=True)
    kind = type(declared) if type(declared) in KINDS else str
    if kind is list:
        item_kinds = {type(v) for v in declared}
        item = item_kinds.pop() if len(item_kinds) == 1 and item_kinds <= {int, float, str} else str
        return Param(declared, kind=list, item=item)
    return Param(declared, kind=kind)


def declared(params: Mapping[str, Any]) -> dict[str, Param]:
    return {k: as_param(v) for k, v in params.items()}


def defaults(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: p.default for k, p in declared(params).items()}


def normalise(params: Mapping[str, Param], values: Mapping[str, Any], owner: str, source: str = "") -> dict[str, Any]:
    """``values`` normalised against the declarations ``params`` of ``owner`` (a
    method name, or ``train``); a `UserError` naming ``source`` on the first bad one."""
    where = f" ({source})" if source else ""
    unknown = sorted(set(values) - set(params))
    if unknown:
        who = "the shared training settings have" if owner == "train" else f"method {owner!r} has"
        raise UserError(f"{who} no parameter {', '.join(unknown)}{where}; "
                        f"its parameters: {', '.join(params) or 'none'}")
    out = {}
    for key, value in values.items():
        try:
            out[key] = params[key].normalise(value)
        except ValueError as exc:
            raise UserError(f"bad value {owner}.{key}={value!r}{where}: expected {exc}") from None
    return out
