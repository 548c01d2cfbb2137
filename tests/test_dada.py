"""DADA: the exact hypergradient (against finite differences), gradients to every
policy parameter, the search protocol (fresh validation batches, untouched retrain
model), top-k extraction, the found policy's reproducibility, and end-to-end runs."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.api import RunContext
from bench.augment import get_op, ops_for
from bench.config import RunConfig
from bench.progress import Progress
from bench.registry import load_registry
from tests.helpers import smoke_records_by_task

REGISTRY = load_registry()
Dada = REGISTRY.method("dada").cls
dada = sys.modules[Dada.__module__]


def make_method(task_name: str, **overrides) -> tuple:
    task = REGISTRY.task(task_name).cls()
    data = task.load("smoke", None, seed=0)
    config = RunConfig(task_name, "smoke", "dada")
    hparams = {**REGISTRY.method("dada").defaults_for("smoke"), **overrides}

    def make_model() -> nn.Module:
        return task.make_model("smoke", 1.0, None)

    torch.manual_seed(0)
    model = make_model()
    ctx = RunContext(config, task, task.profile("smoke"), data, torch.device("cpu"), make_model,
                     Progress(enabled=False))
    return Dada(ctx, model, hparams), task


class SoftplusNet(nn.Module):
    """A small smooth network (no ReLU, no BatchNorm): second derivatives exist."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.head = nn.Linear(3 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.softplus(self.conv(x)).flatten(1))


def one_step_then_val_loss(model: nn.Module, optimizer: torch.optim.Optimizer, train_loss, val_loss) -> float:
    """Finite-difference reference: a real optimiser step on copies, then the val loss."""
    model, optimizer_state = copy.deepcopy(model), copy.deepcopy(optimizer.state_dict())
    opt = torch.optim.SGD(model.parameters(), **{k: optimizer.defaults[k] for k in ("lr", "momentum", "weight_decay")})
    opt.load_state_dict(optimizer_state)
    opt.zero_grad()
    train_loss(model).backward()
    opt.step()
    with torch.no_grad():
        return float(val_loss(model))


def toy_problem() -> tuple:
    torch.manual_seed(0)
    model = SoftplusNet().double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    x, y = torch.rand(8, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (8,))
    x_val, y_val = torch.rand(8, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (8,))
    F.cross_entropy(model(x_val), y_val).backward()  # one earlier step: momentum buffers exist
    optimizer.step()
    optimizer.zero_grad()
    return model, optimizer, x, y, x_val, y_val


def test_hypergradient_from_higher_matches_finite_differences() -> None:
    model, optimizer, x, y, x_val, y_val = toy_problem()
    alpha = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)

    def train_loss_at(a: torch.Tensor):
        return lambda m: F.cross_entropy(m(x * (1 + a[0]) + a[1] * x ** 2), y)

    def val_loss(m: nn.Module) -> torch.Tensor:
        return F.cross_entropy(m(x_val), y_val)

    before = copy.deepcopy(model.state_dict())
    (grad,), _, _ = dada.unrolled_hypergradient(model, optimizer, train_loss_at(alpha), val_loss, [alpha])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # model left as it was

    h = 1e-5
    numeric = []
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = h
        plus = one_step_then_val_loss(model, optimizer, train_loss_at(alpha.detach() + e), val_loss)
        minus = one_step_then_val_loss(model, optimizer, train_loss_at(alpha.detach() - e), val_loss)
        numeric.append((plus - minus) / (2 * h))
    numeric = torch.tensor(numeric, dtype=torch.float64)
    assert numeric.abs().min() > 1e-4  # a non-trivial gradient
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-9)


def test_policy_magnitude_hypergradient_matches_finite_differences() -> None:
    """Through the real policy and library ops (contrast then brightness, both gates
    forced open), with every random draw replayed by reseeding."""
    model, optimizer, x, y, x_val, y_val = toy_problem()
    policy = dada.DadaPolicy([("contrast", "brightness")], {}, temperature=0.5).double()
    with torch.no_grad():
        policy.probabilities.fill_(1.0)  # the gates' forward value is then always 1
    one_hot = torch.ones(1, dtype=torch.float64)

    def train_loss(m: nn.Module) -> torch.Tensor:
        torch.manual_seed(7)
        return F.cross_entropy(m(policy(x, one_hot)), y)

    def val_loss(m: nn.Module) -> torch.Tensor:
        return F.cross_entropy(m(x_val), y_val)

    grads, _, _ = dada.unrolled_hypergradient(model, optimizer, train_loss, val_loss, [policy.magnitudes])
    h, numeric = 1e-5, torch.zeros(2, dtype=torch.float64)
    for s in range(2):
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                policy.magnitudes[0, s] += sign * h
            values.append(one_step_then_val_loss(model, optimizer, train_loss, val_loss))
            with torch.no_grad():
                policy.magnitudes[0, s] -= sign * h
        numeric[s] = (values[0] - values[1]) / (2 * h)
    assert numeric.abs().min() > 1e-5
    torch.testing.assert_close(grads[0][0], numeric, rtol=1e-4, atol=1e-9)


CROSS_ENTROPY = SimpleNamespace(loss=F.cross_entropy)  # the one Task method the estimator calls
# Three deterministic ops (no random mirror) at levels away from their identity.
DETERMINISTIC_OPS = ("contrast", "brightness", "sharpness")


def deterministic_policy(probability: float) -> "dada.DadaPolicy":
    policy = dada.DadaPolicy(dada.enumerate_sub_policies(DETERMINISTIC_OPS), {}, temperature=0.5).double()
    with torch.no_grad():
        policy.weights.copy_(torch.tensor([0.3, -0.4, 0.1]))
        policy.probabilities.fill_(probability)
        policy.magnitudes.copy_(torch.tensor([[0.9, 0.2], [0.8, 0.1], [0.15, 0.95]]))
    return policy


def test_directional_derivatives_match_autograd_and_restore_the_model() -> None:
    model, _, x, y, _, _ = toy_problem()
    direction = [torch.randn_like(p) for p in model.parameters()]
    before = copy.deepcopy(model.state_dict())
    d = dada.directional_derivatives(model, direction, lambda m: dada.per_example_losses(CROSS_ENTROPY, m(x), y))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    exact = []
    for i in range(len(y)):
        grads = torch.autograd.grad(F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), list(model.parameters()))
        exact.append(sum((g * v).sum() for g, v in zip(grads, direction)))
    torch.testing.assert_close(d, torch.stack(exact).detach(), rtol=1e-4, atol=1e-8)

    bn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(72, 3)).double().train()
    buffers = copy.deepcopy(bn.state_dict())
    dada.directional_derivatives(bn, [torch.ones_like(p) for p in bn.parameters()],
                                 lambda m: dada.per_example_losses(CROSS_ENTROPY, m(x), y))
    assert all(torch.equal(v, bn.state_dict()[k]) for k, v in buffers.items())  # running statistics too


def expected_unrolled_val_loss(model, optimizer, policy, x, y, x_val, y_val, gate_patterns) -> float:
    """E over sub-policies (softmax of the weights) and gate patterns of the val loss
    after one real optimiser step on the augmented batch, by enumeration."""
    share = torch.softmax(policy.weights, -1).detach()
    total = 0.0
    for k in range(len(policy.sub_policies)):
        for gates in gate_patterns:
            p = policy.probabilities[k].detach()
            chance = float((gates * p + (1 - gates) * (1 - p)).prod())
            with torch.no_grad():
                augmented = policy.apply_sub_policy(x, k, lambda stage: gates[:, stage])
            loss = one_step_then_val_loss(model, optimizer, lambda m: F.cross_entropy(m(augmented), y),
                                          lambda m: F.cross_entropy(m(x_val), y_val))
            total += float(share[k]) * chance * loss
    return total


def gate_patterns(n: int) -> list[torch.Tensor]:
    """Every (n, 2) 0/1 gate pattern."""
    return [torch.tensor([(bits >> j) & 1 for j in range(2 * n)], dtype=torch.float64).view(n, 2)
            for bits in range(4 ** n)]


def test_score_function_estimator_averages_to_the_hypergradient_of_weights_and_probabilities(monkeypatch) -> None:
    """The expectation of ``estimator: relax``'s gradients (its own function, with
    every sub-policy and gate pattern forced in turn and weighted by its chance: no
    sampling noise) equals the finite-difference derivative of the expected one-step
    unrolled val loss, to first order in the step (small lr). Fails on a wrong sign,
    a missing lr or 1/B factor, a wrong score, or costs paired with the wrong
    examples or sub-policy."""
    model, optimizer, x, y, x_val, y_val = toy_problem()
    x, y = x[:2], y[:2]  # 2 examples: 4^2 gate patterns per sub-policy
    for group in optimizer.param_groups:
        group["lr"] = 1e-4
    policy = deterministic_policy(0.6)
    patterns = gate_patterns(len(x))
    share = torch.softmax(policy.weights, -1).detach()
    weight_grad = torch.zeros(3, dtype=torch.float64)
    probability_grad = torch.zeros(3, 2, dtype=torch.float64)
    for k in range(3):
        p = policy.probabilities[k].detach()
        for gates in patterns:
            chance = float(share[k]) * float((gates * p + (1 - gates) * (1 - p)).prod())
            monkeypatch.setattr(dada, "sample_sub_policy", lambda *_, k=k, gates=gates: (k, gates))
            grads, *_ = dada.score_function_hypergradient(model, optimizer, policy, CROSS_ENTROPY, x, y, x_val,
                                                          y_val, lambda t: t)
            assert (grads[1][torch.arange(3) != k] == 0).all()  # only the sampled sub-policy's probabilities
            weight_grad += chance * grads[0]
            probability_grad += chance * grads[1]

    h = 1e-4
    numeric_w, numeric_p = torch.zeros(3, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64)
    for index, numeric, parameter in [(i, numeric_w, policy.weights) for i in range(3)] + \
            [((k, s), numeric_p, policy.probabilities) for k in range(3) for s in range(2)]:
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                parameter[index] += sign * h
            values.append(expected_unrolled_val_loss(model, optimizer, policy, x, y, x_val, y_val, patterns))
            with torch.no_grad():
                parameter[index] -= sign * h
        numeric[index] = (values[0] - values[1]) / (2 * h)
    assert numeric_w.abs().min() > 1e-8 and numeric_p.abs().min() > 1e-9  # of the order of lr x gradients
    # weights: expectation over k of a share-weighted score; probabilities: exact expectation over gates
    # (the estimator is first order in lr: at lr 1e-3 the weights differ by 8 %)
    torch.testing.assert_close(weight_grad, numeric_w, rtol=2e-2, atol=0.01 * float(numeric_w.abs().max()))
    torch.testing.assert_close(probability_grad, numeric_p, rtol=2e-2, atol=0.01 * float(numeric_p.abs().max()))


@pytest.mark.parametrize("estimator, says", [("relax", "score function (relax)"), ("gumbel", "straight-through Gumbel")])
def test_each_estimator_searches_moves_the_policy_and_says_which_it_is(estimator: str, says: str) -> None:
    method, _ = make_method("mnist_rot", search_size=48, search_batch_size=8, estimator=estimator)
    start = method.augmentation_state()
    policy = method.search()
    end = method.augmentation_state()
    assert policy["estimator"] == says and policy["search"]["steps"] == 3
    assert not torch.equal(start["weights"], end["weights"])
    changed_rows = (start["probabilities"] != end["probabilities"]).any(1).sum()
    assert 1 <= changed_rows <= 3  # only the sampled sub-policies' probabilities learn


def test_gradients_reach_weights_probabilities_and_magnitudes() -> None:
    method, task = make_method("mnist_rot")
    sub_policies = dada.enumerate_sub_policies(task.augmentation_space)
    assert len(sub_policies) == len(task.augmentation_space) * (len(task.augmentation_space) - 1) // 2
    policy = dada.DadaPolicy(sub_policies, task.augmentation_kwargs, temperature=0.5)
    k = sub_policies.index(("rotate", "contrast"))
    with torch.no_grad():
        policy.weights[k] = 20.0  # the Gumbel sample picks this sub-policy
    torch.manual_seed(0)
    model = task.make_model("smoke", 1.0, None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = method.ctx.data.train.x[:8], method.ctx.data.train.y[:8]
    x_val, y_val = method.ctx.data.train.x[8:16], method.ctx.data.train.y[8:16]
    grads, _, _ = dada.unrolled_hypergradient(
        model, optimizer, lambda m: task.loss(m(policy(x)), y), lambda m: task.loss(m(x_val), y_val),
        [policy.weights, policy.probabilities, policy.magnitudes])
    weights, probabilities, magnitudes = grads
    assert torch.isfinite(weights).all() and (weights != 0).sum() >= len(sub_policies) - 1
    assert (probabilities[k] != 0).all() and (magnitudes[k] != 0).all()
    others = torch.arange(len(sub_policies)) != k
    assert (probabilities[others] == 0).all() and (magnitudes[others] == 0).all()  # only the sampled one


def test_search_changes_the_policy_uses_fresh_validation_batches_and_leaves_the_model(monkeypatch) -> None:
    seen = []
    real_stream = dada.validation_stream

    def spy(split, batch_size, generator):
        for batch in real_stream(split, batch_size, generator):
            seen.append(batch[0].clone())
            yield batch

    monkeypatch.setattr(dada, "validation_stream", spy)
    method, task = make_method("mnist_rot", search_size=48, search_batch_size=8)
    before = copy.deepcopy(method.model.state_dict())
    policy = method.search()
    assert all(torch.equal(v, method.model.state_dict()[k]) for k, v in before.items())

    steps = policy["search"]["steps"]
    assert steps == 3 and len(seen) == steps
    assert all(not torch.equal(seen[i], seen[i + 1]) for i in range(steps - 1))
    chosen = policy["sub_policies"]
    assert len(chosen) == 25 and policy["n_candidates"] == 120
    values = [o[key] for sp in chosen for o in sp["ops"] for key in ("probability", "magnitude")]
    assert any(abs(v - 0.5) > 1e-4 for v in values)  # the search moved them from their init
    assert len({sp["weight"] for sp in chosen}) > 1
    assert all(0 <= v <= 1 for v in values)
    assert method.learned_augmentation()["sub_policies"] == chosen

    # The policy reloaded from a record reproduces the augmentation for a fixed seed.
    reloaded = json.loads(json.dumps({"policy": policy}))["policy"]["sub_policies"]
    x = method.ctx.data.train.x[:64]
    torch.manual_seed(3)
    a = dada.apply_found_policy(x, chosen, task.augmentation_kwargs)
    torch.manual_seed(3)
    b = dada.apply_found_policy(x, reloaded, task.augmentation_kwargs)
    torch.manual_seed(4)
    c = dada.apply_found_policy(x, reloaded, task.augmentation_kwargs)
    assert torch.equal(a, b)
    assert not torch.equal(a, x) and not torch.equal(a, c)

    again, _ = make_method("mnist_rot", search_size=48, search_batch_size=8)
    assert again.search() == policy  # seeded: the same search gives the same policy


def test_top_k_orders_by_weight_and_stops_at_the_number_of_sub_policies() -> None:
    sub_policies = dada.enumerate_sub_policies(["so3_rotation", "translation", "jitter", "reflection"])
    assert len(sub_policies) == 6 and ("so3_rotation", "translation") in sub_policies
    policy = dada.DadaPolicy(sub_policies, {}, temperature=0.5)
    with torch.no_grad():
        policy.weights.copy_(torch.tensor([0.1, 2.0, -1.0, 0.5, 3.0, 0.0]))
        policy.probabilities[4] = torch.tensor([1.5, 0.2])  # read clamped to [0, 1]
    top = policy.top_k(3)
    assert [sp["index"] for sp in top] == [4, 1, 3]
    assert [o["op"] for o in top[0]["ops"]] == list(sub_policies[4])
    assert [o["probability"] for o in top[0]["ops"]] == pytest.approx([1.0, 0.2])
    share = torch.softmax(policy.weights.detach(), -1)
    assert [sp["weight"] for sp in top] == pytest.approx(share[[4, 1, 3]].tolist())
    assert len(policy.top_k(25)) == 6


def test_found_policy_applies_ops_with_their_probabilities() -> None:
    x = torch.rand(64, 1, 8, 8)
    always_invert = [{"ops": [{"op": "invert", "probability": 1.0, "magnitude": 1.0},
                              {"op": "rotate", "probability": 0.0, "magnitude": 1.0}], "weight": 1.0}]
    assert torch.equal(dada.apply_found_policy(x, always_invert, {}), 1 - x)
    never = [{"ops": [{"op": "invert", "probability": 0.0, "magnitude": 1.0},
                      {"op": "cutout", "probability": 0.0, "magnitude": 1.0}], "weight": 1.0}]
    assert torch.equal(dada.apply_found_policy(x, never, {}), x)
    half = [{"ops": [{"op": "invert", "probability": 0.5, "magnitude": 1.0},
                     {"op": "cutout", "probability": 0.0, "magnitude": 1.0}], "weight": 1.0}]
    torch.manual_seed(0)
    inverted = (dada.apply_found_policy(x, half, {}) == 1 - x).flatten(1).all(1).float().mean()
    assert 0.3 < inverted < 0.7


def test_eeg_ops_run_through_the_search_policy_and_the_found_policy() -> None:
    """No EEG task yet: the library's EEG ops on a synthetic (B, C, T) batch."""
    facts = {"sfreq": 100.0}
    sub_policies = dada.enumerate_sub_policies([op.name for op in ops_for("eeg")])
    policy = dada.DadaPolicy(sub_policies, facts, temperature=0.5)
    torch.manual_seed(0)
    x, readout = torch.randn(8, 2, 300), torch.randn(8, 2, 300)  # a loss no op leaves unchanged
    for k in range(len(sub_policies)):
        one_hot = F.one_hot(torch.tensor(k), len(sub_policies)).float()
        out = policy(x, one_hot)
        assert out.shape == x.shape and torch.isfinite(out).all()
        (out * readout).sum().backward()
    # (a gradient is zero only where the op left the whole batch unchanged, e.g.
    # channel_shuffle drawing identity permutations of the two channels)
    assert (policy.probabilities.grad != 0).float().mean() > 0.9
    has_level = policy.has_level
    assert (policy.magnitudes.grad[has_level] != 0).float().mean() > 0.9
    assert (policy.magnitudes.grad[~has_level] == 0).all()  # on/off ops (time_reverse, sign_flip): no level
    found = dada.apply_found_policy(x, policy.top_k(25), facts)
    assert found.shape == x.shape and torch.isfinite(found).all() and not torch.equal(found, x)


def test_supports_needs_two_known_ops() -> None:
    task_cls = REGISTRY.task("qm9").cls
    assert Dada.supports(task_cls()) is None
    one = type("OneOp", (task_cls,), {"augmentation_space": ("jitter",)})
    assert "at least 2" in Dada.supports(one())
    unknown = type("Unknown", (task_cls,), {"augmentation_space": ("jitter", "teleport")})
    assert "teleport" in Dada.supports(unknown())


def test_end_to_end_smoke_runs_store_the_policy(tmp_path: Path) -> None:
    records = smoke_records_by_task("dada", "mnist_rot,qm9", tmp_path)
    assert sorted(records) == ["mnist_rot", "qm9"]
    for r in records.values():
        assert r["status"] == "ok" and r["search_s"] > 0 and r["train_s"] > 0
        chosen = r["policy"]["sub_policies"]
        assert len(chosen) == (25 if r["task"] == "mnist_rot" else 6)
        assert {"op", "probability", "magnitude"} <= set(chosen[0]["ops"][0])
        assert set(r["learning"]["groups"]) == {"weights", "probabilities", "magnitudes"}
        assert r["learning"]["phases"]["train"] == {"weights": 0, "probabilities": 0, "magnitudes": 0}  # frozen
        assert r["search_history"][0]["step"] == 0 and r["search_history"][-1]["step"] == r["policy"]["search"]["steps"]


def contrast_reference(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ImageEnhance.Contrast on single-channel images: blend with the mean grey."""
    mean = x.mean(dim=(-3, -2, -1), keepdim=True)
    return (mean + factor * (x - mean)).clamp(0, 1)


@pytest.mark.parametrize("level, factor", [(0.0, 0.1), (0.5, 1.0), (1.0, 1.9)])
def test_level_of_a_factor_op_is_the_official_signed_range_without_mirror(level: float, factor: float) -> None:
    """Contrast: level * 1.8 + 0.1, the same factor for every sample (no random sign)."""
    torch.manual_seed(0)
    x = torch.rand(32, 1, 8, 8)
    out = dada.apply_at_level(get_op("contrast"), x, torch.tensor(level), True, 0.5, {})
    torch.testing.assert_close(out, contrast_reference(x, factor), atol=1e-6, rtol=0)
    assert dada.official_value("contrast", level) == pytest.approx(factor - 1)  # the library's unit: factor - 1


def shear_x_at(x: torch.Tensor, sign: float) -> torch.Tensor:
    return get_op("shear_x")(x, 1.0, sign=torch.full((len(x),), sign))


@pytest.mark.parametrize("level", [0.0, 1.0])
def test_level_of_a_mirrored_op_reaches_both_ends_of_its_signed_range(level: float) -> None:
    """ShearX at level 0 or 1: shear 0.3 in magnitude, the sign mirrored at random
    (operation.py's random_mirror) -- each sample is one of the two shears, both occur."""
    torch.manual_seed(0)
    x = torch.rand(64, 1, 12, 12)
    out = dada.apply_at_level(get_op("shear_x"), x, torch.tensor(level), True, 0.5, {})
    plus, minus = shear_x_at(x, 1.0), shear_x_at(x, -1.0)
    is_plus = (out - plus).flatten(1).abs().amax(1) < 1e-6
    is_minus = (out - minus).flatten(1).abs().amax(1) < 1e-6
    assert (is_plus | is_minus).all() and is_plus.any() and is_minus.any()
    assert dada.official_value("shear_x", level) == pytest.approx(0.6 * level - 0.3)


def test_level_one_half_is_the_identity_of_signed_ops_and_still_has_a_gradient() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 1, 12, 12)
    readout = torch.randn_like(x)
    for name in ("shear_x", "rotate", "contrast", "brightness", "sharpness"):
        level = torch.tensor(0.5, requires_grad=True)
        out = dada.apply_at_level(get_op(name), x, level, True, 0.5, {"ranges": {"rotate": 180.0}})
        torch.testing.assert_close(out, x, atol=1e-5, rtol=0, msg=name)
        (out * readout).sum().backward()
        assert level.grad is not None and level.grad.abs() > 0, name  # abs() would have a zero derivative here


def test_task_range_override_sets_the_signed_range() -> None:
    """mnist_rot's rotate override 180: level 0.75 rotates by 90 degrees, either way."""
    torch.manual_seed(0)
    x = torch.rand(64, 1, 12, 12)
    out = dada.apply_at_level(get_op("rotate"), x, torch.tensor(0.75), True, 0.5, {"ranges": {"rotate": 180.0}})
    quarter_turns = [torch.rot90(x, k, dims=(-2, -1)) for k in (1, -1)]
    matches = torch.stack([(out - q).flatten(1).abs().amax(1) < 1e-4 for q in quarter_turns])
    assert matches.any(0).all() and matches.all(1).logical_not().all() and matches.any(1).all()
    assert dada.official_value("rotate", 0.0, top=180.0) == -180.0


def test_reversed_and_one_sided_ranges_follow_the_official_direction() -> None:
    x = torch.rand(8, 1, 8, 8)
    for name in ("solarize", "posterize"):  # official: level 1 is the identity
        torch.testing.assert_close(dada.apply_at_level(get_op(name), x, 1.0, True, 0.5, {}), x, msg=name)
        assert not torch.allclose(dada.apply_at_level(get_op(name), x, 0.0, True, 0.5, {}), x), name
    assert dada.official_value("solarize", 0.0) == 0
    assert dada.official_value("solarize", 1.0) == pytest.approx(256 / 255)
    assert dada.official_value("posterize", 0.0) == 4 and dada.official_value("posterize", 1.0) == 8
    assert dada.official_value("cutout", 0.0) == 0 and dada.official_value("cutout", 1.0) == pytest.approx(0.2)
    assert dada.official_value("invert", 0.3) is None


def test_on_off_ops_fire_with_the_probability_alone_whatever_their_level() -> None:
    """Official: an on/off op fires with p (its level is unused); not p * level."""
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    both = [{"ops": [{"op": "invert", "probability": 1.0, "magnitude": 0.0},
                     {"op": "horizontal_flip", "probability": 1.0, "magnitude": 0.0}], "weight": 1.0}]
    assert torch.equal(dada.apply_found_policy(x, both, {}), (1 - x).flip(-1))
    policy = dada.DadaPolicy([("invert", "horizontal_flip")], {}, temperature=0.5)
    with torch.no_grad():
        policy.probabilities.fill_(1.0)
        policy.magnitudes.fill_(0.0)
    torch.testing.assert_close(policy(x, torch.ones(1)), (1 - x).flip(-1))
    half = [{"ops": [{"op": "invert", "probability": 0.5, "magnitude": 0.0},
                     {"op": "cutout", "probability": 0.0, "magnitude": 1.0}], "weight": 1.0}]
    inverted = (dada.apply_found_policy(x, half, {}) == 1 - x).flatten(1).all(1).float().mean()
    assert 0.3 < inverted < 0.7


def test_the_start_policy_is_the_identity_for_signed_ops() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 1, 12, 12)
    policy = dada.DadaPolicy([("rotate", "contrast")], {"ranges": {"rotate": 180.0}}, temperature=0.5)
    with torch.no_grad():
        policy.probabilities.fill_(1.0)  # both ops fire, at the initial level 0.5
    torch.testing.assert_close(policy(x, torch.ones(1)), x, atol=1e-5, rtol=0)


def test_augmentation_state_and_search_history() -> None:
    method, task = make_method("mnist_rot", search_size=48, search_batch_size=8)
    start = method.augmentation_state()
    n = len(dada.enumerate_sub_policies(task.augmentation_space))
    assert start["weights"].shape == (n,) and float(start["weights"].sum()) == pytest.approx(1.0)
    assert start["probabilities"].shape == (n, 2) and (start["probabilities"] == 0.5).all()
    on_off = sum(get_op(o).kind == "on_off" for sp in method.search_policy.sub_policies for o in sp)
    assert start["magnitudes"].shape == (2 * n - on_off,) and (start["magnitudes"] == 0.5).all()
    policy = method.search()
    history = method.search_history
    assert history[0]["step"] == 0 and history[-1]["step"] == policy["search"]["steps"] == 3
    assert history[-1]["state"]["probabilities"]["max_abs_change"] > 0
    assert sum(history[-1]["op_weights"].values()) == pytest.approx(1.0, abs=1e-4)
    end = method.augmentation_state()
    assert not torch.equal(end["probabilities"], start["probabilities"])
