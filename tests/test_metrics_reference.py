"""Our classification metrics against scikit-learn's, the field's reference
implementation, on random predictions with imbalanced classes."""
from __future__ import annotations

import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

from bench.metrics import balanced_accuracy, cohen_kappa


@pytest.mark.parametrize("seed", range(5))
def test_balanced_accuracy_and_kappa_match_scikit_learn(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    targets = torch.multinomial(torch.tensor([0.5, 0.25, 0.15, 0.07, 0.03]), 400, replacement=True,
                                generator=generator)
    outputs = torch.randn(400, 5, generator=generator)
    outputs[torch.arange(400), targets] += 1.0  # better than chance, worse than perfect
    pred = outputs.argmax(1).numpy()
    assert balanced_accuracy(outputs, targets) == pytest.approx(balanced_accuracy_score(targets.numpy(), pred), abs=1e-6)
    assert cohen_kappa(outputs, targets) == pytest.approx(cohen_kappa_score(targets.numpy(), pred), abs=1e-9)
