"""HDFS storage for the controller, spoken over the WebHDFS REST API.

The controller needs a handful of metadata operations (is it there, list one folder,
read or write a small file, move, delete), so it talks HTTP to the NameNode through
the ``hdfs`` package instead of starting a JVM. Every operation is one HTTP request
except where WebHDFS itself needs more: a read or a write follows one redirect to a
DataNode, and a rename first checks that its destination is free.

Settings come from the ``[webhdfs]`` section of luigi.cfg (:class:`webhdfs`); NameNode
addresses default to ``HADOOP_CONF_DIR``'s ``hdfs-site.xml`` (see
:func:`namenode_http_addresses`). Every failure goes through :func:`translate_error`
and ends as a typed :class:`~pipeline.errors.StorageError` with a one-line message.

Processes: Luigi forks a process per running task (``--workers`` > 1) after the
controller has planned over a pooled keep-alive connection. A socket shared by two
processes mixes their answers, so HTTP state (session, pool, cookies, locks) belongs to
the process that created it: :class:`WebHdfsStorage` builds a fresh session in any
other process, and the cache behind :func:`webhdfs_storage` starts empty after fork.

Transport trouble: an idempotent read (GETFILESTATUS, LISTSTATUS, OPEN) whose answer was
lost or cut short, or that found no active NameNode, is sent again a bounded number of
times (``[webhdfs] read_retries``); a write is never repeated blindly, since HDFS may
have carried it out before the connection broke.
"""

from __future__ import annotations

import copy
import os
import posixpath
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import luigi
import requests
import urllib3
from hdfs import InsecureClient
from hdfs.client import Client
from hdfs.util import HdfsError

from pipeline.cluster import kerberos
from pipeline.cluster.hadoop_conf import hadoop_user, load_site
from pipeline.errors import ConfigError, StorageError, StoragePermissionDenied, StorageUnavailable, one_line
from pipeline.internals import hdfs_client_urls, hdfs_operation
from pipeline.storage.base import ContentSummary, Entry, Storage
from pipeline.storage.locations import Location

DEFAULT_HTTP_PORT = 9870
DEFAULT_HTTPS_PORT = 9871
AUTH_MODES = ("insecure", "kerberos")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")
_MAX_DETAIL = 300
DEFAULT_READ_RETRIES = 2
DEFAULT_RETRY_BACKOFF_S = 0.5  # first pause; doubled for each further try
_MAX_BACKOFF_S = 8.0
_T = TypeVar("_T")


class webhdfs(luigi.Config):  # noqa: N801 - luigi names the config section after the class
    """The ``[webhdfs]`` section of luigi.cfg: how the controller reaches HDFS.

    Write option names with underscores (``namenode_url``); luigi 3.8 also reads the
    dashed spelling (``namenode-url``) from ``.cfg`` files but warns that it is deprecated.
    """

    namenode_url = luigi.Parameter(
        default="",
        description="NameNode HTTP address(es) for hdfs:// locations, e.g. http://nn:9870; comma-separated for "
        "HA (tried in order). Empty: read hdfs-site.xml from HADOOP_CONF_DIR. webhdfs://host:port locations "
        "always use their own host:port.",
    )
    user = luigi.Parameter(
        default="",
        description="HDFS user for auth=insecure (sent as user.name). Empty: $HADOOP_USER_NAME, else the login user.",
    )
    auth = luigi.ChoiceParameter(
        default="insecure",
        choices=AUTH_MODES,
        var_type=str,
        description="insecure (user.name, clusters without Kerberos) or kerberos (SPNEGO with the ticket from "
        "kinit, or from [yarn] principal and keytab; needs the kerberos extra).",
    )
    timeout = luigi.FloatParameter(
        default=10.0,
        description="Seconds to wait for each HTTP connection and each answer before giving up.",
    )
    read_retries = luigi.IntParameter(
        default=DEFAULT_READ_RETRIES,
        description="How many more times a read (GETFILESTATUS, LISTSTATUS, OPEN) is sent when its answer was lost "
        "or cut short or no NameNode was active (e.g. during an HA failover), pausing 0.5 s, 1 s, 2 s, ... "
        "between tries. Writes are never repeated. 0: no second try.",
    )


# --------------------------------------------------------------------------------------
# NameNode addresses (pure)


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _split_host_port(authority: str, what: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) as ``(host, port)``; host keeps its brackets."""
    authority = authority.strip()
    if not authority:
        return "", None
    try:
        parts = urlsplit(f"//{authority}")
        port = parts.port
    except ValueError:
        raise ConfigError(f"{what} {authority!r} is not host:port: fix it") from None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host, port


def _http_scheme(hdfs_site: Mapping[str, str]) -> tuple[str, str, int]:
    """``(scheme, address key kind, default port)`` for the cluster's ``dfs.http.policy``."""
    if hdfs_site.get("dfs.http.policy", "HTTP_ONLY").strip().upper() == "HTTPS_ONLY":
        return "https", "https-address", DEFAULT_HTTPS_PORT
    return "http", "http-address", DEFAULT_HTTP_PORT


def namenode_http_addresses(hdfs_site: Mapping[str, str], authority: str) -> list[str]:
    """HTTP(S) base URLs of the NameNode(s) serving ``hdfs://<authority>/``, in failover order.

    * ``authority`` names an HA nameservice (listed in ``dfs.nameservices``): one URL per
      ``dfs.ha.namenodes.<ns>`` entry, from ``dfs.namenode.http-address.<ns>.<nn>``
      (``https-address`` when ``dfs.http.policy`` is ``HTTPS_ONLY``).
    * ``authority`` is ``host[:rpc port]``: that host with the port of
      ``dfs.namenode.http-address`` (or ``https-address``), else 9870 (9871 for HTTPS).
      The host always comes from the URI so a location never silently reaches another
      cluster named in hdfs-site.xml.
    * ``authority`` is empty (``hdfs:///path``): the only nameservice, else the host of
      ``dfs.namenode.http-address`` when it names one.
    """
    scheme, kind, default_port = _http_scheme(hdfs_site)
    nameservices = _csv(hdfs_site.get("dfs.nameservices"))
    host, _rpc_port = _split_host_port(authority, "HDFS authority")
    if not host:
        if len(nameservices) == 1:
            host = nameservices[0]
        else:
            conf_host, conf_port = _split_host_port(hdfs_site.get(f"dfs.namenode.{kind}", ""), f"dfs.namenode.{kind}")
            if conf_host in _WILDCARD_HOSTS:
                raise ConfigError(
                    "hdfs:/// names no NameNode and hdfs-site.xml names no single one: write hdfs://<namenode>/path, "
                    "set fs.defaultFS in core-site.xml, or set [webhdfs] namenode_url"
                )
            return [f"{scheme}://{conf_host}:{conf_port or default_port}"]
    if host in nameservices:
        return _nameservice_addresses(hdfs_site, host, scheme, kind, default_port)
    _conf_host, conf_port = _split_host_port(hdfs_site.get(f"dfs.namenode.{kind}", ""), f"dfs.namenode.{kind}")
    return [f"{scheme}://{host}:{conf_port or default_port}"]


def _nameservice_addresses(
    hdfs_site: Mapping[str, str], nameservice: str, scheme: str, kind: str, default_port: int
) -> list[str]:
    nn_ids = _csv(hdfs_site.get(f"dfs.ha.namenodes.{nameservice}"))
    keys = [f"dfs.namenode.{kind}.{nameservice}.{nn}" for nn in nn_ids] or [f"dfs.namenode.{kind}.{nameservice}"]
    urls = []
    for key in keys:
        host, port = _split_host_port(hdfs_site.get(key, ""), key)
        if host in _WILDCARD_HOSTS:
            raise ConfigError(
                f"hdfs-site.xml gives no usable {key} for nameservice {nameservice!r}: "
                f"add that NameNode's HTTP address or set [webhdfs] namenode_url"
            )
        urls.append(f"{scheme}://{host}:{port or default_port}")
    return urls


def parse_namenode_urls(value: str) -> list[str]:
    """``[webhdfs] namenode_url`` as base URLs: comma-separated, ``http://`` assumed when absent."""
    urls = []
    for item in _csv(value.replace(";", ",")):
        parts = urlsplit(item if "://" in item else f"http://{item}")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError:
            raise ConfigError(f"[webhdfs] namenode_url entry {item!r} has a bad port: use http://host:9870") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
            raise ConfigError(
                f"[webhdfs] namenode_url entry {item!r} is not an HTTP address: use http(s)://host:port, "
                f"without a path (e.g. http://namenode:9870)"
            )
        urls.append(f"{parts.scheme}://{parts.netloc}")
    if not urls:
        raise ConfigError("[webhdfs] namenode_url is empty: give http://host:9870 or leave it unset")
    return urls


def webhdfs_http_address(authority: str) -> str:
    """Base URL for a ``webhdfs://host[:port]/`` location: the authority is the HTTP address."""
    host, port = _split_host_port(authority, "webhdfs:// authority")
    if not host:
        raise ConfigError("webhdfs:// location names no host: write webhdfs://<namenode>:<http port>/path")
    return f"http://{host}:{port or DEFAULT_HTTP_PORT}"


def default_fs_authority(core_site: Mapping[str, str]) -> str:
    """Authority of ``fs.defaultFS`` when it is an ``hdfs://`` URI, else empty."""
    parts = urlsplit(core_site.get("fs.defaultFS", "").strip())
    return parts.netloc if parts.scheme == "hdfs" else ""


def namenode_urls_for(loc: Location, namenode_url: str = "", conf_dir: str | None = None) -> list[str]:
    """NameNode base URLs for ``loc``: its own authority for ``webhdfs://``, else
    ``namenode_url`` when set, else ``hdfs-site.xml`` (and ``fs.defaultFS`` for ``hdfs:///``)."""
    if loc.scheme == "webhdfs":
        return [webhdfs_http_address(loc.authority)]
    if loc.scheme != "hdfs":
        raise ConfigError(f"{loc} is not an HDFS location: use hdfs:// or webhdfs://")
    if namenode_url.strip():
        return parse_namenode_urls(namenode_url)
    authority = loc.authority or default_fs_authority(load_site("core-site.xml", conf_dir))
    return namenode_http_addresses(load_site("hdfs-site.xml", conf_dir), authority)




# --------------------------------------------------------------------------------------
# Error translation


@dataclass(frozen=True)
class RemoteError:
    """A WebHDFS error answer: HTTP status plus the ``RemoteException`` fields (empty when
    the body was not a WebHDFS error, e.g. an HTML page from something else)."""

    status: int | None
    exception: str
    message: str
    url: str = ""

    @classmethod
    def from_response(cls, res: requests.Response) -> RemoteError:
        try:
            body = res.json()["RemoteException"]
            return cls(res.status_code, str(body.get("exception", "")), str(body.get("message", "")), res.url)
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(res.status_code, "", "", res.url)


def _short(text: str) -> str:
    return one_line(text, _MAX_DETAIL)


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def _connection_reason(exc: BaseException) -> str:
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    if found:
        return found.group(1).strip()
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, urllib3.exceptions.ProtocolError) and len(inner.args) > 1:
        return type(inner.args[1]).__name__  # e.g. RemoteDisconnected, IncompleteRead
    return type(exc).__name__


class TransientStorageError(StorageUnavailable):
    """HDFS's answer was lost or cut short, or no NameNode was active: the same request may
    succeed if sent again. Reads are sent again (``[webhdfs] read_retries``); writes are
    reported, never repeated blindly."""


def _sent_before_failing(exc: requests.exceptions.RequestException) -> bool:
    """Whether the request reached the server before the connection broke (so a write may
    have happened), as opposed to a connection that never opened."""
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return True
    inner = exc.args[0] if exc.args else None
    return isinstance(inner, urllib3.exceptions.ProtocolError)


def translate_error(
    error: BaseException | requests.Response | RemoteError,
    *,
    action: str,
    target: str,
    namenodes: Sequence[str],
    user: str = "",
    timeout: float | None = None,
    write: bool = False,
) -> StorageError:
    """The one place where HDFS failures become typed errors with a one-line fix.

    ``error`` is a ``requests`` exception, an :class:`hdfs.util.HdfsError`, an error
    :class:`requests.Response`, a :class:`RemoteError`, or the exception met while
    reading an unexpected answer; ``action`` says what was attempted ("list", "write",
    ...) and ``target`` on what (a URI); ``write`` whether it changes HDFS (the advice
    after a broken connection differs). Failures worth another try of the same request
    are :class:`TransientStorageError`.
    """
    nn_text = ", ".join(namenodes)
    # requests' JSONDecodeError is also a RequestException: it is an unreadable answer, handled last
    if isinstance(error, requests.exceptions.RequestException) and not isinstance(error, ValueError):
        return _translate_transport(error, action=action, target=target, namenodes=namenodes, timeout=timeout,
                                    write=write)
    remote = _as_remote_error(error)
    if remote is None:  # an answer this client cannot read
        return StorageError(
            f"unexpected answer from HDFS ({nn_text}) when asked to {action} {target} ({type(error).__name__}: "
            f"{_short(str(error))}): check that [webhdfs] namenode_url or hdfs-site.xml names a WebHDFS NameNode"
        )
    return _translate_remote(remote, action=action, target=target, nn_text=nn_text, user=user)


def _translate_transport(error: requests.exceptions.RequestException, *, action: str, target: str,
                         namenodes: Sequence[str], timeout: float | None, write: bool) -> StorageError:
    """A request that got no (whole) answer: a timeout, a refused or broken connection."""
    nn_text = ", ".join(namenodes)
    url = error.request.url if error.request is not None and error.request.url else ""
    where = f"NameNode {nn_text}" if not url or _base(url) in namenodes else f"DataNode {_base(url)}"
    if isinstance(error, requests.exceptions.Timeout):
        # not transient: waiting [webhdfs] timeout again would only double the wait
        limit = f"within {timeout:g}s " if timeout else ""
        return StorageUnavailable(
            f"HDFS {where} did not answer {limit}when asked to {action} {target}: check that it is up and "
            f"reachable from this machine, or raise [webhdfs] timeout"
        )
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        if _sent_before_failing(error):
            then = (
                f"HDFS may have done it anyway: check {target} before trying again"
                if write
                else "retry; if it keeps happening, check the network path to HDFS"
            )
            return TransientStorageError(
                f"the connection to HDFS {where} broke before its whole answer to {action} {target} arrived "
                f"({_connection_reason(error)}): {then}"
            )
        return TransientStorageError(
            f"cannot reach HDFS {where} to {action} {target} ({_connection_reason(error)}): check that HDFS is "
            f"running and that [webhdfs] namenode_url or HADOOP_CONF_DIR/hdfs-site.xml gives the NameNode's "
            f"HTTP address (default port {DEFAULT_HTTP_PORT})"
        )
    return StorageError(
        f"HTTP request to HDFS failed to {action} {target} ({_short(repr(error))}): retry or "
        f"check the NameNode address in [webhdfs] namenode_url"
    )


def _as_remote_error(error: BaseException | requests.Response | RemoteError) -> RemoteError | None:
    """HDFS's refusal as a :class:`RemoteError`; ``None`` for anything else."""
    if isinstance(error, requests.Response):
        return RemoteError.from_response(error)
    if isinstance(error, HdfsError):
        message = error.message.decode("utf-8", "replace") if isinstance(error.message, bytes) else error.message
        if error.exception is None and str(message).startswith("Authentication failure"):
            return RemoteError(401, "", str(message))
        return RemoteError(None, error.exception or "", str(message))
    return error if isinstance(error, RemoteError) else None


def _translate_remote(err: RemoteError, *, action: str, target: str, nn_text: str, user: str) -> StorageError:
    """HDFS's refusal (its Java exception's name and message) as a typed error."""
    exc, msg = err.exception, _short(err.message)
    detail = f" ({msg})" if msg else ""
    found = (_refused_now(exc, msg, err.status, action, target, nn_text, user)
             or _path_problem(exc, msg, action, target))
    if found is not None:
        return found
    if exc:
        status = f", HTTP {err.status}" if err.status else ""
        return StorageError(
            f"HDFS refused to {action} {target}: {exc}{status}{detail}: fix the cause above or see the NameNode log"
        )
    return StorageError(
        f"{_base(err.url) or nn_text} answered HTTP {err.status} without a WebHDFS error when asked to {action} "
        f"{target}: check that [webhdfs] namenode_url or hdfs-site.xml gives the NameNode's HTTP address and that "
        f"WebHDFS is enabled (dfs.webhdfs.enabled)"
    )


def _refused_now(exc: str, msg: str, status: int | None, action: str, target: str, nn_text: str,
                 user: str) -> StorageError | None:
    """HDFS cannot serve now (standby, safe mode, retry later) or not this user."""
    detail = f" ({msg})" if msg else ""
    if exc == "StandbyException":
        return TransientStorageError(
            f"no active HDFS NameNode among {nn_text} to {action} {target} (StandbyException): wait for the HA "
            f"failover to finish, or list every NameNode of the nameservice in [webhdfs] namenode_url"
        )
    if exc == "SafeModeException" or (exc == "RetriableException" and "safe mode" in msg.lower()):
        return StorageUnavailable(
            f"HDFS is in safe mode and refused to {action} {target}: wait until it leaves safe mode "
            f"('hdfs dfsadmin -safemode get'), or ask the cluster admin"
        )
    if exc == "RetriableException":
        return TransientStorageError(f"HDFS asked to retry later when asked to {action} {target}{detail}: retry shortly")
    if status == 401 or exc == "SecurityException":
        return StoragePermissionDenied(
            f"HDFS refused to authenticate the request to {action} {target}{detail}: with [webhdfs] auth = kerberos "
            f"run kinit first; without Kerberos set [webhdfs] auth = insecure and [webhdfs] user"
        )
    if exc in ("AccessControlException", "AuthorizationException"):
        who = f" as HDFS user {user!r}" if user else ""
        return StoragePermissionDenied(
            f"permission denied to {action} {target}{who}{detail}: grant access (hdfs dfs -chmod / -chown / "
            f"-setfacl) or act as another user via [webhdfs] user or HADOOP_USER_NAME"
        )
    return None


def _path_problem(exc: str, msg: str, action: str, target: str) -> StorageError | None:
    """The path is not what the request needs: missing, a file, a folder, already there."""
    detail = f" ({msg})" if msg else ""
    if exc == "ParentNotDirectoryException" or msg.startswith("Parent path is not a directory"):
        return StorageError(
            f"cannot {action} {target}: a folder on its path is a file{detail}: remove that file or choose another path"
        )
    if exc == "FileAlreadyExistsException" and msg.startswith("Path is not a directory"):
        return StorageError(f"cannot {action} {target}: it is a file, not a folder: remove it or choose another path")
    if exc == "FileAlreadyExistsException" and "as a directory" in msg:
        return StorageError(f"cannot {action} {target}: it is a folder, not a file: remove it or choose another path")
    if exc == "FileAlreadyExistsException":
        return StorageError(f"cannot {action} {target}: it already exists{detail}: remove it or choose another path")
    if exc == "FileNotFoundException" and msg.startswith("Path is not a file"):
        return StorageError(f"cannot {action} {target}: it is a folder, not a file: point the path at a file")
    if exc == "FileNotFoundException":
        return StorageError(f"cannot {action} {target}: it does not exist{detail}: check the path")
    return None


# --------------------------------------------------------------------------------------
# The storage


class _CountingSession(requests.Session):
    """A ``requests`` session that counts every HTTP request it sends (redirect hops and
    failover attempts included). Like any session, it belongs to the process that made it."""

    def __init__(self) -> None:
        super().__init__()
        self.request_count = 0
        self._count_lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with self._count_lock:
            self.request_count += 1
        return super().send(request, **kwargs)


@dataclass
class _Connection:
    """One process's HTTP state: the session (connection pool, cookies, locks), the
    ``hdfs`` client that sends through it and, with Kerberos, the last answer each thread
    got refused (401/403), for :func:`pipeline.cluster.kerberos.refusal` to explain."""

    pid: int
    session: _CountingSession
    client: Client
    refused: threading.local = field(default_factory=threading.local)

    def remember_refusal(self, response: requests.Response, **_kwargs: Any) -> requests.Response:
        """Session response hook: runs after the SPNEGO hook, so it sees the final answer.
        (The ``hdfs`` client turns a 401 into an error without the response.)"""
        if response.status_code in (401, 403):
            self.refused.response = response
        return response


_MISSING = ("FileNotFoundException", "ParentNotDirectoryException")
_WRITES = ("write", "create folder", "move", "remove")


class _WebHdfsRequests:
    """The requests half of :class:`WebHdfsStorage`: settings, the calling process's HTTP
    state, one call with its errors translated (Kerberos refusals explained), reads retried.

    ``namenode_urls`` are tried in order (HA): the client moves to the next one on a
    connection error or a ``StandbyException`` and keeps using the one that answered.
    A read whose answer was lost or cut short, or that found no active NameNode, is sent
    again up to ``read_retries`` times, pausing ``retry_backoff`` seconds, then twice that...

    Safe to hold across ``fork()``: the HTTP state is per process and is built anew on
    first use in a process other than the one that built it. :attr:`request_count`
    counts the requests of the calling process only.
    """

    def __init__(
        self,
        namenode_urls: Sequence[str],
        *,
        user: str | None = None,
        auth: str = "insecure",
        timeout: float = 10.0,
        read_retries: int = DEFAULT_READ_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF_S,
        principal: str = "",
        keytab: str = "",
    ) -> None:
        if not namenode_urls:
            raise ConfigError("no NameNode address: set [webhdfs] namenode_url or HADOOP_CONF_DIR")
        if not timeout or timeout <= 0:
            raise ConfigError(f"[webhdfs] timeout must be a positive number of seconds, not {timeout!r}")
        if isinstance(read_retries, bool) or not isinstance(read_retries, int) or read_retries < 0:
            raise ConfigError(f"[webhdfs] read_retries must be a whole number, 0 or more, not {read_retries!r}")
        if retry_backoff < 0:
            raise ConfigError(f"the pause between WebHDFS retries must be 0 s or more, not {retry_backoff!r}")
        self.namenode_urls = tuple(url.rstrip("/") for url in namenode_urls)
        self.timeout = float(timeout)
        self.auth = auth
        self.read_retries = read_retries
        self.retry_backoff = float(retry_backoff)
        self.principal = principal
        self._keytab = keytab  # never in repr() or a message
        if auth == "insecure":
            self.user = user or hadoop_user()
        elif auth == "kerberos":
            self.user = user or ""
        else:
            raise ConfigError(f"[webhdfs] auth = {auth!r} is not one of {', '.join(AUTH_MODES)}: fix luigi.cfg")
        self._connection: _Connection | None = self._connect(self.namenode_urls)

    def __repr__(self) -> str:
        who = f", principal={self.principal!r}" if self.principal else ""
        return f"WebHdfsStorage({list(self.namenode_urls)!r}, auth={self.auth!r}, user={self.user!r}{who})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (spawn or forkserver start methods) without HTTP state: it is rebuilt
        in the process that unpickles it."""
        state = self.__dict__.copy()
        state["_connection"] = None
        return state

    # -- per-process HTTP state ----------------------------------------------------------

    def _connect(self, urls: Sequence[str]) -> _Connection:
        session = _CountingSession()
        url = ";".join(urls)
        if self.auth == "kerberos":
            # SPNEGO on a plain client: no user.name; the cookie jar keeps hadoop.auth
            session.auth = kerberos.spnego_auth(self.principal, self._keytab)
            client: Client = Client(url, timeout=self.timeout, session=session)
        else:
            client = InsecureClient(url, user=self.user, timeout=self.timeout, session=session)
        conn = _Connection(os.getpid(), session, client)
        if self.auth == "kerberos":
            session.hooks["response"].append(conn.remember_refusal)
        return conn

    @property
    def _here(self) -> _Connection:
        """The calling process's session and client, built on its first request."""
        conn = self._connection
        if conn is None or conn.pid != os.getpid():
            # Inherited across fork(): the pooled sockets are also the parent's (and the
            # siblings'), so answers would go to whichever process reads first. Never send
            # on them, close or shut them down: only this process's references go. The
            # NameNode order (the active one first) is plain data and carries over. Two
            # threads racing here each build one; the loser's requests just go uncounted.
            urls = hdfs_client_urls(conn.client) if conn is not None else self.namenode_urls
            conn = self._connection = self._connect(urls)
        return conn

    @property
    def _session(self) -> _CountingSession:
        return self._here.session

    @property
    def request_count(self) -> int:
        """HTTP requests the calling process sent through this storage (NameNode and
        DataNode; retries and failover attempts included). Per process: a forked child
        counts from zero and its requests never show here; count at the server to see
        every process's."""
        conn = self._connection
        return conn.session.request_count if conn is not None and conn.pid == os.getpid() else 0

    def for_thread(self) -> Any:
        """A storage with its own HTTP session (a requests session is not for two threads)."""
        clone = copy.copy(self)  # every setting, the Kerberos login included
        clone._connection = None  # built on its first request, in the thread that uses it
        return clone

    # -- plumbing --------------------------------------------------------------------

    def _error(self, error: Any, action: str, target: str) -> StorageError:
        return translate_error(
            error,
            action=action,
            target=target,
            namenodes=self.namenode_urls,
            user=self.user,
            timeout=self.timeout,
            write=action in _WRITES,
        )

    def _retrying(self, read: Callable[[], _T]) -> _T:
        """Run an idempotent read; when it failed on the way (:class:`TransientStorageError`),
        pause and send it again, ``read_retries`` more times at most. Never used for writes:
        HDFS may have done a write whose answer was lost."""
        attempt = 0
        while True:
            try:
                return read()
            except TransientStorageError as exc:
                if attempt >= self.read_retries:
                    if not attempt:
                        raise
                    raise TransientStorageError(f"after {attempt + 1} tries: {exc}") from exc
            time.sleep(min(self.retry_backoff * 2**attempt, _MAX_BACKOFF_S))
            attempt += 1

    def _call(self, operation: str, loc: Location, action: str, target: str | None = None,
              **params: Any) -> requests.Response:
        """One WebHDFS ``operation`` (``get_file_status``, ``open``, ...) through the ``hdfs``
        client (its HA failover included). Answers, error answers too, come back; transport
        failures are raised translated."""
        target = target or loc.uri()
        conn = self._here
        conn.refused.response = None
        try:
            res = hdfs_operation(conn.client, operation)(loc.path, strict=False, **params)
        # KeyError/TypeError: hdfs' error parser met a JSON error body that is no RemoteException
        except (requests.exceptions.RequestException, HdfsError, KeyError, TypeError) as exc:
            self._raise_kerberos_refusal(conn, action, target)
            raise self._error(exc, action, target) from exc
        self._raise_kerberos_refusal(conn, action, target)
        return res

    def _raise_kerberos_refusal(self, conn: _Connection, action: str, target: str) -> None:
        """With Kerberos, a 401 or a GSSAPI 403 in this call is explained in one line: no
        ticket, expired, clock skew, no principal for the host name used..."""
        refused = getattr(conn.refused, "response", None)
        if self.auth != "kerberos" or refused is None:
            return
        problem = kerberos.refusal(refused, conn.session.auth)
        if problem is not None:
            raise StoragePermissionDenied(f"HDFS refused to {action} {target}: {problem}") from problem

    def _json(self, res: requests.Response, key: str, action: str, loc: Location) -> Any:
        try:
            return res.json()[key]
        except ValueError as exc:
            if res.ok and "json" in res.headers.get("Content-Type", ""):
                # JSON that does not parse under a JSON success header was cut short (or
                # mixed up) on its way: worth another try, and never reported as bad data
                raise TransientStorageError(
                    f"HDFS's answer to {action} {loc.uri()} arrived incomplete ({_short(str(exc))}): retry; "
                    f"if it keeps happening, check the network path to HDFS"
                ) from exc
            raise self._error(exc, action, loc.uri()) from exc
        except (KeyError, TypeError) as exc:
            raise self._error(exc, action, loc.uri()) from exc

    def _status(self, loc: Location, action: str = "check") -> dict | None:
        """One GETFILESTATUS (not retried here: callers retry whole reads)."""
        res = self._call("get_file_status", loc, action)
        if res.ok:
            return self._json(res, "FileStatus", action, loc)
        remote = RemoteError.from_response(res)
        if remote.exception in _MISSING:
            return None
        raise self._error(remote, action, loc.uri())

    def _open_bytes(self, loc: Location, **params: Any) -> bytes:
        """One OPEN (``offset``/``length`` for a range), its body, errors translated."""
        res = self._call("open", loc, "read", **params)
        try:
            if not res.ok:
                raise self._error(res, "read", loc.uri())
            return res.content
        except requests.exceptions.RequestException as exc:
            raise self._error(exc, "read", loc.uri()) from exc
        finally:
            res.close()

    def _create(self, loc: Location, data: Any) -> None:
        res = self._call("create", loc, "write", overwrite="true")
        if not res.ok:
            raise self._error(res, "write", loc.uri())
        datanode_url = res.headers.get("Location")
        if res.status_code not in (307, 302, 303) or not datanode_url:
            problem = ValueError(f"CREATE answered HTTP {res.status_code} without a redirect to a DataNode")
            raise self._error(problem, "write", loc.uri())
        try:
            put = self._session.request(
                "PUT",
                datanode_url,
                data=data,
                timeout=self.timeout,
                headers={"content-type": "application/octet-stream"},
            )
        except requests.exceptions.RequestException as exc:
            raise self._error(exc, "write", loc.uri()) from exc
        if not put.ok:
            raise self._error(put, "write", loc.uri())


class WebHdfsStorage(_WebHdfsRequests, Storage):
    """HDFS through WebHDFS, built on the ``hdfs`` package's clients (the requests, their
    failover, retries and errors: :class:`_WebHdfsRequests`)."""

    # -- Storage: reads (retried) ------------------------------------------------------

    def exists(self, loc: Location) -> bool:
        """One GETFILESTATUS; a missing path (or one under a file) is ``False``."""
        return self._retrying(lambda: self._status(loc)) is not None

    def modified(self, loc: Location) -> float | None:
        """One GETFILESTATUS: its ``modificationTime`` in seconds."""
        status = self._retrying(lambda: self._status(loc))
        return None if status is None else int(status.get("modificationTime") or 0) / 1000.0

    def content_summary(self, loc: Location) -> ContentSummary | None:
        """GETFILESTATUS (the modification time), then GETCONTENTSUMMARY (length, file and
        folder counts of the whole tree, counted by the NameNode): two requests whatever
        the size of the tree."""
        return self._retrying(lambda: self._summary(loc))

    def _summary(self, loc: Location) -> ContentSummary | None:
        status = self._status(loc, "read")
        if status is None:
            return None
        res = self._call("get_content_summary", loc, "read")
        if not res.ok:
            remote = RemoteError.from_response(res)
            if remote.exception in _MISSING:  # removed between the two requests
                return None
            raise self._error(remote, "read", loc.uri())
        summary = self._json(res, "ContentSummary", "read", loc)
        try:
            return ContentSummary(length=int(summary["length"]), files=int(summary["fileCount"]),
                                  folders=int(summary["directoryCount"]),
                                  modified=int(status.get("modificationTime") or 0) / 1000.0)
        except (KeyError, TypeError, ValueError) as exc:
            raise self._error(exc, "read", loc.uri()) from exc

    def list_dir(self, loc: Location) -> list[Entry] | None:
        """One LISTSTATUS."""
        return self._retrying(lambda: self._list(loc))

    def _list(self, loc: Location) -> list[Entry] | None:
        res = self._call("list_status", loc, "list")
        if not res.ok:
            remote = RemoteError.from_response(res)
            if remote.exception == "FileNotFoundException":
                return None
            raise self._error(remote, "list", loc.uri())
        statuses = self._json(res, "FileStatuses", "list", loc)
        try:
            items = statuses["FileStatus"]
            if len(items) == 1 and items[0]["pathSuffix"] == "":
                raise StorageError(f"{loc.uri()} is a file, not a folder: point the path at a folder")
            return [Entry(item["pathSuffix"], item["type"] == "DIRECTORY", item.get("length")) for item in items]
        except (KeyError, TypeError) as exc:
            raise self._error(exc, "list", loc.uri()) from exc

    def read_bytes(self, loc: Location) -> bytes:
        """OPEN, following the redirect to a DataNode. The body's own framing (length or
        chunks) proves it complete; a cut one is a transport error, read again."""
        return self._retrying(lambda: self._open_bytes(loc))

    def read_tail(self, loc: Location, nbytes: int) -> bytes:
        """GETFILESTATUS for the length, then one ranged OPEN: a Parquet footer costs
        two requests and a few kilobytes, not the whole file. Exactly the bytes asked for
        come back; fewer or more is a transport error (read again), never short data."""
        return self._retrying(lambda: self._tail(loc, nbytes))

    def _tail(self, loc: Location, nbytes: int) -> bytes:
        status = self._status(loc, "read")
        if status is None:
            raise StorageError(f"cannot read {loc.uri()}: it does not exist: check the path")
        if status.get("type") == "DIRECTORY":
            raise StorageError(f"cannot read {loc.uri()}: it is a folder, not a file: point the path at a file")
        size = int(status.get("length") or 0)
        offset = max(0, size - nbytes)
        if offset == size:
            return b""
        data = self._open_bytes(loc, offset=offset, length=size - offset)
        if len(data) != size - offset:
            raise TransientStorageError(
                f"HDFS sent {len(data)} bytes of {loc.uri()} where {size - offset} (from offset {offset}) were asked "
                f"for: the answer was cut short or mixed up, or the file changed while being read; retry"
            )
        return data

    # -- Storage: writes (never repeated) ------------------------------------------------

    def write_bytes(self, loc: Location, data: bytes) -> None:
        """CREATE (overwrite) in WebHDFS's two steps: the NameNode redirects, the DataNode takes the data.
        HDFS creates missing parent folders itself."""
        self._create(loc, bytes(data))

    def write_file(self, loc: Location, local_path: str) -> None:
        """CREATE from a local file, streamed to the DataNode (never whole in memory)."""
        with open(local_path, "rb") as fh:
            self._create(loc, fh)

    def makedirs(self, loc: Location) -> None:
        """One MKDIRS (creates parents; fine if the folder exists)."""
        res = self._call("mkdirs", loc, "create folder")
        if not res.ok:
            raise self._error(res, "create folder", loc.uri())
        if self._json(res, "boolean", "create folder", loc) is not True:
            raise StorageError(f"HDFS did not create folder {loc.uri()} (MKDIRS answered false): see the NameNode log")

    def rename(self, src: Location, dst: Location) -> None:
        """GETFILESTATUS on ``dst`` then RENAME. WebHDFS's RENAME would move ``src`` *into* an
        existing folder ``dst``, so an existing ``dst`` is refused up front (not atomic with
        the rename: another writer may still create ``dst`` in between)."""
        if (src.scheme, src.authority) != (dst.scheme, dst.authority):
            raise StorageError(f"cannot move {src} to {dst}: they are on different file systems; copy instead")
        if self.exists(dst):
            raise StorageError(f"cannot move {src} to {dst}: the destination exists")
        target = f"{src.uri()} to {dst.uri()}"
        res = self._call("rename", src, "move", target, destination=dst.path)
        if not res.ok:
            raise self._error(res, "move", target)
        if self._json(res, "boolean", "move", src) is True:
            return
        raise self._explain_failed_rename(src, dst)

    def _explain_failed_rename(self, src: Location, dst: Location) -> StorageError:
        """WebHDFS's RENAME answers a bare ``false``: find out why, so the message says what to do."""
        if not self.exists(src):
            return StorageError(f"cannot move {src} to {dst}: the source does not exist")
        parent = dst.parent()
        parent_status = self._retrying(lambda: self._status(parent))
        if parent_status is None:
            return StorageError(f"cannot move {src} to {dst}: folder {parent} does not exist: create it first")
        if parent_status.get("type") != "DIRECTORY":
            return StorageError(f"cannot move {src} to {dst}: {parent} is a file: choose another destination")
        if self.exists(dst):
            return StorageError(f"cannot move {src} to {dst}: the destination exists")
        return StorageError(f"HDFS refused to move {src} to {dst} (RENAME answered false): see the NameNode log")

    def remove_tree(self, loc: Location) -> None:
        """One recursive DELETE; a path that is already gone is fine."""
        if posixpath.normpath(loc.path) == "/":
            raise StorageError(f"refusing to remove the root folder {loc.uri()}: give a path below it")
        res = self._call("delete", loc, "remove", recursive="true")
        if res.ok:
            return
        remote = RemoteError.from_response(res)
        if remote.exception in _MISSING:
            return
        raise self._error(remote, "remove", loc.uri())


# --------------------------------------------------------------------------------------
# Factory used by pipeline.storage.storage_for


_CACHE: dict[tuple, WebHdfsStorage] = {}
_CACHE_LOCK = threading.Lock()


def _forget_after_fork() -> None:
    """In a forked child: drop the parent's storages, and its lock, which a parent thread
    may have held at the fork and would never release here."""
    global _CACHE_LOCK
    _CACHE_LOCK = threading.Lock()
    _CACHE.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def webhdfs_storage(loc: Location) -> WebHdfsStorage:
    """The (cached) storage for ``loc``'s file system, configured from ``[webhdfs]``.

    One instance per process and scheme + authority + settings, so its HTTP connections
    and its knowledge of the active NameNode are reused across calls in one process. The
    process id is part of the key as well as the fork hook's reason to empty the cache:
    a fork that skips Python's hooks still never hands a child the parent's instance.
    """
    cfg = webhdfs()
    login = kerberos.configured_login() if cfg.auth == "kerberos" else ("", "")  # [yarn] principal and keytab
    key = (
        os.getpid(),
        loc.scheme,
        loc.authority,
        cfg.namenode_url,
        cfg.user,
        cfg.auth,
        login,
        float(cfg.timeout),
        int(cfg.read_retries),
        os.environ.get("HADOOP_CONF_DIR"),
        os.environ.get("HADOOP_HOME"),
        os.environ.get("HADOOP_USER_NAME"),
    )
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            urls = namenode_urls_for(loc, cfg.namenode_url)
            found = WebHdfsStorage(
                urls,
                user=cfg.user or None,
                auth=cfg.auth,
                timeout=float(cfg.timeout),
                read_retries=int(cfg.read_retries),
                principal=login[0],
                keytab=login[1],
            )
            _CACHE[key] = found
        return found


def clear_webhdfs_cache() -> None:
    """Forget cached storages (after changing configuration at run time, and in tests)."""
    with _CACHE_LOCK:
        _CACHE.clear()
