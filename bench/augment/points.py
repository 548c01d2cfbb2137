"""3D point-cloud ops for molecules.

Inputs are one tensor (B, A, 3 + T + 1): xyz coordinates in Angstrom, T one-hot atom
types, and the padding mask in the last channel (1 = atom). Only the coordinates of
real atoms change; padding rows are returned exactly as they came. Rotations and
reflections act about the centroid of the real atoms, so they never translate.
"""
from __future__ import annotations

import torch

from bench.augment.core import Op, register


def coordinates(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(xyz (B, A, 3), mask (B, A, 1)) of a molecule batch."""
    return x[..., :3], x[..., -1:]


def with_coordinates(x: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
    """x with the coordinates of real atoms replaced by ``xyz``."""
    old, mask = coordinates(x)
    return torch.cat([torch.where(mask > 0, xyz, old), x[..., 3:]], dim=-1)


def centroid(x: torch.Tensor) -> torch.Tensor:
    xyz, mask = coordinates(x)
    return (xyz * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp_min(1)


def random_unit_vectors(n: int, like: torch.Tensor) -> torch.Tensor:
    v = torch.randn(n, 3, device=like.device, dtype=like.dtype)
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def axis_angle_matrices(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (B, 3, 3) from unit axes (B, 3) and angles (B,) (Rodrigues)."""
    zero = torch.zeros_like(angle)
    kx, ky, kz = axis.unbind(-1)
    k = torch.stack([torch.stack([zero, -kz, ky], -1), torch.stack([kz, zero, -kx], -1),
                     torch.stack([-ky, kx, zero], -1)], -2)
    eye = torch.eye(3, device=axis.device, dtype=axis.dtype).expand_as(k)
    s, c = angle.sin().view(-1, 1, 1), angle.cos().view(-1, 1, 1)
    return eye + s * k + (1 - c) * (k @ k)


def uniform_rotations(n: int, like: torch.Tensor) -> torch.Tensor:
    """Rotation matrices drawn from the Haar (uniform) measure on SO(3), via
    normalised Gaussian quaternions."""
    q = torch.randn(n, 4, device=like.device, dtype=like.dtype)
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def rotate_about_centroid(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    xyz, _ = coordinates(x)
    c = centroid(x)
    return with_coordinates(x, (xyz - c) @ rotations.transpose(-1, -2) + c)


@register
class SO3Rotation(Op):
    name, modality, low, high, unit, symmetric = "so3_rotation", "molecule", 0.0, 180.0, "degrees", True
    assumption = "SO3Rotation: the property does not change when the molecule is rotated (about a random axis)."

    def transform(self, x, value, training, **facts):
        axis = random_unit_vectors(len(x), x)
        return rotate_about_centroid(x, axis_angle_matrices(axis, value * (torch.pi / 180)))


@register
class Translation(Op):
    name, modality, low, high, unit = "translation", "molecule", 0.0, 1.0, "Angstrom"
    assumption = "Translation: the property does not change when the molecule is moved by up to 1 Angstrom."

    def transform(self, x, value, training, **facts):
        xyz, _ = coordinates(x)
        shift = random_unit_vectors(len(x), x) * value.view(-1, 1)
        return with_coordinates(x, xyz + shift.unsqueeze(1))


@register
class Jitter(Op):
    name, modality, low, high, unit = "jitter", "molecule", 0.0, 0.1, "noise std (Angstrom)"
    assumption = "Jitter: the property does not change when atoms move by Gaussian noise of std up to 0.1 Angstrom."

    def transform(self, x, value, training, **facts):
        xyz, _ = coordinates(x)
        return with_coordinates(x, xyz + value.view(-1, 1, 1) * torch.randn_like(xyz))


@register
class Reflection(Op):
    name, modality, kind, unit = "reflection", "molecule", "on_off", "probability"
    assumption = "Reflection: the property does not change for the mirror image (enantiomer) of the molecule."

    def transform(self, x, value, training, **facts):
        normal = random_unit_vectors(len(x), x)
        householder = torch.eye(3, device=x.device, dtype=x.dtype) - 2 * normal.unsqueeze(-1) * normal.unsqueeze(-2)
        return rotate_about_centroid(x, householder)


def random_rotation_translation(x: torch.Tensor, max_shift: float = 1.0) -> torch.Tensor:
    """The molecules' reference group: a uniformly random rotation about the
    centroid and a translation of uniformly random direction and length up to
    ``max_shift`` Angstrom."""
    rotated = rotate_about_centroid(x, uniform_rotations(len(x), x))
    xyz, _ = coordinates(rotated)
    shift = random_unit_vectors(len(x), x) * torch.rand(len(x), 1, device=x.device, dtype=x.dtype) * max_shift
    return with_coordinates(rotated, xyz + shift.unsqueeze(1))
