"""A batch's frame read straight from a local Parquet dataset with pyarrow, no Spark query.

In a fresh JVM, Spark's first read and collect of a small dataset costs 4-8 s (schema
inference, code generation), more than reading it with pyarrow and training every
label. When the dataset is on this machine's file system, every column is a type whose
hash this job computes exactly as Spark does (:mod:`tasks.row_hash`: booleans, integers,
floats) and the rows fit ``collect_limit_mb``, the job builds here the very frame Spark
would have collected (same columns, same casts, same validation rows), while the
SparkSession starts. Anything else (text columns, HDFS, a damaged or unreadable file,
more rows than the limit) answers ``None`` with the reason, and the job reads through
Spark as before, which then says what is wrong in its own words.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from tasks.label_sample import HASH_COL, VALIDATION_COL
from tasks.layout import is_hidden, spark_reads
from tasks.row_hash import hash_kind, in_validation, literal_column, spark_xxhash64


@dataclass
class LocalFrame:
    """The batch frame (``y<i>`` labels, ``f<i>`` features, validation flag, row hash)."""

    frame: Any  # pandas DataFrame
    files: int
    rows: int


def local_path(uri: str) -> str | None:
    """The file-system path of a local dataset URI (a plain path or ``file:``), else ``None``."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme else uri
    return None


def data_files(path: str) -> list[str]:
    """The Parquet files Spark reads for ``path``: the file itself, or the folder's files
    whose names start with neither ``_`` nor ``.`` (markers, checksums, temporaries) and
    are not half-copied (``._COPYING_``); sorted, so every rerun sees the same order.
    ``ValueError`` for what Spark reads otherwise: a partition folder, a lone hidden file."""
    if os.path.isfile(path):
        if is_hidden(os.path.basename(path)):
            raise ValueError("a hidden file (Spark skips it)")
        return [path]
    entries = os.listdir(path)
    if any("=" in n and os.path.isdir(os.path.join(path, n)) for n in entries):
        raise ValueError("holds sub-folders (a partitioned dataset)")
    names = sorted(n for n in entries if spark_reads(n))
    files = [os.path.join(path, n) for n in names]
    if any(not os.path.isfile(f) for f in files):
        raise ValueError("holds sub-folders (a partitioned dataset)")
    return files


def _footers(files: list[str]) -> tuple[Any, int]:
    """The schema every part file shares (``ValueError`` when they differ) and the rows, from the footers."""
    import pyarrow.parquet as pq

    footers = []
    for f in files:  # one open per file: its footer holds both
        with pq.ParquetFile(f) as part:
            footers.append((part.schema_arrow, part.metadata.num_rows))
    schema = footers[0][0]
    if any(not s.equals(schema) for s, _ in footers[1:]):
        raise ValueError("part files differ in schema")
    return schema, sum(rows for _, rows in footers)


def read_local_frame(uri: str, labels: list[str], features: list[str], seed: int, test_fraction: float,
                     limit_mb: float) -> tuple[LocalFrame | None, str]:
    """The batch frame of ``uri`` read with pyarrow, or ``None`` and why not."""
    path = local_path(uri)
    if path is None:
        return None, "not on the local file system"
    try:
        files = data_files(path)
        if not files:
            return None, "no data files"
        schema, rows = _footers(files)
    except OSError as exc:
        return None, f"unreadable ({type(exc).__name__})"
    except ValueError as exc:  # pyarrow's ArrowInvalid is one too
        return None, str(exc) if type(exc) is ValueError else f"unreadable with pyarrow ({type(exc).__name__})"
    kinds = {field.name: hash_kind(field.type) for field in schema}
    odd = [name for name, kind in kinds.items() if kind is None]
    if odd:
        return None, f"column {odd[0]!r} is {schema.field(odd[0]).type}"
    # Spark matches column names regardless of case (and refuses two that differ only in it).
    if len({name.lower() for name in schema.names}) != len(schema) or any(name not in kinds for name in [*labels, *features]):
        return None, "a column is missing or named twice"
    # Every column is read (the hash takes them all), beside the batch's own columns.
    columns = len(schema) + len(labels) + len(features) + 2
    if rows * 8 * columns > limit_mb * 1024 * 1024:
        return None, f"{rows} rows x {columns} columns (all read, then the batch's) exceed collect_limit_mb"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.concat_tables([pq.read_table(f) for f in files])
    except (OSError, ValueError) as exc:
        return None, f"unreadable with pyarrow ({type(exc).__name__})"
    frame = batch_frame(table, kinds, labels, features, seed, test_fraction)
    return LocalFrame(frame=frame, files=len(files), rows=table.num_rows), "read with pyarrow"


def _values(column: Any, kind: str) -> tuple[Any, Any]:  # noqa: ANN401 - a pyarrow ChunkedArray
    import numpy as np

    array = column.combine_chunks()
    valid = None if array.null_count == 0 else np.asarray(array.is_valid().to_numpy(zero_copy_only=False))
    filled = array.fill_null(False if kind == "bool" else 0) if valid is not None else array
    return filled.to_numpy(zero_copy_only=False), valid


def batch_frame(table: Any, kinds: dict[str, str], labels: list[str], features: list[str], seed: int,  # noqa: ANN401
                test_fraction: float) -> Any:
    """What Spark's ``prepare`` + ``toPandas`` give for ``table``: labels and features as
    float64 (null: NaN), the validation flag and the row hash."""
    import numpy as np
    import pandas as pd

    n = table.num_rows
    values = {name: _values(table.column(name), kinds[name]) for name in table.column_names}
    row_hash = spark_xxhash64([(*values[name], kinds[name]) for name in table.column_names] + [literal_column(int(seed), n)], n)

    def as_double(name: str) -> Any:
        data, valid = values[name]
        out = data.astype(np.float64)
        if valid is not None:
            out[~valid] = np.nan
        return out

    columns = {f"y{i}": as_double(label) for i, label in enumerate(labels)}
    columns.update({f"f{i}": as_double(feature) for i, feature in enumerate(features)})
    columns[VALIDATION_COL] = in_validation(row_hash, test_fraction)
    columns[HASH_COL] = row_hash
    return pd.DataFrame(columns, copy=False)
