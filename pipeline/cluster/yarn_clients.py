"""Thin I/O around :mod:`pipeline.cluster.yarn`: the ``[yarn]`` settings, a ResourceManager REST
client, the same operations through the ``yarn`` CLI, aggregated-log download and a
polling loop.

Every failure surfaces as a :class:`pipeline.cluster.yarn.YarnError` subclass with a one-line
message; every network call and subprocess has a timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import luigi
import requests

from pipeline.cluster import kerberos
from pipeline.cluster.hadoop_conf import hadoop_user, load_site
from pipeline.cluster.yarn import (
    APP_ID_RE,
    ApplicationNotFound,
    ApplicationReport,
    YarnDeadlineExceeded,
    YarnError,
    YarnPermissionDenied,
    YarnUnavailable,
    kill_refusal,
    next_poll_delay,
    parse_application_list,
    parse_application_status,
    parse_rm_addresses,
    reports_from_rest,
)
from pipeline.errors import ConfigError

MB = 1024 * 1024


class yarn(luigi.Config):  # noqa: N801 - the class name is the luigi.cfg section name
    """``[yarn]`` section of luigi.cfg: how the controller talks to YARN.

    Luigi 3.8 reads ``rm_address`` and (with a DeprecationWarning) ``rm-address`` alike.
    """

    rm_address = luigi.Parameter(
        default="",
        description="ResourceManager web base URL(s), comma-separated for HA (e.g. http://rm1:8088,http://rm2:8088); "
        "empty: read yarn-site.xml from HADOOP_CONF_DIR",
    )
    client = luigi.ChoiceParameter(
        choices=["rest", "cli"], default="rest", description="rest: RM REST API; cli: the yarn command"
    )
    yarn_bin = luigi.Parameter(default="yarn", description="the yarn executable (for client=cli and for yarn logs)")
    request_timeout = luigi.FloatParameter(default=10.0, description="seconds for one RM REST request")
    cli_timeout = luigi.FloatParameter(default=120.0, description="seconds for one yarn CLI command (starts a JVM)")
    auth = luigi.ChoiceParameter(
        choices=["none", "kerberos"], default="none",
        description="kerberos: SPNEGO via requests-gssapi with the kinit ticket (or principal and keytab); the "
        "controller checks the ticket before it schedules any job"
    )
    max_app_attempts = luigi.IntParameter(
        default=1, description="spark.yarn.maxAppAttempts; YARN's default 2 runs a failing job twice"
    )
    wait_app_completion = luigi.BoolParameter(
        default=False,
        description="spark.yarn.submit.waitAppCompletion; false: spark-submit returns once submitted and the "
        "controller polls the RM",
    )
    poll_interval = luigi.FloatParameter(
        default=2.0, description="seconds between the run's shared RM polls: one request lists all of the run's "
        "applications in flight, so a finished job is noticed within about this long"
    )
    shared_poll = luigi.BoolParameter(
        default=True, description="true: one RM request per poll_interval lists all of the run's applications in "
        "flight (by their tags), shared by the run's worker processes; false: one request per application, backing "
        "off from poll_interval to max_poll_interval (the behaviour before; for an RM whose tag filter misbehaves)"
    )
    max_poll_interval = luigi.FloatParameter(
        default=30.0, description="back-off ceiling for an application asked about on its own (one the shared "
        "poll's list did not show), and for follow() without a shared poll"
    )
    log_dir = luigi.Parameter(default="logs/yarn", description="where aggregated logs of failed applications go")
    log_max_bytes = luigi.IntParameter(default=50 * MB, description="cap on one fetched log file")
    log_fetch_timeout = luigi.FloatParameter(default=300.0, description="seconds for one yarn logs download")
    principal = luigi.Parameter(
        default="", description="Kerberos principal for spark-submit --principal (empty: use the kinit ticket)"
    )
    keytab = luigi.Parameter(
        default="", description="keytab file for spark-submit --keytab (never logged); needs principal"
    )
    kill_on_interrupt = luigi.BoolParameter(
        default=True, description="kill the YARN application when the controller is interrupted"
    )
    max_concurrent_submits = luigi.Parameter(
        default="3", description="spark-submit JVMs submitting at once, across all worker processes: a number "
        "(3: --workers 50 stays under 1.5 GB at peak), auto (as many as the memory free at the run's start holds, "
        "~300 MB each, at most --workers), or 0 (no cap); jobs in flight are capped by --workers only"
    )
    spark_archive = luigi.BoolParameter(
        default=True, description="upload Spark's jars once to archive_dir and pass spark.yarn.archive (unless "
        "[spark] conf sets spark.yarn.archive or spark.yarn.jars)"
    )
    archive_dir = luigi.Parameter(
        default="", description="HDFS folder for the shared Spark jar archive and tasks zip; "
        "empty: hdfs:///user/<hadoop user>/.spark-fanout/archives"
    )


def kerberos_arguments(cfg: yarn) -> list[str]:
    """``--principal``/``--keytab`` for spark-submit from ``[yarn]``; both or neither."""
    if bool(cfg.principal) != bool(cfg.keytab):
        raise ConfigError("[yarn] principal and keytab go together: set both, or neither to use your kinit ticket")
    return ["--principal", cfg.principal, "--keytab", cfg.keytab] if cfg.principal else []


# --------------------------------------------------------------------------- REST


def kerberos_auth(principal: str = "", keytab: str = "") -> Any:
    """A SPNEGO auth object for ``requests`` (the kerberos extra): the kinit ticket, or a
    login from ``keytab`` when ``principal`` and ``keytab`` are given."""
    return kerberos.spnego_auth(principal, keytab)


def rm_base_urls(explicit: str = "", conf_dir: str | os.PathLike | None = None) -> list[str]:
    """Base URLs from ``[yarn] rm_address`` when set, else from ``yarn-site.xml``."""
    urls = [u.strip().rstrip("/") for u in explicit.split(",") if u.strip()]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"[yarn] rm_address entry {url!r} must start with http:// or https://")
    if urls:
        return urls
    urls = parse_rm_addresses(load_site("yarn-site.xml", conf_dir))
    if not urls:
        raise ConfigError(
            "no ResourceManager address: set [yarn] rm_address or HADOOP_CONF_DIR to a folder with yarn-site.xml"
        )
    return urls


class ResourceManagerRest:
    """The ResourceManager REST API (``/ws/v1/cluster``) through ``requests``.

    ``base_urls`` lists the RMs (several with HA); a connection failure, a timeout or a
    5xx answer moves on to the next one, and the last one that answered is tried first
    next time. ``request_count`` counts HTTP requests sent (failed ones included).
    """

    def __init__(
        self,
        base_urls: Sequence[str] | str,
        timeout: float = 10.0,
        auth: Any = None,
        session: requests.Session | None = None,
        user: str | None = None,
    ) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        self.base_urls = [u.rstrip("/") for u in urls if u]
        if not self.base_urls:
            raise ConfigError("ResourceManagerRest needs at least one base URL: set [yarn] rm_address")
        if timeout <= 0:
            raise ConfigError(f"[yarn] request_timeout={timeout} must be positive")
        self.timeout = timeout
        self.auth = auth
        self.user = user  # sent as user.name= for RMs with pseudo ("simple") HTTP auth
        self.session = session or requests.Session()
        self._session_pid = os.getpid()
        self.request_count = 0
        self._first = 0

    def close(self) -> None:
        """Close the HTTP session's pooled connections."""
        self.session.close()

    def application(self, app_id: str) -> ApplicationReport | None:
        """The application's report; ``None`` when the RM does not know it."""
        check_app_id(app_id)
        try:
            doc = self._call("GET", f"/ws/v1/cluster/apps/{app_id}")
        except ApplicationNotFound:
            return None
        return ApplicationReport.from_rest(doc)

    def applications_by_tag(self, tag: str) -> list[ApplicationReport]:
        """Applications carrying ``tag`` (compared lowercase, as YARN stores tags)."""
        tag = tag.strip().lower()
        # the RM filter matches any of several tags: keep exact carriers only
        return [r for r in self.applications_with_tags([tag]) if tag in r.tags]

    def applications_with_tags(self, tags: Sequence[str]) -> list[ApplicationReport]:
        """Applications carrying any of ``tags``, in one request (``?applicationTags=a,b``,
        the RM's own any-of filter); what the RM lists is returned as it is."""
        wanted = ",".join(t.strip().lower() for t in tags if t.strip())
        if not wanted:
            raise ValueError("name at least one tag: without one the RM lists every application")
        return reports_from_rest(self._call("GET", "/ws/v1/cluster/apps", params={"applicationTags": wanted}))

    def kill(self, app_id: str) -> bool:
        """Ask the RM to kill the application (``PUT …/state {"state":"KILLED"}``).

        True when the kill was accepted (HTTP 202, still under way) or is complete;
        False when the application had already finished or failed.
        """
        check_app_id(app_id)
        doc = self._call("PUT", f"/ws/v1/cluster/apps/{app_id}/state", body={"state": "KILLED"})
        state = str(doc.get("state") or "").upper()
        return state not in ("FINISHED", "FAILED")

    def _call(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One REST call with failover; every transport failure becomes a typed error."""
        query = dict(params or {})
        if self.user:
            query["user.name"] = self.user
        problems: list[str] = []
        for base in self.base_urls[self._first :] + self.base_urls[: self._first]:
            resp = self._send(method, base, path, query, body, problems)
            if resp is not None:
                self._first = self.base_urls.index(base)
                return self._decode(method, base + path, resp)
        raise YarnUnavailable(
            f"ResourceManager unreachable for {method} {path} ({'; '.join(problems)}): check that YARN is up and "
            "[yarn] rm_address / yarn-site.xml, then rerun"
        )

    def _send(self, method: str, base: str, path: str, query: dict[str, str], body: dict[str, Any] | None,
              problems: list[str]) -> requests.Response | None:
        """One try at the RM at ``base``; ``None`` (why noted in ``problems``) when the next RM is to be tried."""
        url = base + path
        self.request_count += 1
        try:
            if self._session_pid != os.getpid():
                # Made before Luigi forked this process: its pooled socket is the
                # parent's; a forked child opens its own.
                self.session, self._session_pid = requests.Session(), os.getpid()
            resp = self.session.request(method, url, params=query or None, json=body,
                                        headers={"Accept": "application/json"}, timeout=(self.timeout, self.timeout),
                                        auth=self.auth, allow_redirects=True)
        except requests.Timeout:
            problems.append(f"{base}: no answer within {self.timeout:g}s")
            return None
        except requests.ConnectionError as exc:
            problems.append(f"{base}: cannot connect ({_reason(exc)})")
            return None
        except requests.RequestException as exc:
            raise YarnError(f"{method} {url} failed: {_reason(exc)}; check [yarn] rm_address") from None
        if resp.status_code >= 500:
            problems.append(f"{base}: HTTP {resp.status_code}")
            return None
        return resp

    def _decode(self, method: str, url: str, resp: requests.Response) -> dict[str, Any]:
        status = resp.status_code
        if status in (401, 403):
            raise self._refused(method, url, resp)
        if status == 404:
            remote = _remote_exception(resp)
            if remote and remote[0] == "NotFoundException":
                raise ApplicationNotFound(
                    f"{remote[1]} ({method} {url}): the RM forgets apps when restarted without recovery"
                )
            raise YarnError(
                f"{method} {url} answered HTTP 404 without an RM error: is [yarn] rm_address an RM web URL?"
            )
        if status >= 400:
            remote = _remote_exception(resp)
            detail = f"{remote[0]}: {remote[1]}" if remote else resp.text[:200]
            raise YarnError(f"ResourceManager rejected {method} {url} (HTTP {status}: {detail})")
        try:
            doc = resp.json()
        except ValueError:
            raise YarnError(
                f"{method} {url} did not answer JSON (HTTP {status}, {resp.headers.get('Content-Type', 'no type')}): "
                "is [yarn] rm_address an RM web URL and not a proxy or login page?"
            ) from None
        if not isinstance(doc, dict):
            raise YarnError(f"{method} {url} answered JSON that is not an object: check [yarn] rm_address")
        return doc


    def _refused(self, method: str, url: str, resp: requests.Response) -> YarnPermissionDenied:
        """The one-line error for a 401 or 403: a Kerberos problem, a kill the user may not
        make, or a missing ACL."""
        status = resp.status_code
        if self.auth is not None:
            problem = kerberos.refusal(resp, self.auth)
            if problem is not None:
                error = YarnPermissionDenied(f"ResourceManager refused {method} {url} (HTTP {status}): {problem}")
                error.__cause__ = problem
                return error
        if status == 401:
            offered = "negotiate" in resp.headers.get("WWW-Authenticate", "").lower()
            hint = "it asks for Kerberos (SPNEGO): " if offered else ""
            return YarnPermissionDenied(
                f"ResourceManager refused {method} {url} (HTTP 401): {hint}kinit and set [yarn] auth=kerberos"
            )
        refused_kill = kill_refusal(resp.text)
        if refused_kill is not None:
            return refused_kill
        return YarnPermissionDenied(
            f"ResourceManager refused {method} {url} (HTTP {status}): ask for the queue ACL, or kill with "
            "`yarn application -kill` ([yarn] client=cli)"
        )


def _remote_exception(resp: requests.Response) -> tuple[str, str] | None:
    try:
        remote = resp.json().get("RemoteException") or {}
    except (ValueError, AttributeError):
        return None
    if not isinstance(remote, dict) or not remote.get("exception"):
        return None
    return str(remote["exception"]), str(remote.get("message") or "")


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:199] + "…"


def check_app_id(app_id: str) -> None:
    """Refuse (ValueError) anything but a YARN application id before it goes into a URL,
    an argument list or a file name."""
    if not APP_ID_RE.fullmatch(app_id or ""):
        raise ValueError(f"{app_id!r} is not a YARN application id (application_<cluster ts>_<n>)")


# --------------------------------------------------------------------------- CLI


class YarnCli:
    """The same operations through the ``yarn`` command (argument lists, never a shell)."""

    def __init__(self, yarn_bin: str = "yarn", timeout: float = 120.0) -> None:
        if timeout <= 0:
            raise ConfigError(f"[yarn] cli_timeout={timeout} must be positive")
        self.yarn_bin = yarn_bin
        self.timeout = timeout
        self.request_count = 0

    def application(self, app_id: str) -> ApplicationReport | None:
        """``yarn application -status ID``; ``None`` when the RM does not know it."""
        check_app_id(app_id)
        rc, out = self._run(["application", "-status", app_id])
        report = parse_application_status(out)
        if report is not None:
            return report
        if "doesn't exist" in out:
            return None
        raise YarnError(f"`{self.yarn_bin} application -status {app_id}` exited {rc} without a report: {_tail(out)}")

    def applications_by_tag(self, tag: str) -> list[ApplicationReport]:
        """``yarn application -list -appStates ALL -appTags TAG`` (Hadoop 3.x filters by tag;
        the table has no tag column, so the RM's filter is trusted)."""
        return self.applications_with_tags([tag])

    def applications_with_tags(self, tags: Sequence[str]) -> list[ApplicationReport]:
        """``yarn application -list -appStates ALL -appTags A,B`` (any of the tags), one call."""
        wanted = ",".join(t.strip().lower() for t in tags if t.strip())
        if not wanted:
            raise ValueError("name at least one tag: without one yarn lists every application")
        rc, out = self._run(["application", "-list", "-appStates", "ALL", "-appTags", wanted])
        if rc != 0 or "Application-Id" not in out:
            raise YarnError(f"`{self.yarn_bin} application -list -appTags {wanted}` exited {rc}: {_tail(out)}")
        return parse_application_list(out)

    def kill(self, app_id: str) -> bool:
        """``yarn application -kill ID``: True when a kill was sent, False when already ended."""
        check_app_id(app_id)
        rc, out = self._run(["application", "-kill", app_id])
        if "doesn't exist" in out:
            raise ApplicationNotFound(f"YARN does not know {app_id}: nothing to kill")
        if rc != 0:
            raise YarnError(f"`{self.yarn_bin} application -kill {app_id}` exited {rc}: {_tail(out)}")
        return "has already finished" not in out

    def _run(self, args: list[str]) -> tuple[int, str]:
        argv = [self.yarn_bin, *args]
        self.request_count += 1
        try:
            done = subprocess.run(  # noqa: S603 - argument list, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise YarnError(f"yarn executable {self.yarn_bin!r} not found: set [yarn] yarn_bin or PATH") from None
        except subprocess.TimeoutExpired:
            raise YarnUnavailable(
                f"`{' '.join(argv)}` gave no answer within {self.timeout:g}s: check that the RM is up "
                "(the yarn CLI retries a dead RM for minutes)"
            ) from None
        out = done.stdout.decode("utf-8", errors="replace")
        problem = kerberos.classify(out)
        if problem is not None:
            raise YarnPermissionDenied(f"`{' '.join(argv)}` was refused: {problem}") from problem
        refused_kill = kill_refusal(out)
        if refused_kill is not None:
            raise refused_kill
        if "AccessControlException" in out or "Permission denied" in out:
            raise YarnPermissionDenied(f"`{' '.join(argv)}` was refused: {_tail(out)}; kinit or ask for the queue ACL")
        return done.returncode, out


def _tail(text: str, limit: int = 300) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    tail = " | ".join(lines[-3:])
    return tail[-limit:] if tail else "no output"


class YarnClient(Protocol):
    """What :func:`follow` and the shared poll (:mod:`pipeline.cluster.yarn_shared`) need:
    :class:`ResourceManagerRest` or :class:`YarnCli`."""

    request_count: int

    def application(self, app_id: str) -> ApplicationReport | None: ...

    def applications_with_tags(self, tags: Sequence[str]) -> list[ApplicationReport]: ...


def client_from_config(cfg: yarn | None = None) -> ResourceManagerRest | YarnCli:
    """The client ``[yarn] client`` names, set up from the ``[yarn]`` section."""
    cfg = cfg or yarn()
    if cfg.client == "cli":
        return YarnCli(cfg.yarn_bin, timeout=cfg.cli_timeout)
    auth = kerberos_auth(*kerberos.configured_login(cfg.principal, cfg.keytab)) if cfg.auth == "kerberos" else None
    # Pseudo ("simple") HTTP auth needs a user name for state changes such as kill.
    user = None if auth is not None else hadoop_user()
    return ResourceManagerRest(rm_base_urls(cfg.rm_address), timeout=cfg.request_timeout, auth=auth, user=user)


# --------------------------------------------------------------------------- logs


def log_file_name(label_slug: str, app_id: str) -> str:
    """``<label slug>-<application id>.log``."""
    check_app_id(app_id)
    return f"{label_slug}-{app_id}.log"


def fetch_logs(app_id: str, dest: Path, yarn_bin: str = "yarn", max_bytes: int = 50 * MB, timeout: float = 300.0,
               chunk_size: int = 64 * 1024) -> Path:
    """Stream ``yarn logs -applicationId ID`` (stdout and stderr) into ``dest``.

    Writes chunk by chunk; past ``max_bytes`` it stops, kills ``yarn logs`` and ends the
    file with a line saying so. The file appears under its name only when complete
    (``dest.part`` meanwhile). Raises :class:`YarnUnavailable` on timeout (the partial
    file is kept, marked) and :class:`YarnError` when ``yarn logs`` fails.
    """
    check_app_id(app_id)
    if max_bytes <= 0:
        raise ConfigError(f"[yarn] log_max_bytes={max_bytes} must be positive")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    proc = _start_yarn_logs(yarn_bin, app_id)
    try:
        with _time_limit(proc, timeout) as timed_out:
            with open(part, "wb") as out:
                truncated = _copy_at_most(proc, out, max_bytes, chunk_size)
                if truncated:
                    out.write(f"\n[spark-fanout] log truncated at {max_bytes} bytes ([yarn] log_max_bytes); "
                              f"run `yarn logs -applicationId {app_id}` for all of it\n".encode())
                elif timed_out.is_set():
                    out.write(f"\n[spark-fanout] yarn logs timed out after {timeout:g}s; this log is incomplete\n".encode())
            rc = proc.wait(timeout=max(timeout, 1.0))
    finally:
        _end(proc)
    os.replace(part, dest)
    if timed_out.is_set() and not truncated:
        raise YarnUnavailable(f"`yarn logs -applicationId {app_id}` took over {timeout:g}s; partial log in {dest}: "
                              "raise [yarn] log_fetch_timeout or fetch it by hand")
    if rc != 0 and not truncated:
        raise YarnError(f"`yarn logs -applicationId {app_id}` exited {rc} (logs not aggregated yet?); its output is in {dest}")
    return dest


@contextlib.contextmanager
def _time_limit(proc: subprocess.Popen, timeout: float) -> Iterator[threading.Event]:
    """Kill ``proc`` once ``timeout`` seconds have passed; the event says whether it came to that."""
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        _kill(proc)

    timer = threading.Timer(timeout, on_timeout)
    timer.daemon = True
    timer.start()
    try:
        yield timed_out
    finally:
        timer.cancel()


def _start_yarn_logs(yarn_bin: str, app_id: str) -> subprocess.Popen:
    """``yarn logs`` in a process group of its own (so that a kill reaches its JVM), output merged."""
    argv = [yarn_bin, "logs", "-applicationId", app_id]
    try:
        return subprocess.Popen(  # noqa: S603 - argument list, no shell
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
    except FileNotFoundError:
        raise YarnError(f"yarn executable {yarn_bin!r} not found: set [yarn] yarn_bin or PATH") from None


def _copy_at_most(proc: subprocess.Popen, out: Any, max_bytes: int, chunk_size: int) -> bool:
    """Copy ``proc``'s output into ``out`` chunk by chunk, at most ``max_bytes``; past that,
    kill it and return True (truncated)."""
    assert proc.stdout is not None
    written = 0
    while chunk := proc.stdout.read1(chunk_size):
        room = max_bytes - written
        if len(chunk) > room:
            out.write(chunk[:room])
            _kill(proc)
            return True
        out.write(chunk)
        written += len(chunk)
    return False


def _end(proc: subprocess.Popen) -> None:
    """Make sure ``proc`` is gone and its pipe closed."""
    if proc.poll() is None:
        _kill(proc)
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _kill(proc: subprocess.Popen) -> None:
    """Kill the process group this module started for ``proc`` (the yarn script and its JVM)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------- polling


def follow(
    client: YarnClient,
    app_id: str,
    on_report: Callable[[ApplicationReport], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
    poll_interval: float = 2.0,
    max_poll_interval: float = 30.0,
    unavailable_grace: float = 120.0,
) -> ApplicationReport:
    """Poll ``client`` (one request per poll, back-off between) until the application is
    terminal; return that report.

    ``on_report`` gets every report that differs from the previous one. ``deadline`` is
    a ``clock()`` value (``time.monotonic()`` by default) after which
    :class:`YarnDeadlineExceeded` is raised. An unreachable RM is retried for
    ``unavailable_grace`` seconds (an HA failover takes a while) before its error is
    raised. An application the RM does not know raises :class:`ApplicationNotFound`.
    """
    check_app_id(app_id)
    last: ApplicationReport | None = None
    delay: float | None = None
    down_since: float | None = None
    while True:
        report, down_since = poll(client, app_id, down_since, clock, unavailable_grace)
        changed = report is not None and report != last
        if changed:
            last = report
            on_report(report)
        if report is not None and report.is_terminal:
            return report
        delay = next_poll_delay(delay, changed=changed, initial=poll_interval, maximum=max_poll_interval)
        sleep(wait_before_next_poll(delay, deadline, clock(), app_id, last))


def poll(client: YarnClient, app_id: str, down_since: float | None, clock: Callable[[], float],
          unavailable_grace: float) -> tuple[ApplicationReport | None, float | None]:
    """One request for ``app_id``'s report (:func:`follow`'s, and the shared poll's for an
    application its list does not show): the report and ``None``, or while the RM is
    unreachable (for less than ``unavailable_grace`` seconds) ``None`` and since when it is."""
    try:
        report = client.application(app_id)
    except YarnUnavailable:
        now = clock()
        down_since = now if down_since is None else down_since
        if now - down_since >= unavailable_grace:
            raise
        return None, down_since
    if report is None:
        raise ApplicationNotFound(
            f"ResourceManager does not know {app_id} (restarted without recovery?): "
            f"check `yarn logs -applicationId {app_id}`, then rerun the task"
        )
    return report, None


def wait_before_next_poll(delay: float, deadline: float | None, now: float, app_id: str,
                           last: ApplicationReport | None) -> float:
    """Seconds to sleep before the next poll (:func:`follow`'s and the shared poll's):
    ``delay``, cut short by the deadline; past it, :class:`YarnDeadlineExceeded`."""
    if deadline is None:
        return delay
    if now >= deadline:
        state = last.state if last else "unknown"
        raise YarnDeadlineExceeded(
            f"{app_id} still {state} at the deadline: kill it with `yarn application -kill {app_id}` "
            "or allow more time",
            report=last,
        )
    return min(delay, deadline - now)
