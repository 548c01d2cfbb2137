"""Image ops on [0, 1] pixels (B, C, H, W): the 15 AutoAugment-family ops searched by
Faster AutoAugment and DADA, AugNet's magnitude-controlled horizontal flip, and
SamplePairing.

Ranges follow the AutoAugment / Faster AA / DADA code: shear 0.3, translation 0.45 of
the image size, rotation 30 degrees, enhance factors in [0.1, 1.9], posterize 8 to 4
bits, solarize threshold 256/255 to 0, cutout up to 0.2 of the side, sample pairing
weight up to 0.4. Brightness, contrast, colour and sharpness follow PIL's
ImageEnhance semantics, as AutoAugment and Faster AA do: out = d + f (x - d) with the
degenerate image d black (brightness), the mean grey level (contrast), the greyscale
image (colour) or the smoothed image (sharpness), and f = 1 + value. (kornia's
adjust_brightness is additive and adjust_contrast multiplicative: not used.) Warps use
zero padding.

kornia (``kornia.enhance``) runs equalize and solarize: same semantics as PIL /
torchvision on uint8 levels and the same speed. The other ops are kept by hand where
kornia's match is slower on the CPU by more than 10 % (benchmarks/augment_ops.py
--kornia, docs/notes/house.md): warps (kornia.geometry's rotate is 2.8x slower: it
builds pixel-space matrices and normalises them around the same affine_grid /
grid_sample), posterize (kornia's casts to uint8 and shifts bits, 28x slower here,
and is not differentiable in x), sharpness (kornia's 1.7x slower, same values). Unlike the official Faster AA code, TranslateX exists (it lists
TranslateY twice) and posterize really quantises (its posterize is an identity).
"""
from __future__ import annotations

import math
from typing import Any

import kornia
import torch
import torch.nn.functional as F

from bench.augment.core import Op, expand_to, register, straight_through_input
from bench.augment.geometry import rotation_matrices, warp

GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, as PIL's convert("L")


def grey(x: torch.Tensor) -> torch.Tensor:
    """Greyscale (B, 1, H, W) of RGB or single-channel images."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(GREY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def enhance(x: torch.Tensor, degenerate: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL ImageEnhance: degenerate + factor * (x - degenerate), clipped to [0, 1]."""
    return (degenerate + expand_to(factor, x) * (x - degenerate)).clamp(0, 1)


def affine(x: torch.Tensor, rows: tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]) -> torch.Tensor:
    """Warp by per-sample 2x3 matrices given row by row (entries: scalars or (B,) tensors)."""
    b = len(x)
    like = next(v for row in rows for v in row if torch.is_tensor(v))
    entries = [[v if torch.is_tensor(v) else torch.full((b,), float(v), dtype=x.dtype, device=x.device)
                for v in row] for row in rows]
    theta = torch.stack([torch.stack(row, -1) for row in entries], -2).to(like.dtype)
    return warp(x, theta)


@register
class ShearX(Op):
    name, modality, low, high, unit, symmetric = "shear_x", "image", 0.0, 0.3, "shear factor", True
    assumption = "ShearX: the label does not change under horizontal shears up to 0.3 (about 17 degrees)."

    def transform(self, x, value, training, **facts):
        return affine(x, ((1, value, 0), (0, 1, 0)))


@register
class ShearY(Op):
    name, modality, low, high, unit, symmetric = "shear_y", "image", 0.0, 0.3, "shear factor", True
    assumption = "ShearY: the label does not change under vertical shears up to 0.3 (about 17 degrees)."

    def transform(self, x, value, training, **facts):
        return affine(x, ((1, 0, 0), (value, 1, 0)))


@register
class TranslateX(Op):
    name, modality, low, high, unit, symmetric = "translate_x", "image", 0.0, 0.45, "fraction of the width", True
    assumption = "TranslateX: the label does not change when the content moves sideways by up to 45% of the width."

    def transform(self, x, value, training, **facts):
        return affine(x, ((1, 0, -2 * value), (0, 1, 0)))  # normalised coordinates span 2


@register
class TranslateY(Op):
    name, modality, low, high, unit, symmetric = "translate_y", "image", 0.0, 0.45, "fraction of the height", True
    assumption = "TranslateY: the label does not change when the content moves up or down by up to 45% of the height."

    def transform(self, x, value, training, **facts):
        return affine(x, ((1, 0, 0), (0, 1, -2 * value)))


@register
class Rotate(Op):
    name, modality, low, high, unit, symmetric = "rotate", "image", 0.0, 30.0, "degrees", True
    assumption = "Rotate: the label does not change under rotations up to 30 degrees."

    def transform(self, x, value, training, **facts):
        return warp(x, rotation_matrices(value * (math.pi / 180)))


@register
class AutoContrast(Op):
    name, modality, kind, low, high, unit = "auto_contrast", "image", "on_off", 0.0, 1.0, "probability"
    assumption = "AutoContrast: the label does not depend on the range of grey levels used (per channel)."

    def transform(self, x, value, training, **facts):
        lo = x.amin(dim=(-2, -1), keepdim=True)
        hi = x.amax(dim=(-2, -1), keepdim=True)
        scaled = torch.where(hi > lo, (x - lo) / (hi - lo).clamp_min(1e-8), x)
        return straight_through_input(scaled, x)


@register
class Invert(Op):
    name, modality, kind, low, high, unit = "invert", "image", "on_off", 0.0, 1.0, "probability"
    assumption = "Invert: the label does not change when dark and bright are swapped."

    def transform(self, x, value, training, **facts):
        return 1 - x


@register
class Equalize(Op):
    name, modality, kind, low, high, unit = "equalize", "image", "on_off", 0.0, 1.0, "probability"
    assumption = "Equalize: the label does not depend on the histogram of grey levels."

    def transform(self, x, value, training, **facts):
        # kornia's equalize is PIL's ImageOps.equalize per channel (exact on uint8 levels).
        return straight_through_input(kornia.enhance.equalize(x.detach().clamp(0, 1)), x)


@register
class Solarize(Op):
    name, modality, kind, low, high, unit = "solarize", "image", "discrete", 256 / 255, 0.0, "threshold"
    assumption = "Solarize: the label does not change when grey levels above a threshold are inverted."

    def transform(self, x, value, training, **facts):
        return kornia.enhance.solarize(x, thresholds=value.to(x.dtype))  # x < threshold kept, else 1 - x


@register
class Posterize(Op):
    name, modality, kind, low, high, unit = "posterize", "image", "discrete", 8.0, 4.0, "bits kept"
    assumption = "Posterize: the label does not change when grey levels are quantised to 4 bits."

    def transform(self, x, value, training, **facts):
        shift = expand_to((8 - value.round()).clamp(0, 8), x)
        step = 2 ** shift / 255
        quantised = torch.floor(x * 255 / 2 ** shift) * step
        return straight_through_input(torch.where(shift > 0, quantised, x), x)


class _Enhance(Op):
    low, high, unit, symmetric = 0.0, 0.9, "enhance factor - 1", True

    def degenerate(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def transform(self, x, value, training, **facts):
        return enhance(x, self.degenerate(x), 1 + value)


@register
class Contrast(_Enhance):
    name, modality = "contrast", "image"
    assumption = "Contrast: the label does not change with contrast factors in [0.1, 1.9]."

    def degenerate(self, x):
        return grey(x).mean(dim=(-3, -2, -1), keepdim=True).expand_as(x)


@register
class Color(_Enhance):
    name, modality = "color", "image"
    assumption = "Color: the label does not change with colour saturation factors in [0.1, 1.9]."

    def degenerate(self, x):
        return grey(x).expand_as(x)


@register
class Brightness(_Enhance):
    name, modality = "brightness", "image"
    assumption = "Brightness: the label does not change with brightness factors in [0.1, 1.9]."

    def degenerate(self, x):
        return torch.zeros_like(x)


def smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL's ImageFilter.SMOOTH (3x3 kernel [[1,1,1],[1,5,1],[1,1,1]] / 13), borders kept."""
    kernel = torch.ones(3, 3, dtype=x.dtype, device=x.device)
    kernel[1, 1] = 5
    kernel = (kernel / 13).expand(x.shape[1], 1, 3, 3)
    inner = F.conv2d(x, kernel, groups=x.shape[1])
    out = x.clone()
    out[..., 1:-1, 1:-1] = inner
    return out


@register
class Sharpness(_Enhance):
    name, modality = "sharpness", "image"
    assumption = "Sharpness: the label does not change when edges are blurred or sharpened (factor 0.1 to 1.9)."

    def degenerate(self, x):
        return smooth(x)


@register
class Cutout(Op):
    name, modality, kind, low, high, unit = "cutout", "image", "discrete", 0.0, 0.2, "fraction of the side"
    assumption = "Cutout: the label does not change when a square of up to 20% of the side is blanked out."

    def transform(self, x, value, training, **facts):
        b, _, h, w = x.shape
        half_h, half_w = (value * h / 2).view(b, 1, 1), (value * w / 2).view(b, 1, 1)
        cy = torch.rand(b, 1, 1, device=x.device, dtype=x.dtype) * h
        cx = torch.rand(b, 1, 1, device=x.device, dtype=x.dtype) * w
        rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1) + 0.5
        cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w) + 0.5
        inside = ((rows - cy).abs() < half_h) & ((cols - cx).abs() < half_w)
        return x * (~inside).unsqueeze(1).to(x.dtype)


@register
class HorizontalFlip(Op):
    # AugNet's MagHorizontalFlip: the magnitude sets the flip probability (scale 0.5).
    name, modality, kind, low, high, unit = "horizontal_flip", "image", "on_off", 0.0, 0.5, "flip probability"
    assumption = "HorizontalFlip: the label does not change under left-right mirroring."

    def transform(self, x, value, training, **facts):
        return x.flip(-1)


@register
class SamplePairing(Op):
    name, modality, low, high, unit = "sample_pairing", "image", 0.0, 0.4, "weight of the other image"
    assumption = "SamplePairing: the label is kept when up to 40% of another training image is blended in."

    def transform(self, x, value, training, **facts):
        partner = x[torch.randperm(len(x), device=x.device)]
        return x + expand_to(value, x) * (partner - x)


def random_crop_flip(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """The standard CIFAR augmentation, batched: a horizontal flip with probability
    1/2 and a random translation by up to ``pad`` pixels with zero padding (the same
    as a random crop of the zero-padded image, at integer offsets)."""
    b, _, h, w = x.shape
    flip = torch.rand(b, device=x.device) < 0.5
    x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), device=x.device)
    rows = (dy.view(b, 1) + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(-1, x.shape[1], -1, w + 2 * pad)
    cropped = padded.gather(2, rows)
    cols = (dx.view(b, 1) + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(-1, x.shape[1], h, -1)
    return cropped.gather(3, cols)
