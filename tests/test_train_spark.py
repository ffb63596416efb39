"""End to end with real spark-submit in local mode (local[1], at most 2 workers)."""

from __future__ import annotations

import json
import re
import shutil
import signal

import lightgbm
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import results
from pipeline.data.labels import label_slug
from pipeline.flows.demo import make_demo_frame
from tasks.jobspec import parse_event
from tests.conftest import ODD_LABEL
from tests.spark_helpers import (
    alive,
    artifact_dir,
    descendants,
    job_started,
    metadata,
    run_luigi,
    spark_jobs_running,
    start_luigi,
    stop,
    wait_for,
)

pytestmark = pytest.mark.spark

TASK_FAILED = 30  # [retcode] task_failed in luigi.cfg


#: Labels a new user brings (issue 17), trained in the same run as the good ones.
DEGENERATE = ["label_rare", "label_nulls", "label_text", "label_empty", "label_bool"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Small demo data plus a label column whose name holds every awkward character, and
    labels that cannot or can barely be trained."""
    table = make_demo_frame(rows=3000, features=6, labels=3, seed=11)
    table = table.append_column(ODD_LABEL, table.column("label_01"))
    n = table.num_rows
    table = table.append_column("const", pa.array([0] * n, pa.int32()))  # one class only
    table = table.append_column("three", pa.array([(0.0, 1.0, 0.5)[i % 3] for i in range(n)]))  # 0..1 but not binary
    label_00, label_01 = table.column("label_00").to_pylist(), table.column("label_01").to_pylist()
    table = table.append_column("label_rare", pa.array([int(i in (0, 1000, 2000)) for i in range(n)], pa.int32()))
    table = table.append_column("label_nulls", pa.array([None if i % 3 == 0 else v for i, v in enumerate(label_00)], pa.int32()))
    table = table.append_column("label_text", pa.array(["yes" if v else "no" for v in label_01]))
    table = table.append_column("label_empty", pa.array([None] * n, pa.int32()))
    table = table.append_column("label_bool", pa.array([bool(v) for v in label_01]))
    folder = tmp_path_factory.mktemp("data") / "set with space.parquet"
    folder.mkdir()
    pq.write_table(table, folder / "part-00000.parquet")
    return folder


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, dataset):
    work = tmp_path_factory.mktemp("work")
    labels = ["label_00", "label_02", ODD_LABEL, "not_a_column", "const", "three", *DEGENERATE]
    # the old narrow plan (two local[1] batches at once): two concurrent JVMs on one machine are what this run tests
    proc = run_luigi(["TrainAll", "--workers", "2", "--local-scheduler", "--data", str(dataset), "--models", "models",
                      "--labels", json.dumps(labels), "--batching-widen-local", "false"], cwd=work)
    return work, proc


def test_trainall_trains_every_label_and_reports_the_bad_one(first_run):
    work, proc = first_run
    out = proc.stdout + proc.stderr
    assert proc.returncode == TASK_FAILED, out[-3000:]
    models = work / "models"
    for label in ("label_00", "label_02", ODD_LABEL):
        folder = artifact_dir(models, label)
        assert (folder / "_COMPLETE").is_file(), out[-3000:]
        meta = metadata(models, label)
        assert meta["label"] == label and meta["engine"] == "lightgbm"
        assert meta["features"] == [f"f{j:03d}" for j in range(6)]
        counts = meta["rows"]["class_counts_after_balancing"]
        assert abs(counts["0"] - counts["1"]) <= 0.25 * counts["1"] + 10, counts
        assert meta["rows"]["train_after_balancing"] <= meta["rows"]["train_before_balancing"]
        assert meta["metrics"]["auc_test"] > 0.7
        assert meta["application_id"].startswith("local-")
        booster = lightgbm.Booster(model_str=(folder / "model.txt").read_text())
        assert booster.num_feature() == 6
    assert not artifact_dir(models, "not_a_column").exists()
    assert not list(models.glob("*/.tmp-*"))
    # the summary table names every label, the failure in one line
    assert "spark-fanout summary" in proc.stdout
    failed_line = next(line for line in proc.stdout.splitlines() if line.startswith("not_a_column"))
    assert "failed" in failed_line and "is not a column" in failed_line
    assert proc.stdout.count(" trained ") == 5  # and label_nulls, label_bool
    # refused from the footer's statistics, before any JVM
    const_line = next(line for line in proc.stdout.splitlines() if line.startswith("const "))
    assert "has only class 0 (3000 rows, 0 null)" in const_line and "drop it from --labels" in const_line
    # errors found inside the job reach the summary as one line each
    three_line = next(line for line in proc.stdout.splitlines() if line.startswith("three "))
    assert "is not binary (value 0.5 is not 0 or 1)" in three_line
    # the label's shell syntax never ran anywhere
    assert not list(work.rglob("pwned"))


def _row(stdout: str, label: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(f"{label} "))


def test_degenerate_labels_fail_alone_in_one_true_line_each(first_run):
    work, proc = first_run
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "Py4J" not in out and "ArrowInvalid" not in out
    # 3 positives in 3,000 rows: refused inside the job with its counts, not "trained" on 5 rows
    assert re.search(r"label_rare +failed .* label 'label_rare' has [0-3] positive / \d+ negative training rows",
                     _row(proc.stdout, "label_rare"))
    error = results.latest(str(work / "logs"), "label_rare").error
    assert "too few to learn from: training positives < [fanout] min_positives = 10;" in error and "\n" not in error
    assert not artifact_dir(work / "models", "label_rare").exists()
    # text and all-null labels: said from the footers, before any JVM, not "has only class 0 (0 rows)"
    assert "holds text (values 'no' … 'yes'), not 0/1: convert it to 0/1 or true/false first" in _row(proc.stdout, "label_text")
    assert "is empty: all 3000 rows are null" in _row(proc.stdout, "label_empty")


def test_nulls_in_a_label_are_counted_and_warned_about(first_run):
    work, proc = first_run
    rows = metadata(work / "models", "label_nulls")["rows"]
    assert rows["null_labels"] == 1000 and rows["total"] == 3000 and rows["labelled"] == 2000
    warning = next(line for line in proc.stderr.splitlines() if "label_nulls" in line and line.startswith("WARNING"))
    assert "1000 of 3000 rows (33%) are null and were left out of training and validation" in warning
    assert metadata(work / "models", "label_bool")["rows"]["null_labels"] == 0  # a boolean label trains as 0/1


def test_concurrent_local_jobs_get_distinct_spark_ui_ports(first_run):
    work, _ = first_run
    ports = []
    logs = list((work / "logs").rglob("*-spark-submit.log"))
    for log in logs:
        text = log.read_text(errors="replace")
        assert "could not bind on port" not in text
        for line in text.splitlines():
            if "Successfully started service 'SparkUI' on port" in line:
                ports.append(line.rsplit(" ", 1)[1].rstrip("."))
    # six labels on two workers: batch-size auto makes two batches of three, at once
    assert len(logs) == 2 and len(ports) == 2 and len(set(ports)) == 2, ports


def test_rerun_trains_only_missing_labels_and_leaves_finished_ones_alone(first_run, dataset):
    work, _ = first_run
    models = work / "models"
    kept = {label: (artifact_dir(models, label) / "model.txt").stat().st_mtime_ns for label in ("label_00", ODD_LABEL)}
    shutil.rmtree(artifact_dir(models, "label_02"))
    # the same labels as the first run: they decide the default features, so the same configuration
    labels = ["label_00", "label_02", ODD_LABEL, "not_a_column", "const", "three", *DEGENERATE]
    logs_before = set((work / "logs").rglob("*-spark-submit.log"))
    proc = run_luigi(["TrainAll", "--workers", "2", "--local-scheduler", "--data", str(dataset), "--models", "models",
                      "--labels", json.dumps(labels)], cwd=work)
    assert proc.returncode == TASK_FAILED, (proc.stdout + proc.stderr)[-3000:]  # the three bad labels again
    assert (artifact_dir(models, "label_02") / "_COMPLETE").is_file()
    for label, mtime in kept.items():
        assert (artifact_dir(models, label) / "model.txt").stat().st_mtime_ns == mtime
    rows = {line.split("  ")[0].strip(): line for line in proc.stdout.splitlines()}
    assert "trained" in rows["label_02"]
    odd_row = next(line for line in proc.stdout.splitlines() if line.startswith(ODD_LABEL[:20]))
    assert "done earlier" in rows["label_00"] and "done earlier" in odd_row
    # the new jobs held the labels without an artifact, less those refused before any JVM
    # (not_a_column, const, label_text, label_empty): label_02, three, label_rare
    started = [parse_event(line) for log in set((work / "logs").rglob("*-spark-submit.log")) - logs_before
               for line in log.read_text(errors="replace").splitlines()]
    assert sum(e["labels"] for e in started if e and e["event"] == "started") == 3


def test_job_killed_mid_write_leaves_no_complete_artifact_and_rerun_finishes(tmp_path, dataset):
    args = ["TrainModel", "--local-scheduler", "--data", str(dataset), "--models", "models", "--label", "label_00",
            "--engine", "mllib-logreg", "--params", '{"max_iter": 5}']
    proc = start_luigi(args, cwd=tmp_path)
    models = tmp_path / "models"
    try:
        # the temporary folder exists only while the job writes its artifact
        assert wait_for(lambda: bool(list(models.glob("*/.tmp-*"))), timeout=240, interval=0.01), proc.communicate()[0][-3000:]
        tree = descendants(proc.pid)
        proc.kill()  # SIGKILL: the controller gets no chance to clean up
        proc.wait()
        assert wait_for(lambda: not alive(tree), timeout=15), [p.cmdline()[:3] for p in alive(tree)]
    finally:
        stop(proc, signal.SIGKILL)
    final = artifact_dir(models, "label_00")
    assert not (final / "_COMPLETE").exists()
    assert list(models.glob("*/.tmp-*")), "the killed job's temporary folder should be left for cleanup"

    rerun = run_luigi(args, cwd=tmp_path)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert (final / "_COMPLETE").is_file() and (final / "spark-model").is_dir()
    assert not list(models.glob("*/.tmp-*")), "rerun must clean stale temporaries"


@pytest.mark.parametrize("sig, workers", [(signal.SIGTERM, 2), (signal.SIGINT, 1)])
def test_stopping_the_controller_ends_every_job_and_publishes_nothing(tmp_path, dataset, sig, workers):
    labels = ["label_00", "label_02"][:workers]
    proc = start_luigi(["TrainAll", "--workers", str(workers), "--local-scheduler", "--data", str(dataset),
                        "--models", "models", "--labels", json.dumps(labels), "--engine", "mllib-gbt",
                        "--params", '{"max_iter": 60}', "--batching-widen-local", "false"], cwd=tmp_path)
    try:
        assert wait_for(lambda: all(job_started(tmp_path / "logs", lb) for lb in labels), timeout=240, interval=0.2), \
            proc.communicate()[0][-3000:]
        assert spark_jobs_running(proc.pid) == workers
        tree = descendants(proc.pid)
        stop(proc, sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        stop(proc, signal.SIGKILL)
    assert proc.returncode != 0
    assert wait_for(lambda: not alive(tree), timeout=15), [p.cmdline()[:4] for p in alive(tree)]
    # the configuration's config.json is written when the run is planned; no label may be published
    published = [p for p in (tmp_path / "models").glob("*/*") if p.is_dir() and not p.name.startswith(".")]
    assert not published, "nothing may be published"
    for label in labels:
        result = json.loads((tmp_path / "logs" / label_slug(label) / "result.json").read_text())
        assert result["status"] == "interrupted"
        # the stop names the application it ended (on YARN: the one it killed)
        assert result["killed_application_id"] == result["application_id"]
        assert result["application_id"].startswith("local-")


def test_worker_timeout_stops_the_job(tmp_path, dataset):
    # The job would finish in well over 10 s; stopped at 10 s, it must not be handed out again.
    proc = run_luigi(["TrainAll", "--workers", "1", "--worker-timeout", "10", "--local-scheduler",
                      "--data", str(dataset), "--models", "models", "--labels", '["label_00"]',
                      "--engine", "mllib-gbt", "--params", '{"max_iter": 60}'], cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == TASK_FAILED, out[-3000:]
    assert "timed out after 10 seconds" in out
    assert not (artifact_dir(tmp_path / "models", "label_00") / "_COMPLETE").exists()
    assert len(list((tmp_path / "logs").rglob("*-spark-submit.log"))) == 1, out[-3000:]  # one attempt, no retry
    result = json.loads((tmp_path / "logs" / label_slug("label_00") / "result.json").read_text())
    assert result["status"] == "failed" and "--worker-timeout=10s" in result["error"]


def test_synapseml_without_jar_fails_fast_naming_the_setting(tmp_path, dataset):
    proc = run_luigi(["TrainAll", "--local-scheduler", "--data", str(dataset), "--models", "models",
                      "--labels", '["label_00"]', "--engine", "synapseml"], cwd=tmp_path, timeout=60)
    assert proc.returncode == TASK_FAILED
    line = next(line for line in proc.stdout.splitlines() if line.startswith("label_00"))
    assert "packages=com.microsoft.azure:synapseml" in line
    assert not list((tmp_path / "logs").rglob("*-spark-submit.log")), "refused before any JVM started"

