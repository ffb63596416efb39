"""A batch frame read with pyarrow (tasks.local_frame) is the frame Spark would collect.

The Spark test compares, on one real local Spark session, the pyarrow frame with
``prepare(...).toPandas()`` on a dataset of every column type the reader takes, nulls,
-0.0, NaN and infinities included, split in two part files; the others check when the
reader steps aside for Spark.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.label_sample import HASH_COL, VALIDATION_COL, label_sample
from tasks.local_frame import data_files, local_path, read_local_frame

LABELS = ["y_int", "y_bool"]
FEATURES = ["b", "i8", "i16", "i32", "i64", "f32", "f64"]


def _table(n: int, start: int) -> pa.Table:
    rng = np.random.default_rng(start)
    f32 = rng.normal(size=n).astype(np.float32)
    f32[:5] = [0.0, -0.0, np.nan, np.inf, -np.inf]
    f64 = rng.normal(size=n)
    f64[1:5] = [-0.0, 0.0, np.nan, -np.inf]  # row 0 is null
    return pa.table({
        "id": pa.array(np.arange(start, start + n), pa.int64()),
        "b": pa.array([None if i % 7 == 0 else bool(i % 2) for i in range(n)], pa.bool_()),
        "i8": pa.array(rng.integers(-128, 127, n), pa.int8()),
        "i16": pa.array(rng.integers(-30000, 30000, n), pa.int16()),
        "i32": pa.array([None if i % 5 == 0 else int(v) for i, v in enumerate(rng.integers(-(2**31), 2**31 - 1, n))], pa.int32()),
        "i64": pa.array(rng.integers(-(2**63), 2**63 - 1, n), pa.int64()),
        "f32": pa.array(f32, pa.float32()),
        "f64": pa.array([None if i % 11 == 0 else float(v) for i, v in enumerate(f64)], pa.float64()),
        "y_int": pa.array([None if i % 13 == 0 else int(v) for i, v in enumerate(rng.random(n) < 0.3)], pa.int32()),
        "y_bool": pa.array(rng.random(n) < 0.6, pa.bool_()),
    })


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("local-frame") / "data.parquet"
    path.mkdir()
    pq.write_table(_table(700, 0), path / "part-00000.parquet")
    pq.write_table(_table(1300, 700), path / "part-00001.parquet")  # bigger: Spark reads it first
    (path / "_SUCCESS").write_text("")
    (path / "_fanout.json").write_text("{}")
    return path


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(HASH_COL, kind="stable").reset_index(drop=True)


@pytest.mark.spark
def test_the_pyarrow_frame_is_the_frame_spark_collects(dataset):
    from pyspark.sql import SparkSession

    from tasks.batch_frame import prepare

    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        data = spark.read.parquet(str(dataset))
        for seed in (11, 2**40):  # an int literal and a long one: Spark hashes them differently
            expected = prepare(data, LABELS, FEATURES, seed, 0.25).toPandas()
            local, why = read_local_frame(f"file://{dataset}", LABELS, FEATURES, seed, 0.25, limit_mb=512)
            assert local is not None, why
            assert (local.files, local.rows) == (2, 2000)
            assert list(local.frame.columns) == list(expected.columns)
            pd.testing.assert_frame_equal(_sorted(local.frame), _sorted(expected), check_dtype=True)
            assert 0.2 < expected[VALIDATION_COL].mean() < 0.3
    finally:
        spark.stop()

    # Read in either order, a label keeps the same training rows.
    local, _ = read_local_frame(str(dataset), LABELS, FEATURES, 11, 0.25, limit_mb=512)
    as_read = label_sample(local.frame, "y_int", "y0", [f"f{i}" for i in range(len(FEATURES))], 1.0, 11)
    reversed_frame = local.frame.iloc[::-1]
    backwards = label_sample(reversed_frame, "y_int", "y0", [f"f{i}" for i in range(len(FEATURES))], 1.0, 11)
    key = local.frame[HASH_COL]
    assert sorted(key[as_read.train.index]) == sorted(key[backwards.train.index])


def test_spark_reads_what_the_reader_cannot(dataset, tmp_path):
    def why(uri, labels=LABELS, limit_mb=512.0, features=FEATURES):
        local, reason = read_local_frame(uri, labels, features, 1, 0.2, limit_mb)
        assert local is None
        return reason

    assert why("hdfs://nn:8020/data") == "not on the local file system"
    assert why(str(dataset), limit_mb=0.01).endswith("exceed collect_limit_mb")
    assert why(str(dataset), labels=["nope"]) == "a column is missing or named twice"

    text = tmp_path / "text.parquet"
    pq.write_table(pa.table({"name": ["a", "b"], "y": [0, 1]}), text)
    assert why(str(text), labels=["y"]) == "column 'name' is string"

    nested = tmp_path / "partitioned"
    (nested / "day=1").mkdir(parents=True)
    assert why(str(nested)) == "holds sub-folders (a partitioned dataset)"
    assert why(str(tmp_path / "missing")) == "unreadable (FileNotFoundError)"

    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(b"PAR1 not really parquet")
    assert why(str(damaged)).startswith("unreadable with pyarrow")

    cased = tmp_path / "cased.parquet"
    pq.write_table(pa.table({"a": [1, 2], "A": [3, 4], "y": [0, 1]}), cased)
    assert why(str(cased), labels=["y"]) == "a column is missing or named twice"  # Spark refuses it

    hidden = tmp_path / "_hidden.parquet"
    pq.write_table(pa.table({"y": [0, 1]}), hidden)
    assert why(str(hidden), labels=["y"]) == "a hidden file (Spark skips it)"

    partitioned = tmp_path / "by-day"
    (partitioned / "_day=1").mkdir(parents=True)
    assert why(str(partitioned)) == "holds sub-folders (a partitioned dataset)"

    # Wide: every column is read for the hash, so the unused ones count against the limit.
    wide = tmp_path / "wide.parquet"
    pq.write_table(pa.table({f"c{i}": np.zeros(1000) for i in range(200)} | {"y": np.zeros(1000)}), wide)
    # (the batch's own 4 columns, 31 KB, would fit 1 MB)
    assert why(str(wide), labels=["y"], features=["c0"], limit_mb=1.0).startswith("1000 rows x 205 columns (all read")

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pq.write_table(pa.table({"y": pa.array([0, 1], pa.int32())}), mixed / "a.parquet")
    pq.write_table(pa.table({"y": pa.array([0, 1], pa.int64())}), mixed / "b.parquet")
    assert why(str(mixed), labels=["y"]) == "part files differ in schema"


def test_paths_and_files_as_spark_lists_them(dataset, tmp_path):
    copying = tmp_path / "copying"
    copying.mkdir()
    for name in ("part-0.parquet", "part-1.parquet._COPYING_", ".part-0.parquet.crc", "_SUCCESS"):
        (copying / name).write_bytes(b"")
    assert [p.rsplit("/", 1)[1] for p in data_files(str(copying))] == ["part-0.parquet"]
    assert local_path("file:///tmp/x") == "/tmp/x"
    assert local_path("/tmp/x") == "/tmp/x"
    assert local_path("hdfs:///tmp/x") is None
    assert [p.rsplit("/", 1)[1] for p in data_files(str(dataset))] == ["part-00000.parquet", "part-00001.parquet"]
