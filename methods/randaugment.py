"""RandAugment (Cubuk et al., 2020) through torchvision.transforms.v2.

Each training image gets ``num_ops`` ops drawn uniformly from torchvision's list, all
at the same ``magnitude`` (of 31 bins), sampled per image as in the paper (see
bench/augment/per_image.py). Defaults are torchvision's (N=2, M=9); the paper's
CIFAR-10 settings are N=3 with M=4 (WRN-28-2) or M=5 (WRN-28-10).
"""
import torch
from torchvision.transforms import v2

from bench.api import Method
from bench.params import Param, int_uniform
from bench.augment.per_image import apply_per_image


class RandAugment(Method):
    name = "randaugment"
    description = "RandAugment (torchvision v2): N random ops at magnitude M, sampled per image."
    params = {
        "num_ops": Param(2, int, low=0, high=14, tune=int_uniform(1, 3)),  # of torchvision's 14 ops
        "magnitude": Param(9, int, low=0, high=30, tune=int_uniform(1, 30)),  # of 31 bins
    }
    kind = "baseline"
    modalities = ("image",)

    def __init__(self, ctx, model, hparams):
        super().__init__(ctx, model, hparams)
        self.policy = v2.RandAugment(num_ops=hparams["num_ops"], magnitude=hparams["magnitude"])

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return self.task.loss(self.model(apply_per_image(self.policy, x)), y), {}
