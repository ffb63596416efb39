"""The job runner: one ``spark-submit`` job end to end, in local mode or on YARN.

A kind of job (training labels, a user's script, scoring) subclasses :class:`SparkJob`
and says only what :class:`JobKind` asks: which script (``app``) with which arguments
(``app_options``), what it writes (``output``), what it checks before any JVM starts
(``preflight``), and optionally what to do before the submission (``before_submit``) and
after a successful job (``after_success``).

:class:`SparkJob` runs it: process-tree supervision and parent death (local mode, YARN
client mode), a tagged detached submission followed through the ResourceManager (cluster
mode), the RM's final status as the truth, logs of failed applications, a kill on stop,
re-attachment to an application left running by an earlier controller, the tracking URL,
status and progress in luigid, one result record per member and one-line errors with
secrets masked. Its parts, each in a module of its own: the command line
(:mod:`~pipeline.runner.command`), the run's state (:mod:`~pipeline.runner.job_state`),
the job's events (:mod:`~pipeline.runner.job_events`), the YARN application
(:mod:`~pipeline.runner.yarn_session`) and the result records
(:mod:`~pipeline.runner.job_results`).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import luigi
from luigi.parameter import ParameterVisibility

from pipeline.cluster.yarn import ApplicationReport, SubmitOutputParser, mask_secrets
from pipeline.config import fanout
from pipeline.data import results
from pipeline.data.labels import label_slug
from pipeline.data.results import current_run_id
from pipeline.errors import FanoutError, JobFailed, JobTimedOut, one_line
from pipeline.runner.command import SparkCommand
from pipeline.runner.job_events import JobEvents, SchedulerView, last_error_line
from pipeline.runner.job_results import JobRecorder
from pipeline.runner.job_state import JobRun
from pipeline.runner.process import JobProcess, die_with_parent, ignore_stop_signals, stop_signals_raise
from pipeline.runner.slots import job_slot
from pipeline.runner.submit import free_port, is_local_master
from pipeline.runner.yarn_session import YarnSession

logger = logging.getLogger("luigi-interface")

#: A wrapper task's priority: below its jobs', which Luigi's scheduler would otherwise raise to it.
WRAPPER_PRIORITY = -1


def start_in_order(jobs: list[Any]) -> list[Any]:
    """``jobs`` (a wrapper's requirements), set to start in this order.

    Luigi's scheduler starts the pending task of highest priority, then the one it learned
    of first; it learns of a wrapper's requirements as a set, in an order that changes from
    run to run. Decreasing priorities between the wrapper's (:data:`WRAPPER_PRIORITY`) and
    the default 0 fix the order without putting these jobs ahead of anyone else's."""
    for rank, job in enumerate(jobs):
        job.priority = WRAPPER_PRIORITY * rank / len(jobs)
    return jobs


class RunParameters:
    """Where a run keeps its logs and which run a task belongs to (not part of task ids)."""

    log_dir = luigi.Parameter(default="logs", significant=False, visibility=ParameterVisibility.HIDDEN,
                              description="Controller-side folder for job logs and per-job results")
    run_id = luigi.Parameter(default="", significant=False, visibility=ParameterVisibility.HIDDEN,
                             description="Internal: the controller run this task belongs to")


class JobKind:
    """What a kind of job says about itself; :class:`SparkJob` asks, and runs it. With
    Luigi's ``output()`` and SparkSubmitTask's ``app`` and ``app_options()``, these are
    the hooks a kind implements (the defaults fit a job of one member)."""

    #: Status recorded for a job that succeeded (the summary shows it).
    success_status = "succeeded"
    #: Word naming the unit of work in messages ("label", "job").
    unit = "job"
    log_dir: str

    @property
    def job_name(self) -> str:
        """The unit of work's own name (a label, a job name): in messages and results."""
        raise NotImplementedError

    @property
    def result_group(self) -> str:
        """Folder under ``log_dir`` that keeps this kind's (or configuration's) results apart."""
        return ""

    @property
    def name_prefix(self) -> str:
        """Start of the Spark application name: ``fanout-<prefix>-<slug>``."""
        return "job"

    def preflight(self) -> None:
        """Checks that can refuse the job in milliseconds, before any JVM starts."""

    def before_submit(self) -> None:
        """Runs once the job is about to be submitted (e.g. remove stale temporaries). It
        may find a member done by another run meanwhile (``done_elsewhere``): a job
        with none left is not submitted."""

    def after_success(self) -> None:
        """Runs after the job succeeded, before its output is checked (e.g. move it into place)."""

    @property
    def members(self) -> tuple[str, ...]:
        """The units of work this job runs: its own, or a batch's (each gets its result)."""
        return (self.job_name,)

    def member_output(self, name: str) -> Any:
        """The output target of one member (a batch's ``output()`` lists them all)."""
        return self.output()  # type: ignore[attr-defined] - Luigi's, on the task

    def complete_members(self) -> set[str]:
        """Members whose output is complete now; a kind may answer from one listing."""
        return {name for name in self.members if self.member_output(name).exists()}

    def made_here(self, name: str) -> bool:
        """Whether this job (not another run) made a complete member's output; a kind whose
        job's events may not reach the controller (YARN cluster mode) checks the output's
        made-by record."""
        return True

    # --- derived ------------------------------------------------------------------------
    @property
    def is_batch(self) -> bool:
        return len(self.members) > 1

    @cached_property
    def slug(self) -> str:
        return label_slug(self.job_name)

    @property
    def title(self) -> str:
        if self.is_batch:
            return f"batch of {len(self.members)} {self.unit}s ({self.members[0]!r}, ...)"
        return f"{self.unit} {self.job_name!r}"

    @property
    def log_folder(self) -> Path:
        """Where this job's spark-submit log goes; a batch's beside its members' results."""
        group = self.result_group
        if self.is_batch:
            group = f"{group}/batches" if group else "batches"
        return results.result_dir(self.log_dir, self.job_name, group)


class SparkJob(RunParameters, JobKind, SparkCommand):
    """Run one spark-submit job; subclasses say what to run and what it produces."""

    @classmethod
    def get_params(cls) -> list[tuple[str, luigi.Parameter]]:
        """Luigi's list of this class's parameters, built once per class. Luigi rebuilds it
        with ``dir()`` on every call, about 14 times per task in the controller's main loop,
        ~2.4 ms each for these classes: at 20 workers that loop was the bottleneck."""
        cached = cls.__dict__.get("_fanout_params")
        if cached is None:
            cached = super().get_params()
            cls._fanout_params = cached
        return list(cached)

    @cached_property
    def state(self) -> JobRun:
        """The current run's state: :meth:`run` starts a new one; empty before any run."""
        return JobRun()

    # --- what a kind calls while its job runs ---------------------------------------------
    @property
    def active_members(self) -> list[str]:
        """Members that go into the job: those preflight did not refuse, nor found done
        by another run."""
        return [m for m in self.members if m not in self.state.refused and m not in self.state.reused]

    def refuse_member(self, name: str, reason: str) -> None:
        """Preflight of a batch: leave one member out of the job with its one-line reason
        (a task of its own raises instead)."""
        self.state.refused[name] = reason
        self.state.member_errors[name] = reason

    def done_elsewhere(self, name: str) -> None:
        """Before the submission: another run completed this member meanwhile."""
        self.state.reused.add(name)

    def status_message(self, message: str) -> None:
        """Show ``message`` as the task's status in luigid."""
        SchedulerView(self).status(message)

    # --- running ------------------------------------------------------------------------------
    def run(self) -> None:
        parent = multiprocessing.parent_process()
        if parent is not None:
            die_with_parent(parent.pid, signal.SIGTERM)  # forked by Luigi: go when the controller goes
        state = self.state = JobRun.begin(self.run_id or current_run_id(), self.log_folder, fanout().job_timeout)
        events = JobEvents(state, SchedulerView(self), len(self.members))
        yarn = YarnSession(self.tag, self.title, self.slug, state, events.on_report) if self.on_yarn else None
        recorder = JobRecorder(self, state, lambda: yarn.request_count if yarn is not None else None)
        # The first stop signal raises; later ones (Luigi follows a Ctrl-C with SIGTERM) are
        # ignored until the job is killed and recorded, so the record says why it stopped.
        with stop_signals_raise():
            try:
                with recorder.failures(stop=lambda: self._stop_application(yarn)):
                    self._run_job(events, yarn)
            finally:
                state.resources.close()
                if yarn is not None:
                    yarn.close()
        recorder.record_success()
        SchedulerView(self).progress(100)

    def _run_job(self, events: JobEvents, yarn: YarnSession | None) -> None:
        """Checks, then the job (or its application an earlier controller left running on
        YARN), then its outputs."""
        self.check_spark_settings()
        self.preflight()
        if self.active_members:
            if yarn is not None:
                yarn.connect()
            report = yarn.reattach(self.state.deadline) if yarn is not None else None
            submitted = report is not None
            if report is None:
                self.before_submit()
                if self.active_members:
                    report = self._submit_and_wait(events, yarn)
                    submitted = True
            if report is not None and yarn is not None:
                yarn.check_final_status(report)
            if submitted:
                self.after_success()
        self._check_outputs()

    def _check_outputs(self) -> None:
        complete = self.complete_members()
        missing = [m for m in self.members if m not in complete]
        log_path = self.state.log_path
        if missing and not self.is_batch:
            raise JobFailed(f"{self.title}: the job ended without a complete output at {self.output().path} (log: {log_path})")
        if missing:
            raise JobFailed(f"{self.title}: ended without the outputs of {', '.join(map(repr, missing))} (log: {log_path})")

    def _submit_and_wait(self, events: JobEvents, yarn: YarnSession | None) -> ApplicationReport | None:
        """Run spark-submit; on YARN, return the application's final report."""
        state = self.state
        parser = SubmitOutputParser() if yarn is not None else None
        rc, tail = self._spark_submit(events, parser)
        if parser is not None and (report := parser.close()) is not None:
            events.on_report(report)
        kerberos_problem = parser.kerberos_problem if parser else None  # no ticket: the RM need not be asked
        reason = (state.job_error or str(kerberos_problem or "") or (parser.exception if parser else None)
                  or last_error_line(tail))
        if rc != 0 and self.driver_local:
            # The driver ran here, so its exit code counts (in YARN client mode the
            # application may be called SUCCEEDED though the driver failed).
            raise JobFailed(f"{self.title}: {reason or f'spark-submit exited with code {rc}'} (log: {state.log_path})")
        if yarn is None:
            return None
        app_id = state.application_id or (None if kerberos_problem else yarn.find_by_tag())
        if app_id is None:
            raise JobFailed(f"{self.title}: spark-submit exited {rc} before YARN accepted an application: "
                            f"{reason or 'no application id in its output'} (log: {state.log_path})")
        state.application_id = app_id
        return yarn.follow(app_id, state.deadline)  # returns at once if already terminal

    def _spark_submit(self, events: JobEvents, parser: SubmitOutputParser | None) -> tuple[int, Sequence[str]]:
        """spark-submit, once a slot is free; its exit code and last lines."""
        def on_line(line: str) -> None:
            events.on_line(line)
            if parser is not None and (report := parser.feed(line)) is not None:
                slot.submitted()  # YARN has it: the next job may start its spark-submit
                events.on_report(report)

        state = self.state
        with job_slot(self, self.status_message, state.run_id) as slot:
            # After the wait for a slot: start-up is timed from here, and a port picked
            # before a long wait could be taken by then.
            state.ui_port = free_port() if is_local_master(self.master) else None
            state.submitted_at = time.monotonic()
            argv = [str(a) for a in self.program_args()]
            logger.info("%s: running %s", self.title, " ".join(mask_secrets(argv)))
            with open(state.log_path, "w", encoding="utf-8", buffering=1) as log, JobProcess(
                argv, self.program_environment(), log, on_line=on_line, grace_s=fanout().kill_grace_seconds
            ) as job:
                try:
                    return job.wait(state.deadline), job.tail
                except TimeoutError:
                    raise JobTimedOut(f"{self.title}: job ran past its time limit") from None

    def _stop_application(self, yarn: YarnSession | None) -> None:
        """After an interrupt: the local process tree is already gone; a YARN application
        lives on the cluster and must be killed there. Further Ctrl-C/SIGTERM (Luigi
        sends SIGTERM right after SIGINT) must not cut the kill short."""
        with ignore_stop_signals():
            if yarn is not None:
                yarn.stop()
            elif self.state.application_id:
                logger.info("%s: stopped local Spark application %s", self.title, self.state.application_id)
                self.state.killed = self.state.application_id

    def on_failure(self, exception: BaseException) -> str:
        """What the scheduler shows: one line, not a traceback."""
        return one_line(exception if isinstance(exception, FanoutError) else f"{type(exception).__name__}: {exception}")
