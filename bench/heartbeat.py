"""Heartbeats: ``<results-dir>/runs/<run_id>.running`` while a run executes.

The file (JSON: run id, pid, host, start time, last beat, interval) is rewritten
atomically every ``interval_s`` seconds by a daemon thread and removed once the run's
record is written. A run whose heartbeat file remains but has gone stale (no beat
for more than three intervals, or its pid is dead on this same host) crashed: it is
not running, and rerunning the suite runs it again.
"""
from __future__ import annotations

import json
import os
import platform
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from bench import store

DEFAULT_INTERVAL_S = 30.0
STALE_AFTER_INTERVALS = 3
SUFFIX = ".running"


def heartbeat_path(results_dir: Path, run_id: str) -> Path:
    return store.runs_dir(results_dir) / f"{run_id}{SUFFIX}"


class Heartbeat:
    """Context manager: beat while the body runs, remove the file at the end."""

    def __init__(self, results_dir: Path, run_id: str, interval_s: float = DEFAULT_INTERVAL_S):
        self.path = heartbeat_path(results_dir, run_id)
        self.interval_s = interval_s
        self.info: dict[str, Any] = {"run_id": run_id, "pid": os.getpid(), "host": platform.node(),
                                     "start": time.time(), "interval_s": interval_s}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat_forever, name=f"heartbeat-{run_id}", daemon=True)

    def beat(self) -> None:
        store.write_json_atomic(self.path, {**self.info, "beat": time.time()})

    def _beat_forever(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except OSError:  # a full or vanished disk must not kill the run; the record decides
                pass

    def __enter__(self) -> "Heartbeat":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.path.unlink(missing_ok=True)


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "beat" in info else None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process on this machine (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    try:  # Linux: a killed child not yet reaped still answers signals
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_live(info: dict[str, Any], now: float | None = None) -> bool:
    """True if the heartbeat shows a running run, False if it crashed."""
    now = time.time() if now is None else now
    interval = float(info.get("interval_s") or DEFAULT_INTERVAL_S)
    if now - float(info["beat"]) > STALE_AFTER_INTERVALS * interval:
        return False
    if info.get("host") == platform.node() and isinstance(info.get("pid"), int):
        return pid_alive(info["pid"])
    return True


def heartbeats(results_dir: Path) -> dict[str, dict[str, Any]]:
    """Every readable heartbeat of ``results_dir``, by run id."""
    found = {}
    for path in store.runs_dir(results_dir).glob(f"*{SUFFIX}"):
        info = read_heartbeat(path)
        if info is not None:
            found[path.name[: -len(SUFFIX)]] = info
    return found
