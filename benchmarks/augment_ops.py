"""Cost of each augmentation op of the shared library on one training batch, relative
to a plain forward pass of the task's ``quick`` model on the same batch.

    python benchmarks/augment_ops.py [--device cpu|cuda] [--repeats 20] [--tasks mnist_rot,qm9]
    python benchmarks/augment_ops.py --kornia        # hand-written vs kornia, per image op

``--kornia`` times, per AutoAugment image op with a kornia counterpart of the same
semantics, our hand-written version against kornia's on a batch of 128 RGB 32x32
images with per-sample parameters (forward only, as in a search step's augmentation);
an op is kornia-backed in bench/augment/image.py unless kornia is slower by more than
10 %. The hand-written equalize and solarize, replaced by kornia, are kept below to be
timed.

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


def equalize_by_hand(x: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.equalize per channel, batched (bench/augment/image.py before kornia)."""
    b, c, h, w = x.shape
    levels = (x.detach().clamp(0, 1) * 255).round().long().reshape(b * c, h * w)
    hist = torch.zeros(b * c, 256, device=x.device, dtype=torch.float64)
    hist.scatter_add_(1, levels, torch.ones_like(levels, dtype=torch.float64))
    last_nonzero = hist.gt(0).to(torch.int64).cumsum(1).argmax(1, keepdim=True)
    step = ((hist.sum(1, keepdim=True) - hist.gather(1, last_nonzero)) / 255).floor()
    before = torch.cumsum(hist, 1) - hist
    lut = ((before + (step / 2).floor()) / step.clamp_min(1)).floor().clamp(0, 255)
    out = torch.where(step > 0, lut.gather(1, levels) / 255, levels.double() / 255)
    return out.to(x.dtype).reshape(b, c, h, w)


KORNIA_BACKED = {"equalize": "kornia", "solarize": "kornia"}


def kornia_table(device: torch.device, repeats: int) -> None:
    import kornia

    from bench.augment.image import enhance, smooth

    torch.manual_seed(0)
    x = torch.rand(128, 3, 32, 32, device=device)
    b = len(x)
    angle = (torch.rand(b, device=device) * 2 - 1) * 30
    shear = (torch.rand(b, device=device) * 2 - 1) * 0.3
    shift = (torch.rand(b, device=device) * 2 - 1) * 0.45
    bits = torch.randint(4, 9, (b,), device=device)
    threshold = torch.rand(b, device=device)
    factor = 0.1 + torch.rand(b, device=device) * 1.8
    zero = torch.zeros(b, device=device)

    def ours(name: str, value: torch.Tensor) -> Callable[[], object]:
        return lambda: get_op(name).transform(x, value, training=True)

    cases = [
        ("rotate", ours("rotate", angle),
         lambda: kornia.geometry.transform.rotate(x, angle, align_corners=False)),
        ("shear_x", ours("shear_x", shear),
         lambda: kornia.geometry.transform.shear(x, torch.stack([shear, zero], 1), align_corners=False)),
        ("translate_x", ours("translate_x", shift),
         lambda: kornia.geometry.transform.translate(x, torch.stack([shift * 32, zero], 1), align_corners=False)),
        ("equalize", lambda: equalize_by_hand(x), lambda: kornia.enhance.equalize(x)),
        ("posterize", ours("posterize", bits.float()), lambda: kornia.enhance.posterize(x, bits)),
        ("solarize", lambda: torch.where(x < threshold.view(b, 1, 1, 1), x, 1 - x),
         lambda: kornia.enhance.solarize(x, threshold)),
        ("sharpness", lambda: enhance(x, smooth(x), factor.view(b, 1, 1, 1)),
         lambda: kornia.enhance.sharpness(x, factor)),
    ]
    print(f"hand-written vs kornia {kornia.__version__}, batch {tuple(x.shape)}, per-sample parameters, "
          f"median of {repeats}; {device_label(device)}\n")
    print("| op | hand-written ms | kornia ms | kornia / ours | in bench/augment |")
    print("|---|---|---|---|---|")
    for name, mine, theirs in cases:
        a, k = median_ms(mine, device, repeats), median_ms(theirs, device, repeats)
        print(f"| {name} | {a:.2f} | {k:.2f} | {k / a:.2f} | {KORNIA_BACKED.get(name, 'hand-written')} |")


def device_label(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tasks", help="comma-separated tasks (default: every task with an augmentation space)")
    parser.add_argument("--kornia", action="store_true", help="hand-written vs kornia time per image op")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.kornia:
        kornia_table(device, args.repeats)
        return
    registry = load_registry()
    names = args.tasks.split(",") if args.tasks else sorted(registry.tasks)
    print(f"Device: {device_label(device)}; median of {args.repeats} repeats; op magnitude 0.5, training mode.\n")
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
