"""Artifacts are keyed by what they compute: every setting that changes a model."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from pipeline.api import load_artifact
from pipeline.data.artifacts import CONFIG_FILE, config_id, training_config
from pipeline.flows.demo import make_demo_frame
from pipeline.flows.train import TrainModel
from tests.spark_helpers import run_luigi

BASE = dict(engine="lightgbm", params={"num_iterations": 100}, features=["f0", "f1"], balance_ratio=1.0,
            test_fraction=0.2, seed=42, data="file:///d")


@pytest.mark.parametrize("change", [
    {"engine": "mllib-gbt"}, {"params": {"num_iterations": 101}}, {"features": ["f0"]}, {"features": ["f1", "f0"]},
    {"balance_ratio": 0.0}, {"test_fraction": 0.3}, {"seed": 7}, {"data": "file:///e"},
])
def test_any_setting_that_changes_the_model_changes_the_configuration(change):
    assert config_id(training_config(**{**BASE, **change})) != config_id(training_config(**BASE))


def test_the_configuration_id_is_stable_and_readable():
    cid = config_id(training_config(**BASE))
    assert cid == config_id(training_config(**dict(BASE)))
    assert cid.startswith("lightgbm-") and len(cid) == len("lightgbm-") + 8


def test_a_default_spelled_out_is_the_same_configuration(tmp_path):
    pq.write_table(make_demo_frame(rows=20, features=1, labels=1, seed=5), tmp_path / "d")

    def task(params):
        return TrainModel(label="label_00", data=str(tmp_path / "d"), models=str(tmp_path / "m"), params=params,
                          features=["f000"])
    assert task({}).config_name == task({"num_iterations": task({}).check_training_parameters()["num_iterations"]}).config_name
    assert task({}).config_name != task({"learning_rate": 0.5}).config_name


def test_luigid_shows_label_and_configuration_first_and_never_the_feature_list(tmp_path):
    task = TrainModel(label="label_00", config="lightgbm-0123abcd", data=str(tmp_path / "d"), models="m",
                      features=[f"f{i:03d}" for i in range(200)])
    public = list(task.to_str_params(only_public=True))
    assert public[:2] == ["label", "config"]
    assert not {"features", "label_prefix", "log_dir", "run_id"} & set(public)
    other = TrainModel(label="label_00", config="lightgbm-99999999", data=str(tmp_path / "d"), models="m",
                       features=["f000"])
    assert task.task_id != other.task_id  # the configuration keeps tasks of other settings apart


@pytest.mark.spark
def test_other_params_train_beside_and_a_rerun_of_either_runs_nothing(tmp_path):
    pq.write_table(make_demo_frame(rows=400, features=3, labels=1, seed=5), tmp_path / "d.parquet")
    common = ["TrainAll", "--local-scheduler", "--data", "d.parquet", "--models", "models"]
    few, more = '{"num_iterations": 5}', '{"num_iterations": 9}'
    first = run_luigi([*common, "--params", few], cwd=tmp_path)
    second = run_luigi([*common, "--params", more], cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, (first.stderr + second.stderr)[-3000:]
    configs = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert len(configs) == 2 and all(c.startswith("lightgbm-") for c in configs)
    trained = {json.loads((tmp_path / "models" / c / CONFIG_FILE).read_text())["params"]["num_iterations"]: c
               for c in configs}
    assert set(trained) == {5, 9}
    for iterations, config in trained.items():
        meta = load_artifact(str(tmp_path / "models"), "label_00", config=config)["metadata"]
        assert meta["params"]["num_iterations"] == iterations
    with pytest.raises(FileNotFoundError, match="holds 2 configurations"):
        load_artifact(str(tmp_path / "models"), "label_00")
    logs_before = sorted((tmp_path / "logs").rglob("*-spark-submit.log"))
    for params in (few, more):
        again = run_luigi([*common, "--params", params], cwd=tmp_path)
        assert again.returncode == 0 and "1 complete, 0 to train" in again.stderr + again.stdout
    assert sorted((tmp_path / "logs").rglob("*-spark-submit.log")) == logs_before

    # The data rebuilt in place (more rows, another seed): a new configuration trains on it.
    pq.write_table(make_demo_frame(rows=600, features=3, labels=1, seed=6), tmp_path / "d.parquet")
    rebuilt = run_luigi([*common, "--params", few], cwd=tmp_path)
    assert rebuilt.returncode == 0 and "0 complete, 1 to train" in rebuilt.stderr + rebuilt.stdout, rebuilt.stderr[-3000:]
    configs = {c.name for c in (tmp_path / "models").iterdir()}
    [new] = configs - set(trained.values())
    fingerprint = json.loads((tmp_path / "models" / new / CONFIG_FILE).read_text())["data_fingerprint"]
    assert fingerprint["bytes"] == (tmp_path / "d.parquet").stat().st_size
    meta = load_artifact(str(tmp_path / "models"), "label_00", config=new)["metadata"]
    assert meta["rows"]["total"] == 600 and meta["config"] == new
    old = load_artifact(str(tmp_path / "models"), "label_00", config=trained[5])["metadata"]
    assert old["rows"]["total"] == 400  # the model of the old data stays, beside the new one
