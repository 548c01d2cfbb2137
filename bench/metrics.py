"""Task metrics and the invariance score.

Invariance score (the AugNet paper's measure, Rommel et al. 2022, so our numbers and
the paper's are on one scale): for a test example x, another test example x_pi and a
transformation g drawn from the task's reference group,

    I(x) = [d(phi(x), phi(x_pi)) - d(phi(x), phi(g x))] / d(phi(x), phi(x_pi)),
    d(a, b) = 1 - cos(a, b),

with phi the trained predictor's output (or its penultimate embedding for tasks whose
output is a scalar). The score of a model is the median of I over the test set:
1 means phi(g x) = phi(x) (invariant), 0 means g x is as far from x as another
example is. Unlike the official code, x_pi is never x itself (a cyclic shift of a
random permutation, so no example is paired with itself).

Prediction agreement is the fraction of test examples whose predicted class is the
same for x and g x (classification tasks only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Metric:
    fn: Callable[[torch.Tensor, torch.Tensor], float]
    higher_is_better: bool
    label: str  # axis / column label, with unit


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return (outputs.argmax(dim=1) == targets).float().mean().item()


def balanced_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean over the classes present in ``targets`` of the per-class recall."""
    pred = outputs.argmax(dim=1)
    recalls = [(pred[targets == c] == c).float().mean() for c in targets.unique()]
    return torch.stack(recalls).mean().item()


def cohen_kappa(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    pred = outputs.argmax(dim=1)
    k = int(max(pred.max().item(), targets.max().item())) + 1
    confusion = torch.zeros(k, k, dtype=torch.float64)
    confusion.index_put_((targets.cpu(), pred.cpu()), torch.ones(len(pred), dtype=torch.float64), accumulate=True)
    n = confusion.sum()
    observed = confusion.trace() / n
    expected = (confusion.sum(0) * confusion.sum(1)).sum() / n**2
    return ((observed - expected) / (1 - expected)).item() if expected < 1 else 0.0


def mae(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return (outputs.reshape(targets.shape) - targets).abs().mean().item()


METRICS: dict[str, Metric] = {
    "accuracy": Metric(accuracy, True, "accuracy"),
    "balanced_accuracy": Metric(balanced_accuracy, True, "balanced accuracy"),
    "cohen_kappa": Metric(cohen_kappa, True, "Cohen's kappa"),
    "mae": Metric(mae, False, "MAE"),
    # Molecular properties: outputs and targets already in meV (the task converts).
    "mae_mev": Metric(mae, False, "MAE (meV)"),
}


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1 - F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


def invariance_score(
    represent: Callable[[torch.Tensor], torch.Tensor],
    predict: Callable[[torch.Tensor], torch.Tensor] | None,
    transform: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    clean: torch.Tensor | None = None,
) -> dict[str, float | None]:
    """Median invariance score of ``represent`` under ``transform`` over ``x``.

    ``predict`` (classification only) gives the prediction agreement rate. The
    random pairing uses ``generator``; the caller seeds the global RNG that the
    transform draws from, so the score is reproducible. ``clean``: the
    representations of ``x`` if already computed (the probe scores many transforms).
    """
    n = len(x)
    order = torch.randperm(n, generator=generator)
    partner = torch.empty(n, dtype=torch.long)
    partner[order] = order.roll(1)  # x_pi for every example, never itself when n > 1
    # When the representation is the prediction (classification on outputs), the
    # agreement reuses its outputs instead of predicting each batch twice more: the
    # same numbers for a deterministic predictor, and for a predictor averaging random
    # copies the same estimator with one draw per example instead of two.
    reuse = predict is not None and predict == represent  # bound methods: equal, not identical
    z, z_t, agree = [], [], []
    for start in range(0, n, batch_size):
        xb = x[start:start + batch_size]
        xb_t = transform(xb)
        clean_b = clean[start:start + batch_size] if clean is not None else represent(xb).float().cpu()
        if clean is None:
            z.append(clean_b)
        transformed_b = represent(xb_t).float().cpu()
        z_t.append(transformed_b)
        if predict is not None:
            if reuse:
                agree.append((clean_b.argmax(1) == transformed_b.argmax(1)).float())
            else:
                agree.append((predict(xb).argmax(1) == predict(xb_t).argmax(1)).float().cpu())
    z_all, z_t_all = (torch.cat(z) if clean is None else clean.float().cpu()), torch.cat(z_t)
    baseline = cosine_distance(z_all, z_all[partner.to(z_all.device)])
    transformed = cosine_distance(z_all, z_t_all)
    scores = (baseline - transformed) / (baseline + 1e-8)
    return {
        "score": scores.median().item(),
        "agreement": torch.cat(agree).mean().item() if agree else None,
        "n": n,
    }
