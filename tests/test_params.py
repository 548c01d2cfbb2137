"""Declared hyper-parameters (issue 16 item 1): every value from --param, a suite file
or a preset is checked and normalised while the suite expands, before any run starts;
a bad one is one line naming the parameter, the value and what is allowed, exit 2,
and nothing is written."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.api import TRAIN_PARAMS
from bench.cli import build_parser, main, plan_runs
from bench.config import run_id_of
from bench.params import Param, as_param
from bench.registry import load_registry
from bench.tuning import draw_trials

REGISTRY = load_registry()


def planned(*argv: str):
    args = build_parser().parse_args(["run", "--suite", "smoke", "--tasks", "mnist_rot", *argv])
    return plan_runs(args, REGISTRY)[1]


def run_ids(*argv: str) -> list[str]:
    return [run_id_of(REGISTRY, c) for c in planned(*argv)]


def assert_refused(capsys, tmp_path: Path, argv: list[str], *fragments: str) -> None:
    results = tmp_path / "results"
    code = main(["run", "--suite", "smoke", "--tasks", "mnist_rot", "--results-dir", str(results), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in err[0], err[0]
    assert not results.exists(), "nothing may be written before the values are checked"


@pytest.mark.parametrize("argv, fragments", [
    # the values the issue measured starting runs (and failing as records, or never)
    (["--param", "augnet.penalty=abc"], ("augnet.penalty", "'abc'", "a number >= 0")),
    (["--param", "augnet.layers=nosuch_op"], ("augnet.layers", "nosuch_op", "unknown")),
    (["--param", "augnet.ncopies=-2"], ("augnet.ncopies", "-2", "an integer >= 1")),
    (["--param", "augerino.family=nosuch"], ("augerino.family", "nosuch", "affine_2d")),
    (["--param", "dada.top_k=0"], ("dada.top_k", "0", "an integer >= 1")),
    (["--seeds", "-1"], ("--seeds", ">= 0")),
    # one per declared type
    (["--param", "augnet.ncopies=0"], ("augnet.ncopies", "integer >= 1")),  # int out of range
    (["--param", "augnet.ncopies=2.5"], ("augnet.ncopies", "2.5")),  # int, not integral
    (["--param", "augnet.penalty=.nan"], ("augnet.penalty", "nan")),  # float not a number
    (["--param", "augnet.init_magnitude=1.5"], ("augnet.init_magnitude", "[0, 1]")),  # float out of range
    (["--param", "augerino.safe=3"], ("augerino.safe", "true/false")),  # bool
    (["--param", "augerino.reg=huge"], ("augerino.reg", "light")),  # unknown choice of a number-or-name
    (["--param", "faster_aa.betas=[0.1, x]"], ("faster_aa.betas", "a list of 2 numbers")),  # wrong list element
    (["--param", "faster_aa.betas=[0.1]"], ("faster_aa.betas", "a list of 2 numbers")),  # wrong list length
    (["--param", "augerino.init={rotate: x}"], ("augerino.init", "mapping generator -> number")),  # mapping
    (["--param", "augerino.init={nosuch: 1}"], ("augerino.init", "nosuch")),  # mapping key, task-dependent
    (["--param", "augerino.family=se_3"], ("augerino.family", "se_3", "affine_2d")),  # choice, task-dependent
    (["--param", "augnet.layers=frequency_shift"], ("augnet.layers", "frequency_shift", "augmentation space")),
    (["--param", "augnet.nosuch=1"], ("method 'augnet' has no parameter nosuch",)),
    (["--param", "train.lr=-0.1"], ("train.lr", "-0.1", "a number >= 0")),  # shared training settings
    (["--param", "train.epochs=0"], ("train.epochs", "an integer >= 1")),
    (["--param", "train.momentum=0.5"], ("training settings have no parameter momentum",)),
])
def test_bad_value_is_one_line_exit_2_nothing_written(argv, fragments, capsys, tmp_path: Path) -> None:
    assert_refused(capsys, tmp_path, argv, *fragments)


def test_bad_value_in_a_suite_preset_names_the_file(capsys, tmp_path: Path) -> None:
    suite = tmp_path / "bad.yaml"
    suite.write_text("profile: smoke\ntasks: [mnist_rot]\nseeds: [0]\n"
                     "methods: [{name: dada, params: {top_k: 0}}]\n")
    code = main(["run", "--suite", str(suite), "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "dada.top_k=0" in err[0], err
    assert not (tmp_path / "results").exists()


def test_equal_values_give_one_run_id() -> None:
    default = run_ids("--methods", "dada")
    assert run_ids("--methods", "dada", "--param", "dada.top_k=25.0") == default
    assert run_ids("--methods", "dada", "--param", "dada.top_k=25") == default
    assert run_ids("--methods", "augnet", "--param", "augnet.penalty=1") == \
        run_ids("--methods", "augnet", "--param", "augnet.penalty=1.0")
    assert run_ids("--methods", "augnet", "--param", "augnet.penalty=1") != run_ids("--methods", "augnet")
    # a training override equal to the profile's value is the plain run
    lr = REGISTRY.task("mnist_rot").cls.profiles["smoke"].lr
    assert run_ids("--methods", "erm", "--param", f"train.lr={lr}") == run_ids("--methods", "erm")
    assert run_ids("--methods", "erm", "--param", f"train.lr={lr * 2}") != run_ids("--methods", "erm")


def test_train_override_reaches_the_run_config() -> None:
    [config] = planned("--methods", "erm", "--param", "train.lr=0.05", "--param", "train.weight_decay=0")
    lr = REGISTRY.task("mnist_rot").cls.profiles["smoke"].lr
    wd = REGISTRY.task("mnist_rot").cls.profiles["smoke"].weight_decay
    assert config.train_params == ({"lr": 0.05} if wd == 0 else {"lr": 0.05, "weight_decay": 0.0}) and lr != 0.05
    assert "train.lr=0.05" in config.label({})


@pytest.mark.parametrize("name", sorted(REGISTRY.methods))
def test_every_shipped_parameter_is_declared_in_normal_form(name: str) -> None:
    plugin = REGISTRY.method(name)
    assert all(isinstance(p, Param) for p in plugin.cls.params.values()), "declare every parameter with Param"
    for profile in ("smoke", "quick", "paper"):
        for key, value in plugin.defaults_for(profile).items():
            normal = plugin.declared[key].normalise(value)
            assert normal == value and type(normal) is type(value), (key, value)


def test_param_normalises_and_refuses_by_type() -> None:
    assert Param(1.0, float).normalise(25) == 25.0 and isinstance(Param(1.0, float).normalise(25), float)
    assert Param(1, int).normalise(25.0) == 25 and isinstance(Param(1, int).normalise(25.0), int)
    assert Param("auto", float, low=0, choices=("auto",)).normalise("auto") == "auto"
    refused = [(Param(1, int, low=1), 0), (Param(1, int), True), (Param(1, int), "1"), (Param(1.0, float), math.nan),
               (Param(1.0, float), math.inf), (Param("a", str, choices=("a", "b")), "c"), (Param(1.0, float), None),
               (Param([1.0], list, item=float), [1.0, "x"]), (Param([1.0], list, item=float, length=1), [1.0, 2.0]),
               (Param(True, bool), 1)]
    for param, value in refused:
        with pytest.raises(ValueError):
            param.normalise(value)
    assert Param(None, float, nullable=True).normalise(None) is None


def test_a_plugin_with_a_bad_default_is_reported_not_loaded(tmp_path: Path) -> None:
    from tests.helpers import copy_repo

    repo = copy_repo(tmp_path / "repo")
    (repo / "methods" / "broken.py").write_text(
        "from bench.api import Method\nfrom bench.params import Param\n\n"
        "class Broken(Method):\n    name = 'broken'\n    description = 'a default outside its range'\n"
        "    params = {'k': Param(0, int, low=1)}\n")
    from bench.registry import load_registry as load

    registry = load(repo)
    assert "broken" not in registry.methods
    assert any("broken.py" in src and "'k'" in err for src, err in registry.errors), registry.errors


def test_bare_defaults_of_third_party_plugins_still_work() -> None:
    assert as_param(4).kind is int and as_param(0.5).kind is float and as_param([0.1, 0.2]).item is float


def test_tuning_draws_are_reproducible_within_range_and_trial_0_is_the_default() -> None:
    plugin = REGISTRY.method("augnet")
    profile = REGISTRY.task("mnist_rot").cls.profiles["quick"]
    params = plugin.defaults_for("quick")
    draw = draw_trials(plugin.declared, params, set(), profile, {}, 6, ("k",))
    assert draw == draw_trials(plugin.declared, params, set(), profile, {}, 6, ("k",))
    assert draw[0] == (params, {})
    assert len({repr(d) for d in draw}) == 6
    for method_params, train in draw[1:]:
        assert 0.01 <= method_params["penalty"] <= 2.0 and 0.05 <= method_params["init_magnitude"] <= 0.95
        assert method_params["ncopies"] == params["ncopies"], "what sets the budget is never tuned"
        assert profile.lr / 10 <= train["lr"] <= profile.lr * 10 and 0 < train["weight_decay"] <= 1e-2
    fixed = draw_trials(plugin.declared, params, {"penalty"}, profile, {"lr": 0.01}, 3, ("k",))
    assert all(p["penalty"] == params["penalty"] and t["lr"] == 0.01 for p, t in fixed), "set values are kept"
    assert set(TRAIN_PARAMS) >= {"lr", "weight_decay"}
