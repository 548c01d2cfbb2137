"""DADA: Differentiable Automatic Data Augmentation (Li et al., ECCV 2020).

Search space (as the paper and VDIGPKU/DADA ``primitives.py``): every pair (o_i, o_j),
i < j, of the task's ``augmentation_space`` ops is one sub-policy (105 for 15 image
ops; 120 for mnist_rot's 16, 6 for qm9's 4), applied in that order. Each sub-policy
has a weight (a logit, initialised to 1e-3 as the official code) and, per op, a
probability and a magnitude in [0, 1] (initialised to 0.5). Ops come from the shared
library (``bench.augment.get_op``) with the task's ``augmentation_kwargs``.

Gradient estimators. We use the **straight-through Gumbel** variant of the official
code (``search_gumbel/``), not the paper's RELAX (``search_relax/``, which needs a
learned control variate inside the second-order term):

- one sub-policy is sampled per batch from a Gumbel-softmax over the weights
  (temperature 0.5 in the official CIFAR scripts); its weight is the hard one-hot
  with the soft sample's gradient (``F.gumbel_softmax(hard=True)``);
- each op is applied with a straight-through relaxed Bernoulli gate: hard 0/1
  forward, the relaxed sample's gradient (same temperature) to the probability;
- magnitudes get the ops' own gradients (continuous ops) or the library's
  straight-through estimator (discrete ops); on/off ops (invert, equalize ...)
  read the magnitude as their own application probability (see bench/augment/core).

Bilevel search, in ``search()`` (timed as search by the harness), over a fresh model
(``ctx.make_model()``; ``self.model`` is not touched): a reduced training subset
(``search_size``, paper profile 4,000 as reduced CIFAR-10) split 50/50 into
search-train and search-val. Each step, as DARTS/DADA's ``Architect``:

1. hypergradient of the search-val loss through one unrolled step of the model's
   optimiser (SGD, momentum 0.9, weight decay 2e-4, the current learning rate and
   momentum buffers) on the augmented search-train batch, computed with
   ``higher.innerloop_ctx`` -- *exact* second order. The official code uses a
   finite-difference Hessian-vector product (r = 0.01 / ||v||), which is known to be
   badly wrong on ReLU networks (the Hessian of a piecewise-linear net is not smooth);
   it also keeps only the implicit term, as here: the validation batch is not
   augmented, so the direct term is zero;
2. Adam step on the augmentation parameters (lr 0.005, betas (0.5, 0.999), no weight
   decay: the official CIFAR-10 script's ALR / AWD);
3. the normal SGD step of the model on the same augmented batch (gradient clipping
   5), with the cosine learning rate 0.1 -> 0.001 over the search epochs.

Final policy (``genotype()`` of the official code): the ``top_k`` = 25 sub-policies
with the largest weights (fewer if fewer exist). Retrain (the harness's training
loop on ``self.model``, freshly initialised): for each training image, one of the
top-k sub-policies drawn uniformly (the official ``Augmentation`` class of its
fast-autoaugment fork draws ``random.choice`` per image, ignoring the weights), each
op applied with its probability at its magnitude, batched on the device.

Deviations (also in the README section "Methods: DADA"):
- straight-through Gumbel instead of RELAX, exact second order instead of finite
  differences (above);
- a fresh validation batch every step: the official ``train_search.py`` calls
  ``next(iter(valid_queue))``, which restarts the loader and so reuses the first
  batch of each (reshuffled) epoch sampler pass -- here search-val is cycled;
- Bernoulli gates per sample (official: one draw per batch, as its data loader
  applies one sub-policy and one gate pattern to the whole batch);
- the unsampled sub-policies' stand-in output in the weight gradient is the clean
  input x (official Gumbel code: the constant 1, meaningless on non-image scales);
- probabilities and magnitudes are projected onto [0, 1] after each Adam step (the
  official code only clamps when reading them, so a parameter that leaves [0, 1]
  stops learning);
- CPU-scale search budgets in the smoke and quick profiles (``profile_params``).
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Iterator, Sequence

import higher
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import RelaxedBernoulli
from torch.nn.attention import SDPBackend, sdpa_kernel

from bench.api import Method, Split, Task
from bench.augment import OPS, get_op
from bench.augment.core import PROBABILITY_EPS, blend
from bench.data import split_indices
from bench.errors import NonFiniteError, UserError

OPS_PER_SUB_POLICY = 2  # K = 2 in the paper and primitives.py


def enumerate_sub_policies(op_names: Sequence[str]) -> list[tuple[str, ...]]:
    """All ordered-by-position pairs of distinct ops, as the official dfs (i < j)."""
    return list(itertools.combinations(op_names, OPS_PER_SUB_POLICY))


def straight_through_bernoulli(probability: torch.Tensor, n: int, temperature: float) -> torch.Tensor:
    """(n,) hard 0/1 gates forward; the relaxed Bernoulli sample's gradient backward."""
    p = probability.clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS).expand(n)
    soft = RelaxedBernoulli(torch.as_tensor(temperature, dtype=p.dtype, device=p.device), probs=p).rsample()
    hard = (soft >= 0.5).to(soft.dtype)
    return hard + soft - soft.detach()


class DadaPolicy(nn.Module):
    """The search-time policy: weights over sub-policies, per-op probabilities and
    magnitudes, and the differentiable augmentation they define."""

    def __init__(self, sub_policies: list[tuple[str, ...]], facts: dict[str, Any], temperature: float):
        super().__init__()
        self.sub_policies = sub_policies
        self.facts = dict(facts)
        self.temperature = temperature
        n = len(sub_policies)
        self.weights = nn.Parameter(torch.full((n,), 1e-3))
        self.probabilities = nn.Parameter(torch.full((n, OPS_PER_SUB_POLICY), 0.5))
        self.magnitudes = nn.Parameter(torch.full((n, OPS_PER_SUB_POLICY), 0.5))

    def sample_weights(self) -> torch.Tensor:
        """One-hot straight-through Gumbel-softmax sample over the sub-policies."""
        return F.gumbel_softmax(self.weights, tau=self.temperature, hard=True)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Augment the batch with one sampled sub-policy (``weights``: a one-hot
        sample, drawn here when not given); differentiable in all three parameters."""
        w = self.sample_weights() if weights is None else weights
        k = int(w.detach().argmax())
        out = x
        for stage, name in enumerate(self.sub_policies[k]):
            gate = straight_through_bernoulli(self.probabilities[k, stage], len(x), self.temperature)
            magnitude = self.magnitudes[k, stage].clamp(0, 1)
            transformed = get_op(name)(out, magnitude, training=True, temperature=self.temperature, **self.facts)
            out = blend(out, transformed.to(out.dtype), gate.to(out.dtype))
        # Forward value: the sampled sub-policy's output (w is one-hot). Backward: the
        # gradient of the soft sample reaches every weight; unsampled sub-policies
        # stand in with the clean input (they are not computed).
        chosen, others = w[k].to(x.dtype), (w.sum() - w[k]).to(x.dtype)
        return out + (chosen - chosen.detach()) * out + (others - others.detach()) * x

    @torch.no_grad()
    def project_(self) -> None:
        # Inside the gate's clamp range, so a probability at a bound still learns.
        self.probabilities.clamp_(PROBABILITY_EPS, 1 - PROBABILITY_EPS)
        self.magnitudes.clamp_(0, 1)

    @torch.no_grad()
    def top_k(self, k: int) -> list[dict[str, Any]]:
        """The ``k`` sub-policies of largest weight (the official genotype, truncated),
        with their softmax weight, probabilities and magnitudes."""
        share = torch.softmax(self.weights, dim=-1)
        order = torch.sort(self.weights, descending=True, stable=True).indices[:k].tolist()
        return [{"ops": [{"op": name, "probability": float(self.probabilities[i, s].clamp(0, 1)),
                          "magnitude": float(self.magnitudes[i, s].clamp(0, 1))}
                         for s, name in enumerate(self.sub_policies[i])],
                 "weight": float(share[i]), "index": i}
                for i in order]


def unrolled_hypergradient(model: nn.Module, optimizer: torch.optim.Optimizer,
                           train_loss: Callable[[nn.Module], torch.Tensor],
                           val_loss: Callable[[nn.Module], torch.Tensor],
                           hyper_parameters: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], float, float]:
    """d val_loss(w') / d alpha with w' = one step of ``optimizer`` (its settings and
    momentum buffers) on ``train_loss(w, alpha)``, exact second order via ``higher``.
    ``model`` and ``optimizer`` are left unchanged. Returns the gradients and the
    two losses."""
    # The math attention kernel: the fused ones (flash / memory-efficient) have no
    # double backward.
    with sdpa_kernel(SDPBackend.MATH), \
            higher.innerloop_ctx(model, optimizer, copy_initial_weights=True, track_higher_grads=True) as (fmodel, diffopt):
        inner = train_loss(fmodel)
        diffopt.step(inner)
        outer = val_loss(fmodel)
        grads = torch.autograd.grad(outer, list(hyper_parameters), allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(hyper_parameters, grads)]
    return grads, float(inner.detach()), float(outer.detach())


def batches(split: Split, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One shuffled pass; incomplete last batches are dropped (BatchNorm needs > 1
    example) unless the split holds a single batch."""
    n = len(split)
    order = torch.randperm(n, generator=generator).to(split.x.device)
    size = min(batch_size, n)
    for start in range(0, n - size + 1, size):
        idx = order[start:start + size]
        yield split.x[idx], split.y[idx]


def validation_stream(split: Split, batch_size: int, generator: torch.Generator
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless fresh search-val batches: reshuffled passes over the whole split."""
    while True:
        yield from batches(split, batch_size, generator)


def apply_found_policy(x: torch.Tensor, sub_policies: list[dict[str, Any]], facts: dict[str, Any]) -> torch.Tensor:
    """The retrain augmentation: per example, one of ``sub_policies`` drawn uniformly,
    each of its ops applied with its probability at its magnitude (hard gates),
    batched: each op runs once per stage on the examples that drew it."""
    b = len(x)
    choice = torch.randint(0, len(sub_policies), (b,), device=x.device)
    probability = torch.tensor([[o["probability"] for o in sp["ops"]] for sp in sub_policies],
                               dtype=x.dtype, device=x.device)
    magnitude = torch.tensor([[o["magnitude"] for o in sp["ops"]] for sp in sub_policies],
                             dtype=x.dtype, device=x.device)
    out = x.clone()
    for stage in range(probability.shape[1]):
        fires = torch.rand(b, device=x.device) < probability[choice, stage]
        names = [sp["ops"][stage]["op"] for sp in sub_policies]
        for name in sorted(set(names)):
            holders = torch.tensor([i for i, n in enumerate(names) if n == name], device=x.device)
            rows = (fires & torch.isin(choice, holders)).nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            out[rows] = get_op(name)(out[rows], magnitude[choice[rows], stage], training=False, **facts).to(out.dtype)
    return out


class Dada(Method):
    name = "dada"
    description = ("DADA: bilevel augmentation search (Gumbel sub-policy weights, straight-through probabilities, "
                   "magnitudes), one-step unrolled exact hypergradient via higher; retrain with the top-k policy.")
    params = {
        "search_size": 4000,  # reduced training subset for the search (reduced CIFAR-10)
        "search_epochs": 20,
        "search_batch_size": 128,
        "search_lr": 0.1,  # SGD of the search model (and the unrolled step)
        "search_lr_min": 0.001,
        "search_momentum": 0.9,
        "search_weight_decay": 2e-4,
        "grad_clip": 5.0,
        "aug_lr": 0.005,  # Adam on the augmentation parameters
        "aug_beta1": 0.5,
        "aug_beta2": 0.999,
        "temperature": 0.5,
        "top_k": 25,
    }
    profile_params = {
        "smoke": {"search_size": 32, "search_epochs": 1, "search_batch_size": 8},
        "quick": {"search_size": 1000, "search_epochs": 2, "search_batch_size": 32},
    }
    kind = "bilevel"

    def __init__(self, ctx, model, hparams):
        super().__init__(ctx, model, hparams)
        self.policy: dict[str, Any] | None = None

    @classmethod
    def supports(cls, task: Task) -> str | None:
        ops = task.augmentation_space
        if len(ops) < OPS_PER_SUB_POLICY:
            return f"dada needs at least {OPS_PER_SUB_POLICY} augmentation ops; task {task.name!r} has {len(ops)}"
        unknown = [o for o in ops if o not in OPS]
        if unknown:
            return f"task {task.name!r} names unknown augmentation ops: {', '.join(unknown)}"
        return None

    def search(self) -> dict[str, Any]:
        hp, task, ctx = self.hparams, self.task, self.ctx
        train = ctx.data.train
        n = min(int(hp["search_size"]), len(train))
        if n < 4:
            raise UserError(f"dada needs at least 4 training examples for its search split, not {n}")
        seed = ctx.config.train_seed
        train_idx, val_idx = split_indices(len(train), (n // 2, n - n // 2), seed)
        search_train = Split(train.x[train_idx.to(train.x.device)], train.y[train_idx.to(train.y.device)])
        search_val = Split(train.x[val_idx.to(train.x.device)], train.y[val_idx.to(train.y.device)])
        generator = torch.Generator().manual_seed(seed)

        model = ctx.make_model()  # the search network; self.model stays untouched
        model.train()
        sub_policies = enumerate_sub_policies(task.augmentation_space)
        policy = DadaPolicy(sub_policies, task.augmentation_kwargs, hp["temperature"]).to(ctx.device)
        model_opt = torch.optim.SGD(model.parameters(), lr=hp["search_lr"], momentum=hp["search_momentum"],
                                    weight_decay=hp["search_weight_decay"])
        epochs = int(hp["search_epochs"])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(model_opt, T_max=max(1, epochs),
                                                              eta_min=hp["search_lr_min"])
        policy_opt = torch.optim.Adam(policy.parameters(), lr=hp["aug_lr"], betas=(hp["aug_beta1"], hp["aug_beta2"]),
                                      weight_decay=0.0)
        val_batches = validation_stream(search_val, int(hp["search_batch_size"]), generator)

        steps, history = 0, []
        ctx.progress.start("search", epochs)
        for epoch in range(epochs):
            val_losses = []
            for x, y in batches(search_train, int(hp["search_batch_size"]), generator):
                x_val, y_val = next(val_batches)
                augmented: list[torch.Tensor] = []

                def train_loss(fmodel: nn.Module) -> torch.Tensor:
                    augmented.append(policy(x))
                    return task.loss(fmodel(augmented[0]), y)

                grads, inner, outer = unrolled_hypergradient(
                    model, model_opt, train_loss, lambda fmodel: task.loss(fmodel(x_val), y_val),
                    list(policy.parameters()))
                if not (math.isfinite(inner) and math.isfinite(outer)):
                    raise NonFiniteError(f"dada search loss is {inner} / {outer} at step {steps}")
                policy_opt.zero_grad(set_to_none=True)
                for p, g in zip(policy.parameters(), grads):
                    p.grad = g
                policy_opt.step()
                policy.project_()

                # The normal step of the search model on the same augmented batch.
                model_opt.zero_grad(set_to_none=True)
                task.loss(model(augmented[0].detach()), y).backward()
                nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"])
                model_opt.step()
                val_losses.append(outer)
                steps += 1
            schedule.step()
            history.append({"epoch": epoch, "unrolled_val_loss": sum(val_losses) / max(1, len(val_losses))})
            ctx.progress.step(val=f"{history[-1]['unrolled_val_loss']:.3g}")
        ctx.progress.close()

        self.policy = {
            "sub_policies": policy.top_k(int(hp["top_k"])),
            "n_candidates": len(sub_policies),
            "selection": "uniform per example among the top-k",
            "estimator": "straight-through Gumbel",
            "search": {"train_size": len(search_train), "val_size": len(search_val), "epochs": epochs,
                       "steps": steps, "history": history},
        }
        return self.policy

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if self.policy is None:
            raise RuntimeError("dada: search() must run before training")
        with torch.no_grad():
            augmented = apply_found_policy(x, self.policy["sub_policies"], self.task.augmentation_kwargs)
        return self.task.loss(self.model(augmented), y), {}

    def learned_augmentation(self) -> dict[str, Any] | None:
        if self.policy is None:
            return None
        return {k: v for k, v in self.policy.items() if k != "search"}
