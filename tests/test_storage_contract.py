"""One contract for every :class:`~pipeline.storage.Storage`: local files and WebHDFS.

Each test runs against ``LocalStorage`` (under tmp_path) and ``WebHdfsStorage`` (against
the stateful in-memory server in ``webhdfs_server.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.errors import StorageError
from pipeline.storage import Entry, LocalStorage, Storage
from pipeline.storage.locations import Location, parse_location
from pipeline.storage.webhdfs import WebHdfsStorage
from tests.webhdfs_server import WebHdfsServer

# Names that must survive URL quoting, JSON and shells untouched.
ODD_NAMES = [
    "with space",
    "ünïcödé ✓ 日本",
    "quote'single",
    'quote"double',
    "$(touch pwned)",
    "`tick` & semi;colon",
    "percent%20and+plus=eq",
    "star*[x]{y}",
    "-leading-dash",
    "tab\tinside",
]

@dataclass
class Backend:
    name: str
    storage: Storage
    root: Location


@pytest.fixture(params=["local", "webhdfs"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        root = parse_location(str(tmp_path / "root"))
        storage: Storage = LocalStorage()
        storage.makedirs(root)
        yield Backend("local", storage, root)
        return
    with WebHdfsServer() as server:
        root = parse_location(f"webhdfs://127.0.0.1:{server.port}/user/alice/root")
        storage = WebHdfsStorage([server.url], user="alice", timeout=5)
        storage.makedirs(root)
        yield Backend("webhdfs", storage, root)


def expect_storage_error(fn, *args) -> StorageError:
    """Run ``fn`` and demand a StorageError with a one-line message (anything else: AssertionError)."""
    try:
        fn(*args)
    except StorageError as exc:
        assert "\n" not in str(exc)
        return exc
    except Exception as exc:  # noqa: BLE001 - any other type is the failure being tested
        raise AssertionError(f"expected StorageError, got {type(exc).__name__}: {exc}") from exc
    raise AssertionError("expected StorageError, nothing was raised")


# -- exists / list_dir ---------------------------------------------------------------


def test_exists_for_missing_file_and_folder(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    assert s.exists(root)
    assert not s.exists(root.join("missing"))
    s.write_bytes(root.join("f"), b"x")
    s.makedirs(root.join("d"))
    assert s.exists(root.join("f"))
    assert s.exists(root.join("d"))


def test_exists_below_a_file_is_false(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("f"), b"x")
    assert not s.exists(root.join("f", "child"))


def test_list_dir_missing_is_none_and_empty_is_empty(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    assert s.list_dir(root.join("missing")) is None
    s.makedirs(root.join("empty"))
    assert s.list_dir(root.join("empty")) == []


def test_list_dir_reports_names_and_kinds(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("a.txt"), b"1")
    s.makedirs(root.join("sub"))
    s.write_bytes(root.join("sub", "deep.txt"), b"2")
    assert sorted(s.list_dir(root), key=lambda e: e.name) == [Entry("a.txt", False), Entry("sub", True)]
    assert s.list_dir(root.join("sub")) == [Entry("deep.txt", False)]


def test_list_dir_of_a_file_is_an_error(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("f"), b"x")
    exc = expect_storage_error(s.list_dir, root.join("f"))
    assert "is a file" in str(exc)


# -- read / write ----------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello", bytes(range(256)) * 3], ids=["empty", "text", "binary"])
def test_write_then_read_round_trips(backend: Backend, data: bytes) -> None:
    s, loc = backend.storage, backend.root.join("blob.bin")
    s.write_bytes(loc, data)
    assert s.read_bytes(loc) == data


def test_write_replaces_a_longer_file(backend: Backend) -> None:
    s, loc = backend.storage, backend.root.join("f.json")
    s.write_bytes(loc, b'{"long": "content"}')
    s.write_bytes(loc, b"{}")
    assert s.read_bytes(loc) == b"{}"


def test_write_creates_missing_parent_folders(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("a", "b", "c.txt"), b"deep")
    assert s.list_dir(root.join("a")) == [Entry("b", True)]
    assert s.read_bytes(root.join("a", "b", "c.txt")) == b"deep"


# Failures every storage must report as StorageError (one line, with a fix).
def _read_missing(s: Storage, root: Location) -> None:
    s.read_bytes(root.join("missing"))


def _read_folder(s: Storage, root: Location) -> None:
    s.makedirs(root.join("d"))
    s.read_bytes(root.join("d"))


def _write_onto_folder(s: Storage, root: Location) -> None:
    s.makedirs(root.join("d"))
    s.write_bytes(root.join("d"), b"x")


def _write_below_file(s: Storage, root: Location) -> None:
    s.write_bytes(root.join("f"), b"x")
    s.write_bytes(root.join("f", "child"), b"y")


def _makedirs_below_file(s: Storage, root: Location) -> None:
    s.write_bytes(root.join("f"), b"x")
    s.makedirs(root.join("f", "sub"))


def _rename_missing_source(s: Storage, root: Location) -> None:
    s.rename(root.join("missing"), root.join("dst"))


def _rename_into_missing_folder(s: Storage, root: Location) -> None:
    s.write_bytes(root.join("f"), b"x")
    s.rename(root.join("f"), root.join("no-such-folder", "f"))


@pytest.mark.parametrize(
    "failing",
    [
        _read_missing,
        _read_folder,
        _write_onto_folder,
        _write_below_file,
        _makedirs_below_file,
        _rename_missing_source,
        _rename_into_missing_folder,
    ],
    ids=lambda fn: fn.__name__.strip("_"),
)
def test_failures_are_storage_errors(request: pytest.FixtureRequest, backend: Backend, failing) -> None:
    expect_storage_error(failing, backend.storage, backend.root)


# -- makedirs ------------------------------------------------------------------------------


def test_makedirs_creates_parents_and_is_idempotent(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.makedirs(root.join("x", "y", "z"))
    s.makedirs(root.join("x", "y", "z"))
    s.makedirs(root.join("x"))
    assert s.list_dir(root.join("x", "y")) == [Entry("z", True)]


def test_makedirs_on_a_file_is_an_error(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("f"), b"x")
    expect_storage_error(s.makedirs, root.join("f"))
    assert s.read_bytes(root.join("f")) == b"x"


# -- rename ----------------------------------------------------------------------------------


def test_rename_moves_a_file(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("a"), b"1")
    s.rename(root.join("a"), root.join("b"))
    assert not s.exists(root.join("a"))
    assert s.read_bytes(root.join("b")) == b"1"


def test_rename_moves_a_folder_with_its_content(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("tmp-1", "model", "part"), b"m")
    s.write_bytes(root.join("tmp-1", "_SUCCESS"), b"")
    s.rename(root.join("tmp-1"), root.join("final"))
    assert s.list_dir(root.join("tmp-1")) is None
    assert sorted(e.name for e in s.list_dir(root.join("final"))) == ["_SUCCESS", "model"]
    assert s.read_bytes(root.join("final", "model", "part")) == b"m"


def test_rename_refuses_an_existing_folder(backend: Backend) -> None:
    """HDFS's plain rename would move src *inside* an existing folder; the contract refuses."""
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("src", "f"), b"new")
    s.write_bytes(root.join("dst", "g"), b"old")
    exc = expect_storage_error(s.rename, root.join("src"), root.join("dst"))
    assert "destination exists" in str(exc)
    assert s.list_dir(root.join("dst")) == [Entry("g", False)]
    assert s.read_bytes(root.join("src", "f")) == b"new"


def test_rename_refuses_an_existing_file(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("src"), b"new")
    s.write_bytes(root.join("dst"), b"old")
    expect_storage_error(s.rename, root.join("src"), root.join("dst"))
    assert s.read_bytes(root.join("dst")) == b"old"
    assert s.read_bytes(root.join("src")) == b"new"


# -- remove_tree -------------------------------------------------------------------------------


def test_remove_tree_removes_folders_recursively_and_files(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("d", "e", "f"), b"x")
    s.write_bytes(root.join("file"), b"y")
    s.remove_tree(root.join("d"))
    s.remove_tree(root.join("file"))
    assert s.list_dir(root) == []


def test_remove_tree_is_idempotent(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    s.makedirs(root.join("d"))
    s.remove_tree(root.join("d"))
    s.remove_tree(root.join("d"))
    s.remove_tree(root.join("never-there"))
    s.write_bytes(root.join("f"), b"x")
    s.remove_tree(root.join("f", "below-a-file"))
    assert [e.name for e in s.list_dir(root)] == ["f"]


# -- odd names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_round_trip(backend: Backend, name: str) -> None:
    s, root = backend.storage, backend.root
    folder = root.join(name)
    s.makedirs(folder)
    s.write_bytes(folder.join(name), name.encode("utf-8"))
    assert s.list_dir(root) == [Entry(name, True)]
    assert s.list_dir(folder) == [Entry(name, False)]
    assert s.exists(folder.join(name))
    assert s.read_bytes(folder.join(name)) == name.encode("utf-8")
    moved = root.join(name + " moved")
    s.rename(folder, moved)
    assert s.read_bytes(moved.join(name)) == name.encode("utf-8")
    assert not s.exists(folder)
    s.remove_tree(moved)
    assert s.list_dir(root) == []


# -- upload_dir (base-class method) --------------------------------------------------------------


def test_upload_dir_copies_files_and_subfolders(backend: Backend, tmp_path: Path) -> None:
    local = tmp_path / "to-upload"
    (local / "sub dir" / "deeper").mkdir(parents=True)
    (local / "metadata.json").write_bytes(b'{"a": 1}')
    (local / "sub dir" / "part ü.bin").write_bytes(bytes(range(10)))
    (local / "sub dir" / "deeper" / "x").write_bytes(b"")
    s, target = backend.storage, backend.root.join("artifact")
    s.upload_dir(str(local), target)
    assert sorted(s.list_dir(target), key=lambda e: e.name) == [Entry("metadata.json", False), Entry("sub dir", True)]
    assert s.read_bytes(target.join("metadata.json")) == b'{"a": 1}'
    assert s.read_bytes(target.join("sub dir", "part ü.bin")) == bytes(range(10))
    assert s.read_bytes(target.join("sub dir", "deeper", "x")) == b""


def test_read_tail_returns_the_last_bytes_or_the_whole_short_file(backend: Backend) -> None:
    s, root = backend.storage, backend.root
    data = bytes(range(256)) * 40
    s.write_bytes(root.join("f"), data)
    assert s.read_tail(root.join("f"), 300) == data[-300:]
    assert s.read_tail(root.join("f"), len(data) + 5) == data
    expect_storage_error(s.read_tail, root.join("missing"), 8)


# -- processes -----------------------------------------------------------------------------------


def test_a_storage_made_before_fork_serves_parent_and_child_at_once(backend: Backend) -> None:
    """Luigi forks task processes after planning with the same storage objects: the child
    and the parent then use one storage object at the same time, each getting its own answers."""
    s, root = backend.storage, backend.root
    s.write_bytes(root.join("parent"), b"p" * 100)
    assert s.list_dir(root) == [Entry("parent", False)]
    s.makedirs(root.join("child-dir"))
    s.write_bytes(root.join("child-dir", "child"), b"c" * 50)
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 70
        try:
            good = all(
                s.read_bytes(root.join("child-dir", "child")) == b"c" * 50
                and s.list_dir(root.join("child-dir")) == [Entry("child", False)]
                for _ in range(100)
            )
            s.write_bytes(root.join("child-dir", "from-child"), b"done")
            code = 0 if good else 1
        except BaseException:  # noqa: BLE001 - the exit code tells the parent
            code = 2
        finally:
            os._exit(code)
    good = all(
        s.read_bytes(root.join("parent")) == b"p" * 100
        and sorted(e.name for e in s.list_dir(root)) == ["child-dir", "parent"]
        for _ in range(100)
    )
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child got wrong answers (1) or an error (2)"
    assert good, "the parent got wrong answers"
    assert s.read_bytes(root.join("child-dir", "from-child")) == b"done"
