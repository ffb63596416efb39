"""A throwaway MIT Kerberos realm on 127.0.0.1 for the tests: a real ``krb5kdc`` (Debian's
krb5-kdc), started once per test session by k5test, the library the Python GSSAPI projects
test with.

Realm ``FANOUT.TEST`` (as in the recordings) with ``alice`` and ``bob`` (users, keytabs)
and ``HTTP/localhost`` (the test servers' principal and keytab). There is deliberately no
``HTTP/127.0.0.1``: a client naming a server ``127.0.0.1`` meets the KDC's "not found in
Kerberos database", as a client naming ``vm`` did on the recorded cluster (http/92).
krb5.conf is the recorded cluster's: ``dns_canonicalize_hostname = false``, ``rdns =
false`` (the URL's host is the principal's host), 24 h tickets renewable for 7 days.
Everything lives in a temporary folder; ``KRB5_CONFIG`` and ``KRB5_KDC_PROFILE`` point there
for the session, never at the machine's ``/etc/krb5.conf``; ``KRB5CCNAME`` points at an
empty cache so no test meets the user's own ticket.

The tests skip, saying why, only where the packages are missing (``krb5-kdc``,
``krb5-user`` and, for python-gssapi (the kerberos extra), ``libkrb5-dev``: ``.ci/run``
installs them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REALM = "FANOUT.TEST"
USERS = ("alice", "bob")
HTTP_PRINCIPAL = f"HTTP/localhost@{REALM}"
_BINARIES = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist")
_SBIN = os.pathsep.join(("/usr/sbin", "/sbin", "/usr/local/sbin"))


def missing_requirement() -> str | None:
    """Why a real KDC cannot run here, or ``None``."""
    path = os.environ.get("PATH", "") + os.pathsep + _SBIN
    absent = [b for b in _BINARIES if shutil.which(b, path=path) is None]
    if absent:
        return (f"MIT Kerberos programs missing ({', '.join(absent)}): apt-get install krb5-kdc krb5-user "
                "(.ci/run does)")
    for module, package in (("gssapi", "gssapi"), ("requests_gssapi", "requests-gssapi"), ("k5test", "k5test")):
        try:
            __import__(module)
        except ImportError:
            return (f"Python package {package} missing: pip install -e '.[test,kerberos]' (python-gssapi builds "
                    "against libkrb5-dev; .ci/run installs it)")
    return None


def _free_port() -> int:
    """A port free for both TCP and UDP (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for the test KDC")


@dataclass
class Realm:
    """The running test realm: its folder, environment and keytabs."""

    path: Path
    env: dict[str, str]
    kdc_port: int

    def keytab(self, name: str) -> str:
        """Keytab file of ``alice``, ``bob`` or ``http``."""
        return str(self.path / f"{name}.keytab")

    def kinit(self, user: str, ccache: Path, *, lifetime: str | None = None) -> str:
        """``kinit -kt <user's keytab> user@REALM`` into ``ccache``; returns ``FILE:<ccache>``."""
        name = f"FILE:{ccache}"
        argv = ["kinit", "-c", name, "-kt", self.keytab(user)]
        if lifetime:
            argv += ["-l", lifetime]
        subprocess.run([*argv, f"{user}@{REALM}"], env={**os.environ, **self.env}, check=True,
                       capture_output=True, timeout=30)
        return name


def start_realm(base: Path) -> tuple[Realm, object]:
    """Create the realm under ``base`` and start its KDC; returns it and k5test's handle."""
    from k5test.realm import MITRealm

    class _LoopbackRealm(MITRealm):
        # k5test names the KDC host by socket.getfqdn() (a DNS lookup): loopback instead
        hostname = "localhost"

    port = _free_port()
    libdefaults = {"dns_canonicalize_hostname": "false", "rdns": "false", "ticket_lifetime": "24h",
                   "renew_lifetime": "7d", "udp_preference_limit": "1"}
    kdc_address = {"kdc": f"127.0.0.1:{port}", "admin_server": "127.0.0.1:$port1"}
    os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + _SBIN
    handle = _LoopbackRealm(realm=REALM, portbase=port, create_user=False, create_host=False, get_creds=False,
                            start_kdc=False, krb5_conf={"libdefaults": libdefaults, "realms": {"$realm": kdc_address}})
    for user in USERS:
        handle.addprinc(f"{user}@{REALM}")
    handle.addprinc(HTTP_PRINCIPAL)
    # -norandkey: ktadd would otherwise re-randomise the key and void every other keytab (trap 13)
    for name, principal in ((u, f"{u}@{REALM}") for u in USERS):
        handle.extract_keytab(principal, str(base / f"{name}.keytab"))
    handle.extract_keytab(HTTP_PRINCIPAL, str(base / "http.keytab"))
    handle.start_kdc()
    env = {
        "KRB5_CONFIG": handle.env["KRB5_CONFIG"],
        "KRB5_KDC_PROFILE": handle.env["KRB5_KDC_PROFILE"],
        "KRB5RCACHEDIR": handle.env["KRB5RCACHEDIR"],  # the test servers' replay cache
        "KRB5CCNAME": f"FILE:{base / 'no-ticket-here'}",
    }
    return Realm(base, env, port), handle


@pytest.fixture(scope="session")
def kdc(tmp_path_factory):
    """The session's test realm (skips, saying why, where Kerberos cannot be installed)."""
    reason = missing_requirement()
    if reason:
        print(f"\nKerberos tests skipped: {reason}")
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("kdc")
    saved = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5_KDC_PROFILE", "KRB5RCACHEDIR", "KRB5CCNAME",
                                            "KRB5_CLIENT_KTNAME", "KRB5_KTNAME", "PATH")}
    realm, handle = start_realm(base)
    os.environ.update(realm.env)
    for name in ("KRB5_CLIENT_KTNAME", "KRB5_KTNAME"):  # no default keytab may log anyone in
        os.environ.pop(name, None)
    try:
        yield realm
    finally:
        handle.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def ticket(kdc, tmp_path, monkeypatch):
    """alice's ticket from ``kinit -kt``, in this test's own cache (``KRB5CCNAME``)."""
    name = kdc.kinit("alice", tmp_path / "krb5cc_alice")
    monkeypatch.setenv("KRB5CCNAME", name)
    return name


@pytest.fixture
def no_ticket(kdc, tmp_path, monkeypatch):
    """A ``KRB5CCNAME`` naming a cache that does not exist."""
    name = f"FILE:{tmp_path / 'krb5cc_none'}"
    monkeypatch.setenv("KRB5CCNAME", name)
    return name
