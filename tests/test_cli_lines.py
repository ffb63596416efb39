"""What the ``luigi`` command line prints: our errors as one line (no Luigi traceback
before them), one line per job start and finish instead of Luigi's DEBUG log, and
Luigi's own log back with ``--console-log luigi``. No Spark: scheduling errors stop
before any job, and the job lines are checked on recorded results."""

from __future__ import annotations

import configparser
import logging
import os
import signal
import socket
import subprocess

import pytest

from pipeline import console
from pipeline.data import results
from pipeline.flows.train import TrainModel
from tests.conftest import REPO
from tests.spark_helpers import controller_env, luigi_argv


def luigi_cli(tmp_path, *args: str) -> tuple[int, list[str]]:
    proc = subprocess.run(luigi_argv(*args, "--local-scheduler"), cwd=tmp_path, env=controller_env(),
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A tiny dataset written by MakeDemoData on the command line, and what it printed."""
    work = tmp_path_factory.mktemp("cli")
    rc, lines = luigi_cli(work, "MakeDemoData", "--rows", "200", "--features", "3", "--labels", "2", "--path", "demo.parquet")
    return {"work": work, "rc": rc, "lines": lines}


def test_a_task_prints_one_line_when_it_starts_and_one_when_it_ends(demo):
    assert demo["rc"] == 0, demo["lines"]
    assert [line.split(" ", 1)[1] for line in demo["lines"]] == ["started   MakeDemoData", "done      MakeDemoData"]


@pytest.mark.parametrize("args, rc, says", [
    (["--labels", "label_00,"], 40, "--labels 'label_00,' has an empty entry"),
    (["--labels", "label_00", "--data", "missing.parquet"], 35, "dataset missing.parquet does not exist"),
    (["--engine", "nope"], 35, "unknown engine 'nope'"),
    (["--params", '{"bogus": 1}'], 35, "unknown parameter 'bogus'"),
    (["--labels", "[label_00"], 40, "--labels '[label_00' is not a valid JSON list"),
])
def test_bad_input_is_one_line_without_a_traceback(demo, args, rc, says):
    code, lines = luigi_cli(demo["work"], "TrainAll", "--data", "demo.parquet", *args)
    assert code == rc
    assert len(lines) == 1, lines
    assert says in lines[0] and lines[0].startswith("ERROR: ")


def test_luigis_own_log_comes_back_with_a_flag(demo):
    code, lines = luigi_cli(demo["work"], "TrainAll", "--data", "demo.parquet", "--engine", "nope", "--console-log", "luigi")
    text = "\n".join(lines)
    assert code == 35
    assert "DEBUG: Checking if TrainAll" in text and "Traceback (most recent call last)" in text


def record(log_dir, name, **fields):
    results.record(str(log_dir), results.JobResult(name=name, run_id="run-1", **fields))


def test_job_lines_say_status_time_and_artifact_or_error(tmp_path):
    task = TrainModel(label=("label_00", "label_01"), data="d.parquet", log_dir=str(tmp_path), run_id="run-1", config="x")
    record(tmp_path, "label_00", status="trained", seconds=3.25, artifact="/models/x/label-00")
    record(tmp_path, "label_01", status="failed", seconds=1.0, error="label 'label_01' has one class: pick another",
           log="logs/batches/label-00/1-spark-submit.log")
    assert console.start_line(task).startswith("started   batch of 2 labels ('label_00', ...)  (logs: ")
    lines = console.finish_lines(task, RuntimeError("1 of 2 labels failed: label_01: one class"))
    # each error once: the member's line says it, the batch's line counts and names the log
    assert lines == ["failed    batch of 2 labels ('label_00', ...): 1 of 2 labels failed, the others are complete "
                     "(log: logs/batches/label-00/1-spark-submit.log)",
                     "trained   label 'label_00'    3.2s  /models/x/label-00",
                     "failed    label 'label_01'    1.0s  label 'label_01' has one class: pick another"]


def test_a_record_of_an_earlier_run_is_not_reported_as_this_ones(tmp_path):
    task = TrainModel(label="label_00", data="d.parquet", log_dir=str(tmp_path), run_id="run-2", config="x")
    record(tmp_path, "label_00", status="trained", seconds=3.0, artifact="/models/x/label-00")
    [line] = console.finish_lines(task, RuntimeError("boom"))
    assert line.startswith("failed    label 'label_00'") and line.endswith("boom")


def make_record(msg, level=logging.INFO, pathname="/x/luigi/worker.py", exc=None):
    record = logging.LogRecord("luigi-interface", level, pathname, 1, msg, (), None)
    if exc is not None:
        record.exc_info = (type(exc), exc, None)
    return record


def test_the_filter_keeps_warnings_and_our_lines_and_drops_luigis_chatter(monkeypatch):
    from pipeline.errors import DatasetError

    monkeypatch.setitem(console._state, "mode", "concise")
    keep = console.ConciseFilter().filter
    luigi_file = console._LUIGI_DIR + "/worker.py"
    assert not keep(make_record("Checking if X is complete", logging.DEBUG, luigi_file))
    assert not keep(make_record("Informed scheduler that task X has status PENDING", logging.INFO, luigi_file))
    assert keep(make_record("Task X died unexpectedly", logging.WARNING, luigi_file))
    assert keep(make_record("TrainAll: 4 labels", logging.INFO, "/src/pipeline/flows/train.py"))
    assert not keep(make_record("job x: running spark-submit ...", logging.INFO, "/src/pipeline/runner/job.py"))
    tb = ("Will not run TrainAll(data=x) or any dependencies due to error in complete() method:\nTraceback ...\n"
          "pipeline.errors.DatasetError: dataset x does not exist: fix --data\n")
    rec = make_record(tb, logging.WARNING, luigi_file)
    assert keep(rec) and rec.getMessage() == "TrainAll: dataset x does not exist: fix --data"
    other = make_record(tb.replace("pipeline.errors.DatasetError", "ValueError"), logging.WARNING, luigi_file)
    assert keep(other) and "Traceback" in other.getMessage()  # an unexpected error keeps its traceback
    failed = make_record("[pid 1] Worker W failed    TrainModel(x)", logging.ERROR, luigi_file, DatasetError("bad"))
    assert not keep(failed)  # the job line says it
    monkeypatch.setitem(console._state, "mode", "luigi")
    assert keep(make_record("Checking if X is complete", logging.DEBUG, luigi_file))


def test_ctrl_c_right_as_a_task_starts_stops_it_in_one_line(tmp_path):
    """SIGINT to the controller's process group (a terminal's Ctrl-C) as soon as the start
    line shows: it lands among Luigi's event callbacks, which used to swallow it (the task
    ran on to 'done', exit 0)."""
    proc = subprocess.Popen(luigi_argv("MakeDemoData", "--rows", "200000", "--path", "demo.parquet", "--local-scheduler"),
                            cwd=tmp_path, env=controller_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "started   MakeDemoData" in line:
                os.killpg(proc.pid, signal.SIGINT)
                break
        out = "".join(seen) + proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGINT, out  # a shell reports it as exit status 130
    assert "Traceback" not in out and "done      MakeDemoData" not in out, out
    assert [line for line in out.splitlines() if line.startswith("stopped: ")] == [
        "stopped: Ctrl-C (SIGINT) during MakeDemoData: it did not finish; rerun to continue"]
    assert not (tmp_path / "demo.parquet").exists()


def test_a_scheduler_that_never_answers_is_one_line_and_nothing_starts(demo):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = configparser.ConfigParser()
    config.read(REPO / "luigi.cfg")
    config.set("core", "rpc_retry_wait", "0")  # Luigi's 3 attempts at once instead of a minute
    with open(demo["work"] / "fast-retries.cfg", "w", encoding="utf-8") as fh:
        config.write(fh)
    proc = subprocess.run(luigi_argv("TrainAll", "--data", "demo.parquet", "--models", "never", "--scheduler-host",
                                     "127.0.0.1", "--scheduler-port", str(port)),
                          cwd=demo["work"], env=controller_env(LUIGI_CONFIG_PATH=str(demo["work"] / "fast-retries.cfg")),
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 25, out  # [retcode] not_run
    assert "Traceback" not in out and "Failed connecting" not in out and "NoneType" not in out, out
    said = f"the scheduler at 127.0.0.1:{port} does not answer"
    assert [line for line in out.splitlines() if said + " (" in line] == [
        f"spark-fanout: {said} (Connection refused): start luigid there (luigid --background --port {port}) "
        "or pass --local-scheduler"]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("label_0")]
    assert len(rows) == 2 and all(f"not started: {said}; rerun to continue" in row for row in rows)
