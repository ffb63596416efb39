"""What the ``luigi`` command line prints: one line per job start and finish, warnings,
and our typed errors as the one line they are, instead of Luigi's DEBUG log.

``[console] log = concise`` (the default) installs a filter on Luigi's ``luigi-interface``
logger and event handlers that print job lines; ``log = luigi`` (or ``--console-log
luigi`` on the command line) leaves Luigi's own log exactly as Luigi writes it. Only the
``luigi`` command line's main process installs them (:mod:`pipeline.runner.controller`),
never a notebook; Luigi's forked task processes inherit them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from typing import Any

import luigi

from pipeline.data import results
from pipeline.data.results import current_run_id
from pipeline.errors import FanoutError, one_line
from pipeline.params import describe_unreadable, unreadable_value

LUIGI_LOGGER = "luigi-interface"
JOB_LOGGER = "spark-fanout"
_LUIGI_DIR = os.path.dirname(luigi.__file__)
_JOB_MODULE = os.path.join("pipeline", "runner", "job.py")  # its INFO lines are the spark-submit argv: detail

#: Messages of our errors already printed as one line (the exit summary skips them).
shown_errors: set[str] = set()

_state: dict[str, Any] = {"installed": False, "mode": None}
_running: dict[int, str] = {}  # id(task) -> family of the tasks started and not finished in this process
#: Luigi's RemoteScheduler logs each retry with an empty traceback; the scheduler proxy
#: (pipeline.runner.scheduler) says in one line when luigid is lost.
_RETRY_SPEW = ("Failed connecting to remote scheduler", "Failed pinging scheduler")
_lock = threading.Lock()
_WILL_NOT_RUN = re.compile(r"^Will not run (\w+)\(.*? due to error in (\w+\(\)) method:", re.S)


class console(luigi.Config):  # noqa: N801 - luigi names the config section after the class
    log = luigi.ChoiceParameter(choices=("concise", "luigi"), var_type=str, default="concise",
                                description="concise: one line per job start/finish, warnings and one-line errors; "
                                            "luigi: Luigi's own log (DEBUG, tracebacks) as Luigi writes it")


def mode() -> str:
    """``concise`` or ``luigi``, resolved once per process (the command line's
    ``--console-log`` included, once Luigi has parsed it)."""
    if _state["mode"] is None:
        try:
            _state["mode"] = console().log
        except Exception:  # a bad value: Luigi refuses it elsewhere; meanwhile stay concise
            return "concise"
    return _state["mode"]


def _fanout_error_names() -> set[str]:
    names, todo = set(), [FanoutError]
    while todo:
        cls = todo.pop()
        names.add(f"{cls.__module__}.{cls.__qualname__}")
        todo.extend(cls.__subclasses__())
    return names


_CAUSED = "The above exception was the direct cause of the following exception:"


def typed_error_in_traceback(text: str) -> str | None:
    """The message of a FanoutError that ends a formatted traceback, if it does; or the
    one line for a user's value Luigi could not read (:func:`describe_unreadable`)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    name, sep, message = lines[-1].partition(": ")
    if sep and name in _fanout_error_names():
        return message.strip()
    if name == "ValueError" and _CAUSED in lines:
        cause = lines[lines.index(_CAUSED) - 1]
        cause_name, _, cause_message = cause.partition(": ")
        return describe_unreadable(message, cause_message.strip() if cause_name in _fanout_error_names() else None, cause)
    return None


class ConciseFilter(logging.Filter):
    """Keeps warnings and errors, our own progress lines (not the job runner's detail)
    and nothing of Luigi's INFO/DEBUG; rewrites our typed errors to their one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if mode() != "concise":
            return True
        error = record.exc_info[1] if record.exc_info else None
        unreadable = unreadable_value(error)  # a user's value Luigi could not read: not a bug, no traceback
        if unreadable is not None:
            return self._one_line(record, unreadable)
        if isinstance(error, FanoutError):
            if " failed " in str(record.msg) and str(record.msg).startswith("[pid"):
                return False  # a task's failure: the job line printed by on_failure says it
            return self._one_line(record, str(error))
        if record.levelno >= logging.WARNING:
            if isinstance(record.msg, str) and record.msg.startswith(_RETRY_SPEW):
                return False
            found = _WILL_NOT_RUN.match(str(record.msg)) if isinstance(record.msg, str) else None
            message = typed_error_in_traceback(record.msg) if found else None
            if message is not None:
                return self._one_line(record, f"{found.group(1)}: {message}")
            return True
        if record.levelno < logging.INFO or record.pathname.startswith(_LUIGI_DIR):
            return False
        return not record.pathname.endswith(_JOB_MODULE)

    @staticmethod
    def _one_line(record: logging.LogRecord, text: str) -> bool:
        shown_errors.add(text.split(": ", 1)[-1])
        shown_errors.add(text)
        record.msg, record.args, record.exc_info, record.exc_text = one_line(text), (), None, None
        record.levelno, record.levelname = logging.ERROR, "ERROR"
        return True


def job_logger() -> logging.Logger:
    """The logger of job lines: ``HH:MM:SS <line>`` on stderr, beside Luigi's log."""
    log = logging.getLogger(JOB_LOGGER)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def _is_spark_job(task: Any) -> bool:
    return hasattr(task, "members") and hasattr(task, "result_group") and hasattr(task, "log_folder")


def start_line(task: Any) -> str | None:
    if isinstance(task, luigi.WrapperTask):
        return None
    if _is_spark_job(task):
        return f"started   {task.title}  (logs: {task.log_folder})"
    return f"started   {task.task_family}"


def finish_lines(task: Any, error: BaseException | None = None) -> list[str]:
    """One line per unit of work the task ran: status, seconds, artifact or error."""
    if isinstance(task, luigi.WrapperTask):
        return []
    if not _is_spark_job(task):
        return [f"done      {task.task_family}"] if error is None else \
            [f"failed    {task.task_family}: {one_line(error if isinstance(error, FanoutError) else f'{type(error).__name__}: {error}', 300)}"]
    lines, failed, log = [], 0, None
    for member in task.members:
        res = results.of_run(task.log_dir, member, task.run_id or current_run_id(), task.result_group)
        status = res.status if res else ("failed" if error is not None else task.success_status)
        failed += status in results.FAILED_STATUSES
        log = log or (res.log if res else None)
        seconds = f"{res.seconds:6.1f}s" if res and res.seconds is not None else "       "
        if res and res.error:
            detail = res.error
        elif res and res.artifact:
            detail = str(res.artifact)
        else:
            detail = one_line(error, 300) if error is not None else ""
        lines.append(f"{status:<9} {task.unit} {member!r} {seconds}  {one_line(detail, 400)}")
    if error is not None and len(task.members) > 1:
        # The batch's own line counts; each member's line below says its error (once).
        rest = ", the others are complete" if failed < len(task.members) else ""
        where = f" (log: {log})" if log else ""
        lines.insert(0, f"failed    {task.title}: {failed} of {len(task.members)} {task.unit}s failed{rest}{where}")
    return lines


def running_tasks() -> set[str]:
    """Families of the tasks this process started and has not seen end (a stop names them)."""
    return set(_running.values())


def _on_start(task: Any) -> None:
    _running[id(task)] = task.task_family
    line = start_line(task)
    if line:
        job_logger().info(line)


def _on_success(task: Any) -> None:
    _running.pop(id(task), None)
    for line in finish_lines(task):
        job_logger().info(line)


def _on_failure(task: Any, error: BaseException) -> None:
    _running.pop(id(task), None)
    for line in finish_lines(task, error):
        job_logger().info(line)


def _on_process_end(task: Any, message: str) -> None:
    # Luigi's worker stopped the task's process (--worker-timeout) or found it dead.
    job_logger().info(f"failed    {getattr(task, 'title', task.task_family)}: {one_line(message, 400)}")


def install() -> None:
    """The filter on Luigi's logger and the job-line event handlers, once per process."""
    with _lock:
        if _state["installed"]:
            return
        _state["installed"] = True
    logging.getLogger(LUIGI_LOGGER).addFilter(ConciseFilter())
    luigi.Task.event_handler(luigi.Event.START)(_on_start)
    luigi.Task.event_handler(luigi.Event.SUCCESS)(_on_success)
    luigi.Task.event_handler(luigi.Event.FAILURE)(_on_failure)
    luigi.Task.event_handler(luigi.Event.TIMEOUT)(_on_process_end)
    luigi.Task.event_handler(luigi.Event.PROCESS_FAILURE)(_on_process_end)
