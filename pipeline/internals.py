"""The private parts of Luigi and of the ``hdfs`` package that spark-fanout relies on, in one place.

Each is used because no public hook does the job; each says why. Checked against
Luigi 3.8.1 and hdfs 2.7.3: on an upgrade of either, read this module first (the tests
that exercise each name are listed with it).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable
from typing import Any

import luigi
from luigi import rpc
from luigi.cmdline_parser import CmdlineParser
from luigi.configuration import LuigiConfigParser
from luigi.interface import _WorkerSchedulerFactory, core
from luigi.parameter import _no_value

#: Luigi's "no default given" marker (``luigi.parameter._no_value``): a typed parameter
#: tells a missing default from ``None`` with it (tests/test_params.py).
NO_VALUE = _no_value

#: Luigi's factory of schedulers and workers (``luigi.interface._WorkerSchedulerFactory``):
#: ``luigi.build`` takes one, and the command line has no other way to choose the proxy
#: that talks to luigid (tests/test_luigid.py, tests/test_api.py).
WorkerSchedulerFactory = _WorkerSchedulerFactory


def put_config_file_first(path: str) -> None:
    """Make ``path`` the lowest-precedence file of Luigi's configuration: Luigi's public
    ``add_config_path`` appends (highest precedence), so the list itself
    (``LuigiConfigParser._config_paths``) is changed, then read again (tests/test_defaults.py)."""
    if path in LuigiConfigParser._config_paths:
        return
    LuigiConfigParser._config_paths.insert(0, path)
    LuigiConfigParser.reload()


def command_line_workers() -> int | None:
    """``--workers`` of this ``luigi`` command line (the ``core`` Config class that Luigi's
    interface module keeps, not part of its documented API); ``None`` outside one."""
    try:
        return int(core().workers)
    except Exception:  # outside a luigi command line
        return None


def on_luigi_command_line() -> bool:
    """Whether this process runs a ``luigi`` command line (or was forked by one): Luigi's
    parser singleton (``CmdlineParser.get_instance``) is set then; ``luigi.build`` leaves it
    unset, and ``core().workers`` there is the configured default, not its ``workers``."""
    return CmdlineParser.get_instance() is not None


def use_on_command_line(factory: type[_WorkerSchedulerFactory]) -> None:
    """Make the ``luigi`` command line build luigid's proxy with ``factory``'s method: its
    entry point takes no factory, so the method of Luigi's default one is replaced."""
    _WorkerSchedulerFactory.create_remote_scheduler = factory.create_remote_scheduler


class RemoteSchedulerBase(rpc.RemoteScheduler):
    """Luigi's proxy for luigid, with its one private method every call goes through
    (``_request``) turned into an override point, :meth:`request` (tests/test_luigid.py)."""

    @property
    def url(self) -> str:
        return self._url

    @property
    def connect_timeout(self) -> float:
        return self._connect_timeout

    def request(self, path: str, data: dict[str, Any], attempts: int, allow_null: bool) -> Any:
        """Every call to luigid; by default Luigi's, with its retries."""
        return self.luigi_request(path, data, attempts, allow_null)

    def luigi_request(self, path: str, data: dict[str, Any], attempts: int, allow_null: bool) -> Any:
        """Luigi's own call: ``[core] rpc_retry_attempts`` tries, ``RPCError`` when all failed."""
        return super()._request(path, data, attempts, allow_null)

    def fetch_once(self, path: str, data: dict[str, Any], timeout: float) -> Any:
        """One try of a call, no retry; raises one of :attr:`fetch_errors`, ``OSError``,
        ``ValueError`` or ``KeyError`` on failure."""
        page = self._fetcher.fetch(rpc._urljoin(self._url, path), {"data": json.dumps(data)}, timeout)
        return json.loads(page)["response"]

    @property
    def fetch_errors(self) -> tuple[type[BaseException], ...]:
        return tuple(self._fetcher.raises)

    def _request(self, url: str, data: dict[str, Any], attempts: int = 3, allow_null: bool = True) -> Any:
        return self.request(url, data, attempts, allow_null)


def wrap_trigger_event(wrap: Callable[[Callable[..., None]], Callable[..., None]]) -> None:
    """Replace ``luigi.Task.trigger_event`` (which runs a task's event callbacks) by
    ``wrap(original)``, once: Luigi offers no hook around the callbacks
    (tests/test_cli_lines.py)."""
    original = luigi.Task.trigger_event
    if getattr(original, "wrapped_by_fanout", False):
        return
    wrapped = wrap(original)
    wrapped.wrapped_by_fanout = True  # type: ignore[attr-defined]
    luigi.Task.trigger_event = wrapped  # type: ignore[method-assign]


def in_process_task_params(scheduler: Any, statuses: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """Parameters of the tasks in ``statuses`` on Luigi's in-process scheduler, read from its
    state (``Scheduler._state``): its API calls prune the task graph, which must not happen
    from another thread. ``None`` for another scheduler (luigid's proxy: ask its API)."""
    state = getattr(scheduler, "_state", None)
    if state is None:
        return None
    return [(t.params or {}) for t in list(state.get_active_tasks_by_status(*statuses))]


def hdfs_operation(client: Any, name: str) -> Callable[..., Any]:
    """One WebHDFS operation of an ``hdfs`` client as a bare request (``Client._get_file_status``,
    ``_list_status``, ``_open``, ``_create``, ...): with ``strict=False`` the answer, an error
    answer too, comes back as it is, through the client's HA failover; the public methods
    raise on an error answer without it and read whole bodies (tests/test_webhdfs.py)."""
    return getattr(client, f"_{name}")


def hdfs_client_urls(client: Any) -> list[str]:
    """The NameNode URLs of an ``hdfs`` client, the active one first (``Client._urls``, which
    the client reorders on an HA failover; no public accessor) (tests/test_webhdfs.py)."""
    return list(client._urls)


def worker_timeout_passed() -> float | None:
    """In a task process Luigi started: its ``--worker-timeout`` (seconds) when that time
    is up, else ``None``. Luigi's worker ends a task past its timeout with SIGTERM and
    nothing tells the task why; its ``TaskProcess`` (the current process) holds
    ``timeout_time`` and ``worker_timeout`` (tests/test_train_spark.py::test_worker_timeout_stops_the_job)."""
    process = multiprocessing.current_process()
    timeout_time = getattr(process, "timeout_time", None)
    if timeout_time is None or time.time() < float(timeout_time) - 1.0:
        return None
    return float(getattr(process, "worker_timeout", 0) or 0)
