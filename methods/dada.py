"""DADA: Differentiable Automatic Data Augmentation (Li et al., ECCV 2020).

Search space (as the paper and VDIGPKU/DADA ``primitives.py``): every pair (o_i, o_j),
i < j, of the task's ``augmentation_space`` ops is one sub-policy (105 for 15 image
ops; 120 for mnist_rot's 16, 6 for qm9's 4), applied in that order. Each sub-policy
has a weight (a logit, initialised to 1e-3 as the official code) and, per op, a
probability and a level in [0, 1] (both initialised to 0.5; the official code and the
records call the level "magnitude"). Ops come from the shared library
(``bench.augment.get_op``, its public call) with the task's ``augmentation_kwargs``.

Levels and firing, as the official ``search_gumbel/operation.py`` (``apply_augment``:
value = level * (high - low) + low) and its retrain fork (``fast-autoaugment``):

- ops with a signed range map the level onto [-top, top]: value = (2 * level - 1) * top,
  so level 0.5 is the identity (the start), 0 and 1 the two extremes. ShearX/Y
  [-0.3, 0.3], TranslateX/Y [-0.45, 0.45] and Rotate [-30, 30] degrees then get a
  random mirror (the official ``random_mirror = True``); Contrast, Color, Brightness
  and Sharpness have none: factor = 1 + (2 * level - 1) * 0.9, i.e. level * 1.8 + 0.1
  in [0.1, 1.9]. In the library these ops are symmetric with a magnitude in [0, 1]:
  DADA calls them at magnitude |2 * level - 1| with the sign of 2 * level - 1 passed
  explicitly (``sign=``), or left to the library's random sign for the mirrored five.
  The other symmetric ops of the library (frequency and time shifts, SO(3) rotation;
  no official DADA counterpart) follow the unmirrored rule.
- one-sided ops map the level onto the library's range: Cutout 0 to 0.2 of the side
  (level 0 = identity, as the official [0, 0.2]); Solarize and Posterize run the
  official way round (threshold 0 to 256, bits 4 to 8: level 1 is the identity), i.e.
  library magnitude 1 - level; other one-sided ops magnitude = level.
- on/off ops (AutoContrast, Invert, Equalize, flips, reflection ...) have no strength:
  they fire with the sub-policy's probability p alone (the library is called at its
  top probability, forced to 1 as Faster AA does), and their level is unused.
- a task's override of an op's top value (``augmentation_kwargs["ranges"]``) sets the
  ends of its signed range: mnist_rot's rotate override 180 makes the range
  [-180, 180] degrees (full circle, the task's known invariance reachable), still
  with identity at level 0.5.

Gradient estimators (``estimator``): both variants of the official code.

``relax`` (the default): the paper's RELAX, as the official ``search_relax/`` (the
search the official README runs) computes it. Its ``Architect`` evaluates the RELAX
gradient (``Network.relax``: ``(f(b) - Q(z~)) d log p(b) + dQ(z) - dQ(z~)``, ``Q`` the
learned control variate ``QFunc``) twice, at w + R v and w - R v with the same
samples, and takes the difference over 2R (its finite-difference Hessian-vector
product). Every term of ``Q`` is the same in both evaluations, so it cancels exactly:
the weights and probabilities receive the plain score-function estimator of the
implicit hypergradient, ``-(v . d g_b) d log p(b)``, with ``v . d g_b`` the
directional derivative of the training gradient under the sampled augmentation b
along the search-val gradient v (``QFunc``'s own parameters are trained on the
difference of two variance gradients and never reach the policy). Here
(``score_function_hypergradient``):

- hard samples: a sub-policy k ~ softmax(weights), per-example gates ~ Bernoulli(p);
- per example i, the cost ``c_i = -lr v . grad loss_i / B`` (``sample_costs``),
  ``v . grad loss_i`` by the official central difference (R = 0.01 / ||v||, weights
  and BatchNorm statistics restored); the weights get ``sum_i c_i`` times
  ``onehot(k) - softmax(weights)``, each gate's probability its own example's c_i
  times the Bernoulli score (a gate acts on one example; the official draws one gate
  per batch and uses the batch's cost);
- levels: the exact unrolled hypergradient through the hard-gated ops (higher); no
  ``QFunc`` (it cancels); the official has no lr factor in the implicit term (a
  constant scale, which Adam removes).

``gumbel`` (``search_gumbel/``), straight-through:

- one sub-policy is sampled per batch from a Gumbel-softmax over the weights
  (temperature 0.5 in the official CIFAR scripts); its weight is the hard one-hot
  with the soft sample's gradient (``F.gumbel_softmax(hard=True)``);
- each op is applied with a straight-through relaxed Bernoulli gate: hard 0/1
  forward, the relaxed sample's gradient (same temperature) to the probability;
- levels get the ops' own gradients (continuous ops; the signed mapping keeps a
  gradient at level 0.5) or the library's straight-through estimator (discrete ops).

At the quick budget neither estimator moves the sub-policy weights beyond the noise
of directionless gradients (``benchmarks/learning_noise.py``), and
``benchmarks/dada_signal.py`` shows why: on mnist_rot, with the search's own model
half-way, the sub-policies' expected costs differ by 0.13-0.15 of one sample's noise
(levels at the start 0.5, or all at 0.75), so a sub-policy one spread better than
average stands 3 standard errors out only after 400-500 samples of it: 48,000-60,000
steps, against the official 320. (A model trained on clean digits finds every
invert sub-policy harmful at once; the search's model, which trains on the policy's
own augmentations, does not.)

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

Around the policy, on tasks that declare a policy base augmentation
(``Task.policy_base_augment``; CIFAR-10: random crop + flip) the search-train batch
is first given that base and, after the policy, a ``cutout_length``-pixel Cutout
(16, the official CIFAR search and retrain configs); the search-val batch gets
neither, as the official loaders.

Final policy (``genotype()`` of the official code): the ``top_k`` = 25 sub-policies
with the largest weights (fewer if fewer exist). Retrain (the harness's training
loop on ``self.model``, freshly initialised): for each training image, one of the
top-k sub-policies drawn uniformly (the official ``Augmentation`` class of its
fast-autoaugment fork draws ``random.choice`` per image, ignoring the weights), each
op applied with its probability at its level, batched on the device; with the policy
base before and the Cutout after, as in the search.

Records: ``policy`` (the top-k and the search summary), ``learned_augmentation``,
``search_history`` (about 20 snapshots per search: step, losses, the state summary of
``bench.diagnostics`` and each op's marginal weight) and, through
``augmentation_state()``, the ``learning`` diagnostic (``weights`` = softmax over the
sub-policies, ``probabilities`` and ``magnitudes`` = levels of ops with a strength).

Control (``learn_augmentation: False``, label ``dada (learn_augmentation=False)``):
the random-policy control of issue 18, no search, in the same search space with the
same retrain, model and budget. Drawn once at construction under the run's
``augmentation_seed`` (which ignores this parameter, so each seed has one control
policy): uniform sub-policy weights (the method's own start), so the top-k are
``top_k`` candidates drawn uniformly without replacement (a random tie-break of equal
weights: the stable sort of the method would pick the first pairs of the
enumeration, all holding the first ops), and every probability and level uniform in
[0, 1]. This is not the method's start: DADA starts deterministically at probability
0.5 and level 0.5 (the identity of every signed op), a nearly unaugmenting policy;
the issue asks for a random policy of the space, as the random-search baselines of
the AutoAugment line. Its record has no ``search_history``; ``policy.search`` is None.

Deviations (also in the README section "Methods: DADA"):
- ``relax``: no ``QFunc`` (it cancels, above), gates and costs per example; the
  levels' hypergradient exact (second order through higher, below) instead of the
  official finite differences, for both estimators;
- level gradients: the ops' own derivatives (continuous ops) instead of the official
  straight-through identity for every op (``images - magnitude`` + ``magnitude``);
- a fresh validation batch every step: the official ``train_search.py`` calls
  ``next(iter(valid_queue))``, which restarts the loader and so reuses the first
  batch of each (reshuffled) epoch sampler pass -- here search-val is cycled;
- Bernoulli gates per sample (official: one draw per batch, as its data loader
  applies one sub-policy and one gate pattern to the whole batch);
- ``gumbel``: the unsampled sub-policies' stand-in output in the weight gradient is
  the clean input x (official Gumbel code: the constant 1, meaningless on non-image
  scales);
- probabilities and levels are projected onto [0, 1] after each Adam step (the
  official code only clamps when reading them, so a parameter that leaves [0, 1]
  stops learning);
- the Cutout of the CIFAR pipeline fills the square with 0 in pixel space (the
  library's op; the official one zeroes it after normalisation, i.e. the mean colour);
  the crop pads with zeros, as the official ``RandomCrop(32, padding=4)``;
- CPU-scale search budgets in the smoke and quick profiles (``profile_params``):
  ``quick`` takes 2,000 training images (1,000 search-train, 1,000 search-val) and
  5 epochs at batch 16: 310 hypergradient steps, the official count (2,000 / 128 x 20
  = 320), at about the CPU cost of erm's quick training; the smaller batch makes each
  hypergradient noisier (``paper`` keeps 4,000 images, 20 epochs, batch 128).
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
from bench.augment import OPS, Op, get_op
from bench.augment.core import PROBABILITY_EPS, blend, per_sample
from bench.data import split_indices
from bench.diagnostics import state_summary
from bench.errors import NonFiniteError, UserError
from bench.params import Param, log_uniform

OPS_PER_SUB_POLICY = 2  # K = 2 in the paper and primitives.py
# operation.py's ``random_mirror = True``: these ops flip the sign of their signed
# value with probability 1/2 (the library's random sign); the other signed ops do not.
MIRRORED_OPS = frozenset({"shear_x", "shear_y", "translate_x", "translate_y", "rotate"})
# Official ranges that run from the strongest setting (level 0) to the identity
# (level 1): Solarize [0, 256] (threshold), Posterize [4, 8] (bits kept).
REVERSED_OPS = frozenset({"solarize", "posterize"})
HISTORY_SNAPSHOTS = 20  # search_history entries per search (plus the start)


def signed_level(level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(|2 level - 1|, sign of 2 level - 1) with sign(0) = +1. The magnitude is
    computed as u * sign(u).detach(), so its gradient is sign(u) -- not 0 at the
    identity level 0.5, where torch's abs has a zero derivative."""
    u = 2 * level - 1
    sign = torch.where(u.detach() >= 0, 1.0, -1.0).to(u.dtype)
    return u * sign, sign


def apply_at_level(op: Op, x: torch.Tensor, level: torch.Tensor | float, training: bool, temperature: float,
                   facts: dict[str, Any]) -> torch.Tensor:
    """Op ``op`` on the batch at DADA's ``level`` in [0, 1] (a scalar or one per
    sample), through the library's public call (see the module docstring for the
    mapping). On/off ops always fire here: DADA's probability gates them."""
    if op.kind == "on_off":
        always = {**facts, "ranges": {**facts.get("ranges", {}), op.name: 1.0}}
        return op(x, 1.0, training=False, temperature=temperature, **always)
    level = per_sample(level, x)
    if op.symmetric:
        magnitude, sign = signed_level(level)
        return op(x, magnitude, training=training, temperature=temperature,
                  sign=None if op.name in MIRRORED_OPS else sign, **facts)
    return op(x, 1 - level if op.name in REVERSED_OPS else level, training=training, temperature=temperature,
              **facts)


def official_value(op_name: str, level: float, top: float | None = None) -> float | None:
    """The op's parameter at ``level`` as the official ``apply_augment`` computes it,
    before any random mirror (signed value for signed ops; None for on/off ops), in
    the library's unit (``top`` overrides the top of the range). For tests and
    records."""
    op = get_op(op_name)
    if op.kind == "on_off":
        return None
    high = op.high if top is None else top
    if op.symmetric:
        return (2 * level - 1) * high
    m = 1 - level if op_name in REVERSED_OPS else level
    return op.low + (high - op.low) * m


def enumerate_sub_policies(op_names: Sequence[str]) -> list[tuple[str, ...]]:
    """All ordered-by-position pairs of distinct ops, as the official dfs (i < j)."""
    return list(itertools.combinations(op_names, OPS_PER_SUB_POLICY))


def straight_through_bernoulli(probability: torch.Tensor, n: int, temperature: float) -> torch.Tensor:
    """(n,) hard 0/1 gates forward; the relaxed Bernoulli sample's gradient backward."""
    p = probability.clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS).expand(n)
    soft = RelaxedBernoulli(torch.as_tensor(temperature, dtype=p.dtype, device=p.device), probs=p).rsample()
    hard = (soft >= 0.5).to(soft.dtype)
    return hard + soft - soft.detach()


def cutout(x: torch.Tensor, length: int) -> torch.Tensor:
    """The official ``CutoutDefault(length)``: one ``length``-pixel square (clipped at
    the border) blanked per image, through the library's Cutout op."""
    return get_op("cutout")(x, 1.0, training=False, ranges={"cutout": length / x.shape[-1]})


class DadaPolicy(nn.Module):
    """The search-time policy: weights over sub-policies, per-op probabilities and
    levels (``magnitudes``), and the differentiable augmentation they define."""

    def __init__(self, sub_policies: list[tuple[str, ...]], facts: dict[str, Any], temperature: float):
        super().__init__()
        self.sub_policies = sub_policies
        self.facts = dict(facts)
        self.temperature = temperature
        n = len(sub_policies)
        self.weights = nn.Parameter(torch.full((n,), 1e-3))
        self.probabilities = nn.Parameter(torch.full((n, OPS_PER_SUB_POLICY), 0.5))
        import os
        self.magnitudes = nn.Parameter(torch.full((n, OPS_PER_SUB_POLICY), float(os.environ.get("LEVEL_START", 0.5))))
        # Levels that change the augmentation (on/off ops have none).
        self.register_buffer("has_level", torch.tensor([[get_op(o).kind != "on_off" for o in sp]
                                                        for sp in sub_policies], dtype=torch.bool))

    def sample_weights(self) -> torch.Tensor:
        """One-hot straight-through Gumbel-softmax sample over the sub-policies."""
        return F.gumbel_softmax(self.weights, tau=self.temperature, hard=True)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Augment the batch with one sampled sub-policy (``weights``: a one-hot
        sample, drawn here when not given); differentiable in all three parameters."""
        w = self.sample_weights() if weights is None else weights
        k = int(w.detach().argmax())
        out = self.apply_sub_policy(
            x, k, lambda stage: straight_through_bernoulli(self.probabilities[k, stage], len(x), self.temperature))
        # Forward value: the sampled sub-policy's output (w is one-hot). Backward: the
        # gradient of the soft sample reaches every weight; unsampled sub-policies
        # stand in with the clean input (they are not computed).
        chosen, others = w[k].to(x.dtype), (w.sum() - w[k]).to(x.dtype)
        return out + (chosen - chosen.detach()) * out + (others - others.detach()) * x

    def apply_sub_policy(self, x: torch.Tensor, k: int, gate: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """Sub-policy ``k`` on the batch: stage s fires per example where ``gate(s)``
        (shape (B,), 0/1 forward) is 1, at the stage's level (differentiable). The
        gate of a stage is drawn just before its op, so both estimators keep one
        random-number order."""
        out = x
        for stage, name in enumerate(self.sub_policies[k]):
            fires = gate(stage)
            level = self.magnitudes[k, stage].clamp(0, 1)
            transformed = apply_at_level(get_op(name), out, level, True, self.temperature, self.facts)
            out = blend(out, transformed.to(out.dtype), fires.to(out.dtype))
        return out

    @torch.no_grad()
    def project_(self) -> None:
        # Inside the gate's clamp range, so a probability at a bound still learns.
        self.probabilities.clamp_(PROBABILITY_EPS, 1 - PROBABILITY_EPS)
        self.magnitudes.clamp_(0, 1)

    @torch.no_grad()
    def state(self) -> dict[str, torch.Tensor]:
        """The learned augmentation in its interpretable space (see
        ``Method.augmentation_state``): ``weights`` softmax over the sub-policies,
        ``probabilities`` (sub-policies, 2), ``magnitudes`` the levels of ops that have
        one (flat)."""
        return {"weights": torch.softmax(self.weights, -1).detach().cpu().clone(),
                "probabilities": self.probabilities.clamp(0, 1).detach().cpu().clone(),
                "magnitudes": self.magnitudes.clamp(0, 1)[self.has_level].detach().cpu().clone()}

    @torch.no_grad()
    def op_weights(self) -> dict[str, float]:
        """Each op's marginal weight: the softmax weight of the sub-policies holding
        it, halved (two ops per sub-policy), so the values sum to 1."""
        share = torch.softmax(self.weights, -1).cpu()
        out: dict[str, float] = {}
        for k, sub_policy in enumerate(self.sub_policies):
            for name in sub_policy:
                out[name] = out.get(name, 0.0) + float(share[k]) / OPS_PER_SUB_POLICY
        return {name: round(value, 6) for name, value in out.items()}

    @torch.no_grad()
    def randomise_(self) -> torch.Tensor:
        """The control's draw: every probability and level uniform in [0, 1] (the
        weights keep their uniform start); returns a uniformly random order of the
        sub-policies, the tie-break of ``top_k`` between equal weights."""
        self.probabilities.copy_(torch.rand(self.probabilities.shape))
        self.magnitudes.copy_(torch.rand(self.magnitudes.shape))
        return torch.randperm(len(self.sub_policies))

    @torch.no_grad()
    def top_k(self, k: int, order: torch.Tensor | None = None) -> list[dict[str, Any]]:
        """The ``k`` sub-policies of largest weight (the official genotype, truncated),
        with their softmax weight, probabilities and levels ("magnitude"). ``order``:
        the sub-policies' order before the stable sort by weight (ties keep it)."""
        share = torch.softmax(self.weights, dim=-1)
        order = torch.arange(len(self.sub_policies)) if order is None else order.cpu()
        ranked = torch.sort(self.weights.detach().cpu()[order], descending=True, stable=True).indices
        order = order[ranked][:k].tolist()
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


def per_example_losses(task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B,) the task's loss of each example (its ``loss`` averages over the batch)."""
    return torch.stack([task.loss(outputs[i:i + 1], targets[i:i + 1]) for i in range(len(targets))])


@torch.no_grad()
def directional_derivatives(model: nn.Module, direction: Sequence[torch.Tensor],
                            losses: Callable[[nn.Module], torch.Tensor], r: float = 0.01) -> torch.Tensor:
    """d losses(w + e v) / d e at e = 0 for every example, by the central difference of
    the official ``_hessian_vector_product`` (step R = r / ||v||); the model's weights
    and buffers (BatchNorm statistics) are restored exactly afterwards."""
    params = list(model.parameters())
    saved = [p.detach().clone() for p in params]
    buffers = [b.detach().clone() for b in model.buffers()]
    norm = torch.sqrt(sum((v.detach() ** 2).sum() for v in direction))
    step = r / float(norm) if float(norm) > 0 else r

    def at(scale: float) -> torch.Tensor:
        for p, w, v in zip(params, saved, direction):
            p.copy_(w + scale * step * v)
        return losses(model)

    plus, minus = at(1.0), at(-1.0)
    for p, w in zip(params, saved):
        p.copy_(w)
    for b, saved_b in zip(model.buffers(), buffers):
        b.copy_(saved_b)
    return (plus - minus) / (2 * step)


def sample_sub_policy(policy: "DadaPolicy", n: int, device: torch.device) -> tuple[int, torch.Tensor]:
    """Hard samples of the score-function estimator: a sub-policy k ~ softmax(weights)
    and (n, 2) per-example 0/1 gates ~ Bernoulli(its probabilities)."""
    with torch.no_grad():
        k = int(torch.multinomial(torch.softmax(policy.weights, -1), 1))
        p = policy.probabilities[k].clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS)
        gates = (torch.rand(n, OPS_PER_SUB_POLICY, device=device) < p).to(policy.probabilities.dtype)
    return k, gates


def sample_costs(model: nn.Module, optimizer: torch.optim.Optimizer, policy: "DadaPolicy", task: Task,
                 x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                 finish: Callable[[torch.Tensor], torch.Tensor], k: int, gates: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, float]:
    """For sub-policy ``k`` with ``gates`` on the batch: each example's cost
    -lr v . grad loss_i / B (v: the search-val gradient at the one-step unrolled
    weights; the sum over i is the first-order change of the unrolled val loss that
    the score function multiplies by d log p(b)), the levels' exact unrolled
    hypergradient (higher),
    the augmented batch and the train / unrolled val losses."""
    augmented = finish(policy.apply_sub_policy(x, k, lambda stage: gates[:, stage].to(x.dtype)))
    with sdpa_kernel(SDPBackend.MATH), \
            higher.innerloop_ctx(model, optimizer, copy_initial_weights=True, track_higher_grads=True) as (fmodel, diffopt):
        inner = task.loss(fmodel(augmented), y)
        diffopt.step(inner)
        outer = task.loss(fmodel(x_val), y_val)
        grads = torch.autograd.grad(outer, [policy.magnitudes, *fmodel.parameters()], allow_unused=True)
    level_grad = torch.zeros_like(policy.magnitudes) if grads[0] is None else grads[0]
    v = [torch.zeros_like(w) if g is None else g.detach() for w, g in zip(model.parameters(), grads[1:])]
    fixed = augmented.detach()
    d = directional_derivatives(model, v, lambda m: per_example_losses(task, m(fixed), y))
    # d L_val(w') / d alpha = -lr v . d g / d alpha, with g = mean_i grad loss_i
    cost = -optimizer.param_groups[0]["lr"] * d / len(y)
    return cost, level_grad, augmented, float(inner.detach()), float(outer.detach())


def score_function_hypergradient(model: nn.Module, optimizer: torch.optim.Optimizer, policy: "DadaPolicy",
                                 task: Task, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor,
                                 y_val: torch.Tensor, finish: Callable[[torch.Tensor], torch.Tensor]
                                 ) -> tuple[list[torch.Tensor], torch.Tensor, float, float]:
    """The hypergradient of the official ``search_relax`` (module docstring): hard
    samples; weights and probabilities by the score function, R d log p(b) with R the
    summed cost (per example for the gates, which act on one example each); levels
    exact. Returns the gradients of (weights, probabilities, magnitudes), the
    augmented batch and the two losses."""
    k, gates = sample_sub_policy(policy, len(x), x.device)
    cost, level_grad, augmented, inner, outer = sample_costs(model, optimizer, policy, task, x, y, x_val, y_val,
                                                                 finish, k, gates)
    with torch.no_grad():
        total = cost.sum()
        weight_grad = -total * torch.softmax(policy.weights, -1)  # d log softmax_k / d logits = onehot(k) - softmax
        weight_grad[k] += total
        p = policy.probabilities[k].clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS)
        score = gates / p - (1 - gates) / (1 - p)  # d log Bernoulli(gate; p) / d p
        probability_grad = torch.zeros_like(policy.probabilities)
        probability_grad[k] = (cost.unsqueeze(1) * score).sum(0)
    return [weight_grad, probability_grad, level_grad], augmented, inner, outer


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
    each of its ops applied with its probability at its level (hard gates),
    batched: each op runs once per stage on the examples that drew it."""
    b = len(x)
    choice = torch.randint(0, len(sub_policies), (b,), device=x.device)
    probability = torch.tensor([[o["probability"] for o in sp["ops"]] for sp in sub_policies],
                               dtype=x.dtype, device=x.device)
    level = torch.tensor([[o["magnitude"] for o in sp["ops"]] for sp in sub_policies],
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
            out[rows] = apply_at_level(get_op(name), out[rows], level[choice[rows], stage], False, 0.5,
                                       facts).to(out.dtype)
    return out


class Dada(Method):
    name = "dada"
    description = ("DADA: bilevel augmentation search over sub-policy weights, probabilities and levels (RELAX as "
                   "the official code computes it, or straight-through Gumbel), one-step unrolled hypergradient; "
                   "retrain with the top-k policy.")
    params = {
        # reduced training subset for the search (reduced CIFAR-10), half of it search-val
        "search_size": Param(4000, int, low=4),
        "search_epochs": Param(20, int, low=1),
        "search_batch_size": Param(128, int, low=1),
        "search_lr": Param(0.1, float, low=0),  # SGD of the search model (and the unrolled step)
        "search_lr_min": Param(0.001, float, low=0),
        "search_momentum": Param(0.9, float, low=0, high=1),
        "search_weight_decay": Param(2e-4, float, low=0),
        "grad_clip": Param(5.0, float, low=0),
        "aug_lr": Param(0.005, float, low=0, tune=log_uniform(1e-3, 3e-2)),  # Adam on the augmentation parameters
        "aug_beta1": Param(0.5, float, low=0, high=1),
        "aug_beta2": Param(0.999, float, low=0, high=1),
        "temperature": Param(0.5, float, low=1e-3, tune=log_uniform(0.1, 1.0)),
        "top_k": Param(25, int, low=1),  # sub-policies kept (all, where the task has fewer)
        # pixels, after the policy, on tasks with a policy base (official CIFAR configs); 0: off
        "cutout_length": Param(16, int, low=0),
        # relax: the paper's estimator as the official search_relax computes it; gumbel: search_gumbel
        "estimator": Param("relax", str, choices=("relax", "gumbel")),
        "learn_augmentation": Param(True, bool),  # False: the control, a random policy of the space without search
    }
    profile_params = {
        "smoke": {"search_size": 32, "search_epochs": 1, "search_batch_size": 8},
        # 1,000 search-train images / 16 x 5 epochs = 310 hypergradient steps (official
        # 2,000 / 128 x 20 = 320), at about the CPU cost of erm's quick training.
        "quick": {"search_size": 2000, "search_epochs": 5, "search_batch_size": 16},
    }
    kind = "bilevel"

    def __init__(self, ctx, model, hparams):
        super().__init__(ctx, model, hparams)
        self.policy: dict[str, Any] | None = None
        # The search policy lives from the start, so its initial state is recorded.
        self.search_policy = DadaPolicy(enumerate_sub_policies(ctx.task.augmentation_space),
                                        ctx.task.augmentation_kwargs, hparams["temperature"])
        self.control_order = None if hparams["learn_augmentation"] else self.search_policy.randomise_()

    @classmethod
    def supports(cls, task: Task) -> str | None:
        ops = task.augmentation_space
        if len(ops) < OPS_PER_SUB_POLICY:
            return f"dada needs at least {OPS_PER_SUB_POLICY} augmentation ops; task {task.name!r} has {len(ops)}"
        unknown = [o for o in ops if o not in OPS]
        if unknown:
            return f"task {task.name!r} names unknown augmentation ops: {', '.join(unknown)}"
        return None

    def base(self, x: torch.Tensor) -> torch.Tensor:
        """The task's policy base augmentation (before the policy), without gradients."""
        with torch.no_grad():
            return self.task.policy_base_augment(x)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """After the policy: the Cutout of the official CIFAR pipeline, where the task
        has a policy base augmentation."""
        length = int(self.hparams["cutout_length"])
        return cutout(x, length) if length > 0 and self.task.policy_base_augmentation else x

    def search(self) -> dict[str, Any]:
        hp, task, ctx = self.hparams, self.task, self.ctx
        if self.control_order is not None:  # the control: the random policy, no search
            self.search_policy.requires_grad_(False)
            self.policy = {"sub_policies": self.search_policy.top_k(int(hp["top_k"]), self.control_order),
                           "n_candidates": len(self.search_policy.sub_policies),
                           "selection": "uniform per example among the top-k", "estimator": None, "search": None}
            return self.policy
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
        policy = self.search_policy
        model_opt = torch.optim.SGD(model.parameters(), lr=hp["search_lr"], momentum=hp["search_momentum"],
                                    weight_decay=hp["search_weight_decay"])
        epochs = int(hp["search_epochs"])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(model_opt, T_max=max(1, epochs),
                                                              eta_min=hp["search_lr_min"])
        policy_opt = torch.optim.Adam(policy.parameters(), lr=hp["aug_lr"], betas=(hp["aug_beta1"], hp["aug_beta2"]),
                                      weight_decay=0.0)
        val_batches = validation_stream(search_val, int(hp["search_batch_size"]), generator)
        batch_size = min(int(hp["search_batch_size"]), len(search_train))
        total_steps = epochs * (len(search_train) // batch_size)
        every = max(1, total_steps // HISTORY_SNAPSHOTS)
        start = policy.state()
        self.search_history = [{"step": 0, "epoch": 0, "state": state_summary(start, start),
                                "op_weights": policy.op_weights()}]

        steps, history, window = 0, [], []  # window: (train, unrolled val) losses since the last snapshot
        ctx.progress.start("search", epochs)
        for epoch in range(epochs):
            val_losses = []
            for x, y in batches(search_train, int(hp["search_batch_size"]), generator):
                x_val, y_val = next(val_batches)
                x = self.base(x)
                augmented: list[torch.Tensor] = []

                def train_loss(fmodel: nn.Module) -> torch.Tensor:
                    augmented.append(self.finish(policy(x)))
                    return task.loss(fmodel(augmented[0]), y)

                if hp["estimator"] == "relax":
                    grads, batch, inner, outer = score_function_hypergradient(
                        model, model_opt, policy, task, x, y, x_val, y_val, self.finish)
                    augmented.append(batch)
                else:
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
                window.append((inner, outer))
                steps += 1
                if steps % every == 0 or steps == total_steps:
                    self.search_history.append({
                        "step": steps, "epoch": epoch, "train_loss": sum(w[0] for w in window) / len(window),
                        "unrolled_val_loss": sum(w[1] for w in window) / len(window),
                        "state": state_summary(policy.state(), start), "op_weights": policy.op_weights()})
                    window = []
            schedule.step()
            history.append({"epoch": epoch, "unrolled_val_loss": sum(val_losses) / max(1, len(val_losses))})
            ctx.progress.step(val=f"{history[-1]['unrolled_val_loss']:.3g}")
        ctx.progress.close()

        self.policy = {
            "sub_policies": policy.top_k(int(hp["top_k"])),
            "n_candidates": len(policy.sub_policies),
            "selection": "uniform per example among the top-k",
            "estimator": "score function (relax)" if hp["estimator"] == "relax" else "straight-through Gumbel",
            "search": {"train_size": len(search_train), "val_size": len(search_val), "epochs": epochs,
                       "steps": steps, "history": history},
        }
        return self.policy

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if self.policy is None:
            raise RuntimeError("dada: search() must run before training")
        with torch.no_grad():
            augmented = self.finish(apply_found_policy(self.base(x), self.policy["sub_policies"],
                                                       self.task.augmentation_kwargs))
        return self.task.loss(self.model(augmented), y), {}

    def augmentation_state(self) -> dict[str, torch.Tensor]:
        return self.search_policy.state()

    def learned_augmentation(self) -> dict[str, Any] | None:
        if self.policy is None:
            return None
        return {k: v for k, v in self.policy.items() if k != "search"}
