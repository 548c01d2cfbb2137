"""The mnist_rot task: real loading code on tiny IDX files, determinism, model shapes."""
from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.errors import UserError
from bench.registry import load_registry
from tests.helpers import run_cli

MnistRot = load_registry().task("mnist_rot").cls


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX file as distributed by LeCun et al. (big-endian header, ubyte data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (30, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(30) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (12, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(12) % 10)
    return tmp_path


class TinyPaperMnist(MnistRot):
    """The paper profile with a validation split that fits the tiny files."""
    profiles = {**MnistRot.profiles,
                "paper": replace(MnistRot.profiles["paper"], options={**MnistRot.profiles["paper"].options, "n_val": 6})}


def test_full_mnist_idx_files_are_read_by_the_real_loader(tiny_mnist: Path) -> None:
    task = TinyPaperMnist()
    task.prepare("paper", tiny_mnist)  # present: no download attempted
    data = task.load("paper", tiny_mnist, seed=3)
    assert (len(data.train), len(data.val), len(data.test)) == (24, 6, 12)
    assert data.train.x.shape == (24, 1, 28, 28) and data.train.x.dtype == torch.float32
    assert 0.0 <= data.train.x.min() and data.train.x.max() <= 1.0
    assert torch.equal(data.test.y, torch.arange(12) % 10)


def test_truncated_idx_file_gives_a_clear_error(tiny_mnist: Path) -> None:
    images = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:500])
    with pytest.raises(UserError, match="corrupt or truncated"):
        TinyPaperMnist().load("paper", tiny_mnist, seed=0)


def test_full_mnist_through_the_cli_with_data_root(tiny_mnist: Path, tmp_path: Path) -> None:
    """--data-root reaches the loader (the real paper profile needs 10k validation images)."""
    result = run_cli("run", "--tasks", "mnist_rot", "--methods", "erm", "--profile", "paper", "--seeds", "0",
                     "--data-root", str(tiny_mnist), "--results-dir", str(tmp_path / "r"), "--no-progress")
    assert result.returncode == 1  # a failed run, with a clear reason
    assert "has only 30 training images" in result.stdout


def test_offline_digits_split_is_deterministic_and_rotations_follow_the_seed() -> None:
    task = MnistRot()
    a, b, c = task.load("smoke", None, seed=1), task.load("smoke", None, seed=1), task.load("smoke", None, seed=2)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert torch.equal(a.train.y, c.train.y)  # same digits for every seed ...
    assert not torch.equal(a.train.x, c.train.x)  # ... rotated by other angles
    n = (len(a.train), len(a.val), len(a.test))
    assert n == (256, 128, 256)
    quick = task.load("quick", None, seed=0)
    assert (len(quick.train), len(quick.val), len(quick.test)) == (3000, 1000, 1000)


def test_every_digit_is_rotated_and_the_mass_is_kept() -> None:
    task = MnistRot()
    digits = task.digits("smoke", None)[0].x.float().div(255)
    rotated = task.load("smoke", None, seed=0).train.x.squeeze(1)
    changed = (rotated - digits).abs().flatten(1).sum(1) > 1.0
    assert changed.float().mean() > 0.95
    # A rotation keeps the ink inside the frame, up to interpolation at the corners.
    ratio = rotated.flatten(1).sum(1) / digits.flatten(1).sum(1)
    assert ratio.median() == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("width, k", [(0.5, 6), (1.0, 12), (2.0, 24)])
def test_model_width_multiplier(width: float, k: int) -> None:
    model = MnistRot().make_model("quick", width, None)
    assert model.head.in_features == 2 * k
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert model.embed(torch.rand(3, 1, 28, 28)).shape == (3, 2 * k)


def test_depth_is_rejected_for_smallnet() -> None:
    with pytest.raises(UserError, match="fixed depth"):
        MnistRot().make_model("quick", 1.0, 3)
