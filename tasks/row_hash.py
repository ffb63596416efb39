"""Spark's ``xxhash64`` of a row, computed with numpy, and what the jobs derive from it.

A batch job places each row in the validation split by ``pmod(xxhash64(<every column>,
seed), 1e6)`` (:func:`tasks.batch_frame.validation_sql`). When the job reads a local
dataset with pyarrow instead of Spark (:mod:`tasks.local_frame`), the same hash must come
out bit for bit, or labels trained on either path would be judged on different rows.
This module is Spark's algorithm (``XxHash64`` over fixed-width values: Spark hashes each
non-null column in turn, the running hash being the next column's seed) for the column
types whose bytes Spark hashes directly; other types (text, decimals, dates, nested) are
not handled and leave the job on its Spark path.

Pure (numpy only): tested against Spark's own ``xxhash64`` on real Spark.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)
_LOW32 = np.uint64(0xFFFFFFFF)

#: The seed Spark's ``xxhash64`` starts from.
SPARK_SEED = 42
#: Validation buckets: a row is in the validation split when its hash, taken modulo this
#: (always non-negative), falls below ``test_fraction`` of it.
HASH_BUCKETS = 1_000_000

#: How each pyarrow type is hashed by Spark once read: 4-byte values (hashInt) or 8-byte
#: values (hashLong). Unsigned Parquet integers become wider signed types in Spark, and
#: timestamps carry units, so they are left to Spark.
INT_KINDS = {"bool", "int8", "int16", "int32", "float"}
LONG_KINDS = {"int64", "double"}


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _fmix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * _P2
    h = h ^ (h >> np.uint64(29))
    h = h * _P3
    return h ^ (h >> np.uint64(32))


def _hash_int(value: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Spark's ``XXH64.hashInt``: ``value`` holds the int's 32 bits in a uint64."""
    h = seed + _P5 + np.uint64(4)
    h = h ^ ((value & _LOW32) * _P1)
    return _fmix(_rotl(h, 23) * _P2 + _P3)


def _hash_long(value: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Spark's ``XXH64.hashLong``: ``value`` holds the long's 64 bits in a uint64."""
    h = seed + _P5 + np.uint64(8)
    h = h ^ (_rotl(value * _P2, 31) * _P1)
    return _fmix(_rotl(h, 27) * _P1 + _P4)


def hash_kind(arrow_type: Any) -> str | None:  # noqa: ANN401 - a pyarrow DataType
    """The kind of :data:`INT_KINDS`/:data:`LONG_KINDS` a pyarrow type is hashed as, or
    ``None`` when this module cannot hash it the way Spark does."""
    import pyarrow as pa

    checks = (("bool", pa.types.is_boolean), ("int8", pa.types.is_int8), ("int16", pa.types.is_int16),
              ("int32", pa.types.is_int32), ("int64", pa.types.is_int64), ("float", pa.types.is_float32),
              ("double", pa.types.is_float64))
    for kind, check in checks:
        if check(arrow_type):
            return kind
    return None


def _bits(values: np.ndarray, kind: str) -> np.ndarray:
    """The bits Spark hashes for ``values`` (nulls already filled with anything)."""
    if kind == "bool":
        return values.astype(np.uint64)
    if kind in ("int8", "int16", "int32"):
        return values.astype(np.int32).view(np.uint32).astype(np.uint64)
    if kind == "int64":
        return values.astype(np.int64).view(np.uint64)
    if kind == "float":
        v = values.astype(np.float32)
        v = np.where(v == 0, np.float32(0), v)  # -0.0 hashes as 0.0
        v = np.where(np.isnan(v), np.float32(np.nan), v)  # Java's floatToIntBits: one NaN
        return v.view(np.uint32).astype(np.uint64)
    v = values.astype(np.float64)
    v = np.where(v == 0, 0.0, v)
    v = np.where(np.isnan(v), np.float64(np.nan), v)
    return v.view(np.uint64)


def spark_xxhash64(columns: list[tuple[np.ndarray, np.ndarray | None, str]], rows: int) -> np.ndarray:
    """Spark's ``xxhash64(c1, c2, …)`` per row, as int64 (Spark's SQL function takes no
    seed: it starts from 42 and every argument is a value to hash). Each column is
    ``(values, valid, kind)``: ``valid`` is a bool mask (``None``: no nulls); a null
    leaves the running hash as it was, as in Spark."""
    h = np.full(rows, np.int64(SPARK_SEED)).view(np.uint64)
    with np.errstate(over="ignore"):
        for values, valid, kind in columns:
            bits = _bits(values, kind)
            hashed = _hash_int(bits, h) if kind in INT_KINDS else _hash_long(bits, h)
            h = hashed if valid is None else np.where(valid, hashed, h)
    return h.view(np.int64)


def literal_column(value: int, rows: int) -> tuple[np.ndarray, None, str]:
    """An integer literal as Spark hashes it: an int when it fits in 32 bits, else a long."""
    kind = "int32" if -(2**31) <= value < 2**31 else "int64"
    return np.full(rows, value, dtype=np.int64), None, kind


def in_validation(row_hash: np.ndarray, fraction: float) -> np.ndarray:
    """Spark's ``pmod(hash, HASH_BUCKETS) < round(fraction * HASH_BUCKETS)``."""
    return np.mod(row_hash, HASH_BUCKETS) < int(round(fraction * HASH_BUCKETS))


def hash_order(row_hash: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows in the order of their hash, and each row's copy number among the rows of
    equal hash (exact copies of one row: 0, 1, 2, …). Both are the same whatever order
    the rows were read in, up to which of two identical rows is which."""
    order = np.argsort(row_hash, kind="stable")
    ordered = row_hash[order]
    n = len(order)
    first = np.ones(n, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    starts = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    copies = np.empty(n, dtype=np.int64)
    copies[order] = np.arange(n) - starts
    return order, copies


def label_draws(row_hash: np.ndarray, copies: np.ndarray, seed: int, label: str) -> np.ndarray:
    """A uniform draw in [0, 1) per row for one label's class balancing, from the row's
    hash and its copy number (:func:`hash_order`): the same rows are kept whatever order
    the rows were read in (part files are listed in no fixed order) and whichever batch
    the label is in, and exact copies of a row are drawn apart, as separate rows."""
    key = np.uint64(((int(seed) & 0xFFFFFFFF) << 32) | zlib.crc32(label.encode("utf-8")))
    with np.errstate(over="ignore"):
        z = (row_hash.view(np.uint64) ^ key) + copies.astype(np.uint64) * np.uint64(0xD1B54A32D192ED03)
        z = z + np.uint64(0x9E3779B97F4A7C15)  # splitmix64's finaliser: every input bit reaches every output bit
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
