"""A local HTTP server on 127.0.0.1 that replays recorded responses.

Tests register routes that answer with the bytes of a fixture file from ``tests/fixtures``
(a byte-for-byte copy of the cluster recordings; never invented bodies); every request is
recorded so tests can count round trips. An optional per-request delay models a remote service.

Realism, as the recordings show the ResourceManager's Jetty answering:

* HTTP/1.1 with keep-alive: one connection serves many requests (``Request.client`` names
  the client's port, so a test can count connections).
* Headers: a fixture recorded as a whole exchange (status line, headers, body) is answered
  with its recorded headers; a body-only ``yarn/`` fixture gets the RM's recorded header
  block (``RM_HEADERS``: ``application/json;charset=utf-8``, ``Transfer-Encoding: chunked``,
  no-cache headers), and a chunked answer really is sent in chunks.
* Moving state: :class:`Timeline` answers one recorded reply for the first ``k`` calls,
  the next for the following calls, and so on (an application going ACCEPTED → RUNNING →
  finished across polls); :func:`rm_app_reply` checks that a body is the report of the
  application id the route stands for.
* Kerberos: given a :class:`tests.spnego.SpnegoGate` (``spnego=``), every request first goes
  through it, as through the secured RM's SPNEGO filter: refusals are its recorded 401/403,
  an authenticated answer gets its ``WWW-Authenticate`` and cookie where the RM put them,
  and ``Request.principal`` names the ticket's owner for routes that care (a kill).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from tests.spnego import SpnegoGate

FIXTURES = Path(__file__).resolve().parent / "fixtures"

Headers = list[tuple[str, str]]


def fixture_path(relative: str) -> Path:
    """Path of a recorded fixture, e.g. ``yarn/rm-rest-apps.json``."""
    return FIXTURES / relative


def fixture_bytes(relative: str) -> bytes:
    return fixture_path(relative).read_bytes()


def parse_http_fixture(raw: bytes) -> tuple[int, Headers, bytes]:
    """For fixtures recorded as ``HTTP/1.1 404 …`` status line + headers + body: return
    ``(status, headers, body)`` (headers in recorded order, repeats kept); for plain
    bodies, ``(200, [], raw)``."""
    if not raw.startswith(b"HTTP/"):
        return 200, [], raw
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    status_line, *lines = head.decode("iso-8859-1").split("\n")
    headers = []
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return int(status_line.split()[1]), headers, body


def split_http_fixture(raw: bytes) -> tuple[int, bytes]:
    """For fixtures recorded as ``HTTP/1.1 404 …`` status line + headers + body:
    return ``(status, body)``; for plain bodies, ``(200, raw)``."""
    status, _headers, body = parse_http_fixture(raw)
    return status, body


# The header block the ResourceManager sent with its (recorded) REST answer, in order.
RM_HEADERS: Headers = parse_http_fixture(fixture_bytes("yarn/rm-rest-app-unknown-id.txt"))[1]
# Jetty's default output buffer: a chunked answer goes out in pieces of at most this size.
CHUNK_SIZE = 32 * 1024


def add_auth_headers(headers: Headers, added: Headers) -> Headers:
    """``headers`` with the gate's ``WWW-Authenticate``/``Set-Cookie`` where the recorded
    daemons put them: right after ``X-XSS-Protection``."""
    if not added:
        return list(headers)
    at = next((i + 1 for i, (k, _) in enumerate(headers) if k.lower() == "x-xss-protection"), len(headers))
    return list(headers[:at]) + list(added) + list(headers[at:])


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] | Headers = field(default_factory=dict)

    def header_list(self) -> Headers:
        items = list(self.headers.items()) if isinstance(self.headers, dict) else list(self.headers)
        if not any(k.lower() == "content-type" for k, _ in items):
            items.insert(0, ("Content-Type", self.content_type))
        return items


def rm_reply(body: bytes, status: int = 200) -> Reply:
    """A ResourceManager answer: ``body`` with the RM's recorded headers."""
    return Reply(status, body, headers=list(RM_HEADERS))


def recorded_reply(relative: str) -> Reply:
    """A recorded fixture as an answer: recorded status and headers when the fixture holds
    a whole exchange; a body-only RM fixture (``yarn/``) gets the RM's recorded headers."""
    status, headers, body = parse_http_fixture(fixture_bytes(relative))
    if not headers and relative.startswith("yarn/"):
        headers = list(RM_HEADERS)
    return Reply(status, body, headers=headers)


def _app_spans(raw: bytes) -> dict[str, bytes]:
    """The recorded bytes of each ``app`` object in a ``/ws/v1/cluster/apps`` answer, by id
    (sliced, not re-serialized: RM JSON repeats keys, e.g. ``resourceSecondsMap.entry``)."""
    text = raw.decode("utf-8")
    start = text.index("[", text.index('"app"'))
    decoder = json.JSONDecoder()
    spans: dict[str, bytes] = {}
    pos = start + 1
    while text[pos] != "]":
        obj, end = decoder.raw_decode(text, pos)
        spans[obj["id"]] = text[pos:end].encode("utf-8")
        pos = end + 1 if text[end] == "," else end
    return spans


def rm_app_reply(relative: str, app_id: str) -> Reply:
    """The RM's ``/ws/v1/cluster/apps/{app_id}`` answer from a recording of that application.

    ``relative`` is either a single-application recording (``rm-rest-app-*.json``), which
    must be of ``app_id``, or an applications list (``rm-rest-apps-*.json``): its recorded
    ``app`` object for ``app_id`` is answered in the single-application framing
    ``{"app":{…}}`` (the RM serializes the same object for both; compare
    ``rm-rest-app-RUNNING.json`` with its entry in ``rm-rest-apps-applicationTags-rec-running-RUNNING.json``).
    Raises ``ValueError`` when the recording is not of ``app_id``: a timeline stays coherent.
    """
    raw = fixture_bytes(relative)
    doc = json.loads(raw)
    if "app" in doc:
        if doc["app"]["id"] != app_id:
            raise ValueError(f"{relative} is the report of {doc['app']['id']}, not {app_id}")
        return recorded_reply(relative)
    spans = _app_spans(raw)
    if app_id not in spans:
        raise ValueError(f"{relative} holds no report of {app_id} (it holds {sorted(spans)})")
    return rm_reply(b'{"app":' + spans[app_id] + b"}")


def app_object(relative: str, app_id: str, as_app: str | None = None) -> bytes:
    """The recorded bytes of ``app_id``'s ``app`` object in a recording (a list or a
    single-application answer).

    ``as_app`` names the application it stands for in a fake RM whose jobs got another id
    (the fake spark-submit prints the recorded ids): only the ``"id"`` value changes. The
    recordings hold no application seen both live and finished in a list, so a timeline
    of list answers shows a recorded live object, then a recorded terminal one, both as the
    followed id (the per-application timelines answer one id with another's report too).
    """
    raw = fixture_bytes(relative)
    doc = json.loads(raw)
    if "app" in doc:
        if doc["app"]["id"] != app_id:
            raise ValueError(f"{relative} is the report of {doc['app']['id']}, not {app_id}")
        text = raw.decode("utf-8")
        start = text.index("{", text.index('"app"'))
        span = text[start : json.JSONDecoder().raw_decode(text, start)[1]].encode("utf-8")
    else:
        spans = _app_spans(raw)
        if app_id not in spans:
            raise ValueError(f"{relative} holds no report of {app_id} (it holds {sorted(spans)})")
        span = spans[app_id]
    if as_app is None:
        return span
    head, sep, rest = span.partition(app_id.encode())
    if not sep or b'"id"' not in head:
        raise ValueError(f"{relative}: the object of {app_id} does not start with its id")
    return head + as_app.encode() + rest


def rm_apps_reply(objects: Iterable[bytes]) -> Reply:
    """A ``/ws/v1/cluster/apps`` answer in the RM's recorded framing (``{"apps":{"app":[…]}}``;
    the recorded ``{"apps": {}}`` when empty) holding recorded ``app`` objects (:func:`app_object`)."""
    objects = list(objects)
    if not objects:
        return recorded_reply("yarn/rm-rest-apps-states-FAILED.json")  # the RM's recorded empty list
    return rm_reply(b'{"apps":{"app":[' + b",".join(objects) + b"]}}")


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    client: tuple[str, int] = ("", 0)  # the client's address: one port per connection
    principal: str | None = None  # who SPNEGO authenticated (servers with a SpnegoGate)

    @property
    def params(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.query).items()}


Route = Callable[[Request], Reply]


@dataclass
class Step:
    """One stage of a :class:`Timeline`: ``reply`` for ``times`` calls (the last stage
    answers for ever). ``label`` names it in ``Timeline.served``; ``before`` runs when
    the stage is first served (e.g. the job writes its output before it finishes)."""

    reply: Reply
    times: int = 1
    label: str = ""
    before: Callable[[], None] | None = None


class Timeline:
    """A route whose answer moves on: stage 1 for its first ``times`` calls, then stage 2…;
    ``served`` lists the label of every answer given, in order."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = list(steps)
        if not self.steps or any(s.times < 1 for s in self.steps):
            raise ValueError("a timeline needs stages served at least once each")
        self.served: list[str] = []
        self._lock = threading.Lock()
        self._started: set[int] = set()

    def _stage(self, call: int) -> int:
        for i, step in enumerate(self.steps):
            if call < step.times:
                return i
            call -= step.times
        return len(self.steps) - 1

    def __call__(self, _req: Request) -> Reply:
        with self._lock:
            i = self._stage(len(self.served))
            step = self.steps[i]
            self.served.append(step.label or str(i))
            first = i not in self._started
            self._started.add(i)
        if first and step.before is not None:
            step.before()
        return step.reply


def app_timeline(app_id: str, stages: Iterable[tuple[str, int]]) -> Timeline:
    """``/ws/v1/cluster/apps/{app_id}`` across polls: each ``(recording, times)`` stage is a
    report of ``app_id`` itself (checked by :func:`rm_app_reply`), labelled with its state.
    A stage from another recording (e.g. a terminal report, none of which was recorded for
    the live ``rec-running`` applications) must be added as an explicit :class:`Step`."""
    return Timeline(Step(rm_app_reply(rel, app_id), times, label=_state_of(rel, app_id)) for rel, times in stages)


def _state_of(relative: str, app_id: str) -> str:
    doc = json.loads(rm_app_reply(relative, app_id).body)
    return doc["app"]["state"]


class ReplayServer:
    """``with ReplayServer() as srv: srv.route("GET", "/ws/v1/cluster/apps", reply)``.

    Routes match on method and path; a route may also name a query string, which then
    must match exactly. Unmatched requests get a 599 so a test sees the gap at once.
    """

    def __init__(self, delay_s: float = 0.0, spnego: SpnegoGate | None = None) -> None:
        self.delay_s = delay_s
        self.spnego = spnego
        self.requests: list[Request] = []
        self._routes: dict[tuple[str, str, str | None], Route | Reply] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the RM's Jetty
            disable_nagle_algorithm = True  # headers and body go out at once, not after a TCP delay

            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, parts.path, parts.query, dict(self.headers), self.rfile.read(length),
                              tuple(self.client_address[:2]))
                with server._lock:
                    server.requests.append(req)
                if server.delay_s:
                    time.sleep(server.delay_s)
                added: Headers = []
                if server.spnego is not None:
                    verdict = server.spnego.check(req.method, req.path, req.headers, req.client)
                    if not verdict.ok:
                        self.send_response_only(verdict.status, verdict.reason)
                        for k, v in verdict.headers:
                            self.send_header(k, v)
                        self.end_headers()
                        self.wfile.write(verdict.body)
                        return
                    req.principal, added = verdict.principal, verdict.headers
                reply = server._match(req)
                headers = reply.header_list()
                headers = add_auth_headers(headers, added)
                chunked = any(k.lower() == "transfer-encoding" and v.lower() == "chunked" for k, v in headers)
                self.send_response_only(reply.status)  # no Server header: the RM sent none
                if not any(k.lower() == "date" for k, _ in headers):
                    self.send_header("Date", self.date_time_string())
                for k, v in headers:
                    if k.lower() != "content-length":
                        self.send_header(k, v)
                if not chunked:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if not chunked:
                    self.wfile.write(reply.body)
                    return
                for i in range(0, len(reply.body), CHUNK_SIZE):
                    piece = reply.body[i : i + CHUNK_SIZE]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")

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

    def url_as(self, host: str) -> str:
        """The base URL naming this server ``host`` (``localhost``: the test KDC's HTTP principal)."""
        return f"http://{host}:{self.port}"

    def route(self, method: str, path: str, reply: Reply | Route, query: str | None = None) -> None:
        self._routes[(method.upper(), path, query)] = reply

    def route_fixture(self, method: str, path: str, relative: str, query: str | None = None) -> None:
        """Answer with a recorded fixture (status and headers taken from it when it holds them)."""
        self.route(method, path, recorded_reply(relative), query)

    def requests_to(self, path: str, method: str = "GET") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path and r.method == method]

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
