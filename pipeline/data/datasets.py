"""What the controller needs to know about a dataset before any JVM: that it exists, its
columns and their types, and what the Parquet footers' statistics say about their values
(smallest, largest, nulls), all read from the part files' tails.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import fanout
from pipeline.errors import DatasetError, StorageError, one_line
from pipeline.storage import storage_for
from pipeline.storage.locations import Location, parse_location
from tasks.layout import spark_reads

#: A local dataset whose footers hold up to this many bytes in all has every footer parsed
#: (~8 MB/s here: a plan and every TrainModel's preflight read them); a bigger one, or a
#: remote one, the first and last part file's. Every local part file's end is checked.
LOCAL_FOOTER_BYTES = 1 << 20

#: Smallest Parquet file: the leading magic, a footer length and the trailing magic.
_MIN_PARQUET_BYTES = 12


@dataclass(frozen=True)
class ColumnFacts:
    """What the footers say about one column: its type and, where every row group read
    has statistics, its smallest and largest value and its null count."""

    type: str  # Arrow's name for it: int32, double, bool, string, timestamp[us], ...
    numeric: bool  # integer, floating point, decimal or boolean: Spark casts it to a double
    low: Any = None  # None: no statistics
    high: Any = None
    nulls: int | None = None


@dataclass(frozen=True)
class DatasetSchema:
    """Columns of a dataset and what the footers read (``checked`` of ``parts`` part files)
    say about them; ``rows`` counts the rows of those part files."""

    columns: tuple[str, ...]
    numeric: tuple[str, ...]
    facts: Mapping[str, ColumnFacts] = field(default_factory=dict, compare=False)
    rows: int | None = None
    checked: tuple[str, ...] = ()
    parts: int = 0

    @property
    def every_part_checked(self) -> bool:
        """Whether the facts cover the whole dataset (every part file's footer was read)."""
        return bool(self.checked) and len(self.checked) == self.parts


def _is_numeric(arrow_type: Any) -> bool:  # noqa: ANN401 - pyarrow.DataType
    import pyarrow.types as pat

    return bool(pat.is_integer(arrow_type) or pat.is_floating(arrow_type) or pat.is_boolean(arrow_type)
                or pat.is_decimal(arrow_type))


def _merge(low: Any, high: Any, value_low: Any, value_high: Any) -> tuple[Any, Any]:  # noqa: ANN401 - column values
    return (value_low if low is None or value_low < low else low), (value_high if high is None or value_high > high else high)


class _FooterFacts(Mapping[str, ColumnFacts]):
    """Column name -> :class:`ColumnFacts`, each computed when first asked for: a wide
    dataset has thousands of columns times row groups of statistics, and only the
    labels' are read."""

    def __init__(self, types: Mapping[str, Any], footers: Sequence[Any]) -> None:
        self._types, self._footers, self._done = dict(types), list(footers), {}

    def __getitem__(self, name: str) -> ColumnFacts:
        if name not in self._done:
            self._done[name] = _column_facts(name, self._types[name], self._footers)
        return self._done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)


def _column_facts(name: str, arrow_type: Any, footers: Sequence[Any]) -> ColumnFacts:  # noqa: ANN401 - pyarrow types
    low = high = None
    nulls, known = 0, True
    for meta in footers:
        index = meta.schema.names.index(name) if name in meta.schema.names else None
        for g in range(meta.num_row_groups if index is not None else 0):
            chunk = meta.row_group(g).column(index)
            st = chunk.statistics
            if chunk.path_in_schema != name or st is None or not st.has_null_count:
                known = False  # a nested column, or a writer that kept no statistics
                break
            nulls += st.null_count
            if st.has_min_max:
                low, high = _merge(low, high, st.min, st.max)
            elif st.null_count < chunk.num_values:  # values present but no min/max: unknown range
                known = False
    return ColumnFacts(type=str(arrow_type), numeric=_is_numeric(arrow_type), low=low if known else None,
                       high=high if known else None, nulls=nulls if known else None)


def schema_from_footers(footers: Sequence[tuple[str, Any]], parts: int) -> DatasetSchema:
    """The schema and column facts of ``footers`` (part file name, ``pyarrow.parquet.FileMetaData``),
    the first of which gives the column order. Pure: tested on footers written in memory."""
    first_name, first = footers[0]
    arrow = first.schema.to_arrow_schema()
    types = {f.name: f.type for f in arrow}
    for name, meta in footers[1:]:
        for f in meta.schema.to_arrow_schema():
            if f.name in types and f.type != types[f.name]:
                raise DatasetError(f"column {f.name!r} is {types[f.name]} in {first_name} but {f.type} in {name}: "
                                   "Spark cannot read them as one table; rewrite the dataset with one type per column")
    return DatasetSchema(columns=tuple(arrow.names), numeric=tuple(n for n in arrow.names if _is_numeric(types[n])),
                         facts=_FooterFacts(types, [meta for _, meta in footers]),
                         rows=sum(meta.num_rows for _, meta in footers), checked=tuple(n for n, _ in footers), parts=parts)


def read_schema(data: str) -> DatasetSchema:
    """Columns of a Parquet dataset (a folder of part files, or one local file) and what
    their footers say, read without Spark: one listing, then the footer (the file's
    tail) of every part file of a local dataset of up to :data:`LOCAL_FOOTERS` part files,
    else of the first and last part file (each costs requests on remote storage); the
    listing's sizes of every part file where it gives them. Not cached here: a plan or a
    task reads it once."""
    loc = parse_location(data)
    storage = storage_for(loc)
    hint = "create it (luigi --module pipeline MakeDemoData) or fix --data"
    if not storage.exists(loc):
        raise DatasetError(f"dataset {data} does not exist: {hint}")
    if loc.is_local and os.path.isfile(loc.path):
        return schema_from_footers([(loc.name, _footer(storage, loc))], parts=1)
    entries = storage.list_dir(loc) or []
    # Only the files Spark reads (not _SUCCESS, .crc files, half-copied ones): the job's rule too.
    files = [e for e in entries if not e.is_dir and spark_reads(e.name)]
    parts = sorted(e.name for e in files if e.name.endswith(".parquet"))
    if not parts:
        partitions = sorted(e.name for e in entries if e.is_dir and "=" in e.name)
        if partitions and not files:
            raise DatasetError(f"dataset {data} is partitioned ({partitions[0]}/, …): partitioned datasets are not read yet; "
                               f"point --data at one partition's folder, e.g. {loc.join(partitions[0])}")
        seen = f" (it holds {', '.join(sorted(e.name for e in files)[:3])}{', …' if len(files) > 3 else ''})" if files else ""
        raise DatasetError(f"dataset {data} holds no .parquet files{seen}: point --data at a Parquet dataset")
    short = sorted(e.name for e in files if e.name in parts and e.size is not None and e.size < _MIN_PARQUET_BYTES)
    if short:
        raise DatasetError(f"{loc.join(short[0])} is too short to be a Parquet file: a write cut short? rewrite the dataset")
    read = sorted({parts[0], parts[-1]})
    if loc.is_local:  # each end is 8 bytes away: a part cut short anywhere is named before any JVM
        footer_bytes = sum(_footer_length(storage, loc.join(name)) for name in parts)
        read = parts if footer_bytes <= LOCAL_FOOTER_BYTES else read
    return schema_from_footers([(name, _footer(storage, loc.join(name))) for name in read], parts=len(parts))


def _footer_length(storage: Any, part: Location) -> int:  # noqa: ANN401 - a Storage
    """The footer length a part file's last 8 bytes give; a file without Parquet's end refused."""
    end = storage.read_tail(part, 8)
    if len(end) < 8 or end[-4:] != b"PAR1":
        raise DatasetError(f"{part} is not a Parquet file, or it was cut short (no PAR1 magic at its end): "
                           "point --data at a Parquet dataset, or rewrite it")
    return struct.unpack("<I", end[:4])[0]


def _footer(storage: Any, part: Location) -> Any:  # noqa: ANN401 - Storage in, pyarrow.parquet.FileMetaData out
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(io.BytesIO(parquet_footer(lambda n: storage.read_tail(part, n), str(part))))
    except (DatasetError, StorageError):
        raise  # a storage failure says what to do about the storage, not about the data
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and friends on a damaged footer
        raise DatasetError(f"{part} is not a readable Parquet file ({one_line(exc, 200)}): rewrite the dataset") from None


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
        raise DatasetError(f"{name} is not a Parquet file, or it was cut short (no PAR1 magic at its end): "
                           "point --data at a Parquet dataset, or rewrite it")
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
