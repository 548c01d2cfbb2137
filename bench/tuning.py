"""Equal-budget tuning: the configurations a suite's ``tune: {trials: N}`` draws.

Every method x task gets the same number N of configurations at the same per-trial
budget (the profile's epochs; nothing that sets the budget is tuned), erm included
(erm has no parameter of its own: its trials vary the shared learning rate and weight
decay). Trial 0 is the defaults, so it is the plain run and its record is reused;
trials 1..N-1 draw every parameter that declares a ``tune`` distribution and that the
suite did not set explicitly, from a generator seeded by (suite tune seed, task,
profile, method, trial): the same suite draws the same configurations on any machine.
Each trial is an ordinary run (its own record, resumable, mergeable, on every
launcher); ``bench.tuned`` selects by the validation metric from the records alone.
"""
from __future__ import annotations

import random
from typing import Any, Mapping

from bench.api import TRAIN_PARAMS, Profile
from bench.config import derive_seed
from bench.params import Param


Trial = tuple[dict[str, Any], dict[str, Any]]  # (method params, train overrides)


def draw_trials(declared: Mapping[str, Param], params: dict[str, Any], fixed: set[str], profile: Profile,
                train: dict[str, Any], trials: int, key: tuple[Any, ...]) -> list[Trial]:
    """``trials`` (method params, train overrides) pairs; the first is (params, train)."""
    out = [(dict(params), dict(train))]
    tunable = {k: p for k, p in declared.items() if p.tune is not None and k not in fixed}
    tunable_train = {k: p for k, p in TRAIN_PARAMS.items() if p.tune is not None and k not in train}
    for trial in range(1, trials):
        rng = random.Random(derive_seed("tune", *key, trial))
        drawn = dict(params)
        for name, param in sorted(tunable.items()):
            drawn[name] = param.normalise(param.tune.sample(rng, params[name]))
        drawn_train = dict(train)
        for name, param in sorted(tunable_train.items()):
            drawn_train[name] = param.normalise(param.tune.sample(rng, getattr(profile, name)))
        out.append((drawn, drawn_train))
    return out
