"""AugNet (methods/augnet.py): the layer's convex combination in training and its
one-op sampling at evaluation, gradients to weights and magnitudes, the penalty and
its schedule, C-copy averaging, optimiser groups, layer configurations, and
end-to-end smoke runs."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.augment import Op
from bench.errors import UserError
from bench.registry import load_registry
from bench.training import make_optimizer
from bench.api import RunContext
from tests.helpers import smoke_records_by_task

REGISTRY = load_registry()
AugNetCls = REGISTRY.method("augnet").cls
augnet_module = __import__(AugNetCls.__module__, fromlist=["AugmentationLayer"])
AugmentationLayer = augnet_module.AugmentationLayer
MnistRot = REGISTRY.task("mnist_rot").cls
Qm9 = REGISTRY.task("qm9").cls
MnistUpDown = REGISTRY.task("mnist_updown").cls
Cifar10 = REGISTRY.task("cifar10").cls
Sinusoids = REGISTRY.task("sinusoids").cls
AFFINE = ["translate_x", "translate_y", "rotate", "shear_x", "shear_y"]


class Add(Op):
    """A deterministic test op: x + value (value = high * m)."""

    def __init__(self, name: str, high: float):
        self.name, self.modality, self.low, self.high = name, "test", 0.0, high

    def transform(self, x, value, training, **facts):
        return x + value.view(-1, *([1] * (x.dim() - 1)))


def logits_for(probabilities: list[float]) -> torch.Tensor:
    """Logits whose softmax at the layers' temperature gives ``probabilities``."""
    return torch.tensor(probabilities).log() * augnet_module.WEIGHT_TEMPERATURE


def add_layer(probabilities: list[float], init_magnitude: float = 0.5, random_magnitude: bool = False,
              frozen: tuple[bool, ...] = (False, False)) -> AugmentationLayer:
    layer = AugmentationLayer([Add("add_one", 1.0), Add("add_ten", 10.0)], init_magnitude, {},
                              [random_magnitude] * 2, list(frozen))
    with torch.no_grad():
        layer.logits.copy_(logits_for(probabilities))
    return layer


def make_method(task, params: dict | None = None, model: nn.Module | None = None, profile: str = "smoke"):
    plugin = REGISTRY.method("augnet")
    hparams = {**plugin.defaults_for(profile), **(params or {})}
    model = model if model is not None else task.make_model(profile, 1.0, None)
    ctx = RunContext(None, task, task.profile(profile), None, torch.device("cpu"), lambda: model, None)
    return AugNetCls(ctx, model, hparams)


def molecules(n: int = 6) -> torch.Tensor:
    """A batch in the QM9 input format: xyz, one-hot types, padding mask (5 atoms)."""
    atoms, features = Qm9.input_shape
    x = torch.zeros(n, atoms, features)
    x[:, :5, :3] = torch.randn(n, 5, 3)
    x[:, :5, 3] = 1.0  # every real atom of the first type
    x[:, :5, -1] = 1.0
    return x


def test_training_output_is_the_convex_combination_of_the_ops() -> None:
    layer = add_layer([0.3, 0.7], init_magnitude=0.5).train()
    x = torch.rand(4, 1, 3, 3)
    out = layer(x)
    # 0.3 * (x + 1 * 0.5) + 0.7 * (x + 10 * 0.5)
    torch.testing.assert_close(out, x + 0.3 * 0.5 + 0.7 * 5.0)
    out.sum().backward()
    # d out / d mu_i = omega_i * high_i for every element
    torch.testing.assert_close(layer.raw_magnitudes.grad, torch.tensor([0.3 * 1.0, 0.7 * 10.0]) * x.numel())
    assert layer.logits.grad is not None and layer.logits.grad.abs().sum() > 0


def test_weights_are_a_softmax_at_temperature_001() -> None:
    layer = add_layer([0.5, 0.5])
    with torch.no_grad():
        layer.logits.copy_(torch.tensor([1.0, 1.01]))
    torch.testing.assert_close(layer.weights, torch.tensor([1.0, 1.0 + math.e - 1]) / (1 + math.e), atol=1e-5, rtol=0)
    assert torch.equal(AugmentationLayer([Add("a", 1.0)], 0.5, {}, [False], [False]).logits, torch.ones(1))


def test_random_magnitudes_are_uniform_between_zero_and_mu() -> None:
    layer = AugmentationLayer([Add("add_one", 1.0)], 0.4, {}, [True], [False]).train()
    x = torch.zeros(4000, 1)
    shifts = layer(x).squeeze(1)
    assert shifts.min() >= 0 and shifts.max() <= 0.4 + 1e-6
    assert abs(shifts.mean().item() - 0.2) < 0.01  # U(0, 1) * 0.4
    assert shifts.std() > 0.1


def test_evaluation_applies_one_op_per_forward_drawn_from_the_weights() -> None:
    torch.manual_seed(0)
    layer = add_layer([0.2, 0.8], init_magnitude=1.0).eval()
    x = torch.zeros(5, 2)
    chosen = []
    for _ in range(2000):
        out = layer(x)
        assert torch.all(out == out[0, 0]), "one op for the whole batch"
        assert out[0, 0].item() in (1.0, 10.0), "one op, not a mixture"
        chosen.append(out[0, 0].item() == 10.0)
    frequency = sum(chosen) / len(chosen)
    assert abs(frequency - 0.8) < 0.04  # 4.5 standard deviations


def test_frozen_magnitudes_get_no_gradient_but_still_count_in_the_penalty() -> None:
    layer = add_layer([0.5, 0.5], frozen=(True, False)).train()
    (layer(torch.rand(3, 2)).sum() + (layer.magnitudes * layer.weights).norm()).backward()
    assert layer.raw_magnitudes.grad[0] == 0 and layer.raw_magnitudes.grad[1] != 0


@pytest.mark.parametrize("task_cls, make_x", [(MnistRot, lambda: torch.rand(8, 1, 28, 28)), (Qm9, molecules)])
def test_weights_and_magnitudes_of_every_layer_get_gradients(task_cls, make_x) -> None:
    torch.manual_seed(1)
    method = make_method(task_cls()).train()
    x = make_x()
    y = torch.randint(0, 10, (len(x),)) if task_cls is MnistRot else torch.randn(len(x))
    loss, _ = method.training_loss(x, y)
    loss.backward()
    assert len(method.aug_layers) == (2 if task_cls is MnistRot else 3)
    for layer in method.aug_layers:
        assert torch.isfinite(layer.logits.grad).all() and layer.logits.grad.abs().sum() > 0
        assert torch.isfinite(layer.raw_magnitudes.grad).all() and (layer.raw_magnitudes.grad != 0).all()


def test_penalty_is_the_l2_norm_of_weights_times_clamped_magnitudes_and_is_subtracted() -> None:
    task = MnistRot()
    method = make_method(task, {"penalty": 0.5}).train()
    with torch.no_grad():
        method.aug_layers[0].raw_magnitudes[0] = 1.7  # clamped to 1
    expected = torch.cat([layer.magnitudes * layer.weights for layer in method.aug_layers]).norm()
    assert method.aug_layers[0].magnitudes[0] == 1.0
    torch.testing.assert_close(method.penalty(), expected)
    assert method.penalty().dim() == 0
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    torch.manual_seed(3)
    with_penalty, _ = method.training_loss(x, y)
    method.penalty_weight = 0.0
    torch.manual_seed(3)
    without, _ = method.training_loss(x, y)
    torch.testing.assert_close(with_penalty, without - 0.5 * expected)
    # the penalty alone pushes every (unclamped) magnitude up: its gradient is negative
    method.zero_grad()
    (-0.5 * method.penalty()).backward()
    grads = torch.cat([layer.raw_magnitudes.grad for layer in method.aug_layers])
    assert (grads[1:] < 0).all() and grads[0] == 0  # the clamped one is saturated


def test_penalty_weight_is_divided_by_ten_after_epoch_40_and_zero_removes_it() -> None:
    method = make_method(MnistRot(), {"penalty": 0.5, "penalty_decay_after": 40})
    assert method.penalty_weight == 0.5
    method.end_epoch(39)  # the next epoch, 40, keeps lambda
    assert method.penalty_weight == 0.5
    method.end_epoch(40)  # epochs 41 and later: lambda / 10
    assert method.penalty_weight == pytest.approx(0.05)
    constant = make_method(MnistRot(), {"penalty": 0.8, "penalty_decay_after": None})
    constant.end_epoch(100)
    assert constant.penalty_weight == 0.8
    off = make_method(MnistRot(), {"penalty": 0.0}).train()
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    torch.manual_seed(5)
    loss, _ = off.training_loss(x, y)
    torch.manual_seed(5)
    torch.testing.assert_close(loss, off.task.loss(off.model(off.augment(x)), y))


def optimiser_groups(task, params: dict | None = None, profile: str = "quick") -> tuple[dict, dict, AugNetCls]:
    """The trunk's and the augmentation layers' groups of the harness's optimiser."""
    method = make_method(task, params, profile=profile)
    trunk, aug = make_optimizer(method.param_groups(), method.ctx.profile).param_groups
    return trunk, aug, method


def test_augmentation_layers_have_their_own_lr_and_weight_decay_the_official_ones_per_task() -> None:
    trunk, aug, method = optimiser_groups(MnistRot())
    assert {id(p) for p in trunk["params"]} == {id(p) for p in method.model.parameters()}
    assert {id(p) for p in aug["params"]} == {id(p) for p in method.aug_layers.parameters()}
    # the trunk: the quick profile's (Adam lr 3e-3, weight decay 1e-4); the layers: Mario-Iggy's
    assert (trunk["lr"], trunk["weight_decay"]) == (3e-3, 1e-4)
    assert (aug["lr"], aug["weight_decay"]) == (5e-4, 1.0)
    _, aug, _ = optimiser_groups(MnistUpDown())
    assert (aug["lr"], aug["weight_decay"]) == (5e-4, 1.0)
    # CIFAR-10's official augmentation group (the default), under its SGD profile at lr 0.1
    trunk, aug, _ = optimiser_groups(Cifar10(), {"ncopies": 1}, profile="smoke")
    assert trunk["lr"] == 0.1 and (aug["lr"], aug["weight_decay"]) == (1e-3, 0.0)
    _, aug, _ = optimiser_groups(Sinusoids())  # the sinusoid script: one Adam, lr 0.01, wd 1e-4
    assert (aug["lr"], aug["weight_decay"]) == (1e-2, 1e-4)
    trunk, aug, _ = optimiser_groups(MnistRot(), {"aug_lr": 0.02, "aug_weight_decay": 0})
    assert (aug["lr"], aug["weight_decay"]) == (0.02, 0.0) and trunk["lr"] == 3e-3
    for key, bad in (("aug_lr", 0), ("aug_lr", "fast"), ("aug_weight_decay", -1.0)):
        with pytest.raises(UserError, match=f"augnet.{key} must be auto or a number"):
            make_method(MnistRot(), {key: bad})


def test_a_step_of_the_augmentation_group_moves_logits_at_aug_lr_not_the_profile_lr() -> None:
    """Adam's first step moves each parameter by about its lr: the logits move by
    aug_lr (5e-4 on mnist_rot), not by the profile's 3e-3."""
    torch.manual_seed(0)
    method = make_method(MnistRot(), {"aug_weight_decay": 0}, profile="quick").train()
    optimizer = make_optimizer(method.param_groups(), method.ctx.profile)
    before = [layer.logits.detach().clone() for layer in method.aug_layers]
    loss, _ = method.training_loss(torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,)))
    loss.backward()
    optimizer.step()
    steps = torch.cat([(layer.logits.detach() - b).abs() for layer, b in zip(method.aug_layers, before)])
    assert steps.max() == pytest.approx(5e-4, rel=1e-3)


def test_frozen_magnitudes_do_not_decay_under_weight_decay() -> None:
    layer = add_layer([0.5, 0.5], init_magnitude=0.5, frozen=(True, False)).train()
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1, weight_decay=1.0)
    for _ in range(5):
        optimizer.zero_grad()
        layer(torch.rand(3, 2)).sum().backward()
        optimizer.step()
    assert layer.magnitudes[0] == 0.5 and layer.magnitudes[1] != 0.5


class Linear(nn.Module):
    def __init__(self, outputs: int):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        self.head = nn.Linear(3, outputs)

    def embed(self, x):
        return self.body(x)

    def forward(self, x):
        out = self.head(self.body(x))
        return out.squeeze(-1) if out.shape[-1] == 1 else out


def shift_each_copy(x: torch.Tensor, batch: int) -> torch.Tensor:
    """A stand-in for the layers: copy c of the super-batch is shifted by c."""
    return x + torch.arange(len(x)).div(batch, rounding_mode="floor").view(-1, 1, 1, 1).float()


def test_copies_at_evaluation_average_log_softmax_and_training_uses_one_copy() -> None:
    model = Linear(10)
    method = make_method(MnistRot(), {"ncopies": 3}, model=model)
    x = torch.rand(5, 1, 2, 2)
    method.augment = lambda z: shift_each_copy(z, len(x))
    method.eval()
    expected = torch.stack([torch.log_softmax(model(x + c), -1) for c in range(3)]).mean(0)
    torch.testing.assert_close(method.predict(x), expected)
    method.train()
    torch.testing.assert_close(method.predict(x), model(x))  # one copy, raw outputs


def test_regression_averages_outputs_and_embed_averages_embeddings() -> None:
    model = Linear(1)
    method = make_method(Qm9(), {"ncopies": 4}, model=model)
    x = torch.rand(5, 1, 2, 2)
    method.augment = lambda z: shift_each_copy(z, len(x))
    method.eval()
    torch.testing.assert_close(method.predict(x), torch.stack([model(x + c) for c in range(4)]).mean(0))
    torch.testing.assert_close(method.embed(x), torch.stack([model.embed(x + c) for c in range(4)]).mean(0))


def test_layer_spec_parameter_and_defaults_restricted_to_the_augmentation_space() -> None:
    method = make_method(MnistRot(), {"layers": "rotate, translate_x|horizontal_flip", "init_magnitude": 0.05})
    assert [layer.op_names for layer in method.aug_layers] == [["rotate", "translate_x"], ["horizontal_flip"]]
    assert torch.allclose(method.aug_layers[0].raw_magnitudes, torch.full((2,), 0.05))
    learned = method.learned_augmentation()["layers"]
    assert learned[0]["rotate"]["max_value"] == pytest.approx(0.05 * 180)  # the task's rotate range
    assert learned[1]["horizontal_flip"]["weight"] == 1.0
    with pytest.raises(UserError, match="outside the augmentation space of mnist_rot: jitter"):
        make_method(MnistRot(), {"layers": "rotate|jitter"})
    with pytest.raises(UserError, match="empty layer"):
        make_method(MnistRot(), {"layers": "rotate||shear_x"})

    class RotationOnly(MnistRot):
        augmentation_space = ("rotate", "contrast")
        augnet_defaults = {}

    method = make_method(RotationOnly())
    assert [layer.op_names for layer in method.aug_layers] == [["contrast"], ["rotate"], ["rotate"]]

    class NoSpace(MnistRot):
        augmentation_space = ("invert",)
        augnet_defaults = {}

    assert "no default layers" in AugNetCls.supports(NoSpace())
    assert AugNetCls.supports(MnistRot()) is None


def test_layers_default_to_the_set_the_task_declares() -> None:
    assert [layer.op_names for layer in make_method(MnistRot()).aug_layers] == [AFFINE, AFFINE]
    assert [layer.op_names for layer in make_method(MnistUpDown()).aug_layers] == [AFFINE]
    assert [layer.op_names for layer in make_method(Sinusoids()).aug_layers] == [["frequency_shift"]]
    cifar = make_method(Cifar10(), {"ncopies": 1})  # no declaration: the modality's (CIFAR-10 model)
    assert [layer.op_names for layer in cifar.aug_layers] == [list(n) for n in augnet_module.DEFAULT_LAYERS["image"]]

    class Declares(MnistRot):
        augnet_defaults = {"layers": "rotate|shear_x,contrast"}

    assert [layer.op_names for layer in make_method(Declares()).aug_layers] == [["rotate"], ["shear_x", "contrast"]]
    assert [layer.op_names for layer in make_method(Declares(), {"layers": "invert"}).aug_layers] == [["invert"]]

    class DeclaresOutside(MnistRot):
        augnet_defaults = {"layers": "rotate|jitter"}

    with pytest.raises(UserError, match="outside the augmentation space"):
        make_method(DeclaresOutside())


def test_smoke_runs_on_mnist_rot_and_qm9_record_learned_parameters(tmp_path: Path) -> None:
    records = smoke_records_by_task("augnet", "mnist_rot,qm9", tmp_path)
    assert set(records) == {"mnist_rot", "qm9"}
    expected_ops = {"mnist_rot": {"rotate", "translate_x", "shear_y"}, "qm9": {"so3_rotation", "reflection"}}
    for task, record in records.items():
        assert record["status"] == "ok", record.get("error")
        assert record["n_params_method"] > 0
        for learned in (record["learned_augmentation"], record["history"][-1]["augmentation"]):
            layers = learned["layers"]
            assert len(layers) == (2 if task == "mnist_rot" else 3)
            assert expected_ops[task] <= {op for layer in layers for op in layer}
            for layer in layers:
                assert sum(v["weight"] for v in layer.values()) == pytest.approx(1.0, abs=1e-5)
                assert all(0 <= v["magnitude"] <= 1 for v in layer.values())
        # the learning diagnostic sees every layer's weights and magnitudes
        n_layers = len(record["learned_augmentation"]["layers"])
        assert set(record["learning"]["groups"]) == {f"layer{i}_{g}" for i in range(n_layers)
                                                     for g in ("weights", "magnitudes")}
        # trained: the magnitudes moved away from their initial 0.5
        mags = [v["magnitude"] for layer in record["learned_augmentation"]["layers"] for v in layer.values()]
        assert any(abs(m - 0.5) > 1e-4 for m in mags)
