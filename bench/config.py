"""A run's semantic configuration, its id and the seeds derived from it.

The run id hashes only what determines the numbers: task, profile, method, the full
method parameters (defaults filled in), width, depth, seed, the source hashes of the
method and task plugin files and of the shared code every run executes
(``SHARED_CODE``: augmentation ops, training loop, metrics, probe), and the numeric
precision when it is not the default (``--amp bf16``). Paths, devices and the order of
CLI flags never enter it, so an unchanged run is reused and an edited method file, or
an edited augmentation op, reruns instead of silently reusing records computed by
other code. (Rerunning was chosen over a warning: a warning in ``status`` still lets
stale numbers into the tables unless the user acts on it.)

This module is the bottom of the house: it imports nothing from ``bench``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
# Code that every run executes besides its method and task files, relative to ROOT.
# Record plumbing (runner, store, launchers) is left out on purpose: editing how a
# record is written does not change the numbers in it. Plugin helper files
# (methods/_*.py, datasets/_*.py) are shared by several plugins, so they count too.
SHARED_CODE = ("bench/augment/*.py", "bench/training.py", "bench/metrics.py", "bench/probe.py",
               "bench/api.py", "bench/data.py", "methods/_*.py", "datasets/_*.py")

RUN_ID_HEX_DIGITS = 16  # a run id is the first 16 hex digits of a sha256 (bench/records.py checks the form)

# The method parameter that turns an augmentation-learning method into its control:
# ``learn_augmentation: False`` keeps the augmentation at the method's initialisation
# (no search, no learning) with the same search space, retrain, model and budget.
# Declared by each such method in its ``params`` (default True); read here for the
# seed of the initialisation and by ``bench.search_gain`` to pair a method with its
# control.
CONTROL_PARAM = "learn_augmentation"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any JSON-able parts (stable across processes/machines)."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def file_hash(path: Path) -> str:
    """The first 16 hex digits of the sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=None)
def shared_code_hash(root: Path = ROOT) -> str:
    """One hash over the ``SHARED_CODE`` files under ``root`` (names and contents)."""
    files = sorted({path for pattern in SHARED_CODE for path in root.glob(pattern)})
    parts = [(str(path.relative_to(root)), file_hash(path)) for path in files]
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:16]


class PluginSources(Protocol):
    """What a run id needs from ``bench.registry.Registry`` (which sits above this
    module, so it is named by its shape, not imported): each plugin's source hash."""

    def method(self, name: str) -> Any: ...

    def task(self, name: str) -> Any: ...


def run_id_of(registry: PluginSources, config: RunConfig) -> str:
    """The run id of ``config`` with the plugin sources ``registry`` loaded."""
    return config.run_id(registry.method(config.method).source_hash, registry.task(config.task).source_hash,
                         shared_code_hash())


@dataclass(frozen=True)
class RunConfig:
    task: str
    profile: str
    method: str
    width: float = 1.0
    depth: int | None = None
    seed: int = 0
    method_params: dict[str, Any] = field(default_factory=dict, hash=False)
    amp: str = "none"  # mixed precision of training steps and predictions: none | bf16
    # Overrides of the task profile's training settings (bench.api.TRAIN_PARAMS), only
    # those that differ from the profile; absent from the id when empty, so ids from
    # before they existed still hold.
    train_params: dict[str, Any] = field(default_factory=dict, hash=False)
    # Which trial of a tuning suite this run is (0 = the defaults); not part of what
    # the experiment is (trial 0 is the plain run), recorded for the tables.
    trial: int | None = field(default=None, compare=False)

    def semantic(self) -> dict[str, Any]:
        """What the experiment is (precision aside: same seeds with and without AMP)."""
        d = asdict(self)
        d["width"] = float(d["width"])
        del d["amp"], d["trial"]
        if not d["train_params"]:
            del d["train_params"]
        return d

    def run_id(self, method_source_hash: str, task_source_hash: str, shared_code_hash: str) -> str:
        payload = {
            "config": self.semantic(),
            "method_source": method_source_hash,
            "task_source": task_source_hash,
            "shared_code": shared_code_hash,
        }
        if self.amp != "none":  # absent by default, so ids from before AMP existed still hold
            payload["amp"] = self.amp
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:RUN_ID_HEX_DIGITS]

    # Seeds. Data and model initialisation do not depend on the method, so every
    # method of a given (task, profile, seed, width, depth) sees the same splits and
    # starts from the same weights; the training randomness depends on everything.
    @property
    def data_seed(self) -> int:
        return derive_seed("data", self.task, self.profile, self.seed)

    @property
    def init_seed(self) -> int:
        return derive_seed("init", self.task, self.profile, self.seed, float(self.width), self.depth)

    @property
    def train_seed(self) -> int:
        return derive_seed("train", self.semantic())

    @property
    def augmentation_seed(self) -> int:
        """Seeds the method's construction (its initial augmentation parameters): the
        run's config without ``CONTROL_PARAM``, so a control starts from exactly the
        initial policy of its method for the same seed."""
        params = {k: v for k, v in self.method_params.items() if k != CONTROL_PARAM}
        return derive_seed("augmentation", {**self.semantic(), "method_params": params})

    @property
    def eval_seed(self) -> int:
        # Same reference transformations for every method of a seed: paired scores.
        return derive_seed("eval", self.task, self.profile, self.seed)

    def describe(self) -> str:
        """One line naming the run, for progress lines and summaries."""
        depth = f" depth={self.depth}" if self.depth is not None else ""
        return f"{self.task}/{self.profile} {self.method} width={self.width:g}{depth} seed={self.seed}"

    def label(self, defaults: dict[str, Any]) -> str:
        """Method name plus the parameters that differ from the method's defaults."""
        changed = {k: v for k, v in self.method_params.items() if defaults.get(k) != v}
        changed.update({f"train.{k}": v for k, v in self.train_params.items()})
        precision = f" [{self.amp}]" if self.amp != "none" else ""
        if not changed:
            return f"{self.method}{precision}"
        inner = ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
        return f"{self.method} ({inner}){precision}"
