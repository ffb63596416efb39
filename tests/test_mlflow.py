"""MLflow tracking without Spark: what a run holds, and nothing at all without the setting."""

from __future__ import annotations

import luigi
import pytest

from pipeline import tracking
from pipeline.data import results
from pipeline.flows.train import TrainModel

META = {"label": "churn 30d", "engine": "lightgbm", "params": {"num_iterations": 10, "learning_rate": 0.1},
        "balance_ratio": 1.0, "test_fraction": 0.2, "seed": 42, "features": ["a", "b"], "application_id": "application_1_0007",
        "job_seconds": 3.5, "created_at": "2026-01-01T00:00:00+00:00",
        "metrics": {"auc_roc": 0.81, "f1": 0.5, "auc_test": 0.81, "positives_validation": 7, "average_precision": None}}


def test_a_run_holds_params_metrics_and_the_tags_that_find_it_again():
    fields = tracking.run_fields("/m/lightgbm-1/churn-30d-1", META, "lightgbm-1")
    assert fields["params"] == {"param.learning_rate": "0.1", "param.num_iterations": "10", "engine": "lightgbm",
                                "balance_ratio": "1.0", "test_fraction": "0.2", "seed": "42", "features": "2"}
    assert fields["metrics"] == {"auc_roc": 0.81, "f1": 0.5, "auc_test": 0.81, "positives_validation": 7.0,
                                 "job_seconds": 3.5}  # undefined metrics (None) are left out
    tags = fields["tags"]
    assert (tags["label"], tags["configuration"], tags["application_id"]) == ("churn 30d", "lightgbm-1", "application_1_0007")
    same = tracking.run_fields("/m/lightgbm-1/churn-30d-1", dict(META), "lightgbm-1")["tags"][tracking.IDENTITY_TAG]
    retrained = tracking.run_fields("/m/lightgbm-1/churn-30d-1", {**META, "created_at": "2026-02-01"}, "lightgbm-1")
    assert tags[tracking.IDENTITY_TAG] == same != retrained["tags"][tracking.IDENTITY_TAG]


def test_without_a_tracking_uri_nothing_is_logged_or_opened(tmp_path, monkeypatch):
    def no_client(uri):
        raise AssertionError("an MLflow client was made without [mlflow] tracking_uri")

    monkeypatch.setattr(tracking, "_client", no_client)
    task = TrainModel(label="label_00", data="d.parquet", log_dir=str(tmp_path), run_id="r1", config="c")
    results.record(str(tmp_path), results.JobResult(name="label_00", status="trained", run_id="r1", artifact="/x"))
    assert luigi.configuration.get_config().get("mlflow", "tracking_uri", "") == ""
    assert tracking.log_task(task) == []


class ClientMade(Exception):
    pass


def test_with_a_tracking_uri_only_a_published_label_opens_a_client(tmp_path, monkeypatch):
    def client(uri):
        raise ClientMade(uri)

    monkeypatch.setattr(tracking, "_client", client)
    config = luigi.configuration.get_config()
    config.set("mlflow", "tracking_uri", f"file:{tmp_path / 'mlruns'}")
    try:
        task = TrainModel(label="label_00", data="d.parquet", log_dir=str(tmp_path), run_id="r1", config="c")
        results.record(str(tmp_path), results.JobResult(name="label_00", status="failed", run_id="r1"))
        assert tracking.log_task(task) == []  # nothing published, no client
        results.record(str(tmp_path), results.JobResult(name="label_00", status="trained", run_id="r1", artifact="/x"))
        with pytest.raises(ClientMade, match="mlruns"):
            tracking.log_task(task)
    finally:
        config.remove_option("mlflow", "tracking_uri")


def _get_or_create(uri: str, barrier, out) -> None:
    barrier.wait()  # every process asks at the same moment, as two jobs ending together do
    try:
        out.put(tracking._experiment(uri, "spark-fanout")[1])
    except Exception as exc:  # noqa: BLE001 - what the job's log would have said
        out.put(f"failed: {exc}")


def test_jobs_ending_together_share_one_experiment(tmp_path):
    """Task processes finding no experiment and creating one each left the file store with
    two experiments of one name (a label's run where nobody looks), or failed on the store's
    half-written default experiment (a label not logged at all)."""
    import multiprocessing

    pytest.importorskip("mlflow")
    ctx = multiprocessing.get_context("fork")
    for attempt in range(6):
        uri = f"file:{tmp_path / f'mlruns-{attempt}'}"
        barrier, out = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_get_or_create, args=(uri, barrier, out)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        ids = {out.get(timeout=5) for _ in procs}
        named = tracking._client(uri).search_experiments(filter_string="name = 'spark-fanout'")
        assert len(ids) == 1 and [e.experiment_id for e in named] == list(ids)
