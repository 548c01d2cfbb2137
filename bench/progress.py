"""Progress: run i/N of the suite, and the epochs of the current run.

On a terminal both are tqdm bars redrawn in place. Anywhere else (CI, a SLURM log,
a pipe) a redrawn bar turns into pages of carriage returns, so the suite prints one
line per finished run instead (name, status, score, seconds) and the epoch bars
are off.
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def run_line(done: int, total: int, name: str, record: dict[str, Any]) -> str:
    """``[3/12] mnist_rot/quick erm width=1 seed=0: ok accuracy=0.9312 14 s``."""
    score = record.get("test_metric")
    metric = record.get("metric") or "score"
    scored = f" {metric}={score:.4g}" if isinstance(score, (int, float)) else ""
    seconds = record.get("wall_s")
    timed = f" {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
    return f"[{done}/{total}] {name}: {record.get('status')}{scored}{timed}"


class SuiteProgress:
    """Progress over the runs of a suite: a bar on a terminal, else one line per run."""

    def __init__(self, total: int, enabled: bool = True, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.done = 0
        self.lines = enabled and not is_terminal(self.stream)
        self._bar = tqdm(total=total, desc="runs", unit="run", position=0, file=self.stream,
                         disable=not enabled or self.lines, dynamic_ncols=True)

    def started(self, name: str) -> None:
        """A run began (the inline launcher runs one at a time and names it on the bar)."""
        self._bar.set_description(f"run {self.done + 1}/{self.total} {name}")

    def finished(self, name: str, record: dict[str, Any]) -> None:
        self.done += 1
        if self.lines:
            print(run_line(self.done, self.total, name, record), file=self.stream, flush=True)
        else:
            self._bar.update(1)
            self._bar.set_postfix_str(f"{name}: {record.get('status')}", refresh=False)

    def close(self) -> None:
        self._bar.close()


class Progress:
    """One bar for the current phase (search or train) of the current run, on a terminal only.

    Methods with a search phase call ``start("search", n_epochs)`` and ``step()``;
    the training loop does the same for training epochs.
    """

    def __init__(self, enabled: bool = True, position: int = 1):
        self.enabled = enabled and is_terminal(sys.stderr)
        self.position = position
        self._bar: tqdm | None = None

    def start(self, phase: str, total: int) -> None:
        self.close()
        if self.enabled:
            self._bar = tqdm(total=total, desc=f"  {phase}", unit="epoch", leave=False,
                             position=self.position, file=sys.stderr, dynamic_ncols=True)

    def step(self, **postfix: Any) -> None:
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
