"""The shared augmentation library: every op, the estimators, the group facts."""
from __future__ import annotations

import math

import pytest
import torch

from bench.augment import OPS, apply_with_probability, bernoulli_gate, get_op, ops_for
from bench.augment.eeg import random_sign_flip_time_shift
from bench.augment.geometry import rotate
from bench.augment.image import random_crop_flip
from bench.augment.lie import AFFINE_1D, AFFINE_2D, AFFINE_3D, FAMILIES, SE_3
from bench.augment.points import random_rotation_translation, uniform_rotations

SFREQ = 100.0


def molecules(batch: int = 4, atoms: int = 6, real: int = 4) -> torch.Tensor:
    """(B, A, 3 + 5 + 1): random coordinates, a type, and two padding rows."""
    x = torch.zeros(batch, atoms, 9)
    x[..., :3] = torch.randn(batch, atoms, 3)
    x[:, :real, 4] = 1
    x[:, :real, -1] = 1
    x[:, real:, :3] = 5.0  # padding rows hold arbitrary values that must survive
    return x


def batch_for(modality: str) -> torch.Tensor:
    torch.manual_seed(0)
    if modality == "image":
        return torch.rand(6, 3, 16, 16)
    if modality == "eeg":
        return torch.randn(6, 2, 400)
    return molecules()


def call(op, x, m, **kw):
    return op(x, m, sfreq=SFREQ, **kw)


ALL_OPS = sorted(OPS)


def test_every_op_set_is_complete() -> None:
    assert [o.name for o in ops_for("image")] == [
        "shear_x", "shear_y", "translate_x", "translate_y", "rotate", "auto_contrast", "invert", "equalize",
        "solarize", "posterize", "contrast", "color", "brightness", "sharpness", "cutout", "horizontal_flip",
        "sample_pairing"]
    assert len(ops_for("eeg")) == 10 and len(ops_for("molecule")) == 4
    for op in OPS.values():
        assert op.assumption.startswith(type(op).__name__ + ": ") and "\n" not in op.assumption, op.name
        assert op.kind in ("continuous", "discrete", "on_off")


@pytest.mark.parametrize("name", ALL_OPS)
def test_shape_dtype_device_kept_and_magnitude_zero_is_identity(name: str) -> None:
    op = get_op(name)
    x = batch_for(op.modality)
    out = call(op, x, torch.tensor(0.0))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    # Evaluation mode too (hard gates, no relaxation).
    torch.testing.assert_close(call(op, x, 0.0, training=False), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ALL_OPS)
def test_magnitude_one_changes_the_input(name: str) -> None:
    op = get_op(name)
    x = batch_for(op.modality)
    torch.manual_seed(1)
    out = call(op, x, torch.ones(len(x)))
    assert (out - x).abs().amax() > 1e-2


@pytest.mark.parametrize("name", ALL_OPS)
def test_gradient_reaches_the_magnitude(name: str) -> None:
    op = get_op(name)
    x = batch_for(op.modality)
    weights = torch.randn_like(x)  # a generic loss; sum() is blind to flips and permutations
    m = torch.full((len(x),), 0.6, requires_grad=True)
    torch.manual_seed(2)
    (call(op, x, m) * weights).sum().backward()
    assert m.grad is not None and torch.isfinite(m.grad).all()
    assert m.grad.abs().sum() > 0


@pytest.mark.parametrize("name", [n for n in ALL_OPS if OPS[n].kind == "discrete"])
def test_discrete_ops_use_the_straight_through_estimator(name: str) -> None:
    """d out / d m is 1 for every element of the sample: the gradient is the sum of
    the upstream gradients of that sample."""
    op = get_op(name)
    x = batch_for(op.modality)
    weights = torch.randn_like(x)
    m = torch.full((len(x),), 0.6, requires_grad=True)
    (call(op, x, m) * weights).sum().backward()
    torch.testing.assert_close(m.grad, weights.flatten(1).sum(1))


def test_ranges_are_honoured() -> None:
    x = torch.zeros(1, 1, 41, 41)
    x[..., 20, 30] = 1.0  # a dot 10 px right of the centre
    # Rotation by the full range (30 degrees, either sign) moves the dot by 10 * 2 sin(15 deg) px.
    out = get_op("rotate")(x, 1.0)
    row, col = divmod(out[0, 0].argmax().item(), 41)
    assert math.hypot(row - 20, col - 30) == pytest.approx(2 * 10 * math.sin(math.radians(15)), abs=1.0)
    # Translation by the full range moves a central dot by 0.45 of the width.
    centre = torch.zeros(1, 1, 41, 41)
    centre[..., 20, 20] = 1.0
    out = get_op("translate_x")(centre, 1.0)
    assert abs(out[0, 0, 20].argmax().item() - 20) == pytest.approx(0.45 * 41, abs=1.0)
    # Enhance factors stay in [0.1, 1.9]: brightness of a constant image.
    grey = torch.full((200, 1, 2, 2), 0.5)
    scaled = get_op("brightness")(grey, torch.rand(200)).flatten(1)[:, 0] / 0.5
    assert scaled.min() >= 0.1 - 1e-6 and scaled.max() <= 1.9 + 1e-6 and scaled.max() > 1.5
    # Posterize at the strongest setting keeps 4 bits: at most 16 grey levels.
    assert get_op("posterize")(torch.rand(2, 1, 32, 32), 1.0).unique().numel() <= 16
    # Cutout blanks at most a 0.2-side square.
    assert (get_op("cutout")(torch.ones(8, 1, 40, 40), 1.0) == 0).flatten(1).sum(1).max() <= 8 * 8
    # Gaussian noise std 0.2 at magnitude 1.
    noise = get_op("gaussian_noise")(torch.zeros(4, 2, 5000), 1.0, sfreq=SFREQ)
    assert noise.std().item() == pytest.approx(0.2, rel=0.05)
    # A 10 Hz sine shifted by the full range lands 5 Hz away.
    t = torch.arange(1000) / SFREQ
    sine = torch.sin(2 * math.pi * 10 * t).view(1, 1, -1)
    shifted = get_op("frequency_shift")(sine, 1.0, sfreq=SFREQ)
    peak = torch.fft.rfftfreq(1000, 1 / SFREQ)[torch.fft.rfft(shifted[0, 0]).abs().argmax()]
    assert abs(peak.item() - 10) == pytest.approx(5.0, abs=0.2)
    # Jitter std 0.1 Angstrom.
    mol = molecules(batch=200, atoms=10, real=10)
    moved = get_op("jitter")(mol, 1.0)[..., :3] - mol[..., :3]
    assert moved.std().item() == pytest.approx(0.1, rel=0.1)


def test_on_off_ops_are_hard_at_evaluation_and_relaxed_in_training() -> None:
    x = torch.rand(64, 1, 8, 8)
    p = torch.tensor(0.5, requires_grad=True)
    gates = bernoulli_gate(p, (64,), temperature=0.1, training=False)
    assert set(gates.unique().tolist()) <= {0.0, 1.0}
    soft = bernoulli_gate(p, (64,), temperature=0.1, training=True)
    soft.sum().backward()
    assert p.grad is not None and p.grad.abs() > 0
    flipped = get_op("horizontal_flip")(x, 1.0, training=False)  # flip probability 0.5
    is_flipped = (flipped == x.flip(-1)).flatten(1).all(1)
    is_same = (flipped == x).flatten(1).all(1)
    assert (is_flipped | is_same).all() and 10 < is_flipped.sum() < 54


def test_apply_with_probability() -> None:
    x = torch.rand(256, 3, 8, 8)
    op = get_op("invert")
    zero = apply_with_probability(op, x, 1.0, torch.tensor(0.0), training=False)
    torch.testing.assert_close(zero, x)
    p = torch.tensor(0.3, requires_grad=True)
    out = apply_with_probability(op, x, 1.0, p, training=True)
    (out * torch.randn_like(out)).sum().backward()
    assert p.grad.abs() > 0
    hard = apply_with_probability(op, x, 1.0, torch.tensor(0.3), training=False)
    applied = (hard != x).flatten(1).any(1).float().mean()
    assert 0.15 < applied < 0.45


def test_channel_shuffle_permutes_only_chosen_channels() -> None:
    x = torch.arange(8.0).view(1, 8, 1).expand(32, 8, 5).clone()
    out = get_op("channel_shuffle")(x, 0.5, sfreq=SFREQ)
    # Each sample is a permutation of its channels.
    assert torch.equal(out[..., 0].sort(1).values, x[..., 0])


def test_equalize_matches_pil() -> None:
    from PIL import Image, ImageOps

    torch.manual_seed(0)
    levels = (torch.rand(1, 1, 12, 12) ** 2 * 200).round()  # a skewed histogram
    ours = get_op("equalize").transform(levels / 255, None, training=False)[0, 0] * 255  # kornia's
    pil = ImageOps.equalize(Image.fromarray(levels[0, 0].to(torch.uint8).numpy()))
    assert torch.equal(ours.round().to(torch.uint8), torch.from_numpy(__import__("numpy").array(pil)))


def test_full_rotation_and_its_inverse_return_the_input() -> None:
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    x = torch.exp(-((xx - 0.2) ** 2 + (yy + 0.1) ** 2) / 0.1).expand(4, 1, 64, 64)  # a smooth image
    angles = (torch.rand(4) * 2 - 1) * math.pi
    back = rotate(rotate(x, angles), -angles)
    inner = (yy ** 2 + xx ** 2).sqrt() < 0.8  # away from the corners lost by the first rotation
    assert (back - x)[..., inner].abs().max() < 0.02


def test_so3_samples_are_rotations() -> None:
    r = uniform_rotations(500, torch.zeros(1))
    eye = torch.eye(3).expand(500, 3, 3)
    torch.testing.assert_close(r @ r.transpose(1, 2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(500), atol=1e-5, rtol=0)
    rotated = get_op("so3_rotation")(molecules(), 1.0)
    for family in (SE_3, AFFINE_3D):
        linear = family.matrices(family.sample(torch.ones(family.size), 50))[:, :3, :3]
        if family is SE_3:
            torch.testing.assert_close(torch.linalg.det(linear), torch.ones(50), atol=1e-5, rtol=0)
    assert rotated.shape == molecules().shape


def test_point_ops_keep_distances_and_padding() -> None:
    x = molecules()
    for out in (get_op("so3_rotation")(x, 1.0), get_op("reflection")(x, 1.0, training=False),
                get_op("translation")(x, 1.0), random_rotation_translation(x)):
        assert torch.equal(out[:, 4:], x[:, 4:])  # padding rows untouched
        assert torch.equal(out[..., 3:], x[..., 3:])  # types and mask untouched
        torch.testing.assert_close(torch.cdist(out[:, :4, :3], out[:, :4, :3]),
                                   torch.cdist(x[:, :4, :3], x[:, :4, :3]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=list(FAMILIES))
def test_lie_family_with_zero_widths_is_the_identity_and_widths_get_gradients(family) -> None:
    x = batch_for(family.modality)
    identity = family.apply(x, torch.zeros(family.size))
    torch.testing.assert_close(identity, x, atol=1e-4, rtol=0)
    widths = torch.ones(family.size, requires_grad=True)
    out = family.apply(x, widths)
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(widths.grad).all() and (widths.grad != 0).all()


def test_affine_2d_generators_match_the_official_family() -> None:
    t = torch.zeros(1, 6)
    t[0, 2] = math.pi / 2  # the rotation generator alone: a quarter turn
    m = AFFINE_2D.matrices(t)[0]
    torch.testing.assert_close(m[:2, :2], torch.tensor([[0.0, -1.0], [1.0, 0.0]]), atol=1e-6, rtol=0)
    t = torch.zeros(1, 6)
    t[0, 0] = 1.0  # translation, scaled by 0.1
    torch.testing.assert_close(AFFINE_2D.matrices(t)[0, 0, 2], torch.tensor(0.1))
    shift = torch.zeros(1, 2)
    shift[0, 0] = 0.5
    assert AFFINE_1D.matrices(shift)[0, 0, 1] == pytest.approx(0.5)


def test_reference_transforms_of_the_modalities() -> None:
    x = torch.rand(16, 3, 32, 32)
    out = random_crop_flip(x, pad=4)
    assert out.shape == x.shape
    # Every output is a flip and/or a shift of its input by at most 4 px.
    for i in range(16):
        candidates = [x[i], x[i].flip(-1)]
        found = any(torch.equal(torch.nn.functional.pad(c, (4, 4, 4, 4))[:, 4 + dy:36 + dy, 4 + dx:36 + dx], out[i])
                    for c in candidates for dy in range(-4, 5) for dx in range(-4, 5))
        assert found
    eeg = torch.randn(8, 2, 300)
    shifted = random_sign_flip_time_shift(eeg, SFREQ)
    # Sign flips and circular shifts by whole samples: each channel is a signed rotation of its input.
    for i in range(8):
        assert any(torch.allclose(shifted[i], sign * eeg[i].roll(k, -1), atol=1e-5)
                   for sign in (1, -1) for k in range(-100, 101))


def test_a_task_can_widen_an_op_range() -> None:
    x = torch.zeros(1, 1, 41, 41)
    x[..., 20, 35] = 1.0
    out = get_op("rotate")(x, 1.0, ranges={"rotate": 180.0})  # +-180 degrees: the dot goes to the left
    assert out[0, 0, 20].argmax().item() == pytest.approx(5, abs=1)
