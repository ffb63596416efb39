"""Model artifacts as Luigi targets, and cheap bulk answers about an artifact root.

Layout: ``<models>/<engine folder>-<config hash>/<label slug>/`` (the engine's name, or
for a ``sklearn:`` engine ``sklearn-<Class>``). A configuration is every
setting that changes a model (engine, resolved parameters, features, balancing, split,
seed, dataset); its folder holds ``config.json`` (written once) beside the labels, so
the same label trained with other settings is another artifact, and "which labels are
done for this configuration?" stays one listing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.data.labels import label_slug
from pipeline.data.outputs import MarkedFolder
from pipeline.errors import ConfigError
from pipeline.storage import Entry, Storage, storage_for
from pipeline.storage.locations import Location
from tasks.engines import EngineParamError, get_engine
from tasks.layout import MARKER, METADATA, is_final_name, is_temp_of, temp_pid
from tasks.ownership import (
    DEFAULT_LEASE_SECONDS,
    OWNER_FILE,
    TOOL,
    describe_owner,
    owner_gone,
    parse_record,
    process_alive,
    this_host,
)

logger = logging.getLogger("luigi-interface")


CONFIG_FILE = "config.json"
# 2: validation rows chosen by a seeded hash of every dataset column (was a per-job
# random draw), so a configuration of format 1 names other models.
CONFIG_FORMAT = 2


def training_config(*, engine: str, params: Mapping[str, Any], features: Sequence[str], balance_ratio: float,
                    test_fraction: float, seed: int, data: str,
                    data_fingerprint: Mapping[str, Any] | None = None, class_weight: str = "none",
                    stopping_fraction: float | None = None) -> dict[str, Any]:
    """Every setting that changes a trained model, as plain JSON (``params`` resolved,
    so a default spelled out and a default left out are one configuration). The data is
    its path plus, unless ``[fanout] data_identity = path``, its fingerprint: data
    rebuilt in place is another configuration (without one, the id is the one that
    path-only identity always gave). Class weights and the early-stopping share are
    written only when they act (balanced weights; an engine that stops early), so the
    configurations of every earlier run keep their ids."""
    config = {
        "format": CONFIG_FORMAT,
        "engine": engine,
        "params": {k: params[k] for k in sorted(params)},
        "features": list(features),
        "balance_ratio": float(balance_ratio),
        "test_fraction": float(test_fraction),
        "seed": int(seed),
        "data": data,
    }
    if data_fingerprint is not None:
        config["data_fingerprint"] = dict(data_fingerprint)
    if class_weight != "none":
        config["class_weight"] = class_weight
    if stopping_fraction is not None:
        config["stopping_fraction"] = float(stopping_fraction)
    return config


def config_id(config: Mapping[str, Any]) -> str:
    """``<engine folder>-<8 hex digits>``: readable, and different for any other setting."""
    canonical = json.dumps(config, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    try:
        folder = get_engine(config["engine"]).folder
    except EngineParamError as exc:
        raise ConfigError(str(exc)) from None
    return f"{folder}-{hashlib.sha256(canonical.encode('ascii')).hexdigest()[:8]}"


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
    content is fixed by the folder's name, so concurrent writers write the same bytes);
    a folder that holds other things but no ``config.json`` is refused."""
    storage = storage or storage_for(config_root)
    target = config_root.join(CONFIG_FILE)
    if storage.exists(target):
        return
    refusal = foreign_configuration(config_root, storage.list_dir(config_root))
    if refusal is not None:  # never claim a folder of someone else's as a configuration
        raise refusal
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
    renames are atomic on local file systems and HDFS. That holds in a configuration
    folder spark-fanout made (see :func:`foreign_configuration`).
    """
    return slugs_in((storage or storage_for(root)).list_dir(root))


def slugs_in(entries: Sequence[Entry] | None) -> set[str]:
    """The complete artifacts of a configuration folder's listing."""
    return {e.name for e in entries or [] if e.is_dir and is_final_name(e.name)}


def foreign_configuration(root: Location, entries: Sequence[Entry] | None) -> ConfigError | None:
    """The refusal for a configuration folder (listed as ``entries``) that holds files
    but no ``config.json``: spark-fanout did not make it, so nothing in it is ours to
    count as done or to clean up."""
    if not entries or any(e.name == CONFIG_FILE for e in entries):
        return None
    return ConfigError(f"{root} exists but was not made by spark-fanout (it has no {CONFIG_FILE}): "
                       f"choose another --models, or move that folder away yourself")


def temporary_is_stale(storage: Storage, temp: Location, record_file: Location, lease_seconds: float) -> bool:
    """Whether the writer of temporary ``temp`` (its owner record in ``record_file``) is
    gone: see :func:`tasks.ownership.owner_gone`. Costs one read, plus one status when
    there is no record. A local temporary without one (its writer was killed between
    creating the folder and writing the record) was made on this machine: the process
    id in its name decides."""
    record = parse_record(storage.read_bytes(record_file)) if storage.exists(record_file) else None
    if record is None and temp.is_local and temp_pid(temp.name) is not None:
        record = {"tool": TOOL, "host": this_host(), "pid": temp_pid(temp.name)}
    fallback = storage.modified(temp) if record is None else None
    gone = owner_gone(record, now=time.time(), lease_seconds=lease_seconds, here=this_host(), alive=process_alive,
                      fallback_time=fallback)
    if not gone:
        logger.info("left temporary %s alone: %s is still writing it", temp, describe_owner(record))
    return gone


def remove_stale_temporaries(root: Location, slug: str | Sequence[str], storage: Storage | None = None,
                             lease_seconds: float = DEFAULT_LEASE_SECONDS) -> list[Location]:
    """Delete temporary folders of these labels (one slug, or a batch's) whose writer is
    gone (a killed job), from one listing plus one read per temporary found. Only names
    matching a label's temporary pattern are touched, and only when their owner record
    says the writer is gone: a live job of another controller keeps its work."""
    storage = storage or storage_for(root)
    slugs = [slug] if isinstance(slug, str) else list(slug)
    entries = storage.list_dir(root) or []
    removed = []
    for entry in entries:
        if any(is_temp_of(entry.name, one) for one in slugs):
            temp = root.join(entry.name)
            if not temporary_is_stale(storage, temp, temp.join(OWNER_FILE), lease_seconds):
                continue
            storage.remove_tree(temp)
            logger.info("removed stale temporary artifact %s", temp)
            removed.append(temp)
    return removed
