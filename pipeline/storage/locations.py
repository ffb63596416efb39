"""Parse and join storage locations given as local paths or URIs.

Pure functions only: nothing here touches a file system.
"""

from __future__ import annotations

import bisect
import itertools
import os
import posixpath
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipeline.errors import ConfigError

LOCAL_SCHEMES = ("", "file")
HDFS_SCHEMES = ("hdfs", "webhdfs")
SUPPORTED_SCHEMES = LOCAL_SCHEMES + HDFS_SCHEMES

# Characters Hadoop's Path cannot hold in a path segment, or that a URI would
# reinterpret; a location holding them is refused up front with a clear message.
_FORBIDDEN_IN_PATH = (":", "\\", "\n", "\r", "\x00", "?", "#")


@dataclass(frozen=True)
class Location:
    """A place in storage: ``scheme`` ("file", "hdfs", "webhdfs"), ``authority``
    (``host:port`` or empty for the default file system) and an absolute POSIX ``path``."""

    scheme: str
    authority: str
    path: str

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def uri(self) -> str:
        """The location as a URI that Hadoop's FileSystem API and Spark accept."""
        return f"{self.scheme}://{self.authority}{self.path}"

    def join(self, *names: str) -> Location:
        """A child location; each name must be a single path segment."""
        path = self.path
        for name in names:
            if not name or "/" in name or name in (".", ".."):
                raise ConfigError(f"invalid path segment {name!r}: expected a single file or folder name")
            path = posixpath.join(path, name)
        return Location(self.scheme, self.authority, path)

    def parent(self) -> Location:
        return Location(self.scheme, self.authority, posixpath.dirname(self.path.rstrip("/")) or "/")

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/"))

    def overlaps(self, other: Location) -> bool:
        """Whether one of the two is the other or lies inside it (same file system).
        ``hdfs://`` and ``webhdfs://`` of one NameNode name it on different ports, so
        only scheme and authority alike count as one file system."""
        if (self.scheme, self.authority) != (other.scheme, other.authority):
            return False
        a, b = self.path.rstrip("/") + "/", other.path.rstrip("/") + "/"
        return a.startswith(b) or b.startswith(a)

    def __str__(self) -> str:
        return self.path if self.is_local else self.uri()


def first_overlap(named: list[tuple[str, Location]]) -> tuple[str, str] | None:
    """The first two names whose locations overlap (one inside the other, or the same),
    e.g. ``[("--data", d), ("--out", o)]``; ``None`` when all are apart. Sorted by path,
    a location that holds others is directly followed by one of them, so comparing
    neighbours finds every case (10,000 outputs are one sort, not 50 million pairs)."""
    ordered = sorted(named, key=lambda item: _key(item[1]))
    for (name_a, loc_a), (name_b, loc_b) in itertools.pairwise(ordered):
        if loc_a.overlaps(loc_b):
            return name_a, name_b
    return None


def _key(loc: Location) -> tuple[str, str, str]:
    return loc.scheme, loc.authority, loc.path.rstrip("/") + "/"


def first_overlap_across(first: list[tuple[str, Location]], second: list[tuple[str, Location]]) -> tuple[str, str] | None:
    """The first pair, one of ``first`` and one of ``second``, whose locations overlap;
    overlaps inside either list do not count. A sort and, per entry of ``second``, one
    binary search plus a look at each of its parent folders."""
    keyed = sorted((_key(loc), name) for name, loc in first)
    keys = [k for k, _ in keyed]
    by_key = dict(keyed)
    for name_b, loc_b in second:
        kb = _key(loc_b)
        i = bisect.bisect_left(keys, kb)
        if i < len(keys) and keys[i][:2] == kb[:2] and keys[i][2].startswith(kb[2]):
            return keyed[i][1], name_b  # an entry of ``first`` is it or lies inside it
        path = kb[2]
        while path != "/":
            path = path[: path.rstrip("/").rfind("/") + 1]
            if (kb[0], kb[1], path) in by_key:
                return by_key[(kb[0], kb[1], path)], name_b  # it lies inside an entry of ``first``
    return None


def parse_location(value: str, *, base_dir: str | None = None) -> Location:
    """Turn a user-given path or URI into a :class:`Location`.

    Relative local paths are made absolute against ``base_dir`` (default: the current
    directory), because a Spark job may run with another working directory.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("empty path: give a local path, file://, hdfs:// or webhdfs:// URI")
    if value != value.strip():
        raise ConfigError(f"path {value!r} starts or ends with whitespace: remove it")
    parts = urlsplit(value) if "://" in value else None
    if parts is None:
        scheme, authority, path = "file", "", value
        if not os.path.isabs(path):
            path = os.path.join(base_dir or os.getcwd(), path)
        path = os.path.normpath(path)
    else:
        scheme = parts.scheme.lower()
        if scheme not in SUPPORTED_SCHEMES:
            raise ConfigError(
                f"unsupported scheme {parts.scheme!r} in {value!r}: use a local path, file://, hdfs:// or webhdfs://"
            )
        if parts.query or parts.fragment:
            raise ConfigError(f"path {value!r} has '?' or '#': remove them, they are not part of a storage path")
        authority = parts.netloc
        path = parts.path or "/"
        if scheme == "file" and authority not in ("", "localhost"):
            raise ConfigError(f"file URI {value!r} names host {authority!r}: use file:///absolute/path")
        if scheme == "file":
            authority = ""
        if not path.startswith("/"):
            raise ConfigError(f"path in {value!r} must be absolute")
        path = posixpath.normpath(path)
    bad = [c for c in _FORBIDDEN_IN_PATH if c in path]
    if bad:
        raise ConfigError(f"path {value!r} holds {bad[0]!r}, which Hadoop paths cannot hold: choose a path without it")
    return Location(scheme, authority, path)
