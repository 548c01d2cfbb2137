"""Augerino's transformation families: exp(sum_k t_k G_k) with t_k ~ U[-w_k/2, w_k/2].

The sample is reparameterised, t = (u - 1/2) * w with u ~ U[0, 1], so the gradient
of anything computed from the transformed batch reaches the widths w. The matrix
exponential is ``torch.linalg.matrix_exp``, batched on the input's device (the
official code integrates an ODE on the CPU).

Families (generators in homogeneous coordinates):
- ``AFFINE_2D`` (images, normalised coordinates in [-1, 1]): x translation, y
  translation (both scaled by 0.1 as in the official ``UniformAug``), rotation,
  isotropic scale, stretch, shear. Applied with affine_grid / grid_sample.
- ``AFFINE_1D`` (EEG windows, normalised time in [-1, 1]): time shift and time
  dilation, applied by resampling every channel.
- ``AFFINE_3D`` (molecules): the official ``AffineUniform3d`` family - rotations (3),
  shears (3), squeeze and scale (3) and translations (3, scaled by 0.5) - acting about
  the centroid of the real atoms; ``SE_3`` is its rotation + translation part. The
  official 3D code samples t in [0, w]; here it is centred, [-w/2, w/2], as in 2D.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.augment.geometry import warp
from bench.augment.points import centroid, coordinates, with_coordinates


def _generator(n: int, entries: dict[tuple[int, int], float]) -> torch.Tensor:
    g = torch.zeros(n, n)
    for (i, j), v in entries.items():
        g[i, j] = v
    return g


@dataclass(frozen=True)
class LieFamily:
    name: str
    modality: str
    names: tuple[str, ...]
    generators: torch.Tensor  # (K, n, n)

    @property
    def size(self) -> int:
        return len(self.names)

    def sample(self, widths: torch.Tensor, batch: int) -> torch.Tensor:
        """Coefficients t (batch, K), uniform in [-w/2, w/2], differentiable in w."""
        u = torch.rand(batch, self.size, device=widths.device, dtype=widths.dtype)
        return (u - 0.5) * widths

    def matrices(self, t: torch.Tensor) -> torch.Tensor:
        """exp(sum_k t_k G_k), (batch, n, n)."""
        g = self.generators.to(t.device, t.dtype)
        return torch.linalg.matrix_exp(torch.einsum("bk,kij->bij", t, g))

    def apply(self, x: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        """Transform each sample of x by its own random element of the family."""
        return self.transform(x, self.matrices(self.sample(widths, len(x))))

    def transform(self, x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
        if self.modality == "image":
            return warp(x, matrices[:, :2, :])
        if self.modality == "eeg":
            return resample_time(x, matrices)
        if self.modality == "molecule":
            xyz, _ = coordinates(x)
            c = centroid(x)
            linear, shift = matrices[:, :3, :3], matrices[:, :3, 3].unsqueeze(1)
            return with_coordinates(x, (xyz - c) @ linear.transpose(-1, -2) + c + shift)
        raise ValueError(f"no transform for modality {self.modality!r}")


def resample_time(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Resample (B, C, T) signals at times a*s + b (normalised s in [-1, 1]), zeros
    outside the window; matrices are (B, 2, 2) [[a, b], [0, 1]]."""
    b, _, n = x.shape
    s = torch.linspace(-1 + 1 / n, 1 - 1 / n, n, device=x.device, dtype=x.dtype)  # pixel centres
    source = matrices[:, 0, :1] * s + matrices[:, 0, 1:]  # (B, T)
    grid = torch.stack([source, torch.zeros_like(source)], -1).unsqueeze(1)  # (B, 1, T, 2)
    return F.grid_sample(x.unsqueeze(2), grid, mode="bilinear", padding_mode="zeros", align_corners=False).squeeze(2)


TRANS_SCALE_2D = 0.1  # official UniformAug
AFFINE_2D = LieFamily("affine_2d", "image", ("translate_x", "translate_y", "rotate", "scale", "stretch", "shear"),
                      torch.stack([
                          _generator(3, {(0, 2): TRANS_SCALE_2D}),
                          _generator(3, {(1, 2): TRANS_SCALE_2D}),
                          _generator(3, {(0, 1): -1.0, (1, 0): 1.0}),
                          _generator(3, {(0, 0): 1.0, (1, 1): 1.0}),
                          _generator(3, {(0, 0): 1.0, (1, 1): -1.0}),
                          _generator(3, {(0, 1): 1.0, (1, 0): 1.0}),
                      ]))

AFFINE_1D = LieFamily("affine_1d", "eeg", ("time_shift", "time_scale"),
                      torch.stack([_generator(2, {(0, 1): 1.0}), _generator(2, {(0, 0): 1.0})]))

TRANS_SCALE_3D = 0.5  # official AffineUniform3d
_ROTATIONS = [_generator(4, {(1, 2): -1.0, (2, 1): 1.0}), _generator(4, {(0, 2): 1.0, (2, 0): -1.0}),
              _generator(4, {(0, 1): -1.0, (1, 0): 1.0})]
_SHEARS = [_generator(4, {(1, 2): 1.0, (2, 1): 1.0}), _generator(4, {(0, 2): 1.0, (2, 0): 1.0}),
           _generator(4, {(0, 1): 1.0, (1, 0): 1.0})]
_SQUEEZE_SCALE = [_generator(4, {(0, 0): 1.0, (1, 1): -1.0}), _generator(4, {(1, 1): 1.0, (2, 2): -1.0}),
                  _generator(4, {(0, 0): 1.0, (1, 1): 1.0, (2, 2): 1.0})]
_TRANSLATIONS = [_generator(4, {(i, 3): TRANS_SCALE_3D}) for i in range(3)]

AFFINE_3D = LieFamily("affine_3d", "molecule",
                      ("rotate_x", "rotate_y", "rotate_z", "shear_yz", "shear_xz", "shear_xy", "squeeze_xy",
                       "squeeze_yz", "scale", "translate_x", "translate_y", "translate_z"),
                      torch.stack(_ROTATIONS + _SHEARS + _SQUEEZE_SCALE + _TRANSLATIONS))
SE_3 = LieFamily("se_3", "molecule", ("rotate_x", "rotate_y", "rotate_z", "translate_x", "translate_y", "translate_z"),
                 torch.stack(_ROTATIONS + _TRANSLATIONS))

FAMILIES = {f.name: f for f in (AFFINE_2D, AFFINE_1D, AFFINE_3D, SE_3)}


def family_of(names: set[str] | list[str]) -> LieFamily | None:
    """The family whose generators are exactly ``names`` (a record keeps only the names)."""
    return next((f for f in FAMILIES.values() if set(f.names) == set(names)), None)


def half_range(family: LieFamily, name: str, width: float) -> tuple[float, str]:
    """What a width means: the largest effect of generator ``name`` at width w
    (t ~ U[-w/2, w/2]) in the generator's own unit. Rotations: w/2 radians;
    translations: the shift (2D: a fraction of the image side, normalised coordinates
    span 2; 3D: coordinate units, Angstrom for molecules); time shift: a fraction of
    the window; scale, stretch, squeeze, time scale: the factor exp(w/2); shears
    (symmetric generators): sinh(w/2)."""
    t = width / 2
    if name.startswith("rotate"):
        return t, "radians"
    if name.startswith("translate"):
        if family.modality == "image":
            return TRANS_SCALE_2D * t / 2, "fraction of the side"
        return TRANS_SCALE_3D * t, "Angstrom"
    if name == "time_shift":
        return t / 2, "fraction of the window"
    if name.startswith("shear"):
        return math.sinh(t), "shear factor"
    return math.exp(t), "scale factor"
