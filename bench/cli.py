"""Command line: ``python run_bench.py [run|status|merge|table|plot|list] ...``.

With no command, ``run`` is assumed: ``python run_bench.py`` runs the default
``quick`` suite and then writes the tables, plots and report (``run`` always does,
unless ``--no-report``). Every error a user can cause ends with one line on stderr and exit
code 2; a suite with failed runs exits with 1.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import yaml

from bench.data import OFFLINE_ENV
from bench.errors import DataUnavailable, UserError

COMMANDS = ("run", "status", "merge", "table", "plot", "report", "readme", "list")
LAUNCHERS = ("inline", "pool", "slurm")
SLURM_FLAGS = ("slurm_partition", "slurm_time", "slurm_gpus", "slurm_cpus", "slurm_mem", "slurm_config")
DEFAULT_RESULTS = Path("results")


def comma_list(kind: Callable[[str], Any], what: str, positive: bool = False,
               non_negative: bool = False) -> Callable[[str], tuple]:
    """An argparse type for ``a,b,c`` lists with one clear message on bad items;
    numbers must be finite (``nan`` and ``inf`` parse as floats, and are refused)."""
    def parse(text: str) -> tuple:
        items = [t.strip() for t in text.split(",")]
        if not all(items):
            raise argparse.ArgumentTypeError(f"empty item in {what} list {text!r}; write e.g. {what}=a,b")
        try:
            values = tuple(kind(t) for t in items)
        except ValueError:
            raise argparse.ArgumentTypeError(f"malformed {what} list {text!r}: expected comma-separated "
                                             f"{kind.__name__} values") from None
        if kind is float and not all(math.isfinite(v) for v in values):
            raise argparse.ArgumentTypeError(f"{what} must be finite numbers, got {text!r}")
        if positive and any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"{what} must be positive, got {text!r}")
        if non_negative and any(v < 0 for v in values):
            raise argparse.ArgumentTypeError(f"{what} must be >= 0, got {text!r}")
        return values
    return parse


def method_param(text: str) -> tuple[str, str, Any]:
    """``METHOD.KEY=VALUE``; VALUE is read as YAML (0.1, true, [1, 2], text)."""
    head, sep, value = text.partition("=")
    method, dot, key = head.partition(".")
    if not (sep and dot and method and key):
        raise argparse.ArgumentTypeError(f"malformed --param {text!r}: expected METHOD.KEY=VALUE, e.g. fixed.p=0.5")
    try:
        return method, key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"malformed value in --param {text!r}") from None


NAME_MAX = 255  # bytes of one path component on the usual file systems (ext4, xfs, apfs, ntfs)


def results_path(text: str) -> Path:
    """``--results-dir``: non-empty, every component a name the file system accepts,
    and inside a folder this user can write (checked before anything runs)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("--results-dir must not be empty (it would write into the working folder); "
                                         "e.g. --results-dir results")
    if "\0" in text:
        raise argparse.ArgumentTypeError("--results-dir contains a NUL character")
    path = Path(text)
    long = [p for p in path.parts if len(os.fsencode(p)) > NAME_MAX]
    if long:
        raise argparse.ArgumentTypeError(f"--results-dir has a component of {len(os.fsencode(long[0]))} bytes "
                                         f"({long[0][:20]}...); file systems accept at most {NAME_MAX}")
    existing = next((p for p in (path, *path.absolute().parents) if os.path.lexists(p)), None)
    if existing is not None and not existing.is_dir():
        raise argparse.ArgumentTypeError(f"--results-dir {text}: {existing} exists and is not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"--results-dir {text}: the folder {existing} is not writable by this user")
    return path


def _number(kind: Callable[[str], Any], what: str, ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


positive_int = _number(int, "a positive integer", lambda v: v > 0)
non_negative_int = _number(int, "a non-negative integer", lambda v: v >= 0)
positive_float = _number(float, "a positive number", lambda v: v > 0)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UserError(message)


def add_selection_args(parser: argparse.ArgumentParser) -> None:
    """The flags that say which runs a command is about (``run`` and ``status``)."""
    parser.add_argument("--suite", default="quick", help="suite name (bench/suites/*.yaml) or path to a .yaml file")
    parser.add_argument("--tasks", type=comma_list(str, "tasks"), help="comma-separated tasks (replaces the suite's)")
    parser.add_argument("--methods", type=comma_list(str, "methods"), help="comma-separated methods (replaces the suite's)")
    parser.add_argument("--param", type=method_param, action="append", default=[], metavar="METHOD.KEY=VALUE",
                        help="set a method hyper-parameter (repeatable); train.KEY=VALUE sets a shared training "
                             "setting (lr, weight_decay, epochs, batch_size) for every method; see `list`")
    parser.add_argument("--tune", type=positive_int, metavar="N",
                        help="equal-budget tuning: N configurations per method x task (trial 0 = the defaults), "
                             "selected by the validation metric in the tables")
    parser.add_argument("--max-params", type=positive_int, metavar="N",
                        help="raise (or lower) every task's bound on the model's parameter count")
    parser.add_argument("--max-depth", type=positive_int, metavar="N", help="raise every task's bound on the depth")
    parser.add_argument("--seeds", type=comma_list(int, "seeds", non_negative=True),
                        help="comma-separated integer seeds >= 0, e.g. 0,1,2")
    parser.add_argument("--widths", type=comma_list(float, "widths", positive=True),
                        help="comma-separated width multipliers, e.g. 0.5,1")
    parser.add_argument("--depths", type=comma_list(int, "depths", positive=True),
                        help="comma-separated depths, for tasks whose model family has one")
    parser.add_argument("--profile", choices=("smoke", "quick", "paper"), help="profile (replaces the suite's)")
    parser.add_argument("--amp", default="none", choices=("none", "bf16"),
                        help="mixed precision of training steps and predictions (part of the run id)")
    parser.add_argument("--results-dir", type=results_path, default=DEFAULT_RESULTS,
                        help="output folder (default: results/)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="run_bench.py", description="invbench: learned invariance vs bilevel augmentation search. "
                    "With no command, `run` the default quick suite.")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    run = sub.add_parser("run", help="run a suite (default: quick) and write one record per run")
    add_selection_args(run)
    run.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                     help="device (default: cpu; auto: CUDA when present)")
    run.add_argument("--deterministic", action="store_true",
                     help="deterministic kernels (otherwise cudnn.benchmark picks the fastest)")
    run.add_argument("--data-root", type=Path, help="folder holding downloaded datasets (see README, per task)")
    run.add_argument("--offline", action="store_true", help="never download; tasks without local data are skipped")
    run.add_argument("--force", action="store_true", help="rerun runs that already have an ok record")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress output (off a terminal it is one line per finished run, not bars)")
    run.add_argument("--no-report", action="store_true",
                     help="only run: do not write the tables, plots and report afterwards")
    run.add_argument("--launcher", choices=LAUNCHERS,
                     help="inline (this process; the default), pool (local worker processes, -j N), "
                          "slurm (submitit job arrays)")
    run.add_argument("-j", "--jobs", type=positive_int,
                     help="worker processes of the pool launcher (implies --launcher pool; default 2)")
    slurm = run.add_argument_group("slurm launcher (also --slurm-config FILE.yaml; see README)")
    slurm.add_argument("--slurm-partition", help="partition")
    slurm.add_argument("--slurm-time", type=positive_int, help="time limit per run, minutes (default 60)")
    slurm.add_argument("--slurm-gpus", type=non_negative_int, help="GPUs per run (default 0)")
    slurm.add_argument("--slurm-cpus", type=positive_int, help="CPUs per run (default 1)")
    slurm.add_argument("--slurm-mem", type=positive_float, help="memory per run, GB (default: the cluster's)")
    slurm.add_argument("--slurm-config", type=Path, help="YAML file of resources (flags given here win)")
    slurm.add_argument("--slurm-cluster", default=None, choices=("slurm", "local", "debug"),
                       help="slurm (default); local or debug run the same path without a cluster (submitit's "
                            "local processes / in-process executor)")

    status = sub.add_parser("status", help="counts of ok / failed / skipped / running / crashed / missing runs of a suite")
    add_selection_args(status)

    merge = sub.add_parser("merge", help="merge results folders: per run the newest ok record wins")
    merge.add_argument("sources", nargs="+", type=Path, metavar="DIR", help="results folders (each with runs/)")
    merge.add_argument("--into", type=Path, required=True, help="results folder to merge into (created if needed)")

    for name, text in (("table", "write CSV and Markdown tables from the records"),
                       ("plot", "write PNG and PDF plots from the records"),
                       ("report", "write report.html (self-contained) and report.md from the records")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--results-dir", type=results_path, default=DEFAULT_RESULTS,
                       help="folder with runs/ (default: results/)")

    readme = sub.add_parser("readme", help="regenerate (--write) or check (--check) the README's published "
                            "tables from committed records (see docs/notes/records.md)")
    action = readme.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 naming each generated block the records "
                        "do not reproduce")
    action.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    readme.add_argument("--records", type=Path, default=Path("docs/results"),
                        help="folder of SUITE/runs/*.json (default: docs/results)")
    readme.add_argument("--readme", type=Path, default=Path("README.md"), help="file to check or write")
    readme.add_argument("--seed-noise", action="store_true",
                        help="with --check, for records made on another machine or thread count: each mean ± std "
                             "cell must agree with the README's under seed noise (Welch's t-test, family-wise 5 %% "
                             "over all cells); time columns and the cost table not compared")

    listing = sub.add_parser("list", help="list methods, tasks and suites with their parameters")
    listing.add_argument("--ops", action="store_true",
                         help="list the augmentation ops per modality with the invariance each one assumes")
    return parser


def list_ops() -> int:
    from bench.augment import MODALITIES, ops_for
    from bench.probe import probe_magnitude

    for modality in MODALITIES:
        print(f"{modality}:")
        for op in ops_for(modality):
            low, high = op.low, op.high
            scale = f"probability {low:g}-{high:g}" if op.kind == "on_off" else f"{low:g}-{high:g} {op.unit}".strip()
            print(f"  {op.name:<16} [{op.kind}; {scale}; probed at magnitude {probe_magnitude(op.kind):g}]")
            print(f"      {op.assumption}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    if args.ops:
        return list_ops()
    from bench.api import TRAIN_PARAMS
    from bench.registry import load_registry
    from bench.suites import load_suite, suite_names

    reg = load_registry()
    print("Methods:")
    for name, plugin in sorted(reg.methods.items()):
        modalities = ", ".join(plugin.cls.modalities) if plugin.cls.modalities else "all modalities"
        print(f"  {name:<16} {plugin.description}  [{plugin.cls.kind}; {modalities}]")
        for key, param in plugin.declared.items():
            per_profile = {p: o[key] for p, o in plugin.cls.profile_params.items() if key in o}
            extra = f"   (default in {', '.join(f'{p}: {v!r}' for p, v in per_profile.items())})" if per_profile else ""
            print(f"      {key} = {param.default!r}   [{param.describe()}]{extra}")
    print("Shared training settings (--param train.KEY=VALUE; null: the task profile's value):")
    for key, param in TRAIN_PARAMS.items():
        print(f"      {key} = {param.default!r}   [{param.describe()}]   {param.help}")
    print("Tasks:")
    for name, plugin in sorted(reg.tasks.items()):
        cls = plugin.cls
        print(f"  {name:<16} {plugin.description}")
        print(f"      modality={cls.modality} metric={cls.metric} profiles={','.join(cls.profiles)}")
        print(f"      reference symmetry: {cls.reference_symmetry}")
        print(f"      model bounds: {cls.max_params:,} parameters, depth {cls.max_depth} (--max-params, --max-depth)")
    print("Suites:")
    for name in suite_names():
        print(f"  {name:<16} {load_suite(name).description}")
    if reg.errors:
        print("Plugins that failed to load:")
        for source, error in reg.errors:
            print(f"  {source}: {error}")
    return 0


def plan_runs(args: argparse.Namespace, registry: Any) -> tuple[Any, list[Any]]:
    """The suite named by the selection flags, expanded into its runs."""
    from dataclasses import replace

    from bench.api import TRAIN_PARAMS
    from bench.params import normalise
    from bench.suites import MethodSpec, expand, load_suite

    suite = load_suite(args.suite)
    methods = tuple(MethodSpec(m) for m in args.methods) if args.methods else None
    suite = suite.with_overrides(tasks=args.tasks, methods=methods, seeds=args.seeds, widths=args.widths,
                                 depths=args.depths, profile=args.profile)
    params: dict[str, dict[str, Any]] = {}
    for method, key, value in args.param:
        if method != "train" and method not in {m.name for m in suite.methods}:
            raise UserError(f"--param names method {method!r}, which is not among the methods of this run")
        params.setdefault(method, {})[key] = value
    for method, values in params.items():  # checked here, to name --param as the source
        declared = TRAIN_PARAMS if method == "train" else registry.method(method).declared
        params[method] = normalise(declared, values, method, "--param")
    suite = suite.with_overrides(methods=tuple(MethodSpec(m.name, {**m.params, **params.get(m.name, {})})
                                               for m in suite.methods),
                                 train={**suite.train, **params.get("train", {})}, tune_trials=args.tune,
                                 max_params=args.max_params, max_depth=args.max_depth)
    configs, left_out = expand(suite, registry, strict=bool(args.tasks and args.methods))
    if args.command == "run":
        for line in left_out:
            print(f"note: not applicable, left out: {line}", file=sys.stderr)
    return suite, [replace(c, amp=args.amp) for c in configs]


def cmd_run(args: argparse.Namespace) -> int:
    from bench import launch, store
    from bench.registry import load_registry
    from bench.runner import RunOptions, record_skip, resolve_device
    from bench.slurm import load_settings

    if args.offline:
        os.environ[OFFLINE_ENV] = "1"
    if args.data_root is not None and not args.data_root.is_dir():
        raise UserError(f"--data-root {args.data_root} is not a folder")
    resolve_device(args.device)
    launcher = args.launcher or ("pool" if args.jobs else "inline")
    if args.jobs and launcher != "pool":
        raise UserError(f"-j/--jobs is for --launcher pool, not {launcher}")
    given = [f"--{f.replace('_', '-')}" for f in (*SLURM_FLAGS, "slurm_cluster") if getattr(args, f) is not None]
    if given and launcher != "slurm":
        raise UserError(f"{', '.join(given)} need(s) --launcher slurm")
    slurm_settings = None
    if launcher == "slurm":
        slurm_settings = load_settings({"partition": args.slurm_partition, "time": args.slurm_time,
                                        "gpus": args.slurm_gpus, "cpus": args.slurm_cpus, "mem": args.slurm_mem},
                                       args.slurm_config, args.slurm_cluster or "slurm")
    registry = load_registry()
    for source, error in registry.errors:
        print(f"warning: plugin {source} failed to load: {error}", file=sys.stderr)

    suite, configs = plan_runs(args, registry)
    store.prepare_results_dir(args.results_dir)
    options = RunOptions(args.results_dir, args.device, args.data_root, progress=not args.no_progress,
                         deterministic=args.deterministic)
    summary = launch.Summary()
    todo = launch.pending(configs, options, args.force, summary)

    unavailable: dict[str, str] = {}
    for task_name in dict.fromkeys(c.task for c in todo):
        try:
            registry.task(task_name).cls().prepare(suite.profile, args.data_root)
        except DataUnavailable as exc:
            if args.tasks:
                raise UserError(f"task {task_name!r} ({suite.profile} profile): {exc}") from None
            unavailable[task_name] = str(exc)
    for config in [c for c in todo if c.task in unavailable]:
        summary.add(config, record_skip(config, options, unavailable[config.task]))
    todo = [c for c in todo if c.task not in unavailable]

    print(f"suite {suite.name} ({suite.profile} profile): {len(configs)} runs, {len(todo)} to run, "
          f"records in {store.runs_dir(args.results_dir)}", file=sys.stderr)
    if launcher == "pool":
        launch.run_pool(todo, options, summary, args.jobs or 2)
    elif launcher == "slurm":
        from bench.slurm import run_slurm

        run_slurm(todo, options, slurm_settings, summary)
    else:
        launch.run_inline(todo, options, summary)
    print(summary.report(args.results_dir))
    if not args.no_report:
        try:
            report_path = write_outputs(args.results_dir)
        except UserError as exc:  # e.g. nothing ran and no records exist yet: the run's own status stands
            print(f"no report written: {exc}", file=sys.stderr)
        else:
            print(f"report: {report_path} (tables in {args.results_dir / 'tables'}, plots in "
                  f"{args.results_dir / 'plots'})")
    return 1 if summary.failures else 0


def write_outputs(results_dir: Path) -> Path:
    """Tables, plots and the report from every record in ``results_dir``; the report's path."""
    from bench import report, store, tables

    records = store.require_records(results_dir)
    with writing("the tables, plots and report", results_dir):
        tables.write_tables(records, results_dir / "tables")
        html_path, _ = report.write_report(records, results_dir)  # writes the plots too
    return html_path


def cmd_status(args: argparse.Namespace) -> int:
    from bench.registry import load_registry
    from bench.status import format_status, suite_status

    if args.results_dir.exists() and not args.results_dir.is_dir():
        raise UserError(f"results dir {args.results_dir} is a file, not a folder")
    registry = load_registry()
    suite, configs = plan_runs(args, registry)
    print(f"suite {suite.name} ({suite.profile} profile)")
    print(format_status(suite_status(configs, registry, args.results_dir), args.results_dir))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from bench.merge import merge

    counts = merge(args.sources, args.into)
    archived = f" (the old records kept in {args.into / 'runs' / 'archive'})" if counts["replaced"] else ""
    print(f"merged {len(args.sources)} folder(s) into {args.into}: {counts['added']} added, "
          f"{counts['replaced']} replaced{archived}, {counts['kept']} kept"
          + (f", {counts['not written']} NOT written (see the errors above)" if counts["not written"] else ""))
    return 1 if counts["not written"] else 0


@contextlib.contextmanager
def writing(what: str, folder: Path) -> Iterator[None]:
    """A file system refusal while writing outputs (a file where a folder should be, no
    space) is one clear line, never a traceback; the records are only read."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise UserError(f"cannot write {what} in {folder}: {exc.strerror or exc}{where}") from None


def cmd_table(args: argparse.Namespace) -> int:
    from bench import store, tables

    records = store.require_records(args.results_dir)
    with writing("tables", args.results_dir / "tables"):
        written = tables.write_tables(records, args.results_dir / "tables")
    for path in written:
        print(path)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from bench import plots, store

    records = store.require_records(args.results_dir)
    with writing("plots", args.results_dir / "plots"):
        written = plots.write_plots(records, args.results_dir / "plots")
    if not written:
        raise UserError(f"no plot drawn: no record in {store.runs_dir(args.results_dir)} is ok "
                        f"(`table --results-dir {args.results_dir}` lists the failed and skipped runs with reasons)")
    for path in written:
        print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench import report, store

    records = store.require_records(args.results_dir)
    with writing("the report", args.results_dir):
        written = report.write_report(records, args.results_dir)
    for path in written:
        print(path)
    return 0


def cmd_readme(args: argparse.Namespace) -> int:
    from bench.readme import readme_command

    if args.seed_noise and not args.check:
        raise UserError("--seed-noise goes with --check")
    return readme_command(args.readme, args.records, args.write, args.seed_noise)


def one_command_launch() -> list[str]:
    """The launcher of ``python run_bench.py`` without arguments: one pool worker (one
    torch thread) per usable core when there are 2 or more. Measured on 2 idle cores,
    the default suite's qm9 runs of one seed took 121 s this way against 262 s inline
    with 2 threads (``farm-bench``, 2026-12-05): these small models do not use a second
    thread well, a second process does."""
    from bench.threads import usable_cores

    cores = usable_cores()
    return ["-j", str(cores)] if cores >= 2 else []


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
            raise UserError(f"unknown command {argv[0]!r}; use one of: {', '.join(COMMANDS)}")
        if not argv:
            argv = ["run", *one_command_launch()]
        elif argv[0] not in (*COMMANDS, "-h", "--help"):
            argv = ["run", *argv]
        args = build_parser().parse_args(argv)
        commands = {"run": cmd_run, "status": cmd_status, "merge": cmd_merge, "table": cmd_table, "plot": cmd_plot,
                    "report": cmd_report, "readme": cmd_readme, "list": cmd_list}
        return commands[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; rerun the same command to resume", file=sys.stderr)
        return 130
