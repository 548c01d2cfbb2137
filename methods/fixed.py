"""Fixed augmentation: the hand-designed augmentation of the task's modality.

Each training batch is transformed by ``task.fixed_augment`` (e.g. a random rotation
over the full circle for rotated MNIST) on the device; evaluation sees clean inputs.
"""
import torch

from bench.api import Method


class FixedAugmentation(Method):
    name = "fixed"
    description = "Hand-designed augmentation of the modality (the task's `fixed_augment`), applied to each batch."
    params = {}
    kind = "baseline"

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return self.task.loss(self.model(self.task.fixed_augment(x)), y), {}
