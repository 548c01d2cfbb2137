"""The op interface every augmentation-learning method uses, and the two pieces that
make discrete choices learnable: the straight-through estimator and the relaxed
Bernoulli gate.

An op maps a batch and a magnitude m in [0, 1] (a scalar or one per sample) to the
transformed batch; m = 0 is the identity and m = 1 the strongest setting of the op's
documented range. Three kinds of ops:

- continuous ops (rotate, contrast, gaussian_noise ...): the value ``low + m * (high
  - low)`` (with a random sign per sample where the op is symmetric) enters the
  transform, and the gradient reaches m natively;
- discrete ops (solarize, posterize, cutout, time_mask ...): the transform is computed
  with a hard value, and the straight-through estimator (as in Faster AutoAugment's
  code) passes the upstream gradient to m: d out / d m := 1 for every element of
  the sample;
- on/off ops without a strength (invert, equalize, horizontal_flip, sign_flip ...):
  m (times ``high``) is the probability of applying the op to each sample, drawn
  from a relaxed Bernoulli in training (so the gradient reaches m) and a hard
  Bernoulli at evaluation, as AugNet's MagHorizontalFlip does.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.distributions import Bernoulli, RelaxedBernoulli

PROBABILITY_EPS = 1e-6


def per_sample(magnitude: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """The magnitude as a (B,) tensor on x's device (a scalar is broadcast)."""
    m = torch.as_tensor(magnitude, dtype=x.dtype, device=x.device)
    return m.reshape(()).expand(len(x)) if m.numel() == 1 else m.reshape(len(x))


def expand_to(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) to broadcast against x."""
    return v.reshape(len(x), *([1] * (x.dim() - 1)))


def random_sign(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.randint(0, 2, (n,), device=like.device).to(like.dtype) * 2 - 1


def straight_through(hard: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``hard`` in the forward pass; in the backward pass every element of sample b
    passes its gradient to magnitude[b] (and hard's own graph, if any, is kept)."""
    m = expand_to(magnitude, hard)
    return hard + (m - m.detach())


def straight_through_input(hard: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``hard`` forward, identity gradient to the input x (non-differentiable maps
    such as equalize or quantisation), so ops earlier in a chain still learn."""
    return x + (hard - x).detach()


def bernoulli_gate(probability: torch.Tensor, shape: tuple[int, ...], temperature: float, training: bool
                   ) -> torch.Tensor:
    """Per-sample application weights in [0, 1]: a relaxed Bernoulli sample with the
    given temperature in training (reparameterised: gradient to the probability),
    a hard 0/1 Bernoulli sample at evaluation."""
    p = probability.clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS).expand(shape)
    if training:
        return RelaxedBernoulli(torch.as_tensor(temperature, dtype=p.dtype, device=p.device), probs=p).rsample()
    return Bernoulli(probs=p).sample()


def blend(x: torch.Tensor, transformed: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x + w (T(x) - x) with a per-sample weight w of shape (B,)."""
    return x + expand_to(weight, x) * (transformed - x)


class Op:
    """One augmentation op. Subclasses set the class attributes and ``transform``."""

    name: str = ""
    modality: str = ""  # image | eeg | molecule
    kind: str = "continuous"  # continuous | discrete | on_off (see the module docstring)
    low: float = 0.0  # value at magnitude 0 (for on_off ops: probability at m = 0)
    high: float = 1.0  # value at magnitude 1
    unit: str = ""
    symmetric: bool = False  # a random sign per sample
    assumption: str = ""  # the invariance this op encodes, in one line

    def value(self, m: torch.Tensor, high: float | None = None, sign: torch.Tensor | None = None) -> torch.Tensor:
        """The op's parameter at magnitude m (``high`` overrides the top of the range;
        ``sign``, one +-1 per sample, replaces the random sign of a symmetric op)."""
        v = self.low + ((self.high if high is None else high) - self.low) * m
        if not self.symmetric:
            return v
        return v * (random_sign(len(m), m) if sign is None else sign.to(v.dtype))

    def __call__(self, x: torch.Tensor, magnitude: torch.Tensor | float, training: bool = True,
                 temperature: float = 0.1, sign: torch.Tensor | None = None, **facts: Any) -> torch.Tensor:
        """Apply the op to the batch ``x`` at ``magnitude``; ``facts`` carries what the
        op needs to know about the data: ``sfreq`` for EEG ops, and ``ranges``, a
        task's overrides of the top of op ranges (e.g. {"rotate": 180.0}). ``sign``
        (B,) of +-1 fixes the direction of a symmetric op per sample instead of drawing
        it (DADA's signed levels); other ops ignore it."""
        m = per_sample(magnitude, x)
        high = facts.get("ranges", {}).get(self.name)
        facts["temperature"] = temperature
        if self.kind == "on_off":
            gate = bernoulli_gate(self.value(m, high), (len(x),), temperature, training)
            return blend(x, self.transform(x, None, training=training, **facts), gate)
        if self.kind == "discrete":
            hard = self.transform(x, self.value(m.detach(), high, sign), training=training, **facts)
            return straight_through(hard, m)
        return self.transform(x, self.value(m, high, sign), training=training, **facts)

    def transform(self, x: torch.Tensor, value: torch.Tensor | None, training: bool, **facts: Any) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "modality": self.modality, "kind": self.kind, "range": [self.low, self.high],
                "unit": self.unit, "symmetric": self.symmetric, "assumption": self.assumption}


def apply_with_probability(op: Op, x: torch.Tensor, magnitude: torch.Tensor | float, probability: torch.Tensor,
                           training: bool, temperature: float = 0.1, **facts: Any) -> torch.Tensor:
    """Apply ``op`` to each sample with ``probability`` (Faster AA / DADA's per-op
    probability): relaxed Bernoulli weights in training, hard gates at evaluation."""
    gate = bernoulli_gate(torch.as_tensor(probability, dtype=x.dtype, device=x.device), (len(x),), temperature,
                          training)
    return blend(x, op(x, magnitude, training=training, temperature=temperature, **facts), gate)


OPS: dict[str, Op] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: add one instance of the op to the registry."""
    op = cls()
    if op.name in OPS:
        raise ValueError(f"duplicate op name {op.name!r}")
    OPS[op.name] = op
    return cls
