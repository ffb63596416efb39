"""Model artifacts as Luigi targets, and cheap bulk answers about an artifact root.

Layout: ``<models>/<engine>-<config hash>/<label slug>/``. A configuration is every
setting that changes a model (engine, resolved parameters, features, balancing, split,
seed, dataset); its folder holds ``config.json`` (written once) beside the labels, so
the same label trained with other settings is another artifact, and "which labels are
done for this configuration?" stays one listing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.data.labels import label_slug
from pipeline.data.outputs import MarkedFolder
from pipeline.storage import Storage, storage_for
from pipeline.storage.locations import Location
from tasks.layout import MARKER, METADATA, is_final_name, is_temp_of

logger = logging.getLogger("luigi-interface")


CONFIG_FILE = "config.json"
# 2: validation rows chosen by a seeded hash of every dataset column (was a per-job
# random draw), so a configuration of format 1 names other models.
CONFIG_FORMAT = 2


def training_config(*, engine: str, params: Mapping[str, Any], features: Sequence[str], balance_ratio: float,
                    test_fraction: float, seed: int, data: str) -> dict[str, Any]:
    """Every setting that changes a trained model, as plain JSON (``params`` resolved,
    so a default spelled out and a default left out are one configuration)."""
    return {
        "format": CONFIG_FORMAT,
        "engine": engine,
        "params": {k: params[k] for k in sorted(params)},
        "features": list(features),
        "balance_ratio": float(balance_ratio),
        "test_fraction": float(test_fraction),
        "seed": int(seed),
        "data": data,
    }


def config_id(config: Mapping[str, Any]) -> str:
    """``<engine>-<8 hex digits>``: readable, and different for any other setting."""
    canonical = json.dumps(config, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return f"{config['engine']}-{hashlib.sha256(canonical.encode('ascii')).hexdigest()[:8]}"


def read_json(root: Location, file_name: str) -> Any:
    """A JSON file under ``root`` (a configuration, an artifact, the models root), or
    ``None`` when it is absent or not JSON."""
    storage = storage_for(root)
    loc = root.join(file_name)
    try:
        return json.loads(storage.read_bytes(loc).decode("utf-8")) if storage.exists(loc) else None
    except ValueError:
        return None


def artifact_location(root: Location, label: str) -> Location:
    """Where the artifact of ``label`` lives under a configuration's folder ``root``."""
    return root.join(label_slug(label))


def ensure_config_file(config_root: Location, config: Mapping[str, Any], storage: Storage | None = None) -> None:
    """Write ``config.json`` into the configuration's folder unless it is there (its
    content is fixed by the folder's name, so concurrent writers write the same bytes)."""
    storage = storage or storage_for(config_root)
    target = config_root.join(CONFIG_FILE)
    if not storage.exists(target):
        storage.write_bytes(target, json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8"))


def configurations(models: Location, storage: Storage | None = None) -> list[str]:
    """Configuration folders under an artifact root (one listing), sorted."""
    entries = (storage or storage_for(models)).list_dir(models)
    return sorted(e.name for e in entries or [] if e.is_dir and is_final_name(e.name))


class ArtifactTarget(MarkedFolder):
    """One model artifact folder; it exists only once its completion marker does."""

    marker = MARKER

    def metadata(self) -> dict[str, Any]:
        """The artifact's ``metadata.json``."""
        return json.loads(self.storage.read_bytes(self.location.join(METADATA)).decode("utf-8"))


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


def remove_stale_temporaries(root: Location, slug: str | Sequence[str], storage: Storage | None = None) -> list[Location]:
    """Delete temporary folders a killed job of these labels (one slug, or a batch's)
    left behind, from one listing. Only names matching a label's temporary pattern are
    touched; finished artifacts never are."""
    storage = storage or storage_for(root)
    slugs = [slug] if isinstance(slug, str) else list(slug)
    entries = storage.list_dir(root) or []
    removed = []
    for entry in entries:
        if any(is_temp_of(entry.name, one) for one in slugs):
            stale = root.join(entry.name)
            storage.remove_tree(stale)
            logger.info("removed stale temporary artifact %s", stale)
            removed.append(stale)
    return removed
