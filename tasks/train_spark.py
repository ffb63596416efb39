"""One label as Spark jobs on the batch's cached frame: Spark engines (MLlib, SynapseML),
and driver engines on data too big to collect. One pass counts the label's rows per
split and class, then the label is balanced, trained and committed."""

from __future__ import annotations

import time
from typing import Any

from tasks.balance import plan_balance
from tasks.batch_frame import label_column
from tasks.engines import DRIVER, LABEL_COL, Engine
from tasks.engines.training import Options, imbalance_facts, train_on_executors
from tasks.jobspec import emit_event
from tasks.label_job import LabelJob, commit_label, fit_on_driver, warn_nulls
from tasks.label_sample import VALIDATION_COL, Minimums, check_binary, check_counts, row_counts


def _class_counts(df: Any) -> dict[int, int]:
    """Rows per class of a frame whose labels are already known to be 0/1."""
    counts = {int(row[LABEL_COL]): int(row["count"]) for row in df.groupBy(LABEL_COL).count().collect()}
    return {0: counts.get(0, 0), 1: counts.get(1, 0)}


def count_label(frame: Any, label: str) -> tuple[dict[tuple[bool, Any], int], dict[int, int]]:
    """Rows per (validation?, value) of the label's frame, in ONE pass (in a fresh JVM
    every Spark action costs over a second, more than training on a balanced sample),
    and rows per class once the label is known to be 0/1."""
    counts = {(bool(r[VALIDATION_COL]), r[LABEL_COL]): int(r["count"])
              for r in frame.groupBy(VALIDATION_COL, LABEL_COL).count().collect()}
    per_value: dict[float, int] = {}
    for (_, value), n in counts.items():
        if value is not None:
            per_value[float(value)] = per_value.get(float(value), 0) + n
    nulls = sum(n for (_, value), n in counts.items() if value is None)
    return counts, check_binary(label, per_value, nulls=nulls)


def _fit(spark: Any, job: LabelJob, engine: Engine, params: dict[str, Any], train: Any, validation: Any) -> tuple[Any, dict[int, int]]:
    """The label's model and its training rows per class after balancing."""
    columns = [f"f{i}" for i in range(len(job.spec["features"]))]
    if engine.trains_on == DRIVER:
        both = train.unionByName(validation).toPandas()
        train_pd, valid_pd = both[~both[VALIDATION_COL]], both[both[VALIDATION_COL]]
        after = {c: int((train_pd[LABEL_COL] == c).sum()) for c in (0, 1)}
        emit_event("progress", label=job.label, percent=50, message="balanced")
        return fit_on_driver(engine, job, train_pd, valid_pd, columns, params), after
    train = train.drop(VALIDATION_COL).cache()
    after = _class_counts(train)
    emit_event("progress", label=job.label, percent=50, message="balanced")
    model, facts = train_on_executors(engine, spark, train, validation.drop(VALIDATION_COL), columns, params,
                                      int(job.spec["seed"]), after, Options.from_spec(job.spec))
    job.imbalance = imbalance_facts(engine, params, float(job.spec["balance_ratio"]), facts["weights"])
    train.unpersist()
    return model, after


def train_in_spark(spark: Any, prepared: Any, job: LabelJob, engine: Engine, params: dict[str, Any],
                   watch_parent: int | None) -> None:
    """One label as Spark jobs on the cached batch frame (Spark engines, or data too big
    to collect): counts, balanced sample, training, artifact."""
    from pyspark.sql import functions as F

    job.started = time.perf_counter()
    job.check_switch()
    spec = job.spec
    columns = [f"f{i}" for i in range(len(spec["features"]))]
    frame = prepared.select(F.col(label_column(job.index)).alias(LABEL_COL), *columns, VALIDATION_COL)
    counts, per_class = count_label(frame, job.label)
    emit_event("progress", label=job.label, percent=30, message="data counted")

    before = {c: counts.get((False, float(c)), 0) for c in (0, 1)}
    minimums = Minimums.from_spec(spec)
    check_counts(job.label, before, {c: counts.get((True, float(c)), 0) for c in (0, 1)}, minimums)
    plan = plan_balance(before[0], before[1], float(spec["balance_ratio"]))
    labelled = frame.where(F.col(LABEL_COL).isNotNull())
    train = labelled.where(~F.col(VALIDATION_COL))
    if plan.fractions != {0: 1.0, 1: 1.0}:
        train = train.sampleBy(LABEL_COL, {float(k): v for k, v in plan.fractions.items()}, seed=int(spec["seed"]))
    model, after = _fit(spark, job, engine, params, train, labelled.where(F.col(VALIDATION_COL)))
    rows = row_counts(total=sum(counts.values()), per_class=per_class, before=before, after=after,
                      validation=counts.get((True, 0.0), 0) + counts.get((True, 1.0), 0))
    warn_nulls(job.label, rows, minimums)
    commit_label(spark, job, params, rows, model, watch_parent)
