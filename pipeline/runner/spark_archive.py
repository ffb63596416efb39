"""Spark's jars and the ``tasks`` zip on HDFS once, shared by every YARN job.

Without ``spark.yarn.archive``/``spark.yarn.jars``, each spark-submit zips the ~320 MB of
``SPARK_HOME/jars`` and uploads it to the job's staging folder: measured ~7.6 CPU-s and a
~300 MB JVM per job on the edge node, and 320 MB written to HDFS per job. Here the
controller publishes one archive per Spark version and content, and one ``tasks`` zip
per content, under ``[yarn] archive_dir``, and every job names them.

Publishing is safe under concurrent first runs: each uploader writes a name of its own,
then renames it to the content-keyed name; HDFS refuses a rename onto an existing file,
so exactly one rename wins and a loser deletes its copy and uses the winner's. Readers
only ever see complete files. Within one machine a lock file lets one process of a run
build and upload while Luigi's other task processes wait for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline.cluster.hadoop_conf import hadoop_user
from pipeline.cluster.yarn_clients import yarn as yarn_settings
from pipeline.errors import ConfigError, StorageError
from pipeline.storage import Storage, storage_for
from pipeline.storage.locations import Location, parse_location

logger = logging.getLogger("luigi-interface")

#: Settings with which the user already told Spark where its jars are: we add nothing.
USER_JAR_SETTINGS = ("spark.yarn.archive", "spark.yarn.jars")
_CORE_JAR = re.compile(r"spark-core_[0-9.]+-(.+)\.jar")


@dataclass(frozen=True)
class SharedFiles:
    """What every YARN job of this run names instead of uploading: ``archive`` for
    ``spark.yarn.archive`` (``None``: the user set their own, or publishing failed) and
    the ``tasks`` zip for ``--py-files``."""

    archive: str | None
    tasks_zip: str | None


# --------------------------------------------------------------------------- pure parts


def user_set_jars(conf: Mapping[str, str]) -> str | None:
    """The ``[spark] conf`` key that already points Spark at its jars, if any."""
    return next((key for key in USER_JAR_SETTINGS if conf.get(key)), None)


def default_archive_dir(user: str) -> str:
    return f"hdfs:///user/{user}/.spark-fanout/archives"


def spark_jars_dir(spark_submit: str, environ: Mapping[str, str], bundled_home: Path | None) -> Path | None:
    """The ``jars`` folder of the Spark that ``spark_submit`` runs: ``$SPARK_HOME/jars``,
    else the one beside a Spark distribution's ``bin/spark-submit``, else pyspark's."""
    candidates = []
    if environ.get("SPARK_HOME"):
        candidates.append(Path(environ["SPARK_HOME"]) / "jars")
    candidates.append(Path(os.path.realpath(spark_submit)).parent.parent / "jars")
    if bundled_home is not None:
        candidates.append(bundled_home / "jars")
    return next((c for c in candidates if c.is_dir() and any(c.glob("*.jar"))), None)


def spark_version(jars_dir: Path) -> str:
    """Spark's version from its core jar's name (``spark-core_2.12-3.5.7.jar``)."""
    for jar in sorted(jars_dir.glob("spark-core_*.jar")):
        match = _CORE_JAR.fullmatch(jar.name)
        if match:
            return match.group(1)
    return "unknown"


def _jar_files(jars_dir: Path) -> list[Path]:
    return sorted(p for p in jars_dir.iterdir() if p.is_file() and p.suffix == ".jar")


def _stat_key(files: list[Path]) -> str:
    """Cheap fingerprint (names, sizes, mtimes) that says when the content hash must be redone."""
    digest = hashlib.sha256()
    for f in files:
        st = f.stat()
        digest.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def content_hash(files: list[Path]) -> str:
    """Hash of the jars' names and bytes (not of a zip, whose bytes hold timestamps)."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- local side


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` across processes (released by the kernel if the holder dies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def jars_identity(jars_dir: Path, cache_dir: Path) -> tuple[str, str]:
    """(Spark version, content hash) of ``jars_dir``; the hash is remembered in
    ``cache_dir`` under the folder's stat fingerprint, so 320 MB are read once per install."""
    files = _jar_files(jars_dir)
    memo = cache_dir / f"spark-jars-{_stat_key(files)}.json"
    try:
        known = json.loads(memo.read_text())
        if known.get("dir") == str(jars_dir):
            return known["version"], known["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    version, sha = spark_version(jars_dir), content_hash(files)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"dir": str(jars_dir), "version": version, "sha256": sha}))
    os.replace(tmp, memo)
    return version, sha


def build_jars_zip(jars_dir: Path, target_dir: Path) -> Path:
    """A zip of the jars at its root (the layout ``spark.yarn.archive`` expects), stored
    uncompressed: jars are zips already, and deflating 320 MB is what costs spark-submit
    its CPU. The caller removes it."""
    fd, name = tempfile.mkstemp(dir=target_dir, prefix="spark-libs-", suffix=".zip.tmp")
    with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        for jar in _jar_files(jars_dir):
            zf.write(jar, jar.name)
    return Path(name)


# --------------------------------------------------------------------------- HDFS side


def publish(storage: Storage, local_file: Path, target: Location) -> str:
    """Make ``target`` hold ``local_file`` unless it already does (content-keyed names:
    same name, same content). Returns ``"present"``, ``"uploaded"`` or ``"lost race"``."""
    if storage.exists(target):
        return "present"
    temp = target.parent().join(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    storage.makedirs(target.parent())
    try:
        storage.write_file(temp, str(local_file))
        storage.rename(temp, target)
    except StorageError:
        # A concurrent first run renamed its copy into place first: use theirs.
        if storage.exists(target):
            with contextlib.suppress(StorageError):
                storage.remove_tree(temp)
            return "lost race"
        with contextlib.suppress(StorageError):
            storage.remove_tree(temp)
        raise
    return "uploaded"


def _publish_jars(storage: Storage, folder: Location, jars_dir: Path, cache_dir: Path) -> str:
    version, sha = jars_identity(jars_dir, cache_dir)
    target = folder.join(f"spark-libs-{version}-{sha[:16]}.zip")
    if storage.exists(target):
        return target.uri()
    local = build_jars_zip(jars_dir, cache_dir)
    try:
        outcome = publish(storage, local, target)
    finally:
        local.unlink(missing_ok=True)
    if outcome == "uploaded":
        size_mb = sum(f.stat().st_size for f in _jar_files(jars_dir)) // 2**20
        logger.info("uploaded Spark %s's jars (%d MB) once to %s: every YARN job uses it as spark.yarn.archive",
                    version, size_mb, target.uri())
    return target.uri()


def _publish_tasks(storage: Storage, folder: Location, tasks_zip: str) -> str:
    target = folder.join(Path(tasks_zip).name)  # tasks-<content hash>.zip
    publish(storage, Path(tasks_zip), target)
    return target.uri()


def ensure_shared_files(*, archive_dir: str, user_conf: Mapping[str, str], jars_dir: Path | None,
                        tasks_zip: str, cache_dir: Path, want_archive: bool = True) -> SharedFiles:
    """Publish (if missing) Spark's jars and the tasks zip under ``archive_dir``.

    One process of the machine at a time does the work (a lock file in ``cache_dir``);
    the others then find the files there with one GETFILESTATUS each.
    """
    folder = parse_location(archive_dir)
    if folder.is_local:
        raise ConfigError(f"[yarn] archive_dir {archive_dir} is a local path: YARN nodes need an hdfs:// folder")
    storage = storage_for(folder)
    with _file_lock(cache_dir / "spark-archive.lock"):
        archive = None
        if want_archive and not user_set_jars(user_conf):
            if jars_dir is None:
                raise ConfigError("cannot find Spark's jars (no SPARK_HOME/jars, no pyspark): set SPARK_HOME, "
                                  "or set spark.yarn.archive in [spark] conf")
            archive = _publish_jars(storage, folder, jars_dir, cache_dir)
        return SharedFiles(archive, _publish_tasks(storage, folder, tasks_zip))


# --------------------------------------------------------------------------- for SparkJob


@cache
def _shared_for(pid: int, key: tuple) -> SharedFiles:
    del pid  # part of the cache key only: a forked child checks for itself
    archive_dir, user_conf, jars_dir, tasks_zip, cache_dir, want_archive = key
    try:
        return ensure_shared_files(archive_dir=archive_dir, user_conf=dict(user_conf),
                                   jars_dir=Path(jars_dir) if jars_dir else None, tasks_zip=tasks_zip,
                                   cache_dir=Path(cache_dir), want_archive=want_archive)
    except (StorageError, ConfigError, OSError) as exc:
        logger.warning("could not publish Spark's jars and the tasks zip to %s (%s): each job uploads its own "
                       "(fix [yarn] archive_dir, or set [yarn] spark_archive = false to silence this)",
                       archive_dir, exc)
        return SharedFiles(None, None)


def shared_files(*, user_conf: Mapping[str, str], spark_submit: str, environ: Mapping[str, str],
                 bundled_home: Path | None, tasks_zip: str, cache_dir: Path) -> SharedFiles:
    """The shared files for a YARN job, published at most once per process (and, thanks
    to content-keyed names, once per content for all runs). Trouble is logged, and the
    job then uploads its own as before: a slower submission, not a failed job."""
    cfg = yarn_settings()
    if not cfg.spark_archive:
        return SharedFiles(None, None)
    try:
        archive_dir = cfg.archive_dir or default_archive_dir(hadoop_user())
    except ConfigError as exc:
        logger.warning("%s", exc)
        return SharedFiles(None, None)
    jars = spark_jars_dir(spark_submit, environ, bundled_home)
    key = (archive_dir, tuple(sorted(user_conf.items())), str(jars) if jars else "", tasks_zip, str(cache_dir), True)
    return _shared_for(os.getpid(), key)
