"""Controller-side storage: the few file operations the controller needs.

The Spark job writes artifacts itself through Hadoop's FileSystem API; the controller
only lists, checks, reads small files and removes its own stale temporaries. Each
storage kind implements :class:`Storage`; :func:`pipeline.storage.storage_for` picks one
by scheme.
"""

from __future__ import annotations

import abc
import errno
import os
import shutil
from dataclasses import dataclass, field

from pipeline.errors import StorageError, StoragePermissionDenied
from pipeline.storage.locations import Location


@dataclass(frozen=True)
class Entry:
    """One child of a listed folder."""

    name: str
    is_dir: bool
    size: int | None = field(default=None, compare=False)  # bytes of a file, where the listing says (WebHDFS)


@dataclass(frozen=True)
class ContentSummary:
    """What a file or folder holds, counted over its whole tree: bytes, files, folders
    (the folder itself included), and a modification time in seconds since the epoch
    (HDFS: the folder's own; local files: the newest entry of the tree)."""

    length: int
    files: int
    folders: int
    modified: float


class Storage(abc.ABC):
    """The operations the controller performs on artifact roots and datasets.

    Paths are :class:`Location` objects of this storage's kind. Lookups return
    ``False``/``None`` for "not there" instead of raising. A storage object may be
    created before Luigi forks its task processes and used in them: implementations keep
    no connection, session or lock that one process would share with another.
    """

    @abc.abstractmethod
    def exists(self, loc: Location) -> bool:
        """Whether a file or folder exists at ``loc``."""

    @abc.abstractmethod
    def list_dir(self, loc: Location) -> list[Entry] | None:
        """Children of the folder ``loc`` in one request; ``None`` if it does not exist."""

    @abc.abstractmethod
    def read_bytes(self, loc: Location) -> bytes:
        """Whole content of a (small) file."""

    @abc.abstractmethod
    def write_bytes(self, loc: Location, data: bytes) -> None:
        """Create or replace a file, creating missing parent folders."""

    @abc.abstractmethod
    def makedirs(self, loc: Location) -> None:
        """Create a folder and its parents; no error if it exists."""

    @abc.abstractmethod
    def rename(self, src: Location, dst: Location) -> None:
        """Move ``src`` to ``dst``; ``dst`` must not exist (atomic where the storage is)."""

    @abc.abstractmethod
    def remove_tree(self, loc: Location) -> None:
        """Delete a file or folder recursively; no error if it is already gone."""

    @abc.abstractmethod
    def content_summary(self, loc: Location) -> ContentSummary | None:
        """What ``loc`` holds, in a number of requests that does not grow with its size;
        ``None`` if it does not exist."""

    @abc.abstractmethod
    def modified(self, loc: Location) -> float | None:
        """Modification time of a file or folder (seconds since the epoch); ``None`` if absent."""

    def for_thread(self) -> Storage:
        """A storage to use from another thread of this process (a heartbeat): the same
        object where it holds no connection; one of its own otherwise."""
        return self

    def read_tail(self, loc: Location, nbytes: int) -> bytes:
        """The last ``nbytes`` of a file (all of it if shorter): never fewer bytes than
        that, so a caller may judge them as the file's content. A transfer that came back
        short raises a :class:`~pipeline.errors.StorageError` instead. This default reads
        the whole file; storages that can read a range override it."""
        return self.read_bytes(loc)[-nbytes:]

    def write_file(self, loc: Location, local_path: str) -> None:
        """Create or replace ``loc`` with a local file's content. This default reads it
        whole; storages that can stream override it (a Spark jar archive is ~320 MB)."""
        with open(local_path, "rb") as fh:
            self.write_bytes(loc, fh.read())

    def upload_dir(self, local_dir: str, loc: Location) -> None:
        """Copy a local folder's files (one level of subfolders deep) to ``loc``."""
        for root, _dirs, files in os.walk(local_dir):
            rel = os.path.relpath(root, local_dir)
            target = loc if rel == "." else loc.join(*rel.split(os.sep))
            self.makedirs(target)
            for name in files:
                with open(os.path.join(root, name), "rb") as fh:
                    self.write_bytes(target.join(name), fh.read())


class LocalStorage(Storage):
    """Local files (``/path`` or ``file:///path``). Every OSError goes through
    :func:`_local_error`, so callers only ever see one-line StorageErrors."""

    def exists(self, loc: Location) -> bool:
        return os.path.lexists(loc.path)

    def list_dir(self, loc: Location) -> list[Entry] | None:
        try:
            with os.scandir(loc.path) as it:
                return [Entry(e.name, e.is_dir()) for e in it]
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _local_error(exc, "list", loc) from None

    def read_bytes(self, loc: Location) -> bytes:
        try:
            with open(loc.path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise _local_error(exc, "read", loc) from None

    def content_summary(self, loc: Location) -> ContentSummary | None:
        """One walk of the tree: sizes, counts and the newest modification time."""
        try:
            top = os.stat(loc.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _local_error(exc, "read", loc) from None
        if not os.path.isdir(loc.path):
            return ContentSummary(top.st_size, 1, 0, top.st_mtime)
        length, files, folders, newest = 0, 0, 1, top.st_mtime

        def walk_error(exc: OSError) -> None:
            raise _local_error(exc, "read", loc)

        for root, dirs, names in os.walk(loc.path, onerror=walk_error):
            for name in dirs:
                folders += 1
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
            for name in names:
                st = os.stat(os.path.join(root, name))
                files += 1
                length += st.st_size
                newest = max(newest, st.st_mtime)
        return ContentSummary(length, files, folders, newest)

    def modified(self, loc: Location) -> float | None:
        try:
            return os.stat(loc.path).st_mtime
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _local_error(exc, "read", loc) from None

    def read_tail(self, loc: Location, nbytes: int) -> bytes:
        try:
            with open(loc.path, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - nbytes))
                return fh.read()
        except OSError as exc:
            raise _local_error(exc, "read", loc) from None

    def write_bytes(self, loc: Location, data: bytes) -> None:
        try:
            os.makedirs(os.path.dirname(loc.path), exist_ok=True)
            with open(loc.path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise _local_error(exc, "write", loc) from None

    def makedirs(self, loc: Location) -> None:
        try:
            os.makedirs(loc.path, exist_ok=True)
        except OSError as exc:
            raise _local_error(exc, "create folder", loc) from None

    def rename(self, src: Location, dst: Location) -> None:
        if os.path.lexists(dst.path):
            raise StorageError(f"cannot move {src} to {dst}: the destination exists")
        try:
            os.rename(src.path, dst.path)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise StorageError(f"cannot move {src} to {dst}: the destination exists") from None
            raise _local_error(exc, f"move to {dst}", src) from None

    def remove_tree(self, loc: Location) -> None:
        try:
            if os.path.isdir(loc.path) and not os.path.islink(loc.path):
                shutil.rmtree(loc.path)
            elif os.path.lexists(loc.path):
                os.remove(loc.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _local_error(exc, "remove", loc) from None


def _local_error(exc: OSError, action: str, loc: Location) -> StorageError:
    """One line for a failed local file operation, saying what to do."""
    what = f"cannot {action} {loc}"
    if isinstance(exc, PermissionError):
        return StoragePermissionDenied(f"{what}: permission denied; fix the permissions or choose another path")
    if isinstance(exc, FileNotFoundError):
        return StorageError(f"{what}: it or its parent folder does not exist")
    if isinstance(exc, IsADirectoryError):
        return StorageError(f"{what}: it is a folder, not a file")
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        return StorageError(f"{what}: a part of the path is a file, not a folder; choose another path")
    return StorageError(f"{what}: {exc.strerror or exc}")
