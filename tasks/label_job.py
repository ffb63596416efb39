"""One label of a batch job: what it needs, how it fits on the driver, how its artifact is
committed, and how its failure is reported (one line, traceback in the log when unexpected)."""

from __future__ import annotations

import errno
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any

from tasks.artifact_writer import ArtifactWriter
from tasks.data_errors import damaged_parquet
from tasks.engines import Engine, EngineUnavailable
from tasks.engines.training import Options, imbalance_facts, train_on_driver
from tasks.fit_tasks import TaskFailure
from tasks.jobspec import COMMIT_DELAY_ENV, FAIL_LABELS_ENV, LABEL_DELAY_ENV, emit_event, fail_labels
from tasks.label_sample import JobInputError, Minimums, null_warning
from tasks.layout import FORMAT_VERSION, SPARK_MODEL
from tasks.ownership import DEFAULT_LEASE_SECONDS


def _versions(spark: Any) -> dict[str, str]:
    import numpy
    import pandas
    import pyarrow

    return {"spark": spark.version, "python": platform.python_version(), "numpy": numpy.__version__,
            "pandas": pandas.__version__, "pyarrow": pyarrow.__version__}


class LabelJob:
    """What one label of the batch needs, whichever path trains it."""

    def __init__(self, index: int, label: str, slug: str, spec: dict[str, Any]) -> None:
        self.index, self.label, self.slug, self.spec = index, label, slug, spec
        self.started = time.perf_counter()
        self.imbalance: dict[str, Any] = {}

    def check_switch(self) -> None:
        """The test-only fault and delay switches (environment of the job)."""
        if self.label in fail_labels(os.environ.get(FAIL_LABELS_ENV)):
            raise RuntimeError(f"{FAIL_LABELS_ENV} names label {self.label!r}: failing on purpose (test switch)")
        time.sleep(float(os.environ.get(LABEL_DELAY_ENV) or 0))


def fit_on_driver(engine: Engine, job: LabelJob, train: Any, validation: Any, columns: list[str], params: dict[str, Any]) -> Any:
    """A driver engine fitted on the label's pandas rows; its imbalance facts go on ``job``."""
    spec = job.spec
    model, facts = train_on_driver(engine, train, validation, columns, params, int(spec["seed"]), job.label,
                                   Options.from_spec(spec))
    job.imbalance = imbalance_facts(engine, params, float(spec["balance_ratio"]), facts["weights"])
    return model


def _metadata(spark: Any, job: LabelJob, params: dict[str, Any], rows: dict[str, Any], model: Any) -> dict[str, Any]:
    spec = job.spec
    return {**model.info,
        "format_version": FORMAT_VERSION,
        "label": job.label,
        "slug": job.slug,
        "engine": spec["engine"],
        "config": spec.get("config"),
        "params": params,
        "features": spec["features"],
        "seed": int(spec["seed"]),
        "balance_ratio": float(spec["balance_ratio"]),
        "test_fraction": float(spec["test_fraction"]),
        "split": "validation rows: pmod(xxhash64(all dataset columns, seed), 1e6) < test_fraction * 1e6",
        "rows": rows,
        "imbalance": job.imbalance,
        "model_files": sorted(model.files),
        "metrics": model.metrics,
        "training_seconds": round(model.training_seconds, 3),
        "application_id": spark.sparkContext.applicationId,
        "run_id": spec.get("run_id"),
        "task_id": spec.get("task_id"),
        "batch_size": len(spec["labels"]),
        "versions": {**_versions(spark), **model.versions},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def commit_label(spark: Any, job: LabelJob, params: dict[str, Any], rows: dict[str, Any], model: Any,
            watch_parent: int | None) -> str:
    """Write the label's artifact atomically and report it: done as soon as the label is
    trained, so a batch cut short keeps every label it finished."""
    emit_event("progress", label=job.label, percent=85, message="trained")
    metadata = _metadata(spark, job, params, rows, model)
    lease = float(job.spec.get("lease_seconds") or DEFAULT_LEASE_SECONDS)
    with ArtifactWriter(spark, job.spec["artifact_root"], job.slug, lease_seconds=lease) as writer:
        for name, content in model.files.items():
            writer.write_bytes(name, content)
        if model.spark_model is not None:
            model.spark_model.write().save(f"{writer.temp_uri}/{SPARK_MODEL}")
            writer.record_written(SPARK_MODEL)
        time.sleep(float(os.environ.get(COMMIT_DELAY_ENV) or 0))  # test switch: a temporary that lives a while
        metadata["job_seconds"] = round(time.perf_counter() - job.started, 3)
        final = writer.commit(metadata, abort_if=lambda: watch_parent is not None and os.getppid() != watch_parent)
    emit_event("artifact", label=job.label, location=final, reused=writer.already_complete, metrics=model.metrics,
               seconds=metadata["job_seconds"])
    return final


def warn_nulls(label: str, rows: dict[str, Any], minimums: Minimums) -> None:
    """A ``warning`` event when more of the label's rows are null than ``minimums`` allows."""
    warning = null_warning(label, rows, minimums)
    if warning is not None:
        emit_event("warning", label=label, message=warning)


def _expected(exc: BaseException) -> bool:
    """Failures whose one line says it all: bad input, a missing engine, a full or
    read-only artifact root. Anything else is a bug or a library's error."""
    return isinstance(exc, (JobInputError, EngineUnavailable)) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM))


def report_failure(label: str, exc: BaseException) -> None:
    """One label failed: its one line goes to the controller (an ``error`` event); an
    unexpected exception's full traceback goes into the job's log too, for whoever
    debugs it."""
    if not _expected(exc):
        print(f"spark-fanout: label {label!r} failed with an unexpected error:", file=sys.stderr)
        if isinstance(exc, TaskFailure):  # raised in a Spark task: its traceback came back as text
            print(exc.trace, file=sys.stderr, end="")
        else:
            traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.flush()
    emit_event("error", label=label, message=error_message(exc))


def error_message(exc: BaseException) -> str:
    """The one line that says what went wrong with a label (or the whole batch)."""
    if isinstance(exc, (JobInputError, EngineUnavailable, TaskFailure)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
        where = f" at {exc.filename}" if exc.filename else ""
        return (f"{type(exc).__name__}: {exc.strerror}{where}: free space on the artifact root or fix its "
                "permissions, then rerun (finished labels are kept)")
    text = str(exc).strip()
    damaged = damaged_parquet(text)  # Spark's words for it are deep in a Java stack trace
    if damaged is not None:
        return damaged
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
