"""Each AutoAugment image op against a reference with PIL semantics: torchvision's
functional ops on uint8 images (the tensor kernels torchvision writes to match PIL).

Tolerances (pixels in [0, 1]): exact ops (invert, equalize, posterize, solarize) 1e-6;
PIL-style blends (brightness, contrast, colour, sharpness, autocontrast) one uint8
level plus rounding, 2/255 max, since torchvision rounds its uint8 result and we keep
float; warps, on a smooth image, mean absolute difference 0.003 (torchvision rounds a
translation to whole pixels, so translate is compared at one that is whole). Our
rotate turns the picture clockwise for a positive angle, torchvision anti-clockwise:
compared at opposite signs. Also: gradients reach the magnitudes through every op
that has one, kornia-backed or not.
"""
from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from bench.augment import get_op

BILINEAR = TF.InterpolationMode.BILINEAR
N, SIDE = 4, 32


def images() -> torch.Tensor:
    torch.manual_seed(0)
    u8 = torch.randint(0, 256, (N, 3, SIDE, SIDE), dtype=torch.uint8)
    return TF.gaussian_blur(u8, [5, 5], [2.0, 2.0])  # smooth, so bilinear sampling details stay small


def ours(name: str, x: torch.Tensor, value: float) -> torch.Tensor:
    return get_op(name).transform(x, torch.full((len(x),), float(value)), training=False)


def level(u8: torch.Tensor) -> torch.Tensor:
    return u8.float() / 255


EXACT = [
    ("invert", 1.0, TF.invert),
    ("equalize", 1.0, TF.equalize),  # kornia.enhance.equalize
    ("posterize", 5.0, lambda u: TF.posterize(u, 5)),
    ("solarize", 0.5, lambda u: TF.solarize(u, 128)),  # kornia.enhance.solarize
]
BLENDS = [
    ("brightness", 0.6, lambda u: TF.adjust_brightness(u, 1.6)),
    ("contrast", -0.5, lambda u: TF.adjust_contrast(u, 0.5)),
    ("color", 0.6, lambda u: TF.adjust_saturation(u, 1.6)),
    ("sharpness", 0.7, lambda u: TF.adjust_sharpness(u, 1.7)),
    ("auto_contrast", 1.0, TF.autocontrast),
]
shear_deg = math.degrees(math.atan(0.2))
WARPS = [
    ("rotate", -20.0, lambda u: TF.rotate(u, 20.0, interpolation=BILINEAR)),
    ("shear_x", 0.2, lambda u: TF.affine(u, 0.0, [0, 0], 1.0, [shear_deg, 0.0], interpolation=BILINEAR)),
    ("shear_y", 0.2, lambda u: TF.affine(u, 0.0, [0, 0], 1.0, [0.0, shear_deg], interpolation=BILINEAR)),
    ("translate_x", 0.25, lambda u: TF.affine(u, 0.0, [8, 0], 1.0, [0.0, 0.0], interpolation=BILINEAR)),
    ("translate_y", 0.25, lambda u: TF.affine(u, 0.0, [0, 8], 1.0, [0.0, 0.0], interpolation=BILINEAR)),
]


@pytest.mark.parametrize("name, value, reference", EXACT, ids=[c[0] for c in EXACT])
def test_exact_ops_match_pil_semantics(name, value, reference) -> None:
    u8 = images()
    assert (ours(name, level(u8), value) - level(reference(u8))).abs().max() < 1e-6


@pytest.mark.parametrize("name, value, reference", BLENDS, ids=[c[0] for c in BLENDS])
def test_blends_match_pil_semantics_within_rounding(name, value, reference) -> None:
    u8 = images()
    assert (ours(name, level(u8), value) - level(reference(u8))).abs().max() <= 2 / 255


@pytest.mark.parametrize("name, value, reference", WARPS, ids=[c[0] for c in WARPS])
def test_warps_match_pil_semantics(name, value, reference) -> None:
    u8 = images()
    difference = (ours(name, level(u8), value) - level(reference(u8))).abs().mean()
    assert difference < 0.003
    # ... and the comparison can fail: the opposite direction is far off.
    assert (ours(name, level(u8), -value) - level(reference(u8))).abs().mean() > 10 * difference


@pytest.mark.parametrize("name", ["rotate", "shear_x", "translate_y", "solarize", "posterize", "sharpness",
                                  "equalize", "contrast"])
def test_gradients_reach_the_magnitude(name) -> None:
    x = level(images())
    magnitude = torch.full((N,), 0.5, requires_grad=True)
    out = get_op(name)(x, magnitude, training=True, temperature=0.1)
    (out * torch.linspace(0, 1, out.numel()).view_as(out)).sum().backward()
    assert magnitude.grad is not None and magnitude.grad.abs().sum() > 0, name
