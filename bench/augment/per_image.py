"""Apply a torchvision v2 transform to each image of a batch separately.

RandAugment and TrivialAugment sample their op per image in their papers, while a
v2 transform called on a batch samples one op for the whole batch, so these
baselines loop over the images (about 0.4 ms per image on one CPU core; see
benchmarks/augment_ops.py). The ops run on uint8 images, as in the papers
(PIL semantics); the batch goes in and out as [0, 1] floats.
"""
from __future__ import annotations

from typing import Callable

import torch


def apply_per_image(transform: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    images = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8)
    return torch.stack([transform(image) for image in images]).to(x.dtype) / 255
