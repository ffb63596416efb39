"""Every kind of engine on real Spark, and Predict end to end: LightGBM, XGBoost, a
scikit-learn estimator and a user's engine (registered through an entry point by a package
pip installed) each train a batch of two labels in one spark-submit, and one Predict job
scores all eight labels with them. The runs are shared by the tests of this module (Spark
runs are the suite's cost: this file took over tests/test_predict_spark.py's checks).
(MLlib beside LightGBM in one Predict job: tests/test_tune_spark.py.)"""

from __future__ import annotations

import json

import lightgbm
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.api import load_artifact
from pipeline.data.labels import label_slug
from tests.spark_helpers import run_luigi, start_luigi

pytestmark = pytest.mark.spark

SKLEARN = "sklearn:sklearn.ensemble.HistGradientBoostingClassifier"
OUT = "scores/all labels"
#: LightGBM's features, not in the data's order: Predict must map positions by name
FEATURES = ["f003", "f000", "f004", "f001", "f002"]
#: engine -> the two labels it trains, its parameters, other settings
ENGINES = {
    # bagging_*: parameters beyond the seven spark-fanout once knew must reach the booster
    "lightgbm": (["label_00", "label_01"], {"num_iterations": 15, "bagging_fraction": 0.5, "bagging_freq": 1},
                 ["--features", json.dumps(FEATURES)]),
    "xgboost": (["label_02", "label_03"], {"num_boost_round": 60, "max_depth": 3, "eta": 0.3, "early_stopping_rounds": 5},
                ["--class-weight", "balanced", "--balance-ratio", "0"]),
    SKLEARN: (["label_04", "label_05"], {"max_iter": 30}, []),
    "centroid": (["label_06", "label_07"], {"temperature": 0.5}, []),
}
FOLDERS = {"lightgbm": "lightgbm-", "xgboost": "xgboost-", SKLEARN: "sklearn-HistGradientBoostingClassifier-", "centroid": "centroid-"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, user_engine_site):
    work = tmp_path_factory.mktemp("engines")
    table = make_table()
    pq.write_table(table, work / "data.parquet")
    env = {"PYTHONPATH": str(user_engine_site)}  # the user's package, installed where only this run sees it
    controllers = [start_luigi(["TrainAll", "--workers", "1", "--local-scheduler", "--data", "data.parquet", "--models",
                                "models", "--labels", json.dumps(labels), "--engine", engine, "--params", json.dumps(params),
                                *extra], cwd=work, **env)
                   for engine, (labels, params, extra) in ENGINES.items()]
    outputs = [proc.communicate(timeout=560)[0] for proc in controllers]
    for proc, out in zip(controllers, outputs, strict=True):
        assert proc.returncode == 0, out[-3000:]
    configs = {engine: next(p.name for p in (work / "models").iterdir() if p.name.startswith(FOLDERS[engine]))
               for engine in ENGINES}
    predict = run_luigi(["Predict", "--local-scheduler", "--data", "data.parquet", "--models", "models", "--config",
                         json.dumps(list(configs.values())), "--key", '["row_id"]', "--out", OUT], cwd=work, timeout=560,
                        **env)
    assert predict.returncode == 0, (predict.stdout + predict.stderr)[-3000:]
    return work, table, configs, env


def make_table() -> pa.Table:
    from pipeline.flows.demo import make_demo_frame

    table = make_demo_frame(rows=2500, features=5, labels=8, seed=21)
    return table.append_column("row_id", pa.array(np.arange(table.num_rows) * 3, pa.int64()))


def test_each_engine_trains_its_batch_in_one_job_with_metrics_and_curves(run):
    work, _, configs, _ = run
    submits = sorted((work / "logs" / "batches").rglob("*-spark-submit.log"))
    assert len(submits) == len(ENGINES)  # one spark-submit per engine: the two labels are one batch
    for engine, (labels, _, _) in ENGINES.items():
        for label in labels:
            folder = work / "models" / configs[engine] / label_slug(label)
            meta = json.loads((folder / "metadata.json").read_text())
            assert meta["engine"] == engine and meta["batch_size"] == 2
            assert meta["metrics"]["auc_roc"] > 0.7, (engine, label, meta["metrics"])
            curves = json.loads((folder / "curves.json").read_text())
            assert len(curves["roc"]["fpr"]) > 10 and curves["pr"]["precision"][-1] == 1.0
            assert all((folder / name).is_file() for name in meta["model_files"])
    xgb = json.loads((work / "models" / configs["xgboost"] / label_slug("label_03") / "metadata.json").read_text())
    assert "xgboost" in xgb["versions"] and xgb["params"]["max_depth"] == 3


def test_class_weights_replace_downsampling_and_early_stopping_holds_out_training_rows(run):
    work, _, configs, _ = run
    for label in ENGINES["xgboost"][0]:
        meta = json.loads((work / "models" / configs["xgboost"] / label_slug(label) / "metadata.json").read_text())
        rows, imbalance, stopping = meta["rows"], meta["imbalance"], meta["early_stopping"]
        assert rows["train_after_balancing"] == rows["train_before_balancing"]  # --balance-ratio 0: every row kept
        fitted = meta["metrics"]["rows_train"]
        assert fitted + stopping["stopping_rows"] == rows["train_after_balancing"]
        positives = meta["metrics"]["positives_train"]
        assert imbalance["class_weight"] == "balanced" and imbalance["weights"] == {
            "0": round(fitted / (2 * (fitted - positives)), 6), "1": round(fitted / (2 * positives), 6)}
        assert 0 < stopping["best_iteration"] <= 60 and stopping["rounds"] == 5
        assert meta["metrics"]["rows_validation"] == rows["validation"]  # the validation rows, all of them, for evaluation only


def test_one_predict_job_scores_every_engines_labels_as_each_model_does(run):
    work, table, configs, env = run
    out = work / OUT
    assert (out / "_SUCCESS").is_file() and not list(out.parent.glob(".tmp-*"))
    scores = pq.read_table(out).to_pandas().sort_values("row_id").reset_index(drop=True)
    labels = [label for labels, _, _ in ENGINES.values() for label in labels]
    assert list(scores.columns) == ["row_id", *sorted(labels)] and len(scores) == table.num_rows
    frame = table.to_pandas().sort_values("row_id").reset_index(drop=True)
    assert (scores["row_id"].to_numpy() == frame["row_id"].to_numpy()).all()
    import sys

    sys.path.insert(0, env["PYTHONPATH"])  # load_artifact finds the user's engine here too
    try:
        for engine, (engine_labels, _, _) in ENGINES.items():
            for label in engine_labels:
                artifact = load_artifact(str(work / "models"), label, configs[engine])
                features = artifact["metadata"]["features"]
                expected = artifact["predict"](frame[features].to_numpy(dtype="float64"))
                np.testing.assert_allclose(scores[label].to_numpy(), expected, rtol=1e-6, atol=1e-7)
                assert scores[label].std() > 0.05, (engine, label)
    finally:
        sys.path.remove(env["PYTHONPATH"])
    used = {m["label"]: m["engine"] for m in json.loads((out / "_models.json").read_text())}
    assert used == {label: engine for engine, (labels, _, _) in ENGINES.items() for label in labels}


def test_lightgbm_parameters_beyond_the_seven_reach_the_booster_which_predict_applies(run):
    work, table, configs, _ = run
    frame = table.to_pandas().sort_values("row_id").reset_index(drop=True)
    scores = pq.read_table(work / OUT).to_pandas().sort_values("row_id").reset_index(drop=True)
    for label in ENGINES["lightgbm"][0]:
        booster = lightgbm.Booster(model_str=(work / "models" / configs["lightgbm"] / label_slug(label) / "model.txt").read_text())
        saved = booster.params  # read back from the saved model, not from our metadata
        assert (saved["bagging_fraction"], saved["bagging_freq"], saved["num_iterations"]) == (0.5, 1, 15)
        # the booster's own predictions, on the features in the order it was trained with
        expected = booster.predict(frame[FEATURES].to_numpy(dtype="float64"))
        np.testing.assert_allclose(scores[label].to_numpy(), expected, rtol=1e-12, atol=1e-12)


def test_predict_again_runs_nothing_and_other_data_replaces_the_scores(run):
    """Runs last in this module: it replaces the scores the tests above read."""
    work, table, configs, env = run
    out = work / OUT
    predict = ["Predict", "--local-scheduler", "--models", "models", "--config", json.dumps(list(configs.values())),
               "--key", '["row_id"]', "--out", OUT]
    again = run_luigi([*predict, "--data", "data.parquet"], cwd=work, timeout=560, **env)
    assert again.returncode == 0 and len(_predict_logs(work)) == 1, (again.stdout + again.stderr)[-3000:]
    pq.write_table(table.slice(0, 100), work / "other.parquet")
    rescored = run_luigi([*predict, "--data", "other.parquet"], cwd=work, timeout=560, **env)
    assert rescored.returncode == 0, (rescored.stdout + rescored.stderr)[-3000:]
    assert pq.read_table(out).num_rows == 100 and len(_predict_logs(work)) == 2
    assert sorted(p.name for p in out.parent.iterdir()) == ["all labels"]  # the old scores are gone, nothing aside


def _predict_logs(work):
    return sorted((work / "logs" / "predict").rglob("*-spark-submit.log"))
