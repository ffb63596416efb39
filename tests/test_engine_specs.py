import pytest

from tasks.balance import plan_balance
from tasks.engine_specs import ENGINES, EngineParamError, resolve_params


def test_defaults_fill_in_and_given_values_are_coerced():
    p = resolve_params("lightgbm", {"num_iterations": 50.0, "learning_rate": 1})
    assert p["num_iterations"] == 50 and isinstance(p["num_iterations"], int)
    assert p["learning_rate"] == 1.0 and isinstance(p["learning_rate"], float)
    assert p["num_leaves"] == ENGINES["lightgbm"]["num_leaves"].default


@pytest.mark.parametrize("engine, params, fragment", [
    ("xgboost", {}, "unknown engine 'xgboost'"),
    ("lightgbm", {"num_trees": 3}, "unknown parameter 'num_trees'"),
    ("lightgbm", {"num_iterations": 0}, "must lie in"),
    ("lightgbm", {"num_iterations": 2.5}, "whole number"),
    ("lightgbm", {"learning_rate": "fast"}, "expected a number"),
    ("lightgbm", {"learning_rate": True}, "expected a number"),
    ("lightgbm", {"learning_rate": float("nan")}, "NaN"),
    ("mllib-mlp", {"hidden_layers": [8, -1]}, "positive integers"),
])
def test_bad_engine_or_params_are_refused(engine, params, fragment):
    with pytest.raises(EngineParamError) as err:
        resolve_params(engine, params)
    assert fragment in str(err.value)


def test_balance_keeps_minority_and_caps_majority():
    plan = plan_balance(negatives=9000, positives=1000, ratio=2.0)
    assert plan.fractions == {0: pytest.approx(2000 / 9000), 1: 1.0}
    # positives as majority
    assert plan_balance(100, 900, 1.0).fractions == {1: pytest.approx(100 / 900), 0: 1.0}


def test_balance_off_or_already_balanced_keeps_all():
    assert plan_balance(900, 100, 0).fractions == {0: 1.0, 1: 1.0}
    assert plan_balance(150, 100, 2.0).fractions == {0: 1.0, 1: 1.0}
    with pytest.raises(ValueError):
        plan_balance(1, 1, -1)
