"""What a running job tells: its ``FANOUT_EVENT`` lines and YARN's reports, turned into the
run's state (:class:`~pipeline.runner.job_state.JobRun`) and luigid's view of the task."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from pipeline.cluster.yarn import ApplicationReport
from pipeline.errors import one_line
from pipeline.runner.job_state import JobRun
from tasks.jobspec import parse_event

logger = logging.getLogger("luigi-interface")


def report_to_scheduler(reporter: Any, *args: Any) -> None:
    """Call one of Luigi's reporting hooks (set only while a worker runs the task)."""
    if callable(reporter):
        try:
            reporter(*args)
        except Exception:  # the scheduler being unreachable must not fail the job
            logger.debug("status report failed", exc_info=True)


class SchedulerView:
    """What luigid shows of a running task: its status message, progress and tracking URL."""

    def __init__(self, task: Any) -> None:
        self._task = task

    def status(self, message: str) -> None:
        report_to_scheduler(self._task.set_status_message, message)

    def progress(self, percent: int) -> None:
        report_to_scheduler(self._task.set_progress_percentage, percent)

    def tracking_url(self, url: str) -> None:
        report_to_scheduler(self._task.set_tracking_url, url)


class JobEvents:
    """The job's output line by line, and YARN's reports on its application."""

    def __init__(self, state: JobRun, luigid: SchedulerView, members: int) -> None:
        self.state = state
        self.luigid = luigid
        self.members = members
        self._handlers = {"started": self._started, "warning": self._warning, "data_ready": self._data_ready,
                          "error": self._error, "artifact": self._artifact}

    @property
    def is_batch(self) -> bool:
        return self.members > 1

    def on_report(self, report: ApplicationReport) -> None:
        self.state.application_id = report.application_id
        if report.tracking_url:
            self.luigid.tracking_url(report.tracking_url)
        status = f"{report.state} {report.application_id}"
        if report.final_status not in ("UNDEFINED", ""):
            status += f" ({report.final_status})"
        self.luigid.status(status)
        if report.progress:
            self.luigid.progress(int(report.progress))

    def on_line(self, line: str) -> None:
        event = parse_event(line)
        if event is None:
            return
        handler = self._handlers.get(event["event"])
        if handler is not None:
            handler(event)
        if self.is_batch:
            if event["event"] in ("artifact", "error"):
                self.luigid.progress(10 + 90 * self.state.finished() // self.members)
        elif "percent" in event:
            self.luigid.progress(int(event["percent"]))

    def _started(self, event: dict[str, Any]) -> None:
        self.state.application_id = event.get("application_id")
        if event.get("ui_url"):
            self.luigid.tracking_url(event["ui_url"])
        self.luigid.status(f"RUNNING {self.state.application_id}")

    def _warning(self, event: dict[str, Any]) -> None:  # e.g. a label with many null rows: the console shows warnings
        logger.warning("%s", one_line(event.get("message"), 600))

    def _data_ready(self, event: dict[str, Any]) -> None:
        if self.state.submitted_at is not None:
            self.state.startup_seconds = round(time.monotonic() - self.state.submitted_at, 2)

    def _error(self, event: dict[str, Any]) -> None:
        state = self.state
        state.job_error = event.get("message")
        if event.get("label") is not None:
            state.member_errors[str(event["label"])] = str(event.get("message"))
        self.luigid.status(f"FAILED: {state.job_error}" if not self.is_batch else
                           f"{state.finished()}/{self.members} done; {event.get('label')} failed: {state.job_error}")

    def _artifact(self, event: dict[str, Any]) -> None:
        state, label = self.state, str(event.get("label"))
        if event.get("location") and event.get("reused"):  # another attempt's, complete before this job's
            state.reused.add(label)
        elif event.get("location"):
            state.committed[label] = str(event["location"])
        if isinstance(event.get("seconds"), (int, float)):
            state.member_seconds[label] = float(event["seconds"])
        self.luigid.status(f"output written: {event.get('location')}" if not self.is_batch else
                           f"{state.finished()}/{self.members} done; wrote {event.get('location')}")


def job_error_in(lines: Iterable[str], per_member: dict[str, str] | None = None) -> str | None:
    """The last one-line error the job reported (a ``FANOUT_EVENT error`` line), e.g.
    in the aggregated YARN logs of a cluster-mode job; errors naming a label (a batch's
    member) also go into ``per_member``."""
    found = None
    for line in lines:
        event = parse_event(line)
        if event is not None and event["event"] == "error" and event.get("message"):
            found = event["message"]
            if per_member is not None and event.get("label") is not None:
                per_member[str(event["label"])] = str(event["message"])
    return found


def last_error_line(tail: Iterable[str]) -> str | None:
    """The last line of spark-submit's output that names an error or exception."""
    for line in reversed(list(tail)):
        stripped = line.strip()
        if stripped and ("Error" in stripped or "Exception" in stripped):
            return stripped[:300]
    return None
