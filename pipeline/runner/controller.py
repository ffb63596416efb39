"""Hooks of the controller process: the Kerberos check, SIGTERM as an interrupt, a quiet
stop, luigid's loss survived, a summary table and one closing line at exit.

With ``[yarn] auth = kerberos`` (on YARN) or ``[webhdfs] auth = kerberos``, the first call of
:func:`install_controller_hooks` for a wrapper task checks the credentials once, before any
job is scheduled: one line saying ``kinit`` instead of fifty failed submissions.

Luigi has no "run finished" hook and no SIGTERM handling. The ``luigi`` command line's
entry (``pipeline/__init__.py``, which ``luigi --module pipeline`` imports) calls
:func:`install_command_line`: in the command line's main process only (never Luigi's
forked task processes, nor a notebook or test process that imports us:
:mod:`pipeline.api` returns the summary there instead), it installs the concise console,
the scheduler proxy that outlives luigid (:mod:`pipeline.runner.scheduler`), MLflow
logging (:mod:`pipeline.tracking`), a stop without tracebacks and the exit report.
Importing a module registers nothing. The first wrapper task (``TrainAll``, ``RunScripts``, ...) seen in the main
process adds SIGTERM handling. A wrapper task offers ``summary_rows()``, a
``summary_title`` and optionally ``summary_unit``/``summary_detail`` (the table's
first and last column: ``label``, ``artifact / error``).

A stop (Ctrl-C, SIGTERM) prints no traceback, in the main process nor in a task
process: each job records what it stopped, the summary shows it, and one closing
line (``stopped: ...``) says what was kept. A plain Ctrl-C still ends the process by
SIGINT (exit status 130), as shells expect of a program they interrupted.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import luigi

from pipeline import console, tracking
from pipeline.cluster import kerberos
from pipeline.config import fanout
from pipeline.data import results
from pipeline.data.results import current_run_id
from pipeline.errors import FanoutError, TaskInterrupted, one_line, stop_reason
from pipeline.internals import wrap_trigger_event
from pipeline.runner import scheduler

_hooked: dict[str, Any] = {}
_hook_lock = threading.Lock()
_checked: set[str] = set()  # wrapper tasks whose credentials were checked (in any process)
_stopped: dict[str, str] = {}  # "why": how the run was stopped, once it was
_installed = threading.Event()
TASK_PROCESS_CONTEXT = f"{__name__}.QuietStop"


def install_command_line() -> None:
    """Install what the ``luigi`` command line needs (see the module's docstring), once, and
    only in its main process; its entry calls this before Luigi parses parameters and logs
    anything."""
    if _installed.is_set() or not is_luigi_command_line():
        return
    _installed.set()
    console.install()
    scheduler.install()
    tracking.install()  # [mlflow] tracking_uri: finished artifacts logged (nothing without it)
    _use_quiet_task_processes()
    wrap_trigger_event(_keeping_ctrl_c)
    sys.excepthook = _quiet_interrupt
    atexit.register(_at_exit)


def install_controller_hooks(task: Any) -> None:
    """Check Kerberos credentials once per wrapper task (everywhere: command line and
    notebook); remember ``task`` for the exit summary; the first one also turns SIGTERM
    into an interrupt."""
    if task.task_id not in _checked:
        check_kerberos()
        _checked.add(task.task_id)
    if not is_luigi_command_line():
        return
    with _hook_lock:
        if task.task_id in _hooked:
            return
        first = not _hooked
        _hooked[task.task_id] = task
    if first and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


def kerberos_needed() -> bool:
    """Whether this run talks to a Kerberized cluster: ``[yarn] auth = kerberos`` with a YARN
    master, or ``[webhdfs] auth = kerberos``."""
    config = luigi.configuration.get_config()
    on_yarn = (config.get("spark", "master", "local[1]") or "").startswith("yarn")
    return (on_yarn and config.get("yarn", "auth", "none") == "kerberos") or (
        config.get("webhdfs", "auth", "insecure") == "kerberos"
    )


def check_kerberos() -> str | None:
    """When :func:`kerberos_needed`, the usable credentials' principal (the kinit ticket, or
    ``[yarn] principal`` and ``keytab``); raises a one-line
    :class:`~pipeline.errors.KerberosError` otherwise. ``None`` when Kerberos is not used."""
    if not kerberos_needed():
        return None
    return kerberos.check_credentials(*kerberos.configured_login())


def is_luigi_command_line() -> bool:
    """Whether this is the main process of a ``luigi`` command line."""
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return (
        (os.path.basename(sys.argv[0]) in ("luigi", "luigi.exe", "luigi-script.py")
         or getattr(main_spec, "name", None) == "luigi.__main__")
        and multiprocessing.parent_process() is None
        and threading.current_thread() is threading.main_thread()
    )


def _sigterm_to_interrupt(signum: int, _frame: object) -> None:
    # Luigi's worker stops its task processes on KeyboardInterrupt, not on SIGTERM.
    raise TaskInterrupted("controller received SIGTERM", signum)


class QuietStop:
    """Luigi's ``[worker] task_process_context``: a forked task process that was stopped
    ends without a traceback (the task recorded what it stopped), with the exit status
    of the signal (130 for Ctrl-C, 143 for SIGTERM). Luigi's own log mode keeps the
    traceback."""

    def __init__(self, _process: Any) -> None:
        pass

    def __enter__(self) -> QuietStop:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object) -> bool:
        if exc is None or not isinstance(exc, KeyboardInterrupt) or multiprocessing.parent_process() is None:
            return False
        if console.mode() != "concise":
            return False
        raise SystemExit(128 + (getattr(exc, "signum", None) or signal.SIGINT))


def _quiet_interrupt(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    """``sys.excepthook``: a stop reaching the top of the main process is said in the
    closing line, not as a traceback."""
    if issubclass(exc_type, KeyboardInterrupt) and console.mode() == "concise":
        _stopped["why"] = stop_reason(exc)
        return
    sys.__excepthook__(exc_type, exc, tb)


def _at_exit() -> None:
    """The summary of every wrapper task, then one closing line if the run ended early."""
    why = _stopped.get("why")
    lost = scheduler.lost_scheduler()
    if lost is not None:
        not_started = f"the scheduler at {lost.address} {'stopped answering' if lost.answered_before else 'does not answer'}"
    else:
        not_started = f"the run was stopped by {why} first" if why else None
    closing = []
    for task in _hooked.values():
        if "plan" not in vars(task):  # its planning failed and said why; planning again now (without
            continue  # the command line's values) would show a table of a run that never was
        try:
            rows = task.summary_rows()
        except FanoutError as exc:
            if str(exc) not in console.shown_errors:  # the concise log printed it already
                print(f"\nspark-fanout: {exc}", flush=True)
            continue
        if not_started:
            rows = results.mark_not_started(rows, not_started)
        unit = getattr(task, "summary_unit", "label")
        if fanout().summary:
            print(f"\nspark-fanout summary ({task.summary_title}):\n{_summary(task, rows, unit)}", flush=True)
        if (why or lost is not None) and rows:
            closing.append(results.outcome(rows, unit))
    if why is None and lost is None:
        return
    done = f": {'; '.join(closing)}" if closing else ""
    if lost is not None and lost.answered_before:
        print(f"spark-fanout: the scheduler at {lost.address} stopped answering{done}; rerun to continue "
              "(what finished is kept)", flush=True)
    elif lost is not None:
        print(f"spark-fanout: {lost.line()}", flush=True)
    elif _hooked:
        print(f"stopped: {why}{done}; rerun to continue (what finished is kept)", flush=True)
    else:
        running = sorted(console.running_tasks())
        during = f" during {', '.join(running)}: it did not finish" if running else ""
        print(f"stopped: {why}{during}; rerun to continue", flush=True)


def _summary(task: Any, rows: list[dict[str, object]], unit: str) -> str:
    """The table, or for a long run the rows that need attention and where the full table went."""
    detail = getattr(task, "summary_detail", "artifact / error")
    table = results.format_table(rows, unit=unit, detail=detail)
    if len(rows) <= results.SHORT_SUMMARY_ROWS:
        return table
    path = Path(getattr(task, "log_dir", "logs")) / f"summary-{_run_id(task)}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"spark-fanout summary ({task.summary_title}):\n{table}\n", encoding="utf-8")
    except OSError as exc:
        return f"{table}\n(could not write {path}: {one_line(exc, 200)})"
    return results.short_summary(rows, str(path), unit=unit, detail=detail)


def _run_id(task: Any) -> str:
    return getattr(task, "run_id", "") or current_run_id()


def _keeping_ctrl_c(original: Any) -> Any:
    """Luigi's ``Task.trigger_event`` returns quietly when a callback raises
    KeyboardInterrupt, so a Ctrl-C (or a SIGTERM made an interrupt) that lands while one
    runs (the start line, MLflow logging of a finished artifact) was lost and the run went
    on. Wrapped: such a stop is raised again once the callbacks are done."""

    def trigger_event(self: luigi.Task, event: str, *args: Any, **kwargs: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return original(self, event, *args, **kwargs)
        caught: list[KeyboardInterrupt] = []

        def remembering(handler: Any) -> Any:
            def _handle(signum: int, frame: Any) -> None:
                try:
                    handler(signum, frame)
                except KeyboardInterrupt as exc:
                    caught.append(exc)
                    raise
            return _handle

        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        wrapped = {s: h for s, h in previous.items() if callable(h)}  # Python handlers: they may interrupt
        for s, handler in wrapped.items():
            signal.signal(s, remembering(handler))
        try:
            original(self, event, *args, **kwargs)
        finally:
            for s in wrapped:
                signal.signal(s, previous[s])
        if caught:
            raise caught[0]

    return trigger_event


def _use_quiet_task_processes() -> None:
    """Luigi's documented hook around each forked task process, unless the user set one."""
    config = luigi.configuration.get_config()
    if not config.has_section("worker"):
        config.add_section("worker")
    if not any(config.has_option("worker", key) for key in ("task_process_context", "task-process-context")):
        config.set("worker", "task_process_context", TASK_PROCESS_CONTEXT)

