"""Luigi parameters that read the way people type them: lists as ``a,b`` or as JSON.

``--labels label_00,label_01`` and ``--labels '["label_00", "label_01"]'`` mean the same;
a value that starts with ``[`` is JSON (the way to write a name holding a comma), anything
else is split at commas. What cannot be read is refused in one line (a ConfigError) that
says how to write it. ``luigi.cfg`` values go through the same parser.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import luigi

from pipeline.errors import ConfigError


def parse_list(text: str, what: str = "value", item: Callable[[str], Any] = str) -> list[Any]:
    """``a,b`` or a JSON list as a list; ``item`` converts each comma-separated entry
    (JSON entries must already have its type)."""
    stripped = text.strip()
    hint = f"write {what} as a,b or as a JSON list like '[\"a\", \"b\"]'" if item is str else \
        f"write {what} as 5,10 or as a JSON list like '[5, 10]'"
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise ConfigError(f"{what} {text!r} is not a valid JSON list ({exc.msg} at character {exc.pos}): {hint}") from None
        if not isinstance(value, list):
            raise ConfigError(f"{what} {text!r} is not a list: {hint}")
        wrong = [v for v in value if isinstance(v, bool) or not isinstance(v, item)]
        if wrong:
            raise ConfigError(f"{what} {text!r} holds {wrong[0]!r}, not a {item.__name__}: {hint}")
        return value
    if stripped.startswith(("{", '"')):
        raise ConfigError(f"{what} {text!r} is JSON but not a list: {hint}")
    parts = [p.strip() for p in stripped.split(",")]
    if not stripped or any(p == "" for p in parts):
        raise ConfigError(f"{what} {text!r} has an empty entry (a stray or doubled comma?): {hint}")
    out = []
    for p in parts:
        try:
            out.append(item(p))
        except ValueError:
            raise ConfigError(f"{what} {text!r}: {p!r} is not a {item.__name__}: {hint}") from None
    return out


class _CommaListMixin:
    """Parses ``a,b`` or JSON; what the entries must be comes from ``item``."""

    def __init__(self, *args: Any, item: Callable[[str], Any] = str, **kwargs: Any) -> None:
        self._item = item
        super().__init__(*args, **kwargs)

    def _what(self) -> str:
        name = getattr(self, "_attribute_name", None)
        return f"--{name.replace('_', '-')}" if name else "the list"

    def parse(self, x: Any) -> Any:  # noqa: ANN401 - Luigi's signature
        if not isinstance(x, str):
            return x
        return tuple(parse_list(x, self._what(), self._item))


class ListParameter(_CommaListMixin, luigi.ListParameter):
    """A list given as ``a,b`` or as JSON."""


class OptionalListParameter(_CommaListMixin, luigi.OptionalListParameter):
    """An optional list given as ``a,b`` or as JSON; empty means none."""

    def parse(self, x: Any) -> Any:  # noqa: ANN401 - Luigi's signature
        if isinstance(x, str) and not x.strip():
            return None
        return super().parse(x)
