"""The ResourceManager replay as the RM behaves (recorded headers, chunked bodies,
keep-alive) and applications whose state moves across polls, through the real
``ResourceManagerRest`` client and ``follow``.

The live recordings (tag ``rec-running``, tests/fixtures/README.md) are three jobs
submitted at once: application_1795501881681_0001 was recorded ACCEPTED (alone and in the
tag query) and, 15 s later, RUNNING in the tag query, beside _0002 and _0003. So one id,
_0001, has a coherent ACCEPTED → RUNNING history; no terminal report of these jobs was
recorded (see the caveat in test_yarn_cluster_path.py for the tests that need one).
"""

from __future__ import annotations

import http.client
import json

import pytest

from pipeline.cluster.yarn import ApplicationReport, YarnDeadlineExceeded
from pipeline.cluster.yarn_clients import ResourceManagerRest, follow
from tests.fake_time import FakeTime
from tests.replay import (
    RM_HEADERS,
    ReplayServer,
    Reply,
    Step,
    Timeline,
    app_timeline,
    fixture_bytes,
    parse_http_fixture,
    recorded_reply,
    rm_app_reply,
)

APPS = "/ws/v1/cluster/apps"
LIVE = "application_1795501881681_{:04d}"
TAGS_ACCEPTED = "yarn/rm-rest-apps-applicationTags-rec-running-ACCEPTED.json"
TAGS_RUNNING = "yarn/rm-rest-apps-applicationTags-rec-running-RUNNING.json"


def report_of(reply: Reply) -> ApplicationReport:
    return ApplicationReport.from_rest(json.loads(reply.body))



# --------------------------------------------------------------------------- the replay


def test_rm_answers_carry_the_recorded_headers_and_come_chunked():
    with ReplayServer() as srv:
        srv.route_fixture("GET", f"{APPS}/{LIVE.format(1)}", "yarn/rm-rest-app-ACCEPTED.json")
        srv.route_fixture("GET", f"{APPS}/application_0_0000", "yarn/rm-rest-app-unknown-id.txt")
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("GET", f"{APPS}/{LIVE.format(1)}")
        ok = conn.getresponse()
        body = ok.read()
        conn.request("GET", f"{APPS}/application_0_0000")  # same connection: keep-alive
        missing = conn.getresponse()
        missing_body = missing.read()
        conn.close()
    assert ok.status == 200 and body == fixture_bytes("yarn/rm-rest-app-ACCEPTED.json")
    assert ok.getheader("Content-Type") == "application/json;charset=utf-8"
    assert ok.getheader("Transfer-Encoding") == "chunked" and ok.getheader("Content-Length") is None
    assert ok.getheader("Connection") is None  # HTTP/1.1: the connection stays open
    status, headers, recorded_body = parse_http_fixture(fixture_bytes("yarn/rm-rest-app-unknown-id.txt"))
    assert (missing.status, missing_body) == (status, recorded_body) == (404, recorded_body)
    assert missing.getheaders() == headers == RM_HEADERS  # as recorded, in order, repeats kept
    assert ok.getheaders() == RM_HEADERS
    assert len({r.client for r in srv.requests}) == 1


def test_one_connection_serves_every_poll():
    # the RM client keeps its connection across polls, as against the real RM's Jetty
    with ReplayServer() as srv:
        srv.route("GET", f"{APPS}/{LIVE.format(1)}", app_timeline(LIVE.format(1), [
            ("yarn/rm-rest-app-ACCEPTED.json", 2), (TAGS_RUNNING, 1)]))
        client = ResourceManagerRest(srv.url, timeout=5)
        states = [client.application(LIVE.format(1)).state for _ in range(4)]
        client.close()
    assert states == ["ACCEPTED", "ACCEPTED", "RUNNING", "RUNNING"]
    assert len(srv.requests) == 4 and len({r.client for r in srv.requests}) == 1


def test_a_list_entry_answers_as_the_single_app_recording_does():
    # the RM serializes one app object for /apps and /apps/{id}: _0002 was recorded both ways
    from_list = rm_app_reply(TAGS_RUNNING, LIVE.format(2))
    single = recorded_reply("yarn/rm-rest-app-RUNNING.json")
    assert report_of(from_list) == report_of(single)
    assert from_list.body.startswith(b'{"app":{"id":"application_1795501881681_0002"')
    assert from_list.body[len(b'{"app":') : -1] in fixture_bytes(TAGS_RUNNING)  # recorded bytes, not re-serialized
    assert from_list.header_list() == single.header_list() == RM_HEADERS


def test_a_timeline_refuses_another_applications_recording():
    with pytest.raises(ValueError, match="application_1795501881681_0002, not application_1795501881681_0001"):
        rm_app_reply("yarn/rm-rest-app-RUNNING.json", LIVE.format(1))
    with pytest.raises(ValueError, match="no report of application_1795501881681_0009"):
        rm_app_reply(TAGS_RUNNING, LIVE.format(9))
    with pytest.raises(ValueError):
        app_timeline(LIVE.format(1), [("yarn/rm-rest-app-SUCCEEDED.json", 1)])


def test_timeline_stages_and_first_serve_hook():
    calls = []
    timeline = Timeline([Step(Reply(200, b"a"), 2, "a"), Step(Reply(200, b"b"), 1, "b", before=lambda: calls.append("b"))])
    bodies = [timeline(None).body for _ in range(5)]
    assert bodies == [b"a", b"a", b"b", b"b", b"b"]
    assert timeline.served == ["a", "a", "b", "b", "b"] and calls == ["b"]


# --------------------------------------------------------------------------- moving state, followed


def test_follow_reports_accepted_then_running_for_one_application():
    app = LIVE.format(1)
    accepted = report_of(rm_app_reply("yarn/rm-rest-app-ACCEPTED.json", app))
    running = report_of(rm_app_reply(TAGS_RUNNING, app))
    with ReplayServer() as srv:
        timeline = app_timeline(app, [("yarn/rm-rest-app-ACCEPTED.json", 3), (TAGS_RUNNING, 1)])
        srv.route("GET", f"{APPS}/{app}", timeline)
        client = ResourceManagerRest(srv.url, timeout=5)
        fake, seen = FakeTime(), []
        with pytest.raises(YarnDeadlineExceeded, match="still RUNNING") as info:
            follow(client, app, seen.append, clock=fake.clock, sleep=fake.sleep, deadline=10.0,
                   poll_interval=1.0, max_poll_interval=4.0)
    # each change reported once, with the recorded details: no progress, no URL, then 10 %
    assert seen == [accepted, running]
    assert (seen[0].state, seen[0].progress, seen[0].tracking_url) == ("ACCEPTED", 0.0, None)
    assert (seen[1].state, seen[1].progress, seen[1].final_status) == ("RUNNING", 10.0, "UNDEFINED")
    assert seen[1].tracking_url == f"http://localhost:8088/proxy/{app}/"
    assert info.value.report == running
    assert timeline.served[:4] == ["ACCEPTED", "ACCEPTED", "ACCEPTED", "RUNNING"]
    assert client.request_count == len(srv.requests) == len(timeline.served) >= 5


def test_tag_query_moves_from_accepted_to_running():
    with ReplayServer() as srv:
        srv.route("GET", APPS, Timeline([Step(recorded_reply(TAGS_ACCEPTED)), Step(recorded_reply(TAGS_RUNNING))]),
                  query="applicationTags=rec-running")
        client = ResourceManagerRest(srv.url, timeout=5)
        first = client.applications_by_tag("REC-RUNNING")  # compared lowercase, as YARN stores tags
        second = client.applications_by_tag("rec-running")
    assert [(r.application_id, r.state) for r in first] == [(LIVE.format(1), "ACCEPTED")]
    assert sorted((r.application_id, r.state) for r in second) == [(LIVE.format(n), "RUNNING") for n in (1, 2, 3)]
    assert not any(r.is_terminal for r in first + second)
    assert [r.query for r in srv.requests] == ["applicationTags=rec-running"] * 2
