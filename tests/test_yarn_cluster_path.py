"""TrainModel's YARN cluster-mode path, end to end against recorded real outputs:
spark-submit's stderr (a fake replaying it), the ResourceManager REST API (replay
server), `yarn logs` (fake yarn), with data and artifacts on WebHDFS (test server)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import threading
from pathlib import Path

import luigi
import pyarrow.parquet as pq
import pytest

from pipeline.cluster.yarn import ApplicationReport
from pipeline.data.labels import label_slug
from pipeline.flows.demo import make_demo_frame
from pipeline.flows.train import TrainModel
from pipeline.runner import results
from pipeline.storage.webhdfs import clear_webhdfs_cache
from tests.replay import ReplayServer, Reply, fixture_bytes
from tests.webhdfs_server import WebHdfsServer

FAKE_BIN = Path(__file__).resolve().parent / "fake_bin"
APPS = "/ws/v1/cluster/apps"
SUCCEEDED, FAILED, KILLED = (f"application_1795461516199_{n}" for n in ("0005", "0006", "0008"))


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    config = luigi.configuration.get_config()
    saved = {s: dict(config.items(s)) if config.has_section(s) else None for s in ("spark", "yarn")}
    with WebHdfsServer() as hdfs, ReplayServer() as rm:
        table = make_demo_frame(rows=100, features=3, labels=1, seed=3)
        buf = io.BytesIO()
        pq.write_table(table, buf)
        hdfs.put_dir("/data/d.parquet")
        hdfs.put_file("/data/d.parquet/part-00000.parquet", buf.getvalue())
        hdfs.put_dir("/models")
        for app, name in ((SUCCEEDED, "SUCCEEDED"), (FAILED, "FAILED"), (KILLED, "KILLED")):
            rm.route_fixture("GET", f"{APPS}/{app}", f"yarn/rm-rest-app-{name}.json")
        rm.route_fixture("GET", f"{APPS}/application_1795461516199_0010", "yarn/rm-rest-app-unknown-id.txt")
        rm.route_fixture("GET", APPS, "yarn/rm-rest-apps-states-FAILED.json")  # the recorded empty answer
        killed_state = b'{"state":"KILLED"}'  # as recorded after the kill in yarn-application-kill.txt
        assert killed_state in fixture_bytes("yarn/yarn-application-kill.txt")
        rm.route("PUT", f"{APPS}/{KILLED}/state", Reply(200, killed_state))
        for section, values in (
            ("spark", {"master": "yarn", "deploy_mode": "cluster", "spark_submit": str(FAKE_BIN / "spark-submit")}),
            ("yarn", {"rm_address": rm.url, "yarn_bin": str(FAKE_BIN / "yarn"), "wait_app_completion": "true",
                      "log_dir": str(tmp_path / "yarn-logs"), "poll_interval": "0.1"}),
        ):
            for key, value in values.items():
                config.set(section, key, value)
        monkeypatch.setenv("FAKE_SPARK_SUBMIT_ARGV", str(tmp_path / "argv.json"))
        clear_webhdfs_cache()
        base = f"webhdfs://127.0.0.1:{hdfs.port}"
        yield {"hdfs": hdfs, "rm": rm, "data": f"{base}/data/d.parquet", "models": f"{base}/models",
               "logs": tmp_path / "logs", "argv": tmp_path / "argv.json", "yarn_logs": tmp_path / "yarn-logs"}
    for section, values in saved.items():
        config.remove_section(section) if config.has_section(section) else None
        if values is not None:
            config.add_section(section)
            for key, value in values.items():
                config.set(section, key, value)


def _task(c, label="label_00"):
    return TrainModel(label=label, data=c["data"], models=c["models"], log_dir=str(c["logs"]))


def _fake(monkeypatch, stderr: str, rc: int, sleep: float = 0) -> None:
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_STDERR", stderr)
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_RC", str(rc))
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_SLEEP", str(sleep))


def test_success_is_confirmed_with_the_resource_manager(cluster, monkeypatch):
    _fake(monkeypatch, "spark-submit-succeeded.stderr", 0)
    task = _task(cluster)
    slug = label_slug("label_00")
    original = TrainModel._check_final_status

    def job_wrote_artifact(self, report):
        # the real job writes its artifact on HDFS while it runs; the recorded run cannot
        artifact = self.output().location.path  # <models>/<configuration>/<slug>
        assert artifact.endswith(f"/{slug}")
        cluster["hdfs"].put_dir(artifact)
        cluster["hdfs"].put_file(f"{artifact}/_COMPLETE", b"{}")
        original(self, report)

    monkeypatch.setattr(TrainModel, "_check_final_status", job_wrote_artifact)
    assert luigi.build([task], local_scheduler=True, log_level="ERROR")
    result = results.latest(str(cluster["logs"]), "label_00")
    assert result.status == "trained" and result.application_id == SUCCEEDED
    # one tag lookup (nothing to re-attach to) and one report after spark-submit ended
    assert result.rm_requests == 2
    argv = json.loads(cluster["argv"].read_text())
    conf = {argv[i + 1].split("=", 1)[0]: argv[i + 1].split("=", 1)[1] for i, a in enumerate(argv) if a == "--conf"}
    assert conf["spark.yarn.tags"] == task.tag and task.tag.startswith("fanout-")
    assert conf["spark.yarn.maxAppAttempts"] == "1"
    assert argv[argv.index("--deploy-mode") + 1] == "cluster"


def test_failed_application_fetches_logs_and_names_them(cluster, monkeypatch):
    _fake(monkeypatch, "spark-submit-failed.stderr", 1)
    assert not luigi.build([_task(cluster)], local_scheduler=True, log_level="ERROR")
    result = results.latest(str(cluster["logs"]), "label_00")
    log_file = cluster["yarn_logs"] / f"{label_slug('label_00')}-{FAILED}.log"
    assert log_file.read_bytes() == fixture_bytes("yarn/yarn-logs-FAILED.txt")
    assert result.status == "failed" and str(log_file) in result.error
    assert FAILED in result.error and "\n" not in result.error


def test_detached_submission_takes_the_id_from_the_output(cluster, monkeypatch):
    luigi.configuration.get_config().set("yarn", "wait_app_completion", "false")
    _fake(monkeypatch, "spark-submit-nowait.stderr", 0)
    assert not luigi.build([_task(cluster)], local_scheduler=True, log_level="ERROR")
    argv = json.loads(cluster["argv"].read_text())
    assert "spark.yarn.submit.waitAppCompletion=false" in argv
    result = results.latest(str(cluster["logs"]), "label_00")
    # the recorded RM does not know this id: the error says so and what to do
    assert result.application_id == "application_1795461516199_0010"
    assert "does not know application_1795461516199_0010" in result.error


def test_interrupt_kills_the_yarn_application(cluster, monkeypatch):
    _fake(monkeypatch, "spark-submit-killed.stderr", 1, sleep=30)
    task = _task(cluster)
    submitted = threading.Event()
    original = TrainModel._on_report

    def spy(self, report):
        original(self, report)
        submitted.set()

    monkeypatch.setattr(TrainModel, "_on_report", spy)
    timer = threading.Thread(target=lambda: submitted.wait(20) and os.kill(os.getpid(), signal.SIGTERM), daemon=True)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        luigi.build([task], local_scheduler=True, log_level="ERROR")
    kills = [r for r in cluster["rm"].requests if r.method == "PUT"]
    assert [(r.path, json.loads(r.body)) for r in kills] == [(f"{APPS}/{KILLED}/state", {"state": "KILLED"})]
    result = results.latest(str(cluster["logs"]), "label_00")
    assert result.status == "interrupted" and result.killed_application_id == KILLED


def test_local_artifact_root_is_refused_in_cluster_mode(cluster, tmp_path):
    task = TrainModel(label="label_00", data=cluster["data"], models=str(tmp_path / "m"), log_dir=str(cluster["logs"]))
    assert not luigi.build([task], local_scheduler=True, log_level="ERROR")
    assert "is a local path but the job runs on YARN nodes: use an hdfs:// path" in results.latest(str(cluster["logs"]), "label_00").error


def test_rerun_reattaches_to_a_live_application_instead_of_submitting(cluster, monkeypatch):
    recorded = ApplicationReport.from_rest(json.loads(fixture_bytes("yarn/rm-rest-app-SUCCEEDED.json"))["app"])
    running = dataclasses.replace(recorded, state="RUNNING", final_status="UNDEFINED", progress=10.0)

    class LiveCluster:
        """RM answers in the recorded report's shape: RUNNING by tag, then FINISHED."""

        request_count = 0

        def applications_by_tag(self, tag):
            self.request_count += 1
            return [running]

        def application(self, app_id):
            self.request_count += 1
            return recorded

    task = _task(cluster)
    task._rm = LiveCluster()
    task._application_id = None
    report = task._reattach(deadline=None)
    assert report == recorded and task._application_id == SUCCEEDED
    assert not cluster["argv"].exists(), "nothing was submitted"


def test_the_jobs_own_error_line_is_found_in_yarn_logs():
    from pipeline.runner.job import _job_error_in
    from tasks.jobspec import format_event

    lines = ["26/11/23 19:27:01 INFO SparkContext: Running Spark version 3.5.7",
             format_event("error", label="a", message="label 'a' has only class 0 (10 rows): nothing to learn"),
             "Traceback (most recent call last):", "SystemExit: 3"]
    assert _job_error_in(lines) == "label 'a' has only class 0 (10 rows): nothing to learn"
    assert _job_error_in(fixture_bytes("yarn/yarn-logs-FAILED.txt").decode().splitlines()) is None
