"""MLflow tracking of finished artifacts (the ``mlflow`` extra; ``[mlflow] tracking_uri``).

When a training job ends, every artifact it published is logged as one MLflow run:
the engine's parameters and the training settings as params, the metrics from
``metadata.json``, tags for the label, configuration, Spark/YARN application id and the
artifact's location, and the artifact folder itself as the run's artifacts. Each run
carries the artifact's identity (its location and creation time) as a tag, and a run
with that tag is looked up before logging, so a retried task or a rerun never logs an
artifact twice. Without ``tracking_uri`` nothing is imported and nothing is logged.

Logging happens in the task's own process (Luigi's event handler after the job), so the
controller's main process never holds an MLflow client across Luigi's forks.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import luigi

from pipeline.data import results
from pipeline.data.results import current_run_id
from pipeline.errors import ConfigError, one_line

logger = logging.getLogger("luigi-interface")

IDENTITY_TAG = "fanout.artifact_id"
_installed = threading.Event()


class mlflow(luigi.Config):  # noqa: N801 - luigi names the config section after the class
    tracking_uri = luigi.Parameter(default="", description="MLflow tracking URI (file:./mlruns, http://host:5000, ...); "
                                   "empty: no tracking")
    experiment = luigi.Parameter(default="spark-fanout", description="Experiment the runs go to (created if missing)")


def artifact_identity(location: str, metadata: dict[str, Any]) -> str:
    """Same artifact, same identity: its location and when it was written (a label
    trained again into the same folder after a delete is a new artifact)."""
    return hashlib.sha256(f"{location}\n{metadata.get('created_at', '')}".encode()).hexdigest()[:24]


def run_fields(location: str, metadata: dict[str, Any], configuration: str) -> dict[str, Any]:
    """What one MLflow run holds for an artifact: params, metrics, tags (pure)."""
    params = {f"param.{k}": v for k, v in sorted((metadata.get("params") or {}).items())}
    params.update(engine=metadata.get("engine"), balance_ratio=metadata.get("balance_ratio"),
                  test_fraction=metadata.get("test_fraction"), seed=metadata.get("seed"),
                  features=len(metadata.get("features") or []))
    metrics = {k: float(v) for k, v in (metadata.get("metrics") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if isinstance(metadata.get("job_seconds"), (int, float)):
        metrics["job_seconds"] = float(metadata["job_seconds"])
    label = str(metadata.get("label", ""))
    tags = {"label": label, "configuration": configuration, "application_id": str(metadata.get("application_id") or ""),
            "artifact": location, IDENTITY_TAG: artifact_identity(location, metadata),
            "mlflow.runName": f"{label} {configuration}"}
    return {"params": {k: str(v) for k, v in params.items() if v is not None}, "metrics": metrics, "tags": tags}


def _client(uri: str) -> Any:
    if _file_store(uri) is not None:
        # MLflow 3 refuses its file store unless asked; a local folder is what works offline.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("[mlflow] tracking_uri is set but mlflow is not installed: pip install 'spark-fanout[mlflow]'") from None
    return MlflowClient(tracking_uri=uri)


def _file_store(uri: str) -> str | None:
    """The folder of a local MLflow file store (``file:…`` or a plain path), else ``None``."""
    if "://" not in uri and not uri.startswith("file:"):
        return uri
    if uri.startswith("file:"):
        return urlparse(uri).path or None
    return None


@contextmanager
def _creation_lock(uri: str) -> Iterator[None]:
    """Across the run's task processes, one at a time looks for the experiment and creates
    it: MLflow's file store checks a name and creates the experiment in two steps, so two
    jobs ending together made two experiments of one name, and one label's run went to
    the experiment nobody looks at. A tracking server keeps names unique itself."""
    folder = _file_store(uri)
    if folder is None:
        yield
        return
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".spark-fanout.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _experiment(uri: str, name: str) -> tuple[Any, str]:
    """A client of ``uri`` and the id of experiment ``name``, created when missing. A new
    file store makes its default experiment on first use: that happens under the lock too."""
    with _creation_lock(uri):
        client = _client(uri)
        found = client.get_experiment_by_name(name)
        if found is not None:
            return client, found.experiment_id
        try:
            return client, client.create_experiment(name)
        except Exception:  # another controller created it meanwhile
            return client, client.get_experiment_by_name(name).experiment_id


def log_artifact(client: Any, experiment_id: str, target: Any, configuration: str) -> str | None:
    """Log one complete artifact (an ArtifactTarget) unless a run already holds it; the
    new run's id, or None when it was logged before."""
    metadata = target.metadata()
    fields = run_fields(target.path, metadata, configuration)
    identity = fields["tags"][IDENTITY_TAG]
    if client.search_runs([experiment_id], filter_string=f"tags.`{IDENTITY_TAG}` = '{identity}'", max_results=1):
        return None
    from mlflow.entities import Metric, Param

    run = client.create_run(experiment_id, tags=fields["tags"])
    run_id = run.info.run_id
    stamp = int(run.info.start_time or 0)
    client.log_batch(run_id, metrics=[Metric(k, v, stamp, 0) for k, v in fields["metrics"].items()],
                     params=[Param(k, v) for k, v in fields["params"].items()])
    if target.location.is_local:
        client.log_artifacts(run_id, target.location.path)
    client.set_terminated(run_id)
    return run_id


def log_task(task: Any) -> list[str]:
    """Log the artifacts a finished training task published in this run (all of a
    batch's complete members); returns the new MLflow run ids."""
    settings = mlflow()
    if not settings.tracking_uri or not hasattr(task, "config_name"):
        return []
    run_id = task.run_id or current_run_id()
    published = []
    for member in task.members:
        res = results.of_run(task.log_dir, member, run_id, task.result_group)
        if res is not None and res.status in (task.success_status, "reused"):
            published.append(member)
    if not published:
        return []
    client, experiment_id = _experiment(settings.tracking_uri, settings.experiment)
    logged = []
    for member in published:
        target = task.member_output(member)
        if target.exists() and (new := log_artifact(client, experiment_id, target, task.config_name)):
            logged.append(new)
    return logged


def _after_job(task: Any, *_: Any) -> None:
    try:
        log_task(task)
    except Exception as exc:  # tracking trouble never fails a trained model
        logger.warning("MLflow: could not log %s: %s", getattr(task, "title", task), one_line(exc, 300))


def install() -> None:
    """Log after every training task, succeeded or failed (a failed batch may have
    published some labels); once per process. The entry points call it (the ``luigi``
    command line, the notebook API); a program calling ``luigi.build`` itself calls it first."""
    if _installed.is_set():
        return
    _installed.set()
    luigi.Task.event_handler(luigi.Event.SUCCESS)(_after_job)
    luigi.Task.event_handler(luigi.Event.FAILURE)(_after_job)
