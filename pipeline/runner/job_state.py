"""What one run of a job learns as it goes, in one record created at the start of the run."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass
class JobRun:
    """The state of one run of a job (one call of :meth:`SparkJob.run
    <pipeline.runner.job.SparkJob.run>`): its identity and limits, what the job's events and
    YARN said, and what the run decided about each member. A job that never ran (a command
    line built in a test) holds an empty one."""

    run_id: str = ""
    log_path: Path | None = None  # spark-submit's log
    timeout: float = 0  # [fanout] job_timeout (0: none)
    deadline: float | None = None  # the time.monotonic() by which the job must end
    started: float = field(default_factory=time.monotonic)
    cpu_started: float = field(default_factory=time.process_time)
    #: What a kind holds while the job runs (a claim and its heartbeat), closed when the run ends.
    resources: ExitStack = field(default_factory=ExitStack)
    application_id: str | None = None  # Spark's or YARN's, once known
    killed: str | None = None  # the application this run stopped
    left_running: bool = False  # a stop left the YARN application running: a later run re-attaches
    job_error: str | None = None  # the job's last one-line error
    committed: dict[str, str] = field(default_factory=dict)  # member -> location, from the job's `artifact` events
    reused: set[str] = field(default_factory=set)  # members whose output another run had completed
    refused: dict[str, str] = field(default_factory=dict)  # batch members preflight left out, with why
    member_errors: dict[str, str] = field(default_factory=dict)  # member -> its one-line error from the job
    member_seconds: dict[str, float] = field(default_factory=dict)  # member -> its own time inside the job
    startup_seconds: float | None = None  # spark-submit's start until the job's data was ready
    submitted_at: float | None = None  # when spark-submit started (after the wait for a slot)
    ui_port: int | None = None  # the local Spark UI's port, picked once the slot is held

    @classmethod
    def begin(cls, run_id: str, log_folder: Path, timeout: float) -> JobRun:
        """A new run now: its log file named in ``log_folder`` (created), its deadline set."""
        started = time.monotonic()
        log_folder.mkdir(parents=True, exist_ok=True)
        log_path = log_folder / f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}-spark-submit.log"
        return cls(run_id=run_id, log_path=log_path, timeout=timeout, started=started,
                   deadline=time.monotonic() + timeout if timeout > 0 else None)

    def finished(self) -> int:
        """Members the job has reported on (written, reused or failed inside the job)."""
        failed_inside = set(self.member_errors) - set(self.refused)
        return len(set(self.committed) | self.reused | failed_inside)
