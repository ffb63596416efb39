"""What the controller needs to know about a dataset: that it exists and its columns.

A storage failure (HDFS unreachable, an answer cut short) stays a
:class:`~pipeline.errors.StorageError`: only bytes that arrived whole and are not
Parquet make a :class:`~pipeline.errors.DatasetError`, so a network hiccup never
reads as a broken dataset.
"""

from __future__ import annotations

import io
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.config import fanout
from pipeline.errors import DatasetError, StorageError
from pipeline.storage import storage_for
from pipeline.storage.locations import parse_location


@dataclass(frozen=True)
class DatasetSchema:
    columns: tuple[str, ...]
    numeric: tuple[str, ...]


def _schema_from_arrow(schema) -> DatasetSchema:  # noqa: ANN001 - pyarrow.Schema
    import pyarrow.types as pat

    names = tuple(schema.names)
    numeric = tuple(f.name for f in schema if pat.is_integer(f.type) or pat.is_floating(f.type) or pat.is_boolean(f.type) or pat.is_decimal(f.type))
    return DatasetSchema(names, numeric)


def read_schema(data: str) -> DatasetSchema:
    """Columns of a Parquet dataset (a folder of part files or one file), read from the
    first part file's footer. Not cached here: a plan or a task reads it once."""
    import pyarrow.parquet as pq

    loc = parse_location(data)
    storage = storage_for(loc)
    hint = "create it (luigi --module pipeline MakeDemoData) or fix --data"
    if not storage.exists(loc):
        raise DatasetError(f"dataset {data} does not exist: {hint}")
    if loc.is_local and os.path.isfile(loc.path):
        return _schema_from_arrow(pq.read_schema(loc.path))
    entries = storage.list_dir(loc) or []
    parts = sorted(e.name for e in entries if not e.is_dir and e.name.endswith(".parquet"))
    if not parts:
        raise DatasetError(f"dataset {data} holds no .parquet files: point --data at a Parquet dataset")
    part = loc.join(parts[0])
    try:
        if loc.is_local:
            schema = pq.read_schema(part.path)
        else:
            schema = pq.read_schema(io.BytesIO(parquet_footer(lambda n: storage.read_tail(part, n), str(part))))
    except (DatasetError, StorageError):
        raise  # a storage failure says what to do about the storage, not about the data
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends
        raise DatasetError(f"cannot read Parquet schema of {part}: {exc}") from None
    return _schema_from_arrow(schema)


def dataset_fingerprint(data: str) -> dict[str, Any]:
    """What the dataset holds now, in a constant number of storage requests (HDFS: its
    status and content summary; local files: one walk): total bytes, files, folders and
    a modification time. Rebuilding, overwriting or appending to it changes the answer;
    rewriting one file with the same size and modification time does not."""
    loc = parse_location(data)
    summary = storage_for(loc).content_summary(loc)
    if summary is None:
        raise DatasetError(f"dataset {data} does not exist: create it (luigi --module pipeline MakeDemoData) or fix --data")
    return {"bytes": summary.length, "files": summary.files, "folders": summary.folders,
            "modified": round(summary.modified, 3)}


_IDENTITIES: dict[tuple[str, str], dict[str, Any] | None] = {}
_IDENTITIES_LOCK = threading.Lock()


def data_identity(data: str, run_id: str) -> dict[str, Any] | None:
    """The dataset's fingerprint as this run sees it (taken once per run and dataset, so
    every configuration and job of one run names the same data), or ``None`` when
    ``[fanout] data_identity = path``."""
    if fanout().data_identity == "path":
        return None
    key = (parse_location(data).uri(), run_id)
    with _IDENTITIES_LOCK:
        if key not in _IDENTITIES:
            _IDENTITIES[key] = dataset_fingerprint(data)
        return _IDENTITIES[key]


def forget_identities() -> None:
    """Drop fingerprints taken earlier in this process (tests that rebuild data in place)."""
    with _IDENTITIES_LOCK:
        _IDENTITIES.clear()


FOOTER_GUESS = 64 * 1024  # most footers fit; a bigger one costs one more read


def parquet_footer(read_tail: Callable[[int], bytes], name: str) -> bytes:
    """The smallest byte string pyarrow reads a schema from: the leading magic, then the
    file's footer (metadata, its length, the trailing magic). A remote dataset's part
    file may be gigabytes; only its tail is read.

    ``read_tail(n)`` is :meth:`~pipeline.storage.Storage.read_tail`: the file's last ``n``
    bytes, all of them when the file is shorter, or a StorageError. So the bytes judged
    here are complete; more bytes than asked for means an answer mixed up on its way.
    """
    tail = _tail(read_tail, FOOTER_GUESS, name)
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise DatasetError(f"{name} is not a Parquet file (no PAR1 magic at its end): point --data at a Parquet dataset")
    size = struct.unpack("<I", tail[-8:-4])[0] + 8
    if size > len(tail):
        if len(tail) < FOOTER_GUESS:  # the whole file is already here and is shorter than its footer
            raise DatasetError(
                f"{name} is damaged: its footer claims {size} bytes but the file has {len(tail)}; rewrite the dataset"
            )
        tail = _tail(read_tail, size, name)
        if len(tail) < size:
            raise DatasetError(
                f"{name} is damaged: its footer claims {size} bytes but the file has {len(tail)}; rewrite the dataset"
            )
    return b"PAR1" + tail[-size:]


def _tail(read_tail: Callable[[int], bytes], nbytes: int, name: str) -> bytes:
    data = read_tail(nbytes)
    if len(data) > nbytes:
        raise StorageError(
            f"reading the last {nbytes} bytes of {name} returned {len(data)}: the storage mixed up answers; retry, "
            f"and report it if it happens again"
        )
    return data
