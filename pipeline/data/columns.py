"""What training needs of a dataset's columns, judged from the footers before any JVM.

Features must be numeric or boolean (Spark casts them to doubles: a text column would
become all null). A label must hold 0/1 (any integer, floating point or decimal type)
or booleans. The statistics in the footers (smallest, largest value, nulls) refuse a
label of text, one out of 0..1, and, when every part file's footer was read, an empty
or one-class label. What the footers cannot tell (a 0.5 among 0s and 1s, one class in a
remote dataset) the job checks on the rows themselves. Pure functions of a schema.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from pipeline.data.datasets import DatasetSchema
from pipeline.errors import DatasetError


def _did_you_mean(name: str, columns: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_training_data(schema: DatasetSchema, features: Sequence[str], data: str) -> None:
    """Refuse a dataset with no rows (when every footer was read) or no usable features."""
    if schema.every_part_checked and schema.rows == 0:
        raise DatasetError(f"dataset {data} has no rows ({schema.parts} part file{'s' if schema.parts > 1 else ''}, all empty): "
                           "point --data at the data to train on")
    if not features:
        raise DatasetError(f"{data} has no numeric feature columns besides the labels: pass --features")
    check_features(schema, features, data)


def check_features(schema: DatasetSchema, features: Sequence[str], data: str) -> None:
    """Refuse a feature that is not a column of ``data``, or not numeric or boolean."""
    for name in features:
        if name not in schema.columns:
            raise DatasetError(f"feature {name!r} is not a column of {data}{_did_you_mean(name, schema.columns)}: fix --features")
        facts = schema.facts.get(name)
        if facts is not None and not facts.numeric:
            raise DatasetError(f"feature {name!r} of {data} is a {facts.type} column, not numeric: leave it out of --features, "
                               "or encode it as numbers first")


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value + 0.0:g}"  # + 0.0: Parquet statistics may hold -0.0
    return repr(value) if isinstance(value, str) else str(value)


def _range(low: object, high: object) -> str:
    return _shown(low) if low == high else f"{_shown(low)} … {_shown(high)}"


def check_label(schema: DatasetSchema, label: str, data: str, prefix: str) -> None:
    """Refuse a label that is not a column of ``data`` or cannot be a 0/1 target."""
    if label not in schema.columns:
        near = [c for c in schema.columns if c.startswith(prefix)][:5]
        raise DatasetError(
            f"label {label!r} is not a column of {data}{_did_you_mean(label, schema.columns)}: check --labels"
            + (f" (label columns there: {', '.join(near)})" if near else "")
        )
    facts = schema.facts.get(label)
    if facts is None:
        return
    known = facts.low is not None and facts.high is not None
    if not facts.numeric:
        if facts.type in ("string", "large_string"):
            seen = f"values {_range(facts.low, facts.high)}" if known else "text values"
            example = f" (e.g. 1 where it is {facts.high!r}, else 0)" if known else ""
            raise DatasetError(f"label {label!r} holds text ({seen}), not 0/1: convert it to 0/1 or true/false first{example}")
        raise DatasetError(f"label {label!r} is a {facts.type} column: a label must hold 0/1 (a number type) or true/false")
    if facts.type != "bool" and known and (facts.low < 0 or facts.high > 1):
        raise DatasetError(f"label {label!r} holds values {_range(facts.low, facts.high)}, not only 0 and 1: "
                           "map it to 0/1 first (a binary classifier is trained per label)")
    rows = schema.rows
    if not schema.every_part_checked or not rows or facts.nulls is None:
        return
    if facts.nulls == rows:
        raise DatasetError(f"label {label!r} is empty: all {rows} rows are null; drop it from --labels")
    if known and facts.low == facts.high:
        only = int(facts.low)
        raise DatasetError(f"label {label!r} has only class {only} ({rows - facts.nulls} rows, {facts.nulls} null): "
                           "nothing to learn; drop it from --labels")
