"""pipeline.cluster.yarn_clients against replayed RM answers and a fake `yarn` that prints
recorded CLI output (tests/fake_bin/yarn)."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import luigi
import pytest

from pipeline.cluster import kerberos
from pipeline.cluster.yarn import (
    ApplicationNotFound,
    YarnApplicationFailed,
    YarnDeadlineExceeded,
    YarnError,
    YarnPermissionDenied,
    YarnUnavailable,
    parse_application_statuses,
    raise_for_outcome,
)
from pipeline.cluster.yarn_clients import (
    ResourceManagerRest,
    YarnCli,
    client_from_config,
    fetch_logs,
    follow,
    kerberos_auth,
    log_file_name,
    rm_base_urls,
    yarn,
)
from pipeline.errors import ConfigError
from tests.fake_time import FakeTime
from tests.replay import FIXTURES, ReplayServer, Reply, fixture_bytes

APP = "application_1795461516199_{:04d}"
UNKNOWN = "application_0_0000"
FAKE_YARN = Path(__file__).resolve().parent / "fake_bin" / "yarn"


@pytest.fixture
def rm():
    with ReplayServer() as srv:
        for n, outcome in ((5, "SUCCEEDED"), (6, "FAILED"), (8, "KILLED")):
            srv.route_fixture("GET", f"/ws/v1/cluster/apps/{APP.format(n)}", f"yarn/rm-rest-app-{outcome}.json")
        srv.route_fixture("GET", f"/ws/v1/cluster/apps/{UNKNOWN}", "yarn/rm-rest-app-unknown-id.txt")
        srv.route_fixture(
            "GET",
            "/ws/v1/cluster/apps",
            "yarn/rm-rest-apps-applicationTags-sometag.json",
            query="applicationTags=sometag",
        )
        yield srv


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- REST


@pytest.mark.parametrize(
    "n, state, final", [(5, "FINISHED", "SUCCEEDED"), (6, "FINISHED", "FAILED"), (8, "KILLED", "KILLED")]
)
def test_rest_application(rm, n, state, final):
    client = ResourceManagerRest(rm.url, timeout=5)
    report = client.application(APP.format(n))
    assert (report.application_id, report.state, report.final_status) == (APP.format(n), state, final)
    assert client.request_count == 1
    (req,) = rm.requests
    assert (req.method, req.path, req.query) == ("GET", f"/ws/v1/cluster/apps/{APP.format(n)}", "")
    assert req.headers["Accept"] == "application/json"


def test_rest_unknown_application_is_none(rm):
    client = ResourceManagerRest(rm.url, timeout=5)
    assert client.application(UNKNOWN) is None
    assert client.request_count == 1


def test_rest_rejects_a_bad_application_id(rm):
    with pytest.raises(ValueError):
        ResourceManagerRest(rm.url).application("../../cluster/info")
    assert rm.requests == []


def test_rest_applications_by_tag(rm):
    client = ResourceManagerRest([rm.url], timeout=5)
    reports = client.applications_by_tag("SomeTag")  # YARN stores tags lowercase
    assert [(r.application_id, r.tags, r.succeeded) for r in reports] == [(APP.format(7), ("sometag",), True)]
    assert rm.requests[-1].query == "applicationTags=sometag"


def test_rest_applications_by_tag_keeps_exact_carriers_only():
    # the RM tag filter matches any of several tags; an answer listing other apps is filtered
    with ReplayServer() as srv:
        srv.route_fixture("GET", "/ws/v1/cluster/apps", "yarn/rm-rest-apps.json")
        reports = ResourceManagerRest(srv.url, timeout=5).applications_by_tag("sometag")
    assert [r.application_id for r in reports] == [APP.format(7)]


# Reply bodies for PUT …/state: not recorded. The Hadoop ResourceManager REST docs
# ("Cluster Application State API") answer an accepted kill with HTTP 202 and the
# appstate object {"state":"ACCEPTED"}, a completed one with HTTP 200 and
# {"state":"KILLED"} (the same body the recorded GET …/state gave after the kill).
DOC_KILL_ACCEPTED = b'{\n  "state":"ACCEPTED"\n}'


def recorded_state_killed() -> bytes:
    transcript = fixture_bytes("yarn/yarn-application-kill.txt")
    start = transcript.index(b'{"state":"KILLED"}')
    return transcript[start : transcript.index(b"\n", start)]


@pytest.mark.parametrize("status, body, expected", [(202, DOC_KILL_ACCEPTED, True), (200, None, True)])
def test_rest_kill(status, body, expected):
    path = f"/ws/v1/cluster/apps/{APP.format(8)}/state"
    with ReplayServer() as srv:
        srv.route("PUT", path, Reply(status, body if body is not None else recorded_state_killed()))
        client = ResourceManagerRest(srv.url, timeout=5)
        assert client.kill(APP.format(8)) is expected
    (req,) = srv.requests
    assert (req.method, req.path) == ("PUT", path)
    assert json.loads(req.body) == {"state": "KILLED"}
    assert req.headers["Content-Type"] == "application/json"


def test_rest_kill_of_a_finished_application_says_so():
    # the appstate object carries the application's state: FINISHED means nothing was killed
    with ReplayServer() as srv:
        srv.route("PUT", f"/ws/v1/cluster/apps/{APP.format(5)}/state", Reply(200, b'{"state":"FINISHED"}'))
        assert ResourceManagerRest(srv.url, timeout=5).kill(APP.format(5)) is False


def test_rest_kill_unknown_application(rm):
    rm.route_fixture("PUT", f"/ws/v1/cluster/apps/{UNKNOWN}/state", "yarn/rm-rest-app-unknown-id.txt")
    with pytest.raises(ApplicationNotFound, match="application_0_0000 not found"):
        ResourceManagerRest(rm.url, timeout=5).kill(UNKNOWN)


@pytest.mark.parametrize("status, hint", [(401, "auth=kerberos"), (403, "ACL")])
def test_rest_permission_denied(status, hint):
    with ReplayServer() as srv:
        srv.route("PUT", f"/ws/v1/cluster/apps/{APP.format(8)}/state", Reply(status, b""))
        srv.route("GET", f"/ws/v1/cluster/apps/{APP.format(8)}", Reply(status, b""))
        client = ResourceManagerRest([srv.url, closed_port_url()], timeout=5)
        with pytest.raises(YarnPermissionDenied, match=hint):
            client.kill(APP.format(8))
        with pytest.raises(YarnPermissionDenied, match=f"HTTP {status}"):
            client.application(APP.format(8))
    assert client.request_count == 2  # a refusal is an answer: no failover


def test_rest_server_error_is_unavailable():
    with ReplayServer() as srv:
        srv.route("GET", f"/ws/v1/cluster/apps/{APP.format(5)}", Reply(500, b""))
        with pytest.raises(YarnUnavailable, match="HTTP 500"):
            ResourceManagerRest(srv.url, timeout=5).application(APP.format(5))


def test_rest_answer_that_is_not_json():
    with ReplayServer() as srv:  # e.g. a proxy answering text: a recorded non-JSON body
        srv.route(
            "GET", f"/ws/v1/cluster/apps/{APP.format(5)}",
            Reply(200, fixture_bytes("yarn/yarn-application-list-ALL.txt"), "text/plain"),
        )
        with pytest.raises(YarnError, match="did not answer JSON") as info:
            ResourceManagerRest(srv.url, timeout=5).application(APP.format(5))
    assert not isinstance(info.value, YarnUnavailable)


def test_rest_404_without_rm_error_is_a_wrong_url():
    with ReplayServer() as srv:
        srv.route("GET", f"/ws/v1/cluster/apps/{APP.format(5)}", Reply(404, b""))
        with pytest.raises(YarnError, match="rm_address"):
            ResourceManagerRest(srv.url, timeout=5).application(APP.format(5))


def test_rest_rm_down_fails_fast():
    client = ResourceManagerRest(closed_port_url(), timeout=2.0)
    started = time.monotonic()
    with pytest.raises(YarnUnavailable, match="cannot connect") as info:
        client.application(APP.format(5))
    assert time.monotonic() - started < 2.0 + 0.5
    assert "\n" not in str(info.value) and "rm_address" in str(info.value)


def test_rest_rm_that_never_answers_times_out():
    with ReplayServer(delay_s=3.0) as srv:
        srv.route_fixture("GET", f"/ws/v1/cluster/apps/{APP.format(5)}", "yarn/rm-rest-app-SUCCEEDED.json")
        client = ResourceManagerRest(srv.url, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(YarnUnavailable, match="no answer within 0.5s"):
            client.application(APP.format(5))
        assert time.monotonic() - started < 0.5 + 0.7


def test_rest_ha_failover_to_the_second_rm(rm):
    client = ResourceManagerRest([closed_port_url(), rm.url], timeout=2.0)
    assert client.application(APP.format(5)).succeeded
    assert client.request_count == 2
    assert client.application(APP.format(6)).final_status == "FAILED"  # the answering RM is tried first now
    assert client.request_count == 3 and len(rm.requests) == 2


def test_rest_ha_failover_on_503(rm):
    with ReplayServer() as standby:
        standby.route("GET", f"/ws/v1/cluster/apps/{APP.format(5)}", Reply(503, b""))
        client = ResourceManagerRest([standby.url, rm.url], timeout=2.0)
        assert client.application(APP.format(5)).succeeded
    assert client.request_count == 2 and len(standby.requests) == 1


def test_rest_user_name_for_pseudo_auth(rm):
    ResourceManagerRest(rm.url, timeout=5, user="etl").application(APP.format(5))
    assert rm.requests[-1].query == "user.name=etl"


def test_rest_needs_a_url_and_a_timeout():
    with pytest.raises(ConfigError):
        ResourceManagerRest([])
    with pytest.raises(ConfigError):
        ResourceManagerRest("http://rm:8088", timeout=0)


def test_kerberos_auth_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "requests_gssapi", None)  # import fails
    kerberos._auth_class.cache_clear()
    with pytest.raises(ConfigError, match="requests-gssapi"):
        kerberos_auth()
    kerberos._auth_class.cache_clear()


# --------------------------------------------------------------------------- config


def test_rm_base_urls(tmp_path):
    assert rm_base_urls("http://a:8088/, https://b:8090") == ["http://a:8088", "https://b:8090"]
    with pytest.raises(ConfigError, match="http://"):
        rm_base_urls("rm1:8088")
    (tmp_path / "yarn-site.xml").write_text(
        "<configuration><property><name>yarn.resourcemanager.hostname</name><value>rm9</value></property>"
        "</configuration>"
    )
    assert rm_base_urls("", conf_dir=tmp_path) == ["http://rm9:8088"]
    with pytest.raises(ConfigError, match="HADOOP_CONF_DIR"):
        rm_base_urls("", conf_dir=tmp_path / "absent")


@pytest.fixture
def yarn_section():
    cfg = luigi.configuration.get_config()
    had = cfg.has_section("yarn")
    if not had:
        cfg.add_section("yarn")
    saved = dict(cfg.items("yarn")) if had else {}
    for option in list(saved):
        cfg.remove_option("yarn", option)
    yield cfg
    for option in list(cfg.options("yarn")):
        cfg.remove_option("yarn", option)
    for option, value in saved.items():
        cfg.set("yarn", option, value)
    if not had:
        cfg.remove_section("yarn")


def test_yarn_config_defaults(yarn_section):
    cfg = yarn()
    assert (cfg.rm_address, cfg.client, cfg.yarn_bin, cfg.auth) == ("", "rest", "yarn", "none")
    assert (cfg.request_timeout, cfg.max_app_attempts, cfg.wait_app_completion) == (10.0, 1, False)
    assert (cfg.poll_interval, cfg.max_poll_interval, cfg.log_dir) == (2.0, 30.0, "logs/yarn")
    assert (cfg.log_max_bytes, cfg.kill_on_interrupt) == (50 * 1024 * 1024, True)


@pytest.mark.filterwarnings("ignore:Configuration \\[yarn\\]:DeprecationWarning")
def test_yarn_config_reads_dashes_and_underscores(yarn_section):
    yarn_section.set("yarn", "rm-address", "http://rm1:8088,http://rm2:8088")
    yarn_section.set("yarn", "max_poll_interval", "12")
    yarn_section.set("yarn", "client", "cli")
    yarn_section.set("yarn", "yarn-bin", str(FAKE_YARN))
    with pytest.warns(DeprecationWarning, match="dashes"):
        cfg = yarn()
    assert cfg.rm_address == "http://rm1:8088,http://rm2:8088" and cfg.max_poll_interval == 12.0
    client = client_from_config(cfg)
    assert isinstance(client, YarnCli) and client.yarn_bin == str(FAKE_YARN)
    rest = client_from_config(yarn(client="rest", rm_address="http://rm1:8088,http://rm2:8088"))
    assert isinstance(rest, ResourceManagerRest) and rest.base_urls == ["http://rm1:8088", "http://rm2:8088"]


# --------------------------------------------------------------------------- follow


class ScriptedClient:
    """Answers application() from a list: reports, None or exceptions."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.request_count = 0

    def application(self, app_id):
        self.request_count += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer



@pytest.fixture
def kill_reports():
    running, killed = parse_application_statuses(FIXTURES.joinpath("yarn/yarn-application-kill.txt").read_text())
    return running, killed


def test_follow_reports_changes_and_backs_off(kill_reports):
    running, killed = kill_reports
    client = ScriptedClient([running, running, running, killed])
    fake, seen = FakeTime(100.0), []
    final = follow(
        client, APP.format(8), seen.append, clock=fake.clock, sleep=fake.sleep, poll_interval=2, max_poll_interval=4
    )
    assert final == killed
    assert seen == [running, killed]
    assert fake.sleeps == [2, 3.0, 4]
    assert client.request_count == 4


def test_follow_over_rest_stops_at_the_first_terminal_report(rm):
    client = ResourceManagerRest(rm.url, timeout=5)
    seen = []
    final = follow(client, APP.format(6), seen.append, sleep=lambda s: pytest.fail("no sleep needed"))
    assert seen == [final] and client.request_count == 1
    with pytest.raises(YarnApplicationFailed, match="User application exited with status 1"):
        raise_for_outcome(final)


def test_follow_deadline(kill_reports):
    running, _ = kill_reports
    fake = FakeTime(100.0)
    with pytest.raises(YarnDeadlineExceeded, match="still RUNNING") as info:
        follow(
            ScriptedClient([running]), APP.format(8), lambda r: None, clock=fake.clock, sleep=fake.sleep, deadline=110.0
        )
    assert info.value.report == running
    assert fake.now == 110.0  # the last sleep is cut to the deadline, never past it


def test_follow_rides_out_a_short_rm_outage(kill_reports):
    running, killed = kill_reports
    down = YarnUnavailable("RM down")
    fake = FakeTime(100.0)
    client = ScriptedClient([running, down, down, killed])
    assert (
        follow(client, APP.format(8), lambda r: None, clock=fake.clock, sleep=fake.sleep, unavailable_grace=60)
        == killed
    )
    fake = FakeTime(100.0)
    with pytest.raises(YarnUnavailable):
        follow(
            ScriptedClient([down]),
            APP.format(8),
            lambda r: None,
            clock=fake.clock,
            sleep=fake.sleep,
            unavailable_grace=10,
        )
    assert 10 <= fake.now - 100.0 < 40


def test_follow_unknown_application():
    with pytest.raises(ApplicationNotFound, match="restarted without recovery"):
        follow(ScriptedClient([None]), UNKNOWN, lambda r: None, sleep=lambda s: None)


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def fake_yarn(tmp_path, monkeypatch):
    """A `yarn` that runs tests/fake_bin/yarn with this interpreter; argv log in .argv."""
    wrapper = tmp_path / "bin" / "yarn"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_YARN}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    argv_log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_YARN_ARGV_LOG", str(argv_log))
    monkeypatch.delenv("FAKE_YARN_HANG", raising=False)
    return wrapper


class _Argv:
    def __init__(self, path: Path):
        self.path = path

    def __call__(self):
        return [json.loads(line) for line in self.path.read_text().splitlines()]


@pytest.fixture
def argv_log(fake_yarn, tmp_path):
    return _Argv(tmp_path / "argv.jsonl")


@pytest.mark.parametrize(
    "n, state, final",
    [(5, "FINISHED", "SUCCEEDED"), (6, "FINISHED", "FAILED"), (9, "FINISHED", "FAILED"), (8, "KILLED", "KILLED")],
)
def test_cli_status(fake_yarn, argv_log, n, state, final):
    cli = YarnCli(str(fake_yarn), timeout=30)
    report = cli.application(APP.format(n))
    assert (report.application_id, report.state, report.final_status) == (APP.format(n), state, final)
    assert argv_log() == [["application", "-status", APP.format(n)]]
    assert cli.request_count == 1


def test_cli_status_unknown_is_none(fake_yarn):
    assert YarnCli(str(fake_yarn), timeout=30).application(UNKNOWN) is None


def test_cli_applications_by_tag_finds_the_tagged_application(fake_yarn, argv_log):
    # the fake answers from the recorded listing of every application, filtered by the ids
    # the recorded REST tag query names for the tag (the CLI table has no tag column)
    reports = YarnCli(str(fake_yarn), timeout=30).applications_by_tag("SomeTag")
    assert [(r.application_id, r.name, r.state, r.final_status) for r in reports] == [
        (APP.format(7), "trivial_job.py", "FINISHED", "SUCCEEDED")
    ]
    assert reports[0].succeeded and reports[0].is_terminal
    # finished applications are listed only with -appStates ALL (the CLI's default is live ones)
    assert argv_log() == [["application", "-list", "-appStates", "ALL", "-appTags", "sometag"]]


def test_cli_applications_by_tag_without_carriers(fake_yarn, argv_log):
    assert YarnCli(str(fake_yarn), timeout=30).applications_by_tag("Fanout-ABC") == []
    assert argv_log() == [["application", "-list", "-appStates", "ALL", "-appTags", "fanout-abc"]]


def test_fake_cli_listing_is_the_recording(fake_yarn):
    # unfiltered, the fake prints the recording byte for byte; filtered, its rows stay recorded bytes
    listing = subprocess.run([str(fake_yarn), "application", "-list", "-appStates", "ALL"], capture_output=True,
                             check=True, timeout=30).stdout
    assert listing == fixture_bytes("yarn/yarn-application-list-ALL.txt")
    tagged = subprocess.run([str(fake_yarn), "application", "-list", "-appStates", "ALL", "-appTags", "sometag"],
                            capture_output=True, check=True, timeout=30).stdout
    row = next(line for line in listing.splitlines(keepends=True) if line.startswith(APP.format(7).encode()))
    assert tagged.endswith(row) and b"and tags: [sometag]):1\n" in tagged


def test_cli_kill(fake_yarn, argv_log):
    cli = YarnCli(str(fake_yarn), timeout=30)
    assert cli.kill(APP.format(8)) is True
    with pytest.raises(ApplicationNotFound):
        cli.kill(UNKNOWN)
    assert argv_log() == [["application", "-kill", APP.format(8)], ["application", "-kill", UNKNOWN]]


def test_cli_timeout(fake_yarn, monkeypatch):
    monkeypatch.setenv("FAKE_YARN_HANG", "30")
    started = time.monotonic()
    with pytest.raises(YarnUnavailable, match="no answer within 1s"):
        YarnCli(str(fake_yarn), timeout=1).application(APP.format(5))
    assert time.monotonic() - started < 5


def test_cli_missing_executable(tmp_path):
    with pytest.raises(YarnError, match="not found"):
        YarnCli(str(tmp_path / "no-yarn")).application(APP.format(5))


# --------------------------------------------------------------------------- logs


def test_log_file_name():
    assert log_file_name("churn-30d", APP.format(6)) == "churn-30d-application_1795461516199_0006.log"
    with pytest.raises(ValueError):
        log_file_name("x", "../etc/passwd")


@pytest.mark.parametrize("n, outcome", [(6, "FAILED"), (5, "SUCCEEDED")])
def test_fetch_logs_copies_the_output_byte_for_byte(fake_yarn, argv_log, tmp_path, n, outcome):
    dest = tmp_path / "logs" / "yarn" / log_file_name("churn", APP.format(n))
    got = fetch_logs(APP.format(n), dest, yarn_bin=str(fake_yarn), timeout=30, chunk_size=4096)
    assert got == dest
    assert dest.read_bytes() == fixture_bytes(f"yarn/yarn-logs-{outcome}.txt")
    assert not dest.with_name(dest.name + ".part").exists()
    assert argv_log() == [["logs", "-applicationId", APP.format(n)]]


def test_fetch_logs_truncates_at_max_bytes(fake_yarn, tmp_path):
    dest = tmp_path / "x.log"
    fetch_logs(APP.format(6), dest, yarn_bin=str(fake_yarn), max_bytes=10_000, timeout=30, chunk_size=4096)
    data = dest.read_bytes()
    assert data.startswith(fixture_bytes("yarn/yarn-logs-FAILED.txt")[:10_000])
    tail = data[10_000:].decode()
    assert tail.startswith("\n[spark-fanout] log truncated at 10000 bytes") and tail.endswith("\n")
    assert tail.count("\n") == 2 and f"yarn logs -applicationId {APP.format(6)}" in tail


def test_fetch_logs_timeout_kills_yarn_and_keeps_the_part(fake_yarn, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_YARN_HANG", "30")
    dest = tmp_path / "slow.log"
    started = time.monotonic()
    with pytest.raises(YarnUnavailable, match="took over 1s"):
        fetch_logs(APP.format(6), dest, yarn_bin=str(fake_yarn), timeout=1)
    assert time.monotonic() - started < 5
    data = dest.read_bytes()
    assert data.startswith(fixture_bytes("yarn/yarn-logs-FAILED.txt")[: 64 * 1024])
    assert data.endswith(b"timed out after 1s; this log is incomplete\n")


def test_fetch_logs_failure_keeps_the_output(fake_yarn, tmp_path):
    dest = tmp_path / "none.log"
    with pytest.raises(YarnError, match="exited 2"):
        fetch_logs(APP.format(7), dest, yarn_bin=str(fake_yarn), timeout=30)
    assert b"no recorded output" in dest.read_bytes()
