"""spark-submit entry point: train one binary classifier per label and write artifacts.

Usage (the controller builds this): ``spark-submit … train_model.py --spec <base64 JSON>``.
Exit status 0 means every label of the spec has a complete artifact; on failure the
last ``FANOUT_EVENT error`` line carries a one-line reason.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import time
from datetime import datetime, timezone
from typing import Any

from tasks import engines
from tasks.artifact_writer import ArtifactWriter
from tasks.balance import plan_balance
from tasks.engine_specs import resolve_params
from tasks.jobspec import FAIL_LABELS_ENV, SPEC_FLAG, decode_spec, emit_event, fail_labels
from tasks.layout import FORMAT_VERSION, SPARK_MODEL
from tasks.parent_death import die_with_parent

TEST_COL = "__test__"


class JobInputError(RuntimeError):
    """Bad input found inside the job (missing column, single-class label, …)."""


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _prepare(df: Any, label: str, features: list[str]) -> Any:
    from pyspark.sql import functions as F

    cols = [F.col(_quote(label)).cast("double").alias(engines.LABEL_COL)]
    cols += [F.col(_quote(f)).cast("double").alias(f"f{i}") for i, f in enumerate(features)]
    return df.select(*cols)


def _class_counts(df: Any) -> dict[int, int]:
    """Rows per class of a frame whose labels are already known to be 0/1."""
    counts = {int(row[engines.LABEL_COL]): int(row["count"]) for row in df.groupBy(engines.LABEL_COL).count().collect()}
    return {0: counts.get(0, 0), 1: counts.get(1, 0)}


def _versions(spark: Any) -> dict[str, str]:
    import numpy
    import pandas
    import pyarrow

    return {"spark": spark.version, "python": platform.python_version(), "numpy": numpy.__version__,
            "pandas": pandas.__version__, "pyarrow": pyarrow.__version__}


def train_label(spark: Any, data: Any, label: str, slug: str, spec: dict[str, Any], watch_parent: int | None) -> str:
    started = time.perf_counter()
    if label in fail_labels(os.environ.get(FAIL_LABELS_ENV)):
        raise RuntimeError(f"{FAIL_LABELS_ENV} names label {label!r}: failing on purpose (test switch)")
    if label not in data.columns:
        raise JobInputError(f"label column {label!r} is not in {spec['data']}: check --labels against the dataset columns")
    features = spec["features"]
    missing = [f for f in features if f not in data.columns]
    if missing:
        raise JobInputError(f"feature column {missing[0]!r} is not in {spec['data']}: fix --features")
    engine = spec["engine"]
    params = resolve_params(engine, spec["params"])
    seed = int(spec["seed"])

    from pyspark.sql import functions as F

    y = F.col(engines.LABEL_COL)
    test_fraction = float(spec["test_fraction"])
    # The split is a seeded flag per row (deterministic for the same input files, as
    # randomSplit is), so ONE pass counts rows per split and class: in a fresh JVM every
    # Spark action costs over a second, more than training on a balanced sample.
    flagged = _prepare(data, label, features).withColumn(TEST_COL, F.rand(seed) < F.lit(test_fraction))
    counts = {(bool(r[TEST_COL]), r[engines.LABEL_COL]): int(r["count"])
              for r in flagged.groupBy(TEST_COL, engines.LABEL_COL).count().collect()}
    total_rows = sum(counts.values())
    odd = sorted({v for (_, v) in counts if v is not None and v not in (0.0, 1.0)})
    if odd:
        raise JobInputError(f"label {label!r} is not binary (value {odd[0]!r} is not 0 or 1): labels must hold 0/1")
    counts_all = {c: counts.get((False, float(c)), 0) + counts.get((True, float(c)), 0) for c in (0, 1)}
    if counts_all[0] == 0 or counts_all[1] == 0:
        only = 0 if counts_all[1] == 0 else 1
        raise JobInputError(f"label {label!r} has only class {only} ({counts_all[only]} rows): nothing to learn; drop it from --labels")
    emit_event("progress", label=label, percent=30, message="data counted")

    before = {c: counts.get((False, float(c)), 0) for c in (0, 1)}
    plan = plan_balance(before[0], before[1], float(spec["balance_ratio"]))
    labelled = flagged.where(y.isNotNull())
    train = labelled.where(~F.col(TEST_COL))
    if plan.fractions != {0: 1.0, 1: 1.0}:
        train = train.sampleBy(engines.LABEL_COL, {float(k): v for k, v in plan.fractions.items()}, seed=seed)
    test = labelled.where(F.col(TEST_COL))
    columns = [f"f{i}" for i in range(len(features))]

    if engine == "lightgbm":
        # One action collects the balanced training rows and the test rows together.
        both = train.unionByName(test).toPandas()
        train_pd, test_pd = both[~both[TEST_COL]], both[both[TEST_COL]]
        after = {c: int((train_pd[engines.LABEL_COL] == c).sum()) for c in (0, 1)}
        emit_event("progress", label=label, percent=50, message="balanced")
        model = engines.train_lightgbm(train_pd, test_pd, columns, params, seed)
    else:
        train = train.drop(TEST_COL).cache()
        test = test.drop(TEST_COL)
        after = _class_counts(train)
        emit_event("progress", label=label, percent=50, message="balanced")
        if engine == "synapseml":
            model = engines.train_synapseml(spark, train, test, columns, params, seed)
        else:
            model = engines.train_mllib(engine, train, test, columns, params, seed)
    emit_event("progress", label=label, percent=85, message="trained")

    metadata = {
        "format_version": FORMAT_VERSION,
        "label": label,
        "slug": slug,
        "engine": engine,
        "params": params,
        "features": features,
        "seed": seed,
        "balance_ratio": float(spec["balance_ratio"]),
        "test_fraction": test_fraction,
        "rows": {
            "total": total_rows,
            "labelled": counts_all[0] + counts_all[1],
            "train_before_balancing": before[0] + before[1],
            "train_after_balancing": after[0] + after[1],
            "class_counts_before_balancing": {"0": before[0], "1": before[1]},
            "class_counts_after_balancing": {"0": after[0], "1": after[1]},
        },
        "metrics": model.metrics,
        "training_seconds": round(model.training_seconds, 3),
        "application_id": spark.sparkContext.applicationId,
        "run_id": spec.get("run_id"),
        "task_id": spec.get("task_id"),
        "versions": {**_versions(spark), **model.versions},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with ArtifactWriter(spark, spec["artifact_root"], slug) as writer:
        for name, content in model.files.items():
            writer.write_bytes(name, content)
        if model.spark_model is not None:
            model.spark_model.write().save(f"{writer.temp_uri}/{SPARK_MODEL}")
            writer.record_written(SPARK_MODEL)
        metadata["job_seconds"] = round(time.perf_counter() - started, 3)
        final = writer.commit(metadata, abort_if=lambda: watch_parent is not None and os.getppid() != watch_parent)
    if engine != "lightgbm":
        train.unpersist()
    emit_event("artifact", label=label, location=final, reused=writer.already_complete, metrics=model.metrics)
    return final


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != SPEC_FLAG:
        print(f"usage: train_model.py {SPEC_FLAG} <base64 job spec>", file=sys.stderr)
        return 2
    spec = decode_spec(argv[1])
    # A driver on the controller's machine is a child of the spark-submit JVM: if that
    # dies, so must the driver, or a stopped run leaves it training and publishing.
    watch_parent = die_with_parent(signal.SIGKILL) if spec.get("driver_local") else None

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    sc = spark.sparkContext
    emit_event("started", application_id=sc.applicationId, ui_url=sc.uiWebUrl, percent=10)
    failed = 0
    try:
        try:
            data = spark.read.parquet(spec["data"])
        except Exception as exc:  # AnalysisException: path missing or not Parquet
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JobInputError(f"cannot read dataset {spec['data']}: {first}") from None
        for label, slug in zip(spec["labels"], spec["slugs"], strict=True):
            try:
                train_label(spark, data, label, slug, spec, watch_parent)
            except (JobInputError, engines.EngineUnavailable) as exc:
                failed += 1
                emit_event("error", label=label, message=str(exc))
    except JobInputError as exc:
        emit_event("error", label=None, message=str(exc))
        return 3
    except Exception as exc:
        emit_event("error", label=None, message=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
        raise
    finally:
        spark.stop()
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
