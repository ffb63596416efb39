"""The job runner: one ``spark-submit`` job end to end, in local mode or on YARN.

:class:`SparkJob` owns everything that running a job takes: process-tree supervision
and parent death (local mode, YARN client mode), a tagged detached submission followed
through the ResourceManager (cluster mode), the RM's final status as the truth, logs of
failed applications, a kill on stop, re-attachment to an application left running by an
earlier controller, the tracking URL, status and progress in luigid, one result record
per job and one-line errors with secrets masked.

A kind of job (training one label, a user's script, ...) subclasses it and says only:
which script (``app``) with which arguments (``app_options``), what it writes
(``output``), what it checks before any JVM starts (``preflight``), and optionally what
to do before the submission (``before_submit``) and after a successful job
(``after_success``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from contextlib import ExitStack
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import luigi
from luigi.contrib.spark import SparkSubmitTask
from luigi.parameter import ParameterVisibility

from pipeline.cluster.yarn import (
    ApplicationReport,
    SubmitOutputParser,
    YarnDeadlineExceeded,
    YarnError,
    last_python_error,
    mask_secrets,
    raise_for_outcome,
    submit_conf,
    yarn_tag,
)
from pipeline.cluster.yarn_clients import (
    YarnCli,
    client_from_config,
    fetch_logs,
    follow,
    kerberos_arguments,
    log_file_name,
)
from pipeline.cluster.yarn_clients import yarn as yarn_settings
from pipeline.config import fanout
from pipeline.data import results
from pipeline.data.labels import label_slug
from pipeline.data.results import current_run_id
from pipeline.errors import ConfigError, FanoutError, JobFailed, JobTimedOut, TaskInterrupted, one_line, stop_reason
from pipeline.runner.process import JobProcess, die_with_parent, ignore_stop_signals, stop_signals_raise
from pipeline.runner.slots import job_slot
from pipeline.runner.spark_archive import SharedFiles, shared_files
from pipeline.runner.submit import (
    free_port,
    is_local_master,
    job_conf,
    job_environment,
    private_cache_dir,
    pyspark_home,
    resolve_spark_submit,
    tasks_zip,
)
from tasks.jobspec import parse_event

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


def report_to_scheduler(reporter: Any, *args: Any) -> None:
    """Call one of Luigi's reporting hooks (set only while a worker runs the task)."""
    if callable(reporter):
        try:
            reporter(*args)
        except Exception:  # the scheduler being unreachable must not fail the job
            logger.debug("status report failed", exc_info=True)


class RunParameters:
    """Where a run keeps its logs and which run a task belongs to (not part of task ids)."""

    log_dir = luigi.Parameter(default="logs", significant=False, visibility=ParameterVisibility.HIDDEN,
                              description="Controller-side folder for job logs and per-job results")
    run_id = luigi.Parameter(default="", significant=False, visibility=ParameterVisibility.HIDDEN,
                             description="Internal: the controller run this task belongs to")


class SparkJob(RunParameters, SparkSubmitTask):
    """Run one spark-submit job; subclasses say what to run and what it produces."""

    # Luigi's ExternalProgramTask setting; run() below always captures (and streams) the
    # output, so it is no user choice: kept out of luigid.
    capture_output = luigi.BoolParameter(default=True, significant=False, visibility=ParameterVisibility.HIDDEN,
                                         description="Internal: the job's output is always captured")

    always_log_stderr = False
    #: Status recorded for a job that succeeded (the summary shows it).
    success_status = "succeeded"
    #: Word naming the unit of work in messages ("label", "job").
    unit = "job"

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

    # --- what a kind of job says ---------------------------------------------------------
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
        may find a member done by another run meanwhile (:meth:`done_elsewhere`): a job
        with none left is not submitted."""

    def after_success(self) -> None:
        """Runs after the job succeeded, before its output is checked (e.g. move it into place)."""

    # --- batches: several units of work in one job ------------------------------------------
    @property
    def members(self) -> tuple[str, ...]:
        """The units of work this job runs: its own, or a batch's (each gets its result)."""
        return (self.job_name,)

    def member_output(self, name: str) -> Any:
        """The output target of one member (a batch's ``output()`` lists them all)."""
        return self.output()

    def complete_members(self) -> set[str]:
        """Members whose output is complete now; a kind may answer from one listing."""
        return {name for name in self.members if self.member_output(name).exists()}

    @property
    def active_members(self) -> list[str]:
        """Members that go into the job: those preflight did not refuse, nor found done
        by another run."""
        return [m for m in self.members if m not in getattr(self, "_refused", {}) and m not in getattr(self, "_reused", ())]

    def done_elsewhere(self, name: str) -> None:
        """Before the submission: another run completed this member meanwhile."""
        self._reused.add(name)

    def made_here(self, name: str) -> bool:
        """Whether this job (not another run) made a complete member's output; a kind whose
        job's events may not reach the controller (YARN cluster mode) checks the output's
        made-by record."""
        return True

    def status_message(self, message: str) -> None:
        """Show ``message`` as the task's status in luigid."""
        report_to_scheduler(self.set_status_message, message)

    def refuse_member(self, name: str, reason: str) -> None:
        """Preflight of a batch: leave one member out of the job with its one-line reason
        (a task of its own raises instead)."""
        self._refused[name] = reason
        self._member_errors[name] = reason

    @property
    def is_batch(self) -> bool:
        return len(self.members) > 1

    @property
    def _finished(self) -> int:
        """Members the job has reported on (written, reused or failed inside the job)."""
        failed_inside = set(self._member_errors) - set(self._refused)
        return len(set(self._committed) | self._reused | failed_inside)

    # --- derived --------------------------------------------------------------------------
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

    @property
    def on_yarn(self) -> bool:
        return self.master == "yarn"

    @property
    def cluster_mode(self) -> bool:
        return self.on_yarn and self.deploy_mode == "cluster"

    @property
    def driver_local(self) -> bool:
        """Whether the job's driver runs on this machine (local mode, YARN client mode)."""
        return not self.cluster_mode

    @cached_property
    def tag(self) -> str:
        """The YARN tag that finds this task's application again, from any controller."""
        return yarn_tag(self.task_id)

    # --- what SparkSubmitTask turns into the command line -----------------------------------
    @property
    def name(self) -> str:
        return f"fanout-{self.name_prefix}-{self.slug}"

    @property
    def spark_submit(self) -> str:
        return resolve_spark_submit(super().spark_submit, bundled_home=pyspark_home())

    @property
    def master(self) -> str:
        return super().master or "local[1]"

    @property
    def py_files(self) -> list[str]:
        shared = self.shared_files.tasks_zip if self.cluster_mode else None
        return (super().py_files or []) + [shared or tasks_zip()]

    @cached_property
    def shared_files(self) -> SharedFiles:
        """Spark's jars and the tasks zip, published once on HDFS for every YARN job."""
        if not self.on_yarn:
            return SharedFiles(None, None)
        return shared_files(user_conf=super().conf or {}, spark_submit=self.spark_submit, environ=os.environ,
                            bundled_home=pyspark_home(), tasks_zip=tasks_zip(), cache_dir=private_cache_dir())

    @property
    def conf(self) -> dict[str, str]:
        yarn_entries = None
        if self.on_yarn:
            cfg = yarn_settings()
            yarn_entries = submit_conf(self.tag, max_app_attempts=cfg.max_app_attempts,
                                       wait_app_completion=cfg.wait_app_completion or not self.cluster_mode)
        return job_conf(super().conf or {}, ui_port=getattr(self, "_ui_port", None), yarn=yarn_entries,
                        cluster_mode=self.cluster_mode, environ=os.environ, archive=self.shared_files.archive)

    def spark_command(self) -> list[str]:
        command = super().spark_command()
        return command + kerberos_arguments(yarn_settings()) if self.on_yarn else command

    def program_environment(self) -> dict[str, str]:
        return job_environment(
            self.get_environment(), spark_submit=self.spark_submit, bundled_home=pyspark_home(),
            local_master=is_local_master(self.master), driver_local=self.driver_local,
        )

    def check_spark_settings(self) -> None:
        """The ``[spark]``/``[yarn]`` settings every job needs, checked before any JVM starts."""
        try:
            _ = super().conf  # Luigi parses "|"-separated key=value pairs here
        except ValueError:
            raise ConfigError("[spark] conf holds an entry without '=': write it as key=value|key=value") from None
        if self.on_yarn:
            kerberos_arguments(yarn_settings())  # refuses a principal without keytab and vice versa

    # --- running ------------------------------------------------------------------------------
    def run(self) -> None:
        parent = multiprocessing.parent_process()
        if parent is not None:
            die_with_parent(parent.pid, signal.SIGTERM)  # forked by Luigi: go when the controller goes
        started = time.monotonic()
        cpu_started = time.process_time()
        run_id = self.run_id or current_run_id()
        log_folder = self.log_folder
        log_folder.mkdir(parents=True, exist_ok=True)
        log_path = log_folder / f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}-spark-submit.log"
        self._job_error: str | None = None
        self._application_id: str | None = None
        self._killed: str | None = None
        self._rm: Any = None
        self._committed: dict[str, str] = {}  # label -> location, from the job's `artifact` events
        self._reused: set[str] = set()  # members whose artifact another attempt had completed
        self._refused: dict[str, str] = {}  # batch members preflight left out
        self._member_errors: dict[str, str] = {}  # member -> its one-line error from the job
        self._member_seconds: dict[str, float] = {}
        self._startup_seconds: float | None = None
        self._submitted_at: float | None = None
        self._log_path = log_path
        timeout = fanout().job_timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        self._deadline = deadline
        self.job_resources = ExitStack()  # what a kind holds while the job runs (a claim's heartbeat)

        def record(status: str, name: str | None = None, **fields: Any) -> None:
            self._record(run_id, status, started, cpu_started, name=name, log=log_path, **fields)

        # The first stop signal raises; later ones (Luigi follows a Ctrl-C with SIGTERM) are
        # ignored until the job is killed and recorded, so the record says why it stopped.
        with stop_signals_raise():
            try:
                self.check_spark_settings()
                self.preflight()
                if self.active_members:
                    if self.on_yarn:
                        self._rm = client_from_config(yarn_settings())
                    report = self._reattach(deadline) if self.on_yarn else None
                    submitted = report is not None
                    if report is None:
                        self.before_submit()
                        if self.active_members:
                            report = self._submit_and_wait(log_path, deadline)
                            submitted = True
                    if report is not None:
                        self._check_final_status(report)
                    if submitted:
                        self.after_success()
                complete = self.complete_members()
                missing = [m for m in self.members if m not in complete]
                if missing and not self.is_batch:
                    raise JobFailed(f"{self.title}: the job ended without a complete output at {self.output().path} (log: {log_path})")
                if missing:
                    raise JobFailed(f"{self.title}: ended without the outputs of {', '.join(map(repr, missing))} (log: {log_path})")
            except (TaskInterrupted, KeyboardInterrupt) as exc:
                self._stop_application()
                self._record_outcome(record, "interrupted", f"stopped by {stop_reason(exc)} before it finished: "
                                                            f"rerun to run it again")
                raise
            except (JobTimedOut, YarnDeadlineExceeded):
                self._stop_application()
                message = f"{self.title}: job ran past [fanout] job_timeout={timeout}s and was stopped"
                self._record_outcome(record, "failed", message)
                raise JobTimedOut(message) from None
            except FanoutError as exc:
                failed = self._record_outcome(record, "failed", str(exc))
                if self.is_batch:
                    raise JobFailed(self._batch_failure(failed, log_path, str(exc))) from None
                raise
            except Exception as exc:
                self._record_outcome(record, "failed", f"{type(exc).__name__}: {exc}")
                raise
            finally:
                self.job_resources.close()
                if self._rm is not None and hasattr(self._rm, "close"):
                    self._rm.close()
        for name in self.members:
            record(self._success_of(name), name=name, artifact=self.member_output(name).path)
        report_to_scheduler(self.set_progress_percentage, 100)

    def _record_outcome(self, record: Any, status: str, error: str) -> list[str]:
        """Record a job that did not end normally, member by member; returns the members
        that did not succeed. One whose artifact this run committed (its `artifact` event
        came, and the output is complete) is a success, whatever came after: a stop, a
        failure in spark.stop() or another label of its batch does not undo a published
        model. A batch member whose output is complete now is a success too: Luigi
        scheduled only incomplete ones, and a cluster-mode driver's events never reach
        this process."""
        try:
            complete = self.complete_members()
        except Exception:  # storage trouble: do not claim what cannot be checked
            complete = set()
        failed = []
        for name in self.members:
            mine = name in self._committed or name in self._reused or self.is_batch
            if mine and name in complete:
                record(self._success_of(name), name=name, artifact=self.member_output(name).path)
                continue
            failed.append(name)
            own = self._member_errors.get(name)
            if self.is_batch and own and status == "failed":
                record(status, name=name, error=f"{own} (batch log: {self._log_path})")
            else:
                record(status, name=name, error=error)
        return failed

    def _success_of(self, name: str) -> str:
        """The status of a member whose output is complete: ours, or another run's."""
        if name in self._reused:
            return results.REUSED
        if name in self._committed:
            return self.success_status
        try:
            return self.success_status if self.made_here(name) else results.REUSED
        except FanoutError:  # its record unreadable: do not claim it for another run
            return self.success_status

    def _batch_failure(self, failed: list[str], log_path: Any, error: str) -> str:
        """One line for luigid and the log: which members of the batch failed, and why
        (their own errors, else the job's)."""
        error = error.removeprefix(f"{self.title}: ")  # the job's error names the batch already
        error = error.removesuffix(f" (log: {log_path})")  # and its log, which this line names at the end
        own = [f"{name}: {self._member_errors[name]}" for name in failed if name in self._member_errors]
        rest = [name for name in failed if name not in self._member_errors]
        shown = own[:3] + ([f"{', '.join(rest[:5])}{' …' if len(rest) > 5 else ''}: {error}"] if rest else [])
        more = f"; and {len(own) - 3} more" if len(own) > 3 else ""
        done = "the others are complete" if len(failed) < len(self.members) else "none is complete"
        return one_line(f"{self.title}: {len(failed)} of {len(self.members)} {self.unit}s failed, {done}: "
                        f"{'; '.join(shown)}{more} (log: {log_path})")

    def _submit_and_wait(self, log_path: Any, deadline: float | None) -> ApplicationReport | None:
        """Run spark-submit; on YARN, return the application's final report."""
        parser = SubmitOutputParser() if self.on_yarn else None

        def on_line(line: str) -> None:
            self._on_line(line)
            if parser is not None:
                report = parser.feed(line)
                if report is not None:
                    slot.submitted()  # YARN has it: the next job may start its spark-submit
                    self._on_report(report)

        status = lambda message: report_to_scheduler(self.set_status_message, message)  # noqa: E731
        with job_slot(self, status, self.run_id or current_run_id()) as slot:
            # After the wait for a slot: start-up is timed from here, and a port picked
            # before a long wait could be taken by then.
            self._ui_port = free_port() if is_local_master(self.master) else None
            self._submitted_at = time.monotonic()
            argv = [str(a) for a in self.program_args()]
            logger.info("%s: running %s", self.title, " ".join(mask_secrets(argv)))
            with open(log_path, "w", encoding="utf-8", buffering=1) as log, JobProcess(
                argv, self.program_environment(), log, on_line=on_line, grace_s=fanout().kill_grace_seconds
            ) as job:
                try:
                    rc = job.wait(deadline)
                except TimeoutError:
                    raise JobTimedOut(f"{self.title}: job ran past its time limit") from None
        if parser is not None and (report := parser.close()) is not None:
            self._on_report(report)
        kerberos_problem = parser.kerberos_problem if parser else None  # no ticket: the RM need not be asked
        reason = self._job_error or str(kerberos_problem or "") or (parser.exception if parser else None) or _last_error_line(job.tail)
        if rc != 0 and self.driver_local:
            # The driver ran here, so its exit code counts (in YARN client mode the
            # application may be called SUCCEEDED though the driver failed).
            raise JobFailed(f"{self.title}: {reason or f'spark-submit exited with code {rc}'} (log: {log_path})")
        if not self.on_yarn:
            return None
        app_id = self._application_id or (None if kerberos_problem else self._find_by_tag())
        if app_id is None:
            raise JobFailed(
                f"{self.title}: spark-submit exited {rc} before YARN accepted an application: "
                f"{reason or 'no application id in its output'} (log: {log_path})"
            )
        self._application_id = app_id
        return self._follow(app_id, deadline)  # returns at once if already terminal

    def _tagged(self, live_only: bool) -> list[ApplicationReport]:
        """This task's applications (found by its tag), newest last."""
        apps = [r for r in self._rm.applications_by_tag(self.tag) if not (live_only and r.is_terminal)]
        return sorted(apps, key=lambda r: r.started_ms or 0)

    def _find_by_tag(self) -> str | None:
        """Fallback when spark-submit's output did not show the id: ask the RM by tag."""
        apps = self._tagged(live_only=False)
        return apps[-1].application_id if apps else None

    def _reattach(self, deadline: float | None) -> ApplicationReport | None:
        """Follow a live application of this task left by an earlier controller."""
        live = self._tagged(live_only=True)
        if not live:
            return None
        app = live[-1]
        logger.warning("%s: re-attaching to %s (%s), left running by an earlier controller",
                       self.title, app.application_id, app.state)
        self._application_id = app.application_id
        self._on_report(app)
        return self._follow(app.application_id, deadline)

    def _follow(self, app_id: str, deadline: float | None) -> ApplicationReport:
        cfg = yarn_settings()
        return follow(self._rm, app_id, self._on_report, deadline=deadline,
                      poll_interval=cfg.poll_interval, max_poll_interval=cfg.max_poll_interval)

    def _check_final_status(self, report: ApplicationReport) -> None:
        """Trust the ResourceManager, not an exit code; on failure fetch the logs."""
        if report.succeeded:
            return
        cfg = yarn_settings()
        log_file = None
        try:
            log_file = fetch_logs(report.application_id, Path(cfg.log_dir) / log_file_name(self.slug, report.application_id),
                                  yarn_bin=cfg.yarn_bin, max_bytes=cfg.log_max_bytes, timeout=cfg.log_fetch_timeout)
        except YarnError as exc:
            logger.warning("%s: could not fetch logs of %s: %s", self.title, report.application_id, exc)
        except OSError as exc:
            logger.warning("%s: could not save logs of %s: %s", self.title, report.application_id, exc)
        error = None
        if log_file is not None:
            with open(log_file, encoding="utf-8", errors="replace") as fh:
                error = _job_error_in(fh, self._member_errors)
            if error is None:
                with open(log_file, encoding="utf-8", errors="replace") as fh:
                    error = last_python_error(fh)
        raise_for_outcome(report, log_path=str(log_file) if log_file else None, error=error or self._job_error)

    def _stop_application(self) -> None:
        """After an interrupt: the local process tree is already gone; a YARN application
        lives on the cluster and must be killed there. Further Ctrl-C/SIGTERM (Luigi
        sends SIGTERM right after SIGINT) must not cut the kill short."""
        with ignore_stop_signals():
            if not self.on_yarn:
                if self._application_id:
                    logger.info("%s: stopped local Spark application %s", self.title, self._application_id)
                    self._killed = self._application_id
                return
            if not yarn_settings().kill_on_interrupt:
                self.left_running = True  # its outputs stay claimed: a later run re-attaches
                logger.warning("%s: leaving YARN application %s running ([yarn] kill_on_interrupt=false)",
                               self.title, self._application_id or f"tagged {self.tag}")
                return
            apps = [self._application_id] if self._application_id else self._live_by_tag()
            for app in apps:
                self._kill_on_yarn(app)

    def _live_by_tag(self) -> list[str]:
        """Applications of this task still alive, when the stop came before spark-submit
        printed an id (or its log level hides it)."""
        if self._rm is None:
            return []
        try:
            return [r.application_id for r in self._tagged(live_only=True)]
        except (YarnError, OSError) as exc:
            logger.error("%s: could not look up applications tagged %s (%s): "
                         "check `yarn application -list -appTags %s`", self.title, self.tag, exc, self.tag)
            return []

    def _kill_on_yarn(self, app: str) -> None:
        cfg = yarn_settings()
        clients = [self._rm] if isinstance(self._rm, YarnCli) else [self._rm, YarnCli(cfg.yarn_bin, timeout=cfg.cli_timeout)]
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
                self._killed = app
            else:
                logger.info("%s: YARN application %s had already ended", self.title, app)
            return
        logger.error("%s: YARN application %s may still run: yarn application -kill %s", self.title, app, app)

    def _record(self, run_id: str, status: str, started: float, cpu_started: float, name: str | None = None,
                **fields: Any) -> None:
        name = name or self.job_name
        seconds = self._member_seconds.get(name) if self.is_batch else None
        fields.update(batch=self.job_name if self.is_batch else None, startup_seconds=self._startup_seconds,
                      work_seconds=self._member_seconds.get(name))
        results.record(self.log_dir, results.JobResult(
            name=name, status=status, run_id=run_id,
            seconds=seconds if seconds is not None else round(time.monotonic() - started, 2),
            application_id=self._application_id, killed_application_id=self._killed,
            rm_requests=getattr(self._rm, "request_count", None),
            controller_cpu_seconds=round(time.process_time() - cpu_started, 3),
            **{k: (one_line(v) if isinstance(v, (str, Path)) else v) for k, v in fields.items()},
        ), self.result_group)

    def _on_report(self, report: ApplicationReport) -> None:
        self._application_id = report.application_id
        if report.tracking_url:
            report_to_scheduler(self.set_tracking_url, report.tracking_url)
        status = f"{report.state} {report.application_id}"
        if report.final_status not in ("UNDEFINED", ""):
            status += f" ({report.final_status})"
        report_to_scheduler(self.set_status_message, status)
        if report.progress:
            report_to_scheduler(self.set_progress_percentage, int(report.progress))

    def _on_line(self, line: str) -> None:
        event = parse_event(line)
        if event is None:
            return
        kind = event["event"]
        if kind == "started":
            self._application_id = event.get("application_id")
            if event.get("ui_url"):
                report_to_scheduler(self.set_tracking_url, event["ui_url"])
            report_to_scheduler(self.set_status_message, f"RUNNING {self._application_id}")
        elif kind == "warning":  # e.g. a label with many null rows: the console shows warnings
            logger.warning("%s", one_line(event.get("message"), 600))
        elif kind == "data_ready" and self._submitted_at is not None:
            self._startup_seconds = round(time.monotonic() - self._submitted_at, 2)
        elif kind == "error":
            self._job_error = event.get("message")
            if event.get("label") is not None:
                self._member_errors[str(event["label"])] = str(event.get("message"))
            report_to_scheduler(self.set_status_message, f"FAILED: {self._job_error}" if not self.is_batch else
                                f"{self._finished}/{len(self.members)} done; {event.get('label')} failed: {self._job_error}")
        elif kind == "artifact":
            label = str(event.get("label"))
            if event.get("location") and event.get("reused"):  # another attempt's, complete before this job's
                self._reused.add(label)
            elif event.get("location"):
                self._committed[label] = str(event["location"])
            if isinstance(event.get("seconds"), (int, float)):
                self._member_seconds[label] = float(event["seconds"])
            report_to_scheduler(self.set_status_message, f"output written: {event.get('location')}" if not self.is_batch else
                                f"{self._finished}/{len(self.members)} done; wrote {event.get('location')}")
        if self.is_batch:
            if kind in ("artifact", "error"):
                report_to_scheduler(self.set_progress_percentage, 10 + 90 * self._finished // len(self.members))
        elif "percent" in event:
            report_to_scheduler(self.set_progress_percentage, int(event["percent"]))

    def on_failure(self, exception: BaseException) -> str:
        """What the scheduler shows: one line, not a traceback."""
        return one_line(exception if isinstance(exception, FanoutError) else f"{type(exception).__name__}: {exception}")


def _job_error_in(lines: Any, per_member: dict[str, str] | None = None) -> str | None:
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


def _last_error_line(tail: Any) -> str | None:
    for line in reversed(list(tail)):
        stripped = line.strip()
        if stripped and ("Error" in stripped or "Exception" in stripped):
            return stripped[:300]
    return None
