"""Hooks of the controller process: SIGTERM as an interrupt, a summary table at exit.

Luigi has no "run finished" hook and no SIGTERM handling. When the process is the
``luigi`` command line, the first wrapper task (``TrainAll``, ``RunScripts``) seen in its
main process installs both — never in Luigi's forked task processes, nor in a notebook
or test process that imports us (:mod:`pipeline.api` returns the summary there instead).
A wrapper task offers ``summary_rows()`` and a ``summary_title``.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import sys
import threading
from typing import Any

from pipeline import console, tracking
from pipeline.config import fanout
from pipeline.errors import FanoutError, TaskInterrupted
from pipeline.runner import results

_hooked: dict[str, Any] = {}
_hook_lock = threading.Lock()


def install_controller_hooks(task: Any) -> None:
    """Remember ``task`` for the exit summary; the first one also installs the hooks."""
    if not _is_luigi_command_line():
        return
    with _hook_lock:
        if task.task_id in _hooked:
            return
        first = not _hooked
        _hooked[task.task_id] = task
    if not first:
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    if fanout().summary:
        atexit.register(_print_summaries)


def _is_luigi_command_line() -> bool:
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return (
        (os.path.basename(sys.argv[0]) in ("luigi", "luigi.exe", "luigi-script.py")
         or getattr(main_spec, "name", None) == "luigi.__main__")
        and multiprocessing.parent_process() is None
        and threading.current_thread() is threading.main_thread()
    )


def _sigterm_to_interrupt(signum: int, _frame: object) -> None:
    # Luigi's worker stops its task processes on KeyboardInterrupt, not on SIGTERM.
    raise TaskInterrupted("controller received SIGTERM")


def _print_summaries() -> None:
    for task in _hooked.values():
        try:
            rows = task.summary_rows()
        except FanoutError as exc:
            if str(exc) not in console.shown_errors:  # the concise log printed it already
                print(f"\nspark-fanout: {exc}", flush=True)
            continue
        print(f"\nspark-fanout summary ({task.summary_title}):\n{results.format_table(rows)}", flush=True)


if _is_luigi_command_line():  # at import: before Luigi parses parameters and logs anything
    console.install()
tracking.install()  # [mlflow] tracking_uri: finished artifacts logged (nothing without it), CLI and notebook
