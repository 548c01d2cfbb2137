"""The glyphs task: the Mario-Iggy protocol with drawn glyphs (generator, splits, labels)."""
from __future__ import annotations

import math

import torch

from bench.augment.geometry import rotate
from bench.registry import load_registry

Glyphs = load_registry().task("glyphs").cls
glyphs_module = __import__(Glyphs.__module__, fromlist=["draw"])


def test_splits_sizes_range_balance_and_determinism() -> None:
    task = Glyphs()
    data = task.load("smoke", None, seed=0)
    opts = task.profile("smoke").options
    assert (len(data.train), len(data.val), len(data.test)) == (opts["n_train"], opts["n_val"], opts["n_test"])
    assert data.train.x.shape[1:] == task.input_shape and data.train.x.dtype == torch.float32
    assert 0.0 <= float(data.train.x.min()) and float(data.train.x.max()) <= 1.0
    counts = torch.bincount(data.train.y, minlength=task.num_classes)
    assert len(counts) == task.num_classes == 4 and int(counts.min()) > 0.35 * len(data.train) / 4
    assert torch.equal(task.load("smoke", None, seed=0).train.x, data.train.x)  # same seed, same images
    assert not torch.equal(task.load("smoke", None, seed=1).train.x, data.train.x)
    assert not torch.equal(data.train.x[: len(data.test)], data.test.x)  # splits drawn apart
    assert task.make_model("smoke", 1.0, None)(data.train.x[:2]).shape == (2, 4)


def test_classes_are_glyph_by_orientation_within_pi_over_4() -> None:
    """Each example matches its own glyph, clean and upright, best at a rotation within
    pi/4 of 0 (upright classes) or of pi (upside-down classes)."""
    task = Glyphs()
    data = task.load("smoke", None, seed=2)
    n = 128
    x, y = data.test.x[:n], data.test.y[:n]
    glyph, upside_down = y // 2, y % 2
    clean = glyphs_module.draw(glyph, torch.zeros(n), torch.Generator().manual_seed(0))
    grid = torch.arange(-16, 16) * math.pi / 16
    candidates = torch.stack([rotate(clean, torch.full((n,), float(a))) for a in grid], 1)
    best = grid[(candidates - x.unsqueeze(1)).flatten(2).norm(dim=2).argmin(1)].abs()
    upright = upside_down == 0
    assert (best[upright] <= math.pi / 4 + math.pi / 16).all()
    assert (best[~upright] >= 3 * math.pi / 4 - math.pi / 16).all()


def test_glyphs_are_not_half_turn_symmetric() -> None:
    """A glyph turned by pi is far from itself (else the orientation label would be
    ambiguous, as 0, 1, 8 in MNIST)."""
    n = len(glyphs_module.GLYPHS)
    clean = glyphs_module.draw(torch.arange(n), torch.zeros(n), torch.Generator().manual_seed(0))
    turned = rotate(clean, torch.full((n,), math.pi))
    distance = (turned - clean).flatten(1).norm(dim=1)
    assert (distance > 0.5 * clean.flatten(1).norm(dim=1)).all()
