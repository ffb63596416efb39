"""Label names: discovery from a schema, validation, and safe names derived from them.

Labels are user data and may hold any character (spaces, slashes, quotes, unicode,
``$(…)``). They never reach a shell or a path verbatim: paths, Spark application names
and YARN tags use :func:`label_slug`, which is readable and safe everywhere; two labels
of one run whose slugs collide are refused (:func:`refuse_shared_slugs`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

from pipeline.errors import ConfigError, DatasetError

DEFAULT_LABEL_PREFIX = "label_"
_SLUG_KEEP = re.compile(r"[^a-z0-9]+")


def label_slug(label: str) -> str:
    """A file-, URI-, Spark- and YARN-safe name for ``label``: a readable ASCII part (at
    most 40 characters) plus 8 hex digits of the SHA-256 of the whole label
    (``"churn 30d/EU"`` → ``"churn-30d-eu-a90bce5c"``; README shows the same example).
    Labels that read alike get different slugs unless those 8 digits collide (one chance
    in 2**32 per such pair), which :func:`refuse_shared_slugs` refuses."""
    ascii_part = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii").lower()
    readable = _SLUG_KEEP.sub("-", ascii_part).strip("-")[:40].strip("-") or "label"
    digest = hashlib.sha256(label.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting names in human order: ``label_2`` before ``label_10``
    (digit runs compare as numbers, the rest case-insensitively)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.casefold())
                 for part in _DIGITS.split(name) if part)


def discover_labels(columns: Iterable[str], prefix: str = DEFAULT_LABEL_PREFIX) -> list[str]:
    """The documented default rule: every column whose name starts with ``prefix``,
    in dataset order."""
    return [c for c in columns if c.startswith(prefix)]


def validate_labels(labels: Sequence[str]) -> list[str]:
    """Check a user-given label list: non-empty, strings, no blanks, no duplicates."""
    if isinstance(labels, str):
        raise ConfigError(f"labels must be a JSON list, got the string {labels!r}: pass --labels '[\"a\", \"b\"]'")
    labels = list(labels)
    if not labels:
        raise ConfigError("the label list is empty: pass --labels '[\"a\", \"b\"]' or leave it out to train every label column")
    seen: set[str] = set()
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"label {label!r} is not a non-empty string: fix the --labels list")
        if label in seen:
            raise ConfigError(f"label {label!r} appears twice in --labels: list each label once")
        seen.add(label)
    return labels


def resolve_labels(requested: Sequence[str] | None, columns: Sequence[str], prefix: str, data: str) -> list[str]:
    """Labels to train: the requested list if given (``None`` = not given), validated,
    else the default rule."""
    if requested is not None:
        return refuse_shared_slugs(validate_labels(requested))
    found = discover_labels(columns, prefix)
    if not found:
        raise DatasetError(
            f"no label columns in {data}: none starts with {prefix!r}; pass --labels or set [TrainAll] label-prefix"
        )
    return refuse_shared_slugs(found)


def refuse_shared_slugs(labels: list[str]) -> list[str]:
    """``labels`` unchanged, unless two of them share a slug (and so would share an
    artifact folder and a log folder): then one line naming both."""
    seen: dict[str, str] = {}
    for label in labels:
        other = seen.setdefault(label_slug(label), label)
        if other != label:
            raise ConfigError(f"labels {other!r} and {label!r} share the folder name {label_slug(label)!r} (their "
                              f"hashes collide): rename one of the columns, or leave one out of --labels")
    return labels


def feature_columns(numeric_columns: Sequence[str], labels: Sequence[str], prefix: str) -> list[str]:
    """The documented default feature rule: every numeric column that is neither a
    requested label nor named like a label (``prefix``)."""
    skip = set(labels)
    return [c for c in numeric_columns if c not in skip and not c.startswith(prefix)]
