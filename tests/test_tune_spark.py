"""TuneAll end to end with real spark-submit in local mode (local[1], at most 2 workers)."""

from __future__ import annotations

import csv
import json
import signal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data.labels import label_slug
from pipeline.flows.demo import make_demo_frame
from tests.spark_helpers import run_luigi, start_luigi, stop, wait_for

pytestmark = pytest.mark.spark

LABELS = ["label_00", "label_01"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """label_00 a noisy logistic function of the features (a linear model's ground),
    label_01 the sign of f000 * f001 (an interaction no linear model sees)."""
    folder = tmp_path_factory.mktemp("data") / "tune.parquet"
    table = make_demo_frame(rows=2000, features=5, labels=2, seed=3)
    f0, f1 = table.column("f000").to_numpy(), table.column("f001").to_numpy()
    flip = np.random.default_rng(4).random(table.num_rows) < 0.1
    xor = ((f0 * f1 > 0) ^ flip).astype("int32")
    table = table.set_column(table.schema.get_field_index("label_01"), "label_01", pa.array(xor))
    table = table.append_column("row_id", pa.array(np.arange(table.num_rows), pa.int64()))
    pq.write_table(table, folder)
    return folder


def _space(tmp_path, doc, name: str = "space.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def test_grid_over_two_engines_then_predict_of_the_mixed_winners_then_per_label_studies(tmp_path, dataset):
    space = _space(tmp_path, {"lightgbm": {"num_iterations": [20], "learning_rate": [0.05], "num_leaves": [4]},
                              "mllib-logreg": {"max_iter": [10]}})
    args = ["TuneAll", "--space", space, "--search", "grid", "--workers", "2", "--local-scheduler",
            "--data", str(dataset), "--models", "models", "--labels", json.dumps(LABELS)]
    proc = run_luigi(args, cwd=tmp_path, timeout=560)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    board = json.loads((tmp_path / "models" / "leaderboard.json").read_text())
    rows = board["rows"]
    assert len(rows) == 4
    assert sorted((r["label"], r["engine"]) for r in rows) == sorted((la, e) for la in LABELS for e in ("lightgbm", "mllib-logreg"))
    # a trial's two labels trained in one job: two spark-submits for four (trial, label) pairs
    assert len(list((tmp_path / "logs").rglob("*-spark-submit.log"))) == 2
    for label in LABELS:
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["rank"])
        assert [r["rank"] for r in mine] == [1, 2] and {r["study"] for r in mine} == {"shared"}
        assert mine[0]["metrics"]["auc_roc"] >= mine[1]["metrics"]["auc_roc"] > 0.4
        # both engines were judged on the same held-out rows
        assert len({(r["metrics"]["rows_validation"], r["metrics"]["positives_validation"]) for r in mine}) == 1
    # the linear model wins the linear label, the trees the interaction
    winners = {r["label"]: r["engine"] for r in rows if r["rank"] == 1}
    assert winners == {"label_00": "mllib-logreg", "label_01": "lightgbm"}, rows
    for r in rows:
        m = r["metrics"]
        assert 0 < m["average_precision"] <= 1 and 0 < m["brier"] < 0.3
        assert m["positives_validation"] > 0 and m["positives_train"] > 0 and 0 < m["f1"] <= 1
        artifact = tmp_path / "models" / r["config"] / r["artifact"].rsplit("/", 1)[1]
        meta = json.loads((artifact / "metadata.json").read_text())
        assert meta["metrics"] == m and meta["engine"] == r["engine"]
        curves = json.loads((artifact / "curves.json").read_text())
        assert len(curves["roc"]["fpr"]) > 10 and curves["pr"]["precision"][-1] == 1.0
    with open(tmp_path / "models" / "leaderboard.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 4

    # Predict the leaderboard's winners, an MLlib model and a LightGBM booster, in one job
    scored = run_luigi(["Predict", "--local-scheduler", "--data", str(dataset), "--models", "models", "--key", "row_id",
                        "--out", "scores"], cwd=tmp_path, timeout=560)
    assert scored.returncode == 0, (scored.stdout + scored.stderr)[-3000:]
    assert len(list((tmp_path / "logs" / "predict").rglob("*-spark-submit.log"))) == 1
    scores = pq.read_table(tmp_path / "scores").to_pandas().sort_values("row_id").reset_index(drop=True)
    assert list(scores.columns) == ["row_id", *LABELS]
    frame = pq.read_table(dataset).to_pandas().sort_values("row_id").reset_index(drop=True)
    best = {r["label"]: tmp_path / "models" / r["config"] / label_slug(r["label"]) for r in rows if r["rank"] == 1}
    features = json.loads((best["label_00"] / "metadata.json").read_text())["features"]
    x = frame[features].to_numpy(dtype="float64")
    weights, intercept = _logistic_regression(best["label_00"] / "spark-model")
    np.testing.assert_allclose(scores["label_00"], 1 / (1 + np.exp(-(x @ weights + intercept))), rtol=1e-9, atol=1e-12)
    import lightgbm

    booster = lightgbm.Booster(model_str=(best["label_01"] / "model.txt").read_text())
    np.testing.assert_allclose(scores["label_01"], booster.predict(x), rtol=1e-12, atol=1e-12)
    used = {m["label"]: m["engine"] for m in json.loads((tmp_path / "scores" / "_models.json").read_text())}
    assert used == winners
    # a rerun trains nothing: the search is complete
    submits = sorted((tmp_path / "logs").rglob("*-spark-submit.log"))
    again = run_luigi(args, cwd=tmp_path)
    assert again.returncode == 0, (again.stdout + again.stderr)[-2000:]
    assert sorted((tmp_path / "logs").rglob("*-spark-submit.log")) == submits  # no job started
    # the notebook API returns the same leaderboard as a DataFrame (nothing left to train)
    from pipeline.api import tune

    frame = tune(json.loads((tmp_path / "space.json").read_text()), data=str(dataset), models=str(tmp_path / "models"),
                 labels=LABELS, workers=1, log_dir=str(tmp_path / "logs"))
    assert frame.attrs["ok"] and len(frame) == 4
    assert sorted(frame["auc_roc"]) == sorted(r["metrics"]["auc_roc"] for r in rows)
    assert set(frame.columns) >= {"label", "rank", "engine", "params", "average_precision", "duration", "artifact"}

    # --study per-label: one Optuna study per label, each told its own label's metric. Its one
    # trial per label is the LightGBM configuration trained above (already complete: no job
    # starts), so this shares the grid's Spark runs.
    lightgbm_auc = {r["label"]: r["metrics"]["auc_roc"] for r in rows if r["engine"] == "lightgbm"}
    assert lightgbm_auc["label_00"] != lightgbm_auc["label_01"]  # a mean of the two would show
    one = _space(tmp_path, {"lightgbm": {"num_iterations": [20], "learning_rate": [0.05], "num_leaves": [4]}}, "one.json")
    per_label = run_luigi(["TuneAll", "--space", one, "--search", "optuna", "--study", "per-label", "--trials", "1",
                           "--workers", "2", "--local-scheduler", "--data", str(dataset), "--models", "models",
                           "--labels", json.dumps(LABELS)], cwd=tmp_path, timeout=560)
    assert per_label.returncode == 0, (per_label.stdout + per_label.stderr)[-3000:]
    assert sorted((tmp_path / "logs").rglob("*-spark-submit.log")) == submits  # no job started
    doc = json.loads((tmp_path / "models" / "leaderboard.json").read_text())
    assert doc["search"]["study"] == "per-label"
    studied = {r["label"]: r for r in doc["rows"]}
    assert sorted(studied) == LABELS and all(studied[la]["study"] == la and studied[la]["rank"] == 1 for la in LABELS)
    import optuna

    [journal] = (tmp_path / "models" / "_tune").glob("*.journal")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert names == sorted(f"{doc['search']['id']}-{label_slug(la)}" for la in LABELS)
    for label in LABELS:
        [trial] = optuna.load_study(study_name=f"{doc['search']['id']}-{label_slug(label)}", storage=storage).trials
        assert trial.value == studied[label]["metrics"]["auc_roc"] == lightgbm_auc[label]  # its own label's metric


def _logistic_regression(spark_model):
    """Coefficients and intercept of a saved MLlib logistic regression, read from the
    model's own Parquet data (no JVM in the test)."""
    [data] = spark_model.glob("stages/*LogisticRegression*/data")
    row = pq.read_table(data).to_pylist()[0]
    return np.asarray(row["coefficientMatrix"]["values"]), row["interceptVector"]["values"][0]


def _artifact_events(logs) -> int:
    return sum(f.read_text(errors="replace").count('"event": "artifact"') for f in logs.rglob("*-spark-submit.log"))


def test_optuna_search_stopped_then_rerun_ends_with_exactly_the_trials(tmp_path, dataset):
    space = _space(tmp_path, {"lightgbm": {"num_iterations": {"low": 5, "high": 40},
                                           "learning_rate": {"low": 0.02, "high": 0.3, "log": True}}})
    args = ["TuneAll", "--space", space, "--search", "optuna", "--trials", "3", "--parallel-trials", "1", "--workers", "1",
            "--local-scheduler", "--data", str(dataset), "--models", "models", "--labels", '["label_00"]']
    models = tmp_path / "models"
    proc = start_luigi(args, cwd=tmp_path)
    try:
        # stop while the second trial's job runs: the first is published, the second's job has started
        def second_running() -> bool:
            return (len(list(models.glob("lightgbm-*/label-00-*/_COMPLETE"))) >= 1
                    and sum('"started"' in f.read_text(errors="replace") for f in (tmp_path / "logs").rglob("*-spark-submit.log")) >= 2)

        assert wait_for(second_running, timeout=400, interval=0.2), proc.communicate()[0][-3000:]
        stop(proc, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        stop(proc, signal.SIGKILL)
    assert proc.returncode != 0
    assert not (models / "leaderboard.json").exists()
    import optuna

    [journal] = (models / "_tune").glob("*.journal")

    def load():
        return optuna.load_study(study_name=journal.stem, storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal))))

    # the stop left one trial told and one asked whose job was killed: the rerun must resume that one
    assert sorted(t.state.name for t in load().trials) == ["COMPLETE", "RUNNING"]

    rerun = run_luigi(args, cwd=tmp_path, timeout=560)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    study = load()
    assert len(study.trials) == 3 and all(t.state.name == "COMPLETE" for t in study.trials)
    configs = {t.user_attrs["engine"] + json.dumps(t.user_attrs["params"], sort_keys=True) for t in study.trials}
    artifacts = list(models.glob("lightgbm-*/label-00-*/_COMPLETE"))
    assert len(configs) == 3 and len(artifacts) == 3  # three distinct trials, one artifact each
    assert _artifact_events(tmp_path / "logs") == 3  # each trained once, none again after the stop
    rows = json.loads((models / "leaderboard.json").read_text())["rows"]
    assert sorted(r["trial"] for r in rows) == [0, 1, 2]
    assert [r["metrics"]["auc_roc"] for r in sorted(rows, key=lambda r: r["rank"])] == \
        sorted((t.value for t in study.trials), reverse=True)
