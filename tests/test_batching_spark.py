"""Batches end to end with real spark-submit in local mode (local[1], one worker): one
job trains several labels, a failing label fails alone, a batch cut short keeps what
it finished and the rerun trains only the rest; and on a local-cluster master, labels
fitted as Spark tasks in executor processes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.flows.demo import make_demo_frame
from tasks.jobspec import parse_event
from tests.conftest import ODD_LABEL, REPO
from tests.spark_helpers import alive, artifact_dir, descendants, metadata, run_luigi, start_luigi, stop, wait_for

pytestmark = pytest.mark.spark

TASK_FAILED = 30
LABELS = ["label_00", "label_01", ODD_LABEL, "label_02"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    table = make_demo_frame(rows=3000, features=5, labels=3, seed=5)
    table = table.append_column(ODD_LABEL, table.column("label_01"))
    folder = tmp_path_factory.mktemp("data") / "d.parquet"
    folder.mkdir()
    pq.write_table(table, folder / "part-00000.parquet")
    return folder


def _train(dataset, labels, batch_size="4"):
    return ["TrainAll", "--workers", "1", "--local-scheduler", "--data", str(dataset), "--models", "models",
            "--labels", json.dumps(labels), "--batch-size", batch_size]


def batch_logs(work: Path) -> list[Path]:
    return sorted((work / "logs" / "batches").rglob("*-spark-submit.log"), key=lambda p: p.stat().st_mtime)


def job_logs(work: Path) -> list[Path]:
    """Every spark-submit log, oldest first (a lone label's job logs beside its result)."""
    return sorted((work / "logs").rglob("*-spark-submit.log"), key=lambda p: p.stat().st_mtime)


def events(log: Path, kind: str) -> list[dict]:
    found = [parse_event(line) for line in log.read_text(errors="replace").splitlines()]
    return [e for e in found if e is not None and e["event"] == kind]


def test_one_spark_submit_trains_the_batch_and_a_failing_label_fails_alone(tmp_path, dataset):
    proc = run_luigi(_train(dataset, LABELS), cwd=tmp_path, FANOUT_FAIL_LABELS="label_01")
    out = proc.stdout + proc.stderr
    assert proc.returncode == TASK_FAILED, out[-3000:]
    models = tmp_path / "models"
    [log] = batch_logs(tmp_path)  # one spark-submit for the four labels
    assert events(log, "started")[0]["labels"] == 4
    apps = {metadata(models, label)["application_id"] for label in ("label_00", ODD_LABEL, "label_02")}
    assert len(apps) == 1 and apps.pop().startswith("local-")
    assert not artifact_dir(models, "label_01").exists()
    rows = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    assert "failing on purpose" in rows["label_01"] and " failed " in rows["label_01"]
    assert proc.stdout.count(" trained ") == 3
    # the batch's own line counts and names its log; the label's own line says its error, once
    assert (f"failed    batch of 4 labels ('label_00', ...): 1 of 4 labels failed, the others are complete "
            f"(log: {log.relative_to(tmp_path)})") in out
    assert proc.stdout.count("failing on purpose") == 1 and proc.stderr.count("failing on purpose") == 1  # summary, job line
    # its unexpected exception's traceback is in the batch's log, for whoever debugs it, not on the console
    assert "Traceback (most recent call last)" in log.read_text(errors="replace")
    assert "Traceback" not in out
    result = json.loads((tmp_path / "logs" / "label-01-415a7028" / "result.json").read_text())
    assert result["status"] == "failed" and result["log"] == str(log.relative_to(tmp_path))

    kept = {label: (artifact_dir(models, label) / "model.txt").stat().st_mtime_ns for label in ("label_00", ODD_LABEL)}
    rerun = run_luigi(_train(dataset, LABELS), cwd=tmp_path)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert (artifact_dir(models, "label_01") / "_COMPLETE").is_file()
    newest = job_logs(tmp_path)[-1]  # only the failed label ran, in a job of its own
    assert events(newest, "started")[0]["labels"] == 1 and [e["label"] for e in events(newest, "artifact")] == ["label_01"]
    for label, mtime in kept.items():
        assert (artifact_dir(models, label) / "model.txt").stat().st_mtime_ns == mtime


def test_a_batch_cut_short_keeps_its_finished_labels_and_the_rerun_trains_the_rest(tmp_path, dataset):
    labels = ["label_00", "label_01", "label_02", ODD_LABEL]
    proc = start_luigi(_train(dataset, labels), cwd=tmp_path, FANOUT_LABEL_DELAY="3")
    try:
        def two_written() -> bool:
            return len(list((tmp_path / "models").glob("*/*/_COMPLETE"))) >= 2

        assert wait_for(two_written, timeout=240, interval=0.05), proc.communicate()[0][-3000:]
        tree = descendants(proc.pid)
        proc.kill()  # SIGKILL: no cleanup; the job must die with its controller
        proc.wait()
        assert wait_for(lambda: not alive(tree), timeout=20), [p.cmdline()[:3] for p in alive(tree)]
    finally:
        stop(proc, signal.SIGKILL)
    models = tmp_path / "models"
    [first_log] = batch_logs(tmp_path)
    done = [e["label"] for e in events(first_log, "artifact")]
    assert len(done) == 2
    for label in labels:
        assert (artifact_dir(models, label) / "_COMPLETE").is_file() == (label in done), label

    rerun = run_luigi(_train(dataset, labels), cwd=tmp_path)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    second_log = job_logs(tmp_path)[-1]
    assert second_log != first_log
    assert sorted(e["label"] for e in events(second_log, "artifact")) == sorted(set(labels) - set(done))
    assert all((artifact_dir(models, label) / "_COMPLETE").is_file() for label in labels)
    assert not list(models.glob("*/.tmp-*")), "the rerun cleans the killed batch's temporaries"


def test_labels_fit_as_spark_tasks_in_the_executor_processes_of_a_local_cluster(tmp_path, dataset):
    """Issue 21: a batch fits its labels as Spark tasks on the executors. Spark's
    ``local-cluster[2,1,1024]`` master runs two executors as JVMs of their own (each with
    its Python workers), as on a cluster. How the test knows where each label was fitted:
    its metadata's ``fitted_in`` names the executor from the environment Spark gives only
    an executor's processes (``SPARK_EXECUTOR_DIRS``, the executor's own folder; a local
    master's tasks run under the driver's JVM and say ``driver``), and the fitting
    process's pid, which differs from the driver's."""
    cfg = tmp_path / "luigi.cfg"
    cfg.write_text(Path(REPO / "luigi.cfg").read_text().replace("master = local[1]", "master = local-cluster[2,1,1024]"))
    labels = ["label_00", ODD_LABEL]
    proc = run_luigi(_train(dataset, labels), cwd=tmp_path, LUIGI_CONFIG_PATH=str(cfg))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert len(batch_logs(tmp_path)) == 1
    places = [metadata(tmp_path / "models", label)["fitted_in"] for label in labels]
    for place in places:
        assert place["where"] == "spark task"
        assert place["executor"].startswith("executor-"), place  # an executor's folder, not "driver"
        assert place["pid"] != place["driver_pid"], place
    assert len({p["driver_pid"] for p in places}) == 1  # one batch, one driver
