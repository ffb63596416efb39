"""Live progress of a run started from Python, and its outcome as a table.

While ``luigi.build`` runs in the calling thread, a watcher thread counts the jobs'
units (labels, script jobs): *done* and *failed* from the ``result.json`` records this
run wrote, *running* from the scheduler (Luigi's in-process scheduler, or ``luigid``
through its API), *remaining* the rest; it shows them in a tqdm bar (a widget in
Jupyter, text elsewhere). Files and the scheduler are the two places every one of
Luigi's task processes reports to, so nothing is shared across its forks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.data import results
from pipeline.internals import in_process_task_params
from pipeline.runner.scheduler import SchedulerFactory

RUNNING_STATUSES = ("RUNNING", "BATCH_RUNNING")
UNIT_PARAMS = ("label", "job")  # the parameter naming a job's unit(s): TrainModel, RunScript


class KeepingSchedulerFactory(SchedulerFactory):
    """Luigi's factory (luigid through the proxy that outlives it), remembering the
    scheduler it made so it can be asked what runs."""

    scheduler: Any = None

    def create_local_scheduler(self) -> Any:
        self.scheduler = super().create_local_scheduler()
        return self.scheduler

    def create_remote_scheduler(self, url: str) -> Any:
        self.scheduler = super().create_remote_scheduler(url)
        return self.scheduler


def unit_names(params: dict[str, Any]) -> list[str]:
    """The units a scheduler task stands for: its label (a batch's JSON list) or job name."""
    for key in UNIT_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value.startswith("["):
            try:
                return [str(v) for v in json.loads(value)]
            except ValueError:
                return [value]
        if value is not None:
            return [str(value)]
    return []


def running_units(scheduler: Any) -> set[str]:
    """Units of the tasks the scheduler has running now (empty if it cannot say)."""
    if scheduler is None:
        return set()
    found: set[str] = set()
    try:
        tasks = in_process_task_params(scheduler, RUNNING_STATUSES)
        if tasks is None:  # luigid's proxy: ask its API
            tasks = [info.get("params") or {} for status in RUNNING_STATUSES
                     for info in (scheduler.task_list(status, "") or {}).values() if isinstance(info, dict)]
    except Exception:  # a dict changing size under us, luigid busy: ask again next time
        return set()
    for params in tasks:
        found.update(unit_names(params))
    return found


def count(units: Sequence[str], outcomes: dict[str, str], running: set[str], success: Sequence[str]) -> dict[str, int]:
    """done / failed / running / remaining of ``units`` (each counted once)."""
    done = sum(1 for u in units if outcomes.get(u) in success)
    failed = sum(1 for u in units if u in outcomes and outcomes[u] not in success)
    busy = sum(1 for u in units if u not in outcomes and u in running)
    return {"total": len(units), "done": done, "failed": failed, "running": busy,
            "remaining": len(units) - done - failed - busy}


class ProgressWatcher:
    """A thread that shows ``count()`` in a tqdm bar until stopped.

    ``units`` is called until it returns the run's units (known once Luigi has planned);
    ``outcome(unit)`` gives the unit's status from this run's result, or None.
    """

    def __init__(self, units: Callable[[], list[str] | None], outcome: Callable[[str], str | None],
                 factory: KeepingSchedulerFactory, success: Sequence[str], desc: str, interval: float = 0.5,
                 enabled: bool = True) -> None:
        self._units, self._outcome, self._factory = units, outcome, factory
        self._success, self._desc, self._interval, self._enabled = tuple(success), desc, interval, enabled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fanout-progress", daemon=True)
        self.counts: dict[str, int] = {"total": 0, "done": 0, "failed": 0, "running": 0, "remaining": 0}
        self.bar: Any = None

    def __enter__(self) -> ProgressWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()  # the final counts, whatever the last tick saw
        if self.bar is not None:
            self.bar.close()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    def poll(self) -> None:
        units = self._units()
        if units is None:
            return
        outcomes = {u: s for u in units if (s := self._outcome(u)) is not None}
        self.counts = count(units, outcomes, running_units(self._factory.scheduler), self._success)
        if self._enabled:
            self._show()

    def _show(self) -> None:
        c = self.counts
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=c["total"], desc=self._desc, unit="job", dynamic_ncols=True)
        self.bar.n = c["done"] + c["failed"]
        self.bar.set_postfix(done=c["done"], running=c["running"], failed=c["failed"], remaining=c["remaining"],
                             refresh=False)
        self.bar.refresh()


def result_outcome(log_dir: str, run_id: str, group: str = "") -> Callable[[str], str | None]:
    def outcome(unit: str) -> str | None:
        res = results.of_run(log_dir, unit, run_id, group)
        return res.status if res is not None else None
    return outcome


def wait_for_plan(task: Any, key: str = "missing", name: Callable[[Any], str] = str) -> Callable[[], list[str] | None]:
    """The units to run, once Luigi has made ``task.plan`` (a cached property: read it
    only when it is there, never compute it from this thread)."""
    def units() -> list[str] | None:
        plan = task.__dict__.get("plan")
        return None if plan is None else [name(u) for u in plan[key]]
    return units


def job_rows(rows: Sequence[dict[str, Any]], log_dir: str, run_id: str, group: str = "",
             artifact_of: Callable[[str], Any] | None = None, configuration: str | None = None) -> list[dict[str, Any]]:
    """One flat row per unit: name, configuration, status, seconds, application id,
    artifact, error, log, and the artifact's metrics as columns (``artifact_of(name)``
    gives an ArtifactTarget to read them from)."""
    out = []
    for row in rows:
        name = str(row["label"])
        res = results.of_run(log_dir, name, run_id, group)
        mine = res is not None
        flat: dict[str, Any] = {"name": name, "configuration": configuration, "status": row["status"],
                                "seconds": row.get("seconds"), "application_id": res.application_id if mine else None,
                                "artifact": None, "error": res.error if mine else None, "log": res.log if mine else None}
        target = artifact_of(name) if artifact_of else None
        if target is not None:
            try:
                if target.exists():
                    flat["artifact"] = target.path
                    meta = target.metadata()
                    flat["application_id"] = flat["application_id"] or meta.get("application_id")
                    flat.update({k: v for k, v in (meta.get("metrics") or {}).items() if k not in flat})
            except Exception:  # storage trouble: the row still says what ran
                pass
        elif mine and res.artifact:
            flat["artifact"] = res.artifact
        out.append(flat)
    return out

