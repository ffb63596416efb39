"""What a Spark task does when a batch fits its labels on the executors.

A batch whose engine trains on pandas rows (LightGBM, XGBoost, scikit-learn, …) and
whose rows were collected ships them once (a broadcast: each executor's Python worker
fetches and unpickles it once) and fits each group of labels in one Spark task, on the
executor's cores (``local[N]``'s task slots in local mode). A task returns each label's
model files, metrics and row counts to the driver, which commits the artifact. A label's
failure comes back as a value, so one bad label neither fails nor retries the task.

This module runs inside executors: it imports only ``tasks`` modules and the engine.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

from tasks.engines import EngineUnavailable, get_engine
from tasks.engines.training import Options, imbalance_facts, train_on_driver
from tasks.label_sample import JobInputError, Minimums, label_sample


@dataclass(frozen=True)
class LabelWork:
    """One label of a task: its name and its column (``y<i>``) in the shipped frame."""

    label: str
    column: str


@dataclass(frozen=True)
class FitSettings:
    """What every label of the batch shares (from the job spec), small and picklable."""

    engine: str
    params: dict[str, Any]
    columns: list[str]
    seed: int
    balance_ratio: float
    options: Options
    minimums: Minimums


class TaskFailure(RuntimeError):
    """An unexpected error inside a task, carried back to the driver as text (the
    exception itself may not unpickle there)."""

    def __init__(self, kind: str, text: str, trace: str) -> None:
        super().__init__(kind, text, trace)
        self.kind, self.text, self.trace = kind, text, trace

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}" if self.text else self.kind


def executor_name() -> str:
    """Which executor this process belongs to: the YARN container, the standalone
    executor's folder (``local-cluster``), or ``driver`` (local mode: the driver's JVM runs
    the tasks)."""
    container = os.environ.get("CONTAINER_ID")
    if container:
        return container
    dirs = os.environ.get("SPARK_EXECUTOR_DIRS")
    return os.path.basename(dirs.rstrip("/")) if dirs else "driver"


def _failure(exc: BaseException) -> BaseException:
    if isinstance(exc, (JobInputError, EngineUnavailable)):
        return exc
    text = str(exc).strip()
    return TaskFailure(type(exc).__name__, text.splitlines()[0] if text else "", "".join(traceback.format_exception(exc)))


def fit_label(frame: Any, work: LabelWork, settings: FitSettings) -> dict[str, Any]:
    """One label on the shipped frame: its rows (checked, balanced, split), the fit and
    the evaluation; a dict with the model, or with the label's error."""
    started = time.perf_counter()
    try:
        engine = get_engine(settings.engine)
        engine.check_modules()
        sample = label_sample(frame, work.label, work.column, settings.columns, settings.balance_ratio, settings.seed,
                              settings.minimums)
        rows_s = time.perf_counter() - started
        model, facts = train_on_driver(engine, sample.train, sample.validation, settings.columns, settings.params,
                                       settings.seed, work.label, settings.options)
    except Exception as exc:  # one label's failure is a value: the task, and the other labels, go on
        return {"label": work.label, "error": _failure(exc)}
    model.info["fitted_in"] = {"where": "spark task", "executor": executor_name(), "host": socket.gethostname(),
                               "pid": os.getpid(), "rows_s": round(rows_s, 4),
                               "task_s": round(time.perf_counter() - started, 4)}
    return {"label": work.label, "rows": sample.rows, "model": model,
            "imbalance": imbalance_facts(engine, settings.params, settings.balance_ratio, facts["weights"])}


def warm_up(engine_name: str) -> list[int]:
    """Import the engine's library in this Python worker (a task run while the driver
    collects the rows, so the fits do not pay the import); this worker's pid."""
    engine = get_engine(engine_name)
    engine.check_modules()
    import sklearn.metrics  # noqa: F401 - the evaluation's library, imported once here

    return [os.getpid()]


def fit_group(shipped: Any, settings: FitSettings, works: list[LabelWork]) -> list[dict[str, Any]]:
    """A task's labels, one after the other, on the broadcast frame ``shipped``."""
    frame = shipped.value
    return [fit_label(frame, work, settings) for work in works]
