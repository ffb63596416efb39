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
from typing import Any

import luigi
from luigi.contrib.spark import SparkSubmitTask

from pipeline import results
from pipeline.artifacts import ArtifactTarget, artifact_location, completed_slugs, remove_stale_temporaries
from pipeline.config import fanout
from pipeline.datasets import read_schema
from pipeline.errors import ConfigError, DatasetError, FanoutError, JobFailed, TaskInterrupted
from pipeline.labels import DEFAULT_LABEL_PREFIX, feature_columns, label_slug, resolve_labels
from pipeline.locations import Location, parse_location
from pipeline.process import JobProcess, die_with_parent, stop_signals_raise
from pipeline.submit import (
    application_name,
    free_port,
    is_local_master,
    job_conf,
    job_environment,
    mask_argv,
    pyspark_home,
    resolve_spark_submit,
    tasks_zip,
    train_script,
)
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
    """Train one label's model in its own spark-submit job; output: its artifact."""

    label = luigi.Parameter(description="Label column to train a binary classifier for")

    always_log_stderr = False

    @cached_property
    def slug(self) -> str:
        return label_slug(self.label)

    def output(self) -> ArtifactTarget:
        return ArtifactTarget(artifact_location(self.models_root, self.label))

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
        return job_conf(
            super().conf or {}, master=self.master, deploy_mode=self.deploy_mode,
            ui_port=getattr(self, "_ui_port", None), tag=None, max_app_attempts=None, environ=os.environ,
        )

    def program_environment(self) -> dict[str, str]:
        return job_environment(
            self.get_environment(), spark_submit=self.spark_submit, bundled_home=pyspark_home(),
            local_mode=is_local_master(self.master),
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
            "local_mode": is_local_master(self.master),
        }

    def app_options(self) -> list[str]:
        return [SPEC_FLAG, encode_spec(self.job_spec())]

    # --- checks before any JVM starts --------------------------------------------------
    def resolved_features(self) -> list[str]:
        if self.features is not None:
            return list(self.features)
        schema = read_schema(self.data)
        return feature_columns(schema.numeric, [self.label], self.label_prefix)

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
        if self.master == "yarn" and self.deploy_mode == "cluster":
            for what, loc in (("--data", self.data_location), ("--models", self.models_root)):
                if loc.is_local:
                    raise ConfigError(f"{what} {loc} is a local path but jobs run on YARN nodes: use an hdfs:// path")
        schema = read_schema(self.data)
        if self.label not in schema.columns:
            near = [c for c in schema.columns if c.startswith(self.label_prefix)][:5]
            raise DatasetError(
                f"label {self.label!r} is not a column of {self.data}: check --labels"
                + (f" (label columns there: {', '.join(near)})" if near else "")
            )
        features = self.resolved_features()
        if not features:
            raise DatasetError(f"{self.data} has no numeric feature columns besides the labels: pass --features")
        unknown = [f for f in features if f not in schema.columns]
        if unknown:
            raise DatasetError(f"feature {unknown[0]!r} is not a column of {self.data}: fix --features")

    # --- running -----------------------------------------------------------------------
    def run(self) -> None:
        if multiprocessing.parent_process() is not None:
            die_with_parent(signal.SIGTERM)  # forked by Luigi: go when the controller goes
        started = time.monotonic()
        run_id = self.run_id or current_run_id()
        log_folder = results.label_log_dir(self.log_dir, self.label)
        log_folder.mkdir(parents=True, exist_ok=True)
        log_path = log_folder / f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}-spark-submit.log"
        self._job_error: str | None = None
        self._application_id: str | None = None
        try:
            with stop_signals_raise():
                self.preflight()
                remove_stale_temporaries(self.models_root, self.slug)
                self._ui_port = free_port() if is_local_master(self.master) else None
                argv = [str(a) for a in self.program_args()]
                env = self.program_environment()
                logger.info("label %r: running %s", self.label, " ".join(mask_argv(argv)))
                timeout = fanout().job_timeout
                deadline = time.monotonic() + timeout if timeout > 0 else None
                with open(log_path, "w", encoding="utf-8") as log, JobProcess(
                    argv, env, log, on_line=self._on_line, grace_s=fanout().kill_grace_seconds
                ) as job:
                    try:
                        rc = job.wait(deadline)
                    except TimeoutError:
                        raise JobFailed(f"label {self.label!r}: job ran past [fanout] job-timeout={timeout}s and was stopped") from None
            if rc != 0:
                reason = self._job_error or _last_error_line(job.tail) or f"spark-submit exited with code {rc}"
                raise JobFailed(f"label {self.label!r}: {reason} (log: {log_path})")
            if not self.output().exists():
                raise JobFailed(f"label {self.label!r}: the job ended without a complete artifact at {self.output().path} (log: {log_path})")
        except (TaskInterrupted, KeyboardInterrupt) as exc:
            self._record(run_id, "interrupted", started, error=f"stopped ({exc or 'interrupt'})", log=log_path)
            raise
        except FanoutError as exc:
            self._record(run_id, "failed", started, error=str(exc), log=log_path)
            raise
        except Exception as exc:
            self._record(run_id, "failed", started, error=f"{type(exc).__name__}: {exc}", log=log_path)
            raise
        self._record(run_id, "trained", started, artifact=self.output().path, log=log_path)
        _call(self.set_progress_percentage, 100)

    def _record(self, run_id: str, status: str, started: float, **fields: Any) -> None:
        results.record(self.log_dir, results.LabelResult(
            label=self.label, status=status, run_id=run_id, seconds=round(time.monotonic() - started, 2),
            application_id=self._application_id, **{k: (str(v) if v is not None else None) for k, v in fields.items()},
        ))

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
        if isinstance(exception, FanoutError):
            return str(exception)
        return f"{type(exception).__name__}: {exception}"


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

    def complete(self) -> bool:
        _install_controller_hooks(self)
        return all(task.complete() for task in self.requires())


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
    return (
        os.path.basename(sys.argv[0]) in ("luigi", "luigi.exe", "luigi-script.py")
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
