"""spark-submit entry point: train one binary classifier per label of a batch and
write each label's artifact as soon as that label is done.

Usage (the controller builds this): ``spark-submit … train_model.py --spec <base64 JSON>``.
A batch reads the dataset once. With an engine that trains on pandas rows (LightGBM,
XGBoost, scikit-learn, …: :mod:`tasks.engines`) and data that fits the driver
(``collect_limit_mb``), the rows are collected once (:mod:`tasks.batch_frame`), or read
with pyarrow while the Spark session starts when the dataset is local and numeric
(:mod:`tasks.local_frame`); the labels are then fitted on driver threads or as Spark
tasks (:mod:`tasks.train_frame`). Otherwise (Spark engines, or bigger data) labels train
one after the other as Spark jobs on the cached, prepared frame (:mod:`tasks.train_spark`).
Exit status 0 means every label of the spec has a complete artifact; each label that
failed has a ``FANOUT_EVENT error`` line with its label and a one-line reason.
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent.futures import Future
from typing import Any

from tasks.batch_frame import DEFAULT_COLLECT_LIMIT_MB, collect_batch, is_numeric, prepare
from tasks.engines import DRIVER, Engine, EngineUnavailable, get_engine
from tasks.jobspec import SPEC_FLAG, decode_spec, emit_event
from tasks.label_job import LabelJob, error_message, report_failure
from tasks.label_sample import JobInputError
from tasks.local_frame import LocalFrame, read_local_frame
from tasks.parent_death import die_with_parent
from tasks.train_frame import fits_as_tasks, start_warm_up, train_frame
from tasks.train_spark import train_in_spark

__all__ = ["JobInputError", "main"]


def _check_features(data: Any, spec: dict[str, Any]) -> None:
    """Refuse a feature the dataset lacks or that is not a number. The controller checked
    the types in the footers it read; a cast would turn text into nulls."""
    features = spec["features"]
    missing = [f for f in features if f not in data.columns]
    if missing:
        raise JobInputError(f"feature column {missing[0]!r} is not in {spec['data']}: fix --features")
    types = {f.name: f.dataType for f in data.schema.fields}
    odd = [f for f in features if not is_numeric(types[f])]
    if odd:
        raise JobInputError(f"feature column {odd[0]!r} is {types[odd[0]].simpleString()}, not numeric: leave it out of --features")


def _present_labels(data: Any, spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, slug) of the spec's labels the dataset holds as numbers; each other label
    fails alone, with its one line."""
    types = {f.name: f.dataType for f in data.schema.fields}
    present: list[tuple[str, str]] = []
    for label, slug in zip(spec["labels"], spec["slugs"], strict=True):
        if label not in data.columns:
            emit_event("error", label=label,
                       message=f"label column {label!r} is not in {spec['data']}: check --labels against the dataset columns")
        elif not is_numeric(types[label]):
            emit_event("error", label=label, message=f"label {label!r} is a {types[label].simpleString()} column, not 0/1: "
                                                     "convert it to 0/1 or true/false first")
        else:
            present.append((label, slug))
    return present


def _collect(spark: Any, prepared: Any, engine: Engine, spec: dict[str, Any], columns: int) -> Any:
    """The prepared frame as pandas for a driver engine when it fits ``collect_limit_mb``, else ``None``."""
    if engine.trains_on != DRIVER:
        return None
    limit = float(spec.get("collect_limit_mb", DEFAULT_COLLECT_LIMIT_MB))
    # On a cluster the executors' cores idle while the driver collects: their Python
    # workers import the engine meanwhile. On one machine they are the driver's cores.
    master = spark.sparkContext.master
    warming = start_warm_up(spark, engine) if fits_as_tasks(spec, master) and not master.startswith("local") else None
    frame = collect_batch(prepared, columns, limit)
    if warming is not None:
        warming.join()
    return frame


def _engine(spark: Any, spec: dict[str, Any]) -> tuple[Engine, dict[str, Any]]:
    """The spec's engine, checked in this job, and its resolved parameters."""
    engine = get_engine(spec["engine"])
    params = engine.resolve(spec["params"])
    engine.check_job(spark)
    return engine, params


def train_batch(spark: Any, data: Any, spec: dict[str, Any], watch_parent: int | None) -> int:
    """Train every label of the spec on the dataset Spark read; returns how many failed
    (each reported)."""
    _check_features(data, spec)
    engine, params = _engine(spark, spec)
    present = _present_labels(data, spec)
    failed = len(spec["labels"]) - len(present)
    if not present:
        return failed
    prepared = prepare(data, [label for label, _ in present], spec["features"], int(spec["seed"]), float(spec["test_fraction"]))
    jobs = [LabelJob(i, label, slug, spec) for i, (label, slug) in enumerate(present)]
    frame = _collect(spark, prepared, engine, spec, len(present) + len(spec["features"]) + 2)
    emit_event("data_ready", labels=len(jobs), collected=frame is not None, read="spark")
    if frame is not None:
        return failed + train_frame(spark, frame, jobs, engine, params, watch_parent)
    if len(jobs) > 1:
        prepared = prepared.cache()
    for job in jobs:
        try:
            train_in_spark(spark, prepared, job, engine, params, watch_parent)
        except Exception as exc:  # one label's failure never stops the others
            failed += 1
            report_failure(job.label, exc)
    return failed


def train_local(spark: Any, local: LocalFrame, spec: dict[str, Any], watch_parent: int | None) -> int:
    """Every label of the spec on the frame :mod:`tasks.local_frame` read: no Spark query
    at all. Returns how many failed."""
    engine, params = _engine(spark, spec)
    jobs = [LabelJob(i, label, slug, spec) for i, (label, slug) in enumerate(zip(spec["labels"], spec["slugs"], strict=True))]
    emit_event("data_ready", labels=len(jobs), collected=True, read="pyarrow")
    return train_frame(spark, local.frame, jobs, engine, params, watch_parent)


def start_local_read(spec: dict[str, Any]) -> Future:
    """While the SparkSession starts (seconds), a thread imports the engine's library and,
    for a driver engine, reads a local dataset with pyarrow (:mod:`tasks.local_frame`).
    Its result is the frame or ``None``; any trouble there (an unknown engine, a missing
    library) is left for the Spark path to report in its usual words."""
    def read() -> LocalFrame | None:
        try:
            engine = get_engine(spec["engine"])
            if engine.trains_on != DRIVER:
                return None
            engine.check_modules()
            local, why = read_local_frame(spec["data"], spec["labels"], spec["features"], int(spec["seed"]),
                                          float(spec["test_fraction"]),
                                          float(spec.get("collect_limit_mb", DEFAULT_COLLECT_LIMIT_MB)))
        except Exception as exc:  # noqa: BLE001 - the Spark path reports any real trouble
            local, why = None, f"{type(exc).__name__}: {exc}"
        if local is None:
            print(f"spark-fanout: reading {spec['data']} through Spark: {why}", file=sys.stderr, flush=True)
        else:
            print(f"spark-fanout: read {spec['data']} with pyarrow ({local.files} file(s), {local.rows} rows)",
                  file=sys.stderr, flush=True)
        return local

    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(read())
        except BaseException:  # noqa: BLE001 - never leave the job waiting: Spark reads instead
            future.set_result(None)

    # A daemon thread: if the session never starts, the job exits without waiting for the read.
    threading.Thread(target=run, name="local-read", daemon=True).start()
    return future


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != SPEC_FLAG:
        print(f"usage: train_model.py {SPEC_FLAG} <base64 job spec>", file=sys.stderr)
        return 2
    spec = decode_spec(argv[1])
    # A driver on the controller's machine is a child of the spark-submit JVM: if that
    # dies, so must the driver, or a stopped run leaves it training and publishing.
    watch_parent = die_with_parent(signal.SIGKILL) if spec.get("driver_local") else None

    local_read = start_local_read(spec)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    sc = spark.sparkContext
    emit_event("started", application_id=sc.applicationId, ui_url=sc.uiWebUrl, percent=10, labels=len(spec["labels"]))
    try:
        local = local_read.result()
        if local is not None:
            failed = train_local(spark, local, spec, watch_parent)
        else:
            try:
                data = spark.read.parquet(spec["data"])
            except Exception as exc:  # AnalysisException: path missing or not Parquet
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise JobInputError(f"cannot read dataset {spec['data']}: {first}") from None
            failed = train_batch(spark, data, spec, watch_parent)
    except (JobInputError, EngineUnavailable) as exc:
        emit_event("error", label=None, message=str(exc))
        return 3
    except Exception as exc:
        emit_event("error", label=None, message=error_message(exc))
        raise
    finally:
        spark.stop()
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
