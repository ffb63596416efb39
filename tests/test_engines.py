"""The engine registry without Spark: parameters as each library knows them, checked by
the library itself; training, saving, loading and scoring through the record alone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tasks.balance import plan_balance
from tasks.engines import LABEL_COL, EngineParamError, engine_names, get_engine, resolve_params
from tasks.engines.registry import ENTRY_POINT_GROUP
from tasks.engines.training import Options, train_on_driver
from tasks.evaluation import CURVES_FILE, binary_metrics

SKLEARN = "sklearn:sklearn.ensemble.HistGradientBoostingClassifier"


def test_lightgbm_defaults_fill_in_and_values_are_coerced():
    p = resolve_params("lightgbm", {"num_iterations": 50.0, "learning_rate": 1})
    assert p["num_iterations"] == 50 and isinstance(p["num_iterations"], int)
    assert p["learning_rate"] == 1.0 and isinstance(p["learning_rate"], float)
    assert p["num_leaves"] == get_engine("lightgbm").defaults["num_leaves"].default


def test_every_parameter_lightgbm_knows_is_accepted_under_its_main_name():
    import lightgbm

    engine = get_engine("lightgbm")
    x, y = np.random.default_rng(0).standard_normal((50, 2)), np.arange(50) % 2
    booster = lightgbm.train({"objective": "binary", "verbosity": -1}, lightgbm.Dataset(x, y), num_boost_round=1)
    reported = lightgbm.Booster(model_str=booster.model_to_string()).params  # every parameter the model carries
    accepted = [name for name in reported if engine.refused_param(name) is None]
    assert len(accepted) > 90 and {"bagging_fraction", "bagging_freq", "lambda_l1", "max_depth", "min_gain_to_split",
                                    "max_bin", "scale_pos_weight", "is_unbalance", "boosting"} <= set(accepted)
    for name in accepted:
        assert engine.canonical_name(name) == name
    # aliases resolve to the parameter they stand for, as LightGBM resolves them
    assert resolve_params("lightgbm", {"subsample": 0.5, "n_estimators": 20}) == {
        **resolve_params("lightgbm", {}), "bagging_fraction": 0.5, "num_iterations": 20}


@pytest.mark.parametrize("engine, given, right", [
    ("lightgbm", "bagging_fracton", "bagging_fraction"),
    ("xgboost", "max_dept", "max_depth"),
    ("xgboost", "scale_pos_wieght", "scale_pos_weight"),
    (SKLEARN, "max_iters", "max_iter"),
    ("mllib-logreg", "reg_parm", "reg_param"),
    ("mllib-gbt", "subsampling_rat", "subsampling_rate"),
])
def test_a_misspelt_parameter_is_refused_naming_the_right_one(engine, given, right):
    with pytest.raises(EngineParamError) as err:
        resolve_params(engine, {given: 1})
    message = str(err.value)
    assert f"unknown parameter {given!r} for engine {engine}: did you mean {right!r}?" == message


@pytest.mark.parametrize("engine, params, fragment", [
    ("lightgbm", {"bagging_fraction": 1.5}, "Check failed: (bagging_fraction) <= (1.0)"),
    ("lightgbm", {"max_bin": 7.5}, "should be of type int"),
    ("lightgbm", {"boosting": "gbdtt"}, "Unknown boosting type gbdtt"),
    ("xgboost", {"eta": -1}, "value -1 for Parameter learning_rate should be greater equal to 0"),
    ("xgboost", {"tree_method": "fast"}, "Invalid Input: 'fast'"),
    (SKLEARN, {"learning_rate": -1}, "The 'learning_rate' parameter of HistGradientBoostingClassifier must be"),
])
def test_values_are_checked_by_the_library_itself_in_one_line(engine, params, fragment, capfd):
    record = get_engine(engine)
    with pytest.raises(EngineParamError) as err:
        record.check_params(record.resolve(params), 3)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    out, errors = capfd.readouterr()
    assert "LightGBM" not in out + errors  # the library's own log lines stay hidden


@pytest.mark.parametrize("engine, params, fragment", [
    ("lightgbm", {"seed": 3}, "set by --seed"),
    ("lightgbm", {"random_state": 3}, "set by --seed"),
    ("lightgbm", {"objective": "regression"}, "use one of binary"),
    ("lightgbm", {"output_model": "m.txt"}, "saves the model itself"),
    ("lightgbm", {"bagging": 0.5, "subsample": 0.6}, "both set lightgbm's bagging_fraction"),
    ("xgboost", {"objective": "reg:squarederror"}, "use binary:logistic"),
    ("xgboost", {"num_class": 2}, "one score"),
    (SKLEARN, {"random_state": 1}, "set by --seed"),
    ("mllib-logreg", {"label_col": "y"}, "a column of spark-fanout's own"),
    ("mllib-logreg", {"max_iter": 2.5}, "expected a whole number"),
    ("mllib-mlp", {"layers": [3, 2]}, "give hidden_layers"),
    ("mllib-mlp", {"hidden_layers": [8, -1]}, "positive integers"),
])
def test_what_the_job_sets_itself_is_refused_saying_why(engine, params, fragment):
    with pytest.raises(EngineParamError) as err:
        resolve_params(engine, params)
    assert fragment in str(err.value)


def test_mllib_takes_the_estimators_own_parameters_in_both_spellings():
    p = resolve_params("mllib-logreg", {"maxIter": 5, "fit_intercept": False, "family": "binomial", "tol": 1})
    assert p == {"max_iter": 5, "reg_param": 0.0, "elastic_net_param": 0.0, "fit_intercept": False,
                 "family": "binomial", "tol": 1.0}
    from pyspark import SparkContext

    assert SparkContext._active_spark_context is None  # read from pyspark's classes: no JVM started


def test_engine_names_and_unknown_ones():
    assert {"lightgbm", "xgboost", "mllib-gbt", "mllib-logreg", "mllib-mlp", "synapseml"} <= set(engine_names())
    with pytest.raises(EngineParamError, match="unknown engine 'xgbost': did you mean 'xgboost'?"):
        get_engine("xgbost")
    with pytest.raises(EngineParamError, match="has no class 'HistGradientBoostingClasifier': did you mean 'HistGradientBoostingClassifier'"):
        get_engine("sklearn:sklearn.ensemble.HistGradientBoostingClasifier")
    with pytest.raises(EngineParamError, match="KMeans has no predict_proba"):
        get_engine("sklearn:sklearn.cluster.KMeans")
    assert get_engine(SKLEARN).folder == "sklearn-HistGradientBoostingClassifier"


def test_search_ranges_learn_a_parameters_kind_from_the_library():
    lgbm, xgb = get_engine("lightgbm"), get_engine("xgboost")
    assert (lgbm.param_kind("bagging_freq"), lgbm.param_kind("bagging_fraction"), lgbm.param_kind("boosting")) == (int, float, str)
    assert (xgb.param_kind("max_depth"), xgb.param_kind("subsample")) == (int, float)


def _rows(n: int = 900, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    y = (x[:, 0] - 0.7 * x[:, 1] + 0.8 * rng.standard_normal(n) > 1.0).astype(float)  # about 20 % positives
    frame = pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2], LABEL_COL: y})
    return frame.iloc[: n * 2 // 3], frame.iloc[n * 2 // 3:]


@pytest.mark.parametrize("engine, params", [
    ("lightgbm", {"num_iterations": 30, "bagging_fraction": 0.5, "bagging_freq": 1}),
    ("xgboost", {"num_boost_round": 30, "max_depth": 3}),
    (SKLEARN, {"max_iter": 20}),
])
def test_a_driver_engine_trains_saves_loads_and_scores_through_its_record(engine, params):
    record = get_engine(engine)
    train, validation = _rows()
    resolved = record.resolve(params)
    record.check_params(resolved, 3)
    model, facts = train_on_driver(record, train, validation, ["f0", "f1", "f2"], resolved, 7, "label", Options())
    assert set(record.model_files) | {CURVES_FILE} == set(model.files) and facts == {"weights": None}
    loaded = record.load({name: model.files[name] for name in record.model_files})
    scores = record.predict(loaded, validation[["f0", "f1", "f2"]].to_numpy())
    y = validation[LABEL_COL]
    assert model.metrics == binary_metrics(y, scores, train_counts=(len(train), int(train[LABEL_COL].sum())))
    assert model.metrics["auc_roc"] > 0.8 and set(json.loads(model.files[CURVES_FILE])) == {"roc", "pr"}
    assert model.versions  # the library's version goes into metadata.json


def test_lightgbm_parameters_beyond_the_seven_reach_the_saved_booster():
    import lightgbm

    record = get_engine("lightgbm")
    train, validation = _rows()
    params = record.resolve({"num_iterations": 10, "bagging_fraction": 0.5, "bagging_freq": 1, "lambda_l1": 0.25})
    model, _ = train_on_driver(record, train, validation, ["f0", "f1", "f2"], params, 7, "label", Options())
    saved = lightgbm.Booster(model_str=model.files["model.txt"].decode()).params
    assert (saved["bagging_fraction"], saved["bagging_freq"], saved["lambda_l1"]) == (0.5, 1, 0.25)


@pytest.mark.parametrize("engine, params", [
    ("lightgbm", {"num_iterations": 400, "early_stopping_round": 5, "learning_rate": 0.3}),
    ("xgboost", {"num_boost_round": 400, "early_stopping_rounds": 5, "eta": 0.3}),
])
def test_early_stopping_decides_on_a_slice_of_the_training_rows(engine, params):
    record = get_engine(engine)
    train, validation = _rows(1500)
    options = Options(stopping_fraction=0.2)
    model, _ = train_on_driver(record, train, validation, ["f0", "f1", "f2"], record.resolve(params), 7, "label", options)
    stopping = model.info["early_stopping"]
    assert stopping["rounds"] == 5 and 0.1 * len(train) < stopping["stopping_rows"] < 0.3 * len(train)
    assert stopping["best_iteration"] < 400 and stopping["rounds_trained"] <= stopping["best_iteration"] + 5
    # the slice came out of the training rows; the validation rows are all evaluated
    assert model.metrics["rows_train"] == len(train) - stopping["stopping_rows"]
    assert model.metrics["rows_validation"] == len(validation)
    loaded = record.load({n: model.files[n] for n in record.model_files})
    scores = record.predict(loaded, validation[["f0", "f1", "f2"]].to_numpy())
    assert model.metrics["auc_roc"] == binary_metrics(validation[LABEL_COL], scores)["auc_roc"]


@pytest.mark.parametrize("engine, given", [("lightgbm", {}), ("xgboost", {}), (SKLEARN, {"max_iter": 20})])
def test_balanced_class_weights_change_the_model_not_the_rows(engine, given):
    record = get_engine(engine)
    train, validation = _rows()
    params = record.resolve(given)
    plain, _ = train_on_driver(record, train, validation, ["f0", "f1", "f2"], params, 7, "label", Options())
    weighted, facts = train_on_driver(record, train, validation, ["f0", "f1", "f2"], params, 7, "label",
                                      Options(class_weight="balanced"))
    negatives, positives = int((train[LABEL_COL] == 0).sum()), int(train[LABEL_COL].sum())
    assert facts["weights"] == {0: len(train) / (2 * negatives), 1: len(train) / (2 * positives)}
    assert weighted.metrics["rows_train"] == plain.metrics["rows_train"] == len(train)
    mean_score = {name: m.metrics["brier"] for name, m in (("plain", plain), ("weighted", weighted))}
    # weighting the rare positives up pushes scores up: worse calibrated on these rows
    assert mean_score["weighted"] > mean_score["plain"]


def test_classes_that_cannot_be_weighted_say_so():
    assert get_engine("mllib-logreg").weighs_classes and not get_engine("mllib-mlp").weighs_classes


def test_balance_keeps_minority_and_caps_majority():
    plan = plan_balance(negatives=9000, positives=1000, ratio=2.0)
    assert plan.fractions == {0: pytest.approx(2000 / 9000), 1: 1.0}
    assert plan_balance(100, 900, 1.0).fractions == {1: pytest.approx(100 / 900), 0: 1.0}  # positives as majority


def test_balance_off_or_already_balanced_keeps_all():
    assert plan_balance(900, 100, 0).fractions == {0: 1.0, 1: 1.0}
    assert plan_balance(150, 100, 2.0).fractions == {0: 1.0, 1: 1.0}
    with pytest.raises(ValueError):
        plan_balance(1, 1, -1)


def test_a_user_engine_comes_through_its_entry_point(user_engine_site, monkeypatch):
    from importlib.metadata import entry_points

    assert "centroid" not in engine_names()
    monkeypatch.syspath_prepend(str(user_engine_site))
    assert [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "centroid"] == ["fanout_centroid:ENGINE"]
    assert "centroid" in engine_names()
    record = get_engine("centroid")
    assert type(record).__module__ == "fanout_centroid"
    with pytest.raises(EngineParamError, match="did you mean 'temperature'"):
        record.resolve({"temprature": 2})
    train, validation = _rows()
    model, _ = train_on_driver(record, train, validation, ["f0", "f1", "f2"], record.resolve({}), 7, "label", Options())
    assert model.metrics["auc_roc"] > 0.8 and model.info == {"training": {"rows_fitted": len(train)}}
