"""CIFAR-10 with the model families of the AutoAugment line (Wide-ResNets) and of
AugNet (the CIFAR pre-activation ResNet-18).

Data: the python version of CIFAR-10 (``cifar-10-batches-py``: ``data_batch_1`` ...
``data_batch_5``, ``test_batch``), downloaded through torchvision's ``CIFAR10`` into
``~/.cache/invbench`` or read from ``--data-root DIR`` holding
``DIR/cifar-10-batches-py``. The pickle batches are read by our own restricted
unpickler (only the numpy types the files need), so a corrupt or truncated file is
one clear error and a tampered one cannot run code. Inputs are float tensors in
[0, 1], (N, 3, 32, 32); the per-channel normalisation of the Faster AutoAugment /
DADA code (mean 0.4914, 0.4822, 0.4465; std 0.2023, 0.1994, 0.2010) is the first
layer of every model, so augmentations act on [0, 1] pixels as the augmentation
library assumes.

Splits: 5,000 of the 50,000 training images are held out for validation (as in the
Faster AutoAugment code, ``val_size: 5_000``), drawn once with a fixed seed; the
10,000 test images are the test split. ``smoke`` / ``quick`` take subsets of these
(the first examples of the same fixed permutations).

Models (``Profile.options["arch"]``):
- ``wrn``: Wide-ResNet WRN-d-k as in the Faster AA / DADA / Fast AA code (pre-activation
  basic blocks, convolutions with bias, BN momentum 0.1 in PyTorch's convention, no
  dropout); stage widths 16k, 32k, 64k with ``k = widen * width``; depth ``6n + 4``.
- ``preact_resnet``: the CIFAR PreAct ResNet of the AugNet code (``make_resnet18k``,
  3x3 stem, no max-pool), base channels ``round(64 * width)``; depth ``8n + 2`` (18:
  two blocks per stage).

Policy base (``policy_base_augment``): the bilevel methods wrap their learned policy in
the standard crop + flip, as their official CIFAR pipelines do (DADA adds its Cutout
16 after the policy; see methods/dada.py and methods/faster_aa.py).

Deviations: ``quick`` is a CPU budget (a WRN-10-1 on 4,000 / 1,000 / 2,000 images,
10 epochs); ``paper`` follows Faster AA / DADA's WRN-40-2 protocol (200 epochs, batch
128, SGD nesterov lr 0.1, weight decay 5e-4, cosine) without the learning-rate warm-up
of some Fast AA configurations. The Faster AA / DADA WRN sets BN momentum 0.9 in
PyTorch's convention (a likely port of TF's 0.9); we keep PyTorch's default 0.1.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.api import Profile, Split, Task, TaskData
from bench.augment.image import random_crop_flip
from bench.data import bounded_download, downloads_allowed, split_indices
from bench.errors import DataUnavailable, UserError

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
DEFAULT_ROOT = Path.home() / ".cache" / "invbench"
SPLIT_SEED = 20190501  # fixed: the splits never depend on the run seed
MEAN = (0.4914, 0.4822, 0.4465)  # the Normalize constants of the Faster AA and DADA code
STD = (0.2023, 0.1994, 0.2010)
IMAGE_VALUES = 3 * 32 * 32

# What a CIFAR pickle batch may reference: numpy arrays (numpy 1 and 2 module names;
# _frombuffer for protocol 5) and _codecs.encode (bytes in protocol-2 pickles).
ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the file")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One CIFAR python batch as uint8 images (N, 3, 32, 32) and int64 labels."""
    try:
        with open(path, "rb") as f:
            batch = BatchUnpickler(f, encoding="bytes").load()
        if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
            raise ValueError("not a dict with b'data' and b'labels'")
        data, labels = batch[b"data"], np.asarray(batch[b"labels"])
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_VALUES:
            raise ValueError(f"b'data' is not a uint8 array with {IMAGE_VALUES} values per image")
        if labels.shape != (len(data),) or labels.dtype.kind not in "iu" or len(data) == 0:
            raise ValueError(f"{labels.size} labels for {len(data)} images")
        if labels.min() < 0 or labels.max() > 9:
            raise ValueError("labels outside 0..9")
    except Exception as exc:  # noqa: BLE001 - pickle raises many types for broken files
        raise UserError(f"CIFAR-10 file {path} is corrupt or truncated ({type(exc).__name__}: {exc}); "
                        "delete the folder to download it again, or point --data-root at a good copy") from None
    return torch.from_numpy(data.reshape(-1, 3, 32, 32)), torch.from_numpy(labels.astype(np.int64))


def cifar_root(data_root: Path | None) -> Path:
    return Path(data_root) if data_root is not None else DEFAULT_ROOT


def cifar_folder(data_root: Path | None) -> Path:
    return cifar_root(data_root) / FOLDER


def read_cifar(folder: Path) -> tuple[Split, Split]:
    """All 50,000 training and 10,000 test images (uint8) of a ``cifar-10-batches-py`` folder."""
    train = [read_batch(folder / name) for name in TRAIN_FILES]
    test_x, test_y = read_batch(folder / TEST_FILE)
    return Split(torch.cat([x for x, _ in train]), torch.cat([y for _, y in train])), Split(test_x, test_y)


class Normalize(nn.Module):
    """Per-channel standardisation as the model's first layer (inputs stay in [0, 1])."""

    def __init__(self, mean: tuple[float, ...] = MEAN, std: tuple[float, ...] = STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class WideBasic(nn.Module):
    """BN-ReLU-conv3x3 twice (stride on the second conv, as in the Faster AA / DADA
    code), with a 1x1 convolution on the shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, stride=stride, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        return self.conv2(F.relu(self.bn2(out))) + self.shortcut(x)


class WideResNet(nn.Module):
    """WRN-depth-widen (Zagoruyko & Komodakis, 2016) as in the Faster AA / DADA code."""

    def __init__(self, depth: int, widen: float, num_classes: int = 10):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise UserError(f"a Wide-ResNet has depth 6n + 4 (10, 16, 22, 28, 40 ...), not {depth}")
        n = (depth - 4) // 6
        widths = [max(1, round(c * widen)) for c in (16, 32, 64)]
        layers: list[nn.Module] = [Normalize(), nn.Conv2d(3, 16, 3, padding=1)]
        c_in = 16
        for stage, c_out in enumerate(widths):
            for block in range(n):
                layers.append(WideBasic(c_in, c_out, stride=2 if stage > 0 and block == 0 else 1))
                c_in = c_out
        layers += [nn.BatchNorm2d(c_in), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


class PreActBlock(nn.Module):
    """Pre-activation basic block of the AugNet code: the projection shortcut (if any)
    reads the pre-activated input."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut


class PreActResNet(nn.Module):
    """The CIFAR PreAct ResNet of the AugNet code (``make_resnet18k``): 3x3 stem,
    four stages of widths c, 2c, 4c, 8c, global average pooling (no final BN-ReLU,
    as there)."""

    def __init__(self, depth: int, base_channels: int, num_classes: int = 10):
        super().__init__()
        if depth < 10 or (depth - 2) % 8:
            raise UserError(f"a CIFAR PreAct ResNet has depth 8n + 2 (10, 18, 26 ...), not {depth}")
        n = (depth - 2) // 8
        c = max(1, base_channels)
        layers: list[nn.Module] = [Normalize(), nn.Conv2d(3, c, 3, padding=1, bias=False)]
        c_in = c
        for stage in range(4):
            c_out = c * 2 ** stage
            for block in range(n):
                layers.append(PreActBlock(c_in, c_out, stride=2 if stage > 0 and block == 0 else 1))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear(c_in, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.embed(x))


class Cifar10(Task):
    name = "cifar10"
    description = "CIFAR-10 (45k/5k/10k), Wide-ResNet or PreAct ResNet-18, standard crop + flip as fixed augmentation."
    modality = "image"
    metric = "accuracy"
    num_classes = 10
    input_shape = (3, 32, 32)
    augmentation_space = ("shear_x", "shear_y", "translate_x", "translate_y", "rotate", "auto_contrast", "invert",
                          "equalize", "solarize", "posterize", "contrast", "color", "brightness", "sharpness",
                          "cutout", "horizontal_flip", "sample_pairing")
    reference_symmetry = "translations by up to 4 pixels (zero padding) and horizontal flips"
    fixed_augmentation = "random crop of the 4-pixel zero-padded image and horizontal flip (p = 1/2)"
    # The official Faster AA (homura's CIFAR-10 loader) and DADA (search and retrain
    # loaders) apply it to every training image before their policy.
    policy_base_augmentation = "random crop of the 4-pixel zero-padded image and horizontal flip (p = 1/2)"
    profiles = {
        "smoke": Profile(epochs=1, batch_size=32, optimizer="sgd", lr=0.1, weight_decay=5e-4, nesterov=True,
                         eval_batch_size=256,
                         options={"n_train": 96, "n_val": 32, "n_test": 64, "arch": "wrn", "depth": 10, "widen": 0.25}),
        "quick": Profile(epochs=10, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4, nesterov=True,
                         schedule="cosine",
                         options={"n_train": 4000, "n_val": 1000, "n_test": 2000, "arch": "wrn", "depth": 10,
                                  "widen": 1.0}),
        "paper": Profile(epochs=200, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4, nesterov=True,
                         schedule="cosine",
                         options={"n_train": 45000, "n_val": 5000, "n_test": 10000, "arch": "wrn", "depth": 40,
                                  "widen": 2.0}),
    }

    def prepare(self, profile: str, data_root: Path | None) -> None:
        """Download if needed and allowed; then read every file once, so a corrupt
        one is reported before any run starts."""
        folder = cifar_folder(data_root)
        layout = f"{folder}/ with {', '.join(TRAIN_FILES)}, {TEST_FILE} (the python version of CIFAR-10)"
        if not all((folder / name).is_file() for name in (*TRAIN_FILES, TEST_FILE)):
            if not downloads_allowed():
                raise DataUnavailable(f"CIFAR-10 is not on disk and downloads are off; pass --data-root DIR with {layout}")
            from torchvision.datasets import CIFAR10

            try:
                with bounded_download():
                    CIFAR10(str(cifar_root(data_root)), train=True, download=True)
            except Exception as exc:  # noqa: BLE001 - any network failure means "unavailable here"
                raise DataUnavailable(f"CIFAR-10 could not be downloaded ({type(exc).__name__}); "
                                      f"pass --data-root DIR with {layout}") from None
        read_cifar(folder)

    def load(self, profile: str, data_root: Path | None, seed: int) -> TaskData:
        opts = self.profile(profile).options
        folder = cifar_folder(data_root)
        train, test = read_cifar(folder)
        n_val, n_train, n_test = opts["n_val"], opts["n_train"], opts["n_test"]
        if len(train) < n_val + n_train or len(test) < n_test:
            raise UserError(f"CIFAR-10 under {folder} has {len(train)} training and {len(test)} test images; "
                            f"the {profile} profile needs {n_train} + {n_val} and {n_test}")
        val_idx, train_idx = split_indices(len(train), (n_val, n_train), SPLIT_SEED)
        (test_idx,) = split_indices(len(test), (n_test,), SPLIT_SEED)
        # Converted to floats after subsetting: the full set as floats is 0.7 GB.
        return TaskData(*(Split(split.x[idx].float().div_(255), split.y[idx])
                          for split, idx in ((train, train_idx), (train, val_idx), (test, test_idx))))

    def make_model(self, profile: str, width: float, depth: int | None) -> nn.Module:
        opts = self.profile(profile).options
        depth = depth if depth is not None else opts["depth"]
        if opts["arch"] == "wrn":
            return WideResNet(depth, opts["widen"] * width)
        if opts["arch"] == "preact_resnet":
            return PreActResNet(depth, round(opts.get("base_channels", 64) * width))
        raise UserError(f"unknown cifar10 model family {opts['arch']!r}; use wrn or preact_resnet")

    def reference_transform(self, x: torch.Tensor) -> torch.Tensor:
        return random_crop_flip(x)

    def fixed_augment(self, x: torch.Tensor) -> torch.Tensor:
        return random_crop_flip(x)

    def policy_base_augment(self, x: torch.Tensor) -> torch.Tensor:
        return random_crop_flip(x)
