"""SPNEGO for ``requests``, per process and per thread: requests-gssapi's auth, made safe
across Luigi's forks and threads (:func:`pipeline.cluster.kerberos.spnego_auth` gives it).

Imported only when Kerberos is configured: it needs the kerberos extra (requests-gssapi).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import gssapi
from requests_gssapi import OPTIONAL, HTTPSPNEGOAuth
from requests_gssapi.exceptions import SPNEGOExchangeError

MEMORY_CCACHE = "MEMORY:spark-fanout-{pid}"  # keytab logins stay in this process's memory


def keytab_credentials(principal: str, keytab: str) -> Any:
    """Initiator credentials for ``principal`` from ``keytab``, kept in this process's memory
    (no ticket cache on disk, the user's own untouched). Reading the lifetime makes the
    Kerberos library fetch the ticket now, so a wrong key fails here."""
    name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
    store = {"client_keytab": keytab, "ccache": MEMORY_CCACHE.format(pid=os.getpid())}
    creds = gssapi.Credentials(name=name, usage="initiate", store=store)
    _ = creds.lifetime
    return creds


class SpnegoAuth(HTTPSPNEGOAuth):
    """requests-gssapi's SPNEGO auth with its state per process and per thread.

    The library keeps one GSSAPI context per host and the body position on the auth
    object: two threads (or a parent and a forked child) would step each other's
    contexts. Here each thread of each process has its own, keytab credentials are
    acquired again in a forked child, and the last GSSAPI failure per host is kept
    for :func:`~pipeline.cluster.kerberos.refusal` (the library swallows it and returns the 401).
    Mutual authentication is OPTIONAL: the server's AP-REP is checked when an answer
    carries one, while answers to cookie-only requests carry none.
    """

    def __init__(self, principal: str = "", keytab: str = "") -> None:
        self.principal = principal
        self._keytab = keytab  # never logged: repr() leaves it out
        self._pid = os.getpid()
        self._local = threading.local()
        self._creds_lock = threading.Lock()
        self._keytab_creds: Any = None
        super().__init__(mutual_authentication=OPTIONAL, delegate=False, opportunistic_auth=False)

    def __repr__(self) -> str:
        return f"SpnegoAuth(principal={self.principal or 'from the ticket cache'!r})"

    def _state(self) -> Any:
        if self._pid != os.getpid():  # forked: nothing of the parent's is used here
            self._pid, self._local, self._keytab_creds = os.getpid(), threading.local(), None
            self._creds_lock = threading.Lock()
        local = self._local
        if not hasattr(local, "context"):
            local.context, local.pos, local.failures = {}, None, {}
        return local

    context = property(lambda self: self._state().context, lambda self, v: setattr(self._state(), "context", v))
    pos = property(lambda self: self._state().pos, lambda self, v: setattr(self._state(), "pos", v))

    @property
    def creds(self) -> Any:
        if not self._keytab:
            return None  # the default ticket cache (kinit, KRB5CCNAME)
        self._state()
        with self._creds_lock:
            if self._keytab_creds is None:
                self._keytab_creds = keytab_credentials(self.principal, self._keytab)
            return self._keytab_creds

    @creds.setter
    def creds(self, _value: Any) -> None:  # the base class sets None; ours are computed
        pass

    def generate_request_header(self, response: Any, host: str, is_preemptive: bool = False) -> str:
        failures = self._state().failures
        try:
            header = super().generate_request_header(response, host, is_preemptive)
        except SPNEGOExchangeError as exc:
            failures[host] = str(exc)
            raise
        failures.pop(host, None)
        return header

    def last_failure(self, host: str) -> str | None:
        """Why this thread could not make a token for ``host`` last time, if it could not."""
        return self._state().failures.get(host)
