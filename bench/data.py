"""Helpers that task plugins share: the offline switch, bounded downloads, and
deterministic splits."""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from typing import Iterator

import torch

OFFLINE_ENV = "INVBENCH_OFFLINE"
DOWNLOAD_TIMEOUT_S = 30.0


def downloads_allowed() -> bool:
    """False when ``--offline`` is given or INVBENCH_OFFLINE=1 (the tests set it):
    tasks then never touch the network."""
    return os.environ.get(OFFLINE_ENV, "") not in ("1", "true", "yes")


@contextmanager
def bounded_download() -> Iterator[None]:
    """A socket timeout for dataset downloads, so a machine without internet fails
    in seconds instead of hanging."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def split_indices(n: int, sizes: tuple[int, ...], seed: int) -> tuple[torch.Tensor, ...]:
    """Disjoint random index sets of the given sizes out of ``range(n)``, the same
    for the same seed on every machine."""
    if sum(sizes) > n:
        raise ValueError(f"split sizes {sizes} exceed the {n} available examples")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    bounds = torch.tensor((0, *sizes)).cumsum(0).tolist()
    return tuple(order[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
