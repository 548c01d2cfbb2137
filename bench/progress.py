"""Progress bars: run i/N of the suite, and the epochs of the current run."""
from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


class Progress:
    """One bar for the current phase (search or train) of the current run.

    Methods with a search phase call ``start("search", n_epochs)`` and ``step()``;
    the training loop does the same for training epochs.
    """

    def __init__(self, enabled: bool = True, position: int = 1):
        self.enabled = enabled
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
