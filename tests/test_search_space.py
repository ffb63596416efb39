"""Search spaces: refused in one line naming the entry, before any job; the trials each search makes."""

from __future__ import annotations

import json

import pytest

from pipeline.data import leaderboard
from pipeline.data.search_space import Choice, Range, canonical, grid_trials, random_trials, suggest, validate_space
from pipeline.errors import ConfigError
from tasks.engines import resolve_params

GOOD = {"lightgbm": {"num_leaves": [15, 63], "learning_rate": [0.05, 0.1]}, "mllib-logreg": {"reg_param": [0.0, 0.1]}}


@pytest.mark.parametrize("doc, search, words", [
    ({"xgbost": {}}, "grid", ["unknown engine 'xgbost'", "did you mean 'xgboost'?"]),
    ({"lightgbm": {"bagging_fracton": [0.5]}}, "grid", ["lightgbm.bagging_fracton", "did you mean 'bagging_fraction'?"]),
    ({"lightgbm": {"bagging": [0.5], "subsample": [0.6]}}, "grid", ["lightgbm.subsample", "bagging_fraction is in the space twice"]),
    ({"lightgbm": {"seed": [1, 2]}}, "grid", ["lightgbm.seed", "set by --seed"]),
    ({"lightgbm": {"boosting": {"low": 1, "high": 2}}}, "random", ["lightgbm.boosting", "takes str values, not a range"]),
    ({"lightgbm": {"leaves": [3]}}, "grid", ["lightgbm.leaves", "unknown parameter 'leaves'"]),
    ({"lightgbm": {"num_leaves": []}}, "grid", ["lightgbm.num_leaves", "empty list"]),
    ({"lightgbm": {"num_leaves": [15, "many"]}}, "grid", ["lightgbm.num_leaves[1]", "expected a number"]),
    ({"mllib-gbt": {"max_depth": [0]}}, "grid", ["mllib-gbt.max_depth[0]", "must lie in"]),
    ({"lightgbm": {"learning_rate": {"low": 0.3, "high": 0.01}}}, "random", ["lightgbm.learning_rate", "empty range"]),
    ({"lightgbm": {"learning_rate": {"low": 0.01, "high": 0.3}}}, "grid", ["lightgbm.learning_rate", "cannot be searched by grid"]),
    ({"lightgbm": {"learning_rate": {"low": 0, "high": 0.3, "log": True}}}, "optuna", ["learning_rate", "low > 0"]),
    ({"lightgbm": {"learning_rate": {"low": "a", "high": 0.3}}}, "optuna", ["learning_rate", "must be numbers"]),
    ({"lightgbm": {"num_leaves": {"low": 2.5, "high": 9}}}, "random", ["num_leaves", "whole-number bounds"]),
    ({"lightgbm": {"num_leaves": {"low": 2, "high": 9, "step": 1}}}, "random", ["num_leaves", "unknown key 'step'"]),
    ({"lightgbm": {"num_leaves": 15}}, "grid", ["lightgbm.num_leaves", "expected a list of values or a range"]),
    ({"lightgbm": [15]}, "grid", ["lightgbm", "expected an object"]),
    ({"mllib-mlp": {"hidden_layers": {"low": 1, "high": 3}}}, "random", ["hidden_layers", "takes lists"]),
    ({}, "grid", ["non-empty object"]),
    ([1], "grid", ["non-empty object"]),
    (GOOD, "bayes", ["--search 'bayes'"]),
])
def test_bad_spaces_are_refused_naming_the_entry(doc, search, words):
    with pytest.raises(ConfigError) as err:
        validate_space(doc, "space.json", search)
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_grid_is_every_combination_with_defaults_filled_in():
    space = validate_space(GOOD, "space.json", "grid")
    trials = grid_trials(space)
    assert len(trials) == 2 * 2 + 2
    assert trials[0].params == resolve_params("lightgbm", {"num_leaves": 15, "learning_rate": 0.05})
    assert {t.engine for t in trials} == {"lightgbm", "mllib-logreg"}
    assert len({t.key for t in trials}) == len(trials)


def test_random_trials_are_the_same_in_every_run_and_respect_ranges():
    doc = {"lightgbm": {"learning_rate": {"low": 0.01, "high": 0.3, "log": True}, "num_leaves": {"low": 4, "high": 64}},
           "mllib-mlp": {"hidden_layers": [[8], [16, 4]]}}
    space = validate_space(doc, "s", "random")
    assert space["lightgbm"]["num_leaves"] == Range(4, 64, False, True)
    assert space["mllib-mlp"]["hidden_layers"] == Choice(([8], [16, 4]))
    first = random_trials(space, 12, seed=5)
    assert random_trials(space, 12, seed=5) == first
    assert random_trials(space, 14, seed=5)[: len(first)] == first  # more trials keep the first ones
    assert random_trials(space, 12, seed=6) != first
    for t in first:
        if t.engine == "lightgbm":
            assert 0.01 <= t.params["learning_rate"] <= 0.3 and isinstance(t.params["num_leaves"], int)
            assert 4 <= t.params["num_leaves"] <= 64
        else:
            assert t.params["hidden_layers"] in ([8], [16, 4])
    assert len({t.engine for t in first}) == 2


def test_optuna_suggestions_stay_inside_the_space():
    optuna = pytest.importorskip("optuna")
    doc = {"lightgbm": {"learning_rate": {"low": 0.01, "high": 0.3, "log": True}, "num_leaves": [7, 31]},
           "mllib-mlp": {"hidden_layers": [[8], [16, 4]]}}
    space = validate_space(doc, "s", "optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(12):
        t = suggest(study.ask(), space)
        seen.add(t.engine)
        if t.engine == "lightgbm":
            assert 0.01 <= t.params["learning_rate"] <= 0.3 and t.params["num_leaves"] in (7, 31)
        else:
            assert t.params["hidden_layers"] in ([8], [16, 4])
    assert seen == {"lightgbm", "mllib-mlp"}


def test_yaml_spaces_and_the_canonical_text(tmp_path):
    pytest.importorskip("yaml")
    from pipeline.flows.tune import load_space

    f = tmp_path / "space.yaml"
    f.write_text("lightgbm:\n  num_leaves: [15, 63]\nmllib-logreg: {}\n")
    space = load_space(str(f), "grid")
    assert canonical(space) == canonical(validate_space({"mllib-logreg": {}, "lightgbm": {"num_leaves": [15, 63]}}, "x", "grid"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_space(str(tmp_path / "nope.json"), "grid")


def test_leaderboard_ranks_per_label_best_first():
    rows = [{"label": "b", "trial": 0, "metrics": {"auc_roc": 0.7, "log_loss": 0.5}, "params": {}},
            {"label": "a", "trial": 0, "metrics": {"auc_roc": 0.6, "log_loss": 0.4}, "params": {}},
            {"label": "a", "trial": 1, "metrics": {"auc_roc": 0.9, "log_loss": 0.6}, "params": {"x": 1}},
            {"label": "a", "trial": 2, "metrics": {"auc_roc": None}, "params": {}}]
    ranked = leaderboard.rank(rows, "auc_roc")
    assert [(r["label"], r["trial"], r["rank"]) for r in ranked] == [("a", 1, 1), ("a", 0, 2), ("a", 2, 3), ("b", 0, 1)]
    by_loss = leaderboard.rank(rows, "log_loss")
    assert [(r["trial"], r["rank"]) for r in by_loss if r["label"] == "a"][:2] == [(0, 1), (1, 2)]  # a loss: lower wins
    csv_text = leaderboard.to_csv(ranked)
    assert csv_text.splitlines()[0].startswith("label,rank,trial,study,engine,params,auc_roc")
    assert '"{""x"": 1}"' in csv_text.splitlines()[1]
    assert json.loads(leaderboard.to_json(ranked, {"id": "s"}))["rows"][0]["trial"] == 1
