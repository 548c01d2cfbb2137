"""How far do the bilevel searches' augmentation parameters move on noise alone?

The learning diagnostic (bench/diagnostics.py) flags a method whose augmentation did
not move. This script measures what "moved" means against noise: it replays each
search's optimiser (Faster AA: Adam lr 1e-3, betas (0, 0.999), 8 chunks of sub-policies
per step; DADA: Adam lr 5e-3, betas (0.5, 0.999), one Gumbel-sampled sub-policy per
step, dense weight gradients, level gradients only where the gate fired) with the
same parameter shapes, initial values and sparsity of updates, but with gradients
of no consistent direction (i.i.d. Gaussian), and prints the diagnostic's movement
per group over 20 replays (and the largest op weight against uniform): the noise
floor of a search of that many steps.

    python benchmarks/learning_noise.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.diagnostics import learning_record  # noqa: E402

MNIST_ROT_OPS = 16  # the op count of mnist_rot's augmentation space
ON_OFF = 4  # auto_contrast, invert, equalize, horizontal_flip have no magnitude (which columns: immaterial here)
REPLAYS = 20


def faster_aa_null(steps: int, seed: int, sub_policies: int = 10, stages: int = 2, ops: int = MNIST_ROT_OPS,
                   chunks: int = 8) -> dict:
    g = torch.Generator().manual_seed(seed)
    shape = (sub_policies, stages, ops)
    logits, probabilities, magnitudes = (torch.rand(shape, generator=g).requires_grad_() for _ in range(3))
    opt = torch.optim.Adam([logits, probabilities, magnitudes], lr=1e-3, betas=(0.0, 0.999))

    def state() -> dict[str, torch.Tensor]:
        return {"weights": (logits.detach() / 0.05).softmax(-1), "probabilities": probabilities.detach().clamp(0, 1),
                "magnitudes": magnitudes.detach().clamp(0, 1)[..., ON_OFF:]}

    start = state()
    for _ in range(steps):
        drawn = torch.zeros(sub_policies, dtype=torch.bool)
        drawn[torch.randint(sub_policies, (chunks,), generator=g)] = True
        for p in (logits, probabilities, magnitudes):
            p.grad = torch.randn(shape, generator=g) * drawn.view(-1, 1, 1)
        opt.step()
    return learning_record(start, None, state())


def dada_null(steps: int, seed: int, ops: int = MNIST_ROT_OPS) -> dict:
    g = torch.Generator().manual_seed(seed)
    n = ops * (ops - 1) // 2
    weights = torch.full((n,), 1e-3).requires_grad_()
    probabilities = torch.full((n, 2), 0.5).requires_grad_()
    levels = torch.full((n, 2), 0.5).requires_grad_()
    opt = torch.optim.Adam([weights, probabilities, levels], lr=5e-3, betas=(0.5, 0.999))

    def state() -> dict[str, torch.Tensor]:
        return {"weights": weights.detach().softmax(-1), "probabilities": probabilities.detach().clamp(0, 1),
                "magnitudes": levels.detach().clamp(0, 1)}

    start = state()
    for _ in range(steps):
        k = int(torch.multinomial(weights.detach().softmax(-1), 1, generator=g))
        weights.grad = torch.randn(n, generator=g)
        probabilities.grad = torch.zeros(n, 2)
        probabilities.grad[k] = torch.randn(2, generator=g)
        fired = torch.rand(2, generator=g) < probabilities.detach()[k]
        levels.grad = torch.zeros(n, 2)
        levels.grad[k] = torch.randn(2, generator=g) * fired
        opt.step()
        with torch.no_grad():
            probabilities.clamp_(0, 1)
            levels.clamp_(0, 1)
    return learning_record(start, None, state())


# The score-function estimator's summed cost of one step on mnist_rot, batch 16, as
# `python benchmarks/dada_signal.py` measures it (seed 0, levels 0.5): mean over every
# sample and the noise of one sample. The null draws every step's cost from them,
# whichever sub-policy is sampled. (Adam removes the scale; their ratio matters.)
RELAX_COST_MEAN, RELAX_COST_STD, RELAX_BATCH = -0.0036, 0.012, 16


def dada_relax_null(steps: int, seed: int, ops: int = MNIST_ROT_OPS) -> dict:
    """``estimator: relax`` with costs that do not depend on the sub-policy: the weight
    gradient R (onehot(k) - softmax), R the summed cost; each probability of the
    sampled sub-policy gets its examples' costs times the Bernoulli score."""
    g = torch.Generator().manual_seed(seed)
    n = ops * (ops - 1) // 2
    weights = torch.full((n,), 1e-3).requires_grad_()
    probabilities = torch.full((n, 2), 0.5).requires_grad_()
    opt = torch.optim.Adam([weights, probabilities], lr=5e-3, betas=(0.5, 0.999))

    def state() -> dict[str, torch.Tensor]:
        return {"weights": weights.detach().softmax(-1), "probabilities": probabilities.detach().clamp(0, 1)}

    start = state()
    for _ in range(steps):
        share = weights.detach().softmax(-1)
        k = int(torch.multinomial(share, 1, generator=g))
        p = probabilities.detach()[k].clamp(1e-6, 1 - 1e-6)
        gates = (torch.rand(RELAX_BATCH, 2, generator=g) < p).float()
        cost = (RELAX_COST_MEAN + RELAX_COST_STD * RELAX_BATCH ** 0.5 * torch.randn(RELAX_BATCH, generator=g)) \
            / RELAX_BATCH
        weights.grad = -cost.sum() * share
        weights.grad[k] += cost.sum()
        probabilities.grad = torch.zeros(n, 2)
        probabilities.grad[k] = (cost.unsqueeze(1) * (gates / p - (1 - gates) / (1 - p))).sum(0)
        opt.step()
        with torch.no_grad():
            probabilities.clamp_(1e-6, 1 - 1e-6)
    return learning_record(start, None, state())


def report(name: str, steps: int, replay) -> None:
    records = [replay(steps, seed) for seed in range(REPLAYS)]
    groups = records[0]["groups"]
    cells = []
    for group in ("weights", "probabilities", "magnitudes"):  # the table's columns; "-": not replayed
        if group not in groups:
            cells.append("-")
            continue
        values = torch.tensor([r["groups"][group]["movement"] for r in records])
        cells.append(f"{values.mean():.3f} (max {values.max():.3f})")
    top = torch.tensor([r["groups"]["weights"]["max_weight_end"] for r in records])
    uniform = records[0]["groups"]["weights"]["uniform"]
    moved = sum(r["moved"] for r in records)
    largest = f"{top.mean() / uniform:.2f} (max {top.max() / uniform:.2f})"
    print(f"| {name} | {steps} | " + " | ".join(cells) + f" | {largest} | {moved}/{REPLAYS} |")


def main() -> None:
    print(f"Noise floor: movement per group (mean and max over {REPLAYS} replays; weights: total variation, "
          "others: max |change|) and how many replays pass the diagnostic's threshold.\n")
    print("| search | steps | weights | probabilities | magnitudes | largest weight / uniform | 'moved' |")
    print("|---|---|---|---|---|---|---|")
    for steps in (32, 248, 620):
        report("faster_aa (mnist_rot shapes)", steps, faster_aa_null)
    for steps in (30, 310, 930):
        report("dada, estimator gumbel (mnist_rot shapes)", steps, dada_null)
    for steps in (310, 930):
        report("dada, estimator relax (mnist_rot shapes)", steps, dada_relax_null)


if __name__ == "__main__":
    main()
