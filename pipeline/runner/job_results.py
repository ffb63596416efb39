"""The result records of one run of a job: one per member (a label, a script job), saying
whether it succeeded here, was completed by another run, failed or was stopped, and why."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.cluster.yarn import YarnDeadlineExceeded
from pipeline.data import results
from pipeline.errors import FanoutError, JobFailed, JobTimedOut, TaskInterrupted, one_line, stop_reason
from pipeline.internals import worker_timeout_passed
from pipeline.runner.job_state import JobRun


class JobRecorder:
    """Records the run ``state`` of ``job`` (a :class:`~pipeline.runner.job.SparkJob`);
    ``rm_requests`` counts the ResourceManager calls made so far (YARN only)."""

    def __init__(self, job: Any, state: JobRun, rm_requests: Callable[[], int | None] = lambda: None) -> None:
        self.job = job
        self.state = state
        self.rm_requests = rm_requests

    @contextmanager
    def failures(self, stop: Callable[[], None]) -> Iterator[None]:
        """Around the job: one that does not end normally is recorded member by member,
        then raised again (``stop`` first ends what still runs after a stop or a timeout)."""
        job = self.job
        try:
            yield
        except (TaskInterrupted, KeyboardInterrupt) as exc:
            stop()
            timeout = worker_timeout_passed() if getattr(exc, "signum", None) == signal.SIGTERM else None
            if timeout is not None:
                # Luigi's --worker-timeout: a failure of this task, not a stop of the run
                # (as an interrupt, Luigi would hand the task out again at once).
                message = f"{job.title}: job ran past --worker-timeout={timeout:g}s and was stopped"
                self.record_outcome("failed", message)
                raise JobTimedOut(message) from None
            self.record_outcome("interrupted", f"stopped by {stop_reason(exc)} before it finished: rerun to run it again")
            raise
        except (JobTimedOut, YarnDeadlineExceeded):
            stop()
            message = f"{job.title}: job ran past [fanout] job_timeout={self.state.timeout}s and was stopped"
            self.record_outcome("failed", message)
            raise JobTimedOut(message) from None
        except FanoutError as exc:
            failed = self.record_outcome("failed", str(exc))
            if job.is_batch:
                raise JobFailed(self.batch_failure(failed, str(exc))) from None
            raise
        except Exception as exc:
            self.record_outcome("failed", f"{type(exc).__name__}: {exc}")
            raise

    def record_success(self) -> None:
        """The job ended normally: every member's output is complete."""
        for name in self.job.members:
            self.record(self.success_of(name), name=name, artifact=self.job.member_output(name).path)

    def record_outcome(self, status: str, error: str) -> list[str]:
        """Record a job that did not end normally, member by member; returns the members
        that did not succeed. One whose artifact this run committed (its `artifact` event
        came, and the output is complete) is a success, whatever came after: a stop, a
        failure in spark.stop() or another label of its batch does not undo a published
        model. A batch member whose output is complete now is a success too: Luigi
        scheduled only incomplete ones, and a cluster-mode driver's events never reach
        this process."""
        job, state = self.job, self.state
        try:
            complete = job.complete_members()
        except Exception:  # storage trouble: do not claim what cannot be checked
            complete = set()
        failed = []
        for name in job.members:
            mine = name in state.committed or name in state.reused or job.is_batch
            if mine and name in complete:
                self.record(self.success_of(name), name=name, artifact=job.member_output(name).path)
                continue
            failed.append(name)
            own = state.member_errors.get(name)
            if job.is_batch and own and status == "failed":
                self.record(status, name=name, error=f"{own} (batch log: {state.log_path})")
            else:
                self.record(status, name=name, error=error)
        return failed

    def success_of(self, name: str) -> str:
        """The status of a member whose output is complete: ours, or another run's."""
        job, state = self.job, self.state
        if name in state.reused:
            return results.REUSED
        if name in state.committed:
            return job.success_status
        try:
            return job.success_status if job.made_here(name) else results.REUSED
        except FanoutError:  # its record unreadable: do not claim it for another run
            return job.success_status

    def batch_failure(self, failed: list[str], error: str) -> str:
        """One line for luigid and the log: which members of the batch failed, and why
        (their own errors, else the job's)."""
        job, errors, log_path = self.job, self.state.member_errors, self.state.log_path
        error = error.removeprefix(f"{job.title}: ")  # the job's error names the batch already
        error = error.removesuffix(f" (log: {log_path})")  # and its log, which this line names at the end
        own = [f"{name}: {errors[name]}" for name in failed if name in errors]
        rest = [name for name in failed if name not in errors]
        shown = own[:3] + ([f"{', '.join(rest[:5])}{' …' if len(rest) > 5 else ''}: {error}"] if rest else [])
        more = f"; and {len(own) - 3} more" if len(own) > 3 else ""
        done = "the others are complete" if len(failed) < len(job.members) else "none is complete"
        return one_line(f"{job.title}: {len(failed)} of {len(job.members)} {job.unit}s failed, {done}: "
                        f"{'; '.join(shown)}{more} (log: {log_path})")

    def record(self, status: str, name: str | None = None, **fields: Any) -> None:
        """Write one member's result (the job's own name by default)."""
        job, state = self.job, self.state
        name = name or job.job_name
        seconds = state.member_seconds.get(name) if job.is_batch else None
        fields.update(log=state.log_path, batch=job.job_name if job.is_batch else None,
                      startup_seconds=state.startup_seconds, work_seconds=state.member_seconds.get(name))
        results.record(job.log_dir, results.JobResult(
            name=name, status=status, run_id=state.run_id,
            seconds=seconds if seconds is not None else round(time.monotonic() - state.started, 2),
            application_id=state.application_id, killed_application_id=state.killed, rm_requests=self.rm_requests(),
            controller_cpu_seconds=round(time.process_time() - state.cpu_started, 3),
            **{k: (one_line(v) if isinstance(v, (str, Path)) else v) for k, v in fields.items()},
        ), job.result_group)
