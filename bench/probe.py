"""The invariance audit: the invariance score of a trained predictor under each op of
its task's augmentation space, at one fixed, documented magnitude.

Where the score under the task's reference group says how much of the *needed*
invariance a method put into the model, the probe says which invariances it put in
at all (an augmentation is an invariance assumption: see ``Op.assumption``).

Protocol (fixed for every run, so probes are comparable across methods):
- ops with a strength (continuous, discrete) at magnitude ``PROBE_MAGNITUDE`` = 0.5,
  i.e. half of the op's documented range (with a random sign where symmetric);
- on/off ops (flips, invert, equalize ...) at magnitude 1: always applied;
- the first ``PROBE_EXAMPLES`` = 256 test examples, evaluation-mode ops (hard gates),
  the run's evaluation seed; the score is the median score of
  ``bench.metrics.invariance_score``.
The probe is an audit, not part of a method's cost: its seconds are recorded as
``probe_s`` and left out of ``total_s``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from bench.augment import get_op
from bench.metrics import invariance_score

PROBE_MAGNITUDE = 0.5
PROBE_EXAMPLES = 256  # 500 took a third of a learned-invariance run (C copies each); the probe is an audit


def probe_magnitude(kind: str) -> float:
    return 1.0 if kind == "on_off" else PROBE_MAGNITUDE


def invariance_probe(represent: Callable[[torch.Tensor], torch.Tensor], op_names: tuple[str, ...],
                     facts: dict[str, Any], x: torch.Tensor, batch_size: int, seed: int) -> dict[str, float]:
    """{op name: median invariance score of ``represent`` under that op}."""
    x = x[:PROBE_EXAMPLES]
    clean = torch.cat([represent(x[i:i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)])
    scores = {}
    for name in op_names:
        op = get_op(name)
        magnitude = probe_magnitude(op.kind)

        def transform(xb: torch.Tensor, op=op, magnitude=magnitude) -> torch.Tensor:
            return op(xb, magnitude, training=False, **facts)

        torch.manual_seed(seed)
        scores[name] = invariance_score(represent, None, transform, x, batch_size,
                                        torch.Generator().manual_seed(seed), clean=clean)["score"]
    return scores
