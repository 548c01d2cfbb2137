"""Faster AutoAugment (Hataya et al., ECCV 2020): search a policy by density
matching with a WGAN-GP critic, then retrain the task's model with it.

Policy (as the official code, moskomule/dda ``faster_autoaugment/policy.py``): 10
sub-policies of 2 stages over the task's ``augmentation_space`` (ops of
bench/augment). Each stage holds, per op, a weight, a probability and a magnitude,
all initialised uniformly in [0, 1] (probabilities and magnitudes are clamped to
[0, 1] where used). In search a stage is the mixture ``sum_k softmax(w / 0.05)_k
op_k(x)``, each op applied with a relaxed-Bernoulli gate (temperature 0.1) and
discrete ops passing gradients by the straight-through estimator; at retrain time a
stage applies one op drawn from Categorical(softmax(w / 0.05)) with a hard Bernoulli
gate. The batch is split into chunks (8 in search, 16 at retrain, as the official
configs) and each chunk goes through one sub-policy drawn uniformly. On/off ops
(invert, flips, reflection ...) have only a probability, as in the official code.
Batched: each op of a stage runs once on the whole batch with per-example magnitudes,
probabilities and weights read from each example's sub-policy (the same mixture as
chunk by chunk, without a Python loop over chunks).

Search: a fresh model of the task (the run's model family at ``critic_width`` times
the run's width; 1 = ``ctx.make_model()``) is the critic: its ``embed(x)`` feeds its
own head (the task output: class logits, or the regression value) and a small critic
head Linear-ReLU-Linear, as the official ``Discriminator``. On a reduced training
subset, each batch is split in half: one half is augmented, the other is real.
Critic step: ``0.1 L(real) - D(real) + D(aug) + 10 GP`` with the augmentation
computed without gradients; policy step (critic frozen): ``0.1 L(aug) - D(aug)``. L is the cross-entropy for classification tasks
and the task's loss (L1 on normalised targets for QM9) for regression. Adam with lr
1e-3 and betas (0, 0.999) for both critic and policy (the official search config).
On tasks with a policy base augmentation (``Task.policy_base_augment``; CIFAR-10:
random crop + flip, homura's CIFAR-10 loader in the official code) every search batch,
real and augmented halves alike, gets it first.

Retrain: the harness trains the freshly initialised model (untouched by the search)
with the policy base and then the frozen policy applied, without gradients and in
evaluation mode, to every training batch on the device, as the official ``train.py``
(``policy.eval()``, after the loader's crop + flip).

Records: ``policy`` (the full policy and ``search``: subset size, epochs, batch size,
steps), ``search_history`` (about 20 snapshots per search: step, mean critic and
policy losses since the last snapshot, the state summary of ``bench.diagnostics`` and
each op's mean stage weight) and, through ``augmentation_state()``, the ``learning``
diagnostic (``weights`` = stage softmax, ``probabilities``, ``magnitudes`` of ops
with a strength).

Control (``learn_augmentation: False``, label ``faster_aa (learn_augmentation=False)``):
the random-policy control of issue 18, no search. The policy stays at the method's
own initialisation (every parameter uniform in [0, 1], drawn under the run's
``augmentation_seed``, which ignores this parameter: the very policy the search of
the same seed starts from), and the same retrain, model and budget follow. Its
record has no ``search_history`` and ``policy.search`` is None.

Where this differs from the official code (bugs not inherited):
- The gradient penalty takes the norm of each sample's whole input gradient
  (Gulrajani et al.); the official code takes ``grad.norm(2, dim=1)``, a norm over
  the colour channels only, per pixel.
- The op set is the task's: TranslateX exists (the official list has TranslateY
  twice) and posterize quantises (an identity in the official code).
- Sub-policies are drawn from torch's seeded generator (the official code uses
  Python's ``random``); the search subset is drawn from the run's train seed.
- Budgets: the ``paper`` profile follows the paper's CIFAR-10 search (4,000 images,
  20 epochs, batch 128, 620 policy steps, the critic as wide as the trained model) on
  every task; ``smoke`` is a few steps. ``quick``: 2,000 images, 4 epochs, batch 32
  (16 augmented + 16 real, 8 chunks of 2), a critic of half the run's width: 248
  policy steps at about the CPU cost of erm's quick training on the same task. The
  critic is the task's own model family (the paper uses WRN-40-2 on CIFAR-10).
- The crop of the CIFAR-10 policy base pads with zeros (the task's
  ``random_crop_flip``); homura's loader pads by reflection.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from bench.api import Method, Split, Task
from bench.augment import MODALITIES, Op, apply_with_probability, get_op
from bench.diagnostics import state_summary
from bench.errors import UserError
from bench.params import Param, log_uniform
from bench.training import iterate_batches


HISTORY_SNAPSHOTS = 20  # search_history entries per search (plus the start)


class Policy(nn.Module):
    """``num_sub_policies`` sub-policies of ``num_stages`` stages over ``ops``.

    Parameters, each of shape (sub-policies, stages, ops): ``logits`` (the stage
    weights before the tempered softmax), ``probabilities`` and ``magnitudes``.
    ``facts`` are passed to every op (e.g. ``sfreq``, ``ranges``).
    """

    def __init__(self, ops: Sequence[Op], facts: dict[str, Any] | None = None, num_sub_policies: int = 10,
                 num_stages: int = 2, temperature: float = 0.05, op_temperature: float = 0.1):
        super().__init__()
        if not ops:
            raise UserError("a Faster AutoAugment policy needs at least one op")
        self.ops = list(ops)
        self.temperature = temperature
        self.op_temperature = op_temperature
        # On/off ops have no strength in Faster AA: run them at full strength, so the
        # learned per-op probability is the only probability.
        self.on_off = [op.kind == "on_off" for op in self.ops]
        facts = dict(facts or {})
        facts["ranges"] = {**facts.get("ranges", {}), **{op.name: 1.0 for op in self.ops if op.kind == "on_off"}}
        self.facts = facts
        shape = (num_sub_policies, num_stages, len(self.ops))
        self.logits = nn.Parameter(torch.rand(shape))  # the official init: uniform(0, 1) for every parameter
        self.probabilities = nn.Parameter(torch.rand(shape))
        self.magnitudes = nn.Parameter(torch.rand(shape))

    @property
    def num_sub_policies(self) -> int:
        return self.logits.shape[0]

    @property
    def num_stages(self) -> int:
        return self.logits.shape[1]

    def stage_weights(self) -> torch.Tensor:
        """softmax(logits / temperature) over the ops of each stage."""
        return (self.logits / self.temperature).softmax(-1)

    def apply_op(self, k: int, x: torch.Tensor, s: torch.Tensor, t: int, hard: bool) -> torch.Tensor:
        """Op k of stage t, each example at the magnitude and gated by the probability
        of its own sub-policy (``s``: one index per example)."""
        op = self.ops[k]
        magnitude = 1.0 if self.on_off[k] else self.magnitudes[s, t, k].clamp(0, 1)
        return apply_with_probability(op, x, magnitude, self.probabilities[s, t, k].clamp(0, 1), training=not hard,
                                      temperature=self.op_temperature, **self.facts)

    def stage(self, x: torch.Tensor, s: torch.Tensor, chunk: torch.Tensor, t: int, hard: bool) -> torch.Tensor:
        """Stage t on the batch; example b follows sub-policy ``s[b]`` of its chunk
        ``chunk[b]``. Soft: the weighted mixture of every op. Hard: per chunk, one op
        drawn from the stage's categorical distribution."""
        weights = self.stage_weights()[s, t]  # (B, ops)
        if not hard:
            return sum(weights[:, k].reshape(-1, *([1] * (x.dim() - 1))) * self.apply_op(k, x, s, t, hard=False)
                       for k in range(len(self.ops)))
        first = torch.cat([torch.ones(1, dtype=torch.bool, device=x.device), chunk[1:] != chunk[:-1]])
        drawn = torch.multinomial(weights.detach()[first], 1).squeeze(1)  # one op per chunk
        op_of = drawn[chunk]
        out = x.clone()
        for k in op_of.unique().tolist():
            rows = (op_of == k).nonzero().squeeze(1)
            out[rows] = self.apply_op(k, x[rows], s[rows], t, hard=True).to(out.dtype)
        return out

    def forward(self, x: torch.Tensor, hard: bool, num_chunks: int) -> torch.Tensor:
        """Augment a batch: each of ``num_chunks`` chunks (``x.chunk``) goes through one
        sub-policy drawn uniformly; ``hard`` selects the evaluation-mode (sampled)
        policy. Batched: each op runs once per stage on every example that needs it."""
        sizes = torch.tensor([len(c) for c in torch.arange(len(x)).chunk(num_chunks)])
        chunk = torch.repeat_interleave(torch.arange(len(sizes)), sizes).to(x.device)
        s = torch.randint(self.num_sub_policies, (len(sizes),)).to(x.device)[chunk]
        for t in range(self.num_stages):
            x = self.stage(x, s, chunk, t, hard)
        return x

    @torch.no_grad()
    def state(self) -> dict[str, torch.Tensor]:
        """The policy in its interpretable space (``Method.augmentation_state``):
        ``weights`` the stage softmax (sub-policies, stages, ops), ``probabilities``
        likewise, ``magnitudes`` of the ops that have a strength (not on/off ops)."""
        strength = torch.tensor([not o for o in self.on_off], device=self.magnitudes.device)
        return {"weights": self.stage_weights().detach().cpu().clone(),
                "probabilities": self.probabilities.detach().clamp(0, 1).cpu().clone(),
                "magnitudes": self.magnitudes.detach().clamp(0, 1)[..., strength].cpu().clone()}

    @torch.no_grad()
    def op_weights(self) -> dict[str, float]:
        """Each op's mean stage weight over all sub-policies and stages (sums to 1)."""
        mean = self.stage_weights().detach().mean(dim=(0, 1)).cpu()
        return {op.name: round(float(w), 6) for op, w in zip(self.ops, mean)}

    def summary(self) -> dict[str, Any]:
        """The policy as JSON: per sub-policy and stage, the op weights, probabilities
        and magnitudes (None for on/off ops) in the order of ``ops``; the raw
        ``logits`` (so the policy reloads exactly); and ``top``, the most likely op of
        each stage."""
        weights = self.stage_weights().detach().cpu()
        probabilities = self.probabilities.detach().clamp(0, 1).cpu()
        magnitudes = self.magnitudes.detach().clamp(0, 1).cpu()
        logits = self.logits.detach().cpu()
        sub_policies, top = [], []
        for s in range(self.num_sub_policies):
            stages, top_stages = [], []
            for t in range(self.num_stages):
                mags = [None if self.on_off[k] else float(magnitudes[s, t, k]) for k in range(len(self.ops))]
                stages.append({"weights": weights[s, t].tolist(), "probabilities": probabilities[s, t].tolist(),
                               "magnitudes": mags, "logits": logits[s, t].tolist()})
                k = int(weights[s, t].argmax())
                top_stages.append({"op": self.ops[k].name, "weight": round(float(weights[s, t, k]), 4),
                                   "probability": round(float(probabilities[s, t, k]), 4),
                                   "magnitude": None if mags[k] is None else round(mags[k], 4)})
            sub_policies.append(stages)
            top.append(top_stages)
        return {"ops": [op.name for op in self.ops], "temperature": self.temperature,
                "op_temperature": self.op_temperature, "sub_policies": sub_policies, "top": top}

    @classmethod
    def from_summary(cls, summary: dict[str, Any], facts: dict[str, Any] | None = None) -> "Policy":
        """The policy a ``summary()`` describes (e.g. read back from a record)."""
        stages = summary["sub_policies"]
        policy = cls([get_op(name) for name in summary["ops"]], facts, num_sub_policies=len(stages),
                     num_stages=len(stages[0]), temperature=summary["temperature"],
                     op_temperature=summary["op_temperature"])
        with torch.no_grad():
            for s, sub in enumerate(stages):
                for t, stage in enumerate(sub):
                    policy.logits[s, t] = torch.tensor(stage["logits"])
                    policy.probabilities[s, t] = torch.tensor(stage["probabilities"])
                    policy.magnitudes[s, t] = torch.tensor([1.0 if m is None else m for m in stage["magnitudes"]])
        return policy


class Critic(nn.Module):
    """The official ``Discriminator``: a task model's features feed its task head and
    a critic head Linear(F, F)-ReLU-Linear(F, 1)."""

    def __init__(self, body: nn.Module, n_features: int, n_outputs: int):
        super().__init__()
        self.body = body
        head = getattr(body, "head", None)
        # The model's own (fresh) head where it has one; the official code puts a
        # fresh linear layer on the features, which is the same for its WRN.
        self.task_head = head if isinstance(head, nn.Module) else nn.Linear(n_features, n_outputs)
        self.critic_head = nn.Sequential(nn.Linear(n_features, n_features), nn.ReLU(), nn.Linear(n_features, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body.embed(x)
        return self.task_head(features), self.critic_head(features).reshape(-1)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al., 2017): mean over samples of (||grad_x D(x_hat)|| - 1)^2
    at x_hat = alpha real + (1 - alpha) fake, the norm over all of a sample's input
    (the official Faster AA code takes it over dim 1 only). ``alpha`` has one value
    per sample, shape (B,)."""
    a = alpha.reshape(-1, *([1] * (real.dim() - 1)))
    interpolated = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    # The fused attention kernels have no double backward; the reference one has.
    with sdpa_kernel(SDPBackend.MATH):
        scores = critic(interpolated)
    (grad,) = torch.autograd.grad(scores.sum(), interpolated, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


class FasterAutoAugment(Method):
    name = "faster_aa"
    description = "Faster AutoAugment: policy search by WGAN-GP density matching, then retrain with the policy."
    params = {
        "num_sub_policies": Param(10, int, low=1),
        "num_stages": Param(2, int, low=1),
        "temperature": Param(0.05, float, low=1e-3),  # softmax over the ops of a stage
        "op_temperature": Param(0.1, float, low=1e-3),  # relaxed Bernoulli of each op's probability
        "search_chunks": Param(8, int, low=1),
        "retrain_chunks": Param(16, int, low=1),
        "search_n_train": Param(4000, int, low=2),  # paper (CIFAR-10): a reduced set of 4,000 images
        "search_epochs": Param(20, int, low=1),
        "search_batch_size": Param(128, int, low=2),  # half augmented, half real
        "policy_lr": Param(1e-3, float, low=0, tune=log_uniform(1e-4, 1e-2)),
        "critic_lr": Param(1e-3, float, low=0, tune=log_uniform(1e-4, 1e-2)),
        "betas": Param([0.0, 0.999], list, item=float, low=0, high=1, length=2),
        "task_loss_factor": Param(0.1, float, low=0, tune=log_uniform(0.01, 1.0)),
        "gp_factor": Param(10.0, float, low=0),
        # the critic's width relative to the run's model (official: the same network)
        "critic_width": Param(1.0, float, low=1e-3),
        "learn_augmentation": Param(True, bool),  # False: the control, the initial (random) policy without search
    }
    profile_params = {
        "smoke": {"search_n_train": 16, "search_epochs": 1, "search_batch_size": 16, "search_chunks": 2,
                  "retrain_chunks": 4},
        # 2,000 images / 32 x 4 epochs = 248 policy steps (official 4,000 / 128 x 20 = 620)
        # with a half-width critic: about the CPU cost of erm's quick training.
        "quick": {"search_n_train": 2000, "search_epochs": 4, "search_batch_size": 32, "critic_width": 0.5},
    }
    kind = "bilevel"
    modalities = MODALITIES

    @classmethod
    def supports(cls, task: Task) -> str | None:
        reason = super().supports(task)
        if reason is None and not task.augmentation_space:
            reason = f"{cls.name} searches the task's augmentation_space, and {task.name} declares none"
        return reason

    def __init__(self, ctx, model, hparams):
        super().__init__(ctx, model, hparams)
        reason = self.supports(ctx.task)
        if reason is not None:
            raise UserError(reason)
        self.policy = Policy([get_op(name) for name in ctx.task.augmentation_space], ctx.task.augmentation_kwargs,
                             hparams["num_sub_policies"], hparams["num_stages"], hparams["temperature"],
                             hparams["op_temperature"])

    def task_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy for classification (as the paper), the task's loss otherwise."""
        if self.task.is_classification:
            return F.cross_entropy(outputs, targets)
        return self.task.loss(outputs, targets)

    def make_critic(self, example: torch.Tensor) -> Critic:
        """The task's model family at ``critic_width`` times the run's width (the
        official critic is the retrained network itself, WRN-40-2), with the heads."""
        scale, config = float(self.hparams["critic_width"]), self.ctx.config
        body = self.ctx.make_model() if scale == 1.0 else \
            self.task.make_model(config.profile, config.width * scale, config.depth).to(self.ctx.device)
        if not callable(getattr(body, "embed", None)):
            raise UserError(f"faster_aa needs the model of task {self.task.name!r} to provide embed(x)")
        with torch.no_grad():
            was_training = body.training
            n_features = body.eval().embed(example[:1]).shape[-1]
            body.train(was_training)
        return Critic(body, n_features, self.task.num_classes or 1).to(self.ctx.device)

    def search_subset(self) -> Split:
        train = self.ctx.data.train
        n = min(self.hparams["search_n_train"], len(train))
        generator = torch.Generator().manual_seed(self.ctx.config.train_seed)
        index = torch.randperm(len(train), generator=generator)[:n].to(train.x.device)
        return Split(train.x[index], train.y[index])

    def critic_loss(self, critic: Critic, x_aug: torch.Tensor, x_real: torch.Tensor, y_real: torch.Tensor
                    ) -> torch.Tensor:
        """``0.1 L(real) - D(real) + D(aug) + 10 GP``, the policy applied without gradients."""
        hp = self.hparams
        with torch.no_grad():
            augmented = self.policy(x_aug, hard=False, num_chunks=hp["search_chunks"])
        out_real, d_real = critic(x_real)
        _, d_aug = critic(augmented)
        alpha = torch.rand(len(x_real), device=x_real.device, dtype=x_real.dtype)
        gp = gradient_penalty(lambda v: critic(v)[1], x_real, augmented, alpha)
        return (hp["task_loss_factor"] * self.task_loss(out_real, y_real) - d_real.mean() + d_aug.mean()
                + hp["gp_factor"] * gp)

    def policy_loss(self, critic: Critic, x_aug: torch.Tensor, y_aug: torch.Tensor) -> torch.Tensor:
        """``0.1 L(aug) - D(aug)``: the augmented data should look real and keep its label."""
        out_aug, d_aug = critic(self.policy(x_aug, hard=False, num_chunks=self.hparams["search_chunks"]))
        return self.hparams["task_loss_factor"] * self.task_loss(out_aug, y_aug) - d_aug.mean()

    def search_step(self, critic: Critic, critic_opt: torch.optim.Optimizer, policy_opt: torch.optim.Optimizer,
                    x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """One critic step, then one policy step with the critic frozen, on a batch
        whose first half is augmented and second half real (the official
        ``AdvTrainer.wgan_loss``); the whole batch first gets the task's policy base
        augmentation, as the official loader's crop + flip."""
        with torch.no_grad():
            x = self.task.policy_base_augment(x)
        half = len(x) // 2
        x_aug, y_aug, x_real, y_real = x[:half], y[:half], x[half:2 * half], y[half:2 * half]
        critic.requires_grad_(True)
        critic_loss = self.critic_loss(critic, x_aug, x_real, y_real)
        critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        critic_opt.step()

        critic.requires_grad_(False)
        policy_loss = self.policy_loss(critic, x_aug, y_aug)
        policy_opt.zero_grad(set_to_none=True)
        policy_loss.backward()
        policy_opt.step()
        return {"critic_loss": critic_loss.detach(), "policy_loss": policy_loss.detach()}

    def search(self) -> dict[str, Any]:
        hp = self.hparams
        if not hp["learn_augmentation"]:  # the control: retrain with the initial policy
            self.policy.requires_grad_(False)
            return {**self.policy.summary(), "search": None}
        subset = self.search_subset()
        critic = self.make_critic(subset.x)
        critic.train()
        betas = tuple(hp["betas"])
        critic_opt = torch.optim.Adam(critic.parameters(), lr=hp["critic_lr"], betas=betas)
        policy_opt = torch.optim.Adam(self.policy.parameters(), lr=hp["policy_lr"], betas=betas)
        batch_size = min(hp["search_batch_size"], len(subset))
        generator = torch.Generator().manual_seed(self.ctx.config.train_seed + 1)
        self.policy.requires_grad_(True)
        total_steps = hp["search_epochs"] * (len(subset) // batch_size)
        every = max(1, total_steps // HISTORY_SNAPSHOTS)
        start = self.policy.state()
        self.search_history = [{"step": 0, "epoch": 0, "state": state_summary(start, start),
                                "op_weights": self.policy.op_weights()}]
        steps, window = 0, []
        self.ctx.progress.start("search", hp["search_epochs"])
        for epoch in range(hp["search_epochs"]):
            losses = {}
            for x, y in iterate_batches(subset, batch_size, shuffle=True, generator=generator):
                if len(x) < batch_size:  # drop_last, as the official loader
                    continue
                losses = self.search_step(critic, critic_opt, policy_opt, x, y)
                window.append(losses)
                steps += 1
                if steps % every == 0 or steps == total_steps:
                    means = {k: float(torch.stack([w[k] for w in window]).mean()) for k in losses}
                    self.search_history.append({"step": steps, "epoch": epoch, **means,
                                                "state": state_summary(self.policy.state(), start),
                                                "op_weights": self.policy.op_weights()})
                    window = []
            self.ctx.progress.step(**{k: f"{v.item():.3g}" for k, v in losses.items()})
        self.ctx.progress.close()
        self.policy.requires_grad_(False)  # frozen for the retrain
        return {**self.policy.summary(), "search": {"n_train": len(subset), "epochs": hp["search_epochs"],
                                                    "batch_size": batch_size, "steps": steps}}

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            x = self.policy(self.task.policy_base_augment(x), hard=True, num_chunks=self.hparams["retrain_chunks"])
        return self.task.loss(self.model(x), y), {}

    def augmentation_state(self) -> dict[str, torch.Tensor]:
        return self.policy.state()

    def learned_augmentation(self) -> dict[str, Any]:
        """The most likely op of each stage (the full policy is the record's ``policy``)."""
        return {"top": self.policy.summary()["top"]}
