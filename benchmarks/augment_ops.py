"""Cost of each augmentation op of the shared library on one training batch, relative
to a plain forward pass of the task's ``quick`` model on the same batch.

    python benchmarks/augment_ops.py [--device cpu|cuda] [--repeats 20] [--tasks mnist_rot,qm9]

For every registered task with an augmentation space: a batch of the quick profile's
size (real smoke-profile data where it is available offline, else random inputs of
the task's input shape), the median over ``--repeats`` of the op's forward (training
mode, magnitude 0.5 with gradient) and of the model's forward (training mode), with
CUDA synchronised before each clock read. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.augment import get_op  # noqa: E402
from bench.errors import UserError  # noqa: E402
from bench.registry import load_registry  # noqa: E402
from bench.timing import synchronize  # noqa: E402


def median_ms(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    fn()  # warm-up (allocations, kernels)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def batch_for(task, batch_size: int) -> torch.Tensor:
    """Real inputs where the smoke data is offline, else random ones of the input shape."""
    try:
        x = task.load("smoke", None, seed=0).train.x
        return x[torch.arange(batch_size) % len(x)].float()
    except (UserError, NotImplementedError, OSError):
        return torch.rand(batch_size, *task.input_shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tasks", help="comma-separated tasks (default: every task with an augmentation space)")
    args = parser.parse_args()
    device = torch.device(args.device)
    registry = load_registry()
    names = args.tasks.split(",") if args.tasks else sorted(registry.tasks)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"Device: {device_name}; median of {args.repeats} repeats; op magnitude 0.5, training mode.\n")
    print("| task | batch | model forward ms | op | kind | op ms | op / forward |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        task = registry.task(name).cls()
        if not task.augmentation_space or "quick" not in task.profiles:
            continue
        batch_size = task.profile("quick").batch_size
        x = batch_for(task, batch_size).to(device)
        model = task.make_model("quick", 1.0, None).to(device).train()
        forward = median_ms(lambda: model(x), device, args.repeats)
        for op_name in task.augmentation_space:
            op = get_op(op_name)
            magnitude = torch.tensor(0.5, device=device, requires_grad=True)
            cost = median_ms(lambda: op(x, magnitude, training=True, **task.augmentation_kwargs), device,
                             args.repeats)
            print(f"| {name} | {batch_size} | {forward:.2f} | {op_name} | {op.kind} | {cost:.2f} | "
                  f"{cost / forward:.2f} |")


if __name__ == "__main__":
    main()
