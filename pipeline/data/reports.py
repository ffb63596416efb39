"""A search's report files under the models root (``leaderboard``, ``feature_sweep``):
``<name>.csv`` for people, ``<name>.json`` for the next run and for Predict.

The rows and their text come from :mod:`pipeline.data.leaderboard` (pure); this module
writes and reads the files.
"""

from __future__ import annotations

from typing import Any

from pipeline.data import leaderboard as board
from pipeline.data.artifacts import read_json
from pipeline.errors import ConfigError
from pipeline.storage import storage_for
from pipeline.storage.locations import Location


def write_report(root: Location, name: str, rows: list[dict[str, Any]], about: dict[str, Any],
                 csv_text: str | None = None) -> Location:
    """``<root>/<name>.csv`` then ``<name>.json`` (the JSON, written last, is what a rerun
    reads to know the report is current)."""
    storage = storage_for(root)
    target = root.join(f"{name}.json")
    if storage.exists(target) and not board.is_report(read_json(root, target.name)):
        raise ConfigError(f"{target} exists but was not written by spark-fanout: move it away, or choose another --models")
    storage.write_bytes(root.join(f"{name}.csv"), (board.to_csv(rows) if csv_text is None else csv_text).encode("utf-8"))
    storage.write_bytes(target, board.to_json(rows, about).encode("utf-8"))
    return target


def read_report(root: Location, name: str) -> dict[str, Any] | None:
    """A search's report (``<name>.json`` under ``root``), ``None`` if there is none yet."""
    return read_json(root, f"{name}.json")
