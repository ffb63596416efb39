"""Predict end to end: real trained artifacts, one spark-submit scoring every label."""

from __future__ import annotations

import json

import lightgbm
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data.labels import label_slug
from pipeline.flows.demo import make_demo_frame
from tests.spark_helpers import config_dir, run_luigi

pytestmark = pytest.mark.spark

LABELS = ["label_00", "label_01"]
FEATURES = ["f003", "f000", "f004", "f001", "f002"]  # not the data's order: the job must map positions by name


def test_predict_columns_equal_each_boosters_own_predictions(tmp_path):
    table = make_demo_frame(rows=1500, features=5, labels=3, seed=9)  # label_01: 26 % positives
    table = table.append_column("row_id", pa.array(np.arange(table.num_rows) * 7, pa.int64()))
    data = tmp_path / "data.parquet"
    pq.write_table(table, data)
    train = run_luigi(["TrainAll", "--workers", "2", "--local-scheduler", "--data", str(data), "--models", "models",
                       "--labels", json.dumps(LABELS), "--features", json.dumps(FEATURES),
                       "--params", '{"num_iterations": 15, "bagging_fraction": 0.5, "bagging_freq": 1}'],
                      cwd=tmp_path, timeout=560)
    assert train.returncode == 0, (train.stdout + train.stderr)[-3000:]
    config = config_dir(tmp_path / "models").name
    for label in LABELS:  # parameters beyond the seven spark-fanout once knew reach the booster
        saved = lightgbm.Booster(model_str=(tmp_path / "models" / config / label_slug(label) / "model.txt").read_text()).params
        assert (saved["bagging_fraction"], saved["bagging_freq"], saved["num_iterations"]) == (0.5, 1, 15)

    proc = run_luigi(["Predict", "--local-scheduler", "--data", str(data), "--models", "models", "--config", config,
                      "--key", '["row_id"]', "--out", "scores/all labels"], cwd=tmp_path, timeout=560)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    out = tmp_path / "scores" / "all labels"
    assert (out / "_SUCCESS").is_file() and not list(out.parent.glob(".tmp-*"))
    scores = pq.read_table(out).to_pandas().sort_values("row_id").reset_index(drop=True)
    assert list(scores.columns) == ["row_id", *LABELS] and len(scores) == table.num_rows
    frame = table.to_pandas().sort_values("row_id").reset_index(drop=True)
    assert (scores["row_id"].to_numpy() == frame["row_id"].to_numpy()).all()
    for label in LABELS:
        folder = tmp_path / "models" / config / label_slug(label)
        booster = lightgbm.Booster(model_str=(folder / "model.txt").read_text())
        expected = booster.predict(frame[FEATURES].to_numpy(dtype="float64"))
        np.testing.assert_allclose(scores[label].to_numpy(), expected, rtol=1e-12, atol=1e-12)
        assert scores[label].std() > 0.05  # real, varying scores
    used = json.loads((out / "_models.json").read_text())
    assert sorted(m["label"] for m in used) == LABELS and {m["config"] for m in used} == {config}

    # The same inputs again: nothing runs. Other data into the same --out: scored anew, replaced.
    predict = ["Predict", "--local-scheduler", "--models", "models", "--config", config, "--key", '["row_id"]',
               "--out", "scores/all labels"]
    again = run_luigi([*predict, "--data", str(data)], cwd=tmp_path, timeout=560)
    assert again.returncode == 0 and len(spark_logs(tmp_path)) == 1, (again.stdout + again.stderr)[-3000:]
    other = tmp_path / "other.parquet"
    pq.write_table(table.slice(0, 100), other)
    rescored = run_luigi([*predict, "--data", str(other)], cwd=tmp_path, timeout=560)
    assert rescored.returncode == 0, (rescored.stdout + rescored.stderr)[-3000:]
    assert pq.read_table(out).num_rows == 100 and len(spark_logs(tmp_path)) == 2
    assert sorted(p.name for p in out.parent.iterdir()) == ["all labels"]  # the old scores are gone, nothing aside


def spark_logs(work):
    return sorted((work / "logs" / "predict").rglob("*-spark-submit.log"))
