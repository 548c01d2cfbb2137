"""Faster AutoAugment: the policy (mixtures, chunks, hard sampling), the WGAN-GP
critic's gradient penalty, the search (gradients reach the policy, the retrain model
is untouched, the policy reloads) and end-to-end smoke runs."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.api import RunContext, Task
from bench.augment import Op, get_op, ops_for
from bench.config import RunConfig
from bench.progress import Progress
from bench.registry import load_registry
from bench.runner import load_task_data
from tests.helpers import smoke_records_by_task

REGISTRY = load_registry()
PLUGIN = REGISTRY.method("faster_aa")
faster_aa = inspect.getmodule(PLUGIN.cls)
Policy, Critic, gradient_penalty = faster_aa.Policy, faster_aa.Critic, faster_aa.gradient_penalty


class AddValue(Op):
    """A toy op (not registered): x + value, value = magnitude * high."""

    name, modality, low, high = "add_value", "image", 0.0, 1.0

    def transform(self, x, value, training, **facts):
        return x + value.view(-1, *([1] * (x.dim() - 1)))


def build_method(task_name: str, **overrides) -> PLUGIN.cls:
    """The method as the runner builds it, on the task's smoke data."""
    task = REGISTRY.task(task_name).cls()
    config = RunConfig(task_name, "smoke", "faster_aa")
    data = load_task_data(REGISTRY, config, None)

    def make_model() -> nn.Module:
        return task.make_model("smoke", 1.0, None)

    ctx = RunContext(config, task, task.profile("smoke"), data, torch.device("cpu"), make_model,
                     Progress(enabled=False))
    torch.manual_seed(0)
    return PLUGIN.cls(ctx, make_model(), {**PLUGIN.defaults_for("smoke"), **overrides})


def test_gradients_reach_weights_probabilities_and_magnitudes_through_the_critic() -> None:
    method = build_method("mnist_rot", num_sub_policies=1)
    x, y = method.ctx.data.train.x[:8], method.ctx.data.train.y[:8]
    critic = method.make_critic(x)
    critic.requires_grad_(False)
    policy = method.policy
    with torch.no_grad():
        policy.logits.zero_()  # equal weights: at the random init, softmax(w / 0.05) can be ~1e-9 for an op
        policy.magnitudes.fill_(0.8)  # strong enough that no op is the identity (e.g. solarize above 1)
        policy.probabilities.fill_(0.5)
    method.policy_loss(critic, x, y).backward()
    on_off = torch.tensor(policy.on_off).expand_as(policy.magnitudes[0])
    assert (policy.logits.grad != 0).all()
    assert (policy.probabilities.grad != 0).all()
    assert (policy.magnitudes.grad[0][~on_off] != 0).all()  # every op with a strength, discrete ones by the STE
    assert (policy.magnitudes.grad[0][on_off] == 0).all()  # on/off ops have only a probability
    assert all(p.grad is None for p in critic.parameters())  # the critic is frozen in the policy step


def test_critic_loss_trains_the_critic_not_the_policy() -> None:
    method = build_method("mnist_rot")
    x, y = method.ctx.data.train.x[:16], method.ctx.data.train.y[:16]
    critic = method.make_critic(x)
    method.critic_loss(critic, x[:8], x[8:], y[8:]).backward()
    assert method.policy.logits.grad is None
    assert all(p.grad is not None for p in critic.critic_head.parameters())
    assert critic.task_head is critic.body.head  # the task model's own head classifies


def test_gradient_penalty_matches_finite_differences() -> None:
    torch.manual_seed(0)
    real, fake = torch.randn(3, 2, 3, 3, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    weight = torch.randn(4, 18, dtype=torch.float64)

    def critic(v: torch.Tensor) -> torch.Tensor:  # smooth, one score per sample
        return torch.tanh(v.flatten(1) @ weight.T).sum(1)

    alpha = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake, alpha)
    point = alpha.view(-1, 1, 1, 1) * real + (1 - alpha.view(-1, 1, 1, 1)) * fake
    eps, numeric = 1e-6, torch.zeros_like(point)
    for i in range(point[0].numel()):
        step = torch.zeros(point[0].numel(), dtype=torch.float64)
        step[i] = eps
        step = step.view_as(point[0])
        numeric.view(3, -1)[:, i] = (critic(point + step) - critic(point - step)) / (2 * eps)
    expected = (numeric.flatten(1).norm(dim=1) - 1).pow(2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-6)
    per_channel = (numeric.norm(dim=1) - 1).pow(2).mean()  # the official code's norm over dim 1
    assert abs(per_channel.item() - gp.item()) > 1e-2
    linear = torch.randn(18, dtype=torch.float64)  # a linear critic: the gradient is its weight
    gp_linear = gradient_penalty(lambda v: v.flatten(1) @ linear, real, fake, alpha)
    assert gp_linear.item() == pytest.approx((linear.norm().item() - 1) ** 2)


def test_gradient_penalty_reaches_the_critic_through_attention() -> None:
    """QM9's transformer: the penalty's double backward runs (fused attention has none)."""
    method = build_method("qm9")
    x = method.ctx.data.train.x[:8]
    critic = method.make_critic(x)
    gp = gradient_penalty(lambda v: critic(v)[1], x[:4], x[4:], torch.rand(4))
    gp.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in critic.body.encoder.parameters())


def offsets_per_chunk(out: torch.Tensor, n_chunks: int) -> list[torch.Tensor]:
    return [chunk.flatten(1)[:, 0] for chunk in out.chunk(n_chunks)]


@pytest.mark.parametrize("hard", [True, False])
def test_each_chunk_goes_through_one_sub_policy(hard: bool) -> None:
    torch.manual_seed(0)
    policy = Policy([AddValue()], num_sub_policies=4, num_stages=1)
    with torch.no_grad():
        policy.probabilities.fill_(1.0)
        policy.magnitudes.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]).view(4, 1, 1))
    seen = set()
    for _ in range(5):
        out = policy(torch.zeros(16, 1, 2, 2), hard=hard, num_chunks=4)
        for offsets in offsets_per_chunk(out, 4):
            assert torch.allclose(offsets, offsets[0].expand_as(offsets), atol=1e-4)  # one sub-policy per chunk
            seen.add(round(offsets[0].item(), 3))
    assert seen == {0.1, 0.2, 0.3, 0.4}  # drawn uniformly: every sub-policy appears


def test_evaluation_sampling_is_hard_and_training_is_a_mixture() -> None:
    torch.manual_seed(0)
    policy = Policy([AddValue(), AddValue()], num_sub_policies=1, num_stages=2)
    with torch.no_grad():
        policy.logits.zero_()  # both ops equally likely
        policy.probabilities.fill_(0.5)
        policy.magnitudes.copy_(torch.tensor([0.25, 0.5]).expand(1, 2, 2))
    x = torch.zeros(64, 1, 1, 1)
    allowed = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    hard = torch.cat([policy(x, hard=True, num_chunks=1).flatten() for _ in range(20)])
    distance = (hard.unsqueeze(1) - allowed).abs().min(1).values
    assert distance.max() < 1e-6  # each stage: one op, applied or not
    assert {0.0, 0.25, 0.5}.issubset({round(v, 2) for v in hard.tolist()})  # both ops and the gate's 0 occur
    soft = policy(x, hard=False, num_chunks=1).flatten()
    assert (soft.unsqueeze(1) - allowed).abs().min(1).values.max() > 1e-3  # relaxed: weighted mixtures


def test_search_leaves_the_retrain_model_untouched_and_learns_the_policy() -> None:
    method = build_method("mnist_rot")
    model_before = {k: v.clone() for k, v in method.model.state_dict().items()}
    policy_before = {k: v.clone() for k, v in method.policy.state_dict().items()}
    summary = method.search()
    for key, value in method.model.state_dict().items():
        assert torch.equal(value, model_before[key]), key
    for key, value in method.policy.state_dict().items():
        assert not torch.equal(value, policy_before[key]), key  # gradients reached every kind of parameter
    assert not any(p.requires_grad for p in method.policy.parameters())  # frozen for the retrain
    assert summary["ops"] == list(method.task.augmentation_space)
    assert len(summary["sub_policies"]) == 10 and len(summary["sub_policies"][0]) == 2
    assert sum(summary["sub_policies"][0][0]["weights"]) == pytest.approx(1.0)
    assert len(summary["top"]) == 10 and summary["top"][0][0]["op"] in summary["ops"]
    assert method.learned_augmentation() == {"top": summary["top"]}
    json.dumps(summary, allow_nan=False)


def test_policy_reloaded_from_its_json_reproduces_the_augmentation() -> None:
    task = REGISTRY.task("mnist_rot").cls()
    torch.manual_seed(3)
    policy = Policy([get_op(n) for n in task.augmentation_space], task.augmentation_kwargs)
    summary = json.loads(json.dumps(policy.summary()))
    reloaded = Policy.from_summary(summary, task.augmentation_kwargs)
    x = torch.rand(32, 1, 28, 28)
    torch.manual_seed(7)
    expected = policy(x, hard=True, num_chunks=16)
    torch.manual_seed(7)
    assert torch.equal(reloaded(x, hard=True, num_chunks=16), expected)
    assert not torch.equal(expected, x)


def test_retrain_applies_the_hard_policy_to_each_batch() -> None:
    method = build_method("mnist_rot")
    x, y = method.ctx.data.train.x[:16], method.ctx.data.train.y[:16]
    torch.manual_seed(1)
    augmented = method.policy(x, hard=True, num_chunks=method.hparams["retrain_chunks"])
    torch.manual_seed(1)
    loss, _ = method.training_loss(x, y)
    method.model.eval()  # the smoke model has no dropout; BN in eval for an exact comparison of losses
    assert loss.requires_grad and method.policy.logits.grad is None
    torch.manual_seed(1)
    loss_eval, _ = method.training_loss(x, y)
    assert loss_eval.item() == pytest.approx(F.cross_entropy(method.model(augmented), y).item(), rel=1e-5)


def test_eeg_ops_learn_through_the_policy() -> None:
    torch.manual_seed(0)
    policy = Policy(ops_for("eeg"), {"sfreq": 100.0}, num_sub_policies=1)
    out = policy(torch.randn(8, 2, 200), hard=False, num_chunks=2)
    assert out.shape == (8, 2, 200) and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    assert (policy.logits.grad != 0).all() and (policy.probabilities.grad != 0).any()


def test_tasks_without_an_augmentation_space_are_not_supported() -> None:
    class Bare(Task):
        name, modality = "bare", "image"

    assert "declares none" in PLUGIN.cls.supports(Bare())
    assert PLUGIN.cls.supports(REGISTRY.task("qm9").cls()) is None
    assert PLUGIN.cls.supports(REGISTRY.task("mnist_rot").cls()) is None


def test_smoke_runs_on_images_and_molecules(tmp_path: Path) -> None:
    records = smoke_records_by_task("faster_aa", "mnist_rot,qm9", tmp_path)
    assert set(records) == {"mnist_rot", "qm9"}
    for task, record in records.items():
        assert record["status"] == "ok", record["error"]
        assert record["search_s"] > 0 and record["train_s"] > 0
        assert record["policy"]["ops"] == list(REGISTRY.task(task).cls.augmentation_space)
        assert record["history"][-1]["augmentation"]["top"] == record["policy"]["top"]
        assert record["n_params_method"] == 3 * 10 * 2 * len(record["policy"]["ops"])  # the policy, not the critic
        assert record["learning"]["phases"]["train"] == {"weights": 0, "probabilities": 0, "magnitudes": 0}
        assert record["search_history"][-1]["step"] == record["policy"]["search"]["steps"] > 0


def test_search_is_deterministic_for_a_seed() -> None:
    first, second = build_method("qm9").search(), build_method("qm9").search()
    assert first == second


def test_augmentation_state_and_search_history() -> None:
    method = build_method("mnist_rot", search_n_train=64, search_batch_size=16, search_epochs=2)
    ops = method.task.augmentation_space
    start = method.augmentation_state()
    assert start["weights"].shape == (10, 2, len(ops))
    torch.testing.assert_close(start["weights"].sum(-1), torch.ones(10, 2))
    with_strength = sum(get_op(o).kind != "on_off" for o in ops)
    assert start["magnitudes"].shape == (10, 2, with_strength) and start["probabilities"].shape == (10, 2, len(ops))
    summary = method.search()
    history = method.search_history
    assert summary["search"]["steps"] == 8 and [h["step"] for h in history] == list(range(9))
    assert {"critic_loss", "policy_loss", "state", "op_weights"} <= set(history[-1])
    assert sum(history[-1]["op_weights"].values()) == pytest.approx(1.0, abs=1e-4)
    end = method.augmentation_state()
    assert history[-1]["state"]["probabilities"]["max_abs_change"] == pytest.approx(
        float((end["probabilities"] - start["probabilities"]).abs().max()), abs=1e-6)


def test_critic_width_scales_the_critic() -> None:
    method = build_method("mnist_rot", critic_width=0.5)
    narrow = method.make_critic(method.ctx.data.train.x[:2])
    wide = build_method("mnist_rot").make_critic(method.ctx.data.train.x[:2])
    assert sum(p.numel() for p in narrow.parameters()) < 0.5 * sum(p.numel() for p in wide.parameters())
