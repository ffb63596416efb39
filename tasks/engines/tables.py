"""Parameter tables learnt from a model library, kept per library version.

Learning which parameters of LightGBM or XGBoost take whole numbers means asking the
library about each one (a helper process in the controller); the answer depends only on
the installed version, so it is kept in a JSON file under the user's cache folder and
read back by later runs. Best effort: a folder that cannot be written only costs the
lookup again.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any


def folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "spark-fanout" / "engine-tables"


def _path(key: str) -> Path:
    return folder() / (re.sub(r"[^A-Za-z0-9_.+-]", "_", key) + ".json")


def read(key: str) -> dict[str, Any] | None:
    """The table kept under ``key``, None when there is none (or it is unreadable)."""
    try:
        table = json.loads(_path(key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return table if isinstance(table, dict) else None


def write(key: str, table: dict[str, Any]) -> None:
    """Keep ``table`` under ``key``, atomically (a concurrent reader sees all or nothing)."""
    target = _path(key)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(table, fh, sort_keys=True)
        os.replace(tmp, target)
    except OSError:
        pass
