"""The run's shared ResourceManager poll (issue 21): one list request per interval for all
of the run's YARN jobs in flight, shared by the forked task processes through a file.

The RM's answers are recorded ones (tests/fixtures/yarn): the tag queries of the
``rec-running`` jobs and the full application list, parsed as they are; the fake RMs below
answer with recorded ``app`` objects in the recorded list framing
(:func:`tests.replay.rm_apps_reply`). A query naming several tags at once was not recorded:
the RM's documentation says the filter matches any of them, and the mapping below finds a
job's report by application id, so it holds even if an RM answered more than was asked.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

import luigi
import pytest

from pipeline.cluster.yarn import (
    ApplicationNotFound,
    ApplicationReport,
    YarnDeadlineExceeded,
    YarnError,
    YarnPermissionDenied,
    YarnUnavailable,
    reports_from_rest,
)
from pipeline.cluster.yarn_clients import ResourceManagerRest
from pipeline.cluster.yarn_poll import (
    PollAnswer,
    answer_from_json,
    answer_of,
    answer_to_json,
    failed_answer,
    is_due,
    requests_per_second,
    sighting,
    tag_batches,
    wait_before_check,
)
from pipeline.cluster.yarn_shared import SharedPoll, _Watch
from tests.fake_time import FakeTime
from tests.replay import (
    ReplayServer,
    Request,
    Step,
    Timeline,
    app_object,
    fixture_bytes,
    recorded_reply,
    rm_apps_reply,
)
from tests.test_yarn_cluster_path import (  # noqa: F401 - `cluster` is a fixture
    APPS,
    EMPTY,
    LIVE,
    NOWAIT,
    _fake,
    _job_writes_artifact,
    _result,
    _task,
    build,
    cluster,
)

ALL = "yarn/rm-rest-apps.json"  # eight finished applications: six SUCCEEDED, one FAILED, one KILLED
TAGS_RUNNING = "yarn/rm-rest-apps-applicationTags-rec-running-RUNNING.json"
TAGS_ACCEPTED = "yarn/rm-rest-apps-applicationTags-rec-running-ACCEPTED.json"
SOMETAG = "yarn/rm-rest-apps-applicationTags-sometag.json"
OLD = "application_1795461516199_{:04d}"
REC = "application_1795501881681_{:04d}"


def recorded_reports(relative: str) -> list[ApplicationReport]:
    return reports_from_rest(json.loads(fixture_bytes(relative)))


# --------------------------------------------------------------------------- pure: one answer, each job


@pytest.mark.parametrize("relative, app_id, state, final", [
    (ALL, OLD.format(5), "FINISHED", "SUCCEEDED"),
    (ALL, OLD.format(6), "FINISHED", "FAILED"),  # a PySpark exception: FINISHED/FAILED, not state FAILED
    (ALL, OLD.format(8), "KILLED", "KILLED"),
    (SOMETAG, OLD.format(7), "FINISHED", "SUCCEEDED"),
    (TAGS_ACCEPTED, REC.format(1), "ACCEPTED", "UNDEFINED"),
    (TAGS_RUNNING, REC.format(1), "RUNNING", "UNDEFINED"),
    (TAGS_RUNNING, REC.format(3), "RUNNING", "UNDEFINED"),
])
def test_each_job_reads_its_own_report_from_a_recorded_list(relative, app_id, state, final):
    answer = answer_of(10.0, ["fanout-a", "Rec-Running"], recorded_reports(relative))
    seen = sighting(answer, app_id, "rec-running")
    assert seen.kind == "report" and seen.report.application_id == app_id
    assert (seen.report.state, seen.report.final_status) == (state, final)
    if state == "RUNNING":  # what luigid shows: progress and the tracking URL
        assert seen.report.progress == 10.0
        assert seen.report.tracking_url == f"http://localhost:8088/proxy/{app_id}/"


def test_a_job_the_poll_did_not_ask_about_waits_and_one_it_asked_about_but_is_not_listed_is_missing():
    answer = answer_of(10.0, ["rec-running"], recorded_reports(TAGS_ACCEPTED))
    assert sighting(answer, REC.format(2), "fanout-later").kind == "not-asked"  # it started following after
    assert sighting(answer, REC.format(2), "rec-running").kind == "missing"  # not yet listed then: ask alone
    assert sighting(answer, REC.format(1), "REC-RUNNING").kind == "report"  # tags compare lowercase


@pytest.mark.parametrize("kind", ["unavailable", "denied", "error"])
def test_a_failed_poll_is_every_jobs_problem(kind):
    answer = failed_answer(3.0, ["t"], kind, "why")
    seen = sighting(answer, OLD.format(1), "other-tag")
    assert (seen.kind, seen.message, seen.report) == (kind, "why", None)
    with pytest.raises(ValueError):
        failed_answer(3.0, ["t"], "weird", "why")


@pytest.mark.parametrize("polled_at, now, due, wait", [
    (None, 5.0, True, 0.2),  # nothing yet: poll now
    (4.0, 5.0, False, 1.0),  # fresh: sleep until it is due
    (4.0, 5.95, False, 0.2),  # almost due: not less than the recheck
    (4.0, 6.0, True, 0.2),  # due: whoever looks first polls; the others recheck
    (9.0, 5.0, True, 0.2),  # from a clock ahead of ours (another boot): treat as due
])
def test_who_polls_and_when(polled_at, now, due, wait):
    answer = None if polled_at is None else PollAnswer(polled_at)
    assert is_due(answer, now, 2.0) is due
    assert wait_before_check(answer, now, 2.0, 0.2) == pytest.approx(wait)


def test_tags_go_forty_to_a_request_lowercase_once_each():
    tags = [f"fanout-{i:03d}" for i in range(85)] + ["FANOUT-000", " "]
    batches = tag_batches(tags)
    assert [len(b) for b in batches] == [40, 40, 5]
    assert sum(batches, []) == sorted({t.lower() for t in tags if t.strip()})
    with pytest.raises(ValueError):
        tag_batches(tags, 0)


@pytest.mark.parametrize("jobs", [1, 15, 20, 40, 41, 200])
def test_request_rate_against_the_per_job_back_off(jobs):
    shared = requests_per_second(jobs, 2.0)
    old_worst, old_best = jobs / 2.0, jobs / 30.0  # every job at 2 s; every job backed off to 30 s
    assert shared == math.ceil(jobs / 40) / 2.0
    assert shared <= old_worst
    assert (shared <= old_best) is (jobs >= 15)


def test_the_shared_file_round_trips_every_field():
    reports = recorded_reports(TAGS_RUNNING) + recorded_reports(SOMETAG)
    answer = answer_of(12.5, ["rec-running", "sometag"], reports)
    again = answer_from_json(json.loads(json.dumps(answer_to_json(answer))))
    assert again == answer and again.reports[OLD.format(7)].tags == ("sometag",)
    failed = failed_answer(1.0, ["x"], "unavailable", "down")
    assert answer_from_json(json.loads(json.dumps(answer_to_json(failed)))) == failed
    with pytest.raises(ValueError):
        answer_from_json({"polled_at": 1})


# --------------------------------------------------------------------------- one process, real HTTP



def test_a_fresh_answer_is_read_not_asked_again(tmp_path):
    with ReplayServer() as rm:
        rm.route("GET", APPS, recorded_reply(TAGS_RUNNING))
        first = SharedPoll(tmp_path, ResourceManagerRest(rm.url), interval=60)
        second = SharedPoll(tmp_path, ResourceManagerRest(rm.url), interval=60)
        with first.following("rec-running"):
            a = first.current()
            b = second.current()
        assert len(rm.requests_to(APPS)) == 1 and (first.polls, second.polls) == (1, 0)
        assert rm.requests[0].params == {"applicationTags": "rec-running"}
        assert a == b and sighting(b, REC.format(2), "rec-running").report.state == "RUNNING"


def test_follow_reports_each_change_and_returns_the_terminal_report(tmp_path):
    app, clock = REC.format(1), FakeTime(1000.0)
    stages = Timeline([
        Step(rm_apps_reply([app_object(TAGS_ACCEPTED, app)]), 1, "ACCEPTED"),
        Step(rm_apps_reply([app_object(TAGS_RUNNING, app)]), 2, "RUNNING"),
        Step(rm_apps_reply([app_object("yarn/rm-rest-app-SUCCEEDED.json", OLD.format(5), as_app=app)]), 1, "DONE"),
    ])
    with ReplayServer() as rm:
        rm.route("GET", APPS, stages)
        seen: list[ApplicationReport] = []
        poll = SharedPoll(tmp_path, ResourceManagerRest(rm.url), interval=2.0, clock=clock.clock, sleep=clock.sleep)
        final = poll.follow(app, "rec-running", seen.append)
    assert stages.served == ["ACCEPTED", "RUNNING", "RUNNING", "DONE"]
    assert [r.state for r in seen] == ["ACCEPTED", "RUNNING", "FINISHED"]  # the repeat is not passed on
    assert final.succeeded and final.application_id == app
    assert clock.now == pytest.approx(1006.0)  # one poll every 2 s, no back-off
    assert not list((tmp_path / "following").iterdir())  # off the list once followed


def test_an_unreachable_rm_is_ridden_out_for_the_grace_then_raised(tmp_path):
    clock = FakeTime(1000.0)
    dead = ResourceManagerRest("http://127.0.0.1:9", timeout=0.5)  # discard port: refused at once
    poll = SharedPoll(tmp_path, dead, interval=2.0, clock=clock.clock, sleep=clock.sleep)
    start = clock.now
    with pytest.raises(YarnUnavailable, match="unreachable"):
        poll.follow(OLD.format(5), "t", lambda r: None, unavailable_grace=10.0)
    assert 10.0 <= clock.now - start <= 12.0 and poll.polls == dead.request_count == 6


def test_an_application_the_list_does_not_show_is_asked_alone_and_the_rm_may_have_forgotten_it(tmp_path):
    app = OLD.format(10)
    with ReplayServer() as rm:
        rm.route("GET", APPS, recorded_reply(EMPTY))
        rm.route_fixture("GET", f"{APPS}/{app}", "yarn/rm-rest-app-unknown-id.txt")
        poll = SharedPoll(tmp_path, ResourceManagerRest(rm.url), interval=0.05)
        with pytest.raises(ApplicationNotFound, match=f"does not know {app}"):
            poll.follow(app, "fanout-x", lambda r: None)
        assert len(rm.requests_to(f"{APPS}/{app}")) == 1


def test_an_application_only_found_alone_is_asked_with_the_old_back_off(tmp_path):
    app, clock = OLD.format(5), FakeTime(1000.0)
    with ReplayServer() as rm:
        rm.route("GET", APPS, recorded_reply(EMPTY))  # an RM whose list leaves it out
        alone = Timeline([Step(recorded_reply("yarn/rm-rest-app-RUNNING.json"), 4, "RUNNING"),
                          Step(recorded_reply("yarn/rm-rest-app-SUCCEEDED.json"), 1, "DONE")])
        rm.route("GET", f"{APPS}/{app}", alone)
        poll = SharedPoll(tmp_path, ResourceManagerRest(rm.url), interval=2.0, clock=clock.clock, sleep=clock.sleep)
        final = poll.follow(app, "fanout-x", lambda r: None, max_poll_interval=30.0)
    assert final.succeeded and alone.served == ["RUNNING"] * 4 + ["DONE"]
    # the list goes on every 2 s; alone it is asked at the first answer once the per-job
    # back-off (2 s growing x1.5: due at 2, 5, 9.5, 16.25 s) allows: 0, 2, 6, 12, 20 s
    assert clock.now - 1000.0 == pytest.approx(20.0)


@pytest.mark.parametrize("kind, error", [("denied", YarnPermissionDenied), ("error", YarnError)])
def test_a_refused_or_bad_shared_poll_raises_in_every_follower(tmp_path, kind, error):
    watch = _Watch(SharedPoll(tmp_path, None), OLD.format(1), "t", lambda r: None, 120.0, 30.0)
    with pytest.raises(error, match="refused"):
        watch.see(failed_answer(1.0, ["t"], kind, "ResourceManager refused GET: kinit"))


def test_the_deadline_still_applies(tmp_path):
    clock = FakeTime(1000.0)
    with ReplayServer() as rm:
        rm.route("GET", APPS, recorded_reply(TAGS_RUNNING))
        poll = SharedPoll(tmp_path, ResourceManagerRest(rm.url), interval=2.0, clock=clock.clock, sleep=clock.sleep)
        with pytest.raises(YarnDeadlineExceeded, match="still RUNNING"):
            poll.follow(REC.format(2), "rec-running", lambda r: None, deadline=clock.now + 7)


def test_a_dead_followers_entry_is_dropped(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()

    def follower() -> None:
        with SharedPoll(tmp_path, None).following("fanout-dead"):
            ready.set()
            time.sleep(60)

    child = ctx.Process(target=follower)
    child.start()
    try:
        assert ready.wait(10)
        poll = SharedPoll(tmp_path, None)
        with poll.following("fanout-alive"):
            assert poll.live_tags() == ["fanout-alive", "fanout-dead"]
            os.kill(child.pid, signal.SIGKILL)  # no clean-up runs; the kernel drops its lock
            child.join(10)
            assert poll.live_tags() == ["fanout-alive"]
        assert not (tmp_path / "following" / "fanout-dead").exists()
    finally:
        child.kill()


# --------------------------------------------------------------------------- several processes


JOBS = 4
INTERVAL = 2.0
TERMINAL = ["yarn/rm-rest-app-SUCCEEDED.json", "yarn/rm-rest-app-FAILED.json", "yarn/rm-rest-app-KILLED.json",
            "yarn/rm-rest-app-SUCCEEDED.json"]


def _terminal_object(i: int, app: str) -> bytes:
    relative = TERMINAL[i % len(TERMINAL)]
    recorded = json.loads(fixture_bytes(relative))["app"]["id"]
    return app_object(relative, recorded, as_app=app)


class RunOnTheRm:
    """A fake RM for ``JOBS`` jobs, job ``i`` tagged ``fanout-job-i``: RUNNING (the recorded
    RUNNING object) until its finish time, then a recorded terminal object; listed only
    when its tag is asked about, as the RM's tag filter does."""

    def __init__(self, start: float) -> None:
        self.apps = [REC.format(i + 1) for i in range(JOBS)]
        self.tags = [f"fanout-job-{i}" for i in range(JOBS)]
        self.finish = [start + 3.0 + 1.7 * i for i in range(JOBS)]
        self.running = [app_object(TAGS_RUNNING, REC.format(2), as_app=app) for app in self.apps]
        self.done = [_terminal_object(i, app) for i, app in enumerate(self.apps)]
        self.asked_at: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, req: Request):
        now = time.monotonic()
        with self._lock:
            self.asked_at.append(now)
        asked = set(",".join(parse_qs(req.query).get("applicationTags", [""])).split(","))
        objects = [(self.done if now >= self.finish[i] else self.running)[i]
                   for i, tag in enumerate(self.tags) if tag in asked]
        return rm_apps_reply(objects)


def _follow_in_child(folder: str, url: str, app: str, tag: str, out: str) -> None:
    client = ResourceManagerRest(url)  # made after the fork, as in a Luigi task process
    poll = SharedPoll(folder, client, interval=INTERVAL)
    report = poll.follow(app, tag, lambda r: None)
    Path(out).write_text(json.dumps({"seen_at": time.monotonic(), "state": report.state,
                                     "final": report.final_status, "requests": client.request_count}))


def test_forked_followers_share_one_request_per_interval_and_each_finish_is_seen_within_3_s(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ReplayServer() as rm:
        run = RunOnTheRm(time.monotonic())
        rm.route("GET", APPS, run)
        children = [ctx.Process(target=_follow_in_child, args=(str(tmp_path / "poll"), rm.url, run.apps[i],
                                                               run.tags[i], str(tmp_path / f"out-{i}.json")))
                    for i in range(JOBS)]
        for child in children:
            child.start()
        for child in children:
            child.join(60)
        assert [c.exitcode for c in children] == [0] * JOBS
        outs = [json.loads((tmp_path / f"out-{i}.json").read_text()) for i in range(JOBS)]
        asked_at = list(run.asked_at)
        per_app = [r for r in rm.requests if r.path != APPS]
    lags = [out["seen_at"] - run.finish[i] for i, out in enumerate(outs)]
    assert all(0 <= lag <= 3.0 for lag in lags), lags
    assert [(o["state"], o["final"]) for o in outs] == [("FINISHED", "SUCCEEDED"), ("FINISHED", "FAILED"),
                                                         ("KILLED", "KILLED"), ("FINISHED", "SUCCEEDED")]
    # one list request per interval for all four, whichever process sent it; none per application
    assert not per_app
    gaps = [b - a for a, b in itertools.pairwise(asked_at)]
    assert min(gaps) >= INTERVAL - 0.3, gaps
    span = asked_at[-1] - asked_at[0]
    assert len(asked_at) <= span / INTERVAL + 1.5
    assert sum(o["requests"] for o in outs) == len(asked_at)
    assert sum(1 for o in outs if o["requests"]) >= 2  # the polling moved between processes


# --------------------------------------------------------------------------- a whole job


def test_a_detached_job_is_followed_through_the_shared_poll_to_its_end(cluster, monkeypatch):  # noqa: F811
    config = luigi.configuration.get_config()
    config.set("yarn", "shared_poll", "true")
    config.set("yarn", "wait_app_completion", "false")
    _fake(monkeypatch, "spark-submit-nowait.stderr", 0)
    task = _task(cluster)
    lists = Timeline([
        Step(recorded_reply(EMPTY), 1, "lookup"),  # before the submission: nothing to re-attach to
        Step(rm_apps_reply([app_object("yarn/rm-rest-app-ACCEPTED.json", LIVE, as_app=NOWAIT)]), 1, "ACCEPTED"),
        Step(rm_apps_reply([app_object(TAGS_RUNNING, LIVE, as_app=NOWAIT)]), 2, "RUNNING"),
        Step(rm_apps_reply([_terminal_object(0, NOWAIT)]), 1, "SUCCEEDED", before=_job_writes_artifact(cluster, task)),
    ])
    cluster["tags"][task.tag] = lists
    ok, sch = build(task)
    assert ok
    assert lists.served == ["lookup", "ACCEPTED", "RUNNING", "RUNNING", "SUCCEEDED"]
    assert not cluster["rm"].requests_to(f"{APPS}/{NOWAIT}")  # nothing asked per application
    assert sch.states() == ["SUBMITTED", "ACCEPTED", "RUNNING", "FINISHED"]
    assert sch.messages[-1] == f"FINISHED {NOWAIT} (SUCCEEDED)"
    assert f"http://localhost:8088/proxy/{LIVE}/" in sch.tracking_urls  # the recorded URL (only the id moved)
    assert 10 in sch.progress and sch.progress[-1] == 100
    result = _result(cluster, task)
    assert result.status == "trained" and result.rm_requests == len(lists.served)
