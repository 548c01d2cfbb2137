"""How many CPU threads a run may use: the cores that are actually free.

On a shared machine (a workstation, a CI box, two helpers on two cores) torch's
default, one thread per core, collapses: when another CPU-bound process holds a
core, each parallel region waits at its barrier for the thread that is not
scheduled, while OpenMP's other threads spin on theirs, so a run gets 10-25x
slower instead of 2x. Two things prevent that:

* ``calm_openmp()`` — OpenMP threads sleep instead of spinning while they wait
  (``OMP_WAIT_POLICY=PASSIVE``); it must run before torch is imported, so the
  command-line entry point calls it first.
* ``choose_threads(share)`` — the thread count is this process's share of the cores
  that are free now: the cores it may run on (``os.sched_getaffinity``) minus the
  one-minute load average of the machine (``os.getloadavg``), at least 1.

An explicit ``OMP_NUM_THREADS`` (the user's or the cluster's) wins over the guess.
The count in use is stored in each record (``torch_threads``): CPU numbers are
reproducible for a given thread count.
"""
from __future__ import annotations

import os
import time

WAIT_POLICY = "PASSIVE"


def calm_openmp() -> None:
    """Let waiting OpenMP threads sleep (unless the user chose a policy); before torch is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. what SLURM or taskset gave it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


SAMPLE_S = 0.5  # how long busy_cores watches the machine


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores() -> float:
    """Cores busy with other work now: the machine's CPU use over ``SAMPLE_S`` seconds
    (``/proc/stat``), else the one-minute load average (0 where unknown). Why not the
    load average first: it lags by minutes, so a suite started right after another
    job (even one of ours that has ended) would take one thread on an idle machine."""
    before = _cpu_times()
    if before is not None:
        time.sleep(SAMPLE_S)
        after = _cpu_times()
        if after is not None and after[1] > before[1]:
            return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def free_cores(cores: int | None = None, busy: float | None = None) -> int:
    """Usable cores not busy with other work, at least 1."""
    cores = usable_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, cores - round(busy)))


def choose_threads(share: int = 1) -> int:
    """Threads for one of ``share`` processes started together: ``OMP_NUM_THREADS``
    when set, else their share of the free cores."""
    explicit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    return max(1, free_cores() // max(1, share))


def set_threads(share: int = 1) -> int:
    """Set torch's thread count with ``choose_threads``; return it."""
    import torch  # here, not at the top: calm_openmp must be able to run before torch loads

    threads = choose_threads(share)
    torch.set_num_threads(threads)
    return threads
