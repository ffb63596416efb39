"""One job's applications on YARN, found again by the task's tag from any controller:
re-attach to one an earlier controller left running, follow one to its end (through the
run's shared poll, :mod:`pipeline.cluster.yarn_shared`), trust the ResourceManager's final
status (fetching a failed one's logs), kill on a stop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.cluster.yarn import ApplicationReport, YarnError, last_python_error, raise_for_outcome
from pipeline.cluster.yarn_clients import YarnCli, client_from_config, fetch_logs, follow, log_file_name
from pipeline.cluster.yarn_clients import yarn as yarn_settings
from pipeline.cluster.yarn_shared import SharedPoll
from pipeline.runner.job_events import job_error_in
from pipeline.runner.job_state import JobRun
from pipeline.runner.slots import slots_folder

logger = logging.getLogger("luigi-interface")


class YarnSession:
    """The applications of the task tagged ``tag`` (``title`` names it in messages, ``slug``
    in log file names); what YARN says goes into ``state`` and to ``on_report``."""

    def __init__(self, tag: str, title: str, slug: str, state: JobRun,
                 on_report: Callable[[ApplicationReport], None]) -> None:
        self.tag, self.title, self.slug = tag, title, slug
        self.state = state
        self.on_report = on_report
        self.rm: Any = None  # the ResourceManager client, once connected

    def connect(self) -> None:
        """Open the ResourceManager client ([yarn] rm_rest_url or the yarn CLI)."""
        self.rm = client_from_config(yarn_settings())

    def close(self) -> None:
        if self.rm is not None and hasattr(self.rm, "close"):
            self.rm.close()

    @property
    def request_count(self) -> int | None:
        """ResourceManager requests made so far (None before connecting, or for the CLI)."""
        return getattr(self.rm, "request_count", None)

    def reattach(self, deadline: float | None) -> ApplicationReport | None:
        """Follow a live application of this task left by an earlier controller; ``None``
        when there is none."""
        live = self._tagged(live_only=True)
        if not live:
            return None
        app = live[-1]
        logger.warning("%s: re-attaching to %s (%s), left running by an earlier controller",
                       self.title, app.application_id, app.state)
        self.state.application_id = app.application_id
        self.on_report(app)
        return self.follow(app.application_id, deadline)

    def find_by_tag(self) -> str | None:
        """Fallback when spark-submit's output did not show the id: ask the RM by tag."""
        apps = self._tagged(live_only=False)
        return apps[-1].application_id if apps else None

    def follow(self, app_id: str, deadline: float | None) -> ApplicationReport:
        """The application's final report, read from the run's shared RM poll (one request
        per interval for all of the run's jobs in flight, whichever process sends it), or
        polled on its own with ``[yarn] shared_poll = false``."""
        cfg = yarn_settings()
        if not cfg.shared_poll:
            return follow(self.rm, app_id, self.on_report, deadline=deadline,
                          poll_interval=cfg.poll_interval, max_poll_interval=cfg.max_poll_interval)
        poll = SharedPoll(slots_folder(self.state.run_id) / "rm-poll", self.rm, cfg.poll_interval)
        return poll.follow(app_id, self.tag, self.on_report, deadline=deadline,
                           max_poll_interval=cfg.max_poll_interval)

    def check_final_status(self, report: ApplicationReport) -> None:
        """Trust the ResourceManager, not an exit code; on failure fetch the logs and raise
        with the job's own error from them."""
        if report.succeeded:
            return
        log_file = self._fetch_logs(report.application_id)
        error = self._error_in(log_file) if log_file is not None else None
        raise_for_outcome(report, log_path=str(log_file) if log_file else None, error=error or self.state.job_error)

    def stop(self) -> None:
        """After an interrupt: kill this task's application, or leave it running
        (``[yarn] kill_on_interrupt = false``: its outputs stay claimed, a later run re-attaches)."""
        if not yarn_settings().kill_on_interrupt:
            self.state.left_running = True
            logger.warning("%s: leaving YARN application %s running ([yarn] kill_on_interrupt=false)",
                           self.title, self.state.application_id or f"tagged {self.tag}")
            return
        for app in [self.state.application_id] if self.state.application_id else self._live_by_tag():
            self._kill(app)

    def _fetch_logs(self, app_id: str) -> Path | None:
        cfg = yarn_settings()
        try:
            return fetch_logs(app_id, Path(cfg.log_dir) / log_file_name(self.slug, app_id), yarn_bin=cfg.yarn_bin,
                              max_bytes=cfg.log_max_bytes, timeout=cfg.log_fetch_timeout)
        except YarnError as exc:
            logger.warning("%s: could not fetch logs of %s: %s", self.title, app_id, exc)
        except OSError as exc:
            logger.warning("%s: could not save logs of %s: %s", self.title, app_id, exc)
        return None

    def _error_in(self, log_file: Path) -> str | None:
        """The job's own error in its logs (each member's too), else the last Python error."""
        with open(log_file, encoding="utf-8", errors="replace") as fh:
            error = job_error_in(fh, self.state.member_errors)
        if error is None:
            with open(log_file, encoding="utf-8", errors="replace") as fh:
                error = last_python_error(fh)
        return error

    def _tagged(self, live_only: bool) -> list[ApplicationReport]:
        """This task's applications (found by its tag), newest last."""
        apps = [r for r in self.rm.applications_by_tag(self.tag) if not (live_only and r.is_terminal)]
        return sorted(apps, key=lambda r: r.started_ms or 0)

    def _live_by_tag(self) -> list[str]:
        """Applications of this task still alive, when the stop came before spark-submit
        printed an id (or its log level hides it)."""
        if self.rm is None:
            return []
        try:
            return [r.application_id for r in self._tagged(live_only=True)]
        except (YarnError, OSError) as exc:
            logger.error("%s: could not look up applications tagged %s (%s): "
                         "check `yarn application -list -appTags %s`", self.title, self.tag, exc, self.tag)
            return []

    def _kill(self, app: str) -> None:
        cfg = yarn_settings()
        clients = [self.rm] if isinstance(self.rm, YarnCli) else [self.rm, YarnCli(cfg.yarn_bin, timeout=cfg.cli_timeout)]
        for client in clients:
            if client is None:
                continue
            try:
                killed = client.kill(app)
            except (YarnError, OSError) as exc:
                logger.warning("%s: could not kill %s through %s: %s", self.title, app, type(client).__name__, exc)
                continue
            if killed:
                logger.warning("%s: killed YARN application %s", self.title, app)
                self.state.killed = app
            else:
                logger.info("%s: YARN application %s had already ended", self.title, app)
            return
        logger.error("%s: YARN application %s may still run: yarn application -kill %s", self.title, app, app)
