"""Execute runs and write their records.

``execute_run`` is the one function every launcher calls: it builds the task data,
the model and the method, times search / train / eval, scores invariance, and writes
one self-describing record, whatever happens (ok, failed with the traceback, or
skipped with the reason). It never raises for a problem inside the run, nor for a
record that cannot be written (``save_record``). Ctrl-C (KeyboardInterrupt) is
let through: the record of the run it cuts short is not written, and the atomic
write leaves no temporary file. While it
runs, a heartbeat file (``bench.heartbeat``) tells ``status`` the run is alive.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import diagnostics, envinfo, store
from bench.heartbeat import DEFAULT_INTERVAL_S, Heartbeat
from bench.api import Method, RunContext, TaskData
from bench.config import RunConfig, run_id_of, shared_code_hash
from bench.errors import DataUnavailable, NonFiniteError, UserError
from bench.metrics import METRICS, invariance_score
from bench.probe import invariance_probe
from bench.progress import Progress
from bench.registry import Registry, load_registry
from bench.timing import PhaseTimer, peak_memory, reset_peak_memory
from bench.training import autocast, evaluate_split, fit

RECORD_SCHEMA = 1


@dataclass(frozen=True)
class RunOptions:
    """How (not what) to run: never part of the run id. Picklable for launchers."""

    results_dir: Path
    device: str = "cpu"
    data_root: Path | None = None
    progress: bool = True
    deterministic: bool = False  # deterministic algorithms; else cudnn.benchmark picks the fastest kernels
    heartbeat_s: float = DEFAULT_INTERVAL_S


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was requested but no CUDA GPU is visible; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise UserError(f"unknown device {name!r}; use cpu, cuda or auto")
    return torch.device(name)


def set_determinism(deterministic: bool) -> None:
    """``--deterministic``: deterministic kernels (warning, not failing, where an op
    has none, e.g. grid_sample's CUDA backward); otherwise let cuDNN benchmark
    convolution algorithms for speed. Same seed, same CPU gives the same numbers
    either way."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


_DATA_CACHE: dict[tuple, TaskData] = {}


def load_task_data(registry: Registry, config: RunConfig, data_root: Path | None) -> TaskData:
    """The task's splits on the CPU, loaded once per process for every method."""
    key = (config.task, config.profile, config.data_seed, str(data_root))
    if key not in _DATA_CACHE:
        task = registry.task(config.task).cls()
        seed_everything(config.data_seed)
        _DATA_CACHE.clear()  # keep one task in memory at a time
        _DATA_CACHE[key] = task.load(config.profile, data_root, config.data_seed)
    return _DATA_CACHE[key]


def _base_record(registry: Registry, config: RunConfig, run_id: str, device: torch.device) -> dict[str, Any]:
    method = registry.method(config.method)
    task_cls = registry.task(config.task).cls
    return {
        "schema": RECORD_SCHEMA,
        "run_id": run_id,
        **config.semantic(),
        "label": config.label(method.defaults_for(config.profile)),
        "trial": config.trial,
        "method_kind": method.cls.kind,
        "modality": task_cls.modality,
        "metric": task_cls.metric,
        "higher_is_better": METRICS[task_cls.metric].higher_is_better,
        "source_hashes": {"method": method.source_hash, "task": registry.task(config.task).source_hash,
                          "shared": shared_code_hash()},
        "status": None,
        "error": None,
        "traceback": None,
        "amp": config.amp,
        "device": str(device),
        "versions": envinfo.library_versions(),
        "git": envinfo.git_commit(),
        "host": envinfo.host(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def build_method(registry: Registry, ctx: RunContext, model: torch.nn.Module) -> Method:
    """The run's method on ``ctx.device``, built under ``config.augmentation_seed`` (a
    control and its method start from the same augmentation), then the global RNG
    seeded with the run's train seed."""
    config = ctx.config
    seed_everything(config.augmentation_seed)
    method = registry.method(config.method).cls(ctx, model, dict(config.method_params)).to(ctx.device)
    seed_everything(config.train_seed)
    return method


def _train_and_evaluate(registry: Registry, config: RunConfig, options: RunOptions, device: torch.device,
                        timer: PhaseTimer, progress: Progress) -> dict[str, Any]:
    task = registry.task(config.task).cls()
    profile = replace(task.profile(config.profile), **config.train_params)  # --param train.*
    with timer.phase("load"):
        data = load_task_data(registry, config, options.data_root).to(device)

    def make_model() -> torch.nn.Module:
        return task.make_model(config.profile, config.width, config.depth).to(device)

    seed_everything(config.init_seed)
    model = make_model()  # same initial weights for every method of this seed
    ctx = RunContext(config, task, profile, data, device, make_model, progress)
    method = build_method(registry, ctx, model)
    generator = torch.Generator().manual_seed(config.train_seed)

    start_state = diagnostics.snapshot(method.augmentation_state())  # untimed, as every snapshot
    with timer.phase("search"):
        policy = method.search()
    searched_state = diagnostics.snapshot(method.augmentation_state())
    history = fit(method, timer, generator)

    out: dict[str, Any] = {"history": history, "policy": policy,
                           "learned_augmentation": method.learned_augmentation(),
                           "learning": diagnostics.learning_record(start_state, searched_state,
                                                                   diagnostics.snapshot(method.augmentation_state())),
                           "search_history": method.search_history or None}
    with timer.phase("eval"):
        out["test"] = evaluate_split(method, data.test, profile.eval_batch_size)
        out["val"] = evaluate_split(method, data.val, profile.eval_batch_size) if data.val is not None else None
        method.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
                autocast(device, config.amp):
            seed_everything(config.eval_seed)
            represent = method.predict if task.invariance_representation == "output" else method.embed
            out["invariance"] = invariance_score(
                represent, method.predict if task.is_classification else None, task.reference_transform,
                data.test.x, profile.eval_batch_size, torch.Generator().manual_seed(config.eval_seed))
        out["invariance"]["group"] = task.reference_symmetry
    with timer.phase("probe"), torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        out["invariance_probe"] = invariance_probe(represent, task.augmentation_space, dict(task.augmentation_kwargs),
                                                   data.test.x, profile.eval_batch_size, config.eval_seed)
    primary = out["test"][task.metric]
    if not np.isfinite(primary):
        raise NonFiniteError(f"test {task.metric} is {primary}")
    out["n_params"] = sum(p.numel() for p in model.parameters())
    out["n_params_method"] = sum(p.numel() for p in method.parameters()) - out["n_params"]
    return out


def execute_run(config: RunConfig, options: RunOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run one configuration and write its record; return the record."""
    registry = load_registry()
    progress = progress or Progress(enabled=options.progress)
    run_id = run_id_of(registry, config)
    device = resolve_device(options.device)
    with Heartbeat(options.results_dir, run_id, options.heartbeat_s):
        return _execute(registry, config, options, progress, run_id, device)


def _execute(registry: Registry, config: RunConfig, options: RunOptions, progress: Progress, run_id: str,
             device: torch.device) -> dict[str, Any]:
    record = _base_record(registry, config, run_id, device)
    set_determinism(options.deterministic)
    # CPU numbers are reproducible for a given thread count (reductions split by thread).
    record.update(deterministic=options.deterministic, cudnn_benchmark=torch.backends.cudnn.benchmark,
                  torch_threads=torch.get_num_threads())
    timer = PhaseTimer(device)
    reset_peak_memory(device)
    start = time.perf_counter()
    try:
        result = _train_and_evaluate(registry, config, options, device, timer, progress)
        record.update(result)
        record["status"] = "ok"
    except DataUnavailable as exc:
        record.update(status="skipped", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a failing run is recorded, the suite goes on
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        progress.close()
    record.update(
        test_metric=(record.get("test") or {}).get(record["metric"]),
        val_metric=(record.get("val") or {}).get(record["metric"]),
        load_s=timer.get("load"), search_s=timer.get("search"), train_s=timer.get("train"),
        eval_s=timer.get("eval"), probe_s=timer.get("probe"),
    )
    record["total_s"] = record["search_s"] + record["train_s"] + record["eval_s"]
    record["wall_s"] = time.perf_counter() - start
    record["peak_memory_mb"], record["peak_memory_kind"] = peak_memory(device)
    return save_record(options.results_dir, record)


def save_record(results_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``record`` to ``runs/<run_id>.json``; return it. When that write fails
    (the path is a folder, the disk is full, a value is not JSON), the run's result is
    not lost and the suite goes on: the record is kept in ``unsaved/`` of the results
    folder (or, if even that fails, printed on stderr), and the returned record says
    why under ``unsaved`` (the launchers count it as a failure)."""
    try:
        store.write_record(results_dir, record)
        return record
    except Exception as exc:  # noqa: BLE001 - one run's unwritable record must not end the suite
        cause = f"cannot write {store.record_path(results_dir, record['run_id'])}: {type(exc).__name__}: {exc}"
    try:
        kept = store.write_unsaved(results_dir, record)
        where = f"the result is kept in {kept}"
    except Exception as exc:  # noqa: BLE001 - last resort: the numbers on stderr
        where = f"and not in unsaved/ either ({type(exc).__name__}: {exc}); the record was printed above"
        print(f"unsaved record of run {record['run_id']}: "
              f"{json.dumps(record, default=str, sort_keys=True)}", file=sys.stderr)
    print(f"error: {cause}; {where}", file=sys.stderr)
    return {**record, "unsaved": f"{cause}; {where}"}


def record_skip(config: RunConfig, options: RunOptions, reason: str) -> dict[str, Any]:
    """Write a skipped record (e.g. the task's data is unavailable here)."""
    registry = load_registry()
    record = _base_record(registry, config, run_id_of(registry, config), resolve_device(options.device))
    record.update(status="skipped", error=reason, test_metric=None, val_metric=None, load_s=0.0, search_s=0.0,
                  train_s=0.0, eval_s=0.0, probe_s=0.0, total_s=0.0, wall_s=0.0)
    return save_record(options.results_dir, record)
