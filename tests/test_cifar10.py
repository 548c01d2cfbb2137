"""The cifar10 task: the real batch reader on tiny pickle files in the CIFAR format,
splits, errors, model families, and an end-to-end smoke run through the CLI."""
from __future__ import annotations

import inspect
import json
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import store
from bench.errors import DataUnavailable, UserError
from bench.registry import load_registry
from tests.helpers import run_cli

Cifar10 = load_registry().task("cifar10").cls
cifar10 = inspect.getmodule(Cifar10)  # the plugin module (loaded by path under a private name)
N_PER_TRAIN_BATCH, N_TEST = 30, 64  # 150 training images: the smoke profile needs 96 + 32


def write_batch(path: Path, images: np.ndarray, labels: list[int]) -> None:
    """A batch as in ``cifar-10-batches-py`` (pickle protocol 2, bytes keys, uint8 rows
    of 3072 values: the red plane, then green, then blue)."""
    batch = {b"batch_label": b"tiny batch", b"labels": labels, b"data": images.reshape(len(images), -1),
             b"filenames": [f"img_{i}.png".encode() for i in range(len(images))]}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def write_tiny_cifar(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        images = rng.integers(0, 256, (N_PER_TRAIN_BATCH, 3, 32, 32), dtype=np.uint8)
        write_batch(folder / f"data_batch_{i}", images, [int(v) for v in rng.integers(0, 10, N_PER_TRAIN_BATCH)])
    test_images = rng.integers(0, 256, (N_TEST, 3, 32, 32), dtype=np.uint8)
    write_batch(folder / "test_batch", test_images, [i % 10 for i in range(N_TEST)])
    meta = {b"label_names": [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                     "horse", "ship", "truck")],
            b"num_cases_per_batch": N_PER_TRAIN_BATCH, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


@pytest.fixture
def tiny_cifar(tmp_path: Path) -> Path:
    return write_tiny_cifar(tmp_path / "data")


def test_batches_are_parsed_into_images_in_the_unit_range(tiny_cifar: Path) -> None:
    task = Cifar10()
    task.prepare("smoke", tiny_cifar)  # present: reads and checks every file, no download
    data = task.load("smoke", tiny_cifar, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (96, 32, 64)
    assert data.train.x.shape == (96, 3, 32, 32) and data.train.x.dtype == torch.float32
    assert data.train.y.dtype == torch.int64
    x = data.test.x
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.99  # scaled by 255, not clipped
    # Channel-major rows: pixel (c, i, j) of image k is value c*1024 + i*32 + j of its row.
    batch = pickle.loads((tiny_cifar / "cifar-10-batches-py" / "test_batch").read_bytes(), encoding="bytes")
    raw = torch.from_numpy(batch[b"data"]).float().div(255).view(-1, 3, 32, 32)
    matches = [(raw == img).flatten(1).all(1).nonzero().flatten().tolist() for img in x]
    assert all(len(m) == 1 for m in matches)  # every test image is one of the file's, exactly
    assert torch.equal(data.test.y, torch.tensor([batch[b"labels"][m[0]] for m in matches]))


def test_splits_are_deterministic_disjoint_and_independent_of_the_run_seed(tiny_cifar: Path) -> None:
    task = Cifar10()
    a, b = task.load("smoke", tiny_cifar, seed=0), task.load("smoke", tiny_cifar, seed=7)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.x, b.val.x) and torch.equal(a.test.y, b.test.y)

    def keys(x: torch.Tensor) -> set[bytes]:
        return {img.numpy().tobytes() for img in x}

    train, val = keys(a.train.x), keys(a.val.x)
    assert len(train) == 96 and len(val) == 32 and not train & val  # random images: distinct


def test_too_few_images_for_a_profile_is_a_clear_error(tiny_cifar: Path) -> None:
    with pytest.raises(UserError, match="the quick profile needs 4000 \\+ 1000"):
        Cifar10().load("quick", tiny_cifar, seed=0)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape", "foreign_object"])
def test_corrupt_batch_gives_a_clear_error(tiny_cifar: Path, damage: str) -> None:
    path = tiny_cifar / "cifar-10-batches-py" / "data_batch_3"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:5000])
    elif damage == "garbage":
        path.write_bytes(b"this is not a pickle" * 10)
    elif damage == "wrong_shape":
        write_batch(path, np.zeros((4, 3, 16, 16), np.uint8), [0, 1, 2, 3])
    else:  # a pickle that would run code when loaded with pickle.load
        path.write_bytes(pickle.dumps({b"data": Path("/etc/passwd"), b"labels": []}, protocol=2))
    with pytest.raises(UserError, match="data_batch_3 is corrupt or truncated"):
        Cifar10().prepare("smoke", tiny_cifar)


def test_corrupt_batch_through_the_cli_is_one_line_and_exit_2(tiny_cifar: Path, tmp_path: Path) -> None:
    path = tiny_cifar / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:-100])
    result = run_cli("run", "--tasks", "cifar10", "--methods", "erm", "--profile", "smoke", "--seeds", "0",
                     "--data-root", str(tiny_cifar), "--results-dir", str(tmp_path / "r"), "--no-progress")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "test_batch is corrupt or truncated" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_offline_names_data_root_and_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailable, match="--data-root DIR with .*cifar-10-batches-py.*data_batch_1"):
        Cifar10().prepare("smoke", tmp_path)


def test_missing_data_is_skipped_in_a_suite_and_an_error_when_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    suite = tmp_path / "cifar.yaml"
    suite.write_text("description: test\nprofile: smoke\ntasks: [cifar10]\nmethods: [erm]\nseeds: [0]\n")
    result = run_cli("run", "--suite", str(suite), "--data-root", str(empty), "--results-dir", str(tmp_path / "r"),
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    [record] = store.load_records(tmp_path / "r")
    assert record["status"] == "skipped" and "cifar-10-batches-py" in record["error"]

    named = run_cli("run", "--tasks", "cifar10", "--methods", "erm", "--profile", "smoke", "--data-root", str(empty),
                    "--results-dir", str(tmp_path / "r2"), "--no-progress")
    assert named.returncode == 2
    assert len(named.stderr.strip().splitlines()) == 1 and "--data-root" in named.stderr


@pytest.mark.parametrize("profile, depth", [("smoke", None), ("smoke", 16), ("quick", None)])
def test_wide_resnet_shapes_and_width_scaling(profile: str, depth: int | None) -> None:
    task = Cifar10()
    x = torch.rand(2, 3, 32, 32)
    counts = []
    for width in (1.0, 2.0):
        model = task.make_model(profile, width, depth)
        assert model(x).shape == (2, 10)
        assert model.embed(x).shape == (2, model.fc.in_features)
        counts.append(sum(p.numel() for p in model.parameters()))
    assert model.fc.in_features == round(64 * task.profile(profile).options["widen"] * 2.0)
    assert counts[1] > 2.5 * counts[0]  # conv parameters grow with width squared


@pytest.mark.parametrize("depth, widen, millions", [(40, 2, 2.2), (28, 10, 36.5)])
def test_wrn_40_2_and_28_10_have_their_published_sizes(depth: int, widen: int, millions: float) -> None:
    model = cifar10.WideResNet(depth, widen)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, rel=0.03)


def test_preact_resnet18_shapes_and_width_scaling() -> None:
    task = Cifar10()
    smoke = Cifar10.profiles["smoke"]
    options = {**smoke.options, "arch": "preact_resnet", "depth": 18, "base_channels": 8}
    task.profiles = {**Cifar10.profiles, "smoke": replace(smoke, options=options)}
    x = torch.rand(2, 3, 32, 32)
    small, large = task.make_model("smoke", 1.0, None), task.make_model("smoke", 2.0, None)
    assert small(x).shape == (2, 10) and large(x).shape == (2, 10)
    assert small.linear.in_features == 64 and large.linear.in_features == 128
    blocks = [m for m in small.modules() if isinstance(m, cifar10.PreActBlock)]
    assert len(blocks) == 8  # ResNet-18: 4 stages of 2 basic blocks
    assert sum(p.numel() for p in cifar10.PreActResNet(18, 64).parameters()) / 1e6 == pytest.approx(11.2, rel=0.03)
    assert sum(p.numel() for p in large.parameters()) > 3.5 * sum(p.numel() for p in small.parameters())


def test_bad_depths_are_user_errors() -> None:
    with pytest.raises(UserError, match="6n \\+ 4"):
        Cifar10().make_model("smoke", 1.0, 12)
    with pytest.raises(UserError, match="8n \\+ 2"):
        cifar10.PreActResNet(20, 8)


def test_normalisation_is_the_first_layer() -> None:
    model = Cifar10().make_model("smoke", 1.0, None)
    first = model.features[0]
    grey = torch.full((1, 3, 2, 2), 0.5)
    assert torch.allclose(first(grey)[0, :, 0, 0], (0.5 - torch.tensor(cifar10.MEAN)) / torch.tensor(cifar10.STD))


def test_reference_and_fixed_augmentation_translate_and_flip() -> None:
    task = Cifar10()
    torch.manual_seed(0)
    x = torch.rand(64, 3, 32, 32)
    for transform in (task.reference_transform, task.fixed_augment):
        out = transform(x)
        assert out.shape == x.shape
        changed = (out - x).abs().flatten(1).amax(1) > 0
        assert changed.float().mean() > 0.8  # 1/162 of the draws are the identity
        # Zero padding: a shift leaves a border of zeros, never values outside [0, 1].
        assert out.min() >= 0 and out.max() <= 1


def test_smoke_run_of_erm_and_fixed_through_the_cli(tiny_cifar: Path, tmp_path: Path) -> None:
    result = run_cli("run", "--tasks", "cifar10", "--methods", "erm,fixed", "--profile", "smoke", "--seeds", "0",
                     "--data-root", str(tiny_cifar), "--results-dir", str(tmp_path / "r"), "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    records = store.load_records(tmp_path / "r")
    assert sorted(r["method"] for r in records) == ["erm", "fixed"]
    for record in records:
        assert record["status"] == "ok", record["error"]
        assert 0.0 <= record["test_metric"] <= 1.0 and record["invariance"]["n"] == 64
        assert record["n_params"] == sum(p.numel() for p in Cifar10().make_model("smoke", 1.0, None).parameters())
        json.dumps(record)


def crop_flip_variants(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Every output of the standard crop + flip of each image: (2 * 81, B, C, H, W)."""
    h, w = x.shape[-2:]
    variants = []
    for image in (x, x.flip(-1)):
        padded = torch.nn.functional.pad(image, (pad, pad, pad, pad))
        variants += [padded[..., dy:dy + h, dx:dx + w] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    return torch.stack(variants)


IDENTITY_VARIANT = 4 * 9 + 4  # no flip, no shift


def blanked_squares(seen: torch.Tensor, x: torch.Tensor) -> tuple[list[tuple[int, int]], list[int]]:
    """Per image: the bounding box (height, width) of the pixels a Cutout blanked,
    after checking that the image is one crop + flip of ``x`` everywhere else; and
    which crop + flip it is."""
    variants = crop_flip_variants(x)
    boxes, which = [], []
    for b in range(len(x)):
        agrees = ((variants[:, b] == seen[b]) | (seen[b] == 0)).flatten(1).all(1)
        assert agrees.any(), f"image {b} is no crop + flip of its input"
        which.append(int(agrees.nonzero()[0]))
        variant = variants[which[-1], b]
        blanked = ((seen[b] == 0) & (variant != 0)).any(0).nonzero()
        boxes.append((0, 0) if len(blanked) == 0 else
                     tuple(int(v) for v in blanked.max(0).values - blanked.min(0).values + 1))
    return boxes, which


def cifar_method(name: str, root: Path):
    from bench.api import RunContext
    from bench.config import RunConfig
    from bench.progress import Progress

    registry = load_registry()
    task = Cifar10()
    data = task.load("smoke", root, seed=0)
    data.train.x.clamp_(min=1 / 255)  # no zero pixel in the data: zeros come from padding or Cutout only

    def make_model() -> torch.nn.Module:
        return task.make_model("smoke", 1.0, None)

    ctx = RunContext(RunConfig("cifar10", "smoke", name), task, task.profile("smoke"), data, torch.device("cpu"),
                     make_model, Progress(enabled=False))
    torch.manual_seed(0)
    plugin = registry.method(name)
    return plugin.cls(ctx, make_model(), plugin.defaults_for("smoke"))


def model_inputs(method, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    seen = []
    hook = method.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        method.training_loss(x, y)
    finally:
        hook.remove()
    return seen[0]


def test_dada_retrains_with_crop_flip_around_the_policy_then_cutout_16(tiny_cifar: Path) -> None:
    method = cifar_method("dada", tiny_cifar)
    never = {"ops": [{"op": "invert", "probability": 0.0, "magnitude": 0.5},
                     {"op": "rotate", "probability": 0.0, "magnitude": 0.5}], "weight": 1.0}
    method.policy = {"sub_policies": [never]}  # the policy itself leaves images as they are
    x, y = method.ctx.data.train.x[:32], method.ctx.data.train.y[:32]
    torch.manual_seed(1)
    boxes, which = blanked_squares(model_inputs(method, x, y), x)
    assert all(0 < h <= 16 and 0 < w <= 16 for h, w in boxes)
    assert sum(v != IDENTITY_VARIANT for v in which) > 0.8 * len(x)  # cropped / flipped first
    assert sum(box == (16, 16) for box in boxes) >= 4  # whole squares where the centre is inside


def test_faster_aa_retrains_with_crop_flip_around_the_policy(tiny_cifar: Path) -> None:
    method = cifar_method("faster_aa", tiny_cifar)
    with torch.no_grad():
        method.policy.probabilities.zero_()  # the policy itself leaves images as they are
    x, y = method.ctx.data.train.x[:32], method.ctx.data.train.y[:32]
    torch.manual_seed(1)
    seen = model_inputs(method, x, y)
    boxes, which = blanked_squares(seen, x)
    assert boxes == [(0, 0)] * len(x)  # crop + flip only, no Cutout
    assert sum(v != IDENTITY_VARIANT for v in which) > 0.8 * len(x)


def test_the_searches_see_the_policy_base_on_cifar_and_not_on_digits(tiny_cifar: Path, monkeypatch) -> None:
    from bench.augment.image import random_crop_flip

    calls = []

    def spy(self, x):
        calls.append(len(x))
        return random_crop_flip(x)

    monkeypatch.setattr(Cifar10, "policy_base_augment", spy)
    method = cifar_method("faster_aa", tiny_cifar)
    method.search()
    assert calls and all(n == method.hparams["search_batch_size"] for n in calls)  # whole batches, real half too
    calls.clear()
    method = cifar_method("dada", tiny_cifar)
    dada = inspect.getmodule(type(method))
    cutouts = []
    real_cutout = dada.cutout
    monkeypatch.setattr(dada, "cutout", lambda x, length: cutouts.append(length) or real_cutout(x, length))
    policy = method.search()
    steps = policy["search"]["steps"]
    assert len(calls) == steps and cutouts == [16] * steps  # search-train batches; search-val gets neither
    mnist = load_registry().task("mnist_rot").cls()
    x = torch.rand(4, 1, 28, 28)
    assert mnist.policy_base_augment(x) is x and not mnist.policy_base_augmentation
