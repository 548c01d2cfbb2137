"""The schema of a stored run record, checked wherever records are read.

Stored records are input: a file in ``runs/`` may be truncated, hand-edited, copied
from another folder or written by a hostile tool. ``record_problem`` says in one
phrase why a parsed record cannot be trusted (or None when it can): its id must be
the hexadecimal form ``RunConfig.run_id`` produces and equal the file name, every
field the readers use must have its type, and the record must hold what its status
requires (an ok record a finite test metric and its timings, a failed or skipped one
its reason). Readers leave such a record out with a warning naming the file, and
``run`` reruns it; nothing downstream (tables, plots, report, merge) ever sees it.

Written by hand rather than with a schema library (jsonschema, pydantic): the rules
are a dozen lines, and neither is a dependency of the project.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

from bench.config import RUN_ID_HEX_DIGITS

STATUSES = ("ok", "failed", "skipped")
RUN_ID = re.compile(f"[0-9a-f]{{{RUN_ID_HEX_DIGITS}}}")
# Task, profile, method and metric names become parts of file names (tables, plots): no
# separators, no dots, no leading dash.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
MAX_MAGNITUDE = 1e15  # larger numbers in a record are corruption (and overflow float sums, axis limits)
MAX_NESTING = 32  # deeper JSON is corruption (and would exhaust recursion in the readers)
MAX_TEXT = 2000  # label (method + changed parameters), device, timestamp: texts shown in tables and legends
MAX_RECORD_BYTES = 64 * 2**20


def is_run_id(value: Any) -> bool:
    return isinstance(value, str) and RUN_ID.fullmatch(value) is not None


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool) of sensible magnitude."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value)) and abs(float(value)) <= MAX_MAGNITUDE
    except OverflowError:  # an int beyond float range
        return False


def _name(v: Any) -> bool:
    return isinstance(v, str) and NAME.fullmatch(v) is not None


def _text(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= MAX_TEXT and v.isprintable() and "$" not in v  # $: matplotlib mathtext


def _long_text(v: Any) -> bool:
    return isinstance(v, str)


def _int(v: Any) -> bool:
    return is_number(v) and isinstance(v, int)


def _non_negative(v: Any) -> bool:
    return is_number(v) and v >= 0


def _numbers(keys: tuple[str, ...]) -> Callable[[Any], bool]:
    """A dict whose ``keys``, where present, are numbers or null."""
    return lambda v: isinstance(v, dict) and all(v.get(k) is None or is_number(v[k]) for k in keys)


def _probe(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and (x is None or is_number(x)) for k, x in v.items())


def _history(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(e, dict) and _int(e.get("epoch")) and (e.get("train_loss") is None or is_number(e["train_loss"]))
        and isinstance(e.get("val", {}), dict) and isinstance(e.get("augmentation", {}), dict) for e in v)


def _learning(v: Any) -> bool:
    return (isinstance(v, dict) and (v.get("movement") is None or is_number(v["movement"]))
            and isinstance(v.get("not_moved", False), bool))


# Field -> the check of its value when present and not null.
FIELDS: dict[str, Callable[[Any], bool]] = {
    "status": lambda v: isinstance(v, str) and v in STATUSES,
    "task": _name, "profile": _name, "method": _name, "metric": _name,
    "width": lambda v: is_number(v) and v > 0,
    "depth": lambda v: _int(v) and v > 0,
    "seed": lambda v: _int(v) and v >= 0,
    "label": _text, "method_kind": _name, "device": _text, "timestamp": _text, "amp": _name,
    "higher_is_better": lambda v: isinstance(v, bool),
    "error": _long_text, "traceback": _long_text,
    "test_metric": is_number, "val_metric": is_number,
    **{k: _non_negative for k in ("load_s", "search_s", "train_s", "eval_s", "probe_s", "total_s", "wall_s",
                                  "peak_memory_mb")},
    "n_params": lambda v: _int(v) and v >= 0, "n_params_method": _int,
    "method_params": lambda v: isinstance(v, dict),
    "train_params": lambda v: isinstance(v, dict), "trial": lambda v: _int(v) and v >= 0,
    "invariance": _numbers(("score", "agreement")),
    "test": lambda v: isinstance(v, dict), "val": lambda v: isinstance(v, dict),
    "invariance_probe": _probe, "history": _history, "learning": _learning,
    "versions": lambda v: isinstance(v, dict), "git": lambda v: isinstance(v, dict),
    "host": lambda v: isinstance(v, dict),
}
REQUIRED = ("status", "task", "profile", "method", "width", "seed", "metric")
REQUIRED_BY_STATUS = {"ok": ("test_metric", "search_s", "train_s", "eval_s", "total_s"),
                      "failed": ("error",), "skipped": ("error",)}


def _bad_number(value: Any, depth: int = 0) -> str | None:
    """The first problem among the numbers of nested JSON: too deep, or a number out of range."""
    if depth > MAX_NESTING:
        return f"nested deeper than {MAX_NESTING} levels"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not is_number(value):
        return f"number {str(value)[:20]} out of range"
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        if (problem := _bad_number(item, depth + 1)) is not None:
            return problem
    return None


def record_problem(record: Any, file_stem: str | None = None) -> str | None:
    """Why ``record`` (parsed JSON) is not a trustworthy run record, or None.
    ``file_stem``: the name of its file without ``.json``, which must be its id."""
    if not isinstance(record, dict):
        return "not a JSON object"
    run_id = record.get("run_id")
    if not is_run_id(run_id):
        return f"run_id is not {RUN_ID_HEX_DIGITS} lowercase hex digits"
    if file_stem is not None and run_id != file_stem:
        return "run_id differs from the file name"
    status = record.get("status")
    for key in (*REQUIRED, *(REQUIRED_BY_STATUS.get(status, ()) if isinstance(status, str) else ())):
        if record.get(key) is None:
            return f"no {key}" + (f" (required for status {record['status']})" if key not in REQUIRED else "")
    for key, check in FIELDS.items():
        if record.get(key) is not None and not check(record[key]):
            return f"{key} has the wrong type or range"
    return _bad_number(record)


def parse_record(text: str) -> Any:
    """Strict JSON (NaN / Infinity literals are corruption too); raises ValueError."""
    def reject(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")
    try:
        return json.loads(text, parse_constant=reject)
    except RecursionError:
        raise ValueError("nested too deeply") from None
