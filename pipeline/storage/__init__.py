"""Storage: where datasets and outputs live (local files, HDFS over WebHDFS).

``base`` defines the operations and local files, ``webhdfs`` speaks to HDFS, ``locations``
parses URIs; :func:`storage_for` picks the storage that serves a location.
"""

from __future__ import annotations

from pipeline.errors import StorageError
from pipeline.storage.base import ContentSummary, Entry, LocalStorage, Storage
from pipeline.storage.locations import Location
from pipeline.storage.webhdfs import webhdfs_storage

__all__ = ["ContentSummary", "Entry", "LocalStorage", "Storage", "storage_for"]


def storage_for(loc: Location) -> Storage:
    """The :class:`Storage` serving ``loc``'s scheme."""
    if loc.is_local:
        return LocalStorage()
    if loc.scheme in ("hdfs", "webhdfs"):
        return webhdfs_storage(loc)
    raise StorageError(f"no storage for scheme {loc.scheme!r} in {loc}: use a local path, hdfs:// or webhdfs://")
