"""Hadoop's HTTP authentication (``AuthenticationFilter`` with the Kerberos handler) for the
test servers: a :class:`SpnegoGate` in front of :class:`tests.webhdfs_server.WebHdfsServer`
(the NameNode) or :class:`tests.replay.ReplayServer` (the ResourceManager).

It really accepts GSSAPI tokens (python-gssapi, the ``HTTP/localhost`` keytab of the test
KDC in :mod:`tests.kdc`) and behaves as the recorded secured cluster did
(``tests/fixtures/kerberos/http``, README traps 3-5):

* a valid signed ``hadoop.auth`` cookie of this daemon's type is enough: the answer carries
  no ``WWW-Authenticate`` and no new cookie (05, 16);
* otherwise a cookie problem is remembered (bad signature, wrong type - the NameNode's
  ``t=kerberos`` at the RM, which issues ``t=kerberos-dt`` - or expired), and a request
  with ``Authorization: Negotiate <token>`` is authenticated by the token anyway;
  success adds ``WWW-Authenticate: Negotiate <AP-REP>`` and a fresh cookie (03, 11);
* a token that does not verify: ``403 GSSException: ...`` (32, 90);
* no usable credentials: ``401`` with the cookie problem (or ``Authentication required``) as
  reason phrase, bare ``WWW-Authenticate: Negotiate`` and ``Set-Cookie: hadoop.auth=``
  (01, 10, 12, 15, 17, 18).

Refusals are the recorded answers themselves: the header block of the matching recording
and Jetty's error page with this request's URI, status and message put in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.recordings import Message, recording
from tests.replay import Headers

COOKIE = "hadoop.auth"
VALIDITY_S = 36000  # hadoop.http.authentication.token.validity on the recorded cluster
_COOKIE_RE = re.compile(r'(?:^|;\s*)hadoop\.auth=("([^"]*)"|[^;]*)')
DAEMONS = {"namenode": "kerberos", "resourcemanager": "kerberos-dt"}  # the cookie type each issues


def _template(name: str, index: int = 0) -> Message:
    return recording(name).exchanges[index].response


# the recorded refusals, per daemon: (401 to a GET, 401 to a PUT, 403 GSSException)
_TEMPLATES = {
    "namenode": ("01", "01", "32"),  # no 401 to a PUT was recorded at the NameNode: the GET's page
    "resourcemanager": ("10", "12", "32"),  # no GSSException 403 was recorded at the RM: the NameNode's
}


def jetty_page(template: Message, path: str, status: int, message: str) -> bytes:
    """Jetty's error page of ``template`` (a recorded refusal) for this request."""
    if not template.body:
        return b""
    page = template.body.decode("iso-8859-1")
    recorded = template.reason
    page = page.replace(f"Error {template.status} {recorded}", f"Error {status} {message}")
    page = page.replace(f"HTTP ERROR {template.status} {recorded}", f"HTTP ERROR {status} {message}")
    page = re.sub(r"(<tr><th>URI:</th><td>)[^<]*(</td></tr>)", lambda m: m.group(1) + path + m.group(2), page)
    page = re.sub(r"(<tr><th>STATUS:</th><td>)[^<]*(</td></tr>)", lambda m: f"{m.group(1)}{status}{m.group(2)}", page)
    page = re.sub(r"(<tr><th>MESSAGE:</th><td>)[^<]*(</td></tr>)", lambda m: m.group(1) + message + m.group(2), page)
    return page.encode("iso-8859-1")


@dataclass
class Verdict:
    """What the gate decided: pass (``principal`` set; ``headers`` to add to the answer) or
    refuse (``status``, ``reason``, whole ``headers`` and ``body`` of the refusal)."""

    principal: str | None
    status: int = 200
    reason: str = ""
    headers: Headers = field(default_factory=list)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.principal is not None

    @property
    def user(self) -> str | None:
        """The short name (``alice`` for ``alice@FANOUT.TEST``), as Hadoop's ``u=``."""
        return self.principal.split("@")[0].split("/")[0] if self.principal else None


@dataclass
class Event:
    """One request as the gate saw it: how it came (``none``, ``cookie``, ``token``,
    ``cookie+token``), the cookie's problem, the answer's status and who it was."""

    how: str
    cookie_problem: str
    status: int
    principal: str | None
    client: tuple[str, int]
    pid_hint: str = ""


class SpnegoGate:
    """``SpnegoGate(keytab, "namenode")``: answers like the recorded daemon's SPNEGO filter.

    ``secret`` signs cookies (one secret shared by all daemons of the recorded cluster, so a
    NameNode cookie verifies at the RM and is refused only for its type). ``events`` lists
    every request; :meth:`secrets` every token and cookie seen or issued (for the tests
    that check nothing secret reaches a log).
    """

    def __init__(self, keytab: str, daemon: str = "namenode", *, secret: bytes | None = None,
                 validity_s: float = VALIDITY_S) -> None:
        if daemon not in DAEMONS:
            raise ValueError(f"daemon {daemon!r} is not one of {sorted(DAEMONS)}")
        self.keytab = keytab
        self.daemon = daemon
        self.cookie_type = DAEMONS[daemon]
        self.secret = secret if secret is not None else os.urandom(32)
        self.validity_s = validity_s
        self.events: list[Event] = []
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        get, put, gss = (_template(name) for name in _TEMPLATES[daemon])
        if put.status != 401 or get.status != 401 or gss.status != 403:
            raise AssertionError("the recorded refusals changed: check tests/fixtures/kerberos/http")
        self._refusals = {"GET": get, "PUT": put, "GSS": gss}

    # -- cookies ---------------------------------------------------------------------

    def sign(self, content: str) -> str:
        return base64.b64encode(hmac.new(self.secret, content.encode(), hashlib.sha256).digest()).decode()

    def cookie_value(self, principal: str, *, cookie_type: str | None = None, expires_ms: int | None = None) -> str:
        """A signed token as Hadoop writes it: ``u=<short>&p=<principal>&t=<type>&e=<ms>&s=<HMAC>``."""
        short = principal.split("@")[0].split("/")[0]
        expires = expires_ms if expires_ms is not None else int((time.time() + self.validity_s) * 1000)
        content = f"u={short}&p={principal}&t={cookie_type or self.cookie_type}&e={expires}"
        value = f"{content}&s={self.sign(content)}"
        with self._lock:
            self._secrets.add(value)
        return value

    def _cookie_problem(self, value: str) -> tuple[str | None, str]:
        """``(principal, "")`` for a valid cookie, ``(None, problem)`` otherwise (AuthenticationFilter.getToken)."""
        content, sep, signature = value.rpartition("&s=")
        if not sep or not hmac.compare_digest(self.sign(content), signature):
            return None, "org.apache.hadoop.security.authentication.util.SignerException: Invalid signature"
        fields = dict(part.split("=", 1) for part in content.split("&") if "=" in part)
        if fields.get("t") != self.cookie_type:
            return None, "Invalid AuthenticationToken type"
        if int(fields.get("e", "0")) < time.time() * 1000:
            return None, "AuthenticationToken expired"
        return fields.get("p"), ""

    # -- the filter ------------------------------------------------------------------

    def check(self, method: str, path: str, headers: Mapping[str, str], client: tuple[str, int] = ("", 0)) -> Verdict:
        """Decide on one request (``path`` without the query, as Jetty's page shows it)."""
        lower = {k.lower(): v for k, v in headers.items()}
        found = _COOKIE_RE.search(lower.get("cookie", ""))
        value = (found.group(2) if found and found.group(2) is not None else (found.group(1) if found else "")) or ""
        problem = ""
        how = []
        if value:
            how.append("cookie")
            principal, problem = self._cookie_problem(value)
            if principal is not None:
                return self._log(Verdict(principal), "cookie", "", client)
        authorization = lower.get("authorization", "")
        if authorization.lower().startswith("negotiate "):
            how.append("token")
            token = authorization.split(None, 1)[1].strip()
            with self._lock:
                self._secrets.add(token)
            return self._log(self._accept(token, path), "+".join(how), problem, client)
        reason = problem or "Authentication required"
        return self._log(self._refuse(method, path, 401, reason), "+".join(how) or "none", problem, client)

    def _accept(self, token: str, path: str) -> Verdict:
        import gssapi

        try:
            creds = gssapi.Credentials(usage="accept", store={"keytab": self.keytab})
            context = gssapi.SecurityContext(creds=creds, usage="accept")
            reply = context.step(base64.b64decode(token))
        except gssapi.exceptions.GSSError as exc:
            message = exc.gen_message().rpartition("Minor")[2].partition("): ")[2] or exc.gen_message()
            return self._refuse("GSS", path, 403, f"GSSException: {message}")
        if not context.complete:
            raise AssertionError("a Kerberos SPNEGO exchange takes one leg")
        principal = str(context.initiator_name)
        cookie = self.cookie_value(principal)
        added: Headers = []
        if reply:
            encoded = base64.b64encode(reply).decode()
            with self._lock:
                self._secrets.add(encoded)
            added.append(("WWW-Authenticate", f"Negotiate {encoded}"))
        added.append(("Set-Cookie", f'{COOKIE}="{cookie}"; Path=/; HttpOnly'))
        return Verdict(principal, headers=added)

    def _refuse(self, method: str, path: str, status: int, reason: str) -> Verdict:
        template = self._refusals["GSS" if method == "GSS" else ("PUT" if method == "PUT" else "GET")]
        body = jetty_page(template, path, status, reason)
        headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in template.headers]
        return Verdict(None, status, reason, headers, body)

    def _log(self, verdict: Verdict, how: str, problem: str, client: tuple[str, int]) -> Verdict:
        with self._lock:
            self.events.append(Event(how, problem, verdict.status, verdict.principal, tuple(client[:2])))
        return verdict

    # -- inspection ------------------------------------------------------------------

    def secrets(self) -> set[str]:
        """Every SPNEGO token and cookie value this gate saw or issued."""
        with self._lock:
            return set(self._secrets)

    def hows(self) -> list[tuple[str, int]]:
        """``(how, status)`` of every request so far."""
        with self._lock:
            return [(e.how, e.status) for e in self.events]
