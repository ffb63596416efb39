"""Hooks of the controller process: the Kerberos check, SIGTERM as an interrupt, a summary
table at exit.

With ``[yarn] auth = kerberos`` (on YARN) or ``[webhdfs] auth = kerberos``, the first call of
:func:`install_controller_hooks` for a wrapper task checks the credentials once, before any
job is scheduled: one line saying ``kinit`` instead of fifty failed submissions.

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

import luigi

from pipeline import console, tracking
from pipeline.cluster import kerberos
from pipeline.config import fanout
from pipeline.errors import FanoutError, TaskInterrupted
from pipeline.runner import results

_hooked: dict[str, Any] = {}
_hook_lock = threading.Lock()
_checked: set[str] = set()  # wrapper tasks whose credentials were checked (in any process)


def install_controller_hooks(task: Any) -> None:
    """Check Kerberos credentials once per wrapper task (everywhere: command line and
    notebook); remember ``task`` for the exit summary; the first one also installs the hooks."""
    if task.task_id not in _checked:
        check_kerberos()
        _checked.add(task.task_id)
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
