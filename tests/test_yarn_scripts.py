"""RunScripts on the YARN cluster-mode path against recorded real outputs: spark-submit's
stderr (tests/fake_bin/spark-submit replaying it), the ResourceManager REST API (replay
server), `yarn logs` (fake yarn), with the jobs' outputs on WebHDFS (test server).

The recorded runs cannot write this test's outputs, so a hook plays the part of the
script: when the RM reports an application SUCCEEDED, it puts ``_SUCCESS`` into the
folder the job was told to write to, read from the spark-submit argv the fake saved."""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from urllib.parse import urlsplit

import luigi
import pytest

from pipeline import api
from pipeline.data import results
from pipeline.data.labels import label_slug
from pipeline.flows.scripts import RESULT_GROUP, RunScript, RunScripts
from tests.replay import fixture_bytes
from tests.test_yarn_cluster_path import FAILED, SUCCEEDED
from tests.test_yarn_cluster_path import cluster as cluster  # noqa: F401 - the shared pytest fixture

# Each job replays one recorded cluster-mode run: (spark-submit stderr, its exit code).
RECORDED = {"a": ("spark-submit-succeeded.stderr", 0), "b": ("spark-submit-failed.stderr", 1)}


@pytest.fixture
def scripts(cluster, tmp_path, monkeypatch):  # noqa: F811 - the imported fixture
    """Jobs a (its application SUCCEEDED) and b (FAILED) writing to WebHDFS; every
    spark-submit call leaves its argv in ``argv/<job>-<n>.json``."""
    script = tmp_path / "my job.py"
    script.write_text("raise SystemExit('never run: spark-submit is the recorded fake')\n", encoding="utf-8")
    base = cluster["models"].rsplit("/", 1)[0]  # webhdfs://127.0.0.1:<port>
    cluster["hdfs"].put_dir("/out")
    entries = [{"name": name, "args": ["{name}", "{output}", "5"], "output": f"{base}/out/{name}"} for name in RECORDED]
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps(entries), encoding="utf-8")
    argv_dir = tmp_path / "argv"
    argv_dir.mkdir()
    calls: Counter[str] = Counter()
    environment = RunScript.program_environment

    def per_job_fake(self):
        env = environment(self)
        calls[self.job] += 1
        stderr, rc = RECORDED[self.job]
        env.update(FAKE_SPARK_SUBMIT_STDERR=stderr, FAKE_SPARK_SUBMIT_RC=str(rc), FAKE_SPARK_SUBMIT_SLEEP="0",
                   FAKE_SPARK_SUBMIT_ARGV=str(argv_dir / f"{self.job}-{calls[self.job]}.json"))
        return env

    publish = RunScript.after_success

    def job_wrote_its_output(self):  # the application SUCCEEDED: the real script's DataFrame writer committed _SUCCESS last
        argv = json.loads(sorted(argv_dir.glob(f"{self.job}-*.json"))[-1].read_text())
        target = urlsplit(argv[argv.index(str(script)) + 2])
        assert target.scheme == "webhdfs", argv
        cluster["hdfs"].put_file(posixpath.join(target.path, "part-00000.parquet"), b"PAR1")
        cluster["hdfs"].put_file(posixpath.join(target.path, "_SUCCESS"))
        publish(self)

    monkeypatch.setattr(RunScript, "program_environment", per_job_fake)
    monkeypatch.setattr(RunScript, "after_success", job_wrote_its_output)
    return {**cluster, "script": script, "jobs": jobs, "base": base, "argv_dir": argv_dir}


def _argv(c, job):
    files = sorted(c["argv_dir"].glob(f"{job}-*.json"))
    assert len(files) == 1, f"{job}: {len(files)} spark-submit calls, expected one"
    return json.loads(files[0].read_text())


def _run(c, run_id="first"):
    """One controller run (its own run id, as a new ``luigi`` process has)."""
    task = RunScripts(script=str(c["script"]), jobs=str(c["jobs"]), log_dir=str(c["logs"]), run_id=run_id)
    ok = luigi.build([task], local_scheduler=True, workers=1, log_level="ERROR")
    return ok, task


def test_each_job_is_one_tagged_cluster_submission_writing_a_temporary_sibling(scripts):
    ok, task = _run(scripts)
    assert not ok  # b failed
    job_a, job_b = sorted(task.requires(), key=lambda t: t.job)
    argv = _argv(scripts, "a")
    assert argv[argv.index("--master") + 1] == "yarn"
    assert argv[argv.index("--deploy-mode") + 1] == "cluster"
    conf = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--conf")
    assert conf["spark.yarn.tags"] == job_a.tag and job_a.tag.startswith("fanout-")
    assert conf["spark.yarn.maxAppAttempts"] == "1"
    script_at = argv.index(str(scripts["script"]))
    temp = job_a.temp_location
    assert temp.uri().startswith(f"{scripts['base']}/out/.tmp-")
    assert argv[script_at + 1:] == ["a", temp.uri(), "5"]
    assert _argv(scripts, "b")[-3:] == ["b", job_b.temp_location.uri(), "5"]
    assert job_b.tag != job_a.tag


def test_the_output_is_renamed_into_place_and_the_failed_job_fails_alone(scripts):
    ok, task = _run(scripts)
    assert not ok
    paths = scripts["hdfs"].paths()
    assert "/out/a/_SUCCESS" in paths and "/out/a/part-00000.parquet" in paths
    assert not [p for p in paths if p.startswith("/out/.tmp-a")], paths  # renamed, not copied
    assert not [p for p in paths if p.startswith("/out/b")], paths
    a = results.latest(str(scripts["logs"]), "a", RESULT_GROUP)
    assert a.status == "succeeded" and a.application_id == SUCCEEDED
    assert a.artifact == f"{scripts['base']}/out/a"
    b = results.latest(str(scripts["logs"]), "b", RESULT_GROUP)
    log_file = scripts["yarn_logs"] / f"{label_slug('b')}-{FAILED}.log"
    assert log_file.read_bytes() == fixture_bytes("yarn/yarn-logs-FAILED.txt")
    assert b.status == "failed" and b.application_id == FAILED
    assert FAILED in b.error and str(log_file) in b.error and "\n" not in b.error
    rows = {r["label"]: r["status"] for r in task.summary_rows()}
    assert rows == {"a": "succeeded", "b": "failed"}


def test_a_rerun_submits_only_the_failed_job(scripts):
    _run(scripts)
    first = sorted(p.name for p in scripts["argv_dir"].iterdir())
    ok, task = _run(scripts, run_id="second")
    assert not ok
    added = sorted(set(p.name for p in scripts["argv_dir"].iterdir()) - set(first))
    assert first == ["a-1.json", "b-1.json"] and added == ["b-2.json"]
    assert {r["label"]: r["status"] for r in task.summary_rows()} == {"a": "done earlier", "b": "failed"}


def test_run_scripts_api_reports_each_job_on_yarn(scripts):
    entries = json.loads(scripts["jobs"].read_text())
    report = api.run_scripts(str(scripts["script"]), entries, workers=1, log_dir=str(scripts["logs"]))
    assert not report.ok
    assert [(r["label"], r["status"]) for r in report.rows] == [("a", "succeeded"), ("b", "failed")]
    [failed] = report.failed()
    assert failed["label"] == "b" and FAILED in failed["detail"] and "\n" not in failed["detail"]
    assert not (scripts["logs"] / "api-jobs").exists() or not list((scripts["logs"] / "api-jobs").iterdir())
