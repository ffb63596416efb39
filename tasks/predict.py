"""spark-submit entry point: score a dataset with one LightGBM booster per label.

Usage (the controller builds this): ``spark-submit … predict.py --spec <base64 JSON>``.
The model strings are read once by the driver and broadcast; each Python worker builds
its boosters once (cached per broadcast) and scores Arrow batches in ``mapInPandas``,
so scores are written by the executors and never pass through the driver. Output:
the key columns and one probability column per label, as Parquet into the temporary
folder the controller renames into place once ``_SUCCESS`` is there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from tasks.columns import quoted
from tasks.jobspec import SPEC_FLAG, decode_spec, emit_event

ROW_HASH = "row_hash"
_BOOSTERS: dict[int, list[tuple[str, Any, list[int]]]] = {}


def _boosters(payload: Any) -> list[tuple[str, Any, list[int]]]:
    """(column, booster, feature positions) per label, built once per Python worker."""
    key = payload.id if hasattr(payload, "id") else id(payload)
    if key not in _BOOSTERS:
        import lightgbm

        value = payload.value if hasattr(payload, "value") else payload
        _BOOSTERS[key] = [(m["column"], lightgbm.Booster(model_str=m["model"]), m["positions"]) for m in value["models"]]
    return _BOOSTERS[key]


def score_batches(payload: Any, keys: list[str]) -> Any:
    """The ``mapInPandas`` function: key columns through, one score column per booster.
    Input columns are the keys, then the features as ``x0…xN`` doubles."""

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        for pdf in batches:
            features = pdf[[c for c in pdf.columns if c.startswith("x")]].to_numpy(dtype="float64")
            out = {k: pdf[f"k{i}"] for i, k in enumerate(keys)}
            for column, booster, positions in _boosters(payload):
                out[column] = booster.predict(features[:, positions])
            yield pd.DataFrame(out)

    return score


def _read_text(spark: Any, uri: str) -> str:
    """A small text file, read by the driver: plain I/O for local files, Hadoop's
    FileSystem API (whatever the cluster configures) otherwise."""
    if uri.startswith("file://"):
        with open(uri[len("file://"):], encoding="utf-8") as fh:
            return fh.read()
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(spark._jsc.hadoopConfiguration()).open(path)
    try:
        return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != SPEC_FLAG:
        print(f"usage: predict.py {SPEC_FLAG} <base64 job spec>", file=sys.stderr)
        return 2
    spec = decode_spec(argv[1])

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    spark = SparkSession.builder.getOrCreate()
    sc = spark.sparkContext
    emit_event("started", application_id=sc.applicationId, ui_url=sc.uiWebUrl, percent=10)
    try:
        data = spark.read.parquet(spec["data"])
        features = sorted({f for m in spec["models"] for f in m["features"]}, key=lambda f: data.columns.index(f))
        position = {f: i for i, f in enumerate(features)}
        models = [{"column": m["label"], "model": _read_text(spark, m["model_uri"]),
                   "positions": [position[f] for f in m["features"]]} for m in spec["models"]]
        payload = sc.broadcast({"models": models})
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
        schema = StructType(key_fields + [StructField(m["column"], DoubleType(), True) for m in models])
        emit_event("progress", percent=30, message=f"{len(models)} boosters broadcast")
        # The module's own function (not this script's __main__ copy), so workers import
        # it and share its booster cache.
        from tasks.predict import score_batches as module_score_batches

        scored = data.select(*cols).mapInPandas(module_score_batches(payload, keys), schema)
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
