"""``--launcher slurm``: runs as SLURM job arrays through submitit.

Resources come, later ones winning, from: the defaults below, the top level of
``--slurm-config FILE.yaml``, the ``--slurm-*`` flags, the method file's
``resources`` class attribute, and the YAML's ``methods: {<name>: {...}}`` section
(so the user has the last word). Runs are grouped by their resources and each group
is one job array (``executor.map_array``); every job calls the same
``bench.runner.execute_run`` and writes the same atomic record as the other
launchers, so a half-finished cluster sweep can be finished locally.

The YAML file takes the keys partition, time (minutes), gpus, cpus, mem (GB) and
passes any other ``slurm_*`` key to submitit unchanged (e.g. ``slurm_account``,
``slurm_qos``, ``slurm_array_parallelism``)::

    partition: gpu
    time: 120
    gpus: 1
    slurm_account: myproject
    methods:
      dada: {time: 480}

``--slurm-cluster local`` (jobs as local processes) and ``debug`` (in this process)
run the same code path without a cluster, through submitit's own executors.
"""
from __future__ import annotations

import os
import shutil
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from bench.config import run_id_of
from bench.errors import UserError
from bench.progress import SuiteProgress
from bench.threads import usable_cores
from bench.resources import DEFAULTS, RESOURCE_TYPES, normalise_resources

ROOT = Path(__file__).resolve().parent.parent
CLUSTERS = ("slurm", "local", "debug")
POLL_S = {"slurm": 15.0, "local": 0.5, "debug": 0.0}


@dataclass(frozen=True)
class SlurmSettings:
    cluster: str = "slurm"
    base: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)  # from the YAML's methods section
    extra: dict[str, Any] = field(default_factory=dict)  # other slurm_* parameters, passed through

    def resources_for(self, method_name: str, method_resources: dict[str, Any]) -> dict[str, Any]:
        return {**self.base, **normalise_resources(method_resources, f"method {method_name} resources"),
                **self.per_method.get(method_name, {})}


def load_settings(flags: dict[str, Any], config_file: Path | None, cluster: str) -> SlurmSettings:
    """Settings from the ``--slurm-*`` flags (None when not given) and the YAML file."""
    if cluster not in CLUSTERS:
        raise UserError(f"unknown --slurm-cluster {cluster!r}; use {', '.join(CLUSTERS)}")
    raw: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise UserError(f"--slurm-config {config_file} is not a file")
        try:
            raw = yaml.safe_load(config_file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"--slurm-config {config_file} is not valid YAML ({exc})") from None
        if not isinstance(raw, dict):
            raise UserError(f"--slurm-config {config_file} must be a mapping (partition: ..., time: ...)")
    raw = dict(raw)
    methods = raw.pop("methods", {}) or {}
    if not isinstance(methods, dict):
        raise UserError(f"--slurm-config {config_file}: methods must map method names to resources")
    where = f"--slurm-config {config_file}"
    extra = {k: raw.pop(k) for k in list(raw)
             if isinstance(k, str) and k.startswith("slurm_") and k.removeprefix("slurm_") not in RESOURCE_TYPES}
    base = {**DEFAULTS, **normalise_resources(raw, where),
            **normalise_resources({k: v for k, v in flags.items() if v is not None}, "--slurm flags")}
    per_method = {str(name): normalise_resources(res, f"{where} methods.{name}") for name, res in methods.items()}
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise UserError("--launcher slurm: sbatch is not on this machine; run from the cluster's login node, "
                        "or pass --slurm-cluster local to try the slurm path here")
    return SlurmSettings(cluster, base, per_method, extra)


def executor_parameters(resources: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """submitit's names for our resources (generic ones, understood by every executor)."""
    params: dict[str, Any] = {"timeout_min": resources["time"], "gpus_per_node": resources["gpus"],
                              "cpus_per_task": resources["cpus"], "tasks_per_node": 1, "nodes": 1,
                              "name": "invbench"}
    if resources["mem"] is not None:
        params["mem_gb"] = resources["mem"]
    if resources["partition"] is not None:
        params["slurm_partition"] = resources["partition"]
    return {**params, **extra}


def run_job(config: Any, options: Any) -> dict[str, Any]:
    """The body of one array task: threads for the CPUs SLURM gave us, then the run."""
    import torch

    from bench.runner import execute_run

    # SLURM's cores are ours alone (the node's load average counts other jobs' cores).
    torch.set_num_threads(usable_cores())
    return execute_run(config, options)


def run_slurm(configs: list[Any], options: Any, settings: SlurmSettings, summary: Any) -> None:
    """Submit one job array per resource group, then wait, counting finished runs."""
    import submitit

    from bench.registry import load_registry

    if not configs:
        return
    # Jobs unpickle bench.* functions: make the checkout importable wherever they start.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    registry = load_registry()
    groups: dict[tuple, list[Any]] = defaultdict(list)
    for config in configs:
        resources = settings.resources_for(config.method, registry.method(config.method).cls.resources)
        groups[tuple(sorted(resources.items()))].append(config)

    folder = Path(options.results_dir) / "slurm" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster=settings.cluster)
    # Jobs may start in another folder: absolute paths, no progress bars in their logs.
    job_options = replace(options, progress=False, results_dir=Path(options.results_dir).resolve(),
                          data_root=Path(options.data_root).resolve() if options.data_root is not None else None)
    jobs: list[tuple[Any, Any]] = []
    for key, group in groups.items():
        executor.update_parameters(**executor_parameters(dict(key), settings.extra))
        submitted = executor.map_array(run_job, group, [job_options] * len(group))
        jobs += list(zip(submitted, group))
        print(f"submitted {len(group)} run(s) as job array {submitted[0].job_id.split('_')[0]} "
              f"with {dict(key)}", file=sys.stderr)
    print(f"submitit logs in {folder.parent}; `python run_bench.py status` shows progress", file=sys.stderr)

    config_of = {id(job): config for job, config in jobs}
    suite_progress = SuiteProgress(len(jobs), enabled=options.progress)
    try:
        for job in submitit.helpers.as_completed([job for job, _ in jobs], poll_frequency=POLL_S[settings.cluster]):
            config = config_of[id(job)]
            try:
                record = job.result()
            except Exception as exc:  # noqa: BLE001 - the job died (timeout, node failure): no record
                message = str(exc).strip().splitlines()
                record = {"run_id": run_id_of(registry, config), "status": "failed",
                          "error": f"job {job.job_id} died without a record: "
                                   f"{message[-1] if message else type(exc).__name__}"}
            summary.add(config, record)
            suite_progress.finished(config.describe(), record)
    except KeyboardInterrupt:
        if settings.cluster == "slurm":
            print("stopped waiting; the jobs keep running on the cluster and write their records. "
                  "`python run_bench.py status` shows them.", file=sys.stderr)
        raise
    finally:
        suite_progress.close()
