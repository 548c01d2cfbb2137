"""Time one cifar10 run (default: the quick profile, erm) on synthetic full-size data.

Writes 50,000 + 10,000 synthetic images in the real ``cifar-10-batches-py`` format
(noise around a colour that depends on the class, so the accuracy column shows that
training works) into a temporary folder, reads them with the task's reader, runs the
harness's ``execute_run`` in-process and prints a Markdown table of the timings.

    python benchmarks/cifar10_synthetic.py [--profile quick] [--method erm] [--device cpu] [--data-root DIR]

With ``--data-root`` the real CIFAR-10 there is used instead of synthetic data.
"""
from __future__ import annotations

import argparse
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import store  # noqa: E402
from bench.config import RunConfig  # noqa: E402
from bench.registry import load_registry  # noqa: E402
from bench.runner import RunOptions, execute_run  # noqa: E402


def write_synthetic_cifar(root: Path, seed: int = 0) -> Path:
    """Five training batches of 10,000 images and a test batch, as pickle files."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(40, 215, (10, 3)).astype(np.float32)  # one mean colour per class
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, 10_000)
        noise = rng.normal(0, 60, (10_000, 3, 32 * 32)).astype(np.float32)
        images = np.clip(colours[labels][:, :, None] + noise, 0, 255).astype(np.uint8).reshape(10_000, -1)
        batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": images,
                 b"filenames": [b"synthetic.png"] * 10_000}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


def cpu_seconds() -> float:
    """User + system CPU time of this process: on a shared machine, the cost that does
    not depend on what else runs (wall time does)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--method", default="erm")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data_root or write_synthetic_cifar(Path(tmp) / "data")
        task = load_registry().task("cifar10").cls()
        start = time.perf_counter()
        task.prepare(args.profile, data_root)
        read_s = time.perf_counter() - start
        config = RunConfig("cifar10", args.profile, args.method, width=args.width, seed=0)
        results = Path(tmp) / "results"
        store.prepare_results_dir(results)
        cpu_before = cpu_seconds()
        record = execute_run(config, RunOptions(results, args.device, data_root, progress=False))
        run_cpu_s = cpu_seconds() - cpu_before
    if record["status"] != "ok":
        raise SystemExit(f"run {record['status']}: {record['error']}")
    profile = task.profile(args.profile)
    images = profile.options["n_train"] * profile.epochs
    opts = profile.options
    import torch

    print(f"cifar10 {args.profile} ({opts['arch']} depth {opts['depth']}, {record['n_params']:,} parameters), "
          f"{args.method}, {record['device']} ({torch.get_num_threads()} threads), "
          f"{'real' if args.data_root else 'synthetic'} data")
    print("| read files (s) | load (s) | train (s) | eval (s) | run wall (s) | run CPU (s) | train images/s "
          "| test accuracy | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {read_s:.1f} | {record['load_s']:.1f} | {record['train_s']:.1f} | {record['eval_s']:.1f} | "
          f"{record['wall_s']:.1f} | {run_cpu_s:.1f} | {images / record['train_s']:.0f} | "
          f"{record['test_metric']:.3f} | {record['peak_memory_mb']:.0f} |")


if __name__ == "__main__":
    main()
