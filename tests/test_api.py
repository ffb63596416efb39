"""The notebook API (pipeline.api) on real spark-submit in local mode: train_all,
load_artifact, run_scripts and what their reports say. Tiny data, at most 2 workers;
one trained models folder is shared by the module."""

from __future__ import annotations

import math
import textwrap

import pyarrow.parquet as pq
import pytest

from pipeline import api
from pipeline.flows.demo import make_demo_frame

pytestmark = pytest.mark.spark

LABELS = ["label_00", "label_01"]
PARAMS = {"num_iterations": 10}

SCRIPT = textwrap.dedent('''
    import sys
    from pyspark.sql import SparkSession

    out, rows = sys.argv[1], int(sys.argv[2])
    spark = SparkSession.builder.getOrCreate()
    spark.range(rows).write.parquet(out)
    spark.stop()
''')


def spark_logs(log_dir):
    return sorted(log_dir.rglob("*-spark-submit.log"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two labels trained once by train_all; the tests share the models folder."""
    work = tmp_path_factory.mktemp("api")
    # 1,000 rows: label_01's 2 % are 20 positives, above [fanout] min_positives in the training rows
    table = make_demo_frame(rows=1000, features=3, labels=2, seed=5)
    data = work / "data.parquet"
    data.mkdir()
    pq.write_table(table, data / "part-00000.parquet")
    (data / "_SUCCESS").touch()
    settings = {"data": str(data), "models": str(work / "models"), "params": PARAMS, "log_dir": str(work / "logs")}
    report = api.train_all(workers=2, **settings)
    return {"work": work, "table": table, "settings": settings, "report": report}


def test_train_all_returns_one_trained_row_per_label(trained):
    report = trained["report"]
    assert report.ok, report.table()
    assert [(r["label"], r["status"]) for r in report.rows] == [(label, "trained") for label in LABELS]
    assert report.failed() == []
    assert list(report.to_pandas()["status"]) == ["trained", "trained"]


def test_a_second_call_runs_no_job_and_says_done_earlier(trained):
    logs_before = spark_logs(trained["work"] / "logs")
    report = api.train_all(workers=2, **trained["settings"])
    assert report.ok, report.table()
    assert [(r["label"], r["status"]) for r in report.rows] == [(label, "done earlier") for label in LABELS]
    assert spark_logs(trained["work"] / "logs") == logs_before


def test_load_artifact_gives_a_booster_that_predicts_probabilities(trained):
    models = trained["settings"]["models"]
    artifact = api.load_artifact(models, "label_00")
    assert artifact["metadata"]["label"] == "label_00"
    [config_folder] = [p.name for p in (trained["work"] / "models").iterdir() if p.is_dir()]
    assert artifact["config"] == config_folder
    features = artifact["metadata"]["features"]
    assert features == ["f000", "f001", "f002"]
    rows = trained["table"].select(features).slice(0, 5).to_pandas()
    predictions = artifact["booster"].predict(rows.to_numpy())
    assert len(predictions) == 5
    assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in predictions)


def test_load_artifact_of_an_untrained_label_raises(trained):
    with pytest.raises(FileNotFoundError, match="label_zz"):
        api.load_artifact(trained["settings"]["models"], "label_zz")


def test_a_bad_label_is_a_failed_row_with_a_one_line_error(trained):
    report = api.train_all(workers=2, **{**trained["settings"], "labels": ["label_00", "nope"]})
    assert not report.ok
    assert [(r["label"], r["status"]) for r in report.rows] == [("label_00", "done earlier"), ("nope", "failed")]
    [failed] = report.failed()
    assert failed["label"] == "nope"
    assert "'nope' is not a column of" in failed["detail"] and "\n" not in failed["detail"]


def test_run_scripts_runs_each_job_of_a_list(tmp_path):
    script = tmp_path / "write range.py"
    script.write_text(SCRIPT, encoding="utf-8")
    jobs = [{"name": name, "args": ["{output}", str(n)], "output": str(tmp_path / "out" / name)}
            for name, n in (("small", 3), ("big", 6))]
    report = api.run_scripts(str(script), jobs, workers=2, log_dir=str(tmp_path / "logs"))
    assert report.ok, report.table()
    assert [(r["label"], r["status"]) for r in report.rows] == [("small", "succeeded"), ("big", "succeeded")]
    assert report.failed() == []
    for name, n in (("small", 3), ("big", 6)):
        assert (tmp_path / "out" / name / "_SUCCESS").is_file()
        assert pq.read_table(tmp_path / "out" / name).num_rows == n
    assert not list((tmp_path / "logs" / "api-jobs").glob("*.json"))  # the temporary jobs file is gone
