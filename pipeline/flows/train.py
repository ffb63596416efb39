"""The controller: ``TrainAll`` fans out one ``TrainModel`` spark-submit job per label."""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import luigi
from luigi.contrib.spark import SparkSubmitTask

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
from pipeline.data.artifacts import ArtifactTarget, artifact_location, completed_slugs, remove_stale_temporaries
from pipeline.data.datasets import DatasetSchema, read_schema
from pipeline.data.labels import DEFAULT_LABEL_PREFIX, feature_columns, label_slug, resolve_labels
from pipeline.errors import ConfigError, DatasetError, FanoutError, JobFailed, JobTimedOut, TaskInterrupted, one_line
from pipeline.runner import results
from pipeline.runner.process import JobProcess, die_with_parent, ignore_stop_signals, stop_signals_raise
from pipeline.runner.submit import (
    application_name,
    free_port,
    is_local_master,
    job_conf,
    job_environment,
    pyspark_home,
    resolve_spark_submit,
    tasks_zip,
    train_script,
)
from pipeline.storage.locations import Location, parse_location
from tasks.engine_specs import DEFAULT_ENGINE, EngineParamError, resolve_params
from tasks.jobspec import SPEC_FLAG, encode_spec, parse_event

logger = logging.getLogger("luigi-interface")

_RUN_ID = f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"


def current_run_id() -> str:
    """Identifies this controller process's run in result files and summaries."""
    return _RUN_ID


class TrainingParameters:
    """Parameters shared by TrainAll and TrainModel (TrainAll hands them down)."""

    data = luigi.Parameter(default="data/demo.parquet", description="Parquet dataset: local path, file://, hdfs:// or webhdfs://")
    models = luigi.Parameter(default="models", description="Artifact root: one folder per label is written under it")
    engine = luigi.Parameter(default=DEFAULT_ENGINE, description="lightgbm | mllib-gbt | mllib-logreg | mllib-mlp | synapseml")
    params = luigi.DictParameter(default={}, description='Engine parameters as JSON, e.g. {"num_iterations": 200}')
    features = luigi.OptionalListParameter(default=None, description="Feature columns (JSON list); default: every numeric column that is not a label")
    label_prefix = luigi.Parameter(default=DEFAULT_LABEL_PREFIX, description="Columns starting with this are labels (default label rule)")
    balance_ratio = luigi.FloatParameter(default=1.0, description="Keep at most this many majority rows per minority row (0 = no balancing)")
    test_fraction = luigi.FloatParameter(default=0.2, description="Share of rows held out for evaluation (0 to 0.9)")
    seed = luigi.IntParameter(default=42, description="Seed for splitting, balancing and training")
    log_dir = luigi.Parameter(default="logs", significant=False, description="Controller-side folder for job logs and per-label results")
    run_id = luigi.Parameter(default="", significant=False, description="Internal: the controller run this task belongs to")

    def check_training_parameters(self) -> dict[str, Any]:
        """Validate what can be checked without data; returns the resolved engine params."""
        try:
            resolved = resolve_params(self.engine, _plain(self.params))
        except EngineParamError as exc:
            raise ConfigError(str(exc)) from None
        if not (self.balance_ratio == 0 or self.balance_ratio >= 1):
            raise ConfigError(f"balance-ratio {self.balance_ratio} is invalid: use 0 (off) or a value >= 1")
        if not 0 <= self.test_fraction <= 0.9:
            raise ConfigError(f"test-fraction {self.test_fraction} is invalid: use a value from 0 to 0.9")
        return resolved

    @property
    def models_root(self) -> Location:
        return parse_location(self.models)

    @property
    def data_location(self) -> Location:
        return parse_location(self.data)


def _plain(value: Any) -> Any:
    """Luigi freezes dict/list parameters; the job spec needs plain JSON types."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _call(reporter: Any, *args: Any) -> None:
    """Luigi sets its reporting hooks only while a worker runs the task."""
    if callable(reporter):
        try:
            reporter(*args)
        except Exception:  # the scheduler being unreachable must not fail the job
            logger.debug("status report failed", exc_info=True)


class TrainModel(TrainingParameters, SparkSubmitTask):
    """Train one label's model in its own spark-submit job; output: its artifact.

    Local mode: the job is a process tree on this machine. YARN (``[spark] master=yarn``):
    the job is tagged so it can be found again, submitted detached in cluster mode and
    followed through the ResourceManager, whose final status is the truth; failed jobs'
    logs are fetched; a stopped task kills its application; a rerun re-attaches to an
    application an earlier controller left running instead of submitting a duplicate.
    """

    label = luigi.Parameter(description="Label column to train a binary classifier for")

    always_log_stderr = False

    @cached_property
    def slug(self) -> str:
        return label_slug(self.label)

    def output(self) -> ArtifactTarget:
        return ArtifactTarget(artifact_location(self.models_root, self.label))

    # --- where and how the job runs --------------------------------------------------
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

    # --- what SparkSubmitTask turns into the command line -----------------------------
    @property
    def name(self) -> str:
        return application_name(self.engine, self.slug)

    @property
    def app(self) -> str:
        return train_script()

    @property
    def spark_submit(self) -> str:
        return resolve_spark_submit(super().spark_submit, bundled_home=pyspark_home())

    @property
    def master(self) -> str:
        return super().master or "local[1]"

    @property
    def py_files(self) -> list[str]:
        return (super().py_files or []) + [tasks_zip()]

    @property
    def conf(self) -> dict[str, str]:
        yarn_entries = None
        if self.on_yarn:
            cfg = yarn_settings()
            yarn_entries = submit_conf(self.tag, max_app_attempts=cfg.max_app_attempts,
                                       wait_app_completion=cfg.wait_app_completion or not self.cluster_mode)
        return job_conf(super().conf or {}, ui_port=getattr(self, "_ui_port", None), yarn=yarn_entries,
                        cluster_mode=self.cluster_mode, environ=os.environ)

    def spark_command(self) -> list[str]:
        command = super().spark_command()
        return command + kerberos_arguments(yarn_settings()) if self.on_yarn else command

    def program_environment(self) -> dict[str, str]:
        return job_environment(
            self.get_environment(), spark_submit=self.spark_submit, bundled_home=pyspark_home(),
            local_master=is_local_master(self.master), driver_local=self.driver_local,
        )

    def job_spec(self) -> dict[str, Any]:
        return {
            "labels": [self.label],
            "slugs": [self.slug],
            "data": self.data_location.uri(),
            "artifact_root": self.models_root.uri(),
            "engine": self.engine,
            "params": _plain(self.params),
            "features": list(self.resolved_features()),
            "balance_ratio": self.balance_ratio,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "run_id": self.run_id or current_run_id(),
            "task_id": self.task_id,
            "driver_local": self.driver_local,
        }

    def app_options(self) -> list[str]:
        return [SPEC_FLAG, encode_spec(self.job_spec())]

    # --- checks before any JVM starts --------------------------------------------------
    @cached_property
    def schema(self) -> DatasetSchema:
        return read_schema(self.data)

    def resolved_features(self) -> list[str]:
        if self.features is not None:
            return list(self.features)
        return feature_columns(self.schema.numeric, [self.label], self.label_prefix)

    def preflight(self) -> None:
        """Everything that can be refused in milliseconds instead of after a JVM start."""
        self.check_training_parameters()
        if self.engine == "synapseml":
            loaded = ",".join((super().packages or []) + (super().jars or []))
            if "synapseml" not in loaded:
                raise ConfigError(
                    "engine synapseml needs SynapseML's jar: set [spark] packages=com.microsoft.azure:synapseml_2.12:1.1.3 "
                    "(and spark.jars.repositories in [spark] conf if your Maven mirror lacks it), or use --engine lightgbm"
                )
        try:
            _ = super().conf  # Luigi parses "|"-separated key=value pairs here
        except ValueError:
            raise ConfigError("[spark] conf holds an entry without '=': write it as key=value|key=value") from None
        if self.on_yarn:
            kerberos_arguments(yarn_settings())  # refuses a principal without keytab and vice versa
            # Executors read the data on cluster nodes; Spark models are saved by executors
            # too, and in cluster mode the driver itself runs on a node.
            local_models_ok = not self.cluster_mode and self.engine == "lightgbm"
            for what, loc, local_ok in (("--data", self.data_location, False), ("--models", self.models_root, local_models_ok)):
                if loc.is_local and not local_ok:
                    raise ConfigError(f"{what} {loc} is a local path but the job runs on YARN nodes: use an hdfs:// path")
        schema = self.schema
        if self.label not in schema.columns:
            near = [c for c in schema.columns if c.startswith(self.label_prefix)][:5]
            raise DatasetError(
                f"label {self.label!r} is not a column of {self.data}: check --labels"
                + (f" (label columns there: {', '.join(near)})" if near else "")
            )
        features = self.resolved_features()
        if self.label in features:
            raise ConfigError(f"label {self.label!r} is also in --features: remove it, a model must not see its target")
        if not features:
            raise DatasetError(f"{self.data} has no numeric feature columns besides the labels: pass --features")
        unknown = [f for f in features if f not in schema.columns]
        if unknown:
            raise DatasetError(f"feature {unknown[0]!r} is not a column of {self.data}: fix --features")

    # --- running -----------------------------------------------------------------------
    def run(self) -> None:
        parent = multiprocessing.parent_process()
        if parent is not None:
            die_with_parent(parent.pid, signal.SIGTERM)  # forked by Luigi: go when the controller goes
        started = time.monotonic()
        cpu_started = time.process_time()
        run_id = self.run_id or current_run_id()
        log_folder = results.label_log_dir(self.log_dir, self.label)
        log_folder.mkdir(parents=True, exist_ok=True)
        log_path = log_folder / f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}-spark-submit.log"
        self._job_error: str | None = None
        self._application_id: str | None = None
        self._killed: str | None = None
        self._rm: Any = None
        timeout = fanout().job_timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None

        def record(status: str, **fields: Any) -> None:
            self._record(run_id, status, started, cpu_started, log=log_path, **fields)

        try:
            with stop_signals_raise():
                self.preflight()
                if self.on_yarn:
                    self._rm = client_from_config(yarn_settings())
                report = self._reattach(deadline) if self.on_yarn else None
                if report is None:
                    remove_stale_temporaries(self.models_root, self.slug)
                    report = self._submit_and_wait(log_path, deadline)
                if report is not None:
                    self._check_final_status(report)
            if not self.output().exists():
                raise JobFailed(f"label {self.label!r}: the job ended without a complete artifact at {self.output().path} (log: {log_path})")
        except (TaskInterrupted, KeyboardInterrupt) as exc:
            self._stop_application()
            record("interrupted", error=f"stopped ({exc or 'interrupt'})")
            raise
        except (JobTimedOut, YarnDeadlineExceeded):
            self._stop_application()
            message = f"label {self.label!r}: job ran past [fanout] job_timeout={timeout}s and was stopped"
            record("failed", error=message)
            raise JobTimedOut(message) from None
        except FanoutError as exc:
            record("failed", error=str(exc))
            raise
        except Exception as exc:
            record("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if self._rm is not None and hasattr(self._rm, "close"):
                self._rm.close()
        record("trained", artifact=self.output().path)
        _call(self.set_progress_percentage, 100)

    def _submit_and_wait(self, log_path: Any, deadline: float | None) -> ApplicationReport | None:
        """Run spark-submit; on YARN, return the application's final report."""
        self._ui_port = free_port() if is_local_master(self.master) else None
        argv = [str(a) for a in self.program_args()]
        logger.info("label %r: running %s", self.label, " ".join(mask_secrets(argv)))
        parser = SubmitOutputParser() if self.on_yarn else None

        def on_line(line: str) -> None:
            self._on_line(line)
            if parser is not None:
                report = parser.feed(line)
                if report is not None:
                    self._on_report(report)

        with open(log_path, "w", encoding="utf-8") as log, JobProcess(
            argv, self.program_environment(), log, on_line=on_line, grace_s=fanout().kill_grace_seconds
        ) as job:
            try:
                rc = job.wait(deadline)
            except TimeoutError:
                raise JobTimedOut(f"label {self.label!r}: job ran past its time limit") from None
        if parser is not None and (report := parser.close()) is not None:
            self._on_report(report)
        reason = self._job_error or (parser.exception if parser else None) or _last_error_line(job.tail)
        if rc != 0 and self.driver_local:
            # The driver ran here, so its exit code counts (in YARN client mode the
            # application may be called SUCCEEDED though the driver failed).
            raise JobFailed(f"label {self.label!r}: {reason or f'spark-submit exited with code {rc}'} (log: {log_path})")
        if not self.on_yarn:
            return None
        app_id = self._application_id or self._find_by_tag()
        if app_id is None:
            raise JobFailed(
                f"label {self.label!r}: spark-submit exited {rc} before YARN accepted an application: "
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
        logger.warning("label %r: re-attaching to %s (%s), left running by an earlier controller",
                       self.label, app.application_id, app.state)
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
            logger.warning("label %r: could not fetch logs of %s: %s", self.label, report.application_id, exc)
        except OSError as exc:
            logger.warning("label %r: could not save logs of %s: %s", self.label, report.application_id, exc)
        error = None
        if log_file is not None:
            with open(log_file, encoding="utf-8", errors="replace") as fh:
                error = _job_error_in(fh)
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
                    logger.warning("label %r: stopped local Spark application %s", self.label, self._application_id)
                    self._killed = self._application_id
                return
            if not yarn_settings().kill_on_interrupt:
                logger.warning("label %r: leaving YARN application %s running ([yarn] kill_on_interrupt=false)",
                               self.label, self._application_id or f"tagged {self.tag}")
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
            logger.error("label %r: could not look up applications tagged %s (%s): "
                         "check `yarn application -list -appTags %s`", self.label, self.tag, exc, self.tag)
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
                logger.warning("label %r: could not kill %s through %s: %s", self.label, app, type(client).__name__, exc)
                continue
            if killed:
                logger.warning("label %r: killed YARN application %s", self.label, app)
                self._killed = app
            else:
                logger.info("label %r: YARN application %s had already ended", self.label, app)
            return
        logger.error("label %r: YARN application %s may still run: yarn application -kill %s", self.label, app, app)

    def _record(self, run_id: str, status: str, started: float, cpu_started: float, **fields: Any) -> None:
        results.record(self.log_dir, results.LabelResult(
            label=self.label, status=status, run_id=run_id, seconds=round(time.monotonic() - started, 2),
            application_id=self._application_id, killed_application_id=self._killed,
            rm_requests=getattr(self._rm, "request_count", None),
            controller_cpu_seconds=round(time.process_time() - cpu_started, 3),
            **{k: (one_line(v) if v is not None else None) for k, v in fields.items()},
        ))

    def _on_report(self, report: ApplicationReport) -> None:
        self._application_id = report.application_id
        if report.tracking_url:
            _call(self.set_tracking_url, report.tracking_url)
        status = f"{report.state} {report.application_id}"
        if report.final_status not in ("UNDEFINED", ""):
            status += f" ({report.final_status})"
        _call(self.set_status_message, status)
        if report.progress:
            _call(self.set_progress_percentage, int(report.progress))

    def _on_line(self, line: str) -> None:
        event = parse_event(line)
        if event is None:
            return
        kind = event["event"]
        if kind == "started":
            self._application_id = event.get("application_id")
            if event.get("ui_url"):
                _call(self.set_tracking_url, event["ui_url"])
            _call(self.set_status_message, f"RUNNING {self._application_id}")
        elif kind == "error":
            self._job_error = event.get("message")
            _call(self.set_status_message, f"FAILED: {self._job_error}")
        elif kind == "artifact":
            _call(self.set_status_message, f"artifact written: {event.get('location')}")
        if "percent" in event:
            _call(self.set_progress_percentage, int(event["percent"]))

    def on_failure(self, exception: BaseException) -> str:
        """What the scheduler shows: one line, not a traceback."""
        return one_line(exception if isinstance(exception, FanoutError) else f"{type(exception).__name__}: {exception}")


def _job_error_in(lines: Any) -> str | None:
    """The last one-line error the job reported (a ``FANOUT_EVENT error`` line), e.g.
    in the aggregated YARN logs of a cluster-mode job."""
    found = None
    for line in lines:
        event = parse_event(line)
        if event is not None and event["event"] == "error" and event.get("message"):
            found = event["message"]
    return found


def _last_error_line(tail: Any) -> str | None:
    for line in reversed(list(tail)):
        stripped = line.strip()
        if stripped and ("Error" in stripped or "Exception" in stripped):
            return stripped[:300]
    return None


class TrainAll(TrainingParameters, luigi.WrapperTask):
    """Train one model per label. Only labels without a complete artifact are required,
    learned from one listing of the artifact root; so a rerun resumes where the last
    one stopped, and a finished run costs one storage request to confirm."""

    labels = luigi.OptionalListParameter(default=None, description="Labels as a JSON list; default: every column starting with label-prefix")

    @cached_property
    def plan(self) -> dict[str, Any]:
        """Labels, features and the labels still missing, computed once per run (a new
        run — a new process, or a new ``run_id`` — plans afresh)."""
        self.check_training_parameters()
        schema = read_schema(self.data)
        labels = resolve_labels(None if self.labels is None else list(self.labels), schema.columns, self.label_prefix, self.data)
        features = list(self.features) if self.features is not None else feature_columns(schema.numeric, labels, self.label_prefix)
        done = completed_slugs(self.models_root)
        missing = [label for label in labels if label_slug(label) not in done]
        logger.info("TrainAll: %d labels, %d complete, %d to train", len(labels), len(labels) - len(missing), len(missing))
        return {"labels": labels, "features": features, "missing": missing}

    def requires(self) -> list[TrainModel]:
        _install_controller_hooks(self)
        plan = self.plan
        run_id = self.run_id or current_run_id()
        return [self.clone(TrainModel, label=label, features=plan["features"], run_id=run_id) for label in plan["missing"]]


# --- controller-process hooks ---------------------------------------------------------
# Luigi has no "run finished" hook and no SIGTERM handling. When the process is the
# `luigi` command line, the first TrainAll seen in its main process installs both (never
# in Luigi's forked task processes, nor in a notebook or test process that imports us:
# pipeline.api returns the summary there instead).
_hooked: dict[str, TrainAll] = {}
_hook_lock = threading.Lock()


def _install_controller_hooks(task: TrainAll) -> None:
    if not _is_luigi_command_line():
        return
    with _hook_lock:
        if task.task_id in _hooked:
            return
        first = not _hooked
        _hooked[task.task_id] = task
    if not first:
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    if fanout().summary:
        atexit.register(_print_summaries)


def _is_luigi_command_line() -> bool:
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return (
        (os.path.basename(sys.argv[0]) in ("luigi", "luigi.exe", "luigi-script.py")
         or getattr(main_spec, "name", None) == "luigi.__main__")
        and multiprocessing.parent_process() is None
        and threading.current_thread() is threading.main_thread()
    )


def _sigterm_to_interrupt(signum: int, _frame: object) -> None:
    # Luigi's worker stops its task processes on KeyboardInterrupt, not on SIGTERM.
    raise TaskInterrupted("controller received SIGTERM")


def summary_rows(task: TrainAll) -> list[dict[str, object]]:
    """The per-label outcome of ``task`` in this controller run."""
    labels = task.plan["labels"]
    done = completed_slugs(task.models_root)
    complete = {label for label in labels if label_slug(label) in done}
    return results.summarize(labels, task.run_id or current_run_id(), task.log_dir, complete)


def _print_summaries() -> None:
    for task in _hooked.values():
        try:
            rows = summary_rows(task)
        except FanoutError as exc:
            print(f"\nspark-fanout: {exc}", flush=True)
            continue
        print(f"\nspark-fanout summary ({task.models}):\n{results.format_table(rows)}", flush=True)
