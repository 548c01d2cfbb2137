"""Training-step time per (task, method), and the share of it spent in augmentation
and in data handling, measured with CUDA synchronisation around every timed span.

    python benchmarks/step_time.py                          # CPU, quick-profile models
    python benchmarks/step_time.py --device cuda --profile paper --amp bf16

Each task that declares ``input_shape`` gets synthetic data of that shape (uniform
inputs; random labels or regression targets), kept on the device as the harness
keeps real data. One step is the harness's own: fetch a batch from the
device-resident split (``bench.training.iterate_batches``: the data handling),
the method's ``training_loss`` under the run's autocast (augmentation included),
backward and the optimiser step. Augmentation time is the time inside the task's
``fixed_augment``, bracketed by synchronisations; those extra synchronisations
cost a GPU a little overlap, so the shares are upper bounds. Warm-up steps are
excluded. Prints a Markdown table naming the device.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import RunContext, Split, TaskData  # noqa: E402
from bench.config import RunConfig  # noqa: E402
from bench.progress import Progress  # noqa: E402
from bench.registry import load_registry  # noqa: E402
from bench.runner import resolve_device, set_determinism  # noqa: E402
from bench.timing import synchronize  # noqa: E402
from bench.training import autocast, iterate_batches, make_optimizer  # noqa: E402


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    model = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores" if hasattr(os, "getloadavg") else ""
    return f"CPU {model}, {torch.get_num_threads()} torch threads (torch {torch.__version__}){load}"


def synthetic_split(task: Any, n: int, generator: torch.Generator) -> Split:
    x = torch.rand(n, *task.input_shape, generator=generator)
    if task.is_classification:
        y = torch.randint(task.num_classes, (n,), generator=generator)
    else:
        y = torch.randn(n, generator=generator)
    return Split(x, y)


class SpanTimer:
    """Seconds spent inside a wrapped function, synchronised on both sides."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, 0.0

    def wrap(self, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            synchronize(self.device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            synchronize(self.device)
            self.seconds += time.perf_counter() - start
            return out
        return timed


def measure(task_name: str, method_name: str, profile_name: str, device: torch.device, amp: str, steps: int,
            warmup: int, n: int) -> dict[str, float]:
    registry = load_registry()
    task = registry.task(task_name).cls()
    profile = task.profile(profile_name)
    generator = torch.Generator().manual_seed(0)
    data = TaskData(synthetic_split(task, n, generator), None, synthetic_split(task, 8, generator)).to(device)
    augment = SpanTimer(device)
    task.fixed_augment = augment.wrap(task.fixed_augment)  # shadows the method on this instance only

    def make_model() -> torch.nn.Module:
        return task.make_model(profile_name, 1.0, None).to(device)

    config = RunConfig(task_name, profile_name, method_name, amp=amp)
    ctx = RunContext(config, task, profile, data, device, make_model, Progress(enabled=False))
    plugin = registry.method(method_name)
    method = plugin.cls(ctx, make_model(), plugin.defaults_for(profile_name)).to(device)
    method.train()
    optimizer = make_optimizer(method.param_groups(), profile)
    batches = iterate_batches(data.train, profile.batch_size, shuffle=True, generator=generator)
    step_s = data_s = augment_s = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            augment.seconds = 0.0
        synchronize(device)
        start = time.perf_counter()
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iterate_batches(data.train, profile.batch_size, shuffle=True, generator=generator)
            x, y = next(batches)
        synchronize(device)
        fetched = time.perf_counter()
        with autocast(device, amp):
            loss, _ = method.training_loss(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        if i >= warmup:
            step_s += time.perf_counter() - start
            data_s += fetched - start
    augment_s = augment.seconds
    return {"batch": profile.batch_size, "step_ms": 1000 * step_s / steps, "augment": augment_s / step_s,
            "data": data_s / step_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--profile", default="quick", help="profile whose model and batch size are timed")
    parser.add_argument("--methods", default="erm,fixed")
    parser.add_argument("--tasks", help="comma-separated (default: every task with an input_shape)")
    parser.add_argument("--amp", default="none", choices=("none", "bf16"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--examples", type=int, default=1024, help="synthetic training examples per task")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    set_determinism(False)  # cudnn.benchmark on, as in a run without --deterministic
    registry = load_registry()
    tasks = args.tasks.split(",") if args.tasks else sorted(n for n, p in registry.tasks.items() if p.cls.input_shape)
    rows = []
    for task_name in tasks:
        for method_name in args.methods.split(","):
            r = measure(task_name, method_name, args.profile, device, args.amp, args.steps, args.warmup, args.examples)
            rows.append(f"| {task_name} | {method_name} | {r['batch']} | {r['step_ms']:.2f} | "
                        f"{100 * r['augment']:.1f} | {100 * r['data']:.1f} |")
            print(rows[-1], file=sys.stderr)
    print(f"Device: {device_name(device)}; profile {args.profile} models and batch sizes, amp {args.amp}, "
          f"mean over {args.steps} steps after {args.warmup} warm-up steps.\n")
    print("| task | method | batch | step (ms) | augmentation (% of step) | data handling (% of step) |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
