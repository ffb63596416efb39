"""spark-submit entry point: train one binary classifier per label of a batch and
write each label's artifact as soon as that label is done.

Usage (the controller builds this): ``spark-submit … train_model.py --spec <base64 JSON>``.
A batch reads the dataset once. With an engine that trains on pandas rows (LightGBM,
XGBoost, scikit-learn, …: :mod:`tasks.engines`) and data that fits the driver
(``collect_limit_mb``), the rows are collected once. With executors (YARN, a
local-cluster), they are shipped once to every executor and labels are fitted as Spark
tasks (:mod:`tasks.fit_tasks`), a group of labels per task, on every core the job was
given; the driver commits each label's artifact as its task returns. Under a plain local
master they train on a pool of driver threads, one per core of ``local[N]``
(``fit_place`` chooses either way). Otherwise (Spark
engines, or bigger data) labels train one after the other as Spark jobs on the cached,
prepared frame.
Exit status 0 means every label of the spec has a complete artifact; each label that
failed has a ``FANOUT_EVENT error`` line with its label and a one-line reason.
"""

from __future__ import annotations

import errno
import os
import platform
import re
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from typing import Any

from tasks.artifact_writer import ArtifactWriter
from tasks.balance import plan_balance
from tasks.columns import quoted
from tasks.data_errors import damaged_parquet
from tasks.engines import DRIVER, LABEL_COL, Engine, EngineUnavailable, get_engine
from tasks.engines.training import Options, imbalance_facts, train_on_driver, train_on_executors
from tasks.fit_tasks import FitSettings, LabelWork, TaskFailure, fit_group, warm_up
from tasks.jobspec import (
    COMMIT_DELAY_ENV,
    FAIL_LABELS_ENV,
    LABEL_DELAY_ENV,
    SPEC_FLAG,
    decode_spec,
    emit_event,
    fail_labels,
)
from tasks.label_sample import (
    HASH_COL,
    VALIDATION_COL,
    JobInputError,
    Minimums,
    check_binary,
    check_counts,
    label_sample,
    null_warning,
    row_counts,
)
from tasks.layout import FORMAT_VERSION, SPARK_MODEL
from tasks.local_frame import LocalFrame, read_local_frame
from tasks.ownership import DEFAULT_LEASE_SECONDS
from tasks.parent_death import die_with_parent
from tasks.row_hash import HASH_BUCKETS

__all__ = ["JobInputError", "main"]

#: Default cap on the collected batch frame (MB of float64 values); the controller's
#: ``[batching] collect_limit_mb`` overrides it through the spec.
DEFAULT_COLLECT_LIMIT_MB = 512
#: Where collected labels are fitted (``[batching] fit_place`` through the spec); auto:
#: as tasks when the job has executors of its own, on driver threads under a plain local
#: master, whose task slots are the driver's own cores (measured, 64 labels x 5,000 rows
#: on local[2]: 28 s on driver threads, 41 s as tasks: Python workers, their imports and
#: pickling cost more than the GIL the threads share).
FIT_IN_TASKS, FIT_ON_DRIVER, FIT_AUTO = "tasks", "driver", "auto"


def fits_as_tasks(spec: dict[str, Any], master: str) -> bool:
    """Whether collected labels are fitted as Spark tasks (see :data:`FIT_AUTO`)."""
    place = spec.get("fit_place", FIT_AUTO)
    return place == FIT_IN_TASKS or (place == FIT_AUTO and not re.fullmatch(r"local(\[.*\])?", master))
#: Labels per task when a batch has many: enough tasks per slot to even out the load,
#: few enough that each Spark job's own cost (0.1-0.4 s on a busy 2-core machine) stays
#: small beside its fits; a task's labels are committed when it returns.
TASKS_PER_SLOT = 4
MAX_LABELS_PER_TASK = 64


def validation_sql(columns: list[str], seed: int, fraction: float) -> str:
    """A row's place in the validation split: a seeded 64-bit hash of ALL the dataset's
    columns, so every label, engine and feature set of one dataset sees the same
    validation rows, in every rerun and whatever the batch (rows that are exact copies
    share their place). As one SQL expression: a dataset of a thousand columns is then
    one call into the JVM, not one per column (seconds per batch)."""
    return f"pmod({row_hash_sql(columns, seed)}, {HASH_BUCKETS}) < {int(round(fraction * HASH_BUCKETS))}"


def row_hash_sql(columns: list[str], seed: int) -> str:
    """A row's hash: ``xxhash64`` of every column and then the seed (Spark's function
    takes no seed of its own; :mod:`tasks.row_hash` computes the same without Spark)."""
    return f"xxhash64({', '.join(quoted(c) for c in columns)}, {int(seed)})"


def validation_flag(data: Any, seed: int, fraction: float) -> Any:
    """:func:`validation_sql` as a Spark column of ``data``."""
    from pyspark.sql import functions as F

    return F.expr(validation_sql(data.columns, seed, fraction))


def label_column(i: int) -> str:
    return f"y{i}"


def prepare(data: Any, labels: list[str], features: list[str], seed: int, fraction: float) -> Any:
    """The batch's frame: one 0/1 double column per label (``y<i>``), the features as
    ``f<i>`` doubles and the validation flag; odd column names never reach expressions
    unquoted. One select of SQL expressions (one JVM call, whatever the column count)."""
    exprs = [f"CAST({quoted(label)} AS DOUBLE) AS {label_column(i)}" for i, label in enumerate(labels)]
    exprs += [f"CAST({quoted(f)} AS DOUBLE) AS f{i}" for i, f in enumerate(features)]
    exprs.append(f"{validation_sql(data.columns, seed, fraction)} AS {VALIDATION_COL}")
    exprs.append(f"{row_hash_sql(data.columns, seed)} AS {HASH_COL}")
    return data.selectExpr(*exprs)


def _numeric(data_type: Any) -> bool:  # noqa: ANN401 - a pyspark DataType
    from pyspark.sql.types import BooleanType, NumericType

    return isinstance(data_type, (NumericType, BooleanType))


def _class_counts(df: Any) -> dict[int, int]:
    """Rows per class of a frame whose labels are already known to be 0/1."""
    counts = {int(row[LABEL_COL]): int(row["count"]) for row in df.groupBy(LABEL_COL).count().collect()}
    return {0: counts.get(0, 0), 1: counts.get(1, 0)}


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


def _commit(spark: Any, job: LabelJob, params: dict[str, Any], rows: dict[str, Any], model: Any,
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


def _warn_nulls(label: str, rows: dict[str, Any], minimums: Minimums) -> None:
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
    emit_event("error", label=label, message=_error_message(exc))


def _error_message(exc: BaseException) -> str:
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


def _driver_cores(spark: Any) -> int:
    """Cores this driver may use for training threads: local[N]'s N, else spark.driver.cores."""
    sc = spark.sparkContext
    if sc.master.startswith("local"):
        return max(1, int(sc.defaultParallelism))
    return max(1, int(spark.conf.get("spark.driver.cores", "1")))


def collect_batch(prepared: Any, n_columns: int, limit_mb: float) -> Any:
    """The prepared frame as pandas, or ``None`` when it holds more than ``limit_mb`` of
    values (then labels train as Spark jobs): one action either way, never more rows
    collected than the limit allows."""
    max_rows = int(limit_mb * 1024 * 1024 / (8 * max(1, n_columns)))
    if max_rows < 1:
        return None
    frame = prepared.limit(max_rows + 1).toPandas()
    return None if len(frame) > max_rows else frame


def _on_driver(engine: Engine, job: LabelJob, train: Any, validation: Any, columns: list[str], params: dict[str, Any]) -> Any:
    spec = job.spec
    model, facts = train_on_driver(engine, train, validation, columns, params, int(spec["seed"]), job.label,
                                   Options.from_spec(spec))
    job.imbalance = imbalance_facts(engine, params, float(spec["balance_ratio"]), facts["weights"])
    return model


def train_collected(spark: Any, frame: Any, jobs: list[LabelJob], engine: Engine, params: dict[str, Any],
                    watch_parent: int | None) -> int:
    """A driver engine on the collected frame: labels train side by side on a pool of
    driver threads (the libraries release the GIL); each is committed as it finishes.
    Returns how many labels failed."""
    spec = jobs[0].spec
    columns = [f"f{i}" for i in range(len(spec["features"]))]
    seed = int(spec["seed"])
    minimums = Minimums.from_spec(spec)

    def train_one(job: LabelJob) -> tuple[dict[str, Any], Any]:
        job.started = time.perf_counter()
        job.check_switch()
        sample = label_sample(frame, job.label, label_column(job.index), columns, float(spec["balance_ratio"]), seed, minimums)
        _warn_nulls(job.label, sample.rows, minimums)
        emit_event("progress", label=job.label, percent=50, message="balanced")
        return sample.rows, _on_driver(engine, job, sample.train, sample.validation, columns, params)

    failed = 0
    threads = min(len(jobs), int(spec.get("threads") or _driver_cores(spark)))
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="train") as pool:
        futures = {pool.submit(train_one, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                rows, model = future.result()
                _commit(spark, job, params, rows, model, watch_parent)
            except Exception as exc:  # one label's failure never stops the others
                failed += 1
                report_failure(job.label, exc)
    return failed


def task_slots(spark: Any) -> int:
    """Fits that can run at once as Spark tasks: the job's cores (local[N]'s N, the
    executors' registered cores on a cluster) over ``spark.task.cpus``."""
    sc = spark.sparkContext
    per_task = max(1, int(spark.conf.get("spark.task.cpus", "1")))
    return max(1, int(sc.defaultParallelism) // per_task)


def start_warm_up(spark: Any, engine: Engine) -> threading.Thread:
    """While the driver collects the rows, one task per slot starts a Python worker and
    imports the engine's library in it (~1-3 s each, paid once per worker, which Spark
    keeps for the fits); a warm-up that fails only costs the fits that import. Not on a
    local master: there it only takes cores from the collect (measured: 6.7 s -> 13.7 s)."""
    sc = spark.sparkContext
    slots = task_slots(spark)

    def warm() -> None:
        try:
            sc.parallelize(range(slots), slots).flatMap(lambda _: warm_up(engine.name)).collect()
        except Exception:  # noqa: BLE001,S110 - the fits report any real trouble themselves
            pass

    thread = threading.Thread(target=warm, name="warm-up", daemon=True)
    thread.start()
    return thread


def label_groups(jobs: list[LabelJob], slots: int) -> list[list[LabelJob]]:
    """The labels of each task: one per task for a few labels, more per task for many."""
    size = max(1, min(MAX_LABELS_PER_TASK, len(jobs) // (slots * TASKS_PER_SLOT)))
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


def train_as_tasks(spark: Any, frame: Any, jobs: list[LabelJob], engine: Engine, params: dict[str, Any],
                   watch_parent: int | None) -> int:
    """A driver engine on the collected frame, fitted as Spark tasks: the frame goes to
    every executor once, each group of labels is one Spark job of one task (submitted
    from driver threads, so as many run at once as there are slots), and each label's
    artifact is committed by the driver as soon as its task returns. Returns how many
    labels failed."""
    spec = jobs[0].spec
    sc = spark.sparkContext
    settings = FitSettings(engine=engine.name, params=params, columns=[f"f{i}" for i in range(len(spec["features"]))],
                           seed=int(spec["seed"]), balance_ratio=float(spec["balance_ratio"]),
                           options=Options.from_spec(spec), minimums=Minimums.from_spec(spec))
    shipped = sc.broadcast(frame)
    slots = task_slots(spark)
    groups = label_groups(jobs, slots)
    failed = 0
    lock = threading.Lock()

    def run(group: list[LabelJob]) -> None:
        nonlocal failed
        ready = []
        for job in group:
            job.started = time.perf_counter()
            try:
                job.check_switch()
                ready.append(job)
            except Exception as exc:
                with lock:
                    failed += 1
                report_failure(job.label, exc)
        if not ready:
            return
        works = [LabelWork(job.label, label_column(job.index)) for job in ready]
        try:
            outcomes = sc.parallelize([works], 1).flatMap(lambda w: fit_group(shipped, settings, w)).collect()
        except Exception as exc:  # the task itself failed (lost executor, …): its labels fail, the rest go on
            with lock:
                failed += len(ready)
            for job in ready:
                report_failure(job.label, exc)
            return
        for job, outcome in zip(ready, outcomes, strict=True):
            try:
                if "error" in outcome:
                    raise outcome["error"]
                job.imbalance = outcome["imbalance"]
                outcome["model"].info["fitted_in"]["driver_pid"] = os.getpid()
                _warn_nulls(job.label, outcome["rows"], Minimums.from_spec(spec))
                _commit(spark, job, params, outcome["rows"], outcome["model"], watch_parent)
            except Exception as exc:  # one label's failure never stops the others
                with lock:
                    failed += 1
                report_failure(job.label, exc)

    # More threads than slots: while one thread commits its labels, another's task runs.
    with ThreadPoolExecutor(max_workers=max(1, min(len(groups), 2 * slots)), thread_name_prefix="fit") as pool:
        for future in [pool.submit(run, group) for group in groups]:
            future.result()
    shipped.unpersist()
    return failed


def train_in_spark(spark: Any, prepared: Any, job: LabelJob, engine: Engine, params: dict[str, Any],
                   watch_parent: int | None) -> None:
    """One label as Spark jobs on the cached batch frame (Spark engines, or data too big
    to collect): counts, balanced sample, training, artifact."""
    from pyspark.sql import functions as F

    job.started = time.perf_counter()
    job.check_switch()
    spec, seed = job.spec, int(job.spec["seed"])
    columns = [f"f{i}" for i in range(len(spec["features"]))]
    y = F.col(LABEL_COL)
    frame = prepared.select(F.col(label_column(job.index)).alias(LABEL_COL), *columns, VALIDATION_COL)
    # ONE pass counts rows per split and class: in a fresh JVM every Spark action costs
    # over a second, more than training on a balanced sample.
    counts = {(bool(r[VALIDATION_COL]), r[LABEL_COL]): int(r["count"])
              for r in frame.groupBy(VALIDATION_COL, LABEL_COL).count().collect()}
    per_value: dict[float, int] = {}
    for (_, value), n in counts.items():
        if value is not None:
            per_value[float(value)] = per_value.get(float(value), 0) + n
    nulls = sum(n for (_, value), n in counts.items() if value is None)
    per_class = check_binary(job.label, per_value, nulls=nulls)
    emit_event("progress", label=job.label, percent=30, message="data counted")

    before = {c: counts.get((False, float(c)), 0) for c in (0, 1)}
    minimums = Minimums.from_spec(spec)
    check_counts(job.label, before, {c: counts.get((True, float(c)), 0) for c in (0, 1)}, minimums)
    plan = plan_balance(before[0], before[1], float(spec["balance_ratio"]))
    labelled = frame.where(y.isNotNull())
    train = labelled.where(~F.col(VALIDATION_COL))
    if plan.fractions != {0: 1.0, 1: 1.0}:
        train = train.sampleBy(LABEL_COL, {float(k): v for k, v in plan.fractions.items()}, seed=seed)
    validation = labelled.where(F.col(VALIDATION_COL))
    if engine.trains_on == DRIVER:
        both = train.unionByName(validation).toPandas()
        train_pd, valid_pd = both[~both[VALIDATION_COL]], both[both[VALIDATION_COL]]
        after = {c: int((train_pd[LABEL_COL] == c).sum()) for c in (0, 1)}
        emit_event("progress", label=job.label, percent=50, message="balanced")
        model = _on_driver(engine, job, train_pd, valid_pd, columns, params)
    else:
        train = train.drop(VALIDATION_COL).cache()
        validation = validation.drop(VALIDATION_COL)
        after = _class_counts(train)
        emit_event("progress", label=job.label, percent=50, message="balanced")
        model, facts = train_on_executors(engine, spark, train, validation, columns, params, seed, after,
                                          Options.from_spec(spec))
        job.imbalance = imbalance_facts(engine, params, float(spec["balance_ratio"]), facts["weights"])
        train.unpersist()
    rows = row_counts(total=sum(counts.values()), per_class=per_class, before=before, after=after,
                      validation=counts.get((True, 0.0), 0) + counts.get((True, 1.0), 0))
    _warn_nulls(job.label, rows, minimums)
    _commit(spark, job, params, rows, model, watch_parent)


def train_batch(spark: Any, data: Any, spec: dict[str, Any], watch_parent: int | None) -> int:
    """Train every label of the spec; returns how many failed (each reported)."""
    features = spec["features"]
    missing = [f for f in features if f not in data.columns]
    if missing:
        raise JobInputError(f"feature column {missing[0]!r} is not in {spec['data']}: fix --features")
    # The controller checked the types in the footers it read; a cast would turn text into nulls.
    types = {f.name: f.dataType for f in data.schema.fields}
    odd = [f for f in features if not _numeric(types[f])]
    if odd:
        raise JobInputError(f"feature column {odd[0]!r} is {types[odd[0]].simpleString()}, not numeric: leave it out of --features")
    engine = get_engine(spec["engine"])
    params = engine.resolve(spec["params"])
    engine.check_job(spark)
    failed = 0
    present: list[tuple[str, str]] = []
    for label, slug in zip(spec["labels"], spec["slugs"], strict=True):
        if label not in data.columns:
            failed += 1
            emit_event("error", label=label,
                       message=f"label column {label!r} is not in {spec['data']}: check --labels against the dataset columns")
        elif not _numeric(types[label]):
            failed += 1
            emit_event("error", label=label, message=f"label {label!r} is a {types[label].simpleString()} column, not 0/1: "
                                                     "convert it to 0/1 or true/false first")
        else:
            present.append((label, slug))
    if not present:
        return failed
    prepared = prepare(data, [label for label, _ in present], features, int(spec["seed"]), float(spec["test_fraction"]))
    jobs = [LabelJob(i, label, slug, spec) for i, (label, slug) in enumerate(present)]
    frame = None
    if engine.trains_on == DRIVER:
        limit = float(spec.get("collect_limit_mb", DEFAULT_COLLECT_LIMIT_MB))
        # On a cluster the executors' cores idle while the driver collects: their Python
        # workers import the engine meanwhile. On one machine they are the driver's cores.
        as_tasks = fits_as_tasks(spec, spark.sparkContext.master)
        warming = start_warm_up(spark, engine) if as_tasks and not spark.sparkContext.master.startswith("local") else None
        frame = collect_batch(prepared, len(present) + len(features) + 1, limit)
        if warming is not None:
            warming.join()
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


def train_frame(spark: Any, frame: Any, jobs: list[LabelJob], engine: Engine, params: dict[str, Any],
                watch_parent: int | None) -> int:
    """A driver engine's labels on the batch's frame: as Spark tasks or on driver threads
    (:func:`fits_as_tasks`). Returns how many failed."""
    if fits_as_tasks(jobs[0].spec, spark.sparkContext.master):
        return train_as_tasks(spark, frame, jobs, engine, params, watch_parent)
    return train_collected(spark, frame, jobs, engine, params, watch_parent)


def train_local(spark: Any, local: LocalFrame, spec: dict[str, Any], watch_parent: int | None) -> int:
    """Every label of the spec on the frame :mod:`tasks.local_frame` read: no Spark query
    at all. Returns how many failed."""
    engine = get_engine(spec["engine"])
    params = engine.resolve(spec["params"])
    engine.check_job(spark)
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

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-read")
    future = pool.submit(read)
    pool.shutdown(wait=False)
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
        emit_event("error", label=None, message=_error_message(exc))
        raise
    finally:
        spark.stop()
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
