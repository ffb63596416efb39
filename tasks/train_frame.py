"""A driver engine's labels on the batch's pandas frame (collected by Spark or read by
:mod:`tasks.local_frame`): on a pool of driver threads under a plain local master, or as
Spark tasks on the executors when the job has executors of its own (:mod:`tasks.fit_tasks`).
Each label's artifact is committed by the driver as soon as that label is done."""

from __future__ import annotations

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from tasks.batch_frame import label_column
from tasks.engines import Engine
from tasks.engines.training import Options
from tasks.fit_tasks import FitSettings, LabelWork, fit_group, warm_up
from tasks.jobspec import emit_event
from tasks.label_job import LabelJob, commit_label, fit_on_driver, report_failure, warn_nulls
from tasks.label_sample import Minimums, label_sample

#: Where collected labels are fitted (``[batching] fit_place`` through the spec); auto:
#: as tasks when the job has executors of its own, on driver threads under a plain local
#: master, whose task slots are the driver's own cores (measured, 64 labels x 5,000 rows
#: on local[2]: 28 s on driver threads, 41 s as tasks: Python workers, their imports and
#: pickling cost more than the GIL the threads share).
FIT_IN_TASKS, FIT_ON_DRIVER, FIT_AUTO = "tasks", "driver", "auto"
#: Labels per task when a batch has many: enough tasks per slot to even out the load,
#: few enough that each Spark job's own cost (0.1-0.4 s on a busy 2-core machine) stays
#: small beside its fits; a task's labels are committed when it returns.
TASKS_PER_SLOT = 4
MAX_LABELS_PER_TASK = 64


def fits_as_tasks(spec: dict[str, Any], master: str) -> bool:
    """Whether collected labels are fitted as Spark tasks (see :data:`FIT_AUTO`)."""
    place = spec.get("fit_place", FIT_AUTO)
    return place == FIT_IN_TASKS or (place == FIT_AUTO and not re.fullmatch(r"local(\[.*\])?", master))


def driver_cores(spark: Any) -> int:
    """Cores this driver may use for training threads: local[N]'s N, else spark.driver.cores."""
    sc = spark.sparkContext
    if sc.master.startswith("local"):
        return max(1, int(sc.defaultParallelism))
    return max(1, int(spark.conf.get("spark.driver.cores", "1")))


def train_collected(spark: Any, frame: Any, jobs: list[LabelJob], engine: Engine, params: dict[str, Any],
                    watch_parent: int | None) -> int:
    """A driver engine on the collected frame: labels train side by side on a pool of
    driver threads (the libraries release the GIL); each is committed as it finishes.
    Returns how many labels failed."""
    spec = jobs[0].spec
    columns = [f"f{i}" for i in range(len(spec["features"]))]
    seed = int(spec["seed"])
    minimums = Minimums.from_spec(spec)

    def train_one(job: LabelJob) -> tuple[dict[str, Any], Any]:
        job.started = time.perf_counter()
        job.check_switch()
        sample = label_sample(frame, job.label, label_column(job.index), columns, float(spec["balance_ratio"]), seed, minimums)
        warn_nulls(job.label, sample.rows, minimums)
        emit_event("progress", label=job.label, percent=50, message="balanced")
        return sample.rows, fit_on_driver(engine, job, sample.train, sample.validation, columns, params)

    failed = 0
    threads = min(len(jobs), int(spec.get("threads") or driver_cores(spark)))
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="train") as pool:
        futures = {pool.submit(train_one, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                rows, model = future.result()
                commit_label(spark, job, params, rows, model, watch_parent)
            except Exception as exc:  # one label's failure never stops the others
                failed += 1
                report_failure(job.label, exc)
    return failed


def task_slots(spark: Any) -> int:
    """Fits that can run at once as Spark tasks: the job's cores (local[N]'s N, the
    executors' registered cores on a cluster) over ``spark.task.cpus``."""
    sc = spark.sparkContext
    per_task = max(1, int(spark.conf.get("spark.task.cpus", "1")))
    return max(1, int(sc.defaultParallelism) // per_task)


def start_warm_up(spark: Any, engine: Engine) -> threading.Thread:
    """While the driver collects the rows, one task per slot starts a Python worker and
    imports the engine's library in it (~1-3 s each, paid once per worker, which Spark
    keeps for the fits); a warm-up that fails only costs the fits that import. Not on a
    local master: there it only takes cores from the collect (measured: 6.7 s -> 13.7 s)."""
    sc = spark.sparkContext
    slots = task_slots(spark)

    def warm() -> None:
        try:
            sc.parallelize(range(slots), slots).flatMap(lambda _: warm_up(engine.name)).collect()
        except Exception:  # noqa: BLE001,S110 - the fits report any real trouble themselves
            pass

    thread = threading.Thread(target=warm, name="warm-up", daemon=True)
    thread.start()
    return thread


def label_groups(jobs: list[LabelJob], slots: int) -> list[list[LabelJob]]:
    """The labels of each task: one per task for a few labels, more per task for many."""
    size = max(1, min(MAX_LABELS_PER_TASK, len(jobs) // (slots * TASKS_PER_SLOT)))
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


def _fit_group_as_task(spark: Any, shipped: Any, settings: FitSettings, group: list[LabelJob], params: dict[str, Any],
                       watch_parent: int | None) -> int:
    """One group of labels as one Spark job of one task, then each label committed as it
    came back. Returns how many of the group failed."""
    ready, failed = [], 0
    for job in group:
        job.started = time.perf_counter()
        try:
            job.check_switch()
            ready.append(job)
        except Exception as exc:
            failed += 1
            report_failure(job.label, exc)
    if not ready:
        return failed
    works = [LabelWork(job.label, label_column(job.index)) for job in ready]
    try:
        outcomes = spark.sparkContext.parallelize([works], 1).flatMap(lambda w: fit_group(shipped, settings, w)).collect()
    except Exception as exc:  # the task itself failed (lost executor, …): its labels fail, the rest go on
        for job in ready:
            report_failure(job.label, exc)
        return failed + len(ready)
    for job, outcome in zip(ready, outcomes, strict=True):
        try:
            if "error" in outcome:
                raise outcome["error"]
            job.imbalance = outcome["imbalance"]
            outcome["model"].info["fitted_in"]["driver_pid"] = os.getpid()
            warn_nulls(job.label, outcome["rows"], settings.minimums)
            commit_label(spark, job, params, outcome["rows"], outcome["model"], watch_parent)
        except Exception as exc:  # one label's failure never stops the others
            failed += 1
            report_failure(job.label, exc)
    return failed


def train_as_tasks(spark: Any, frame: Any, jobs: list[LabelJob], engine: Engine, params: dict[str, Any],
                   watch_parent: int | None) -> int:
    """A driver engine on the collected frame, fitted as Spark tasks: the frame goes to
    every executor once, each group of labels is one Spark job of one task (submitted
    from driver threads, so as many run at once as there are slots), and each label's
    artifact is committed by the driver as soon as its task returns. Returns how many
    labels failed."""
    spec = jobs[0].spec
    settings = FitSettings(engine=engine.name, params=params, columns=[f"f{i}" for i in range(len(spec["features"]))],
                           seed=int(spec["seed"]), balance_ratio=float(spec["balance_ratio"]),
                           options=Options.from_spec(spec), minimums=Minimums.from_spec(spec))
    shipped = spark.sparkContext.broadcast(frame)
    slots = task_slots(spark)
    groups = label_groups(jobs, slots)
    # More threads than slots: while one thread commits its labels, another's task runs.
    with ThreadPoolExecutor(max_workers=max(1, min(len(groups), 2 * slots)), thread_name_prefix="fit") as pool:
        futures = [pool.submit(_fit_group_as_task, spark, shipped, settings, group, params, watch_parent) for group in groups]
        failed = sum(future.result() for future in futures)
    shipped.unpersist()
    return failed


def train_frame(spark: Any, frame: Any, jobs: list[LabelJob], engine: Engine, params: dict[str, Any],
                watch_parent: int | None) -> int:
    """A driver engine's labels on the batch's frame: as Spark tasks or on driver threads
    (:func:`fits_as_tasks`). Returns how many failed."""
    if fits_as_tasks(jobs[0].spec, spark.sparkContext.master):
        return train_as_tasks(spark, frame, jobs, engine, params, watch_parent)
    return train_collected(spark, frame, jobs, engine, params, watch_parent)
