"""TrivialAugment (Muller and Hutter, 2021) through torchvision.transforms.v2.

Each training image gets one op drawn uniformly from the "wide" op list at a
magnitude drawn uniformly, sampled per image as in the paper (see
bench/augment/per_image.py). No hyper-parameters.
"""
import torch
from torchvision.transforms import v2

from bench.api import Method
from bench.augment.per_image import apply_per_image


class TrivialAugment(Method):
    name = "trivialaugment"
    description = "TrivialAugment Wide (torchvision v2): one random op at a random magnitude per image."
    params = {}
    kind = "baseline"
    modalities = ("image",)

    def __init__(self, ctx, model, hparams):
        super().__init__(ctx, model, hparams)
        self.policy = v2.TrivialAugmentWide()

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return self.task.loss(self.model(apply_per_image(self.policy, x)), y), {}
