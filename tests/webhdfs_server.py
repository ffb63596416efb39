"""A small stateful in-memory WebHDFS server on 127.0.0.1 for tests.

It keeps a file tree in memory and answers the operations the controller uses
(GETFILESTATUS, LISTSTATUS, OPEN, CREATE, MKDIRS, RENAME, DELETE) the way a Hadoop 3.3
NameNode does: ``FileStatus``/``FileStatuses`` bodies with the keys, order and layout of
the recordings in ``tests/fixtures/webhdfs`` (success bodies as recorded: indented JSON
plus a newline; error bodies as the recorded compact ``RemoteException``), error
statuses from the WebHDFS documentation's table (404 FileNotFoundException, 403 for
other IOExceptions, 400 IllegalArgumentException), the two-step CREATE (307 to a
"DataNode" URL on this same server, then 201 Created) and OPEN's 307 redirect.

Switches: ``safe_mode`` (writes get SafeModeException), ``standby`` (every NameNode call
gets StandbyException), ``denied`` (path prefixes that get AccessControlException) and
``delay_s`` (sleep before each answer). ``requests`` logs every request for counting.
"""

from __future__ import annotations

import json
import posixpath
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

PREFIX = "/webhdfs/v1"
FILE_BLOCK_SIZE = 134217728
DATANODE_MARKER = "namenoderpcaddress"
NAMENODE_RPC = "127.0.0.1:8020"
DEFAULT_WEB_USER = "dr.who"

_JAVA_CLASS = {
    "AccessControlException": "org.apache.hadoop.security.AccessControlException",
    "FileAlreadyExistsException": "org.apache.hadoop.fs.FileAlreadyExistsException",
    "FileNotFoundException": "java.io.FileNotFoundException",
    "IllegalArgumentException": "java.lang.IllegalArgumentException",
    "IOException": "java.io.IOException",
    "ParentNotDirectoryException": "org.apache.hadoop.fs.ParentNotDirectoryException",
    "PathIsNotEmptyDirectoryException": "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
    "SafeModeException": "org.apache.hadoop.hdfs.server.namenode.SafeModeException",
    "StandbyException": "org.apache.hadoop.ipc.StandbyException",
}
# The WebHDFS documentation's exception -> HTTP status table; other IOExceptions are 403.
_HTTP_STATUS = {"IllegalArgumentException": 400, "SecurityException": 401, "FileNotFoundException": 404}


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Node:
    """One file or folder, with the metadata a ``FileStatus`` reports."""

    is_dir: bool
    data: bytes = b""
    owner: str = DEFAULT_WEB_USER
    group: str = "supergroup"
    permission: str = ""
    file_id: int = 0
    access_time: int = 0
    modification_time: int = 0
    replication: int | None = None
    block_size: int | None = None
    storage_policy: int = 0

    def __post_init__(self) -> None:
        if not self.permission:
            self.permission = "755" if self.is_dir else "644"
        if self.replication is None:
            self.replication = 0 if self.is_dir else 1
        if self.block_size is None:
            self.block_size = 0 if self.is_dir else FILE_BLOCK_SIZE


@dataclass
class LoggedRequest:
    """One request as the server saw it."""

    method: str
    op: str
    path: str
    params: dict[str, str]
    body_length: int
    datanode: bool


class RemoteError(Exception):
    """Raised by operation handlers; becomes a ``RemoteException`` answer."""

    def __init__(self, exception: str, message: str) -> None:
        super().__init__(message)
        self.exception = exception
        self.message = message

    @property
    def status(self) -> int:
        return _HTTP_STATUS.get(self.exception, 403)

    def body(self) -> bytes:
        payload = {
            "RemoteException": {
                "exception": self.exception,
                "javaClassName": _JAVA_CLASS.get(self.exception, "java.io.IOException"),
                "message": self.message,
            }
        }
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(payload: object, status: int = 200) -> Answer:
    """A success body laid out like the recorded fixtures (4-space indent, final newline)."""
    return Answer(status, (json.dumps(payload, indent=4, ensure_ascii=False) + "\n").encode("utf-8"))


def boolean_answer(value: bool) -> Answer:
    return Answer(200, json.dumps({"boolean": value}, separators=(",", ":")).encode())


class WebHdfsServer:
    """``with WebHdfsServer() as nn: WebHdfsStorage([nn.url], user="alice")``."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.safe_mode = False
        self.standby = False
        self.denied: set[str] = set()
        self.requests: list[LoggedRequest] = []
        self._lock = threading.RLock()
        self._next_id = 16386
        self._nodes: dict[str, Node] = {"/": Node(True, owner="root", file_id=16385)}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # one small answer per request: do not wait for ACKs

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                body = self._read_body()
                if server.delay_s:
                    time.sleep(server.delay_s)
                answer = server.handle(self.command, self.path, body)
                self.send_response(answer.status)
                if answer.content_type:
                    self.send_header("Content-Type", answer.content_type)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> WebHdfsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- inspection and seeding for tests ----------------------------------------------

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def ops(self) -> list[str]:
        """Operations received so far, e.g. ``["GETFILESTATUS", "CREATE", "CREATE(datanode)"]``."""
        with self._lock:
            return [r.op + ("(datanode)" if r.datanode else "") for r in self.requests]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def node(self, path: str) -> Node | None:
        with self._lock:
            return self._nodes.get(posixpath.normpath(path))

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._nodes)

    def put_dir(self, path: str, **meta: object) -> Node:
        """Create a folder (and its parents) directly, bypassing HTTP."""
        with self._lock:
            path = posixpath.normpath(path)
            self._make_parents(path, DEFAULT_WEB_USER)
            node = self._nodes.get(path) or self._new(True, **meta)
            self._nodes[path] = node
            return node

    def put_file(self, path: str, data: bytes = b"", **meta: object) -> Node:
        """Create a file (and its parent folders) directly, bypassing HTTP."""
        with self._lock:
            path = posixpath.normpath(path)
            self._make_parents(path, DEFAULT_WEB_USER)
            node = self._new(False, data=data, **meta)
            self._nodes[path] = node
            return node

    # -- protocol --------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: bytes) -> Answer:
        """Answer one HTTP request (also usable without sockets)."""
        parts = urlsplit(raw_path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        op = params.get("op", "").upper()
        datanode = DATANODE_MARKER in params
        if not parts.path.startswith(PREFIX):
            path = parts.path
        else:
            path = posixpath.normpath("/" + unquote(parts.path[len(PREFIX) :]).lstrip("/"))
        with self._lock:
            self.requests.append(LoggedRequest(method, op, path, params, len(body), datanode))
        if not parts.path.startswith(PREFIX):
            return Answer(404, f"no WebHDFS resource at {parts.path}\n".encode(), "text/plain")
        user = params.get("user.name") or DEFAULT_WEB_USER
        try:
            with self._lock:
                return self._dispatch(method, op, path, params, body, user, datanode)
        except RemoteError as err:
            return Answer(err.status, err.body())

    def _dispatch(
        self, method: str, op: str, path: str, params: dict[str, str], body: bytes, user: str, datanode: bool
    ) -> Answer:
        if datanode:
            if method == "PUT" and op == "CREATE":
                return self._datanode_create(path, params, body, user)
            if method == "GET" and op == "OPEN":
                return self._datanode_open(path, params)
        else:
            handler = {
                ("GET", "GETFILESTATUS"): self._getfilestatus,
                ("GET", "LISTSTATUS"): self._liststatus,
                ("GET", "OPEN"): self._open,
                ("GET", "GETHOMEDIRECTORY"): self._gethomedirectory,
                ("PUT", "CREATE"): self._create,
                ("PUT", "MKDIRS"): self._mkdirs,
                ("PUT", "RENAME"): self._rename,
                ("DELETE", "DELETE"): self._delete,
            }.get((method, op))
            if handler is not None:
                write = op in ("CREATE", "MKDIRS", "RENAME", "DELETE")
                if self.standby:
                    category = "WRITE" if write else "READ"
                    raise RemoteError(
                        "StandbyException",
                        f"Operation category {category} is not supported in state standby. "
                        f"Visit https://s.apache.org/sbnn-error",
                    )
                return handler(path, params, user)
        kind = {"GET": "GetOpParam", "PUT": "PutOpParam", "POST": "PostOpParam", "DELETE": "DeleteOpParam"}
        raise RemoteError(
            "IllegalArgumentException",
            f'Invalid value for webhdfs parameter "op": No enum constant '
            f"org.apache.hadoop.hdfs.web.resources.{kind.get(method, 'GetOpParam')}.Op.{op}",
        )

    # -- checks ------------------------------------------------------------------------

    def _check_safe_mode(self, what: str) -> None:
        if self.safe_mode:
            raise RemoteError(
                "SafeModeException",
                f"{what}. Name node is in safe mode.\nIt was turned on manually. "
                f'Use "hdfs dfsadmin -safemode leave" to turn safe mode off. NamenodeHostName:localhost',
            )

    def _check_access(self, path: str, user: str, access: str) -> None:
        for denied in self.denied:
            root = denied.rstrip("/") or "/"
            if path == root or path.startswith(root.rstrip("/") + "/"):
                raise RemoteError(
                    "AccessControlException",
                    f'Permission denied: user={user}, access={access}, inode="{root}":root:supergroup:drwx------',
                )

    def _check_traverse(self, path: str) -> None:
        """A file in the middle of a path: ParentNotDirectoryException, as the NameNode's
        permission checker reports it."""
        current = "/"
        for part in path.strip("/").split("/")[:-1]:
            current = posixpath.join(current, part)
            node = self._nodes.get(current)
            if node is None:
                return
            if not node.is_dir:
                raise RemoteError("ParentNotDirectoryException", f"{current} (is not a directory)")

    # -- tree helpers ------------------------------------------------------------------

    def _new(self, is_dir: bool, **meta: object) -> Node:
        if "file_id" not in meta:
            meta["file_id"] = self._next_id
            self._next_id += 1
        now = _now_ms()
        meta.setdefault("modification_time", now)
        if not is_dir:
            meta.setdefault("access_time", now)
        return Node(is_dir, **meta)  # type: ignore[arg-type]

    def _make_parents(self, path: str, user: str) -> None:
        current = "/"
        for part in path.strip("/").split("/")[:-1]:
            current = posixpath.join(current, part)
            if current not in self._nodes:
                self._nodes[current] = self._new(True, owner=user)

    def _children(self, path: str) -> list[tuple[str, Node]]:
        prefix = path.rstrip("/") + "/"
        found = [
            (p[len(prefix) :], n)
            for p, n in self._nodes.items()
            if p != path and p.startswith(prefix) and "/" not in p[len(prefix) :]
        ]
        return sorted(found, key=lambda item: item[0].encode("utf-8"))

    def _subtree(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return [p for p in self._nodes if p == path or p.startswith(prefix)]

    def _touch_parent(self, path: str) -> None:
        parent = self._nodes.get(posixpath.dirname(path))
        if parent is not None:
            parent.modification_time = _now_ms()

    def _children_counts(self) -> dict[str, int]:
        """Number of children of every folder, in one pass (a listing of N folders would
        otherwise scan the whole tree N times)."""
        counts: dict[str, int] = {}
        for p in self._nodes:
            if p != "/":
                parent = posixpath.dirname(p)
                counts[parent] = counts.get(parent, 0) + 1
        return counts

    def file_status(self, path: str, suffix: str = "", counts: dict[str, int] | None = None) -> dict[str, object]:
        """The ``FileStatus`` object for ``path``, keys in the recorded order."""
        node = self._nodes[path]
        children = (counts.get(path, 0) if counts is not None else len(self._children(path))) if node.is_dir else 0
        return {
            "accessTime": node.access_time,
            "blockSize": node.block_size,
            "childrenNum": children,
            "fileId": node.file_id,
            "group": node.group,
            "length": 0 if node.is_dir else len(node.data),
            "modificationTime": node.modification_time,
            "owner": node.owner,
            "pathSuffix": suffix,
            "permission": node.permission,
            "replication": node.replication,
            "storagePolicy": node.storage_policy,
            "type": "DIRECTORY" if node.is_dir else "FILE",
        }

    def _datanode_url(self, path: str, params: dict[str, str], extra: dict[str, str]) -> str:
        query = {"op": params.get("op", "").upper()}
        if "user.name" in params:
            query["user.name"] = params["user.name"]
        query[DATANODE_MARKER] = NAMENODE_RPC
        query.update(extra)
        text = "&".join(f"{quote(k, safe='.')}={quote(v, safe='')}" for k, v in query.items())
        return f"{self.url}{PREFIX}{quote(path, safe='/')}?{text}"

    # -- operations ----------------------------------------------------------------------

    def _getfilestatus(self, path: str, params: dict[str, str], user: str) -> Answer:
        self._check_access(path, user, "EXECUTE")
        self._check_traverse(path)
        if path not in self._nodes:
            raise RemoteError("FileNotFoundException", f"File does not exist: {path}")
        return json_answer({"FileStatus": self.file_status(path)})

    def _liststatus(self, path: str, params: dict[str, str], user: str) -> Answer:
        self._check_access(path, user, "READ_EXECUTE")
        self._check_traverse(path)
        node = self._nodes.get(path)
        if node is None:
            raise RemoteError("FileNotFoundException", f"File {path} does not exist.")
        if node.is_dir:
            counts = self._children_counts()
            statuses = [self.file_status(posixpath.join(path, name), name, counts) for name, _ in self._children(path)]
        else:
            statuses = [self.file_status(path)]
        return json_answer({"FileStatuses": {"FileStatus": statuses}})

    def _gethomedirectory(self, path: str, params: dict[str, str], user: str) -> Answer:
        return json_answer({"Path": f"/user/{user}"})

    def _open(self, path: str, params: dict[str, str], user: str) -> Answer:
        self._check_access(path, user, "READ")
        self._check_traverse(path)
        node = self._nodes.get(path)
        if node is None:
            raise RemoteError("FileNotFoundException", f"File does not exist: {path}")
        if node.is_dir:
            raise RemoteError("FileNotFoundException", f"Path is not a file: {path}")
        extra = {"offset": params.get("offset") or "0"}
        if params.get("length"):
            extra["length"] = params["length"]
        location = self._datanode_url(path, params, extra)
        return Answer(307, b"", "application/octet-stream", {"Location": location})

    def _datanode_open(self, path: str, params: dict[str, str]) -> Answer:
        node = self._nodes.get(path)
        if node is None or node.is_dir:
            raise RemoteError("FileNotFoundException", f"File does not exist: {path}")
        offset = int(params.get("offset") or 0)
        length = params.get("length")
        data = node.data[offset:] if not length else node.data[offset : offset + int(length)]
        node.access_time = _now_ms()
        return Answer(200, data, "application/octet-stream")

    def _create_checks(self, path: str, params: dict[str, str], user: str) -> None:
        self._check_safe_mode(f"Cannot create file{path}")
        self._check_access(path, user, "WRITE")
        self._check_traverse(path)
        node = self._nodes.get(path)
        if node is not None and node.is_dir:
            raise RemoteError("FileAlreadyExistsException", f"{path} already exists as a directory")
        if node is not None and params.get("overwrite", "false").lower() != "true":
            raise RemoteError("FileAlreadyExistsException", f"{path} for client 127.0.0.1 already exists")

    def _create(self, path: str, params: dict[str, str], user: str) -> Answer:
        self._create_checks(path, params, user)
        extra = {"createflag": "", "createparent": "true", "overwrite": params.get("overwrite", "false").lower()}
        location = self._datanode_url(path, params, extra)
        return Answer(307, b"", "application/octet-stream", {"Location": location})

    def _datanode_create(self, path: str, params: dict[str, str], body: bytes, user: str) -> Answer:
        self._create_checks(path, params, user)
        self._make_parents(path, user)
        self._nodes[path] = self._new(False, data=body, owner=user)
        self._touch_parent(path)
        return Answer(201, b"", None, {"Location": f"webhdfs://127.0.0.1:{self.port}{quote(path, safe='/')}"})

    def _mkdirs(self, path: str, params: dict[str, str], user: str) -> Answer:
        self._check_safe_mode(f"Cannot create directory {path}")
        self._check_access(path, user, "WRITE")
        self._check_traverse(path)
        node = self._nodes.get(path)
        if node is not None and not node.is_dir:
            raise RemoteError("FileAlreadyExistsException", f"Path is not a directory: {path}")
        if node is None:
            self._make_parents(path, user)
            self._nodes[path] = self._new(True, owner=user)
            self._touch_parent(path)
        return boolean_answer(True)

    def _rename(self, path: str, params: dict[str, str], user: str) -> Answer:
        """FileSystem.rename semantics (the only ones WebHDFS documents): ``false`` when the
        source is missing or the destination's parent is; moves *into* an existing folder."""
        if "destination" not in params:
            raise RemoteError("IllegalArgumentException", "Required param destination for op: RENAME is null")
        dst = posixpath.normpath(params["destination"] or "/")
        self._check_safe_mode(f"Cannot rename {path}")
        self._check_access(path, user, "WRITE")
        self._check_access(dst, user, "WRITE")
        self._check_traverse(path)
        self._check_traverse(dst)
        if path == "/" or path not in self._nodes:
            return boolean_answer(False)
        target = self._nodes.get(dst)
        if target is not None:
            if not target.is_dir:
                return boolean_answer(False)
            dst = posixpath.join(dst, posixpath.basename(path))
        if dst == path:
            return boolean_answer(True)
        if dst.startswith(path.rstrip("/") + "/"):
            raise RemoteError("IOException", f"Rename destination {dst} is a directory or file under source {path}")
        parent = self._nodes.get(posixpath.dirname(dst))
        if dst in self._nodes or parent is None or not parent.is_dir:
            return boolean_answer(False)
        for old in sorted(self._subtree(path)):
            self._nodes[dst + old[len(path) :]] = self._nodes.pop(old)
        self._touch_parent(path)
        self._touch_parent(dst)
        return boolean_answer(True)

    def _delete(self, path: str, params: dict[str, str], user: str) -> Answer:
        self._check_safe_mode(f"Cannot delete {path}")
        self._check_access(path, user, "WRITE")
        self._check_traverse(path)
        node = self._nodes.get(path)
        if node is None or path == "/":
            return boolean_answer(False)
        if node.is_dir and self._children(path) and params.get("recursive", "false").lower() != "true":
            raise RemoteError("PathIsNotEmptyDirectoryException", f"`{path} is non empty': Directory is not empty")
        for old in self._subtree(path):
            del self._nodes[old]
        self._touch_parent(path)
        return boolean_answer(True)
