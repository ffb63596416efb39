"""Pure parsing in pipeline.cluster.yarn, over every recorded YARN and spark-submit fixture."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.cluster.hadoop_conf import parse_site_xml
from pipeline.cluster.yarn import (
    MASK,
    ApplicationReport,
    SubmitOutputParser,
    YarnApplicationFailed,
    YarnApplicationKilled,
    YarnError,
    is_valid_yarn_tag,
    last_python_error,
    mask_secrets,
    next_poll_delay,
    parse_application_list,
    parse_application_status,
    parse_application_statuses,
    parse_rm_addresses,
    raise_for_outcome,
    reports_from_rest,
    submit_conf,
    yarn_tag,
)
from pipeline.errors import ConfigError, FanoutError
from tests.replay import FIXTURES, fixture_bytes, split_http_fixture

APP = "application_1795461516199_{:04d}"
PROXY = "http://localhost:8088/proxy/application_1795461516199_{:04d}/"
KILLED_URL = "http://localhost:8088/cluster/app/application_1795461516199_0008"
KILLED_DIAG = "Application application_1795461516199_0008 was killed by user root at 127.0.0.1"
EXITED_1 = "User application exited with status 1"


def text(relative: str) -> str:
    return fixture_bytes(relative).decode("utf-8")


def doc(relative: str) -> dict:
    return json.loads(fixture_bytes(relative))


# Every fixture this file or test_yarn_clients.py reads; a new recording must be added here.
# The live ones (ACCEPTED/RUNNING, tag rec-running) are also served across polls in
# test_yarn_states.py and test_yarn_cluster_path.py.
COVERED = {
    "yarn/rm-rest-app-SUCCEEDED.json",
    "yarn/rm-rest-app-FAILED.json",
    "yarn/rm-rest-app-ACCEPTED.json",
    "yarn/rm-rest-app-RUNNING.json",
    "yarn/rm-rest-apps-applicationTags-rec-running-ACCEPTED.json",
    "yarn/rm-rest-apps-applicationTags-rec-running-RUNNING.json",
    "yarn/rm-rest-app-KILLED.json",
    "yarn/rm-rest-app-unknown-id.txt",
    "yarn/rm-rest-apps.json",
    "yarn/rm-rest-apps-applicationTags-sometag.json",
    "yarn/rm-rest-apps-finalStatus-FAILED.json",
    "yarn/rm-rest-apps-states-FAILED.json",
    "yarn/rm-rest-apps-states-KILLED.json",
    "yarn/rm-rest-cluster-info.json",
    "yarn/yarn-application-kill.txt",
    "yarn/yarn-application-list-ALL.txt",
    "yarn/yarn-application-list-before.txt",
    "yarn/yarn-application-status-SUCCEEDED.txt",
    "yarn/yarn-application-status-FAILED.txt",
    "yarn/yarn-application-status-FAILED-1attempt.txt",
    "yarn/yarn-logs-FAILED.txt",
    "yarn/yarn-logs-SUCCEEDED.txt",
} | {f"spark-submit/spark-submit-{name}.stderr" for name in (
    "succeeded", "failed", "failed-1attempt", "killed", "tagged", "nowait",
    "trivial-archive-1", "trivial-archive-2", "trivial-default-1", "trivial-default-2",
)}  # fmt: skip


# Recorded answers no code of ours asks for (application attempts, cluster capacity and
# nodes): kept as the record of what the cluster said, read by no test.
RECORDED_ONLY = {
    "yarn/rm-rest-app-FAILED-appattempts.json",
    "yarn/rm-rest-cluster-metrics.json",
    "yarn/rm-rest-cluster-nodes.json",
    "yarn/yarn-applicationattempt-list-FAILED.txt",
}


def test_every_yarn_and_spark_submit_fixture_is_covered():
    on_disk = {str(p.relative_to(FIXTURES)) for d in ("yarn", "spark-submit") for p in (FIXTURES / d).iterdir()}
    assert on_disk == COVERED | RECORDED_ONLY and not COVERED & RECORDED_ONLY


# --------------------------------------------------------------------------- REST


@pytest.mark.parametrize(
    "fixture, n, name, state, final, url, diag, started, finished",
    [
        ("SUCCEEDED", 5, "ok_job.py", "FINISHED", "SUCCEEDED", PROXY.format(5), "", 1795461797058, 1795461854993),
        ("FAILED", 6, "fail_job.py", "FINISHED", "FAILED", PROXY.format(6), EXITED_1, 1795461868568, 1795461956571),
        (
            "KILLED",
            8,
            "acceptance-to-be-killed",
            "KILLED",
            "KILLED",
            KILLED_URL,
            KILLED_DIAG,
            1795461991102,
            1795462026872,
        ),
    ],
)
def test_report_from_rest_app(fixture, n, name, state, final, url, diag, started, finished):
    whole = doc(f"yarn/rm-rest-app-{fixture}.json")
    report = ApplicationReport.from_rest(whole)
    assert report == ApplicationReport(
        application_id=APP.format(n),
        name=name,
        state=state,
        final_status=final,
        progress=100.0,
        tracking_url=url,
        diagnostics=diag,
        tags=(),
        queue="default",
        user="root",
        started_ms=started,
        finished_ms=finished,
    )
    assert ApplicationReport.from_rest(whole["app"]) == report  # inner object works too
    assert report.is_terminal
    assert report.succeeded is (fixture == "SUCCEEDED")


LIVE = "application_1795501881681_{:04d}"  # the three rec-running jobs, submitted at once
LIVE_PROXY = "http://localhost:8088/proxy/application_1795501881681_{:04d}/"
AM_WAITING = "[Tue Nov 24 06:31:49 +0000 2026] Scheduler has assigned a container for AM, waiting for AM container to be launched"


def test_report_from_rest_app_accepted():
    report = ApplicationReport.from_rest(doc("yarn/rm-rest-app-ACCEPTED.json"))
    assert report == ApplicationReport(
        application_id=LIVE.format(1),
        name="rec-slow-3",
        state="ACCEPTED",
        final_status="UNDEFINED",
        progress=0.0,
        tracking_url=None,  # no trackingUrl before the AM runs (trackingUI UNASSIGNED)
        diagnostics=AM_WAITING,
        tags=("rec-running",),
        queue="default",
        user="root",
        started_ms=1795501909025,
        finished_ms=None,  # finishedTime 0
    )
    assert not report.is_terminal and not report.succeeded


def test_report_from_rest_app_running():
    report = ApplicationReport.from_rest(doc("yarn/rm-rest-app-RUNNING.json"))
    assert (report.application_id, report.name, report.state, report.final_status) == (
        LIVE.format(2), "rec-slow-2", "RUNNING", "UNDEFINED")
    assert report.progress == 10.0
    assert report.tracking_url == LIVE_PROXY.format(2)  # the proxy says localhost, as recorded
    assert report.tags == ("rec-running",) and report.diagnostics == ""
    assert (report.started_ms, report.finished_ms) == (1795501909985, None)
    assert not report.is_terminal and not report.succeeded
    with pytest.raises(ValueError, match="still RUNNING"):
        raise_for_outcome(report)


def test_rest_app_running_repeats_keys_as_the_rm_serializes_them():
    # the RM's JSON repeats "entry" in resourceSecondsMap; a parser must not choke on it
    raw = fixture_bytes("yarn/rm-rest-app-RUNNING.json")
    assert raw.count(b'"entry":') > raw.count(b'"resourceSecondsMap":')
    assert ApplicationReport.from_rest(json.loads(raw)).state == "RUNNING"


@pytest.mark.parametrize(
    "fixture, expected",
    [
        ("ACCEPTED", [(1, "ACCEPTED", 0.0, None)]),
        ("RUNNING", [(2, "RUNNING", 10.0, LIVE_PROXY.format(2)), (3, "RUNNING", 10.0, LIVE_PROXY.format(3)),
                     (1, "RUNNING", 10.0, LIVE_PROXY.format(1))]),
    ],
)
def test_reports_from_rest_tag_query_of_live_apps(fixture, expected):
    reports = reports_from_rest(doc(f"yarn/rm-rest-apps-applicationTags-rec-running-{fixture}.json"))
    assert [(r.application_id, r.state, r.progress, r.tracking_url) for r in reports] == [
        (LIVE.format(n), s, p, u) for n, s, p, u in expected
    ]
    assert all(r.final_status == "UNDEFINED" and not r.is_terminal and r.finished_ms is None for r in reports)
    assert all(r.tags == ("rec-running",) for r in reports)  # tags come back lowercase
    # the newest (latest start) is what a re-attaching controller follows
    newest = sorted(reports, key=lambda r: r.started_ms)[-1]
    assert newest.application_id == LIVE.format(1 if fixture == "ACCEPTED" else 2)


def test_the_same_live_app_moves_from_accepted_to_running():
    (accepted,) = reports_from_rest(doc("yarn/rm-rest-apps-applicationTags-rec-running-ACCEPTED.json"))
    running = {r.application_id: r for r in reports_from_rest(doc("yarn/rm-rest-apps-applicationTags-rec-running-RUNNING.json"))}
    later = running[accepted.application_id]
    assert (accepted.state, later.state) == ("ACCEPTED", "RUNNING")
    assert accepted.started_ms == later.started_ms and accepted.name == later.name == "rec-slow-3"
    assert accepted.tracking_url is None and later.tracking_url == LIVE_PROXY.format(1)


def test_finished_failed_is_not_a_success():
    # the trap: a PySpark exception ends as state FINISHED, final status FAILED
    report = ApplicationReport.from_rest(doc("yarn/rm-rest-app-FAILED.json"))
    assert report.state == "FINISHED" and not report.succeeded


def test_reports_from_rest_apps_list():
    reports = reports_from_rest(doc("yarn/rm-rest-apps.json"))
    assert [r.application_id for r in reports] == [APP.format(n) for n in range(1, 9)]
    by_id = {r.application_id: r for r in reports}
    assert by_id[APP.format(6)].final_status == "FAILED"
    assert by_id[APP.format(7)].tags == ("sometag",)
    assert by_id[APP.format(8)].state == "KILLED"
    assert [r.application_id for r in reports if r.succeeded] == [APP.format(n) for n in (1, 2, 3, 4, 5, 7)]
    assert all(r.name for r in reports) and all(r.tracking_url for r in reports)


@pytest.mark.parametrize(
    "fixture, expected",
    [
        ("rm-rest-apps-applicationTags-sometag.json", [(7, "FINISHED", "SUCCEEDED", ("sometag",))]),
        ("rm-rest-apps-finalStatus-FAILED.json", [(6, "FINISHED", "FAILED", ())]),
        ("rm-rest-apps-states-FAILED.json", []),  # {"apps":{}}: FAILED is a final status here
        ("rm-rest-apps-states-KILLED.json", [(8, "KILLED", "KILLED", ())]),
    ],
)
def test_reports_from_rest_filtered_lists(fixture, expected):
    reports = reports_from_rest(doc(f"yarn/{fixture}"))
    assert [(r.application_id, r.state, r.final_status, r.tags) for r in reports] == [
        (APP.format(n), s, f, t) for n, s, f, t in expected
    ]


def test_from_rest_rejects_a_non_application_document():
    with pytest.raises(YarnError, match="no application id"):
        ApplicationReport.from_rest(doc("yarn/rm-rest-cluster-info.json"))
    with pytest.raises(YarnError, match="no 'apps' object"):
        reports_from_rest({"apps": "nope"})


def test_unknown_id_fixture_is_a_404_remote_exception():
    status, body = split_http_fixture(fixture_bytes("yarn/rm-rest-app-unknown-id.txt"))
    assert status == 404
    assert json.loads(body)["RemoteException"]["exception"] == "NotFoundException"


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    "fixture, n, state, final, diag, started, finished",
    [
        ("SUCCEEDED", 5, "FINISHED", "SUCCEEDED", "", 1795461797058, 1795461854993),
        ("FAILED", 6, "FINISHED", "FAILED", EXITED_1, 1795461868568, 1795461956571),
        ("FAILED-1attempt", 9, "FINISHED", "FAILED", EXITED_1, 1795462136989, 1795462173020),
    ],
)
def test_parse_application_status(fixture, n, state, final, diag, started, finished):
    report = parse_application_status(text(f"yarn/yarn-application-status-{fixture}.txt"))
    assert report is not None
    assert report.application_id == APP.format(n)
    assert (report.state, report.final_status, report.diagnostics) == (state, final, diag)
    assert (report.started_ms, report.finished_ms) == (started, finished)
    assert report.progress == 100.0
    assert report.tracking_url is None  # the CLI printed N/A
    assert (report.queue, report.user, report.name) == ("default", "root", "ok_job.py" if n == 5 else "fail_job.py")


def test_parse_statuses_in_the_kill_transcript():
    before, after = parse_application_statuses(text("yarn/yarn-application-kill.txt"))
    assert before.application_id == after.application_id == APP.format(8)
    assert (before.state, before.final_status, before.progress) == ("RUNNING", "UNDEFINED", 10.0)
    assert before.tracking_url == "http://localhost:38039"
    assert before.finished_ms is None and not before.is_terminal and before.diagnostics == ""
    assert (after.state, after.final_status, after.progress) == ("KILLED", "KILLED", 100.0)
    assert after.tracking_url == KILLED_URL
    assert after.diagnostics == KILLED_DIAG
    assert after.finished_ms == 1795462026872


def test_parse_status_of_unknown_application_is_none():
    assert parse_application_status(text("yarn/yarn-application-list-before.txt")) is None


def test_parse_application_list_all():
    reports = parse_application_list(text("yarn/yarn-application-list-ALL.txt"))
    assert [r.application_id for r in reports] == [APP.format(n) for n in range(1, 9)]
    assert [r.name for r in reports][4:] == ["ok_job.py", "fail_job.py", "trivial_job.py", "acceptance-to-be-killed"]
    assert [(r.state, r.final_status) for r in reports][5:] == [
        ("FINISHED", "FAILED"),
        ("FINISHED", "SUCCEEDED"),
        ("KILLED", "KILLED"),
    ]
    assert all(r.progress == 100.0 and r.user == "root" and r.queue == "default" for r in reports)
    assert [r.tracking_url for r in reports] == [None] * 7 + [KILLED_URL]


def test_parse_application_list_empty():
    assert parse_application_list(text("yarn/yarn-application-list-before.txt")) == []


def test_last_python_error_in_aggregated_logs():
    with open(FIXTURES / "yarn/yarn-logs-FAILED.txt", encoding="utf-8") as lines:
        assert last_python_error(lines) == "RuntimeError: intentional failure for acceptance test (count was 10)"
    with open(FIXTURES / "yarn/yarn-logs-SUCCEEDED.txt", encoding="utf-8") as lines:
        assert last_python_error(lines) is None


# --------------------------------------------------------------------------- spark-submit

SUBMIT_CASES = {
    # name: (app n, state, final status, outcome, tracking URL, attempts, diagnostics, exception substring)
    "succeeded": (5, "FINISHED", "SUCCEEDED", "succeeded", PROXY.format(5), 1, "", None),
    "failed": (6, "FINISHED", "FAILED", "failed", PROXY.format(6), 2, EXITED_1, "finished with failed status"),
    "failed-1attempt": (9, "FINISHED", "FAILED", "failed", PROXY.format(9), 1, EXITED_1, "finished with failed"),
    "killed": (8, "KILLED", "KILLED", "killed", KILLED_URL, 1, KILLED_DIAG, f"{APP.format(8)} is killed"),
    "tagged": (7, "FINISHED", "SUCCEEDED", "succeeded", PROXY.format(7), 1, "", None),
    "nowait": (10, "ACCEPTED", "UNDEFINED", None, PROXY.format(10), 1, "Application is Activated", None),
    "trivial-archive-1": (3, "FINISHED", "SUCCEEDED", "succeeded", PROXY.format(3), 1, "", None),
    "trivial-archive-2": (4, "FINISHED", "SUCCEEDED", "succeeded", PROXY.format(4), 1, "", None),
    "trivial-default-1": (1, "FINISHED", "SUCCEEDED", "succeeded", PROXY.format(1), 1, "", None),
    "trivial-default-2": (2, "FINISHED", "SUCCEEDED", "succeeded", PROXY.format(2), 1, "", None),
}


def feed_all(name: str) -> tuple[SubmitOutputParser, list[ApplicationReport]]:
    parser = SubmitOutputParser()
    emitted = []
    for line in text(f"spark-submit/spark-submit-{name}.stderr").splitlines(keepends=True):
        report = parser.feed(line)
        if report is not None:
            emitted.append(report)
    tail = parser.close()
    if tail is not None:
        emitted.append(tail)
    return parser, emitted


@pytest.mark.parametrize("name", sorted(SUBMIT_CASES))
def test_submit_output_parser_final_state(name):
    n, state, final, outcome, url, attempts, diag, exception = SUBMIT_CASES[name]
    parser, emitted = feed_all(name)
    assert parser.application_id == APP.format(n)
    assert (parser.state, parser.final_status, parser.outcome) == (state, final, outcome)
    assert parser.tracking_url == url
    assert parser.attempts_seen == attempts
    assert diag in parser.diagnostics and (diag or parser.diagnostics == "")
    if exception is None:
        assert parser.exception is None
    else:
        assert exception in parser.exception
    assert parser.report == emitted[-1]
    assert (emitted[-1].state, emitted[-1].final_status) == (state, final)


@pytest.mark.parametrize(
    "name, states",
    [
        ("succeeded", ["SUBMITTED", "ACCEPTED", "RUNNING", "FINISHED"]),
        ("failed", ["SUBMITTED", "ACCEPTED", "RUNNING", "ACCEPTED", "RUNNING", "FINISHED"]),
        ("killed", ["SUBMITTED", "ACCEPTED", "RUNNING", "KILLED"]),
        ("nowait", ["SUBMITTED", "ACCEPTED"]),
    ],
)
def test_submit_output_parser_emits_each_state_change_once(name, states):
    _parser, emitted = feed_all(name)
    assert [r.state for r in emitted] == states
    # every report after the first comes with its detail block already read
    assert all(r.tracking_url and r.started_ms for r in emitted[1:])


@pytest.mark.parametrize("name", sorted(SUBMIT_CASES))
def test_application_id_is_known_at_the_submitted_line(name):
    lines = text(f"spark-submit/spark-submit-{name}.stderr").splitlines()
    parser = SubmitOutputParser()
    for line in lines:
        report = parser.feed(line)
        if "Submitted application" in line:
            assert report is not None and report.application_id == parser.application_id
            assert report.state == "SUBMITTED"
            break
        # the staging upload lines already name the id: they must not count as submitted
        assert parser.application_id is None and report is None
    else:
        pytest.fail("no Submitted application line")


def test_failed_submit_output_keeps_the_final_diagnostics():
    parser, emitted = feed_all("failed")
    assert emitted[-1].diagnostics == EXITED_1
    assert parser.failed and not parser.killed
    waiting = emitted[3]  # the second attempt, waiting for an AM container
    assert waiting.state == "ACCEPTED" and waiting.diagnostics.startswith("[Mon Nov 23 19:25:21 +0000 2026]")


def test_killed_submit_output():
    parser, emitted = feed_all("killed")
    assert parser.killed and not parser.failed
    assert emitted[-1].diagnostics == KILLED_DIAG and emitted[-1].tracking_url == KILLED_URL


def test_report_line_without_a_submitted_line_still_gives_the_id():
    parser = SubmitOutputParser()
    first = parser.feed(f"26/11/23 19:24:49 INFO Client: Application report for {APP.format(6)} (state: RUNNING)")
    assert first is not None and first.application_id == APP.format(6) and first.state == "RUNNING"


# --------------------------------------------------------------------------- outcome


def test_raise_for_outcome_success_is_quiet():
    assert raise_for_outcome(ApplicationReport.from_rest(doc("yarn/rm-rest-app-SUCCEEDED.json"))) is None


def test_raise_for_outcome_failed_names_id_diagnostics_log_and_next_step():
    report = ApplicationReport.from_rest(doc("yarn/rm-rest-app-FAILED.json"))
    with pytest.raises(YarnApplicationFailed) as info:
        raise_for_outcome(
            report, log_path="logs/yarn/churn-application_1795461516199_0006.log", error="RuntimeError: x\ny"
        )
    message = str(info.value)
    assert "\n" not in message
    assert APP.format(6) in message and EXITED_1 in message and "FINISHED" in message
    assert "logs/yarn/churn-application_1795461516199_0006.log" in message
    assert f"yarn logs -applicationId {APP.format(6)}" in message
    assert "RuntimeError: x y" in message
    assert isinstance(info.value, FanoutError) and info.value.report is report


def test_raise_for_outcome_killed():
    report = ApplicationReport.from_rest(doc("yarn/rm-rest-app-KILLED.json"))
    with pytest.raises(YarnApplicationKilled, match="was killed by user root"):
        raise_for_outcome(report)


def test_raise_for_outcome_finished_undefined_and_state_failed_are_failures():
    ok = ApplicationReport.from_rest(doc("yarn/rm-rest-app-SUCCEEDED.json"))
    for state, final in (("FINISHED", "UNDEFINED"), ("FAILED", "FAILED"), ("FAILED", "UNDEFINED")):
        with pytest.raises(YarnApplicationFailed):
            raise_for_outcome(dataclasses.replace(ok, state=state, final_status=final))


def test_raise_for_outcome_refuses_a_running_report():
    running, _ = parse_application_statuses(text("yarn/yarn-application-kill.txt"))
    with pytest.raises(ValueError, match="still RUNNING"):
        raise_for_outcome(running)


def test_next_poll_delay_backs_off_and_resets():
    delays, delay = [], None
    for _ in range(8):
        delay = next_poll_delay(delay, initial=2.0, maximum=10.0, factor=1.5)
        delays.append(delay)
    assert delays == [2.0, 3.0, 4.5, 6.75, 10.0, 10.0, 10.0, 10.0]
    assert next_poll_delay(10.0, changed=True, initial=2.0, maximum=10.0) == 2.0
    with pytest.raises(ConfigError):
        next_poll_delay(None, initial=0)
    with pytest.raises(ConfigError):
        next_poll_delay(None, initial=5, maximum=1)


# --------------------------------------------------------------------------- tags


ODD_IDS = [
    "TrainLabel(label=churn_30d, data=hdfs:///d)",
    "TrainLabel(label=CHURN_30d, data=hdfs:///d)",  # differs only by case: YARN lowercases tags
    'TrainLabel(label=churn 30d/EU "vip" ü $(touch pwned) `id`, x=1)',
    "a,b,c",
    "",
    "x" * 5000,
    "日本語\n\t\x00",
]


def test_yarn_tag_is_valid_stable_and_unique():
    tags = [yarn_tag(task_id) for task_id in ODD_IDS]
    assert len(set(tags)) == len(ODD_IDS)
    assert tags == [yarn_tag(task_id) for task_id in ODD_IDS]
    for tag in tags:
        assert tag.startswith("fanout-") and tag == tag.lower()
        assert is_valid_yarn_tag(tag) and len(tag) <= 100 and "," not in tag and tag.isascii()


@pytest.mark.parametrize(
    "tag, ok", [("sometag", True), ("Some", False), ("a,b", False), ("", False), ("x" * 101, False), ("é", False)]
)
def test_is_valid_yarn_tag(tag, ok):
    assert is_valid_yarn_tag(tag) is ok


def test_submit_conf():
    tag = yarn_tag("t")
    assert submit_conf(tag) == {
        "spark.yarn.tags": tag,
        "spark.yarn.maxAppAttempts": "1",
        "spark.yarn.submit.waitAppCompletion": "false",
    }
    assert (
        submit_conf(tag, max_app_attempts=2, wait_app_completion=True)["spark.yarn.submit.waitAppCompletion"] == "true"
    )
    with pytest.raises(ConfigError):
        submit_conf("Bad,Tag")
    with pytest.raises(ConfigError):
        submit_conf(tag, max_app_attempts=0)


# --------------------------------------------------------------------------- yarn-site.xml


def site(**props: str) -> dict[str, str]:
    body = "".join(f"<property><name>{k}</name><value>{v}</value></property>" for k, v in props.items())
    return parse_site_xml(f"<?xml version='1.0'?><configuration>{body}</configuration>")


def test_rm_address_single():
    conf = site(**{"yarn.resourcemanager.webapp.address": "rm.example.com:8088"})
    assert parse_rm_addresses(conf) == ["http://rm.example.com:8088"]


def test_rm_address_from_hostname_and_expansion():
    assert parse_rm_addresses(site(**{"yarn.resourcemanager.hostname": "rm0"})) == ["http://rm0:8088"]
    conf = site(
        **{
            "yarn.resourcemanager.hostname": "rm.example.com",
            "yarn.resourcemanager.webapp.address": "${yarn.resourcemanager.hostname}:18088",
        }
    )
    assert parse_rm_addresses(conf) == ["http://rm.example.com:18088"]


def test_rm_address_bind_all_uses_hostname():
    conf = site(**{"yarn.resourcemanager.webapp.address": "0.0.0.0:8088", "yarn.resourcemanager.hostname": "rm1.corp"})
    assert parse_rm_addresses(conf) == ["http://rm1.corp:8088"]


def test_rm_address_https_only():
    conf = site(
        **{
            "yarn.http.policy": "HTTPS_ONLY",
            "yarn.resourcemanager.webapp.address": "rm.example.com:8088",
            "yarn.resourcemanager.webapp.https.address": "rm.example.com:8090",
        }
    )
    assert parse_rm_addresses(conf) == ["https://rm.example.com:8090"]
    assert parse_rm_addresses(conf, scheme_hint="http") == ["http://rm.example.com:8088"]
    with pytest.raises(ConfigError):
        parse_rm_addresses(conf, scheme_hint="ftp")


def test_rm_addresses_ha_webapp_addresses():
    conf = site(
        **{
            "yarn.resourcemanager.ha.enabled": "true",
            "yarn.resourcemanager.ha.rm-ids": "rm1, rm2",
            "yarn.resourcemanager.webapp.address.rm1": "master1.corp:8088",
            "yarn.resourcemanager.webapp.address.rm2": "master2.corp:8088",
            "yarn.resourcemanager.webapp.https.address.rm1": "master1.corp:8090",
            "yarn.resourcemanager.webapp.https.address.rm2": "master2.corp:8090",
        }
    )
    assert parse_rm_addresses(conf) == ["http://master1.corp:8088", "http://master2.corp:8088"]
    assert parse_rm_addresses(conf, scheme_hint="https") == ["https://master1.corp:8090", "https://master2.corp:8090"]


def test_rm_addresses_ha_hostnames_and_default_ports():
    props = {
        "yarn.resourcemanager.ha.enabled": "true",
        "yarn.resourcemanager.ha.rm-ids": "a,b",
        "yarn.resourcemanager.hostname.a": "m1",
        "yarn.resourcemanager.hostname.b": "m2",
    }
    assert parse_rm_addresses(site(**props)) == ["http://m1:8088", "http://m2:8088"]
    https = site(**props, **{"yarn.http.policy": "HTTPS_ONLY"})
    assert parse_rm_addresses(https) == ["https://m1:8090", "https://m2:8090"]


def test_rm_addresses_ha_misconfigured():
    with pytest.raises(ConfigError, match="rm-ids"):
        parse_rm_addresses(site(**{"yarn.resourcemanager.ha.enabled": "true"}))
    conf = site(**{"yarn.resourcemanager.ha.enabled": "true", "yarn.resourcemanager.ha.rm-ids": "rm1"})
    with pytest.raises(ConfigError, match="rm1"):
        parse_rm_addresses(conf)


def test_rm_addresses_empty_config_is_unknown():
    assert parse_rm_addresses({}) == []


# --------------------------------------------------------------------------- masking


def test_mask_secrets():
    argv = [
        "spark-submit",
        "--master",
        "yarn",
        "--principal",
        "etl@CORP",
        "--keytab",
        "/home/etl/etl.keytab",
        "--conf",
        "spark.hadoop.fs.s3a.secret.key=abc",
        "-c",
        "spark.ssl.keyStorePassword=pw",
        "--conf=spark.yarn.keytab=/k",
        "--conf",
        "spark.yarn.tags=fanout-1",
        "--db-password=hunter2",
        "job.py",
        "--api-token",
        "tok",
        "--label",
        "churn",
    ]
    masked = mask_secrets(argv)
    assert masked == [
        "spark-submit",
        "--master",
        "yarn",
        "--principal",
        "etl@CORP",
        "--keytab",
        MASK,
        "--conf",
        f"spark.hadoop.fs.s3a.secret.key={MASK}",
        "-c",
        f"spark.ssl.keyStorePassword={MASK}",
        f"--conf=spark.yarn.keytab={MASK}",
        "--conf",
        "spark.yarn.tags=fanout-1",
        f"--db-password={MASK}",
        "job.py",
        "--api-token",
        MASK,
        "--label",
        "churn",
    ]
    assert argv[6] == "/home/etl/etl.keytab"  # the input list is left alone
    assert not any(s in " ".join(masked) for s in ("abc", "pw", "hunter2", "tok ", "etl.keytab", "=/k"))


def test_mask_covers_spark_redaction_keys_and_secrets_inside_values():
    from pipeline.cluster.yarn import MASK, mask_secrets

    argv = ["--conf", "spark.hadoop.fs.azure.account.key.acct.blob.core.windows.net=AZKEY",
            "--conf", "spark.hadoop.fs.s3a.access.key=AKIA",
            "--conf", "spark.driver.extraJavaOptions=-Xmx1g -Djavax.net.ssl.trustStorePassword=pw -Dx=1",
            "--driver-java-options", "-Dmy.api.token=TOKVAL -Dkeep=this"]
    logged = " ".join(mask_secrets(argv))
    for secret in ("AZKEY", "AKIA", "=pw", "TOKVAL"):
        assert secret not in logged
    assert "-Xmx1g" in logged and "-Dx=1" in logged and "-Dkeep=this" in logged and MASK in logged
