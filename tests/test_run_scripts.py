"""RunScripts end to end: a user's own Spark script, fanned out with real spark-submit
in local mode (local[1], 2 workers)."""

from __future__ import annotations

import json
import shutil
import signal
import textwrap

import pytest

from pipeline.data.labels import label_slug
from tests.spark_helpers import STOPPED_BY_CTRL_C, alive, ctrl_c, descendants, run_luigi, start_luigi, stop, wait_for

pytestmark = pytest.mark.spark

TASK_FAILED, SCHEDULING_FAILED = 30, 35  # [retcode] in luigi.cfg

SCRIPT = textwrap.dedent('''
    import sys
    from pyspark.sql import SparkSession

    name, out, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spark = SparkSession.builder.getOrCreate()
    if name == "boom":
        raise ValueError("boom: this job was told to fail")
    spark.range(rows).withColumnRenamed("id", "n").write.parquet(out)
    spark.stop()
''')


def write_jobs(work, entries):
    path = work / "jobs.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def spark_logs(work, name):
    return sorted((work / "logs" / "scripts" / label_slug(name)).glob("*-spark-submit.log"))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("scripts")
    (work / "my job.py").write_text(SCRIPT, encoding="utf-8")
    entries = [
        {"name": "a", "args": ["{name}", "{output}", "5"], "output": "out/a"},
        {"name": "b $(touch pwned)", "args": ["{name}", "{output}", "7"], "output": "out/b"},
        {"name": "c", "args": ["{name}", "out/c", "3"], "output": "out/c"},  # writes its output itself
        {"name": "boom", "args": ["{name}", "{output}", "1"], "output": "out/boom"},
    ]
    jobs = write_jobs(work, entries)
    proc = run_luigi(["RunScripts", "--script", "my job.py", "--jobs", str(jobs), "--workers", "2",
                      "--local-scheduler"], cwd=work)
    return work, proc


def test_each_job_writes_its_output_atomically(first_run):
    import pyarrow.parquet as pq

    work, proc = first_run
    out = proc.stdout + proc.stderr
    for name, rows in (("a", 5), ("b", 7), ("c", 3)):
        folder = work / "out" / name
        assert (folder / "_SUCCESS").is_file(), out[-3000:]
        assert pq.read_table(folder).num_rows == rows
    assert not (work / "pwned").exists()
    leftovers = [p.name for p in (work / "out").iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []  # committed temporaries were renamed; the failed one's removed or never made final


def test_a_failing_job_fails_alone_with_one_line_naming_its_log(first_run):
    work, proc = first_run
    assert proc.returncode == TASK_FAILED
    assert not (work / "out" / "boom").exists()
    result = json.loads((work / "logs" / "scripts" / label_slug("boom") / "result.json").read_text())
    assert result["status"] == "failed"
    assert "ValueError: boom: this job was told to fail" in result["error"]
    [log] = spark_logs(work, "boom")
    assert f"(log: {log.relative_to(work)})" in result["error"] or f"(log: {log})" in result["error"]
    summary = proc.stdout[proc.stdout.index("spark-fanout summary"):]
    assert "3 succeeded" in summary and "1 failed" in summary


def test_rerun_runs_exactly_the_missing_job(first_run):
    work, _ = first_run
    entries = json.loads((work / "jobs.json").read_text())[:3]  # without the failing one
    jobs = write_jobs(work, entries)
    shutil.rmtree(work / "out" / "a")
    proc = run_luigi(["RunScripts", "--script", "my job.py", "--jobs", str(jobs), "--workers", "2",
                      "--local-scheduler"], cwd=work)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (work / "out" / "a" / "_SUCCESS").is_file()
    assert [len(spark_logs(work, n)) for n in ("a", "b $(touch pwned)", "c")] == [2, 1, 1]
    assert "RunScripts: 3 jobs, 2 complete, 1 to run" in proc.stderr + proc.stdout


def test_duplicate_names_are_refused_before_any_job_starts(tmp_path):
    (tmp_path / "s.py").write_text(SCRIPT, encoding="utf-8")
    jobs = write_jobs(tmp_path, [{"name": "x", "args": [], "output": "o/1"}, {"name": "x", "args": [], "output": "o/2"}])
    proc = run_luigi(["RunScripts", "--script", "s.py", "--jobs", str(jobs), "--local-scheduler"], cwd=tmp_path,
                     timeout=120)
    assert proc.returncode == SCHEDULING_FAILED
    assert "job name 'x' is used by entries 1 and 2: names must be unique" in proc.stdout + proc.stderr
    assert not (tmp_path / "logs").exists() and not (tmp_path / "o").exists()


SLEEPY = textwrap.dedent('''
    import sys, time
    print("sleepy job is up", flush=True)
    time.sleep(600)
''')


def test_ctrl_c_stops_the_running_job_and_says_so_in_one_line(tmp_path):
    (tmp_path / "sleepy.py").write_text(SLEEPY, encoding="utf-8")
    jobs = write_jobs(tmp_path, [{"name": "first", "args": ["{output}"], "output": "out/first"},
                                 {"name": "second", "args": ["{output}"], "output": "out/second"}])
    proc = start_luigi(["RunScripts", "--script", "sleepy.py", "--jobs", str(jobs), "--workers", "1", "--local-scheduler"],
                       cwd=tmp_path, own_group=True)

    def up() -> bool:
        return any("sleepy job is up" in log.read_text(errors="replace") for log in spark_logs(tmp_path, "first"))

    try:
        assert wait_for(up, timeout=240, interval=0.1), proc.communicate()[0][-3000:]
        tree = descendants(proc.pid)
        ctrl_c(proc)
        out, _ = proc.communicate(timeout=120)
        assert wait_for(lambda: not alive(tree), timeout=20), [p.cmdline()[:3] for p in alive(tree)]
    finally:
        stop(proc, signal.SIGKILL)
    assert proc.returncode == STOPPED_BY_CTRL_C, out[-3000:]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-3000:]
    assert [line for line in out.splitlines() if line.startswith("stopped: ")] == [
        "stopped: Ctrl-C (SIGINT): 1 job stopped (first), 1 not started; rerun to continue (what finished is kept)"]
    summary = out[out.index("spark-fanout summary (jobs):"):].splitlines()
    assert summary[1].split() == ["job", "status", "time", "output", "/", "error"]
    [first] = [line for line in summary if line.startswith("first ")]
    assert " interrupted " in first and "stopped by Ctrl-C (SIGINT) before it finished" in first
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no output, no temporary
