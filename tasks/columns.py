"""Dataset column names inside Spark expressions (shared by the training and scoring jobs)."""

from __future__ import annotations


def quoted(name: str) -> str:
    """``name`` as a Spark column reference meaning exactly that column, whatever it holds
    (a dot would otherwise reach into a nested field): in backticks, inner ones doubled."""
    return "`" + name.replace("`", "``") + "`"
