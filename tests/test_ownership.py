"""Done means done, without a JVM: what the tool may delete (only what carries its
record, only once its writer is gone), what "complete" means (computed from these
inputs), and the refusals that come before any job starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import luigi
import psutil
import pyarrow.parquet as pq
import pytest

from pipeline.data.artifacts import CONFIG_FILE, config_id, remove_stale_temporaries, training_config
from pipeline.data.datasets import data_identity, dataset_fingerprint, forget_identities
from pipeline.data.jobs_file import validate_jobs
from pipeline.data.leaderboard import LEADERBOARD
from pipeline.data.outputs import OwnedOutput
from pipeline.data.reports import write_report
from pipeline.errors import ConfigError, JobFailed
from pipeline.flows.demo import MakeDemoData, make_demo_frame
from pipeline.flows.report import Report
from pipeline.flows.train import TrainAll
from pipeline.runner.job_state import JobRun
from pipeline.storage import storage_for
from pipeline.storage.locations import first_overlap, first_overlap_across, parse_location
from pipeline.storage.webhdfs import WebHdfsStorage
from tasks.artifact_writer import ArtifactWriter
from tasks.layout import MARKER, temp_name, temp_token
from tasks.ownership import (
    OWNER_FILE,
    encode_record,
    owner_gone,
    owner_record,
    parse_record,
    process_alive,
    process_started,
    this_host,
)
from tests.spark_helpers import run_luigi, wait_for
from tests.webhdfs_server import WebHdfsServer

SCHEDULING_FAILED = 35  # [retcode] scheduling_error in luigi.cfg


@pytest.fixture(autouse=True)
def _fresh_fingerprints():
    forget_identities()  # tests rebuild data in place within one process
    yield
    forget_identities()


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data.parquet"
    folder.mkdir()
    pq.write_table(make_demo_frame(rows=200, features=3, labels=2, seed=1), folder / "part-0.parquet")
    return folder


def gone_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- who may remove a temporary ---------------------------------------------------------

def _alive(pid: int, started: float | None) -> bool:
    return pid == 1


@pytest.mark.parametrize("record, fallback, gone", [
    (None, None, False),  # nothing to judge by: keep it
    (None, 1000.0 - 30, False),  # no record, recently touched
    (None, 1000.0 - 700, True),  # no record, untouched for longer than the lease
    ({"tool": "spark-fanout", "host": "here", "pid": 1}, None, False),  # same host, alive
    ({"tool": "spark-fanout", "host": "here", "pid": 2}, None, True),  # same host, exited
    ({"tool": "spark-fanout", "host": "node-7", "pid": 2, "heartbeat": 1000.0 - 100}, None, False),  # fresh lease
    ({"tool": "spark-fanout", "host": "node-7", "pid": 2, "heartbeat": 1000.0 - 700}, None, True),  # expired lease
    ({"tool": "spark-fanout", "host": "node-7", "pid": 2, "heartbeat": 1000.0 - 700, "lease_seconds": 3600}, None,
     False),  # the writer's own, longer lease counts
    ({"tool": "someone-else", "host": "here", "pid": 2}, None, False),  # not our record: judged as none
])
def test_owner_gone(record, fallback, gone):
    assert owner_gone(record, now=1000.0, lease_seconds=600, here="here", alive=_alive, fallback_time=fallback) is gone


def _temp(root: Path, slug: str, record: dict | None, pid: int = 4242) -> Path:
    folder = root / temp_name(slug, temp_token(pid, "0123456789"))
    folder.mkdir(parents=True)
    (folder / "model.txt").write_text("half written")
    if record is not None:
        (folder / OWNER_FILE).write_bytes(encode_record(record))
    return folder


def test_an_exited_writer_not_yet_reaped_is_gone():
    # Where nothing reaps orphans (a container's pid 1), a killed job's driver stays a zombie.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, timeout=30)
    try:
        assert not process_alive(child.pid, process_started(child.pid))
        assert process_alive(os.getpid(), process_started(os.getpid()))
    finally:
        child.wait()


def test_a_live_writers_temporary_is_left_alone_and_a_gone_ones_removed(tmp_path):
    slug = "label-00-aaaaaaaa"
    live = _temp(tmp_path / "a", slug, owner_record(600))  # this very process: alive
    dead = _temp(tmp_path / "b", slug, {**owner_record(600), "pid": gone_pid()})
    remote = _temp(tmp_path / "c", slug, {**owner_record(600), "host": "node-7"})
    # killed before writing its record: on local files, the pid in the name decides
    silent_live = _temp(tmp_path / "d", slug, None, pid=os.getpid())
    silent_dead = _temp(tmp_path / "e", slug, None, pid=gone_pid())

    def removed(folder: str) -> list:
        return remove_stale_temporaries(parse_location(str(tmp_path / folder)), slug)

    assert removed("a") == [] and removed("c") == [] and removed("d") == []
    assert removed("b") == [parse_location(str(dead))] and removed("e") == [parse_location(str(silent_dead))]
    assert live.is_dir() and remote.is_dir() and silent_live.is_dir() and not dead.exists() and not silent_dead.exists()


def test_the_writer_claims_its_temporary_keeps_it_fresh_and_signs_the_artifact(tmp_path):
    root = tmp_path / "lightgbm-0123abcd"
    with ArtifactWriter(None, f"file://{root}", "label-00-aaaaaaaa", lease_seconds=0.4) as writer:
        owner_file = Path(writer.temp) / OWNER_FILE
        first = parse_record(owner_file.read_bytes())
        assert first["pid"] == os.getpid() and first["host"] == this_host()
        time.sleep(0.35)  # the heartbeat runs every lease/4
        assert parse_record(owner_file.read_bytes())["heartbeat"] > first["heartbeat"]
        writer.write_bytes("model.txt", b"booster")
        final = writer.commit({"label": "label_00", "format_version": 1, "config": "lightgbm-0123abcd",
                               "application_id": "local-1", "run_id": "r1", "task_id": "t1"})
    assert not (Path(final) / OWNER_FILE).exists()  # the marker, not an owner, says whose it is
    marker = parse_record((Path(final) / MARKER).read_bytes())
    assert marker["identity"] == "lightgbm-0123abcd" and marker["application_id"] == "local-1"
    assert marker["label"] == "label_00"


# --- identity of inputs ------------------------------------------------------------------

def test_the_fingerprint_sees_a_rebuild_an_append_and_nothing_else(data):
    first = dataset_fingerprint(str(data))
    assert first == dataset_fingerprint(str(data))
    assert first["files"] == 1 and first["folders"] == 1 and first["bytes"] == (data / "part-0.parquet").stat().st_size
    pq.write_table(make_demo_frame(rows=300, features=3, labels=2, seed=2), data / "part-0.parquet")  # rebuilt
    rebuilt = dataset_fingerprint(str(data))
    assert rebuilt != first
    pq.write_table(make_demo_frame(rows=10, features=3, labels=2, seed=3), data / "part-1.parquet")  # appended
    assert dataset_fingerprint(str(data)) not in (first, rebuilt)


def test_the_fingerprint_on_hdfs_costs_two_requests_however_many_files():
    with WebHdfsServer() as nn:
        for i in range(50):
            nn.put_file(f"/data/events/day={i}/part-0.parquet", b"x" * (i + 1))
        store = WebHdfsStorage([nn.url], user="alice")
        before = len(nn.requests)
        summary = store.content_summary(parse_location("hdfs:///data/events"))
        assert len(nn.requests) - before == 2
        assert (summary.length, summary.files, summary.folders) == (sum(range(1, 51)), 50, 51)
        assert store.content_summary(parse_location("hdfs:///data/none")) is None


def test_rebuilt_data_is_another_configuration_and_path_identity_keeps_the_old_id(tmp_path, data):
    def plan():
        return TrainAll(data=str(data), models=str(tmp_path / "m"), run_id=f"run-{time.monotonic()}").plan

    first = plan()
    assert plan()["config"] == first["config"]  # untouched data: the same configuration
    pq.write_table(make_demo_frame(rows=300, features=3, labels=2, seed=2), data / "part-0.parquet")
    assert plan()["config"] != first["config"]
    config = luigi.configuration.get_config()
    config.set("fanout", "data_identity", "path")
    try:
        path_only = plan()
        before_fingerprints = config_id(training_config(
            engine="lightgbm", params=TrainAll(data=str(data)).check_training_parameters(), features=path_only["features"],
            balance_ratio=1.0, test_fraction=0.2, seed=42, data=parse_location(str(data)).uri()))
        assert path_only["config"] == before_fingerprints  # what every earlier version named it
        assert data_identity(str(data), "any") is None
    finally:
        config.remove_option("fanout", "data_identity")


def test_a_configuration_folder_we_did_not_make_is_refused(tmp_path, data):
    name = TrainAll(data=str(data), models=str(tmp_path / "m")).plan["config"]
    (tmp_path / "m" / name / CONFIG_FILE).unlink()
    (tmp_path / "m" / name / "label-00-0123abcd").mkdir()  # would read as a finished label
    with pytest.raises(ConfigError, match="was not made by spark-fanout .*no config.json"):
        TrainAll(data=str(data), models=str(tmp_path / "m"), run_id="again").plan  # noqa: B018


def test_models_inside_the_data_are_refused(tmp_path, data):
    with pytest.raises(ConfigError, match="overlap"):
        TrainAll(data=str(data), models=str(data / "models")).plan  # noqa: B018


# --- nesting ---------------------------------------------------------------------------

def test_overlaps_are_found_in_any_order():
    p = parse_location
    assert first_overlap([("a", p("/x/a")), ("b", p("/x/ab")), ("c", p("/x/a/b"))]) == ("a", "c")
    assert first_overlap([("a", p("/x/a")), ("b", p("/x/ab")), ("c", p("/x/b"))]) is None
    assert first_overlap([("a", p("/x/a")), ("b", p("hdfs://nn/x/a"))]) is None  # other file systems
    outs = [("o1", p("/x/out")), ("o2", p("/y/o"))]
    assert first_overlap_across(outs, [("i", p("/x"))]) == ("o1", "i")  # an output inside an input
    assert first_overlap_across(outs, [("i", p("/y/o/deep/er"))]) == ("o2", "i")  # an input inside an output
    assert first_overlap_across(outs, [("i", p("/y/ob")), ("j", p("/x/ou"))]) is None
    assert first_overlap_across(outs, [("i", p("/z")), ("j", p("/z"))]) is None  # inputs may overlap each other


@pytest.mark.parametrize("entries, fragment", [
    ([{"name": "outer", "args": [], "output": "nest/a"}, {"name": "inner", "args": [], "output": "nest/a/b"}],
     "the output of job 'outer' and the output of job 'inner' overlap"),
    ([{"name": "j", "args": [], "output": "data/derived", "inputs": ["data"]}],
     "the output of job 'j' and an input of job 'j' overlap"),
    ([{"name": "j", "args": [], "output": "out/j", "inputs": "data"}], '"inputs" must be a list'),
])
def test_nested_outputs_are_refused(entries, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        validate_jobs(entries, "jobs.json")


def test_jobs_may_share_inputs():
    jobs = validate_jobs([{"name": n, "args": [], "output": f"out/{n}", "inputs": ["data", "data/x"]} for n in "ab"],
                         "jobs.json")
    assert jobs[0].inputs == ("data", "data/x")


# --- refusals before any job, from the command line -----------------------------------------

def _write_jobs(work: Path, entries: list[dict]) -> None:
    (work / "job.py").write_text("import sys\nprint(sys.argv)\n")
    (work / "jobs.json").write_text(json.dumps(entries))


def _refused(proc: subprocess.CompletedProcess, fragment: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == SCHEDULING_FAILED, out[-3000:]
    assert fragment in out and "Traceback" not in out, out[-3000:]


def test_runscripts_refuses_a_users_folder_and_touches_nothing(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("four years of work")
    other = tmp_path / "out" / "other"
    other.mkdir(parents=True)
    (other / "notes.md").write_text("not a job's output")
    for output in ("precious", "out/other"):  # a script writing its output itself, and one told {output}
        args = ["{name}"] if output == "precious" else ["{output}"]
        _write_jobs(tmp_path, [{"name": "self", "args": args, "output": output}])
        proc = run_luigi(["RunScripts", "--local-scheduler", "--script", "job.py", "--jobs", "jobs.json"], cwd=tmp_path)
        _refused(proc, f"{tmp_path / output} exists and was not made by spark-fanout")
    assert (precious / "thesis.txt").read_text() == "four years of work"
    assert (other / "notes.md").is_file()
    assert not list((tmp_path / "logs").rglob("*-spark-submit.log"))  # no job started


def test_nested_outputs_are_refused_before_any_job(tmp_path):
    _write_jobs(tmp_path, [{"name": "outer", "args": ["{output}"], "output": "nest/a"},
                           {"name": "inner", "args": ["{output}"], "output": "nest/a/b"}])
    proc = run_luigi(["RunScripts", "--local-scheduler", "--script", "job.py", "--jobs", "jobs.json"], cwd=tmp_path)
    _refused(proc, "overlap (one lies inside the other)")
    assert not (tmp_path / "nest").exists()


def test_predict_refuses_an_out_it_did_not_make(tmp_path, data):
    copy = tmp_path / "copy.parquet"
    copy.mkdir()
    (copy / "part-0.parquet").write_bytes((data / "part-0.parquet").read_bytes())
    (copy / "_SUCCESS").write_text("")
    proc = run_luigi(["Predict", "--local-scheduler", "--data", str(data), "--models", "models", "--config",
                      "lightgbm-0123abcd", "--out", str(copy)], cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert f"{copy} exists and was not made by spark-fanout" in out and "Traceback" not in out
    assert sorted(p.name for p in copy.iterdir()) == ["_SUCCESS", "part-0.parquet"]


# --- other writers of the tool -------------------------------------------------------------

def test_demo_data_never_replaces_a_folder_it_did_not_make(tmp_path):
    target = tmp_path / "data" / "demo.parquet"
    target.mkdir(parents=True)
    (target / "mine.parquet").write_text("a user's data, no _SUCCESS")
    task = MakeDemoData(path=str(target), rows=20, features=2, labels=1)
    assert luigi.build([task], local_scheduler=True, log_level="ERROR") is False
    assert (target / "mine.parquet").is_file() and len(list(target.iterdir())) == 1
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".tmp-")]


def test_report_and_leaderboard_never_overwrite_a_users_file(tmp_path):
    (tmp_path / "m").mkdir()
    page = tmp_path / "report.html"
    page.write_text("<html>my own page</html>")
    task = Report(models=str(tmp_path / "m"), out=str(page), log_dir=str(tmp_path / "logs"))
    assert luigi.build([task], local_scheduler=True, log_level="ERROR") is False
    assert page.read_text() == "<html>my own page</html>"
    page.unlink()
    assert luigi.build([task], local_scheduler=True, log_level="ERROR") is True
    assert luigi.build([task], local_scheduler=True, log_level="ERROR") is True  # its own page is replaced
    root = tmp_path / "m"
    (root / f"{LEADERBOARD}.json").write_text('{"mine": true}')
    with pytest.raises(ConfigError, match="was not written by spark-fanout"):
        write_report(parse_location(str(root)), LEADERBOARD, [], {})
    assert (root / f"{LEADERBOARD}.json").read_text() == '{"mine": true}'


class _Output(OwnedOutput):
    """The claim logic of an owned output, without a job around it."""

    task_id = "Job_x_0123456789"
    title = "job 'x'"

    def __init__(self, out: str) -> None:
        self.out = out

    def output_identity(self) -> dict:
        return {"inputs": "fixed"}


def test_a_claim_of_a_live_writer_is_waited_for_and_never_broken(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        job = _Output(str(tmp_path / "out"))
        storage = storage_for(job.out_location)
        storage.makedirs(job.temp_location)
        storage.write_bytes(job.claim_location, encode_record({**owner_record(600), "pid": holder.pid, "pid_started": process_started(holder.pid)}))
        with pytest.raises(JobFailed, match=f"pid {holder.pid} on .* is still writing"):
            job.claim_output(JobRun(deadline=time.monotonic() + 0.2), lambda message: None)
        assert storage.exists(job.temp_location)  # the live writer's work stays
    finally:
        holder.kill()
        holder.wait()
    run = JobRun()
    with run.resources:
        assert job.claim_output(run, lambda message: None) is True  # its writer is gone now
        assert not storage.exists(job.temp_location)
        assert parse_record(storage.read_bytes(job.claim_location))["pid"] == os.getpid()
    assert not storage.exists(job.claim_location)  # released when the job is over
