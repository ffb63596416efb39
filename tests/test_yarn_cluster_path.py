"""TrainModel's YARN cluster-mode path, end to end against recorded real outputs:
spark-submit's stderr (a fake streaming it line by line), the ResourceManager REST API
(replay server, recorded headers, states that move across polls), `yarn logs` (fake
yarn), with data and artifacts on WebHDFS (test server).

Everything is observed from outside the task: what the RM and spark-submit were asked,
the status messages and tracking URLs luigid got, the result record, the logs written.

Caveat on the moving-state tests: the recordings hold no single application seen
ACCEPTED, RUNNING *and* finished. The live reports are of the ``rec-running`` jobs
(application_1795501881681_0001 ACCEPTED, then the same id RUNNING in the tag query
recorded 15 s later); no terminal report of them was recorded, so the terminal answer is
the recorded SUCCEEDED report of application_1795461516199_0005, another cluster run.
The tests therefore check states, not the id inside the terminal report.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import threading
from pathlib import Path

import luigi
import luigi.scheduler
import luigi.worker
import pyarrow.parquet as pq
import pytest

from pipeline.data import results
from pipeline.data.labels import label_slug
from pipeline.flows.demo import make_demo_frame
from pipeline.flows.train import TrainModel
from pipeline.storage.webhdfs import clear_webhdfs_cache
from tests.replay import (
    ReplayServer,
    Request,
    Step,
    Timeline,
    fixture_bytes,
    recorded_reply,
    rm_app_reply,
    rm_reply,
)
from tests.webhdfs_server import WebHdfsServer

FAKE_BIN = Path(__file__).resolve().parent / "fake_bin"
APPS = "/ws/v1/cluster/apps"
SUCCEEDED, FAILED, KILLED, NOWAIT = (f"application_1795461516199_{n}" for n in ("0005", "0006", "0008", "0010"))
LIVE = "application_1795501881681_0001"  # tagged rec-running: recorded ACCEPTED, then RUNNING
REC_TAG = "rec-running"
EMPTY = "yarn/rm-rest-apps-states-FAILED.json"  # the RM's recorded answer listing no application


# --------------------------------------------------------------------------- luigid, observed


class RecordingScheduler(luigi.scheduler.Scheduler):
    """The local scheduler, keeping every status message and tracking URL a task sent."""

    def __init__(self, on_message=None) -> None:
        super().__init__(prune_on_get_work=True, record_task_history=False)
        self.messages: list[str] = []
        self.tracking_urls: list[str] = []
        self.progress: list[int] = []
        self.on_message = on_message

    def set_task_status_message(self, task_id, status_message):
        self.messages.append(status_message)
        if self.on_message is not None:
            self.on_message(status_message)
        return super().set_task_status_message(task_id, status_message)

    def set_task_progress_percentage(self, task_id, progress_percentage):
        self.progress.append(progress_percentage)
        return super().set_task_progress_percentage(task_id, progress_percentage)

    def add_task(self, *args, **kwargs):
        if kwargs.get("tracking_url"):
            self.tracking_urls.append(kwargs["tracking_url"])
        return super().add_task(*args, **kwargs)

    def states(self) -> list[str]:
        """The state words of the messages, repeats in a row dropped."""
        words = [m.split()[0] for m in self.messages]
        return [w for i, w in enumerate(words) if i == 0 or words[i - 1] != w]


class _Factory:
    def __init__(self, scheduler: RecordingScheduler) -> None:
        self.scheduler = scheduler

    def create_local_scheduler(self):
        return self.scheduler

    def create_remote_scheduler(self, url):
        raise AssertionError("tests use the local scheduler")

    def create_worker(self, scheduler, worker_processes, assistant=False):
        return luigi.worker.Worker(scheduler=scheduler, worker_processes=worker_processes, assistant=assistant)


def build(task, scheduler: RecordingScheduler | None = None) -> tuple[bool, RecordingScheduler]:
    """Run ``task`` as ``luigi`` would; True when it succeeded."""
    sch = scheduler or RecordingScheduler()
    result = luigi.build([task], worker_scheduler_factory=_Factory(sch), local_scheduler=True,
                         log_level="ERROR", detailed_summary=True)
    return result.status.name in ("SUCCESS", "SUCCESS_WITH_RETRY"), sch


# --------------------------------------------------------------------------- the cluster


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
        rm.route_fixture("GET", f"{APPS}/{NOWAIT}", "yarn/rm-rest-app-unknown-id.txt")
        tags: dict[str, object] = {}  # applicationTags value -> Reply or Timeline; others: none

        def by_tag(req: Request):
            answer = tags.get(req.params.get("applicationTags", ""))
            if answer is None:
                return recorded_reply(EMPTY)
            return answer(req) if callable(answer) else answer

        rm.route("GET", APPS, by_tag)
        killed_state = b'{"state":"KILLED"}'  # as recorded after the kill in yarn-application-kill.txt
        assert killed_state in fixture_bytes("yarn/yarn-application-kill.txt")
        rm.route("PUT", f"{APPS}/{KILLED}/state", rm_reply(killed_state))
        for section, values in (
            ("spark", {"master": "yarn", "deploy_mode": "cluster", "spark_submit": str(FAKE_BIN / "spark-submit")}),
            ("yarn", {"rm_address": rm.url, "yarn_bin": str(FAKE_BIN / "yarn"), "wait_app_completion": "true",
                      "log_dir": str(tmp_path / "yarn-logs"), "poll_interval": "0.05", "max_poll_interval": "0.2",
                      # these tests move one application's own reports (no recorded list holds an
                      # application both live and finished); the shared poll has tests/test_yarn_shared_poll.py
                      "shared_poll": "false"}),
        ):
            for key, value in values.items():
                config.set(section, key, value)
        monkeypatch.setenv("FAKE_SPARK_SUBMIT_ARGV", str(tmp_path / "argv.json"))
        monkeypatch.setenv("FAKE_SPARK_SUBMIT_LINE_DELAY", "0.001")
        for knob in ("FAKE_SPARK_SUBMIT_PROGRESS", "FAKE_SPARK_SUBMIT_SLEEP"):
            monkeypatch.delenv(knob, raising=False)
        clear_webhdfs_cache()
        base = f"webhdfs://127.0.0.1:{hdfs.port}"
        yield {"hdfs": hdfs, "rm": rm, "tags": tags, "data": f"{base}/data/d.parquet", "models": f"{base}/models",
               "logs": tmp_path / "logs", "argv": tmp_path / "argv.json", "yarn_logs": tmp_path / "yarn-logs",
               "tmp": tmp_path}
    for section, values in saved.items():
        config.remove_section(section) if config.has_section(section) else None
        if values is not None:
            config.add_section(section)
            for key, value in values.items():
                config.set(section, key, value)


def _task(c, label="label_00", cls=TrainModel):
    return cls(label=label, data=c["data"], models=c["models"], log_dir=str(c["logs"]))


def _fake(monkeypatch, stderr: str, rc: int, sleep: float = 0) -> None:
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_STDERR", stderr)
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_RC", str(rc))
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_SLEEP", str(sleep))


def _result(c, task):
    return results.latest(str(c["logs"]), task.job_name, task.result_group)


def _job_writes_artifact(c, task):
    """What the real job does before YARN calls it finished: write the artifact on HDFS."""

    def write() -> None:
        target = task.output()
        c["hdfs"].put_dir(target.location.path)
        c["hdfs"].put_file(f"{target.location.path}/{target.marker}", b"{}")

    return write


def _live_then_succeeded(c, task, accepted: int = 2, running: int = 2) -> Timeline:
    """An application's RM answers across polls: the recorded ACCEPTED report of LIVE ``accepted``
    times, LIVE's recorded RUNNING report ``running`` times, then the recorded SUCCEEDED
    report (whose application writes the artifact as it finishes). See the module caveat."""
    return Timeline([
        Step(rm_app_reply("yarn/rm-rest-app-ACCEPTED.json", LIVE), accepted, "ACCEPTED"),
        Step(rm_app_reply("yarn/rm-rest-apps-applicationTags-rec-running-RUNNING.json", LIVE), running, "RUNNING"),
        Step(recorded_reply("yarn/rm-rest-app-SUCCEEDED.json"), 1, "SUCCEEDED", before=_job_writes_artifact(c, task)),
    ])


class RecTagged(TrainModel):
    """A TrainModel whose YARN tag is the recorded jobs' ``rec-running`` (the live
    recordings are found by that tag; a real task's tag is a hash of its id)."""

    tag = REC_TAG


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def logged(name: str = "luigi-interface"):
    """Every message logged to ``name`` meanwhile, whatever level Luigi set for it."""
    handler, logger = _Lines(), logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# --------------------------------------------------------------------------- tests


def test_success_is_confirmed_with_the_resource_manager_and_parsed_as_it_streams(cluster, monkeypatch):
    _fake(monkeypatch, "spark-submit-succeeded.stderr", 0)
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_LINE_DELAY", "0.04")
    progress = cluster["tmp"] / "progress"
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_PROGRESS", str(progress))
    task = _task(cluster)
    cluster["rm"].route("GET", f"{APPS}/{SUCCEEDED}", Timeline([
        Step(recorded_reply("yarn/rm-rest-app-SUCCEEDED.json"), before=_job_writes_artifact(cluster, task)),
    ]))
    seen_at: list[tuple[str, int]] = []  # (status message, lines spark-submit had written then)
    sch = RecordingScheduler(on_message=lambda m: seen_at.append((m, int(progress.read_text()))))
    ok, _ = build(task, sch)
    assert ok
    result = _result(cluster, task)
    assert result.status == "trained" and result.application_id == SUCCEEDED
    # one tag lookup (nothing to re-attach to) and one report after spark-submit ended
    assert result.rm_requests == 2
    assert [r.path for r in cluster["rm"].requests] == [APPS, f"{APPS}/{SUCCEEDED}"]
    assert sch.states() == ["SUBMITTED", "ACCEPTED", "RUNNING", "FINISHED"]
    assert sch.messages[-1] == f"FINISHED {SUCCEEDED} (SUCCEEDED)"
    assert f"http://localhost:8088/proxy/{SUCCEEDED}/" in sch.tracking_urls
    # each state was reported while spark-submit was still writing, right at its line
    lines = fixture_bytes("spark-submit/spark-submit-succeeded.stderr").decode().splitlines()
    submitted_line = next(i for i, line in enumerate(lines, 1) if "Submitted application" in line)
    assert seen_at[0][0] == f"SUBMITTED {SUCCEEDED}"
    assert submitted_line - 1 <= seen_at[0][1] <= submitted_line + 8  # slack for a loaded machine
    streamed = [n for m, n in seen_at if not m.startswith("FINISHED")]
    assert streamed == sorted(streamed) and streamed[-1] < len(lines) - 5
    argv = json.loads(cluster["argv"].read_text())
    conf = {argv[i + 1].split("=", 1)[0]: argv[i + 1].split("=", 1)[1] for i, a in enumerate(argv) if a == "--conf"}
    assert conf["spark.yarn.tags"] == task.tag and task.tag.startswith("fanout-")
    assert conf["spark.yarn.maxAppAttempts"] == "1"
    assert argv[argv.index("--deploy-mode") + 1] == "cluster"


def test_failed_application_fetches_logs_and_names_them(cluster, monkeypatch):
    _fake(monkeypatch, "spark-submit-failed.stderr", 1)
    task = _task(cluster)
    ok, _ = build(task)
    assert not ok
    result = _result(cluster, task)
    log_file = cluster["yarn_logs"] / f"{label_slug('label_00')}-{FAILED}.log"
    assert log_file.read_bytes() == fixture_bytes("yarn/yarn-logs-FAILED.txt")
    assert result.status == "failed" and str(log_file) in result.error
    assert FAILED in result.error and "\n" not in result.error


def test_spark_submit_without_a_kerberos_ticket_fails_in_one_line_that_says_kinit(cluster, monkeypatch):
    # the recorded stderr of spark-submit on the secured cluster without a ticket (kerberos/cli/12)
    _fake(monkeypatch, "../kerberos/cli/12-spark-submit-no-ticket.stderr-full", 1)
    task = _task(cluster)
    ok, _ = build(task)
    assert not ok
    result = _result(cluster, task)
    assert result.status == "failed" and "\n" not in result.error
    assert "spark-submit exited 1 before YARN accepted an application: no valid Kerberos ticket" in result.error
    assert "run kinit" in result.error
    # only the reattach lookup before the submission: no tag query after it (no ticket, no answer)
    assert len(cluster["rm"].requests_to(APPS)) == 1


def test_detached_submission_is_followed_from_accepted_through_running_to_succeeded(cluster, monkeypatch):
    # the default: spark.yarn.submit.waitAppCompletion=false, spark-submit returns at ACCEPTED
    luigi.configuration.get_config().remove_option("yarn", "wait_app_completion")
    _fake(monkeypatch, "spark-submit-nowait.stderr", 0)
    task = _task(cluster)
    timeline = _live_then_succeeded(cluster, task, accepted=2, running=3)
    cluster["rm"].route("GET", f"{APPS}/{NOWAIT}", timeline)
    ok, sch = build(task)
    assert ok
    assert "spark.yarn.submit.waitAppCompletion=false" in json.loads(cluster["argv"].read_text())
    # spark-submit's output says SUBMITTED and ACCEPTED; the RM polls go on from there
    assert sch.messages[:2] == [f"SUBMITTED {NOWAIT}", f"ACCEPTED {NOWAIT}"]
    assert sch.states() == ["SUBMITTED", "ACCEPTED", "RUNNING", "FINISHED"]
    assert sch.messages[-1].endswith("(SUCCEEDED)")
    assert 10 in sch.progress and sch.progress[-1] == 100  # RUNNING at 10 %, then done
    assert timeline.served == ["ACCEPTED", "ACCEPTED", "RUNNING", "RUNNING", "RUNNING", "SUCCEEDED"]
    result = _result(cluster, task)
    assert result.status == "trained"
    assert result.rm_requests == 1 + len(timeline.served)  # the tag lookup, then one request per poll


def test_detached_submission_the_rm_does_not_know(cluster, monkeypatch):
    luigi.configuration.get_config().set("yarn", "wait_app_completion", "false")
    _fake(monkeypatch, "spark-submit-nowait.stderr", 0)
    task = _task(cluster)
    ok, _ = build(task)
    assert not ok
    result = _result(cluster, task)
    # the recorded RM answers 404 for an id it does not know: the error says so and what to do
    assert result.application_id == NOWAIT
    assert f"does not know {NOWAIT}" in result.error


def test_rerun_reattaches_to_a_live_application_instead_of_submitting(cluster, monkeypatch):
    _fake(monkeypatch, "spark-submit-nowait.stderr", 0)  # what a wrong second submission would print
    task = _task(cluster, cls=RecTagged)
    # an earlier controller's job: the tag query shows it ACCEPTED (later: RUNNING) ...
    tag_query = Timeline([
        Step(recorded_reply("yarn/rm-rest-apps-applicationTags-rec-running-ACCEPTED.json"), 1, "ACCEPTED"),
        Step(recorded_reply("yarn/rm-rest-apps-applicationTags-rec-running-RUNNING.json"), 1, "RUNNING"),
    ])
    cluster["tags"][REC_TAG] = tag_query
    # ... and its own reports go ACCEPTED, RUNNING, then finished
    timeline = _live_then_succeeded(cluster, task)
    cluster["rm"].route("GET", f"{APPS}/{LIVE}", timeline)
    with logged() as lines:
        ok, sch = build(task)
    assert not cluster["argv"].exists(), "spark-submit ran although the application was live"
    assert ok
    assert tag_query.served == ["ACCEPTED"]
    assert timeline.served == ["ACCEPTED", "ACCEPTED", "RUNNING", "RUNNING", "SUCCEEDED"]
    assert sch.messages[0] == f"ACCEPTED {LIVE}"
    assert sch.states() == ["ACCEPTED", "RUNNING", "FINISHED"]
    assert f"RUNNING {LIVE}" in sch.messages and sch.messages[-1].endswith("(SUCCEEDED)")
    assert f"http://localhost:8088/proxy/{LIVE}/" in sch.tracking_urls
    assert any(f"re-attaching to {LIVE}" in line for line in lines)
    assert _result(cluster, task).status == "trained"


def test_rerun_follows_the_newest_of_several_live_applications(cluster, monkeypatch):
    _fake(monkeypatch, "spark-submit-nowait.stderr", 0)
    task = _task(cluster, cls=RecTagged)
    cluster["tags"][REC_TAG] = recorded_reply("yarn/rm-rest-apps-applicationTags-rec-running-RUNNING.json")
    newest = "application_1795501881681_0002"  # started last of the three recorded RUNNING
    timelines = {}
    for n in (1, 2, 3):
        app = f"application_1795501881681_{n:04d}"
        running = ("yarn/rm-rest-app-RUNNING.json" if app == newest
                   else "yarn/rm-rest-apps-applicationTags-rec-running-RUNNING.json")
        timelines[app] = Timeline([
            Step(rm_app_reply(running, app), 2, "RUNNING"),
            Step(recorded_reply("yarn/rm-rest-app-SUCCEEDED.json"), 1, "SUCCEEDED", before=_job_writes_artifact(cluster, task)),
        ])
        cluster["rm"].route("GET", f"{APPS}/{app}", timelines[app])
    ok, sch = build(task)
    assert not cluster["argv"].exists() and ok
    assert timelines[newest].served == ["RUNNING", "RUNNING", "SUCCEEDED"]
    assert all(not t.served for app, t in timelines.items() if app != newest)
    assert sch.messages[0] == f"RUNNING {newest}"


def test_interrupt_kills_the_yarn_application(cluster, monkeypatch):
    _fake(monkeypatch, "spark-submit-killed.stderr", 1, sleep=30)
    task = _task(cluster)
    submitted = threading.Event()
    sch = RecordingScheduler(on_message=lambda m: KILLED in m and submitted.set())
    timer = threading.Thread(target=lambda: submitted.wait(20) and os.kill(os.getpid(), signal.SIGTERM), daemon=True)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        build(task, sch)
    kills = [r for r in cluster["rm"].requests if r.method == "PUT"]
    assert [(r.path, json.loads(r.body)) for r in kills] == [(f"{APPS}/{KILLED}/state", {"state": "KILLED"})]
    result = _result(cluster, task)
    assert result.status == "interrupted" and result.killed_application_id == KILLED


def test_keytab_and_secret_conf_values_never_reach_the_logs(cluster, monkeypatch):
    config = luigi.configuration.get_config()
    config.set("yarn", "principal", "alice@EXAMPLE.COM")
    config.set("yarn", "keytab", "/secure/alice.keytab")
    secrets = ("spark.hadoop.fs.s3a.secret.key=S3CR3T-VALUE",
               "spark.driver.extraJavaOptions=-Xmx1g -Djavax.net.ssl.trustStorePassword=TRUSTPW")
    config.set("spark", "conf", "|".join([config.get("spark", "conf", "spark.ui.showConsoleProgress=false"), *secrets]))
    _fake(monkeypatch, "spark-submit-succeeded.stderr", 0)
    task = _task(cluster)
    cluster["rm"].route("GET", f"{APPS}/{SUCCEEDED}", Timeline([
        Step(recorded_reply("yarn/rm-rest-app-SUCCEEDED.json"), before=_job_writes_artifact(cluster, task)),
    ]))
    with logged() as lines:
        ok, sch = build(task)
    assert ok
    # they did reach spark-submit ...
    argv = json.loads(cluster["argv"].read_text())
    assert argv[argv.index("--keytab") + 1] == "/secure/alice.keytab"
    assert all(s in argv for s in secrets)
    # ... and the command line was logged, masked
    running = [line for line in lines if "--principal" in line]
    assert running and "--principal alice@EXAMPLE.COM" in running[0] and "--keytab ******" in running[0]
    written = "\n".join(lines + sch.messages)
    written += "".join(p.read_text(errors="replace") for p in cluster["logs"].rglob("*") if p.is_file())
    for secret in ("alice.keytab", "S3CR3T-VALUE", "TRUSTPW"):
        assert secret not in written


def test_local_artifact_root_is_refused_in_cluster_mode(cluster, tmp_path):
    task = TrainModel(label="label_00", data=cluster["data"], models=str(tmp_path / "m"), log_dir=str(cluster["logs"]))
    ok, _ = build(task)
    assert not ok
    assert "is a local path but the job runs on YARN nodes: use an hdfs:// path" in _result(cluster, task).error


def test_the_jobs_own_error_line_is_found_in_yarn_logs():
    from pipeline.runner.job_events import job_error_in
    from tasks.jobspec import format_event

    lines = ["26/11/23 19:27:01 INFO SparkContext: Running Spark version 3.5.7",
             format_event("error", label="a", message="label 'a' has only class 0 (10 rows): nothing to learn"),
             "Traceback (most recent call last):", "SystemExit: 3"]
    assert job_error_in(lines) == "label 'a' has only class 0 (10 rows): nothing to learn"
    assert job_error_in(fixture_bytes("yarn/yarn-logs-FAILED.txt").decode().splitlines()) is None
