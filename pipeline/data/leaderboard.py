"""The leaderboard of a search: one row per (trial, label), ranked per label.

Pure: rows in, ranked rows and their CSV/JSON text out; ``TuneAll`` reads the artifacts'
metadata and writes the files.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tasks.evaluation import HIGHER_IS_BETTER, METRIC_COLUMNS
from tasks.ownership import TOOL

LEADERBOARD = "leaderboard"
COLUMNS = ("label", "rank", "trial", "study", "engine", "params", *METRIC_COLUMNS, "duration", "config", "artifact")


def rank(rows: Iterable[Mapping[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Rows sorted by label, then best ``metric`` first, each with its ``rank`` (1 = best)
    within its label. Rows without the metric come last, unranked ties keep trial order."""
    higher = HIGHER_IS_BETTER[metric]
    by_label: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(dict(row))
    out = []
    for label in sorted(by_label):
        def order(r: dict[str, Any]) -> tuple[int, float]:
            value = (r.get("metrics") or {}).get(metric)
            if value is None:
                return (1, 0.0)
            return (0, -value if higher else value)

        for i, row in enumerate(sorted(by_label[label], key=order), start=1):
            row["rank"] = i
            out.append(row)
    return out


def best_per_label(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rank-1 row of each label."""
    return {r["label"]: dict(r) for r in rows if r.get("rank") == 1}


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Flat CSV: params as JSON, one column per metric."""
    return csv_text(({**row, "params": json.dumps(row.get("params", {}), sort_keys=True),
                      **{m: (row.get("metrics") or {}).get(m) for m in METRIC_COLUMNS}} for row in rows), COLUMNS)


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV of flat ``rows`` with ``columns`` in this order (other keys left out, missing
    or ``None`` cells empty)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_json(rows: Iterable[Mapping[str, Any]], about: Mapping[str, Any]) -> str:
    """``{"tool": "spark-fanout", "search": about, "rows": [...]}``: what ran and how it did."""
    return json.dumps({"tool": TOOL, "search": dict(about), "rows": list(rows)}, indent=1, sort_keys=True,
                      ensure_ascii=False)


def is_report(doc: Any) -> bool:
    """Whether a parsed JSON document is a report spark-fanout wrote (reports written
    before the ``tool`` key existed are known by their two keys)."""
    return isinstance(doc, dict) and (doc.get("tool") == TOOL or {"search", "rows"} <= set(doc))
