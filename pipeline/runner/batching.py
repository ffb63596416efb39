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
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from typing import Any

import luigi

from pipeline.errors import ConfigError
from pipeline.internals import command_line_workers


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
    text = str(value).strip().lower()
    if text == "auto":
        return None
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigError(f"batch-size {value!r} is invalid: use auto or a whole number >= 1 (1 = one job per label)")
    return size


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
