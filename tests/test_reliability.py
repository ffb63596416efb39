"""Faults lose nothing: the real controller and real spark-submit jobs in local mode
(local[1], at most 2 workers), hit by a kill -9, a failing job, a full or read-only
artifact root, a stop right after a job published its artifact and a Ctrl-C (which
also stops a Report)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from pipeline.data.labels import label_slug
from tests.spark_helpers import (
    STOPPED_BY_CTRL_C,
    alive,
    artifact_dir,
    config_dir,
    ctrl_c,
    descendants,
    job_started,
    run_luigi,
    spark_jobs_running,
    start_luigi,
    stop,
    wait_for,
)
from tests.test_train_spark import TASK_FAILED, dataset  # noqa: F401 - shared module fixture

pytestmark = pytest.mark.spark

# TrainAll may put several labels into one job: this test needs one job per label.
ONE_LABEL_PER_JOB = ["--batch-size", "1"]


def _train_all(dataset: Path, labels: list[str], workers: int = 2) -> list[str]:  # noqa: F811
    return ["TrainAll", "--workers", str(workers), "--local-scheduler", "--data", str(dataset),
            "--models", "models", "--labels", json.dumps(labels)]


def _published(models: Path) -> dict[str, Path]:
    """Folders under their final name (what a rerun counts as done), by name."""
    try:
        root = config_dir(models)
    except (ValueError, FileNotFoundError):
        return {}
    return {p.name: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}


def _assert_nothing_partial_counted_done(models: Path) -> None:
    for name, folder in _published(models).items():
        assert (folder / "_COMPLETE").is_file() and (folder / "metadata.json").is_file(), \
            f"{name} is under its final name without being complete: {sorted(os.listdir(folder))}"


def _summary_line(stdout: str, label: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(f"{label} "))


def _model_mtimes(models: Path, labels) -> dict[str, int]:
    return {label: (artifact_dir(models, label) / "model.txt").stat().st_mtime_ns for label in labels}


# --------------------------------------------------------------------------- kill -9


def test_controller_killed_mid_run_then_rerun_finishes_every_label_exactly_once(tmp_path, dataset):  # noqa: F811
    labels = ["label_00", "label_01", "label_02"]
    models = tmp_path / "models"
    # one job per label, two at a time: the third starts once one of the first two is done
    proc = start_luigi(_train_all(dataset, labels) + ONE_LABEL_PER_JOB, cwd=tmp_path)

    def mid_run() -> bool:  # every job has started, and one is still training
        return all(job_started(tmp_path / "logs", lb) for lb in labels) and len(_published(models)) < len(labels)

    try:
        assert wait_for(mid_run, timeout=420, interval=0.05), proc.communicate()[0][-3000:]
        tree = descendants(proc.pid)
        proc.kill()  # SIGKILL: no cleanup, no summary, no result records
        proc.wait()
        at_kill = set(_published(models))
        # parent death takes the task processes and their Spark jobs along
        assert wait_for(lambda: not alive(tree), timeout=20), [p.cmdline()[:3] for p in alive(tree)]
    finally:
        stop(proc, signal.SIGKILL)
    # a job whose controller is gone publishes nothing (it would race the rerun's job)
    assert set(_published(models)) == at_kill
    _assert_nothing_partial_counted_done(models)
    first = {label for label in labels if label_slug(label) in _published(models)}
    assert first and len(first) < len(labels), first
    kept = _model_mtimes(models, first)

    rerun = run_luigi(_train_all(dataset, labels), cwd=tmp_path)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    # every label once, under its final name; whatever the killed jobs left is gone
    assert sorted(os.listdir(config_dir(models))) == sorted(["config.json", *(label_slug(lb) for lb in labels)])
    _assert_nothing_partial_counted_done(models)
    # what the first run published was neither retrained nor rewritten
    assert _model_mtimes(models, first) == kept
    for label in labels:
        assert ("done earlier" if label in first else " trained ") in _summary_line(rerun.stdout, label)


# --------------------------------------------------------------------------- a failing job


def test_failing_labels_leave_a_log_and_one_line_and_rerun_runs_only_them(tmp_path, dataset):  # noqa: F811
    labels, failing = ["label_00", "label_01", "label_02"], ["label_01", "label_02"]
    models = tmp_path / "models"
    proc = run_luigi(_train_all(dataset, labels), cwd=tmp_path, FANOUT_FAIL_LABELS=",".join(failing))
    out = proc.stdout + proc.stderr
    assert proc.returncode == TASK_FAILED, out[-3000:]
    assert set(_published(models)) == {label_slug("label_00")}, out[-3000:]
    for label in failing:
        line = _summary_line(proc.stdout, label)
        assert " failed " in line and "FANOUT_FAIL_LABELS" in line and "failing on purpose" in line, line
        result = json.loads((tmp_path / "logs" / label_slug(label) / "result.json").read_text())
        assert result["status"] == "failed" and "\n" not in result["error"]
        assert "failing on purpose" in result["error"] and result["log"] in result["error"]
        # the job's own log is kept, holding what Spark said and the job's error event
        text = (tmp_path / result["log"]).read_text(errors="replace")  # relative to the run's folder, or absolute
        assert "FANOUT_EVENT" in text and "failing on purpose" in text and "SparkContext" in text
        # an unexpected exception: one line in the result, its whole traceback in the job's log
        assert f"label {label!r} failed with an unexpected error:" in text and "Traceback (most recent call last)" in text
        assert "in check_switch" in text and "RuntimeError: FANOUT_FAIL_LABELS names label" in text
    assert " trained " in _summary_line(proc.stdout, "label_00")
    kept = _model_mtimes(models, ["label_00"])

    rerun = run_luigi(_train_all(dataset, labels), cwd=tmp_path)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert set(_published(models)) == {label_slug(lb) for lb in labels}
    assert _model_mtimes(models, ["label_00"]) == kept
    # only the failed labels ran again
    assert "done earlier" in _summary_line(rerun.stdout, "label_00")
    for label in failing:
        assert " trained " in _summary_line(rerun.stdout, label)


# --------------------------------------------------------------------------- the artifact root breaks


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 16 MiB tmpfs as the artifact root: it can fill up, and be remounted read-only
    (chmod does not stop root, which CI runs as, from writing)."""
    mount_point = tmp_path / "models"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    done = _run("mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount_point))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs CAP_SYS_ADMIN")
    yield mount_point
    _run("umount", "-l", str(mount_point))


def _fill(folder: Path) -> None:
    with open(folder / ".filler", "wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * (1 << 20))
            fh.flush()
            os.fsync(fh.fileno())


@pytest.mark.parametrize("fault, reason", [("full", "No space left on device"), ("read-only", "Read-only file system")])
def test_artifact_root_full_or_read_only_mid_run(tmp_path, dataset, small_tmpfs, fault, reason):  # noqa: F811
    labels = ["label_00", "label_02"]
    models = small_tmpfs
    proc = start_luigi(_train_all(dataset, labels, workers=1), cwd=tmp_path)
    try:
        assert wait_for(lambda: any(models.glob("*/*/_COMPLETE")), timeout=420, interval=0.02), \
            proc.communicate()[0][-3000:]
        if fault == "full":
            _fill(models)
        else:
            done = _run("mount", "-o", "remount,ro", str(models))
            assert done.returncode == 0, done.stderr
        out, _ = proc.communicate(timeout=300)
    finally:
        stop(proc, signal.SIGKILL)
    assert proc.returncode == TASK_FAILED, out[-3000:]
    _assert_nothing_partial_counted_done(models)
    [first] = [lb for lb in labels if label_slug(lb) in _published(models)]
    [second] = [lb for lb in labels if lb != first]
    line = _summary_line(out, second)
    assert " failed " in line and reason in line, line
    # one line, in the summary and in the result record
    result = json.loads((tmp_path / "logs" / label_slug(second) / "result.json").read_text())
    assert result["status"] == "failed" and reason in result["error"] and "\n" not in result["error"]
    assert " trained " in _summary_line(out, first)


# --------------------------------------------------------------------------- the summary at a stop


def test_a_label_published_before_the_stop_is_trained_in_the_summary(tmp_path, dataset):  # noqa: F811
    label = "label_00"
    models = tmp_path / "models"
    proc = start_luigi(_train_all(dataset, [label], workers=1), cwd=tmp_path)
    try:
        # the job renamed its artifact into place and prints its `artifact` event next;
        # spark.stop() and the JVM's exit take far longer than the stop takes to arrive
        assert wait_for(lambda: any(models.glob("*/*/_COMPLETE")), timeout=420, interval=0.005), \
            proc.communicate()[0][-3000:]
        stop(proc, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        stop(proc, signal.SIGKILL)
    assert proc.returncode == STOPPED_BY_CTRL_C, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert _closing_lines(out) == ["stopped: Ctrl-C (SIGINT): 1 label trained; rerun to continue (what finished is kept)"]
    result = json.loads((tmp_path / "logs" / label_slug(label) / "result.json").read_text())
    # the stop really ended the job (its application was stopped), after the artifact was out
    assert result["killed_application_id"] == result["application_id"] and result["application_id"], result
    assert result["status"] == "trained", result
    assert result["artifact"].endswith(f"/{label_slug(label)}") and (artifact_dir(models, label) / "_COMPLETE").is_file()
    line = _summary_line(out, label)
    assert " trained " in line and "done earlier" not in line, line


def _closing_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("stopped: ")]


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_every_job_quietly_and_says_what_it_stopped_also_in_a_report(tmp_path, dataset):  # noqa: F811
    labels = ["label_00", "label_01", "label_02"]
    models = tmp_path / "models"
    proc = start_luigi(_train_all(dataset, labels) + ONE_LABEL_PER_JOB, cwd=tmp_path, own_group=True)
    try:
        # both workers' spark-submits are up (the jobs start in the order of --labels)
        assert wait_for(lambda: spark_jobs_running(proc.pid) == 2, timeout=240, interval=0.05), \
            proc.communicate()[0][-3000:]
        tree = descendants(proc.pid)
        ctrl_c(proc)
        out, _ = proc.communicate(timeout=120)
        assert wait_for(lambda: not alive(tree), timeout=20), [p.cmdline()[:3] for p in alive(tree)]
    finally:
        stop(proc, signal.SIGKILL)
    assert proc.returncode == STOPPED_BY_CTRL_C, out[-3000:]
    for noise in ("Traceback", "KeyboardInterrupt", "TaskInterrupted", "stopped ()"):
        assert noise not in out, out[-3000:]
    assert _closing_lines(out) == ["stopped: Ctrl-C (SIGINT): 2 labels stopped (label_00, label_01), 1 not started; "
                                   "rerun to continue (what finished is kept)"], out[-3000:]
    for label in labels[:2]:
        line = _summary_line(out, label)
        assert " interrupted " in line and "stopped by Ctrl-C (SIGINT) before it finished" in line, line
    assert "not started: the run was stopped by Ctrl-C (SIGINT) first" in _summary_line(out, "label_02")
    assert _published(models) == {}

    # A Report stopped while it renders: the same one line, no page written.
    report = start_luigi(["Report", "--models", "models", "--out", "report.html", "--local-scheduler"], cwd=tmp_path,
                         own_group=True)
    try:
        seen = []
        for line in report.stdout:  # ends when the process closes its output
            seen.append(line)
            if " started   Report" in line:
                ctrl_c(report)
                break
        out = "".join(seen) + report.communicate(timeout=60)[0]
    finally:
        stop(report, signal.SIGKILL)
    assert report.returncode == STOPPED_BY_CTRL_C, out[-3000:]
    assert "Traceback" not in out and "done      Report" not in out, out[-3000:]
    assert _closing_lines(out) == ["stopped: Ctrl-C (SIGINT) during Report: it did not finish; rerun to continue"]
    assert not (tmp_path / "report.html").exists()
