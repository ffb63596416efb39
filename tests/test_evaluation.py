"""The common metric set (tasks/evaluation.py) on rows small enough to work out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tasks import evaluation
from tasks.engines import LABEL_COL, get_engine
from tasks.engines.training import Options, evaluate, train_on_driver

Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


def test_metrics_match_the_hand_worked_values():
    m = evaluation.binary_metrics(Y, S, train_counts=(10, 3))
    assert m["auc_roc"] == pytest.approx(0.75) and m["auc_test"] == m["auc_roc"]  # 3 of 4 pairs ordered right
    assert m["average_precision"] == pytest.approx((1.0 + 2 / 3) / 2)  # precision at each positive's rank
    assert m["brier"] == pytest.approx((0.1**2 + 0.4**2 + 0.65**2 + 0.2**2) / 4)
    assert m["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4)
    # max F1 on these rows: threshold 0.35 predicts 3 positives, 2 right -> P 2/3, R 1, F1 0.8
    assert m["threshold"] == pytest.approx(0.35)
    assert (m["f1"], m["precision"], m["recall"]) == pytest.approx((0.8, 2 / 3, 1.0))
    assert (m["rows_validation"], m["positives_validation"], m["rows_train"], m["positives_train"]) == (4, 2, 10, 3)


def test_one_class_gives_undefined_auc_not_a_crash():
    m = evaluation.binary_metrics([0, 0, 0], [0.2, 0.1, 0.3])
    assert m["auc_roc"] is None and m["average_precision"] is None and m["positives_validation"] == 0
    json.dumps(m, allow_nan=False)  # metadata.json stays strict JSON
    assert evaluation.curves([0, 0, 0], [0.2, 0.1, 0.3]) == {}


def test_curves_are_thinned_with_their_ends_kept():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 5000)
    s = np.clip(y * 0.3 + rng.random(5000) * 0.7, 0, 1)
    c = evaluation.curves(y, s, max_points=150)
    roc, pr = c["roc"], c["pr"]
    assert 100 < len(roc["fpr"]) <= 150 and len(roc["fpr"]) == len(roc["tpr"]) == len(roc["threshold"])
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    assert 100 < len(pr["recall"]) <= 150 and pr["recall"][-1] == 0.0 and pr["precision"][-1] == 1.0
    assert roc["fpr"] == sorted(roc["fpr"])
    json.dumps(c, allow_nan=False)


def test_engines_report_the_common_set_with_curves():
    metrics, files = evaluate(Y, S, (10, 3))
    assert metrics == evaluation.binary_metrics(Y, S, train_counts=(10, 3))
    assert set(json.loads(files[evaluation.CURVES_FILE])) == {"roc", "pr"}


def test_native_lightgbm_reports_the_common_set_and_curves():
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 2))
    y = (x[:, 0] + 0.5 * rng.standard_normal(600) > 0).astype(float)
    frame = pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], LABEL_COL: y})
    train, test = frame.iloc[:400], frame.iloc[400:]
    engine = get_engine("lightgbm")
    model, _ = train_on_driver(engine, train, test, ["f0", "f1"], engine.resolve({"num_iterations": 10, "num_leaves": 7}),
                               1, "label", Options())
    import lightgbm

    scores = lightgbm.Booster(model_str=model.files["model.txt"].decode()).predict(test[["f0", "f1"]])
    assert model.metrics == evaluation.binary_metrics(test[LABEL_COL], scores, train_counts=(400, int(train[LABEL_COL].sum())))
    assert model.metrics["auc_roc"] > 0.8
    assert json.loads(model.files[evaluation.CURVES_FILE]) == json.loads(json.dumps(evaluation.curves(test[LABEL_COL], scores)))
