"""Python API for notebooks: run a fan-out and get the per-label (per-job) outcome back.

>>> from pipeline.api import train_all, load_artifact, run_scripts
>>> report = train_all(data="data/demo.parquet", models="models", workers=2)
>>> print(report.table())
>>> run_scripts("my_job.py", "jobs.json", workers=4).to_pandas()
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import luigi

from pipeline import tracking
from pipeline.data import results
from pipeline.data.artifacts import ArtifactTarget, artifact_location, configurations
from pipeline.data.jobs_file import validate_jobs
from pipeline.errors import ConfigError, JobFailed
from pipeline.flows.predict import Predict
from pipeline.flows.scripts import RESULT_GROUP, RunScript, RunScripts, load_jobs
from pipeline.flows.sweep import FeatureSweep
from pipeline.flows.train import TrainAll, TrainModel
from pipeline.flows.tune import TuneAll
from pipeline.progress import KeepingSchedulerFactory, ProgressWatcher, job_rows, result_outcome, wait_for_plan
from pipeline.runner.scheduler import SchedulerFactory
from pipeline.storage.locations import parse_location
from tasks.engines import get_engine
from tasks.evaluation import DEFAULT_METRIC
from tasks.layout import SPARK_MODEL

_COMPLETE_STATUSES = (TrainModel.success_status, RunScript.success_status, "done earlier")


@dataclass
class RunReport:
    """What one :func:`train_all` or :func:`run_scripts` call did: ``ok`` and one row per
    label or job (``label``, ``status``, ``seconds``, ``detail``: artifact or error);
    ``jobs`` the same units with configuration, application id, artifact, error, log and
    metrics (:meth:`to_pandas`); ``progress`` the progress bar's last counts."""

    ok: bool
    rows: list[dict[str, Any]]
    luigi_status: str
    jobs: list[dict[str, Any]] | None = None
    progress: dict[str, int] | None = None

    def table(self) -> str:
        return results.format_table(self.rows)

    def failed(self) -> list[dict[str, Any]]:
        """Rows that did not end complete: failed, interrupted or not run."""
        return [r for r in self.rows if r["status"] not in _COMPLETE_STATUSES]

    def to_pandas(self):  # noqa: ANN201 - pandas is optional for callers
        """One row per label or job: name, configuration, status, seconds, application_id,
        artifact, error, log, then the artifact's metrics (auc_roc, ...)."""
        import pandas as pd

        return pd.DataFrame(self.jobs if self.jobs is not None else self.rows)


def train_all(data: str = "data/demo.parquet", models: str = "models", labels: list[str] | None = None, *,
              workers: int = 2, scheduler_host: str | None = None, scheduler_port: int = 8082, progress: bool = True,
              **training: Any) -> RunReport:
    """Train every missing label's model (as ``luigi --module pipeline TrainAll``).

    ``workers`` caps concurrent jobs; ``scheduler_host`` uses a running ``luigid`` (its web
    UI shows progress) instead of an in-process scheduler. ``training`` takes TrainAll's
    other parameters: engine, params, features, balance_ratio, test_fraction, seed, log_dir.
    ``progress`` shows a live bar (done / running / failed / remaining labels).
    """
    task = TrainAll(data=data, models=models, labels=labels, run_id=_new_run_id(), planned_workers=workers, **training)
    return _build(task, workers, scheduler_host, scheduler_port, progress)


def run_scripts(script: str, jobs: str | os.PathLike[str] | Sequence[Mapping[str, Any]], *, workers: int = 2,
                scheduler_host: str | None = None, scheduler_port: int = 8082, log_dir: str = "logs",
                progress: bool = True) -> RunReport:
    """Run ``script`` once per job whose output is missing (as ``luigi --module pipeline
    RunScripts``); one row per job.

    ``jobs`` is a jobs file (path or URI) or a list of ``{"name", "args", "output"}`` dicts,
    checked at once (a bad entry raises ConfigError before any job starts); a list is
    written to a JSON file under ``log_dir`` for the run and removed afterwards.
    """
    run_id = _new_run_id()
    written: Path | None = None
    if isinstance(jobs, (str, os.PathLike)):
        jobs_file = os.fspath(jobs)
        load_jobs(jobs_file)  # refuse a bad file here, in one line, not as a scheduling failure
    else:
        entries = [dict(entry) if isinstance(entry, Mapping) else entry for entry in jobs]
        validate_jobs(entries, "jobs")
        written = Path(log_dir) / "api-jobs" / f"{run_id}.json"
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
        jobs_file = str(written)
    try:
        task = RunScripts(script=os.fspath(script), jobs=jobs_file, log_dir=log_dir, run_id=run_id)
        return _build(task, workers, scheduler_host, scheduler_port, progress)
    finally:
        if written is not None:
            written.unlink(missing_ok=True)


def _new_run_id() -> str:
    """A run id of this call alone, so its summary shows only what this call did."""
    return f"api-{uuid.uuid4().hex[:12]}"


def _build(task: TrainAll | RunScripts, workers: int, scheduler_host: str | None, scheduler_port: int,
           progress: bool = True) -> RunReport:
    _check_workers(workers)
    tracking.install()  # this entry's one Luigi event handler: MLflow logging ([mlflow] tracking_uri)
    factory = KeepingSchedulerFactory()
    kwargs = {**_scheduler(scheduler_host, scheduler_port), "workers": workers, "detailed_summary": True,
              "worker_scheduler_factory": factory}
    training = isinstance(task, TrainAll)
    kind, group = (TrainModel, "") if training else (RunScript, RESULT_GROUP)
    watcher = ProgressWatcher(wait_for_plan(task, "missing", str if training else (lambda job: job.name)),
                              result_outcome(task.log_dir, task.run_id, group), factory,
                              success=(kind.success_status, "reused"), desc=type(task).__name__, enabled=progress)
    with watcher:
        outcome = luigi.build([task], **kwargs)
    rows = task.summary_rows()
    lost = getattr(factory.scheduler, "lost", None)
    if lost is not None:  # luigid stopped answering: the jobs it never handed out say so
        rows = results.mark_not_started(rows, f"the scheduler at {lost.address} stopped answering")
    artifact_of = (lambda label: ArtifactTarget(artifact_location(task.plan["root"], label))) if training else None
    jobs = job_rows(rows, task.log_dir, task.run_id, group, artifact_of, task.plan["config"] if training else None)
    return RunReport(ok=outcome.scheduling_succeeded and task.complete(), rows=rows, luigi_status=outcome.status.name,
                     jobs=jobs, progress=watcher.counts)


def load_artifact(models: str, label: str, config: str | None = None) -> dict[str, Any]:
    """A finished artifact: its metadata, configuration and location; for a model scored
    in Python (LightGBM, XGBoost, scikit-learn, …) also ``model`` (a ``lightgbm.Booster``,
    an ``xgboost.Booster``, the estimator; ``booster`` is the same object, its older
    name) and ``predict``, a function from a feature matrix (the metadata's features,
    in order) to probabilities of class 1. A Spark ML model (MLlib) is loaded with
    ``pyspark.ml.PipelineModel.load(spark_model)``. ``config`` names the configuration
    folder (``lightgbm-1a2b3c4d``); it may be left out when ``models`` holds only one.
    Raises FileNotFoundError if the artifact is not complete."""
    root = parse_location(models)
    if config is None:
        found = configurations(root)
        if len(found) != 1:
            listed = ", ".join(found) if found else "none"
            raise FileNotFoundError(f"{models} holds {len(found)} configurations ({listed}): pass config=<one of them>"
                                    if found else f"no trained configuration under {models}: train first")
        config = found[0]
    target = ArtifactTarget(artifact_location(root.join(config), label))
    if not target.exists():
        raise FileNotFoundError(f"no complete artifact for label {label!r} under {models}/{config}: train it first")
    meta = target.metadata()
    engine = get_engine(meta["engine"])
    out: dict[str, Any] = {"metadata": meta, "config": config, "location": target.path, "model": None, "booster": None,
                           "predict": None, "spark_model": None}
    if engine.saves_spark_model:
        out["spark_model"] = target.location.join(SPARK_MODEL).uri()
    files = {name: target.location.join(name) for name in engine.model_files}
    if engine.scores_in_python and all(target.storage.exists(loc) for loc in files.values()):
        model = engine.load({name: target.storage.read_bytes(loc) for name, loc in files.items()})
        out.update(model=model, booster=model, predict=lambda x: engine.predict(model, x))
    return out


# --- searches and scoring (TuneAll, FeatureSweep, Predict) ----------------------------------

def _frame(rows: list[dict[str, Any]]):  # noqa: ANN202 - pandas is optional for callers
    """Rows with their ``metrics`` spread into columns."""
    import pandas as pd

    flat = []
    for row in rows:
        out = {k: v for k, v in row.items() if k != "metrics"}
        out.update(row.get("metrics") or {})
        flat.append(out)
    return pd.DataFrame(flat)


def _check_workers(workers: int) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r} runs no task (Luigi only schedules with it): use workers=1 or more")


def _luigi_run(task: luigi.Task, workers: int, scheduler_host: str | None, scheduler_port: int) -> bool:
    _check_workers(workers)
    tracking.install()
    kwargs = {**_scheduler(scheduler_host, scheduler_port), "workers": workers,
              "worker_scheduler_factory": SchedulerFactory()}
    return bool(luigi.build([task], **kwargs)) and task.complete()


def _scheduler(host: str | None, port: int) -> dict[str, Any]:
    """luigi.build's arguments for a running luigid at ``host``, else the local scheduler."""
    return {"scheduler_host": host, "scheduler_port": port} if host else {"local_scheduler": True}


def tune(space: str | os.PathLike[str] | Mapping[str, Any], data: str = "data/demo.parquet", models: str = "models",
         labels: list[str] | None = None, *, search: str = "grid", trials: int = 20, parallel_trials: int = 4,
         metric: str = DEFAULT_METRIC, workers: int = 2, scheduler_host: str | None = None, scheduler_port: int = 8082,
         log_dir: str = "logs", **training: Any):
    """Run a search (as ``luigi --module pipeline TuneAll``); returns the leaderboard as a
    pandas DataFrame, one row per (trial, label), metrics as columns, ``rank`` 1 = best.

    ``space`` is a space file or the space itself (a dict, written to a JSON file under
    ``log_dir`` for the run); it is checked before any job (ConfigError naming the entry).
    When trials failed, the rows of those that finished are returned (``.attrs["ok"]`` is False).
    """
    written = None
    if isinstance(space, Mapping):
        written = Path(log_dir) / "api-spaces" / f"{_new_run_id()}.json"
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_text(json.dumps(space), encoding="utf-8")
        space = str(written)
    try:
        task = TuneAll(space=os.fspath(space), data=data, models=models, labels=labels, search=search, trials=trials,
                       parallel_trials=parallel_trials, metric=metric, log_dir=log_dir, run_id=_new_run_id(),
                       planned_workers=workers, **training)
        _ = task.plan  # a bad space or setting raises here, before any job
        ok = _luigi_run(task, workers, scheduler_host, scheduler_port)
        frame = _frame(task.report_rows())
    finally:
        if written is not None:
            written.unlink(missing_ok=True)
    frame.attrs["ok"] = ok
    return frame


def sweep(sizes: Sequence[int], data: str = "data/demo.parquet", models: str = "models", labels: list[str] | None = None,
          *, ranking: str | None = None, tolerance: float = 0.005, metric: str = DEFAULT_METRIC, workers: int = 2,
          scheduler_host: str | None = None, scheduler_port: int = 8082, **training: Any):
    """Feature-count sweep (as ``luigi --module pipeline FeatureSweep``); returns metric
    against N, one row per (label, N), ``chosen`` marking each label's smallest N within
    ``tolerance`` of its best. ``training`` takes engine, params, balance_ratio, ... ."""
    task = FeatureSweep(sizes=list(sizes), data=data, models=models, labels=labels, ranking=ranking, tolerance=tolerance,
                        metric=metric, run_id=_new_run_id(), planned_workers=workers, **training)
    _ = task.plan
    ok = _luigi_run(task, workers, scheduler_host, scheduler_port)
    frame = _frame(task.report_rows() if ok else _partial(task))
    frame.attrs["ok"] = ok
    return frame


def _partial(task: Any) -> list[dict[str, Any]]:
    try:
        return task.report_rows()
    except Exception:  # baselines missing: nothing to show
        return []


def predict(data: str, out: str, models: str = "models", *, config: str | Sequence[str] | None = None,
            labels: list[str] | None = None,
            key: list[str] | None = None, scheduler_host: str | None = None, scheduler_port: int = 8082,
            log_dir: str = "logs"):
    """Score ``data`` with each chosen label model in one Spark job (as ``luigi --module
    pipeline Predict``); returns which model scored which column and where the scores
    are (``output``: a Parquet folder, read it with ``pd.read_parquet``). Raises
    :class:`~pipeline.errors.JobFailed` with the job's one-line error if it failed."""
    configs = [config] if isinstance(config, str) else config
    task = Predict(data=data, out=out, models=models, config=configs, labels=labels, key=key, log_dir=log_dir,
                   run_id=_new_run_id())
    task.preflight()
    if not _luigi_run(task, 1, scheduler_host, scheduler_port):
        last = results.latest(log_dir, task.job_name, task.result_group)
        raise JobFailed(f"Predict did not finish: {last.error if last and last.error else 'see the log under ' + log_dir}")
    import pandas as pd

    return pd.DataFrame(task.models_table())
