"""Bad input is refused before any JVM starts, in one line, and other labels go on."""

from __future__ import annotations

import json
from pathlib import Path

import luigi
import pyarrow.parquet as pq
import pytest

from pipeline.data import results
from pipeline.errors import ConfigError, DatasetError
from pipeline.flows.demo import make_demo_frame
from pipeline.flows.train import TrainAll, TrainModel


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data.parquet"
    folder.mkdir()
    pq.write_table(make_demo_frame(rows=200, features=3, labels=2, seed=1), folder / "part-0.parquet")
    return folder


@pytest.fixture
def spark_submit_config():
    config = luigi.configuration.get_config()
    yield config
    config.remove_option("spark", "spark_submit") if config.has_option("spark", "spark_submit") else None


def _build(tasks) -> bool:
    return luigi.build(tasks, local_scheduler=True, workers=1, log_level="ERROR")


def _error(log_dir, label) -> str:
    res = results.latest(str(log_dir), label)
    assert res is not None and res.status == "failed"
    assert "\n" not in res.error
    return res.error


def _task(tmp_path, data, **kw):
    base = dict(data=str(data), models=str(tmp_path / "models"), log_dir=str(tmp_path / "logs"), label="label_00")
    base.update(kw)
    return TrainModel(**base)


@pytest.mark.parametrize("kw, fragment", [
    ({"engine": "xgbost"}, "unknown engine 'xgbost': did you mean 'xgboost'?"),
    ({"params": {"num_leaves": 1}}, "LightGBM refuses the parameters {'num_leaves': 1}: Check failed: (num_leaves) > (1)"),
    ({"params": {"nope": 1}}, "unknown parameter 'nope'"),
    ({"balance_ratio": 0.5}, "balance-ratio 0.5 is invalid"),
    ({"test_fraction": 1.5}, "test-fraction 1.5 is invalid"),
    ({"label": "missing"}, "label 'missing' is not a column"),
    ({"features": ["f000", "ghost"]}, "feature 'ghost' is not a column"),
    ({"features": ["f000", "label_00"]}, "is also in --features: remove it"),
    ({"engine": "synapseml"}, "[spark] packages=com.microsoft.azure:synapseml_2.12:1.1.3"),
])
def test_each_bad_value_fails_its_task_with_one_line(tmp_path, data, kw, fragment):
    assert _build([_task(tmp_path, data, **kw)]) is False
    label = kw.get("label", "label_00")
    assert fragment in _error(tmp_path / "logs", label)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_missing_dataset(tmp_path):
    assert _build([_task(tmp_path, tmp_path / "nope.parquet")]) is False
    assert "does not exist: create it (luigi --module pipeline MakeDemoData) or fix --data" in _error(tmp_path / "logs", "label_00")


def test_missing_spark_submit(tmp_path, data, spark_submit_config):
    spark_submit_config.set("spark", "spark_submit", str(tmp_path / "no" / "spark-submit"))
    assert _build([_task(tmp_path, data)]) is False
    assert "does not exist or is not executable: fix [spark] spark-submit" in _error(tmp_path / "logs", "label_00")


def test_bad_label_fails_alone_while_the_others_are_planned(tmp_path, data):
    task = TrainAll(data=str(data), models=str(tmp_path / "m"), labels=["label_00", "ghost", "label_01"])
    assert [t.label for t in task.requires()] == ["label_00", "ghost", "label_01"]


@pytest.mark.parametrize("labels, error, fragment", [
    ([], ConfigError, "label list is empty"),
    (["label_00", "label_00"], ConfigError, "appears twice"),
    (["customer_churn_probability_next_30_days_segment_48808", "customer_churn_probability_next_30_days_segment_103892"],
     ConfigError, "share the folder name 'customer-churn-probability-next-30-days-8fd062da'"),
])
def test_bad_label_lists_stop_the_plan(tmp_path, data, labels, error, fragment):
    with pytest.raises(error, match=fragment):
        TrainAll(data=str(data), models=str(tmp_path / "m"), labels=labels).plan  # noqa: B018


def test_trainall_on_missing_dataset_says_how_to_fix(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        TrainAll(data=str(tmp_path / "none"), models=str(tmp_path / "m")).plan  # noqa: B018


def test_default_labels_follow_the_prefix_rule(tmp_path, data):
    plan = TrainAll(data=str(data), models=str(tmp_path / "m")).plan
    assert plan["labels"] == ["label_00", "label_01"]
    assert plan["features"] == ["f000", "f001", "f002"]


def test_complete_artifacts_are_not_required_again(tmp_path, data):
    models = tmp_path / "m"
    task = TrainAll(data=str(data), models=str(models))
    done = Path(task.requires()[0].output().location.path)
    assert done.parent.parent == models and done.parent.name.startswith("lightgbm-")
    done.mkdir(parents=True)
    (done / "_COMPLETE").write_text(json.dumps({}))
    (done.parent / ".tmp-label-01-abc-123").mkdir()  # a temporary is never a result
    # a rerun is a new run (Luigi caches task instances by parameters)
    fresh = TrainAll(data=str(data), models=str(models), run_id="rerun")
    assert [t.label for t in fresh.requires()] == ["label_01"]
