"""A batch's frame in Spark: labels and features as doubles, the validation flag and the
row hash, in one select; and its collection to pandas when it fits the driver.
(:mod:`tasks.local_frame` builds the same frame without Spark for a local dataset.)"""

from __future__ import annotations

from typing import Any

from tasks.columns import quoted
from tasks.label_sample import HASH_COL, VALIDATION_COL
from tasks.row_hash import HASH_BUCKETS

#: Default cap on the collected batch frame (MB of float64 values); the controller's
#: ``[batching] collect_limit_mb`` overrides it through the spec.
DEFAULT_COLLECT_LIMIT_MB = 512


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


def label_column(i: int) -> str:
    """The batch frame's column of the i-th label."""
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


def is_numeric(data_type: Any) -> bool:  # noqa: ANN401 - a pyspark DataType
    """Whether Spark casts a column of this type to a number (not text into nulls)."""
    from pyspark.sql.types import BooleanType, NumericType

    return isinstance(data_type, (NumericType, BooleanType))


def collect_batch(prepared: Any, n_columns: int, limit_mb: float) -> Any:
    """The prepared frame as pandas, or ``None`` when it holds more than ``limit_mb`` of
    values (then labels train as Spark jobs): one action either way, never more rows
    collected than the limit allows."""
    max_rows = int(limit_mb * 1024 * 1024 / (8 * max(1, n_columns)))
    if max_rows < 1:
        return None
    frame = prepared.limit(max_rows + 1).toPandas()
    return None if len(frame) > max_rows else frame
