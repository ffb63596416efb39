"""Model artifacts as Luigi targets, and cheap bulk answers about an artifact root."""

from __future__ import annotations

import json
import logging
from typing import Any

import luigi

from pipeline.data.labels import label_slug
from pipeline.storage import Storage, storage_for
from pipeline.storage.locations import Location
from tasks.layout import MARKER, METADATA, is_final_name, is_temp_of

logger = logging.getLogger("luigi-interface")


def artifact_location(root: Location, label: str) -> Location:
    """Where the artifact of ``label`` lives under ``root``."""
    return root.join(label_slug(label))


class ArtifactTarget(luigi.Target):
    """One model artifact folder; it exists only once its completion marker does."""

    def __init__(self, location: Location, storage: Storage | None = None) -> None:
        self.location = location
        self._storage = storage

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            self._storage = storage_for(self.location)
        return self._storage

    @property
    def path(self) -> str:
        return str(self.location)

    def exists(self) -> bool:
        return self.storage.exists(self.location.join(MARKER))

    def metadata(self) -> dict[str, Any]:
        """The artifact's ``metadata.json``."""
        return json.loads(self.storage.read_bytes(self.location.join(METADATA)).decode("utf-8"))

    def __repr__(self) -> str:
        return f"ArtifactTarget({self.path!r})"


def completed_slugs(root: Location, storage: Storage | None = None) -> set[str]:
    """Slugs with a complete artifact under ``root``, from ONE listing of the root.

    A folder under its final name is complete by construction: jobs write into a
    temporary sibling and rename it into place only after the marker is written, and
    renames are atomic on local file systems and HDFS.
    """
    entries = (storage or storage_for(root)).list_dir(root)
    if entries is None:
        return set()
    return {e.name for e in entries if e.is_dir and is_final_name(e.name)}


def remove_stale_temporaries(root: Location, slug: str, storage: Storage | None = None) -> list[Location]:
    """Delete temporary folders a killed job of this label left behind. Only names
    matching this label's temporary pattern are touched; finished artifacts never are."""
    storage = storage or storage_for(root)
    entries = storage.list_dir(root) or []
    removed = []
    for entry in entries:
        if is_temp_of(entry.name, slug):
            stale = root.join(entry.name)
            storage.remove_tree(stale)
            logger.info("removed stale temporary artifact %s", stale)
            removed.append(stale)
    return removed
