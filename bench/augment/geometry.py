"""Batched affine warps of images through ``affine_grid`` / ``grid_sample``."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def warp(x: torch.Tensor, theta: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Apply per-sample 2x3 affine matrices ``theta`` (normalised coordinates, as
    ``affine_grid`` expects: they map output to input locations) to images ``x``."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """2x3 matrices rotating images by ``angles`` (radians; a positive angle turns the
    picture clockwise as displayed, rows downwards: the opposite sign to PIL's and
    torchvision's rotate, tests/test_kornia_ops.py)."""
    cos, sin = angles.cos(), angles.sin()
    zero = torch.zeros_like(angles)
    # affine_grid maps output to input coordinates, so the inverse rotation goes here.
    return torch.stack([torch.stack([cos, sin, zero], -1), torch.stack([-sin, cos, zero], -1)], -2)


def rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each image of ``x`` by its angle (radians); zeros outside the image."""
    return warp(x, rotation_matrices(angles))


def random_rotate(x: torch.Tensor, max_angle: float = math.pi) -> torch.Tensor:
    """Rotate each image by an angle drawn uniformly from [-max_angle, max_angle]."""
    angles = (torch.rand(len(x), device=x.device) * 2 - 1) * max_angle
    return rotate(x, angles)
