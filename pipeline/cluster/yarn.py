"""YARN vocabulary and parsers for following spark-submit jobs in cluster mode.

Everything here is pure (no I/O): application reports from the ResourceManager REST API
and the ``yarn`` CLI, the stderr of ``spark-submit --deploy-mode cluster`` read line by
line, the ResourceManager web addresses named by ``yarn-site.xml``, a polling back-off, the
outcome of a finished application, and masking of secrets in a logged command line.
The thin I/O layer lives in :mod:`pipeline.cluster.yarn_clients`.

Traps seen on a real Hadoop 3.3.6 cluster with Spark 3.5 (``tests/fixtures/README.md``):
a PySpark exception ends as state ``FINISHED`` with final status ``FAILED``; a killed app
has state and final status ``KILLED``; tags come back lowercase.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.cluster.kerberos import classify as kerberos_problem
from pipeline.errors import ConfigError, FanoutError, KerberosError, one_line

# --------------------------------------------------------------------------- vocabulary

APP_STATES = ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING", "FINISHED", "FAILED", "KILLED")
TERMINAL_STATES = frozenset({"FINISHED", "FAILED", "KILLED"})
FINAL_STATUSES = ("UNDEFINED", "SUCCEEDED", "FAILED", "KILLED")

APP_ID_RE = re.compile(r"application_\d+_\d+")
_MAX_TAG_LEN = 100  # YARN rejects longer application tags


# --------------------------------------------------------------------------- errors


class YarnError(FanoutError):
    """A YARN operation failed."""


class YarnUnavailable(YarnError):
    """The ResourceManager (or the ``yarn`` CLI) could not be reached in time."""


class YarnPermissionDenied(YarnError):
    """The ResourceManager refused the request (HTTP 401/403, ACLs)."""


class ApplicationNotFound(YarnError):
    """The ResourceManager does not know the application."""


class YarnDeadlineExceeded(YarnError):
    """An application was still not finished when the caller's deadline passed."""

    def __init__(self, message: str, report: ApplicationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class YarnApplicationFailed(YarnError):
    """A YARN application ended with final status FAILED (or state FAILED)."""

    def __init__(self, report: ApplicationReport, log_path: str | None = None, error: str | None = None) -> None:
        self.report = report
        self.log_path = log_path
        self.error = error
        diag = _short(report.diagnostics) or "no diagnostics"
        parts = [
            f"YARN application {report.application_id}"
            + (f" ({report.name})" if report.name else "")
            + f" failed: state {report.state}, final status {report.final_status}; RM diagnostics: {diag}"
        ]
        if error:
            parts.append(f"driver error: {_short(error)}")
        if log_path:
            parts.append(f"aggregated logs saved to {log_path}")
        parts.append(
            f"read the driver traceback with `yarn logs -applicationId {report.application_id}`"
            + (f" or {report.tracking_url}" if report.tracking_url else "")
            + ", fix the job and rerun (complete labels are skipped)"
        )
        super().__init__("; ".join(parts))


class YarnApplicationKilled(YarnError):
    """A YARN application was killed (by a user, an admin or a preemption)."""

    def __init__(self, report: ApplicationReport) -> None:
        self.report = report
        diag = _short(report.diagnostics) or "no diagnostics"
        super().__init__(
            f"YARN application {report.application_id}"
            + (f" ({report.name})" if report.name else "")
            + f" was killed: {diag}; if that was not intended, ask the queue's admin why, then rerun"
        )


_KILL_REFUSED_RES = (
    # the RM's REST answer (HTTP 403, plain text under a JSON content type)
    re.compile(r"Unauthorized attempt to kill appid (?P<app>application_\d+_\d+) by remote user (?P<user>\S+)"),
    # the yarn CLI's AccessControlException
    re.compile(r"User (?P<user>\S+) cannot perform operation MODIFY_APP on (?P<app>application_\d+_\d+)"),
)


def kill_refusal(text: str) -> YarnPermissionDenied | None:
    """The one-line error for a kill the RM refused to this user (REST or CLI text), else ``None``."""
    for pattern in _KILL_REFUSED_RES:
        found = pattern.search(text or "")
        if found:
            app, user = found.group("app"), found.group("user")
            return YarnPermissionDenied(
                f"{user} may not kill {app}: only its owner, a YARN admin (yarn.admin.acl) or an administrator of "
                f"its queue may; ask one of them to run yarn application -kill {app}, or let it finish"
            )
    return None


def _short(text: str | None) -> str:
    return one_line(text, 400)


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class ApplicationReport:
    """A YARN application report, in YARN's own vocabulary.

    ``progress`` is 0-100; ``tracking_url`` is ``None`` where YARN says N/A;
    times are epoch milliseconds, ``None`` when unknown (YARN's 0).
    """

    application_id: str
    name: str = ""
    state: str = "SUBMITTED"
    final_status: str = "UNDEFINED"
    progress: float = 0.0
    tracking_url: str | None = None
    diagnostics: str = ""
    tags: tuple[str, ...] = ()
    queue: str = ""
    user: str = ""
    started_ms: int | None = None
    finished_ms: int | None = None

    @property
    def is_terminal(self) -> bool:
        """True once YARN will not change the state any more."""
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        """True only for a finished application whose final status is SUCCEEDED."""
        return self.state == "FINISHED" and self.final_status == "SUCCEEDED"

    @classmethod
    def from_rest(cls, app_json: Mapping[str, Any]) -> ApplicationReport:
        """From the RM REST ``app`` object (``/ws/v1/cluster/apps/{id}``, either the whole
        ``{"app": {...}}`` document or the inner object)."""
        inner = app_json.get("app")
        app = inner if isinstance(inner, Mapping) else app_json
        if not isinstance(app.get("id"), str):
            raise YarnError(
                f"RM answer has no application id (keys: {sorted(app)[:8]}); is the URL an RM REST endpoint?"
            )
        return cls(
            application_id=app["id"],
            name=str(app.get("name") or ""),
            state=str(app.get("state") or "SUBMITTED").upper(),
            final_status=str(app.get("finalStatus") or "UNDEFINED").upper(),
            progress=_float(app.get("progress")),
            tracking_url=_url(app.get("trackingUrl")),
            diagnostics=str(app.get("diagnostics") or "").strip(),
            tags=_tags(app.get("applicationTags")),
            queue=str(app.get("queue") or ""),
            user=str(app.get("user") or ""),
            started_ms=_ms(app.get("startedTime")),
            finished_ms=_ms(app.get("finishedTime")),
        )


def reports_from_rest(apps_json: Mapping[str, Any]) -> list[ApplicationReport]:
    """Reports in a ``/ws/v1/cluster/apps`` answer; ``{"apps": {}}`` or ``null`` is empty."""
    apps = apps_json.get("apps") or {}
    if not isinstance(apps, Mapping):
        raise YarnError("RM answer to /ws/v1/cluster/apps has no 'apps' object; is the URL an RM REST endpoint?")
    return [ApplicationReport.from_rest(app) for app in apps.get("app") or ()]


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _ms(value: Any) -> int | None:
    try:
        ms = int(value)
    except (TypeError, ValueError):
        return None
    return ms if ms > 0 else None


def _url(value: Any) -> str | None:
    text = str(value or "").strip()
    return None if text in ("", "N/A", "null") else text


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        items = value
    else:
        items = str(value or "").split(",")
    return tuple(t.strip().lower() for t in items if str(t).strip())


# --- `yarn application -status ID`

_STATUS_KEYS = {
    "Application-Id": "application_id",
    "Application-Name": "name",
    "User": "user",
    "Queue": "queue",
    "Start-Time": "started_ms",
    "Finish-Time": "finished_ms",
    "Progress": "progress",
    "State": "state",
    "Final-State": "final_status",
    "Tracking-URL": "tracking_url",
    "Diagnostics": "diagnostics",
    "Application-Tags": "tags",
}


def parse_application_statuses(text: str) -> list[ApplicationReport]:
    """Every ``Application Report :`` block in ``yarn application -status`` output (log
    lines around them are skipped)."""
    reports: list[ApplicationReport] = []
    fields: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("Application Report :"):
            if fields:
                reports.append(_status_report(fields))
            fields = {}
            continue
        if fields is None:
            continue
        if not line.startswith("\t"):
            reports.append(_status_report(fields))
            fields = None
            continue
        key, sep, value = line.strip("\t").partition(" : ")
        if not sep and line.rstrip().endswith(" :"):
            key, value = line.strip().rstrip(":").strip(), ""
        if key in _STATUS_KEYS and key not in fields:
            fields[key] = value.strip()
    if fields:
        reports.append(_status_report(fields))
    return reports


def parse_application_status(text: str) -> ApplicationReport | None:
    """The report in ``yarn application -status ID`` output; ``None`` when the RM does not
    know the application (the CLI then prints "... doesn't exist in RM ...")."""
    reports = parse_application_statuses(text)
    return reports[-1] if reports else None


def _status_report(fields: Mapping[str, str]) -> ApplicationReport:
    app_id = fields.get("Application-Id", "")
    if not APP_ID_RE.fullmatch(app_id):
        raise YarnError(f"`yarn application -status` printed no valid Application-Id ({app_id!r}); check the yarn CLI")
    return ApplicationReport(
        application_id=app_id,
        name=fields.get("Application-Name", ""),
        state=fields.get("State", "SUBMITTED").upper(),
        final_status=fields.get("Final-State", "UNDEFINED").upper(),
        progress=_percent(fields.get("Progress", "")),
        tracking_url=_url(fields.get("Tracking-URL")),
        diagnostics=fields.get("Diagnostics", ""),
        tags=_tags(fields.get("Application-Tags")),
        queue=fields.get("Queue", ""),
        user=fields.get("User", ""),
        started_ms=_ms(fields.get("Start-Time")),
        finished_ms=_ms(fields.get("Finish-Time")),
    )


def _percent(text: str) -> float:
    return _float(text.strip().rstrip("%"))


# --- `yarn application -list`


def parse_application_list(text: str) -> list[ApplicationReport]:
    """Rows of the ``yarn application -list`` table (tab-separated, padded columns:
    Id, Name, Type, User, Queue, State, Final-State, Progress, Tracking-URL)."""
    reports: list[ApplicationReport] = []
    in_table = False
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("\t")]
        if not in_table:
            in_table = bool(cells) and cells[0] == "Application-Id"
            continue
        if len(cells) < 9 or not APP_ID_RE.fullmatch(cells[0]):
            continue
        # an application name may itself hold a tab: the last seven columns are fixed
        app_id, name = cells[0], "\t".join(cells[1:-7])
        _type, user, queue, state, final, progress, url = cells[-7:]
        reports.append(
            ApplicationReport(
                application_id=app_id,
                name=name,
                state=state.upper(),
                final_status=final.upper(),
                progress=_percent(progress),
                tracking_url=_url(url),
                queue=queue,
                user=user,
            )
        )
    return reports


# --------------------------------------------------------------------------- tags, conf


def yarn_tag(task_id: str) -> str:
    """A short, stable, lowercase YARN application tag for a Luigi task id.

    Task ids may hold any character; the tag is ``fanout-`` plus 32 hex digits of the
    id's SHA-256, so it is ASCII, has no comma and survives YARN's lowercasing.
    """
    return "fanout-" + hashlib.sha256(task_id.encode("utf-8")).hexdigest()[:32]


def is_valid_yarn_tag(tag: str) -> bool:
    """True for a tag YARN keeps as given: printable ASCII, no comma, 1-100 chars, lowercase."""
    return (
        0 < len(tag) <= _MAX_TAG_LEN
        and tag.isascii()
        and tag.isprintable()
        and "," not in tag
        and tag == tag.lower()
        and tag == tag.strip()
    )


def submit_conf(tag: str, *, max_app_attempts: int = 1, wait_app_completion: bool = False) -> dict[str, str]:
    """The ``--conf`` entries a YARN cluster-mode submission needs: the tag that finds the
    application again after a controller restart, the AM attempts (YARN's default of 2 runs
    a failing script twice), and whether spark-submit waits for the end."""
    if not is_valid_yarn_tag(tag):
        raise ConfigError(f"YARN tag {tag!r} is invalid: use yarn_tag(task_id)")
    if max_app_attempts < 1:
        raise ConfigError(f"[yarn] max_app_attempts={max_app_attempts} must be at least 1")
    return {
        "spark.yarn.tags": tag,
        "spark.yarn.maxAppAttempts": str(max_app_attempts),
        "spark.yarn.submit.waitAppCompletion": "true" if wait_app_completion else "false",
    }


# --------------------------------------------------------------------------- spark-submit stderr

_REPORT_LINE_RE = re.compile(r"Application report for (application_\d+_\d+) \(state: ([A-Z_]+)\)")
_SUBMITTED_RE = re.compile(r"Submitted application (application_\d+_\d+)")
_DETAIL_RE = re.compile(r"^\t ([A-Za-z][A-Za-z ]*): (.*)$")
_LOG_LINE_RE = re.compile(r"^\S+ \S+ (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ")
_DIAG_MSG_RE = re.compile(r"Application diagnostics message: (.*)$")
_MAIN_EXC_RE = re.compile(r"^Exception in thread \"main\" (.*)$")
_FAILED_STATUS_RE = re.compile(r"Application (application_\d+_\d+) finished with (?:failed )?status")
_KILLED_RE = re.compile(r"Application (application_\d+_\d+) is killed")


class SubmitOutputParser:
    """Follows the stderr of ``spark-submit --master yarn --deploy-mode cluster``.

    Feed it each line as it arrives. :meth:`feed` returns the new
    :class:`ApplicationReport` when the parser learned something to report (the
    application id, or a state change once its detail block is read), else ``None``.
    The id is known from the ``Submitted application …`` line on (state ``SUBMITTED``:
    the YARN client logs that line only once the RM has taken the application).
    """

    def __init__(self) -> None:
        self.application_id: str | None = None
        self.state: str | None = None
        self.final_status: str = "UNDEFINED"
        self.tracking_url: str | None = None
        self.diagnostics: str = ""
        self.queue: str = ""
        self.user: str = ""
        self.started_ms: int | None = None
        self.attempts_seen = 0
        """ApplicationMaster attempts seen (each entry into ACCEPTED); 2 means YARN retried."""
        self.exception: str | None = None
        """The ``Exception in thread "main"`` text, when spark-submit ended with one."""
        self.kerberos_problem: KerberosError | None = None
        """What was wrong with Kerberos when that exception says so (no ticket, clock skew, ...)."""
        self.failed = False
        self.killed = False
        self._in_block = False
        self._last_key: str | None = None
        self._pending = False
        self._last_emitted: ApplicationReport | None = None

    @property
    def report(self) -> ApplicationReport | None:
        """The latest report; ``None`` before the application id is known."""
        if self.application_id is None:
            return None
        return ApplicationReport(
            application_id=self.application_id,
            state=self.state or "SUBMITTED",
            final_status=self.final_status,
            progress=100.0 if (self.state or "") in TERMINAL_STATES else 0.0,
            tracking_url=self.tracking_url,
            diagnostics=self.diagnostics,
            queue=self.queue,
            user=self.user,
            started_ms=self.started_ms,
        )

    @property
    def outcome(self) -> str | None:
        """``"succeeded"``, ``"failed"``, ``"killed"`` once spark-submit said so, else ``None``
        (e.g. with ``spark.yarn.submit.waitAppCompletion=false``)."""
        if self.killed or self.final_status == "KILLED" or self.state == "KILLED":
            return "killed"
        if self.failed or self.final_status == "FAILED" or self.state == "FAILED":
            return "failed"
        if self.state == "FINISHED" and self.final_status == "SUCCEEDED":
            return "succeeded"
        if self.state == "FINISHED":
            return "failed"  # FINISHED with UNDEFINED: spark-submit treats it as a failure
        return None

    def feed(self, line: str) -> ApplicationReport | None:
        """Read one stderr line (with or without its newline)."""
        line = line.rstrip("\r\n")
        if self._in_block:
            detail = _DETAIL_RE.match(line)
            if detail:
                self._detail(detail.group(1), detail.group(2).strip())
                if detail.group(1) == "user":  # Spark prints it last
                    self._in_block = False
                    return self._emit()
                return None
            if (
                self._last_key == "diagnostics"
                and line
                and not _LOG_LINE_RE.match(line)
                and not _MAIN_EXC_RE.match(line)
            ):
                self.diagnostics = f"{self.diagnostics}\n{line.strip()}".strip()
                return None
            if not line.endswith("Client: "):  # the empty message that opens the block
                self._in_block = False
        emitted = self._emit() if (self._pending and not self._in_block) else None
        return self._line(line) or emitted

    def close(self) -> ApplicationReport | None:
        """Flush a report still waiting for its detail block (call at end of stream)."""
        self._in_block = False
        return self._emit() if self._pending else None

    def _line(self, line: str) -> ApplicationReport | None:
        report_line = _REPORT_LINE_RE.search(line)
        if report_line:
            app_id, state = report_line.groups()
            first = self.application_id is None
            self.application_id = app_id
            if state != self.state:
                if state == "ACCEPTED":
                    self.attempts_seen += 1
                self.state = state
                self._pending = True
                self._in_block = True
                self._last_key = None
                return self._emit() if first else None
            return self._emit() if first else None
        submitted = _SUBMITTED_RE.search(line)
        if submitted:
            if self.application_id is None:
                self.application_id = submitted.group(1)
                return self._emit()
            return None
        diag = _DIAG_MSG_RE.search(line)
        if diag:
            self.diagnostics = diag.group(1).strip()
            return None
        main_exc = _MAIN_EXC_RE.match(line)
        if main_exc:
            self.exception = main_exc.group(1).strip()
            self.kerberos_problem = kerberos_problem(self.exception)
            if _KILLED_RE.search(line):
                self.killed = True
            elif _FAILED_STATUS_RE.search(line):
                self.failed = True
            else:
                self.failed = True  # any uncaught exception: spark-submit exits non-zero
            if self.application_id is None:
                found = APP_ID_RE.search(line)
                self.application_id = found.group(0) if found else None
        return None

    def _detail(self, key: str, value: str) -> None:
        self._last_key = key
        na = value == "N/A"
        if key == "diagnostics":
            self.diagnostics = "" if na else value
        elif key == "final status":
            self.final_status = value.upper()
        elif key == "tracking URL":
            self.tracking_url = None if na else value
        elif key == "queue":
            self.queue = "" if na else value
        elif key == "user":
            self.user = "" if na else value
        elif key == "start time":
            self.started_ms = _ms(value)

    def _emit(self) -> ApplicationReport | None:
        self._pending = False
        current = self.report
        if current is None or current == self._last_emitted:
            return None
        self._last_emitted = current
        return current


# --------------------------------------------------------------------------- outcome, polling


def raise_for_outcome(report: ApplicationReport, log_path: str | None = None, error: str | None = None) -> None:
    """Return quietly for a successful application; raise for any other terminal report.

    ``FINISHED``/``FAILED`` and state ``FAILED`` raise :class:`YarnApplicationFailed`
    (as does ``FINISHED``/``UNDEFINED``, which spark-submit also treats as a failure);
    ``KILLED`` raises :class:`YarnApplicationKilled`. A non-terminal report is a caller
    bug (``ValueError``).
    """
    if not report.is_terminal:
        raise ValueError(f"{report.application_id} is still {report.state}: follow it to the end first")
    if report.state == "KILLED" or report.final_status == "KILLED":
        raise YarnApplicationKilled(report)
    if report.succeeded:
        return
    raise YarnApplicationFailed(report, log_path=log_path, error=error)


def next_poll_delay(
    previous: float | None,
    *,
    changed: bool = False,
    initial: float = 1.0,
    maximum: float = 30.0,
    factor: float = 1.5,
) -> float:
    """Seconds to wait before the next poll: ``initial`` at first and after a change in
    the report, then growing by ``factor`` up to ``maximum``."""
    if initial <= 0 or maximum < initial or factor < 1:
        raise ConfigError(
            f"poll back-off initial={initial}, maximum={maximum}, factor={factor} is invalid: need 0 < initial <= maximum and factor >= 1"
        )
    if previous is None or changed:
        return initial
    return min(max(previous, initial) * factor, maximum)


_TRACEBACK_START = "Traceback (most recent call last):"


def last_python_error(lines: Iterable[str]) -> str | None:
    """The exception line of the last Python traceback in a log (e.g. the aggregated
    ``yarn logs`` output), read line by line; ``None`` when there is none."""
    found: str | None = None
    in_tb = False
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line.startswith(_TRACEBACK_START):
            in_tb = True
            continue
        if in_tb and line and not line.startswith(" "):
            found = line.strip()
            in_tb = False
    return found


# --------------------------------------------------------------------------- yarn-site.xml


def parse_rm_addresses(yarn_site: Mapping[str, str], scheme_hint: str | None = None) -> list[str]:
    """ResourceManager web base URLs (``http[s]://host:port``) from ``yarn-site.xml``.

    HTTPS when ``scheme_hint == "https"`` or ``yarn.http.policy`` is ``HTTPS_ONLY``.
    With ``yarn.resourcemanager.ha.enabled`` one URL per id in
    ``yarn.resourcemanager.ha.rm-ids``, from ``yarn.resourcemanager.webapp[.https].address.<id>``
    or ``yarn.resourcemanager.hostname.<id>`` plus port 8088 (8090 for HTTPS). An empty
    configuration gives ``[]`` (nothing known).
    """
    if not yarn_site:
        return []
    if scheme_hint not in (None, "http", "https"):
        raise ConfigError(f"scheme {scheme_hint!r} is not http or https")
    https = scheme_hint == "https" or (
        scheme_hint is None and _conf(yarn_site, "yarn.http.policy", "HTTP_ONLY").upper() == "HTTPS_ONLY"
    )
    scheme, port, key = (("https", 8090, "yarn.resourcemanager.webapp.https.address") if https
                         else ("http", 8088, "yarn.resourcemanager.webapp.address"))
    if _conf(yarn_site, "yarn.resourcemanager.ha.enabled", "false").lower() == "true":
        return [_base_url(scheme, *_ha_address(yarn_site, key, rm_id), port) for rm_id in _ha_ids(yarn_site)]
    address = _conf(yarn_site, key, "")
    host = _conf(yarn_site, "yarn.resourcemanager.hostname", "")
    return [_base_url(scheme, address, host, port)]


def _ha_ids(yarn_site: Mapping[str, str]) -> list[str]:
    ids = [i.strip() for i in _conf(yarn_site, "yarn.resourcemanager.ha.rm-ids", "").split(",") if i.strip()]
    if not ids:
        raise ConfigError(
            "yarn-site.xml enables RM HA but sets no yarn.resourcemanager.ha.rm-ids: fix it or set [yarn] rm_address"
        )
    return ids


def _ha_address(yarn_site: Mapping[str, str], key: str, rm_id: str) -> tuple[str, str]:
    """One HA ResourceManager's web ``address`` and ``host`` (either may be empty, not both)."""
    address = _conf(yarn_site, f"{key}.{rm_id}", "")
    host = _conf(yarn_site, f"yarn.resourcemanager.hostname.{rm_id}", "")
    if not address and not host:
        raise ConfigError(
            f"yarn-site.xml names RM id {rm_id!r} but sets neither {key}.{rm_id} nor "
            f"yarn.resourcemanager.hostname.{rm_id}: fix it or set [yarn] rm_address"
        )
    return address, host


_VAR_RE = re.compile(r"\$\{([^}]+)\}")


def _conf(site: Mapping[str, str], name: str, default: str) -> str:
    """A property with Hadoop's ``${other.property}`` expansion (a few levels deep)."""
    value = site.get(name)
    if value is None:
        return default
    for _ in range(10):
        expanded = _VAR_RE.sub(lambda m: site.get(m.group(1), m.group(0)), value)
        if expanded == value:
            break
        value = expanded
    return value.strip()


def _base_url(scheme: str, address: str, host: str, default_port: int) -> str:
    address = re.sub(r"^https?://", "", address).rstrip("/")
    if address:
        bind_host, _, port = address.rpartition(":")
        if not bind_host:
            bind_host, port = address, str(default_port)
    else:
        bind_host, port = host, str(default_port)
    if bind_host in ("", "0.0.0.0"):  # a bind-all address: reach it through the named host
        bind_host = host if host and host != "0.0.0.0" else "localhost"
    if "${" in bind_host or not port.isdigit():
        raise ConfigError(
            f"RM web address {address or host!r} in yarn-site.xml cannot be resolved: set [yarn] rm_address"
        )
    return f"{scheme}://{bind_host}:{port}"


# --------------------------------------------------------------------------- logging


# Spark's own redaction pattern (spark.redaction.regex), plus keytab and credential.
_SECRET_KEY_RE = re.compile(r"(?i)secret|passw(?:or)?d|token|access[.]?key|account[.]key|keytab|credential")
# A -Dkey=value inside a value (extraJavaOptions, --driver-java-options) whose key is secret.
_SECRET_D_OPTION_RE = re.compile(r"(-D[^=\s]*?(?:secret|passw(?:or)?d|token|access[.]?key|keytab|credential)[^=\s]*=)(\S+)", re.I)
MASK = "******"


def _is_secret(name: str) -> bool:
    return _SECRET_KEY_RE.search(name) is not None


def _mask_values(text: str) -> str:
    return _SECRET_D_OPTION_RE.sub(lambda m: m.group(1) + MASK, text)


def mask_secrets(argv: list[str]) -> list[str]:
    """A copy of a command line fit for logs: hides the value of ``--keytab`` (and any
    ``--*password*``/``--*secret*``/… option) and of ``--conf``/``-c`` entries whose key
    names a password, secret, token, credential or keytab. ``--principal`` stays visible."""
    out: list[str] = []
    mask_next = conf_next = False
    for arg in argv:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if conf_next:
            out.append(_mask_conf(arg))
            conf_next = False
            continue
        if arg in ("--conf", "-c"):
            out.append(arg)
            conf_next = True
        elif arg.startswith("--conf="):
            out.append("--conf=" + _mask_conf(arg[len("--conf=") :]))
        elif arg.startswith("--") and _is_secret(arg.split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=" + MASK)
            else:
                out.append(arg)
                mask_next = True
        else:
            out.append(_mask_values(arg))
    return out


def _mask_conf(entry: str) -> str:
    key, sep, _value = entry.partition("=")
    return f"{key}={MASK}" if sep and _is_secret(key) else _mask_values(entry)
