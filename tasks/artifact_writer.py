"""Write one artifact atomically from inside the job.

Local roots (``file://``) use plain file operations; any other URI (``hdfs://``,
``webhdfs://``) goes through Hadoop's FileSystem API in the job's JVM, so the job needs
no HDFS client of its own and works wherever Spark can read and write.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from typing import Any

from tasks.layout import MARKER, METADATA, temp_name, temp_token
from tasks.ownership import DEFAULT_LEASE_SECONDS, OWNER_FILE, Heartbeat, encode_record, made_record, owner_record


class ArtifactConflict(RuntimeError):
    """The final folder exists but holds no completion marker: not ours to replace."""


class _LocalFs:
    def __init__(self, root_uri: str) -> None:
        # The raw path, as Hadoop's Path and Spark read it: no percent-decoding.
        self.root = root_uri[len("file://"):].rstrip("/") or "/"

    def path(self, *names: str) -> str:
        return os.path.join(self.root, *names)

    def uri(self, *names: str) -> str:
        return "file://" + self.path(*names)

    def mkdirs(self, p: str) -> None:
        os.makedirs(p, exist_ok=True)

    def write(self, p: str, data: bytes, durable: bool = True) -> None:
        with open(p, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())

    def exists(self, p: str) -> bool:
        return os.path.lexists(p)

    def rename(self, src: str, dst: str) -> bool:
        try:
            os.rename(src, dst)  # atomic on POSIX; refuses a non-empty destination folder
            return True
        except OSError:
            return False

    def delete(self, p: str) -> None:
        shutil.rmtree(p, ignore_errors=True)

    def delete_file(self, p: str) -> None:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


class _HadoopFs:
    def __init__(self, spark: Any, root_uri: str) -> None:
        jvm = spark._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self.root = root_uri.rstrip("/")
        self.fs = self._Path(self.root).getFileSystem(spark._jsc.hadoopConfiguration())

    def path(self, *names: str) -> str:
        return "/".join([self.root, *names])

    uri = path

    def mkdirs(self, p: str) -> None:
        self.fs.mkdirs(self._Path(p))

    def write(self, p: str, data: bytes, durable: bool = True) -> None:
        out = self.fs.create(self._Path(p), True)
        try:
            out.write(bytearray(data))
            if durable:
                out.hsync()
        finally:
            out.close()

    def exists(self, p: str) -> bool:
        return bool(self.fs.exists(self._Path(p)))

    def rename(self, src: str, dst: str) -> bool:
        # Hadoop's rename moves src *into* dst when dst is a folder, so callers check first.
        return bool(self.fs.rename(self._Path(src), self._Path(dst)))

    def delete(self, p: str) -> None:
        self.fs.delete(self._Path(p), True)

    def delete_file(self, p: str) -> None:
        self.fs.delete(self._Path(p), False)


class ArtifactWriter:
    """``with ArtifactWriter(spark, root_uri, slug) as w: w.write_bytes(...); w.commit(metadata)``.

    Files go to a temporary folder whose owner record (host, pid, heartbeat) says who
    writes it, so another run removes it only once this process is gone; :meth:`commit`
    writes ``metadata.json``, then the marker (a made-by record naming the
    configuration, application and run), then renames the folder to its final name.
    Leaving the block without a commit removes the temporary folder (a killed process
    leaves it for a later run's cleanup instead).
    """

    def __init__(self, spark: Any, root_uri: str, slug: str, fs: Any = None,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        if fs is None:
            fs = _LocalFs(root_uri) if root_uri.startswith("file://") else _HadoopFs(spark, root_uri)
        self.fs = fs
        self.slug = slug
        self.temp = self.fs.path(temp_name(slug, temp_token(os.getpid(), uuid.uuid4().hex[:10])))
        self.written: list[str] = []
        self.final = self.fs.path(slug)
        self.committed = False
        self.already_complete = False
        self.lease_seconds = float(lease_seconds)
        self._heartbeat: Heartbeat | None = None

    @property
    def temp_uri(self) -> str:
        """URI of the temporary folder, for Spark writers (``model.write().save``)."""
        return self.temp if isinstance(self.fs, _HadoopFs) else "file://" + self.temp

    def __enter__(self) -> ArtifactWriter:
        self.fs.mkdirs(self.fs.root)
        self.fs.mkdirs(self.temp)
        self._claim()
        self._heartbeat = Heartbeat(self._claim, self.lease_seconds / 4).__enter__()
        return self

    def _claim(self) -> None:
        # Not synced to disk (one fsync less per label): the record speaks to live runs,
        # which read it back at once; after a crash its writer is gone anyway, and an
        # unreadable record falls back to the folder's age against the lease.
        self.fs.write(f"{self.temp}/{OWNER_FILE}", encode_record(owner_record(self.lease_seconds)), durable=False)

    def _release(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.__exit__()
            self._heartbeat = None

    def write_bytes(self, name: str, data: bytes) -> None:
        self.fs.write(f"{self.temp}/{name}", data)
        self.written.append(name)

    def record_written(self, name: str) -> None:
        """Note a file or folder written into :attr:`temp_uri` by someone else (Spark)."""
        self.written.append(name)

    def commit(self, metadata: dict[str, Any], abort_if: Any = None) -> str:
        """Publish the artifact; returns its final location. ``abort_if()`` is checked
        right before the rename: a job whose controller is gone must not publish."""
        # Everything must still be there before the marker goes in: a concurrent run's
        # cleanup may have removed this folder, and Hadoop's create() would silently
        # re-create it around the marker alone.
        self._check_nothing_lost()
        self.write_bytes(METADATA, json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        self._check_nothing_lost()
        self._release()  # the final folder carries no owner record: the marker says whose it is
        self.fs.delete_file(f"{self.temp}/{OWNER_FILE}")
        marker = made_record("artifact", str(metadata.get("config") or ""), label=metadata.get("label"),
                             format=metadata.get("format_version"), application_id=metadata.get("application_id"),
                             run_id=metadata.get("run_id"), task_id=metadata.get("task_id"))
        self.fs.write(f"{self.temp}/{MARKER}", encode_record(marker))
        if self.fs.exists(f"{self.final}/{MARKER}"):
            # Another attempt finished first: keep its artifact, drop ours.
            self.already_complete = True
            return self.final
        if self.fs.exists(self.final):
            raise ArtifactConflict(
                f"{self.final} exists without a {MARKER} marker: move it away (it is not a complete artifact) and rerun"
            )
        if abort_if is not None and abort_if():
            raise RuntimeError("the controller is gone: not publishing the artifact")
        if not self.fs.rename(self.temp, self.final):
            if self.fs.exists(f"{self.final}/{MARKER}"):  # lost a race with another attempt
                self.already_complete = True
                return self.final
            raise RuntimeError(f"could not rename {self.temp} to {self.final}: check permissions on the artifact root, then rerun")
        nested = f"{self.final}/{self.temp.rsplit('/', 1)[1]}"
        if self.fs.exists(nested):
            # Hadoop moved our folder *into* a final folder that appeared meanwhile: the
            # other attempt's artifact stands; take ours back out.
            self.fs.delete(nested)
            self.already_complete = True
            return self.final
        self.committed = True
        return self.final

    def _check_nothing_lost(self) -> None:
        lost = [name for name in self.written if not self.fs.exists(f"{self.temp}/{name}")]
        if lost or not self.fs.exists(self.temp):
            raise RuntimeError(
                f"{(lost or ['the folder'])[0]} vanished from {self.temp} before the commit (another run cleaned it?): rerun this label"
            )

    def __exit__(self, *exc: Any) -> None:
        self._release()
        if not self.committed:
            self.fs.delete(self.temp)
