"""At most ``[yarn] max_concurrent_submits`` spark-submit JVMs submitting at once, across
Luigi's worker processes, while jobs in flight stay capped by ``--workers`` only; local
jobs capped by what the machine holds (issue 13).

The jobs replay the recorded cluster-mode spark-submit (tests/fake_bin) behind a small
wrapper that counts, from outside the controller, how many spark-submits are *submitting*
(started, not yet past the part a real one spends zipping and uploading) and how many are
*alive* at once. Counted, not timed: the wrapper lists the others' marker files.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path

import luigi
import pytest

from pipeline.data.results import current_run_id
from pipeline.errors import ConfigError
from pipeline.flows.scripts import RunScript, RunScripts
from pipeline.runner import slots
from pipeline.runner.slots import (
    SUBMIT_JVM_BYTES,
    SlotPool,
    local_job_cap,
    parse_memory,
    parse_submit_cap,
    submit_job_cap,
)
from tests.test_yarn_cluster_path import FAKE_BIN, RecordingScheduler, build, logged
from tests.test_yarn_cluster_path import cluster as cluster  # noqa: F401 - the shared pytest fixture

WRAPPER = """\
import os, subprocess, sys, time
d = os.environ["SLOTS_TEST_DIR"]
def enter(kind):
    mark = os.path.join(d, kind, str(os.getpid()))
    open(mark, "w").close()
    with open(os.path.join(d, kind + ".seen"), "a") as fh:
        fh.write("%d\\n" % len(os.listdir(os.path.join(d, kind))))
    return mark
alive = enter("alive")
submitting = enter("submitting")
time.sleep(float(os.environ.get("SLOTS_TEST_HOLD", "0.5")))  # a real one zips and uploads here
os.unlink(submitting)
if os.environ.get("SLOTS_TEST_LOCAL"):  # a local job: write the output, as the script would
    out = sys.argv[-1]
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "_SUCCESS"), "w").close()
    rc = 0
else:
    rc = subprocess.call([sys.executable, os.environ["SLOTS_TEST_FAKE"]] + sys.argv[1:])
os.unlink(alive)
sys.exit(rc)
"""


def _counting_spark_submit(tmp_path: Path, monkeypatch) -> Path:
    d = tmp_path / "counts"
    for kind in ("alive", "submitting"):
        (d / kind).mkdir(parents=True)
    script = tmp_path / "spark-submit"
    script.write_text(f"#!{sys.executable}\n{WRAPPER}")
    script.chmod(0o755)
    monkeypatch.setenv("SLOTS_TEST_DIR", str(d))
    monkeypatch.setenv("SLOTS_TEST_FAKE", str(FAKE_BIN / "spark-submit"))
    return script


def _max_seen(tmp_path: Path, kind: str) -> int:
    path = tmp_path / "counts" / f"{kind}.seen"
    return max(int(n) for n in path.read_text().split())


def _jobs(tmp_path: Path, base: str, names: tuple[str, ...]) -> Path:
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps([{"name": n, "args": ["{output}"], "output": f"{base}/out/{n}"} for n in names]))
    return jobs


@pytest.fixture
def yarn_jobs(cluster, tmp_path, monkeypatch):  # noqa: F811 - the imported fixture
    """RunScript jobs on the recorded YARN path through the counting spark-submit."""
    config = luigi.configuration.get_config()
    config.set("spark", "spark_submit", str(_counting_spark_submit(tmp_path, monkeypatch)))
    config.set("yarn", "spark_archive", "false")  # another test's subject
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # this test's own slot files
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_STDERR", "spark-submit-succeeded.stderr")
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_RC", "0")
    base = cluster["models"].rsplit("/", 1)[0]
    cluster["hdfs"].put_dir("/out")
    script = tmp_path / "job.py"
    script.write_text("raise SystemExit('never run')\n")
    publish = RunScript.after_success

    def job_wrote_its_output(self):
        from pipeline.storage import storage_for  # over HTTP: this runs in a forked worker process

        storage_for(self.temp_location).write_bytes(self.temp_location.join("_SUCCESS"), b"")
        publish(self)

    monkeypatch.setattr(RunScript, "after_success", job_wrote_its_output)
    return {**cluster, "script": script, "base": base}


def test_submissions_are_capped_across_worker_processes_but_jobs_in_flight_are_not(yarn_jobs, tmp_path, monkeypatch):
    luigi.configuration.get_config().set("yarn", "max_concurrent_submits", "2")
    monkeypatch.setenv("FAKE_SPARK_SUBMIT_SLEEP", "1.5")  # stays alive after YARN accepted the job
    jobs = _jobs(tmp_path, yarn_jobs["base"], ("a", "b", "c", "d", "e"))
    task = RunScripts(script=str(yarn_jobs["script"]), jobs=str(jobs), log_dir=str(yarn_jobs["logs"]))
    assert luigi.build([task], local_scheduler=True, workers=5, log_level="ERROR")
    assert _max_seen(tmp_path, "submitting") == 2  # the cap, reached and never passed
    assert _max_seen(tmp_path, "alive") >= 3  # a submitted job frees its slot; it stays in flight


def test_waiting_for_a_submission_slot_shows_in_luigid(yarn_jobs, tmp_path):
    luigi.configuration.get_config().set("yarn", "max_concurrent_submits", "1")
    held = SlotPool(slots.slots_folder(current_run_id()), "submit", 1).acquire()  # another job of this run is submitting
    assert held.held
    released = threading.Timer(15, held.release)  # the test's own deadline if no message ever comes
    released.start()
    sch = RecordingScheduler(on_message=lambda m: m.startswith("waiting for a submission slot") and held.release())
    jobs = _jobs(tmp_path, yarn_jobs["base"], ("a",))
    task = RunScripts(script=str(yarn_jobs["script"]), jobs=str(jobs), log_dir=str(yarn_jobs["logs"]))
    try:
        ok, _ = build(task, sch)
    finally:
        released.cancel()
    assert ok
    waits = [m for m in sch.messages if m.startswith("waiting for a submission slot")]
    assert waits == ["waiting for a submission slot: at most 1 spark-submit JVM submitting at once "
                     "([yarn] max_concurrent_submits = 1)"]
    assert sch.messages.index(waits[0]) < next(i for i, m in enumerate(sch.messages) if m.startswith("SUBMITTED"))


def test_local_jobs_are_capped_for_their_whole_run(tmp_path, monkeypatch):
    config = luigi.configuration.get_config()
    saved = {k: config.get("spark", k, None) for k in ("spark_submit", "master")}
    config.set("spark", "spark_submit", str(_counting_spark_submit(tmp_path, monkeypatch)))
    config.set("spark", "master", "local[1]")
    config.set("fanout", "max_local_jobs", "1")
    monkeypatch.setenv("SLOTS_TEST_LOCAL", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    script = tmp_path / "job.py"
    script.write_text("raise SystemExit('never run')\n")
    jobs = _jobs(tmp_path, str(tmp_path), ("a", "b", "c"))
    try:
        with logged() as lines:
            task = RunScripts(script=str(script), jobs=str(jobs), log_dir=str(tmp_path / "logs"))
            assert luigi.build([task], local_scheduler=True, workers=3, log_level="ERROR")
    finally:
        config.remove_option("fanout", "max_local_jobs")
        for key, value in saved.items():
            config.set("spark", key, value) if value is not None else config.remove_option("spark", key)
    assert _max_seen(tmp_path, "alive") == 1
    assert all((tmp_path / "out" / n / "_SUCCESS").exists() for n in "abc")
    del lines  # the announcement is logged in a forked worker process: see the next test


def test_the_local_cap_is_measured_and_announced_once_per_run(tmp_path, caplog, monkeypatch):
    """Measured again per job, free memory would shrink by the jobs already running."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    free = iter([22, 3, 1, 22])  # GiB free at each measurement: jobs started in between

    def measure():
        return local_job_cap(cores=16, available_bytes=next(free) * 2**30, driver_memory="1g", master="local[1]")

    with caplog.at_level(logging.INFO, logger="luigi-interface"):
        first = [slots.run_cap(slots.slots_folder("run-1"), "local", measure) for _ in range(3)]
        other = slots.run_cap(slots.slots_folder("run-2"), "local", measure)
    assert [cap.jobs for cap in first] == [14, 14, 14] and other.jobs == 2  # run-2 measured anew (3 GiB free)
    announced = [r.getMessage() for r in caplog.records if r.getMessage().startswith("local mode: at most")]
    assert len(announced) == 2


def test_auto_lets_as_many_submit_at_once_as_free_memory_holds(yarn_jobs, tmp_path, monkeypatch):
    """``auto``: with 8 GiB free, 27 JVMs of 300 MiB fit, so 4 jobs all submit at once (the
    default of 3 lets 3); the cap is decided once, in the run's folder."""
    luigi.configuration.get_config().set("yarn", "max_concurrent_submits", "auto")
    monkeypatch.setenv("SLOTS_TEST_HOLD", "3")  # long enough for the 4 submissions to overlap
    monkeypatch.setattr(slots, "available_memory", lambda: 8 * 2**30)  # the forked workers inherit it
    run_id = current_run_id()
    jobs = _jobs(tmp_path, yarn_jobs["base"], ("a", "b", "c", "d"))
    task = RunScripts(script=str(yarn_jobs["script"]), jobs=str(jobs), log_dir=str(yarn_jobs["logs"]), run_id=run_id)
    assert luigi.build([task], local_scheduler=True, workers=4, log_level="ERROR")
    assert _max_seen(tmp_path, "submitting") == 4
    jobs_at_once, reason = (slots.slots_folder(run_id) / "submit-cap").read_text().split("\n", 1)
    assert jobs_at_once == "27" and reason.startswith("8.0 GiB free / 300 MiB per submitting JVM -> 27"), reason


def test_the_submission_cap_follows_free_memory_capped_by_workers_and_a_number_overrides_it():
    gib = 2**30
    # this machine: ~23 GiB free, --workers 20: the workers decide
    cap = submit_job_cap("auto", available_bytes=23 * gib, workers=20)
    assert cap.jobs == 20 and cap.reason == "23.0 GiB free / 300 MiB per submitting JVM -> 78; --workers 20"
    assert submit_job_cap("auto", available_bytes=4 * SUBMIT_JVM_BYTES + 1, workers=20).jobs == 4  # memory decides
    assert submit_job_cap(" Auto ", available_bytes=SUBMIT_JVM_BYTES // 2, workers=20).jobs == 1  # at least one
    assert submit_job_cap("auto", available_bytes=2 * gib, workers=None).jobs == 6  # luigi.build: workers unknown
    fixed = submit_job_cap("3", available_bytes=23 * gib, workers=20)
    assert (fixed.jobs, fixed.reason) == (3, "[yarn] max_concurrent_submits = 3")
    assert submit_job_cap(0, available_bytes=gib, workers=20).jobs == 0  # no cap
    assert slots.cap_line("submit", fixed) == "at most 3 spark-submit JVMs submitting at once ([yarn] max_concurrent_submits = 3)"
    assert slots.cap_line("submit", cap).endswith("; [yarn] max_concurrent_submits overrides")
    for bad in ("lots", "-1", "2.5", ""):
        with pytest.raises(ConfigError, match=r"^\[yarn\] max_concurrent_submits = .* is neither auto nor a whole number"):
            parse_submit_cap(bad)


def test_the_submission_cap_is_measured_and_announced_once_per_run(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    free = iter([6, 1, 1, 3])  # GiB free at each measurement: spark-submits started in between

    def measure():
        return submit_job_cap("auto", available_bytes=next(free) * 2**30, workers=50)

    with caplog.at_level(logging.INFO, logger="luigi-interface"):
        first = [slots.run_cap(slots.slots_folder("run-1"), "submit", measure) for _ in range(3)]
        other = slots.run_cap(slots.slots_folder("run-2"), "submit", measure)
    assert [cap.jobs for cap in first] == [20, 20, 20] and other.jobs == 3  # run-2 measured anew (1 GiB free)
    announced = [r.getMessage() for r in caplog.records if "spark-submit JVMs submitting at once" in r.getMessage()]
    assert announced == ["at most 20 spark-submit JVMs submitting at once (6.0 GiB free / 300 MiB per submitting "
                         "JVM -> 20; --workers 50); [yarn] max_concurrent_submits overrides",
                         "at most 3 spark-submit JVMs submitting at once (1.0 GiB free / 300 MiB per submitting "
                         "JVM -> 3; --workers 50); [yarn] max_concurrent_submits overrides"]


def test_the_local_cap_follows_cores_and_free_memory_and_a_setting_overrides_it():
    gib = 2**30
    # the laptop: 2 cores, ~22 GiB free, driver 1g, local[1]: cores decide
    cap = local_job_cap(cores=2, available_bytes=22 * gib, driver_memory="1g", master="local[1]")
    assert cap.jobs == 2 and "2 cores" in cap.reason
    # many cores, little memory: memory decides (1 GiB heap + 0.5 GiB overhead per job)
    assert local_job_cap(cores=16, available_bytes=4 * gib, driver_memory="1g", master="local[1]").jobs == 2
    assert local_job_cap(cores=16, available_bytes=64 * gib, driver_memory="2g", master="local[4]").jobs == 4
    assert local_job_cap(cores=8, available_bytes=64 * gib, driver_memory="1g", master="local[*]").jobs == 1
    assert local_job_cap(cores=2, available_bytes=gib // 4, driver_memory="4g", master="local").jobs == 1
    assert local_job_cap(cores=2, available_bytes=gib, driver_memory="1g", master="local", configured=6).jobs == 6
    assert parse_memory("512m") == 512 * 2**20 and parse_memory("2048") == 2 * gib and parse_memory("1G") == gib
    with pytest.raises(ValueError, match="not a Spark memory size"):
        parse_memory("lots")
