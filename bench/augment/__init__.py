"""The shared augmentation library: one implementation of every op that the
augmentation-learning methods search over, batched, on the input's device, with
gradients to the magnitudes (see ``core`` for the op kinds).

    from bench.augment import get_op, ops_for
    rotate = get_op("rotate")
    out = rotate(x, magnitude=torch.tensor(0.5, requires_grad=True))

Modules: ``core`` (Op, straight-through estimator, relaxed Bernoulli gate),
``image`` / ``eeg`` / ``points`` (the ops of each modality), ``lie`` (Augerino's
transformation families), ``geometry`` (affine warps of images).
"""
from __future__ import annotations

from bench.augment import eeg, image, points  # noqa: F401 - importing registers the ops
from bench.augment.core import OPS, Op, apply_with_probability, bernoulli_gate, straight_through

MODALITIES = ("image", "eeg", "molecule")


def get_op(name: str) -> Op:
    if name not in OPS:
        raise KeyError(f"unknown augmentation op {name!r}; known: {', '.join(sorted(OPS))}")
    return OPS[name]


def ops_for(modality: str) -> list[Op]:
    """Every op of a modality, in registration order."""
    return [op for op in OPS.values() if op.modality == modality]


__all__ = ["OPS", "Op", "apply_with_probability", "bernoulli_gate", "get_op", "ops_for", "straight_through"]
