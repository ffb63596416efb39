"""A small stateful in-memory WebHDFS server on 127.0.0.1 for tests.

It keeps a file tree in memory and answers the operations the controller uses
(GETFILESTATUS, LISTSTATUS, GETCONTENTSUMMARY, OPEN, CREATE, MKDIRS, RENAME, DELETE) the way the recorded
Hadoop 3.3.6 cluster did (``tests/fixtures/webhdfs/http``, ``curl -si`` transcripts):

* the **NameNode** (:attr:`WebHdfsServer.url`) speaks HTTP/1.1 and keeps the connection
  open; its JSON answers come with ``Transfer-Encoding: chunked``, the header set and
  order of the recordings and a ``hadoop.auth`` cookie; OPEN and CREATE answer
  ``307 Temporary Redirect`` with ``Content-Length: 0`` and a ``Location`` on the DataNode;
* the **DataNode** (:attr:`WebHdfsServer.datanode_url`, a second listening socket) answers
  with ``Content-Length`` and ``Connection: close``, so no client ever reuses its sockets.

Bodies: a listing is laid out as on the wire (``{"FileStatuses":{"FileStatus":[``, one
compact status per line, ``]}}``); the other answers are compact JSON. The keys and their
order are those of the recordings (the ``webhdfs/*.json`` fixtures hold the same answers
re-indented). Error statuses follow the WebHDFS documentation's table (404
FileNotFoundException, 403 other IOExceptions, 400 IllegalArgumentException).

Kerberos: given a :class:`tests.spnego.SpnegoGate` (``spnego=``), the NameNode demands SPNEGO
as the recorded secured cluster did (``tests/fixtures/kerberos/http``): the gate answers
401/403 itself, an authenticated answer carries its ``WWW-Authenticate`` and cookie, the user
is the ticket's (not ``user.name``), and OPEN/CREATE redirect with a fresh ``delegation=``
token (recorded parameter order) that the DataNode then requires (400 without, as in 09).

Switches: ``safe_mode`` (writes get SafeModeException), ``standby`` (every NameNode call
gets StandbyException), ``denied`` (path prefixes that get AccessControlException),
``delay_s`` (sleep before each answer) and :meth:`WebHdfsServer.fail` (lose or cut the
next answers to one operation). Every request, NameNode and DataNode, is logged in
:attr:`WebHdfsServer.requests`: the count seen by the server, whichever process sent them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import posixpath
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from tests.recordings import DelegationToken, decode_delegation_token, encode_delegation_token

if TYPE_CHECKING:
    from tests.spnego import SpnegoGate

PREFIX = "/webhdfs/v1"
FILE_BLOCK_SIZE = 134217728
DATANODE_MARKER = "namenoderpcaddress"
NAMENODE_RPC = "127.0.0.1:9000"  # as in the recorded redirects
DEFAULT_WEB_USER = "dr.who"
AUTH_COOKIE_LIFETIME_MS = 36000 * 1000  # the recorded cookies expire 10 hours after the answer
JETTY_CHUNK = 32 * 1024  # Jetty's default output buffer: a longer body goes out as several chunks
FAULTS = ("drop", "cut", "short")

_JAVA_CLASS = {
    "AccessControlException": "org.apache.hadoop.security.AccessControlException",
    "FileAlreadyExistsException": "org.apache.hadoop.fs.FileAlreadyExistsException",
    "FileNotFoundException": "java.io.FileNotFoundException",
    "HadoopIllegalArgumentException": "org.apache.hadoop.HadoopIllegalArgumentException",
    "IllegalArgumentException": "java.lang.IllegalArgumentException",
    "IOException": "java.io.IOException",
    "ParentNotDirectoryException": "org.apache.hadoop.fs.ParentNotDirectoryException",
    "PathIsNotEmptyDirectoryException": "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
    "SafeModeException": "org.apache.hadoop.hdfs.server.namenode.SafeModeException",
    "StandbyException": "org.apache.hadoop.ipc.StandbyException",
}
# The WebHDFS documentation's exception -> HTTP status table; other IOExceptions are 403.
_HTTP_STATUS = {"IllegalArgumentException": 400, "HadoopIllegalArgumentException": 400, "SecurityException": 401,
                "FileNotFoundException": 404}
DELEGATION_KIND = "WEBHDFS delegation"
DELEGATION_MAX_MS = 7 * 24 * 3600 * 1000  # the recorded tokens' max date: issue + 7 days


def _now_ms() -> int:
    return int(time.time() * 1000)


def _compact(payload: object) -> str:
    """JSON as Hadoop's Jackson writes it: no spaces, UTF-8 as is."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


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


@dataclass
class Fault:
    """Trouble planned for the next answers to ``op`` (see :meth:`WebHdfsServer.fail`)."""

    op: str
    how: str
    datanode: bool
    times: int | None  # None: every time


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
        return _compact(payload).encode("utf-8")


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(payload: object, status: int = 200) -> Answer:
    """A compact JSON answer (GETFILESTATUS, MKDIRS, RENAME, DELETE, GETHOMEDIRECTORY)."""
    return Answer(status, _compact(payload).encode("utf-8"))


def listing_answer(statuses: list[dict[str, object]]) -> Answer:
    """LISTSTATUS laid out as the NameNode streams it (webhdfs-http-LISTSTATUS.txt)."""
    lines = ",\n".join(_compact(status) for status in statuses)
    return Answer(200, ('{"FileStatuses":{"FileStatus":[\n' + lines + "\n]}}\n").encode("utf-8"))


def boolean_answer(value: bool) -> Answer:
    return json_answer({"boolean": value})


class WebHdfsServer:
    """``with WebHdfsServer() as nn: WebHdfsStorage([nn.url], user="alice")``."""

    def __init__(self, delay_s: float = 0.0, spnego: SpnegoGate | None = None) -> None:
        self.delay_s = delay_s
        self.spnego = spnego
        self.delegation_tokens: list[str] = []  # issued on redirects (Kerberos only)
        self.safe_mode = False
        self.standby = False
        self.denied: set[str] = set()
        self.requests: list[LoggedRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._next_id = 16386
        self._nodes: dict[str, Node] = {"/": Node(True, owner="root", file_id=16385)}
        self._cookie_secret = os.urandom(32)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class(datanode=False))
        self._dn_httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class(datanode=True))
        self._threads = []
        for httpd in (self._httpd, self._dn_httpd):
            httpd.daemon_threads = True
            self._threads.append(threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True))

    def _handler_class(self, datanode: bool) -> type[BaseHTTPRequestHandler]:
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
                verdict = None
                if server.spnego is not None and not datanode:
                    verdict = server.spnego.check(self.command, urlsplit(self.path).path, dict(self.headers),
                                                  tuple(self.client_address[:2]))
                    if not verdict.ok:  # the filter answers before WebHDFS sees the request
                        self.send_response_only(verdict.status, verdict.reason)
                        for name, value in verdict.headers:
                            self.send_header(name, value)
                        self.end_headers()
                        self.wfile.write(verdict.body)
                        return
                answer = server.handle(self.command, self.path, body, datanode=datanode,
                                       auth_user=verdict.user if verdict else None)
                op = dict(parse_qsl(urlsplit(self.path).query)).get("op", "").upper()
                fault = server._take_fault(op, datanode)
                if fault == "cut" and not answer.body:
                    fault = "drop"  # nothing to cut in a bodyless answer (a redirect): lose it whole
                if fault == "drop":  # the operation happened; its answer is lost
                    self.close_connection = True
                    return
                if fault == "short":  # framing says complete, but half the body is missing
                    answer.body = answer.body[: len(answer.body) // 2]
                head, framed = (
                    server._datanode_head(answer) if datanode
                    else server._namenode_head(answer, self._user(), verdict.headers if verdict else ())
                )
                self.send_response_only(answer.status)  # no Server header: the recorded answers have none
                for name, value in head:
                    self.send_header(name, value)
                self.end_headers()
                if fault == "cut":  # the connection breaks in the middle of the body
                    self.wfile.write(framed[: max(1, len(framed) // 2)])
                    self.close_connection = True
                    return
                self.wfile.write(framed)

            def _user(self) -> str | None:
                return dict(parse_qsl(urlsplit(self.path).query)).get("user.name")

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

        return Handler

    # -- wire format -------------------------------------------------------------------

    def _http_date(self) -> str:
        return formatdate(usegmt=True)

    def _auth_cookie(self, user: str) -> str:
        """A ``hadoop.auth`` cookie shaped like the recorded ones (simple auth, signed token)."""
        token = f"u={user}&p={user}&t=simple&e={_now_ms() + AUTH_COOKIE_LIFETIME_MS}"
        signature = base64.b64encode(hmac.new(self._cookie_secret, token.encode(), hashlib.sha256).digest()).decode()
        return f'hadoop.auth="{token}&s={signature}"; Path=/; HttpOnly'

    def _namenode_head(
        self, answer: Answer, user: str | None, auth_headers: Sequence[tuple[str, str]] = ()
    ) -> tuple[list[tuple[str, str]], bytes]:
        """The recorded NameNode header set, in order; a body goes out chunked, a redirect
        with ``Content-Length: 0``. ``auth_headers``: a SPNEGO round's ``WWW-Authenticate``
        and cookie, in the place the secured NameNode put them."""
        date = self._http_date()
        head = [
            ("Date", date),
            ("Cache-Control", "no-cache"),
            ("Expires", date),
            ("Date", date),
            ("Pragma", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-FRAME-OPTIONS", "SAMEORIGIN"),
            ("X-XSS-Protection", "1; mode=block"),
        ]
        if auth_headers:
            head += list(auth_headers)
        elif user and self.spnego is None:  # simple auth: the NameNode signs a token for the user it was told
            head.append(("Set-Cookie", self._auth_cookie(user)))
        head += list(answer.headers.items())
        if answer.content_type:
            head.append(("Content-Type", answer.content_type))
        if not answer.body:
            return head + [("Content-Length", "0")], b""
        chunks = [answer.body[i : i + JETTY_CHUNK] for i in range(0, len(answer.body), JETTY_CHUNK)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
        return head + [("Transfer-Encoding", "chunked")], framed

    def _datanode_head(self, answer: Answer) -> tuple[list[tuple[str, str]], bytes]:
        """The recorded DataNode header set: ``Content-Length`` and ``Connection: close``
        (a 201 Created and a 400 in the order of the secured cluster's kerberos/http/08 and 09)."""
        if answer.status == 201:
            head = list(answer.headers.items()) + [("Content-Length", str(len(answer.body))),
                                                   ("Access-Control-Allow-Origin", "*"), ("Connection", "close")]
            return head, answer.body
        if answer.status == 400:
            head = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(answer.body))),
                    ("Connection", "close")]
            return head, answer.body
        head = [("Access-Control-Allow-Methods", "GET"), ("Access-Control-Allow-Origin", "*")] if answer.status == 200 else []
        head += list(answer.headers.items())
        if answer.content_type:
            head.append(("Content-Type", answer.content_type))
        head += [("Connection", "close"), ("Content-Length", str(len(answer.body)))]
        return head, answer.body

    # -- lifecycle -------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The NameNode's HTTP address."""
        return f"http://127.0.0.1:{self.port}"

    def url_as(self, host: str) -> str:
        """The NameNode's HTTP address naming it ``host`` (``localhost``: the test KDC's HTTP principal)."""
        return f"http://{host}:{self.port}"

    @property
    def datanode_port(self) -> int:
        return self._dn_httpd.server_address[1]

    @property
    def datanode_url(self) -> str:
        return f"http://127.0.0.1:{self.datanode_port}"

    def __enter__(self) -> WebHdfsServer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for httpd in (self._httpd, self._dn_httpd):
            httpd.shutdown()
            httpd.server_close()

    # -- inspection, seeding and faults for tests ----------------------------------------

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

    def fail(self, op: str, how: str = "cut", *, times: int | None = 1, datanode: bool = False) -> None:
        """Spoil the next ``times`` answers (None: all) to ``op`` on the NameNode (or the DataNode).

        ``drop``: the operation is carried out, then the connection closes without an answer.
        ``cut``: the connection closes half-way through the answer (headers sent, body framing
        incomplete). ``short``: half the body is missing but the framing says it is complete
        (what a client sees when a read-until-close body is cut).
        """
        if how not in FAULTS:
            raise ValueError(f"fault {how!r} is not one of {FAULTS}")
        with self._lock:
            self._faults.append(Fault(op.upper(), how, datanode, times))

    def _take_fault(self, op: str, datanode: bool) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault.op == op and fault.datanode == datanode:
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault.how
        return None

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

    def handle(
        self, method: str, raw_path: str, body: bytes, *, datanode: bool = False, auth_user: str | None = None
    ) -> Answer:
        """Answer one HTTP request as the NameNode (or the DataNode); also usable without sockets.
        ``auth_user``: the user SPNEGO authenticated (then ``user.name`` is not looked at)."""
        parts = urlsplit(raw_path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        op = params.get("op", "").upper()
        if not parts.path.startswith(PREFIX):
            path = parts.path
        else:
            path = posixpath.normpath("/" + unquote(parts.path[len(PREFIX) :]).lstrip("/"))
        with self._lock:
            self.requests.append(LoggedRequest(method, op, path, params, len(body), datanode))
        if not parts.path.startswith(PREFIX):
            return Answer(404, f"no WebHDFS resource at {parts.path}\n".encode(), "text/plain")
        user = auth_user or params.get("user.name") or DEFAULT_WEB_USER
        try:
            with self._lock:
                return self._dispatch(method, op, path, params, body, user, datanode)
        except RemoteError as err:
            return Answer(err.status, err.body())

    def _dispatch(
        self, method: str, op: str, path: str, params: dict[str, str], body: bytes, user: str, datanode: bool
    ) -> Answer:
        if datanode:
            if self.spnego is not None:  # the DataNode authenticates by the delegation token alone
                user = self._delegation_owner(params.get("delegation"))
            if method == "PUT" and op == "CREATE":
                return self._datanode_create(path, params, body, user)
            if method == "GET" and op == "OPEN":
                return self._datanode_open(path, params)
        else:
            handler = {
                ("GET", "GETFILESTATUS"): self._getfilestatus,
                ("GET", "LISTSTATUS"): self._liststatus,
                ("GET", "GETCONTENTSUMMARY"): self._getcontentsummary,
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

    def _delegation_owner(self, token: str | None) -> str:
        if not token:
            raise RemoteError("HadoopIllegalArgumentException", "Invalid argument, newValue is null")
        if token not in self.delegation_tokens:
            raise RemoteError("SecurityException", "Failed to obtain user group information: token not issued here")
        return decode_delegation_token(token).owner

    def _issue_delegation_token(self, user: str) -> str:
        """A fresh ``WEBHDFS delegation`` token for ``user``, as the NameNode puts in every
        redirect (sequence number + 1 each time)."""
        now = _now_ms()
        token = encode_delegation_token(DelegationToken(
            owner=user, renewer=user, real_user="", issue_ms=now, max_ms=now + DELEGATION_MAX_MS,
            sequence=len(self.delegation_tokens) + 1, master_key_id=2,
            password=hmac.new(self._cookie_secret, f"{user}{now}".encode(), hashlib.sha1).digest(),
            kind=DELEGATION_KIND, service=NAMENODE_RPC,
        ))
        self.delegation_tokens.append(token)
        return token

    def _datanode_location(self, path: str, params: dict[str, str], extra: dict[str, str], user: str = "") -> str:
        """The redirect target on the DataNode, query in the recorded order (op, user.name or
        with Kerberos delegation, namenoderpcaddress, then the operation's own parameters)."""
        query = {"op": params.get("op", "").upper()}
        if self.spnego is not None:
            query["delegation"] = self._issue_delegation_token(user)
        elif "user.name" in params:
            query["user.name"] = params["user.name"]
        query[DATANODE_MARKER] = NAMENODE_RPC
        query.update(extra)
        text = "&".join(f"{quote(k, safe='.')}={quote(v, safe=':')}" for k, v in query.items())
        return f"{self.datanode_url}{PREFIX}{quote(path, safe='/')}?{text}"

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
        return listing_answer(statuses)

    def _getcontentsummary(self, path: str, params: dict[str, str], user: str) -> Answer:
        """The WebHDFS documentation's ContentSummary (keys as it lists them): the folder
        itself counts among ``directoryCount``; a file is one file and no folder."""
        self._check_access(path, user, "READ_EXECUTE")
        self._check_traverse(path)
        if path not in self._nodes:
            raise RemoteError("FileNotFoundException", f"File does not exist: {path}")
        nodes = [self._nodes[p] for p in self._subtree(path)]
        length = sum(len(n.data) for n in nodes if not n.is_dir)
        summary = {
            "directoryCount": sum(1 for n in nodes if n.is_dir),
            "ecPolicy": "Replicated",
            "fileCount": sum(1 for n in nodes if not n.is_dir),
            "length": length,
            "quota": -1,
            "spaceConsumed": length,
            "spaceQuota": -1,
            "typeQuota": {},
        }
        return json_answer({"ContentSummary": summary})

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
        extra = {"length": params["length"]} if params.get("length") else {}
        extra["offset"] = params.get("offset") or "0"
        location = self._datanode_location(path, params, extra, user)
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
        location = self._datanode_location(path, params, extra, user)
        return Answer(307, b"", "application/octet-stream", {"Location": location})

    def _datanode_create(self, path: str, params: dict[str, str], body: bytes, user: str) -> Answer:
        self._create_checks(path, params, user)
        self._make_parents(path, user)
        self._nodes[path] = self._new(False, data=body, owner=user)
        self._touch_parent(path)
        # the WebHDFS documentation's answer: 201 Created, Location: webhdfs://<HOST>:<PORT>/<PATH>
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
