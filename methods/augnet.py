"""AugNet: differentiable augmentation layers learned jointly with the trunk
(Rommel, Moreau & Gramfort, "Deep invariant networks with differentiable augmentation
layers", NeurIPS 2022; official code cedricrommel/augnet, read for the details).

The predictor is h(x) = mean_c f(A(x)_c): a stack of augmentation layers A in front
of the task's model f, with 1 copy in training and ``ncopies`` copies at evaluation.

- Each layer holds N candidate ops of the shared library (``bench.augment``) with
  logits (init ones) and magnitudes mu in [0, 1]; its weights are
  omega = softmax(logits / 0.01). In training it outputs the convex combination
  sum_i omega_i T_i(x; mu_i); at evaluation it applies one op drawn from
  Categorical(omega) (one draw per forward, for the whole batch, as the official
  ``AugmentationLayer``).
- Per-sample magnitudes: for the ops whose official class draws its strength in
  [-mu, mu] (``bounding_mag`` of the vision ops, FrequencyShift's U(-max, max)),
  each sample gets U(0, 1) * mu; the library draws the random sign of symmetric ops.
  The other ops use mu itself (SamplePairing, GaussianNoise std, mask length ...);
  on/off ops (flips) read mu as their probability (MagHorizontalFlip).
- Copies at evaluation are one super-batch through the layers and the model (as the
  official ``AugAveragedModel``); classification averages the log-softmax of the
  copies, regression averages the outputs, ``embed`` averages the embeddings.
- Loss: task loss - lambda * || clamp(mu, 0, 1) * omega ||_2 over every op of every
  layer (``losses.aug_layer_loss``: the L2 norm, not its square). With
  ``penalty_decay_after`` = 40, lambda is divided by 10 for epochs (0-based) > 40,
  as the official CIFAR-10 ``--pen-schedule``.
- Weights and magnitudes are learned on the training loss in the harness's optimiser
  (the task profile's), in a parameter group of their own with AugNet's own learning
  rate ``aug_lr`` and weight decay ``aug_weight_decay``, independent of the profile's
  (the trunk keeps the profile's). Their official values differ per experiment, so
  ``auto`` takes the task's ``augnet_defaults`` (``bench.api.Task``), else
  ``DEFAULT_AUG_OPTIMISER``:
  - Mario-Iggy (``experiments/mario_iggy/run_experiments.sh``: ``--lr 0.0005 --wd 1.``,
    ``augnet_training.py``: one Adam on all parameters): lr 5e-4, weight decay 1.0;
    declared by mnist_rot and mnist_updown.
  - CIFAR-10 (``experiments/cifar10/run_experiments.sh``: ``--lr 0.001 --aug-wd 0.``,
    ``train_augerino_new.py``: AdamW, one lr for both groups): lr 1e-3, weight decay 0;
    the default (``DEFAULT_AUG_OPTIMISER``), so also cifar10's.
  - sleep staging (``experiments/mass/train_augnet.py``: ``--lr`` 1e-3; its optimiser
    comes from the unpublished ``eeg_augment`` package): lr 1e-3, weight decay 0 as
    CIFAR-10's augmentation group: the default.
  - sinusoids (``experiments/sinusoids/train_augnet.py``: Adam on all parameters,
    ``--lr 0.01``, ``--wd`` 1e-4): declared by the sinusoids task.
  Why it matters: the weights are softmax(logits / 0.01), so one Adam step of size lr
  moves logit/0.01 by lr * 100; at the profile's 3e-3 (mnist_rot quick) one op held
  0.98 of the weight within 10-15 steps, and that op was the mildest, never rotate.

Layer configurations: the task's ``augnet_defaults["layers"]``, else the modality's
``DEFAULT_LAYERS``, restricted to the task's augmentation space:
- image: the official CIFAR-10 model, 3 layers: non-affine {contrast, brightness,
  sample_pairing, horizontal_flip}, then twice the affine {translate_x, translate_y,
  rotate, shear_x, shear_y} (cifar10). The digit tasks declare affine layers only (on
  digits the non-affine layer always picks horizontal_flip): mnist_updown the official
  Mario-Iggy layer (one affine layer, rotations up to 180 degrees), mnist_rot the two
  affine layers of the CIFAR-10 model (rotate / rotate in the issue-13 measurements).
- eeg: the official sleep-staging model: spatial {sign_flip, channel_dropout,
  channel_shuffle} (the official ChannelsSymmetry is not in the library), then twice
  {time_reverse, gaussian_noise, time_mask, ft_surrogate, frequency_shift}. As in the
  official code, time_reverse and sign_flip keep their probability frozen at
  ``init_magnitude``: only their weight is learned.
- molecule (no official configuration; by analogy with the image one): {reflection,
  jitter}, then twice {so3_rotation, translation}.
``layers="rotate,translate_x|horizontal_flip"`` (ops of a layer separated by ',',
layers by '|') replaces the modality's default, e.g. the sinusoid experiment's single
FrequencyShift layer (``layers=frequency_shift``, ``init_magnitude=0.05``,
``penalty=0.8``, ``ncopies`` in {1, 4, 10}).

Control (``learn_augmentation: False``, label ``augnet (learn_augmentation=False)``,
issue 18): the layers stay at their initialisation (weights uniform, every mu at
``init_magnitude``) and are applied as above, in training and with the copies at
evaluation; only the trunk learns, with the same model and budget.

Deviations: the ops are the shared library's (ranges and semantics in
bench/augment); the augmentation group is stepped by the task profile's optimiser
(Adam on the digit tasks, sinusoids and EEG as the official; SGD with Nesterov momentum
on cifar10, where the official uses AdamW for both groups), and the official
Mario-Iggy weight decay of 1.0 applies to the augmentation group only (the trunk keeps
the profile's); ``ncopies`` is 2 in ``smoke`` and 4 in ``quick`` (CPU budget; the
official CIFAR-10 and sleep runs use 20); the official image ops clamp their output
to [0, 1] after each op, the library's warps and enhance ops keep [0, 1] themselves.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical

from bench.api import Method, Task
from bench.augment import OPS, Op, get_op
from bench.errors import UserError
from bench.params import Param, log_uniform, uniform

WEIGHT_TEMPERATURE = 0.01  # softmax temperature of the layer weights (official default)

# The official CIFAR-10 augmentation group (AdamW lr 1e-3, --aug-wd 0); see the docstring.
DEFAULT_AUG_OPTIMISER = {"aug_lr": 1e-3, "aug_weight_decay": 0.0}

DEFAULT_LAYERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "image": (
        ("contrast", "brightness", "sample_pairing", "horizontal_flip"),
        ("translate_x", "translate_y", "rotate", "shear_x", "shear_y"),
        ("translate_x", "translate_y", "rotate", "shear_x", "shear_y"),
    ),
    "eeg": (
        ("sign_flip", "channel_dropout", "channel_shuffle"),
        ("time_reverse", "gaussian_noise", "time_mask", "ft_surrogate", "frequency_shift"),
        ("time_reverse", "gaussian_noise", "time_mask", "ft_surrogate", "frequency_shift"),
    ),
    "molecule": (
        ("reflection", "jitter"),
        ("so3_rotation", "translation"),
        ("so3_rotation", "translation"),
    ),
}

# Relaxed-Bernoulli temperature of on/off ops per modality (official vision ops: 0.1,
# official EEG ops: 0.05).
BERNOULLI_TEMPERATURE = {"image": 0.1, "eeg": 0.05}

# Ops whose strength is drawn per sample in [0, mu] (times the library's random sign):
# the official vision ops with ``bounding_mag`` and FrequencyShift; by analogy the
# library's time_shift and the molecules' rotation and translation.
RANDOM_MAGNITUDE_OPS = frozenset({
    "rotate", "translate_x", "translate_y", "shear_x", "shear_y", "contrast", "brightness",
    "frequency_shift", "time_shift", "so3_rotation", "translation",
})

# Ops whose magnitude (their probability) the official code never learns.
FROZEN_MAGNITUDE_OPS = frozenset({"time_reverse", "sign_flip"})


class AugmentationLayer(nn.Module):
    """One AugNet layer: N ops, logits (weights) and magnitudes, all learnable."""

    def __init__(self, ops: list[Op], init_magnitude: float, facts: dict[str, Any],
                 random_magnitude: list[bool], frozen_magnitude: list[bool], temperature: float = 0.1):
        super().__init__()
        names = [op.name for op in ops]
        if len(set(names)) != len(names):
            raise UserError(f"an AugNet layer lists an op twice: {', '.join(names)}")
        self.ops = list(ops)
        self.facts = dict(facts)
        self.temperature = temperature
        self.logits = nn.Parameter(torch.ones(len(ops)))
        self.raw_magnitudes = nn.Parameter(torch.full((len(ops),), float(init_magnitude)))
        # frozen magnitudes read this copy, so weight decay on raw_magnitudes cannot move them
        self.register_buffer("initial_magnitudes", self.raw_magnitudes.detach().clone())
        self.random_magnitude = list(random_magnitude)  # python lists: no device sync in forward
        self.frozen_magnitude = list(frozen_magnitude)

    @property
    def op_names(self) -> list[str]:
        return [op.name for op in self.ops]

    @property
    def weights(self) -> torch.Tensor:
        return (self.logits / WEIGHT_TEMPERATURE).softmax(0)

    @property
    def magnitudes(self) -> torch.Tensor:
        """mu in [0, 1] (clamped, as the official ops); frozen ones pass no gradient."""
        frozen = torch.tensor(self.frozen_magnitude, device=self.raw_magnitudes.device)
        return torch.where(frozen, self.initial_magnitudes, self.raw_magnitudes).clamp(0, 1)

    def apply_op(self, i: int, x: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        if self.random_magnitude[i]:
            m = torch.rand(len(x), device=x.device, dtype=x.dtype) * mu
        else:
            m = mu.expand(len(x))
        return self.ops[i](x, m, training=self.training, temperature=self.temperature, **self.facts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mus = self.magnitudes.to(x.dtype)
        if self.training:
            w = self.weights.to(x.dtype)
            return sum(w[i] * self.apply_op(i, x, mus[i]) for i in range(len(self.ops)))
        i = int(Categorical(probs=self.weights.detach()).sample())
        return self.apply_op(i, x, mus[i])


def parse_layers(spec: Any) -> tuple[tuple[str, ...], ...]:
    """``"a,b|c"`` or ``[["a", "b"], ["c"]]`` -> (("a", "b"), ("c",))."""
    if isinstance(spec, str):
        layers = [[name.strip() for name in layer.split(",") if name.strip()] for layer in spec.split("|")]
    elif isinstance(spec, (list, tuple)):
        layers = [[layer] if isinstance(layer, str) else list(layer) for layer in spec]
    else:
        raise UserError(f"augnet.layers must be a string like 'rotate,translate_x|horizontal_flip', got {spec!r}")
    if not layers or any(not layer for layer in layers) or not all(isinstance(n, str) for layer in layers for n in layer):
        raise UserError(f"augnet.layers {spec!r} has an empty layer; write ops separated by ',' and layers by '|'")
    return tuple(tuple(layer) for layer in layers)


def normal_layers(spec: Any) -> Any:
    """``spec`` in normal form (auto, null, or "a,b|c" without spaces), or ValueError naming the unknown
    ops: checked against every op before any run, against the task's space later."""
    if spec is None or spec == "auto":
        return spec
    try:
        layers = parse_layers(spec)
    except UserError as exc:
        raise ValueError(str(exc)) from None
    unknown = sorted({n for layer in layers for n in layer} - set(OPS))
    if unknown:
        raise ValueError(f"ops separated by ',' and layers by '|' among the known ops; unknown: {', '.join(unknown)} "
                         f"(`python run_bench.py list --ops`)")
    return "|".join(",".join(layer) for layer in layers)


def layer_config(task: Task, spec: Any) -> tuple[tuple[str, ...], ...]:
    """The op names of each layer for ``task``: the explicit ``spec``, or with ``auto``
    the task's declared layers (every op must be in the task's augmentation space), or
    the modality's default restricted to it (layers left empty are dropped)."""
    space = set(task.augmentation_space)
    if spec == "auto":
        spec = task.augnet_defaults.get("layers")
    if spec is not None:
        layers = parse_layers(spec)
        outside = sorted({n for layer in layers for n in layer} - space)
        if outside:
            raise UserError(f"augnet.layers names ops outside the augmentation space of {task.name}: "
                            f"{', '.join(outside)}; its space: {', '.join(task.augmentation_space) or 'empty'}")
        return layers
    default = DEFAULT_LAYERS.get(task.modality, ())
    return tuple(kept for layer in default if (kept := tuple(n for n in layer if n in space)))


class AugNet(Method):
    name = "augnet"
    description = "AugNet: differentiable augmentation layers (weights, magnitudes) learned with the model; C-copy averaging."
    params = {
        # auto: the task's augnet_defaults, else DEFAULT_LAYERS; null: DEFAULT_LAYERS; else "a,b|c"
        # (ops of a layer separated by ',', layers by '|'), every op in the task's augmentation space
        "layers": Param("auto", object, check=normal_layers,
                        allowed_text="auto, null or ops separated by ',' and layers by '|', "
                                     "e.g. 'rotate,translate_x|scale'"),
        "init_magnitude": Param(0.5, float, low=0, high=1, tune=uniform(0.05, 0.95)),  # official CIFAR-10 / sleep
        "penalty": Param(0.5, float, low=0, tune=log_uniform(0.01, 2.0)),  # lambda (official CIFAR-10, Mario-Iggy)
        # lambda / 10 for epochs > this (0-based); None: constant
        "penalty_decay_after": Param(40, int, low=0, nullable=True),
        "ncopies": Param(20, int, low=1),  # copies at evaluation (official CIFAR-10 and sleep)
        # the augmentation group's own optimiser settings; auto: the task's
        # augnet_defaults, else DEFAULT_AUG_OPTIMISER (official values: see the docstring)
        "aug_lr": Param("auto", float, low=0, low_exclusive=True, choices=("auto",), tune=log_uniform(1e-4, 1e-2)),
        "aug_weight_decay": Param("auto", float, low=0, choices=("auto",)),
        "learn_augmentation": Param(True, bool),  # False: the control, layers frozen at their initialisation
    }
    profile_params = {"smoke": {"ncopies": 2}, "quick": {"ncopies": 4}}
    kind = "learned_invariance"

    @classmethod
    def supports(cls, task: Task) -> str | None:
        if not layer_config(task, "auto"):
            return (f"augnet has no default layers for {task.modality} tasks within the augmentation space of "
                    f"{task.name}; pass augnet.layers")
        return None

    @classmethod
    def check_params(cls, task: Task, hparams: dict[str, Any]) -> str | None:
        try:
            layer_config(task, hparams["layers"])
        except UserError as exc:
            return str(exc)
        return None

    def __init__(self, ctx, model, hparams):
        super().__init__(ctx, model, hparams)
        config = layer_config(self.task, hparams["layers"])
        if not config:
            raise UserError(f"augnet has no layers for {self.task.name}; pass augnet.layers")
        temperature = BERNOULLI_TEMPERATURE.get(self.task.modality, 0.1)
        self.aug_layers = nn.ModuleList([
            AugmentationLayer([get_op(n) for n in names], hparams["init_magnitude"], self.task.augmentation_kwargs,
                              [n in RANDOM_MAGNITUDE_OPS for n in names], [n in FROZEN_MAGNITUDE_OPS for n in names],
                              temperature)
            for names in config
        ])
        self.penalty_weight = float(hparams["penalty"])
        self.aug_lr = self._optimiser_setting("aug_lr", positive=True)
        self.aug_weight_decay = self._optimiser_setting("aug_weight_decay", positive=False)
        if not hparams["learn_augmentation"]:  # the control: no grad, the optimiser skips them
            self.aug_layers.requires_grad_(False)

    def _optimiser_setting(self, key: str, positive: bool) -> float:
        """``hparams[key]``, or with ``auto`` the task's declared value, else the default."""
        value = self.hparams[key]
        if value == "auto":
            value = self.task.augnet_defaults.get(key, DEFAULT_AUG_OPTIMISER[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (positive and value == 0):
            raise UserError(f"augnet.{key} must be auto or a number {'> 0' if positive else '>= 0'}, got {value!r}")
        return float(value)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.aug_layers:
            x = layer(x)
        return x

    def penalty(self) -> torch.Tensor:
        """|| mu * omega ||_2 over every op of every layer."""
        return torch.cat([layer.magnitudes * layer.weights for layer in self.aug_layers]).norm()

    def param_groups(self) -> list[dict[str, Any]]:
        """The trunk under the profile's lr and weight decay; the augmentation layers
        under AugNet's own."""
        aug = {"params": list(self.aug_layers.parameters()), "lr": self.aug_lr, "weight_decay": self.aug_weight_decay}
        return [{"params": list(self.model.parameters())}, aug]

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        penalty = self.penalty()
        loss = self.task.loss(self.model(self.augment(x)), y) - self.penalty_weight * penalty
        return loss, {"penalty": penalty.detach()}

    def end_epoch(self, epoch: int) -> None:
        after = self.hparams["penalty_decay_after"]
        decayed = after is not None and epoch + 1 > int(after)  # the weight of the next epoch
        self.penalty_weight = float(self.hparams["penalty"]) / (10 if decayed else 1)

    def copies(self, x: torch.Tensor, fn) -> list[torch.Tensor]:
        """``fn`` of the augmented batch, split into its copies (one super-batch)."""
        c = int(self.hparams["ncopies"]) if not self.training else 1
        out = fn(self.augment(torch.cat([x] * c) if c > 1 else x))
        return list(torch.split(out, len(x)))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        outs = self.copies(x, self.model)
        if len(outs) == 1:
            return outs[0]
        if self.task.is_classification:
            outs = [F.log_softmax(o, dim=-1) for o in outs]
        return torch.stack(outs).mean(0)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.copies(x, self.model.embed)).mean(0)

    def augmentation_state(self) -> dict[str, torch.Tensor]:
        """Per layer (``Method.augmentation_state``): its op weights (a distribution) and
        its magnitudes mu in [0, 1], in the layer's op order."""
        state = {}
        for i, layer in enumerate(self.aug_layers):
            state[f"layer{i}_weights"] = layer.weights.detach().cpu()
            state[f"layer{i}_magnitudes"] = layer.magnitudes.detach().cpu()
        return state

    def learned_augmentation(self) -> dict[str, Any]:
        ranges = self.task.augmentation_kwargs.get("ranges", {})
        layers = []
        for layer in self.aug_layers:
            weights, mags = layer.weights.detach().cpu().tolist(), layer.magnitudes.detach().cpu().tolist()
            entry = {}
            for op, w, m in zip(layer.ops, weights, mags):
                high = ranges.get(op.name, op.high)
                # the strongest value of the op at mu (on/off ops: the probability)
                entry[op.name] = {"weight": w, "magnitude": m, "max_value": op.low + (high - op.low) * m,
                                  "unit": op.unit}
            layers.append(entry)
        return {"layers": layers, "penalty_weight": self.penalty_weight}
