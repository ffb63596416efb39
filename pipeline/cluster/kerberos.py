"""Kerberos for the controller: SPNEGO for its HTTP clients, one-line diagnoses, the up-front check.

Hadoop's web services (WebHDFS on the NameNode, the ResourceManager's REST API) speak SPNEGO:
a request without credentials gets ``401`` and ``WWW-Authenticate: Negotiate``; the client
sends it again with a GSSAPI token for ``HTTP/<host as the URL names it>``; the answer sets a
signed ``hadoop.auth`` cookie that later requests send instead of a token. A cookie the
server no longer takes (expired, or another daemon's: the NameNode's ``t=kerberos`` cookie
at the RM, which wants ``t=kerberos-dt``) is answered ``401`` + ``Negotiate`` again, and a
fresh SPNEGO round follows. :func:`spnego_auth` gives the ``requests`` auth doing all that
(requests-gssapi, see README "Kerberos" for why that library).

When it fails, the libraries return the bare 401 (they never raise), so :func:`refusal`
says why in one line (no ticket, expired ticket, clock skew, no principal for the host
name used, ...) as a typed :class:`~pipeline.errors.KerberosError`; :func:`classify` does
the same for the texts of MIT tools and Hadoop's Java clients (``spark-submit``, ``yarn``).
:func:`check_credentials` is the controller's check before it schedules any job.

Secrets: SPNEGO tokens, cookies, delegation tokens and the keytab path never reach a log.
requests-gssapi logs every token at DEBUG and a traceback per failed exchange at ERROR, so
its logger is silenced (each failure is reported once, by us); urllib3's DEBUG lines name
every URL, and WebHDFS's DataNode redirects carry ``delegation=`` tokens in theirs, so
those are masked. ``KRB5_TRACE=/dev/stderr`` shows what the Kerberos library does.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import luigi

from pipeline.errors import (
    ClockSkew,
    ConfigError,
    KerberosError,
    NoTicket,
    TicketExpired,
    UnknownServicePrincipal,
    one_line,
)

MASK = "******"
EXPIRED = (
    "your Kerberos ticket has expired: run kinit again (kinit -R renews it while it is renewable; klist -s exits 1 "
    "once it has expired), then rerun"
)
KINIT_HINT = "run kinit (or kinit -kt <keytab> <principal>), or set [yarn] principal and keytab, then rerun"
_SECRET_RE = re.compile(
    r"(?i)((?:[?&](?:delegation|token)=)|(?:Negotiate\s+)|(?:hadoop\.auth=\"?))([^\s&\"',;]+)"
)


# --------------------------------------------------------------------------- classification (pure)


def classify(text: str, *, host: str = "", refused_by_server: bool = False) -> KerberosError | None:
    """The Kerberos problem a GSSAPI, MIT tool or Hadoop Java error text describes, as a
    typed one-line error naming what to do; ``None`` when ``text`` is about something else.

    ``host`` is the server's host name as the client named it (``HTTP/<host>`` is the
    principal asked for); ``refused_by_server`` says the text came from the server (an
    HTTP 403 reason) rather than from this machine's Kerberos library or the KDC.
    """
    flat = one_line(text)
    return _server_problem(flat, host, refused_by_server) or _credentials_problem(flat) or _setup_problem(flat, host)


def _server_problem(flat: str, host: str, refused_by_server: bool) -> KerberosError | None:
    """Clock skew, or no principal for the server's name."""
    if "Clock skew too great" in flat:
        who = f"{host} refused the Kerberos ticket: its clock" if refused_by_server else "the KDC refused: its clock"
        return ClockSkew(
            f"{who} and this machine's differ by more than Kerberos allows (5 minutes by default): "
            "synchronise the clocks (chrony or ntpd), then rerun"
        )
    missing = re.search(r"Server (\S+?) not found in Kerberos database", flat)
    if missing:
        principal = missing.group(1)
        named = host or principal.partition("/")[2].partition("@")[0]
        return UnknownServicePrincipal(
            f"the KDC has no principal {principal}: the client named the server {named!r} and Kerberos asks for "
            f"HTTP/<that name>; use the host name the cluster's HTTP principal is for (often the fully qualified "
            f"name) in [webhdfs] namenode_url or [yarn] rm_address, or ask the Kerberos admin to add {principal}",
            host=named,
        )
    return None


def _credentials_problem(flat: str) -> KerberosError | None:
    """No ticket, an expired one, or a key the KDC refuses."""
    if re.search(r"Ticket expired|credential has expired|TKT_EXPIRED", flat):
        return TicketExpired(EXPIRED)
    if "Client cannot authenticate via:[TOKEN, KERBEROS]" in flat:
        return NoTicket(f"no valid Kerberos ticket (none, or an expired one the JVM could not renew): {KINIT_HINT}")
    if re.search(r"No credentials cache found|No Kerberos credentials available|No credentials were supplied", flat):
        return NoTicket(f"no Kerberos ticket: {KINIT_HINT}")
    keys = re.search(r"Keytab contains no suitable keys for (\S+)", flat)
    if keys:
        return KerberosError(
            f"the keytab holds no key for {keys.group(1)}: check the principal and keytab ([yarn] principal and "
            "keytab) with klist -kt <keytab>"
        )
    if re.search(r"Password incorrect|Checksum failed|Specified version of key is not available|Preauthentication failed",
                 flat) and re.search(r"kinit|GSS|Krb|Kerberos|krb5|KDC", flat):  # "Checksum failed" alone may be HDFS's
        return KerberosError(
            "the KDC refused the key (a wrong password, or a keytab outdated by a later ktadd without -norandkey): "
            "get a fresh keytab or kinit with the current password, then rerun"
        )
    return None


def _setup_problem(flat: str, host: str) -> KerberosError | None:
    """No KDC, no Kerberos configuration for a JVM, no key for the server's principal."""
    kdc = re.search(r"Cannot contact any KDC for realm '([^']*)'", flat)
    if kdc:
        return KerberosError(
            f"no KDC of realm {kdc.group(1)} answered: check the [realms] section of krb5.conf (KRB5_CONFIG) and "
            "that the KDC is reachable from this machine"
        )
    if re.search(r"Can't get Kerberos realm|Cannot locate default realm", flat):
        return KerberosError(
            "a JVM found no Kerberos configuration (no default realm): give every JVM krb5.conf with "
            "-Djava.security.krb5.conf=<path> (for YARN containers in spark.driver.defaultJavaOptions and "
            "spark.executor.defaultJavaOptions)"
        )
    if "Failed to find any Kerberos credentials" in flat:
        service = f"HTTP/{host}" if host else "the service"
        return KerberosError(
            f"{host or 'the server'} has no key for {service}, the principal this client asked for: name the server "
            "by the host name in its HTTP principal (as in the cluster's configuration)"
        )
    return None


def mask_tokens(text: str) -> str:
    """``text`` with SPNEGO tokens, ``hadoop.auth`` cookies and ``delegation=``/``token=``
    values replaced by a mask."""
    return _SECRET_RE.sub(lambda m: m.group(1) + MASK, text)


class _MaskTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_tokens(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


@lru_cache(maxsize=1)
def _guard_library_logs() -> None:
    """Silence requests-gssapi (it logs tokens) and mask tokens in urllib3's URL lines."""
    logging.getLogger("requests_gssapi").setLevel(logging.CRITICAL)
    logging.getLogger("urllib3.connectionpool").addFilter(_MaskTokens())


# --------------------------------------------------------------------------- SPNEGO auth


def _spnego() -> Any:
    """:mod:`pipeline.cluster.spnego`, whose optional dependencies are imported only when
    Kerberos is used; a ConfigError naming the extra when they are missing."""
    try:
        import gssapi  # noqa: F401
        import requests_gssapi  # noqa: F401 - checked here so the message names both
    except ImportError:
        raise ConfigError(
            "auth = kerberos needs the kerberos extra: pip install 'spark-fanout[kerberos]' (requests-gssapi; "
            "building it needs the MIT Kerberos headers, e.g. apt-get install libkrb5-dev)"
        ) from None
    from pipeline.cluster import spnego

    return spnego


@lru_cache(maxsize=1)
def _auth_class() -> type:
    return _spnego().SpnegoAuth


def spnego_auth(principal: str = "", keytab: str = "") -> Any:
    """A ``requests`` auth doing SPNEGO with the ticket from ``kinit`` (``KRB5CCNAME``), or,
    given ``principal`` and ``keytab``, with credentials from that keytab. Raises
    :class:`ConfigError` when requests-gssapi is not installed."""
    if bool(principal) != bool(keytab):
        raise ConfigError("[yarn] principal and keytab go together: set both, or neither to use your kinit ticket")
    cls = _auth_class()
    _guard_library_logs()
    return cls(principal, keytab)


def configured_login(principal: str | None = None, keytab: str | None = None) -> tuple[str, str]:
    """``(principal, keytab)`` the run logs in with (see :func:`keytab_login`), from luigi.cfg
    (``principal``/``keytab`` given: instead of ``[yarn]``'s)."""
    config = luigi.configuration.get_config()
    principal = config.get("yarn", "principal", "") if principal is None else principal
    keytab = config.get("yarn", "keytab", "") if keytab is None else keytab
    spark_conf = config.get("spark", "conf", "") or ""
    pairs = dict(item.strip().split("=", 1) for item in spark_conf.split("|") if "=" in item)
    return keytab_login(principal or "", keytab or "", pairs)


def keytab_login(principal: str, keytab: str, spark_conf: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The keytab login the run uses: ``[yarn] principal``/``keytab``, else Spark's own
    ``spark.kerberos.principal``/``spark.kerberos.keytab`` in ``[spark] conf``; ``("", "")``
    for the ticket cache."""
    if principal or keytab:
        return principal, keytab
    conf = spark_conf or {}
    for prefix in ("spark.kerberos.", "spark.yarn."):
        found = conf.get(prefix + "principal", ""), conf.get(prefix + "keytab", "")
        if any(found):
            return found
    return "", ""


# --------------------------------------------------------------------------- refusals


def refusal(response: Any, auth: Any) -> KerberosError | None:
    """Why a server refused a request sent with SPNEGO ``auth`` (a ``requests`` response
    with status 401 or 403), as a typed one-line error; ``None`` when the refusal is not
    about authentication (a 403 for lack of permission, say)."""
    status = int(getattr(response, "status_code", 0) or 0)
    reason = str(getattr(response, "reason", "") or "")
    host = urlsplit(str(getattr(response, "url", "") or "")).hostname or ""
    if status == 403 and "GSSException" in reason:
        return classify(reason, host=host, refused_by_server=True) or KerberosError(
            f"{host} refused the Kerberos token ({one_line(reason, 200)}): see its log; check that its HTTP "
            "principal and keytab match the host name used"
        )
    if status != 401:
        return None
    offered = "negotiate" in str(response.headers.get("WWW-Authenticate", "")).lower()
    if not offered:
        return KerberosError(
            f"{host} answered HTTP 401 without offering Kerberos (no WWW-Authenticate: Negotiate): it does not use "
            "SPNEGO; set auth = none/insecure for it, or check the address"
        )
    failure = auth.last_failure(host) if hasattr(auth, "last_failure") else None
    if failure:
        return classify(failure, host=host) or KerberosError(
            f"no Kerberos token for HTTP/{host} ({one_line(failure, 300)}): {KINIT_HINT}"
        )
    who = getattr(auth, "principal", "") or "your ticket"
    return KerberosError(
        f"{host} refused the Kerberos token of {who} (HTTP 401 {reason}): its HTTP principal or keytab does not "
        "match, or your realm is not trusted there: see the server's log"
    )


# --------------------------------------------------------------------------- the up-front check


def check_credentials(principal: str = "", keytab: str = "") -> str:
    """Check that Kerberos credentials are usable before any job is scheduled: the ticket
    cache's TGT (not expired), or a ticket from ``keytab`` for ``principal``. Returns the
    client principal; raises a typed :class:`KerberosError` (or :class:`ConfigError` for a
    keytab that is not there) whose one line says what to do."""
    spnego = _spnego()
    gssapi = spnego.gssapi
    if principal or keytab:
        if not (principal and keytab):
            raise ConfigError("[yarn] principal and keytab go together: set both, or neither to use your kinit ticket")
        if not os.path.isfile(keytab) or not os.access(keytab, os.R_OK):
            raise ConfigError(f"[yarn] keytab for {principal} is not a readable file: fix the path (it is not shown)")
        try:
            creds = spnego.keytab_credentials(principal, keytab)
        except gssapi.exceptions.GSSError as exc:
            problem = classify(exc.gen_message())
            detail = problem if problem is not None and not isinstance(problem, NoTicket) else one_line(
                exc.gen_message(), 200
            )
            raise KerberosError(
                f"cannot get a Kerberos ticket for {principal} from [yarn] keytab ({detail}): check them with "
                f"kinit -kt <keytab> {principal}"
            ) from None
        return str(creds.name)
    try:
        creds = gssapi.Credentials(usage="initiate")
        lifetime = creds.lifetime
    except gssapi.exceptions.ExpiredCredentialsError:
        lifetime = 0
    except gssapi.exceptions.GSSError as exc:
        message = exc.gen_message()
        raise classify(message) or NoTicket(f"no usable Kerberos ticket ({one_line(message, 200)}): {KINIT_HINT}") from None
    if not lifetime:
        raise TicketExpired(EXPIRED)
    return str(creds.name)
