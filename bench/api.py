"""The plugin API: what a task (datasets/*.py) and a method (methods/*.py) provide.

A task owns its data, splits, model family, metric and reference symmetry; a method
owns what is specific to it (augmentation, extra parameters, loss terms, a search
phase). The harness owns everything else: optimiser defaults, epochs, batching,
evaluation, timing and records (see ``bench/training.py`` and ``bench/runner.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bench import metrics
from bench.errors import UserError
from bench.params import Param, log_scale, log_uniform

if TYPE_CHECKING:
    from bench.config import RunConfig
    from bench.progress import Progress


@dataclass
class Profile:
    """Training budget and protocol of one task profile (smoke / quick / paper).

    ``options`` holds what is specific to the task (subset sizes, base width of the
    model family, data source ...); everything else is read by the harness's
    training loop, identically for every method.
    """

    epochs: int
    batch_size: int
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "none"  # none | cosine (per epoch, to 0)
    eval_batch_size: int = 512
    select_best_val: bool = False  # restore the weights of the best validation epoch
    shuffle: bool = True  # reshuffle the training batches every epoch; False: the split's order every epoch
    patience: int | None = None  # early stopping on the validation metric
    options: dict[str, Any] = field(default_factory=dict)


# The profile fields a user (``--param train.lr=0.003``, a suite's ``train:``) and the
# tuner may override, identically for every method: the shared optimiser settings and
# the budget. Null means "the task profile's value"; an override equal to the
# profile's value is dropped, so it gives the run id of the plain run.
TRAIN_PARAMS: dict[str, Param] = {
    "lr": Param(None, float, low=0, nullable=True, tune=log_scale(1.0),
                help="learning rate of the profile's optimiser (0: a trainer that cannot learn)"),
    "weight_decay": Param(None, float, low=0, nullable=True, tune=log_uniform(1e-6, 1e-2),
                          help="weight decay of the model's parameters"),
    "epochs": Param(None, int, low=1, nullable=True, help="training epochs"),
    "batch_size": Param(None, int, low=1, nullable=True, help="training batch size"),
}


@dataclass
class Split:
    """Inputs and targets of one split, as tensors (one tensor of inputs per split)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class TaskData:
    """The splits of one task instance; ``val`` is None only where a task has none."""

    train: Split
    val: Split | None
    test: Split
    info: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> "TaskData":
        return TaskData(
            self.train.to(device),
            self.val.to(device) if self.val is not None else None,
            self.test.to(device),
            dict(self.info),
        )


class Task:
    """Base class of a task plugin. Subclasses set the class attributes and override
    ``load``, ``make_model``, ``reference_transform`` and ``fixed_augment``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    modality: ClassVar[str] = ""  # image | eeg | molecule | signal
    metric: ClassVar[str] = "accuracy"  # a key of bench.metrics.METRICS
    extra_metrics: ClassVar[tuple[str, ...]] = ()
    num_classes: ClassVar[int | None] = None  # None for regression
    reference_symmetry: ClassVar[str] = ""  # one line: the group g is drawn from
    # The reference group's extent per augmentation op it matches: {op name: (half-range,
    # unit)} in the op's unit (plots draw it as a band beside the learned ranges).
    reference_extent: ClassVar[dict[str, tuple[float, str]]] = {}
    fixed_augmentation: ClassVar[str] = ""  # one line: what `fixed` applies
    # The invariance score compares the predictor's outputs ("output") or, for tasks
    # whose output is a scalar (regression), its penultimate embedding ("embedding").
    invariance_representation: ClassVar[str] = "output"
    profiles: ClassVar[dict[str, Profile]] = {}
    # Bounds on the model a suite may ask for (checked before any run; a user raises
    # them with --max-params / --max-depth): a typo such as --depths 100000 is refused
    # instead of running for minutes at gigabytes.
    max_params: ClassVar[int] = 20_000_000
    max_depth: ClassVar[int] = 100
    input_shape: ClassVar[tuple[int, ...]] = ()  # of one example, e.g. (1, 28, 28); for benchmarks
    params: ClassVar[dict[str, Any]] = {}  # tasks have no tunable params; kept for `list`
    # The candidate augmentation space: names of ops of the shared library
    # (bench/augment) that the augmentation-learning methods search over on this
    # task, and the facts those ops need about the data (e.g. {"sfreq": 100}).
    augmentation_space: ClassVar[tuple[str, ...]] = ()
    augmentation_kwargs: ClassVar[dict[str, Any]] = {}
    # The standard augmentation that the AutoAugment line's code (Faster AA, DADA)
    # applies to every training image before its learned policy on this kind of data
    # (one line; CIFAR: random crop + flip); empty where their code has none.
    policy_base_augmentation: ClassVar[str] = ""
    # AugNet's settings on this task where the official code has one for this kind of
    # data (keys: layers "a,b|c", aug_lr, aug_weight_decay); methods/augnet.py reads them
    # for the parameters left at "auto" and falls back on its modality defaults.
    augnet_defaults: ClassVar[dict[str, Any]] = {}

    @property
    def is_classification(self) -> bool:
        return self.num_classes is not None

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise UserError(
                f"task {self.name!r} has no profile {name!r}; "
                f"choose one of: {', '.join(self.profiles)}"
            )
        return self.profiles[name]

    def prepare(self, profile: str, data_root: Path | None) -> None:
        """Make sure the profile's data is on disk, downloading it if needed and
        allowed (see ``bench.data.downloads_allowed``). Raise `DataUnavailable`, naming
        ``--data-root`` and the layout it expects, when it cannot be had. Called once
        per (task, profile) before any run; a no-op for data shipped with a package."""

    def load(self, profile: str, data_root: Path | None, seed: int) -> TaskData:
        """Return the task's splits as CPU tensors (after ``prepare``). Raise
        `UserError` when a file is corrupt or truncated."""
        raise NotImplementedError

    def make_model(self, profile: str, width: float, depth: int | None) -> nn.Module:
        """A fresh model of the task's family; ``width`` multiplies the profile's base
        width (expressivity sweeps). Models used with ``invariance_representation =
        "embedding"`` also provide ``embed(x)``."""
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.is_classification:
            return F.cross_entropy(outputs, targets)
        return F.l1_loss(outputs.reshape(targets.shape), targets)

    def evaluate(self, outputs: torch.Tensor, targets: torch.Tensor, info: dict[str, Any]) -> dict[str, float]:
        """Metrics of the predictor's outputs on one split, primary metric first.
        ``info`` is the ``TaskData.info`` of the run (e.g. target normalisation)."""
        names = (self.metric, *self.extra_metrics)
        return {n: metrics.METRICS[n].fn(outputs, targets) for n in names}

    def reference_transform(self, x: torch.Tensor) -> torch.Tensor:
        """g·x with g drawn from the task's reference group, batched on x's device."""
        raise NotImplementedError

    def fixed_augment(self, x: torch.Tensor) -> torch.Tensor:
        """The hand-designed augmentation of this modality (the `fixed` baseline)."""
        raise NotImplementedError

    def policy_base_augment(self, x: torch.Tensor) -> torch.Tensor:
        """The ``policy_base_augmentation``, batched on x's device; the identity when
        the task declares none."""
        return x


@dataclass
class RunContext:
    """What a method sees of the run: the task, its profile, data on the device, a
    factory of fresh models of the run's width/depth, and the progress reporter."""

    config: "RunConfig"
    task: Task
    profile: Profile
    data: TaskData
    device: torch.device
    make_model: Callable[[], nn.Module]
    progress: "Progress"


class Method(nn.Module):
    """Base class of a method plugin (a DomainBed-style algorithm).

    The harness calls, in order: ``search()`` once (timed as search), then, for each
    epoch of the profile, ``training_loss(x, y)`` on each training batch with the
    optimiser built from ``param_groups()``, and ``end_epoch(epoch)``; finally
    ``predict`` on the test set and for the invariance score. Declare each
    hyper-parameter in ``params`` as a ``bench.params.Param`` (default, type, allowed
    values, tuning distribution); the harness has normalised and checked this run's
    values (``self.hparams``) before any run started.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}
    # Per-profile overrides of ``params`` (e.g. a search budget that is smaller in
    # "smoke" than in "paper"): {"smoke": {"search_epochs": 1}, ...}.
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {}
    kind: ClassVar[str] = "baseline"  # baseline | learned_invariance | bilevel
    modalities: ClassVar[tuple[str, ...] | None] = None  # None: every modality
    # Cluster resources this method needs beyond the suite's (``--launcher slurm``),
    # e.g. {"time": 240, "gpus": 1}; keys: partition, time (minutes), gpus, cpus,
    # mem (GB), each optionally prefixed "slurm_". They override the command line's.
    resources: ClassVar[dict[str, Any]] = {}

    def __init__(self, ctx: RunContext, model: nn.Module, hparams: dict[str, Any]):
        super().__init__()
        self.ctx = ctx
        self.task = ctx.task
        self.model = model
        self.hparams = hparams
        # Bilevel methods: compact snapshots of the search (step, losses, the state
        # summary of ``bench.diagnostics``), recorded as ``search_history``.
        self.search_history: list[dict[str, Any]] = []

    @classmethod
    def supports(cls, task: Task) -> str | None:
        """None if the method applies to ``task``, else the reason it does not."""
        if cls.modalities is not None and task.modality not in cls.modalities:
            return f"{cls.name} supports {', '.join(cls.modalities)} tasks, not {task.modality}"
        return None

    @classmethod
    def check_params(cls, task: Task, hparams: dict[str, Any]) -> str | None:
        """None if the (already type-checked) ``hparams`` fit ``task``, else what does
        not fit and what is allowed; checked for every task of a suite before any run."""
        return None

    def search(self) -> dict[str, Any] | None:
        """Bilevel methods search a policy here and return it (JSON-able)."""
        return None

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups; a group may set its own lr / weight_decay."""
        return [{"params": list(self.model.parameters())}]

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of one training batch, and extra scalars to log (not synchronised)."""
        return self.task.loss(self.model(x), y), {}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of the trained predictor h (called under no_grad in eval mode)."""
        return self.model(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation of h, for tasks scored on embeddings."""
        return self.model.embed(x)

    def end_epoch(self, epoch: int) -> None:
        """Hook after each training epoch (e.g. a penalty schedule)."""

    def learned_augmentation(self) -> dict[str, Any] | None:
        """The learned augmentation parameters (JSON-able), recorded per epoch."""
        return None

    def augmentation_state(self) -> dict[str, torch.Tensor] | None:
        """Named groups of the learned augmentation parameters in their interpretable
        space (probabilities, magnitudes in [0, 1], widths ...), detached on the CPU;
        a group whose name ends in ``weights`` holds probability distributions over its
        last dimension (rows sum to 1). None for methods that learn no augmentation.
        The harness records how far they moved (``bench.diagnostics``)."""
        return None
