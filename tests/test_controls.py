"""Issue 18: the controls (``learn_augmentation: False``) share their method's search
space, retrain, model and budget and differ only in the search: no search time, no
search history, the policy the method's search starts from for the same seed (DADA:
a random policy of the same space), and the gain table pairs each method with its
control by seed."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench import search_gain
from bench.api import RunContext
from bench.config import CONTROL_PARAM, RunConfig
from bench.progress import Progress
from bench.registry import load_registry
from bench.runner import RunOptions, build_method, execute_run, load_task_data

METHODS = ("faster_aa", "dada", "augnet", "augerino")
TASK = "mnist_rot"


def config(method: str, learn: bool, seed: int = 0) -> RunConfig:
    params = {**load_registry().method(method).defaults_for("smoke"), CONTROL_PARAM: learn}
    return RunConfig(TASK, "smoke", method, 1.0, None, seed, params)


def built(cfg: RunConfig):
    """The method of ``cfg`` as the runner builds it, before any search or training."""
    registry = load_registry()
    task = registry.task(cfg.task).cls()
    data = load_task_data(registry, cfg, None)
    make_model = lambda: task.make_model(cfg.profile, cfg.width, cfg.depth)  # noqa: E731
    ctx = RunContext(cfg, task, task.profile(cfg.profile), data, torch.device("cpu"), make_model,
                     Progress(enabled=False))
    return build_method(registry, ctx, make_model())


def augmentation_parameters(method) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in method.named_parameters() if not name.startswith("model.")}


@pytest.mark.parametrize("name", ["faster_aa", "augnet", "augerino"])
def test_control_starts_from_the_method_initialisation(name):
    method, control = built(config(name, True)), built(config(name, False))
    start, frozen = augmentation_parameters(method), augmentation_parameters(control)
    assert start and start.keys() == frozen.keys()
    for key in start:
        torch.testing.assert_close(frozen[key], start[key], rtol=0, atol=0)
        if method.kind == "learned_invariance":  # trained with the model: frozen in the control
            assert not control.get_parameter(key).requires_grad and method.get_parameter(key).requires_grad


def test_faster_aa_initial_policy_is_random_per_seed():
    """The shared start is the method's uniform(0, 1) draw, not a constant."""
    a = augmentation_parameters(built(config("faster_aa", True, seed=0)))
    b = augmentation_parameters(built(config("faster_aa", True, seed=1)))
    assert not torch.equal(a["policy.probabilities"], b["policy.probabilities"])
    assert 0 < float(a["policy.probabilities"].min()) and float(a["policy.probabilities"].max()) < 1


def test_dada_control_is_a_random_policy_of_the_same_space():
    method, control = built(config("dada", True)), built(config("dada", False))
    again, other = built(config("dada", False)), built(config("dada", False, seed=1))
    assert control.search_policy.sub_policies == method.search_policy.sub_policies
    torch.testing.assert_close(control.search_policy.weights, method.search_policy.weights)  # uniform, as the start
    probabilities = control.search_policy.probabilities.detach()
    assert probabilities.std() > 0.1 and not torch.allclose(probabilities, torch.tensor(0.5))
    torch.testing.assert_close(probabilities, again.search_policy.probabilities.detach())  # one draw per seed
    assert not torch.equal(probabilities, other.search_policy.probabilities.detach())
    chosen = [sp["index"] for sp in control.search()["sub_policies"]]
    first = [sp["index"] for sp in method.search_policy.top_k(control.hparams["top_k"])]
    assert len(chosen) == len(set(chosen)) == len(first) and chosen != first  # not the stable sort's first pairs


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("controls")
    options = RunOptions(results_dir=out, progress=False)
    return {f"{name}{'' if learn else '[control]'}": execute_run(config(name, learn), options)
            for name in METHODS for learn in (True, False)}


@pytest.mark.parametrize("name", METHODS)
def test_control_differs_only_in_the_search(records, name):
    method, control = records[name], records[f"{name}[control]"]
    assert method["status"] == control["status"] == "ok", (method.get("error"), control.get("error"))
    # same task, budget and model; only the control parameter differs
    assert {k: v for k, v in method["method_params"].items() if k != CONTROL_PARAM} == \
        {k: v for k, v in control["method_params"].items() if k != CONTROL_PARAM}
    assert len(method["history"]) == len(control["history"]) and method["n_params"] == control["n_params"]
    assert control["label"] == f"{name} ({CONTROL_PARAM}=False)" and method["label"] == name
    # no search: no history, no search phase worth the name
    assert control["search_history"] is None
    assert control["search_s"] < 0.05
    start = built(config(name, True))  # the method's initial state for this seed
    if name == "faster_aa":
        assert control["policy"]["search"] is None and method["policy"]["search"]["steps"] > 0
        assert control["policy"]["sub_policies"] == start.policy.summary()["sub_policies"]
        assert method["policy"]["sub_policies"] != control["policy"]["sub_policies"]  # the search moved it
    elif name == "dada":
        assert control["policy"]["search"] is None and method["policy"]["search"]["steps"] > 0
        assert control["policy"]["n_candidates"] == method["policy"]["n_candidates"]
        assert len(control["policy"]["sub_policies"]) == len(method["policy"]["sub_policies"])
    else:  # the learned augmentation at the end of the control is the method's start
        assert control["learned_augmentation"] == start.learned_augmentation()
        assert method["learned_augmentation"] != start.learned_augmentation()
    if control.get("learning") is not None:
        assert control["learning"]["movement"] == 0 and method["learning"]["movement"] > 0


def test_gain_table_pairs_each_method_with_its_control(records, tmp_path: Path):
    gains = search_gain.search_gains(list(records.values()))
    assert sorted(gains["method"]) == sorted(METHODS)
    assert set(gains["control"]) == {f"{m} ({CONTROL_PARAM}=False)" for m in METHODS}
    row = gains.set_index("method").loc["faster_aa"]
    assert row["n"] == 1 and row["gain"] == pytest.approx(records["faster_aa"]["test_metric"]
                                                          - records["faster_aa[control]"]["test_metric"])
    assert row["search_s"] == pytest.approx(records["faster_aa"]["search_s"])
    paths = search_gain.write_search_gain_tables(list(records.values()), tmp_path)
    assert {p.name for p in paths} == {f"{TASK}.smoke.search_gain.{ext}" for ext in ("csv", "md", "tex")}
    assert "dada (learn_augmentation=False)" in (tmp_path / f"{TASK}.smoke.search_gain.md").read_text()


def test_gain_table_ignores_methods_without_their_control(records):
    alone = [r for key, r in records.items() if key != "augnet[control]"]
    assert "augnet" not in set(search_gain.search_gains(alone)["method"])


def test_a_control_parameter_that_is_not_a_boolean_is_refused_before_anything_runs(tmp_path: Path):
    from tests.helpers import run_cli

    result = run_cli("run", "--tasks", TASK, "--methods", "faster_aa", "--profile", "smoke", "--seeds", "0",
                     "--param", "faster_aa.learn_augmentation=maybe", "--results-dir", str(tmp_path))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "error: bad value faster_aa.learn_augmentation='maybe' (--param): expected true/false")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_report_says_how_to_add_the_controls_when_the_records_have_none(tmp_path: Path) -> None:
    from bench.report_blocks import ReportInput
    from bench.report_sections import CONTROLS_HINT, search_gain_section

    def record(method: str, kind: str) -> dict:
        return {"status": "ok", "task": "mnist_rot", "profile": "quick", "method": method, "label": method,
                "method_kind": kind, "seed": 0, "width": 1.0, "depth": None, "test_metric": 0.8, "method_params": {}}

    baselines = [record("erm", "baseline")]
    assert search_gain_section(ReportInput(baselines, [], tmp_path)) == []  # nothing to control
    blocks = search_gain_section(ReportInput(baselines + [record("dada", "bilevel")], [], tmp_path))
    assert [b.text for b in blocks][-1] == CONTROLS_HINT and "--suite controls" in CONTROLS_HINT
