"""Sinusoids: the AugNet paper's expressivity experiment (Rommel et al., 2022, Sec. 5.1),
generated offline.

Four classes of sinusoids at 2, 4, 6 and 8 Hz, each example's frequency shifted by a
draw of U(-0.5, 0.5) Hz, with a random phase U(0, 4 pi / f) rad (two periods of the
class frequency f), amplitude 1, white noise of std 0.5, 10 s at 100 Hz (1,000
samples, one channel, not normalised); 150 examples per class, 2/3 of them for
training and 1/3 for testing, stratified (as the official ``generate_data.make_dataset``
called by ``train_augnet.py``). The class is therefore invariant to frequency shifts
of +-0.5 Hz, the reference symmetry of the invariance score.

Model: the official ``SimpleMLP`` - ``n_hidden`` fully connected ReLU layers of
``n_neurons`` units on the flattened signal, then a linear head, PyTorch's default
initialisation. ``width`` scales the neurons (base 2: width 0.5 -> 1 neuron, the
paper's smallest model) and ``depth`` is the number of hidden layers (default 1); the
paper's capacities (1, 1), (2, 1), (2, 2), (2, 3) are widths 0.5 / 1 / 1 / 1 at
depths 1 / 1 / 2 / 3.

Protocol (``paper``, and ``quick``, which changes nothing: a run takes seconds):
the official script's - Adam, lr 0.01, weight decay 1e-4 on every parameter, batch
32, 50 epochs, no schedule, the training batches in one fixed order (the official
loader does not shuffle; the split is shuffled once when generated), the last epoch's
model reported. ``smoke`` is 30 examples per class and 2 epochs, reshuffled.

Differences kept from the official code, each measured not to matter
(docs/notes/sinusoids.md): a separate validation set (50 per class, generated from
the same distribution; the official code has none, the bilevel methods need one);
torch's random streams and the harness's derived seeds
instead of NumPy's ``RandomState(seed)``, so our seed 29 is not the official seed 29's
data; test accuracy over the whole test set (official: the mean of per-batch
accuracies, batches of 32 and a last one of 8).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from bench.api import Profile, Split, Task, TaskData
from bench.augment import get_op

FREQUENCIES_HZ = (2.0, 4.0, 6.0, 8.0)
DELTA_F_HZ = 0.5
SFREQ = 100.0
LENGTH_S = 10.0
NOISE_STD = 0.5


def make_sinusoids(n_per_class: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy sinusoids (N, 1, 1000) and class labels, classes interleaved."""
    t = torch.arange(0, LENGTH_S, 1 / SFREQ, dtype=torch.float64)
    freqs = torch.tensor(FREQUENCIES_HZ, dtype=torch.float64).repeat_interleave(n_per_class)
    shifts = (torch.rand(len(freqs), generator=generator, dtype=torch.float64) * 2 - 1) * DELTA_F_HZ
    phases = torch.rand(len(freqs), generator=generator, dtype=torch.float64) * 4 * math.pi / freqs  # 2 periods
    waves = torch.sin(2 * math.pi * (freqs + shifts)[:, None] * t + phases[:, None])
    waves += NOISE_STD * torch.randn(waves.shape, generator=generator, dtype=torch.float64)
    labels = torch.arange(len(FREQUENCIES_HZ)).repeat_interleave(n_per_class)
    return waves.float().unsqueeze(1), labels


def stratified_split(labels: torch.Tensor, train_fraction: float, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled train / test indices with the class proportions of ``labels``."""
    train, test = [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_train = round(train_fraction * len(idx))
        train.append(idx[:n_train])
        test.append(idx[n_train:])
    train_idx, test_idx = torch.cat(train), torch.cat(test)
    return (train_idx[torch.randperm(len(train_idx), generator=generator)],
            test_idx[torch.randperm(len(test_idx), generator=generator)])


def random_frequency_shift(x: torch.Tensor, max_shift_hz: float, probability: float) -> torch.Tensor:
    """braindecode's FrequencyShift: with ``probability``, shift every frequency of a
    sample by a draw of U(-max, max) Hz (through the shared library's op)."""
    op = get_op("frequency_shift")
    applied = (torch.rand(len(x), device=x.device) < probability).to(x.dtype)
    # The op draws a random sign and maps magnitude m to m * op.high Hz.
    magnitude = torch.rand(len(x), device=x.device, dtype=x.dtype) * (max_shift_hz / op.high) * applied
    return op(x, magnitude, training=False, sfreq=SFREQ)


class SimpleMLP(nn.Module):
    """The official sinusoid MLP: hidden ReLU layers of ``n_neurons``, a linear head."""

    def __init__(self, n_neurons: int, n_hidden: int, in_features: int = 1000, num_classes: int = 4):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(in_features, n_neurons), nn.ReLU()]
        for _ in range(n_hidden - 1):
            layers += [nn.Linear(n_neurons, n_neurons), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(n_neurons, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


class Sinusoids(Task):
    name = "sinusoids"
    description = "Noisy sinusoids of 4 frequencies, labels invariant to +-0.5 Hz shifts (AugNet expressivity study)."
    modality = "eeg"  # a single-channel time series at 100 Hz: the EEG op set applies
    metric = "accuracy"
    num_classes = 4
    input_shape = (1, 1000)
    # The paper's experiment learns over FrequencyShift alone.
    augmentation_space = ("frequency_shift",)
    # AugNet's sinusoid experiment: one FrequencyShift layer; one Adam (lr 0.01, weight
    # decay 1e-4) on every parameter (experiments/sinusoids/train_augnet.py).
    augnet_defaults = {"layers": "frequency_shift", "aug_lr": 1e-2, "aug_weight_decay": 1e-4}
    # AugNet's differentiable FrequencyShift spans 0-2 Hz (the library's default is 5 Hz).
    augmentation_kwargs = {"sfreq": SFREQ, "ranges": {"frequency_shift": 2.0}}
    reference_symmetry = "FrequencyShift with probability 1, shift uniform in +-0.5 Hz"
    reference_extent = {"frequency_shift": (0.5, "Hz")}
    fixed_augmentation = "the 'oracle' FrequencyShift: probability 0.5, shift uniform in +-0.5 Hz"
    profiles = {
        "smoke": Profile(epochs=2, batch_size=32, lr=1e-2, weight_decay=1e-4,
                         options={"n_per_class": 30, "n_val_per_class": 10}),
        # shuffle=False: the official DataLoader has no shuffle, so every epoch sees the
        # training split in the one order it was shuffled into when generated.
        "quick": Profile(epochs=50, batch_size=32, lr=1e-2, weight_decay=1e-4, shuffle=False,
                         options={"n_per_class": 150, "n_val_per_class": 50}),
        "paper": Profile(epochs=50, batch_size=32, lr=1e-2, weight_decay=1e-4, shuffle=False,
                         options={"n_per_class": 150, "n_val_per_class": 50}),
    }

    def load(self, profile: str, data_root: Path | None, seed: int) -> TaskData:
        opts = self.profile(profile).options
        generator = torch.Generator().manual_seed(seed)
        x, y = make_sinusoids(opts["n_per_class"], generator)
        train, test = stratified_split(y, 2 / 3, generator)
        x_val, y_val = make_sinusoids(opts["n_val_per_class"], generator)
        return TaskData(Split(x[train], y[train]), Split(x_val, y_val), Split(x[test], y[test]))

    def make_model(self, profile: str, width: float, depth: int | None) -> nn.Module:
        return SimpleMLP(n_neurons=max(1, round(2 * width)), n_hidden=1 if depth is None else depth)

    def reference_transform(self, x: torch.Tensor) -> torch.Tensor:
        return random_frequency_shift(x, DELTA_F_HZ, probability=1.0)

    def fixed_augment(self, x: torch.Tensor) -> torch.Tensor:
        return random_frequency_shift(x, DELTA_F_HZ, probability=0.5)
