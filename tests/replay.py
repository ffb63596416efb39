"""A local HTTP server on 127.0.0.1 that replays recorded responses.

Tests register routes that answer with the bytes of a fixture file from ``tests/fixtures``
(a byte-for-byte copy of the cluster recordings; never invented bodies); every request is
recorded so tests can count round trips. An optional per-request delay models a remote service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_path(relative: str) -> Path:
    """Path of a recorded fixture, e.g. ``yarn/rm-rest-apps.json``."""
    return FIXTURES / relative


def fixture_bytes(relative: str) -> bytes:
    return fixture_path(relative).read_bytes()


def split_http_fixture(raw: bytes) -> tuple[int, bytes]:
    """For fixtures recorded as ``HTTP/1.1 404 …`` status line + headers + body:
    return ``(status, body)``; for plain bodies, ``(200, raw)``."""
    if not raw.startswith(b"HTTP/"):
        return 200, raw
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    status = int(head.split(b"\n", 1)[0].split()[1])
    return status, body


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


Route = Callable[[Request], Reply]


class ReplayServer:
    """``with ReplayServer() as srv: srv.route("GET", "/ws/v1/cluster/apps", reply)``.

    Routes match on method and path; a route may also name a query string, which then
    must match exactly. Unmatched requests get a 599 so a test sees the gap at once.
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.requests: list[Request] = []
        self._routes: dict[tuple[str, str, str | None], Route | Reply] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, not after a TCP delay

            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, parts.path, parts.query, dict(self.headers), self.rfile.read(length))
                with server._lock:
                    server.requests.append(req)
                if server.delay_s:
                    time.sleep(server.delay_s)
                reply = server._match(req)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, reply: Reply | Route, query: str | None = None) -> None:
        self._routes[(method.upper(), path, query)] = reply

    def route_fixture(self, method: str, path: str, relative: str, query: str | None = None) -> None:
        """Answer with a recorded fixture (status taken from it when it holds one)."""
        status, body = split_http_fixture(fixture_bytes(relative))
        self.route(method, path, Reply(status, body), query)

    def _match(self, req: Request) -> Reply:
        for key in ((req.method, req.path, req.query), (req.method, req.path, None)):
            found = self._routes.get(key)
            if found is not None:
                return found(req) if callable(found) else found
        return Reply(599, f"no replay route for {req.method} {req.path}?{req.query}".encode(), "text/plain")

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
