"""The AugNet invariance score on cases whose answer is known."""
from __future__ import annotations

import math

import torch

from bench.augment.geometry import random_rotate
from bench.metrics import invariance_score


def score(represent, transform, x, predict=None):
    return invariance_score(represent, predict, transform, x, batch_size=16, generator=torch.Generator().manual_seed(0))


def test_identity_transform_scores_one() -> None:
    x = torch.randn(64, 5)
    result = score(lambda v: v, lambda v: v, x, predict=lambda v: v)
    assert result["score"] == 1.0 and result["agreement"] == 1.0 and result["n"] == 64


def test_invariant_representation_scores_one_and_variant_scores_low() -> None:
    torch.manual_seed(0)
    x = torch.rand(128, 1, 12, 12)
    radial = torch.linspace(-1, 1, 12).abs()
    rings = (radial[:, None] ** 2 + radial[None, :] ** 2).sqrt()

    def rotation_invariant(v: torch.Tensor) -> torch.Tensor:
        # Sum of pixel values per ring around the centre: unchanged by rotations up to interpolation.
        masks = torch.stack([(rings >= r) & (rings < r + 0.35) for r in (0.0, 0.35, 0.7)]).float()
        return torch.einsum("bchw,khw->bk", v, masks) + 1.0

    invariant = score(rotation_invariant, lambda v: random_rotate(v, math.pi), x)
    assert invariant["score"] > 0.8
    pixels = score(lambda v: v.flatten(1), lambda v: random_rotate(v, math.pi), x)
    assert pixels["score"] < invariant["score"] - 0.3


def test_transform_to_another_example_scores_about_zero() -> None:
    torch.manual_seed(1)
    x = torch.randn(256, 8)
    # g maps each example to an unrelated one: as far as a random other example.
    result = score(lambda v: v, lambda v: torch.randn_like(v), x)
    assert abs(result["score"]) < 0.2
    assert result["agreement"] is None


def test_pairing_never_pairs_an_example_with_itself() -> None:
    # With two examples a self-pair has probability 1/2 under a plain permutation and
    # gives a score of 0/eps = 0 (torch's median of two values is the lower one).
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    for seed in range(20):
        result = invariance_score(lambda v: v, None, lambda v: v, x, 2, torch.Generator().manual_seed(seed))
        assert result["score"] > 0.99
