"""The controller's link to ``luigid``: Luigi's RemoteScheduler, told what to do when
luigid stops answering.

Left alone, Luigi retries every call (``[core] rpc_retry_attempts`` x ``rpc_retry_wait``,
3 x 30 s), logs each attempt with an empty traceback, then raises ``RPCError`` out of its
main loop: the run ends with a traceback, its running jobs are terminated, and each status
report of a running job blocks for the whole retry (its output stops draining). Here:

- a job's status reports (message, progress, tracking URL) are tried once with a short
  timeout and dropped on failure, then paused for a while: the job goes on unslowed;
- the controller's own calls keep Luigi's retries; once those are spent the scheduler is
  *lost*: one warning says so, no new job starts, jobs already running finish and are
  kept, and every later call is answered at once as an empty scheduler would answer it.

The run then ends like one whose remaining tasks were not run (``[retcode] not_run``),
and the summary says which jobs did not start and why (:mod:`pipeline.runner.controller`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from luigi import rpc

from pipeline.internals import RemoteSchedulerBase, WorkerSchedulerFactory, use_on_command_line

logger = logging.getLogger("luigi-interface")

#: Calls a running task makes to show its state: worth one quick try, never a wait.
_REPORTS = frozenset({"/api/set_task_status_message", "/api/set_task_progress_percentage",
                      "/api/decrease_running_task_resources", "/api/report_task_statistics",
                      "/api/add_scheduler_message_response"})
REPORT_TIMEOUT_S = 3.0  # luigid answers a report in milliseconds
REPORT_PAUSE_S = 30.0  # after a failed report, this process drops reports for this long
#: What an empty scheduler answers to a worker asking for work: nothing, stop asking.
_NO_WORK = {"n_pending_tasks": 0, "running_tasks": [], "task_id": None, "n_unique_pending": 0,
            "n_pending_last_scheduled": 0, "worker_state": "disabled"}
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


@dataclass(frozen=True)
class LostScheduler:
    """luigid stopped answering (or never answered) during this run."""

    address: str  # host:port
    reason: str  # e.g. "Connection refused"
    answered_before: bool

    def line(self) -> str:
        """What the warning says when it happens."""
        if not self.answered_before:
            return (f"the scheduler at {self.address} does not answer ({self.reason}): start luigid there "
                    f"(luigid --background --port {self.address.rsplit(':', 1)[-1]}) or pass --local-scheduler")
        return (f"the scheduler at {self.address} stopped answering ({self.reason}): no new job starts; "
                f"jobs already running finish and are kept")


_latest: dict[str, Any] = {"scheduler": None}


def lost_scheduler() -> LostScheduler | None:
    """How the scheduler of this process's latest run was lost, ``None`` if it was not (or
    the run used Luigi's in-process scheduler)."""
    sched = _latest["scheduler"]
    return getattr(sched, "lost", None)


def failure_reason(exc: BaseException | None) -> str:
    """A few words for why a call failed: the OS's words when the error carries them."""
    seen = exc
    while seen is not None:
        found = _ERRNO_TEXT.search(str(seen))
        if found:
            return found.group(1).strip()
        if "timed out" in str(seen).lower():
            return "timed out"
        seen = getattr(seen, "sub_exception", None) or seen.__cause__ or seen.__context__
    return type(exc).__name__ if exc is not None else "no answer"


class RemoteScheduler(RemoteSchedulerBase):
    """Luigi's proxy for luigid that outlives luigid (see the module's docstring)."""

    def __init__(self, url: str = "http://localhost:8082/", connect_timeout: float | None = None) -> None:
        super().__init__(url, connect_timeout)
        self.lost: LostScheduler | None = None
        self._answered = False
        self._reports_paused_until = 0.0
        self._lock = threading.Lock()  # the keep-alive thread and the main loop may lose it at once
        _latest["scheduler"] = self

    @property
    def address(self) -> str:
        return urlparse(self.url).netloc or self.url

    def request(self, url: str, data: dict[str, Any], attempts: int, allow_null: bool) -> Any:
        if self.lost is not None:
            return _offline_answer(url)
        if url in _REPORTS or (url == "/api/add_task" and data.get("tracking_url")):
            return self._report(url, data)
        try:
            answer = self.luigi_request(url, data, attempts, allow_null)
        except rpc.RPCError as exc:
            self._lose(exc)
            return _offline_answer(url)
        self._answered = True
        return answer

    def _report(self, url: str, data: dict[str, Any]) -> Any:
        now = time.monotonic()
        if now < self._reports_paused_until:
            return None
        try:
            return self.fetch_once(url, data, min(self.connect_timeout, REPORT_TIMEOUT_S))
        except (*self.fetch_errors, OSError, ValueError, KeyError) as exc:
            self._reports_paused_until = now + REPORT_PAUSE_S
            logger.debug("status report to %s dropped: %s", self.address, failure_reason(exc))
            return None

    def _lose(self, exc: BaseException) -> None:
        with self._lock:
            if self.lost is not None:
                return
            self.lost = LostScheduler(self.address, failure_reason(exc), self._answered)
        if self.lost.answered_before:  # mid-run: jobs may run for hours yet, say it now (else the run ends at once)
            logger.warning(self.lost.line())


def _offline_answer(url: str) -> Any:
    return dict(_NO_WORK) if url in ("/api/get_work", "/api/count_pending") else None


class SchedulerFactory(WorkerSchedulerFactory):
    """Luigi's factory, with :class:`RemoteScheduler` for luigid."""

    def create_remote_scheduler(self, url: str) -> RemoteScheduler:
        return RemoteScheduler(url)


def install() -> None:
    """Make the ``luigi`` command line use :class:`RemoteScheduler` (the command line only)."""
    use_on_command_line(SchedulerFactory)
