"""spark-submit entry point: score a dataset with one chosen model per label, whatever
engine trained each.

Usage (the controller builds this): ``spark-submit … predict.py --spec <base64 JSON>``.
Each label's engine record (:mod:`tasks.engines`) says how its model is applied:
models scored in Python (LightGBM and XGBoost boosters, scikit-learn estimators, user
engines) have their files read once by the driver and broadcast; each Python worker
loads them once (cached per broadcast) and scores Arrow batches in ``mapInPandas``.
Spark ML models (MLlib) are loaded by the driver and applied to the same frame in the
same Spark job. Scores are written by the executors and never pass through the driver.
Output: the key columns and one probability column per label, as Parquet into the
temporary folder the controller renames into place once ``_SUCCESS`` is there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from tasks.columns import quoted
from tasks.engines import get_engine
from tasks.jobspec import SPEC_FLAG, decode_spec, emit_event
from tasks.layout import SPARK_MODEL

ROW_HASH = "row_hash"
_MODELS: dict[int, list[tuple[str, Any, Any, list[int]]]] = {}


def _loaded(payload: Any) -> list[tuple[str, Any, Any, list[int]]]:
    """(column, engine, model, feature positions) per label, loaded once per Python worker."""
    key = payload.id if hasattr(payload, "id") else id(payload)
    if key not in _MODELS:
        value = payload.value if hasattr(payload, "value") else payload
        out = []
        for m in value["models"]:
            engine = get_engine(m["engine"])
            out.append((m["column"], engine, engine.load(m["files"]), m["positions"]))
        _MODELS[key] = out
    return _MODELS[key]


def score_batches(payload: Any, keys: list[str], passed: list[str]) -> Any:
    """The ``mapInPandas`` function: key columns and ``passed`` columns (scores Spark
    made already) through, one score column per broadcast model. Input columns are
    ``k0…``, the features as ``x0…xN`` doubles, then ``passed``."""

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        for pdf in batches:
            features = pdf[[c for c in pdf.columns if c.startswith("x")]].to_numpy(dtype="float64")
            out = {f"k{i}": pdf[f"k{i}"] for i in range(len(keys))}
            out.update({c: pdf[c] for c in passed})
            for column, engine, model, positions in _loaded(payload):
                out[column] = engine.predict(model, features[:, positions])
            yield pd.DataFrame(out)

    return score


def _read_bytes(spark: Any, uri: str) -> bytes:
    """A small file, read by the driver: plain I/O for local files, Hadoop's FileSystem
    API (whatever the cluster configures) otherwise."""
    if uri.startswith("file://"):
        with open(uri[len("file://"):], "rb") as fh:
            return fh.read()
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(spark._jsc.hadoopConfiguration()).open(path)
    try:
        return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def _keyed_frame(data: Any, spec: dict[str, Any]) -> tuple[Any, list[str], list[Any], dict[str, int]]:
    """The rows to score: key columns ``k<i>`` (the spec's keys, or a hash of the whole
    row when none is given) and every model's features as doubles ``x<i>``; with the key
    names, their schema fields and each feature's position."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StructField

    features = sorted({f for m in spec["models"] for f in m["features"]}, key=lambda f: data.columns.index(f))
    position = {f: i for i, f in enumerate(features)}
    keys = list(spec["key"])
    cols = []
    if keys:
        cols += [F.col(quoted(k)).alias(f"k{i}") for i, k in enumerate(keys)]
        key_fields = [StructField(k, data.schema[k].dataType, True) for k in keys]
    else:
        # No key given: a 64-bit hash of the whole row identifies it (same row, same hash).
        keys = [ROW_HASH]
        cols.append(F.xxhash64(*[F.col(quoted(c)) for c in data.columns]).alias("k0"))
        key_fields = [StructField(ROW_HASH, LongType(), False)]
    cols += [F.col(quoted(f)).cast("double").alias(f"x{i}") for i, f in enumerate(features)]
    return data.select(*cols), keys, key_fields, position


def _apply_models(spark: Any, frame: Any, spec: dict[str, Any], position: dict[str, int]) -> tuple[Any, list[dict[str, Any]], list[str]]:
    """Spark models applied to ``frame`` (columns ``s<i>``); the models scored in Python
    (their files read once by the driver) returned to be broadcast."""
    in_python, in_spark = [], []
    for i, m in enumerate(spec["models"]):
        engine = get_engine(m["engine"])
        engine.check_job(spark)
        if engine.scores_in_python:
            files = {name: _read_bytes(spark, f"{m['artifact_uri']}/{name}") for name in engine.model_files}
            in_python.append({"column": f"s{i}", "engine": m["engine"], "files": files,
                              "positions": [position[f] for f in m["features"]]})
        else:
            model = engine.load_spark_model(f"{m['artifact_uri']}/{SPARK_MODEL}")
            frame = engine.spark_probability(model, frame, [f"x{position[f]}" for f in m["features"]], f"s{i}")
            in_spark.append(f"s{i}")
    return frame, in_python, in_spark


def _score_in_python(spark: Any, frame: Any, in_python: list[dict[str, Any]], in_spark: list[str], keys: list[str],
                     key_fields: list[Any]) -> Any:
    """``frame`` with the Python-scored models' columns added, batch by batch on the executors."""
    from pyspark.sql.types import DoubleType, StructField, StructType

    payload = spark.sparkContext.broadcast({"models": in_python})
    # The module's own function (not this script's __main__ copy), so workers import
    # it and share its model cache.
    from tasks.predict import score_batches as module_score_batches

    schema = StructType([StructField(f"k{i}", f.dataType, f.nullable) for i, f in enumerate(key_fields)]
                        + [StructField(c, DoubleType(), True) for c in in_spark]
                        + [StructField(m["column"], DoubleType(), True) for m in in_python])
    return frame.select(*[f"k{i}" for i in range(len(keys))], *[c for c in frame.columns if c.startswith("x")],
                        *in_spark).mapInPandas(module_score_batches(payload, keys, in_spark), schema)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != SPEC_FLAG:
        print(f"usage: predict.py {SPEC_FLAG} <base64 job spec>", file=sys.stderr)
        return 2
    spec = decode_spec(argv[1])

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.getOrCreate()
    sc = spark.sparkContext
    emit_event("started", application_id=sc.applicationId, ui_url=sc.uiWebUrl, percent=10)
    try:
        frame, keys, key_fields, position = _keyed_frame(spark.read.parquet(spec["data"]), spec)
        frame, in_python, in_spark = _apply_models(spark, frame, spec, position)
        emit_event("progress", percent=30, message=f"{len(in_python)} models broadcast, {len(in_spark)} applied in Spark")
        if in_python:
            frame = _score_in_python(spark, frame, in_python, in_spark, keys, key_fields)
        scored = frame.select(*[F.col(f"k{i}").alias(k) for i, k in enumerate(keys)],
                              *[F.col(f"s{i}").cast("double").alias(m["label"]) for i, m in enumerate(spec["models"])])
        scored.write.mode("overwrite").parquet(spec["temp"])
        emit_event("artifact", label=None, location=spec["out"], percent=95)
    except Exception as exc:
        emit_event("error", label=None, message=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        raise
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
