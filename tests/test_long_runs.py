"""Long runs stay readable: jobs start in the order they were given (Luigi's real
scheduler), and a summary of more than 40 rows prints what needs attention and writes
the full table to the log folder (the real command line; no JVM: the failing jobs stop
at a missing spark-submit)."""

from __future__ import annotations

import configparser
import hashlib
import json
import re
import subprocess

import pyarrow.parquet as pq
from luigi.scheduler import Scheduler
from luigi.worker import Worker

from pipeline.data import results
from pipeline.data.jobs_file import ScriptJob
from pipeline.data.outputs import identity_of
from pipeline.flows.demo import make_demo_frame
from pipeline.flows.scripts import RunScripts, job_identity
from pipeline.flows.train import TrainAll
from tasks.ownership import MADE_FILE, encode_record, made_record
from tests.conftest import REPO
from tests.spark_helpers import controller_env, luigi_argv

TASK_FAILED = 30  # [retcode] in luigi.cfg


def start_order(task, unit) -> list[list[str]]:
    """The jobs Luigi's scheduler hands out for ``task``, in order (each one a batch's
    members or a single unit), every job marked done once handed out."""
    scheduler = Scheduler(prune_on_get_work=True, record_task_history=False)
    worker = Worker(scheduler=scheduler, worker_processes=1)
    worker.add(task)
    handed = []
    while True:
        work = scheduler.get_work(worker=worker._id)
        ids = work.get("batch_task_ids") or [work["task_id"]]
        if ids[0] in (None, task.task_id):
            return handed
        handed.append([getattr(worker._scheduled_tasks[i], unit) for i in ids])
        for task_id in ids:
            scheduler.add_task(worker=worker._id, task_id=task_id, status="DONE")


def write_jobs(folder, names):
    (folder / "job.py").write_text("print('never run here')\n", encoding="utf-8")
    jobs = folder / "jobs.json"
    jobs.write_text(json.dumps([{"name": n, "args": ["{output}"], "output": f"out/{n}"} for n in names]), encoding="utf-8")
    return jobs


def test_script_jobs_start_in_the_order_of_the_jobs_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = [f"j{i}" for i in range(200)]
    jobs = write_jobs(tmp_path, names)
    order = start_order(RunScripts(script="job.py", jobs=str(jobs)), "job")
    assert [members for [members] in order] == names


def test_batches_take_labels_in_the_order_given(tmp_path):
    data = tmp_path / "data.parquet"
    data.mkdir()
    pq.write_table(make_demo_frame(rows=60, features=2, labels=12, seed=1), data / "part-0.parquet")
    labels = [f"label_{i:02d}" for i in (11, 3, 7, 0, 9, 1, 5, 10, 2, 8, 4, 6)]
    task = TrainAll(data=str(data), models=str(tmp_path / "models"), labels=labels, batch_size="3",
                    log_dir=str(tmp_path / "logs"))
    assert start_order(task, "label") == [list(labels[i:i + 3]) for i in range(0, 12, 3)]


def test_a_long_summary_shows_what_needs_attention_and_writes_the_full_table(tmp_path):
    names = [f"job {i}" for i in range(45)]
    failing = ["job 3", "job 17", "job 44"]
    jobs = write_jobs(tmp_path, names)
    digest = hashlib.sha256((tmp_path / "job.py").read_bytes()).hexdigest()
    for name in names:
        if name not in failing:  # complete: committed by rename, our record naming these inputs
            out = tmp_path / "out" / name
            out.mkdir(parents=True)
            (out / "_SUCCESS").touch()
            job = ScriptJob(name, ("{output}",), str(out))
            parts = job_identity(job, digest, {}, "any run")
            (out / MADE_FILE).write_bytes(encode_record(made_record("script", identity_of(parts), inputs=parts)))
    config = configparser.ConfigParser()
    config.read(REPO / "luigi.cfg")
    config.set("spark", "spark_submit", str(tmp_path / "missing" / "spark-submit"))  # fails each job before a JVM
    with open(tmp_path / "luigi.cfg", "w", encoding="utf-8") as fh:
        config.write(fh)
    proc = subprocess.run(luigi_argv("RunScripts", "--script", "job.py", "--jobs", str(jobs), "--local-scheduler"),
                          cwd=tmp_path, env=controller_env(LUIGI_CONFIG_PATH=str(tmp_path / "luigi.cfg")),
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == TASK_FAILED, out[-3000:]
    assert "Traceback" not in out
    started = re.findall(r"started   job '([^']+)'", out)
    assert started == failing  # in the jobs file's order
    summary = proc.stdout[proc.stdout.index("spark-fanout summary (jobs):"):].splitlines()[1:]
    assert summary[0].split() == ["job", "status", "time", "output", "/", "error"]
    rows = [line for line in summary[2:] if line.startswith("job ")]
    assert [" ".join(r.split()[:2]) for r in rows] == failing  # only what needs attention, in order
    assert all(" failed " in r and "spark-submit " in r for r in rows)
    assert "42 done earlier, 3 failed" in summary
    [pointer] = [line for line in summary if line.startswith("every job (45 rows): ")]
    table = (tmp_path / pointer.split(": ", 1)[1]).read_text(encoding="utf-8")
    assert pointer.split(": ", 1)[1].startswith("logs/summary-") and len(summary) < 12
    full = [line for line in table.splitlines()[3:] if line.startswith("job ")]
    assert [" ".join(r.split()[:2]) for r in full] == names
    assert table.count("output complete, not rerun") == 42


def test_the_closing_line_counts_each_outcome_and_names_what_needs_attention():
    statuses = ["trained", "done earlier", "failed", "interrupted", "interrupted", "not run", "trained"]
    rows = [{"label": f"l{i}", "status": s, "seconds": None, "detail": ""} for i, s in enumerate(statuses)]
    assert results.outcome(rows) == "2 labels trained, 1 done earlier, 1 failed (l2), 2 stopped (l3, l4), 1 not started"
    assert results.outcome(rows[5:6], "job") == "1 job not started"
    marked = results.mark_not_started(rows, "the run was stopped by SIGTERM first")
    assert marked[5]["detail"] == "not started: the run was stopped by SIGTERM first; rerun to continue"
    assert marked[:5] == rows[:5]
