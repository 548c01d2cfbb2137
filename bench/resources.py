"""The compute resources a method may ask for (its ``resources`` class attribute),
checked once here for the plugin registry and the SLURM launcher alike.

Keys: partition, time (minutes), gpus, cpus, mem (GB); a ``slurm_`` prefix is
accepted and stripped, so a method file may use submitit's spelling.
"""
from __future__ import annotations

from typing import Any

from bench.errors import UserError

RESOURCE_TYPES: dict[str, type] = {"partition": str, "time": int, "gpus": int, "cpus": int, "mem": float}
DEFAULTS: dict[str, Any] = {"partition": None, "time": 60, "gpus": 0, "cpus": 1, "mem": None}


def normalise_resources(resources: Any, where: str) -> dict[str, Any]:
    """Resource dict with the ``slurm_`` prefix stripped and values checked."""
    if not isinstance(resources, dict):
        raise UserError(f"{where} must be a mapping of resources, got {resources!r}")
    out = {}
    for key, value in resources.items():
        name = str(key).removeprefix("slurm_")
        if name not in RESOURCE_TYPES:
            raise UserError(f"{where}: unknown resource {key!r}; use {', '.join(RESOURCE_TYPES)}")
        kind = RESOURCE_TYPES[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (kind, int))
                                  or (kind is not str and value < 0)):
            raise UserError(f"{where}: {key} must be a non-negative {kind.__name__}, got {value!r}")
        out[name] = value
    return out


def check_resources(resources: Any, where: str) -> str | None:
    """For the plugin registry: the problem with a method's ``resources``, or None."""
    try:
        normalise_resources(resources, where)
    except UserError as exc:
        return str(exc)
    return None
