"""A run alone, then beside a CPU-bound process of the same kind: the slow-down ratio.

    flock /tmp/heavy.lock python benchmarks/contention.py      # erm on mnist_rot, quick profile
    python benchmarks/contention.py --method fixed --repeats 3

"Alone" runs ``python run_bench.py run`` for one quick run (fresh results folder,
``--force``). "Beside" first starts a competitor - the same command on another seed,
restarted whenever it finishes, so it stays CPU-bound for the whole measurement -
lets it run ``--warm`` seconds (so the one-minute load average sees it, as it would
see any process that was there first), then times the same run again. A fair share
of two cores is 2x; the target is <= 2.5x (issue 17; before bench/threads.py the
inline launcher measured 10-25x).

Both sides use the harness as a user gets it (``bench/threads.py``: OpenMP threads
sleep while waiting, the thread count follows the free cores). Prints each timing,
the machine's load average before each, and the ratio of the medians, for the
process's wall-clock (start-up included) and for the run's own search + train + eval
seconds from its record. Other work on the machine moves the numbers: the load
average printed says how much there was.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command(task: str, method: str, profile: str, seed: int, results: Path) -> list[str]:
    return [sys.executable, str(ROOT / "run_bench.py"), "run", "--tasks", task, "--methods", method,
            "--profile", profile, "--seeds", str(seed), "--results-dir", str(results), "--force", "--no-report",
            "--no-progress"]


def timed_run(cmd: list[str], results: Path) -> tuple[float, float, int]:
    """(wall seconds of the process, the record's total_s, the record's torch_threads)."""
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"run failed ({out.returncode}):\n{out.stderr[-2000:]}")
    [record_path] = (results / "runs").glob("*.json")
    record = json.loads(record_path.read_text())
    return wall, record["total_s"], record["torch_threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist_rot")
    parser.add_argument("--method", default="erm")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs on each side (median quoted)")
    parser.add_argument("--warm", type=float, default=20.0, help="seconds the competitor runs before timing")
    args = parser.parse_args()
    env_note = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ}
    print(f"{args.method} on {args.task} ({args.profile}), {os.cpu_count()} cores; environment {env_note or 'unset'}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        sides: dict[str, list[tuple[float, float, int]]] = {"alone": [], "beside": []}
        for i in range(args.repeats):
            results = tmp_path / f"alone{i}"
            print(f"alone  #{i}: load {os.getloadavg()[0]:.2f} ...", end=" ", flush=True)
            sides["alone"].append(timed_run(command(args.task, args.method, args.profile, 0, results), results))
            print("wall %.1f s, run %.1f s, %d thread(s)" % sides["alone"][-1])

        competitor_cmd = command(args.task, args.method, args.profile, 1, tmp_path / "competitor")
        loop = ["/bin/sh", "-c", 'while true; do "$@" >/dev/null 2>&1; done', "loop", *competitor_cmd]
        competitor = subprocess.Popen(loop, cwd=ROOT, start_new_session=True)
        try:
            time.sleep(args.warm)
            for i in range(args.repeats):
                results = tmp_path / f"beside{i}"
                print(f"beside #{i}: load {os.getloadavg()[0]:.2f} ...", end=" ", flush=True)
                sides["beside"].append(timed_run(command(args.task, args.method, args.profile, 0, results), results))
                print("wall %.1f s, run %.1f s, %d thread(s)" % sides["beside"][-1])
        finally:
            os.killpg(competitor.pid, 15)  # the loop and the run it started: its own session
            competitor.wait()

    for col, name in ((0, "process wall-clock"), (1, "run (search+train+eval)")):
        alone = statistics.median(t[col] for t in sides["alone"])
        beside = statistics.median(t[col] for t in sides["beside"])
        print(f"{name}: alone {alone:.1f} s, beside {beside:.1f} s, ratio {beside / alone:.2f}x "
              f"(fair share 2x, target <= 2.5x)")


if __name__ == "__main__":
    main()
