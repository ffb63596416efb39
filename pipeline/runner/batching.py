"""Several units of work (labels, trials) in one spark-submit, through Luigi's batching.

A batchable task's name parameter (:class:`MemberParameter`) holds one name for a task
of its own and a tuple of names for a batch: Luigi's scheduler groups pending tasks that
differ only in that parameter, up to the task's ``max_batch_size``, and hands the worker
one task built with the tuple. luigid shows the batch as one running task and its
members as batch-running.

How big a batch is (``auto``): every spark-submit pays a start-up cost ``S`` (JVM,
session, reading the data) before its first label trains in ``t`` seconds. A batch of
``b`` labels spends ``S / (S + b·t)`` of its time starting up; the smallest batch that
keeps that share under ``startup_share`` is ``b = ceil(S·(1 − share) / (share·t))``.
Larger batches only cost parallelism and resume granularity, so ``b`` is also capped at
``ceil(labels / workers)`` (every worker gets a batch) and at ``max_size``. Without a
measured ``t`` (a first run), ``b = min(ceil(labels / workers), max_size)``: with
nothing known, start-up is what to save.

The plan (:func:`plan_batches`, chosen from the settings by :func:`configured_plan` for
TrainAll, TuneAll and FeatureSweep alike) applies that rule on a cluster, where every
batch brings its own executors. On one machine (a local master) more batches bring no
more cores, only more start-ups: a batch fits its labels as Spark tasks on every core it
has, so the plan makes the fewest batches (``ceil(labels / max_size)``, when more than one
a multiple of the workers, of equal size) and gives each of the batches running at once
an equal share of the machine's cores (``local[N]``). Measured on 2 cores: one batch of
``local[2]`` beat two of ``local[1]`` (issue 21).

A batch holds labels of one configuration only (they differ in nothing else, see
:class:`MemberParameter`): a search's jobs come in groups, one per configuration (a
trial's labels), and the batch size is planned for the largest group.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import luigi

from pipeline.config import batching as batching_settings
from pipeline.errors import ConfigError
from pipeline.internals import command_line_workers
from pipeline.params import auto_or_number


def members(value: str | tuple[str, ...]) -> tuple[str, ...]:
    """The names a (possibly batched) name parameter holds."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


class MemberParameter(luigi.Parameter):
    """A name (a label) that Luigi may batch: a batch task gets a tuple of names,
    shown in luigid as a JSON list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("batch_method", tuple)
        super().__init__(*args, **kwargs)

    def serialize(self, x: Any) -> str:
        if isinstance(x, (tuple, list)):
            return json.dumps(list(x), ensure_ascii=False)
        return str(x)

    def normalize(self, x: Any) -> Any:
        return tuple(x) if isinstance(x, list) else x


def parse_batch_size(value: str) -> int | None:
    """``auto`` → ``None``; a whole number ≥ 1 → itself; anything else refused."""
    try:
        return auto_or_number(value, minimum=1)
    except ValueError:
        raise ConfigError(f"batch-size {value!r} is invalid: use auto or a whole number >= 1 (1 = one job per label)") from None


def auto_batch_size(items: int, workers: int, *, startup_s: float, per_item_s: float | None,
                    max_size: int, startup_share: float) -> int:
    """The batch size rule of this module's docstring (pure)."""
    if items <= 1:
        return 1
    spread = math.ceil(items / max(1, workers))
    size = min(spread, max(1, max_size))
    if per_item_s is not None and per_item_s > 0 and 0 < startup_share < 1:
        needed = math.ceil(startup_s * (1 - startup_share) / (startup_share * per_item_s))
        size = min(size, max(1, needed))
    return max(1, size)


@dataclass(frozen=True)
class Plan:
    """How a run trains its labels: ``batches`` spark-submits of up to ``batch_size``
    labels, ``at_once`` of them together, each fitting ``fits_per_batch`` labels at once
    (``None``: as many as the executors YARN grants) on ``cores_per_batch`` cores (a local
    master's width; 0: ``[spark] master`` as written). ``configurations``: how many
    configurations the labels belong to (a search's trials; a batch holds one's labels).
    ``expected_s``: the wall time the measured start-up and per-label seconds predict,
    ``None`` before anything was measured."""

    labels: int
    batch_size: int
    batches: int
    at_once: int
    cores_per_batch: int
    fits_per_batch: int | None
    expected_s: float | None
    configurations: int = 1

    def describe(self) -> str:
        """The plan in words (``--dry-run``)."""
        if not self.labels:
            return "nothing to train (every label is complete)"
        fits = ("as many labels as the executors YARN grants" if self.fits_per_batch is None
                else f"{self.fits_per_batch} label{'s' if self.fits_per_batch != 1 else ''}")
        where = f"local[{self.cores_per_batch}]" if self.cores_per_batch else "its executors"
        expected = ("unknown until a run of this configuration is measured" if self.expected_s is None
                    else f"about {self.expected_s:.0f} s (measured start-up and per-label times)")
        of = f" of {self.configurations} configurations" if self.configurations > 1 else ""
        return (f"{self.labels} labels{of} in {self.batches} batch(es) of up to {self.batch_size}, {self.at_once} at once; "
                f"each batch on {where}, fitting {fits} at once (1 core per fit); expected: {expected}")


def plan_batches(items: int, workers: int, *, local_cores: int | None, cluster_slots: int | None, startup_s: float,
                 per_item_s: float | None, max_size: int, startup_share: float, fixed_size: int | None = None,
                 groups: Sequence[int] | None = None) -> Plan:
    """The plan of this module's docstring (pure). ``local_cores``: the machine's cores
    when the master is local (else None); ``cluster_slots``: a cluster batch's executors x
    cores when configured; ``fixed_size``: ``--batch-size N``; ``groups``: the labels of
    each configuration, which a batch never mixes (default: ``items`` of one)."""
    workers = max(1, workers)
    sizes = [g for g in (groups if groups is not None else [items]) if g > 0]
    items = sum(sizes)
    largest = max(sizes, default=0)
    if fixed_size is not None:
        size = fixed_size
    elif local_cores is not None:
        # The fewest batches; when several, a multiple of the workers, of equal size.
        count = math.ceil(largest / max(1, max_size)) if largest else 1
        if count > 1:
            count = math.ceil(count / workers) * workers
        size = max(1, math.ceil(largest / count))
    else:
        size = auto_batch_size(items, workers, startup_s=startup_s, per_item_s=per_item_s, max_size=max_size,
                               startup_share=startup_share)
        size = max(1, min(size, largest))
    batches = sum(math.ceil(g / size) for g in sizes)
    at_once = max(1, min(batches, workers))
    cores = max(1, local_cores // at_once) if local_cores is not None else 0
    fits = min(size, cores) if local_cores is not None else cluster_slots
    expected = None
    if per_item_s is not None and items:
        rounds = math.ceil(batches / at_once)
        expected = rounds * (startup_s + math.ceil(min(size, largest) / max(1, fits or 1)) * per_item_s)
    return Plan(labels=items, batch_size=size, batches=batches, at_once=at_once, cores_per_batch=cores,
                fits_per_batch=fits, expected_s=expected, configurations=len(sizes))


_PLAIN_LOCAL = re.compile(r"local(\[(\d+|\*)\])?")


def is_plain_local(master: str) -> bool:
    """``local``, ``local[N]`` or ``local[*]``: one JVM on this machine, a width the plan
    may choose (not ``local-cluster``, not YARN)."""
    return _PLAIN_LOCAL.fullmatch(master or "") is not None


def planned_master(master: str, cores: int) -> str:
    """``master``, widened to the plan's ``local[cores]`` when it is a plain local master
    and the plan chose a width (``cores`` > 0)."""
    return f"local[{cores}]" if cores > 0 and is_plain_local(master) else master


def fits_at_once(master: str, num_executors: str | None, executor_cores: str | None, conf: dict[str, str]) -> int | None:
    """Labels a batch fits at once on a cluster: executors x cores per executor over
    ``spark.task.cpus`` (None when YARN decides: dynamic allocation, nothing configured);
    on a local master, its width."""
    per_task = max(1, int(conf.get("spark.task.cpus", 1) or 1))
    width = re.fullmatch(r"local\[(\d+)\]", master or "")
    if width:
        return max(1, int(width.group(1)) // per_task)
    if (master or "").startswith("local"):
        return None
    executors = num_executors or conf.get("spark.executor.instances")
    cores = executor_cores or conf.get("spark.executor.cores") or 1
    if not executors or str(conf.get("spark.dynamicAllocation.enabled", "false")).lower() == "true":
        return None
    return max(1, int(executors) * int(cores) // per_task)


def configured_plan(groups: Sequence[int], *, workers: int | None = None, startups: Iterable[float | None] = (),
                    per_label: Iterable[float | None] = (), fixed_size: int | None = None) -> Plan:
    """:func:`plan_batches` for this run's settings: ``[spark] master`` (widened on one
    machine unless ``[batching] widen_local = false`` or a fixed size is given), the
    allocation it asks for, ``[batching]``, this machine's cores and ``--workers`` (or
    ``workers``). ``groups``: the labels to train, per configuration; ``startups`` and
    ``per_label``: seconds earlier runs recorded (none: the configured start-up, no
    per-label time)."""
    settings = batching_settings()
    config = luigi.configuration.get_config()
    master = config.get("spark", "master", "local[1]") or "local[1]"
    widen = fixed_size is None and settings.widen_local and is_plain_local(master)
    default_startup = settings.startup_seconds_yarn if master.startswith("yarn") else settings.startup_seconds_local
    return plan_batches(sum(groups), workers or configured_workers(),
                        local_cores=(settings.local_cores or os.cpu_count() or 1) if widen else None,
                        cluster_slots=fits_at_once(master, config.get("spark", "num-executors", None),
                                                   config.get("spark", "executor-cores", None), {}),
                        startup_s=measured_median(startups) or default_startup, per_item_s=measured_median(per_label),
                        max_size=settings.max_size, startup_share=settings.startup_share, fixed_size=fixed_size,
                        groups=groups)


def configured_workers() -> int:
    """``--workers`` of this luigi command line (``[core] workers``); 1 when unknown."""
    return max(1, command_line_workers() or 1)


def check_workers() -> None:
    """Refuse ``--workers`` below 1 on a luigi command line: Luigi then only schedules
    tasks and runs none, and the run would end "not run" with nothing said."""
    workers = command_line_workers()
    if workers is not None and workers < 1:  # None: outside a luigi command line, the caller checks its own
        raise ConfigError(f"--workers {workers} runs no task (Luigi only schedules with it): use --workers 1 or more")


def measured_median(values: Iterable[float | None]) -> float | None:
    """The median of the values that were measured (not ``None``, above 0); ``None`` if none was."""
    measured = [v for v in values if v is not None and v > 0]
    return statistics.median(measured) if measured else None
