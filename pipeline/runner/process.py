"""Run one spark-submit so that stopping it stops everything it started.

spark-submit starts a JVM, which starts the Python driver, which starts Python workers.
Each job runs in a process group of its own; leaving :class:`JobProcess` by an exception
(Ctrl-C, SIGTERM, timeout, error) terminates that whole group, then kills what is left.
A Linux parent-death signal covers the case where the task process itself is killed.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO

from pipeline.errors import TaskInterrupted
from tasks import parent_death

logger = logging.getLogger("luigi-interface")

def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal this process when its parent dies (used in Luigi's forked task processes,
    so a controller killed outright takes its jobs with it); at once if the parent
    ``parent_pid`` is already gone."""
    parent_death.die_with_parent(sig, expected_parent=parent_pid)


def _child_setup() -> None:
    # Runs between fork and exec: only a C call to a function resolved before the fork.
    parent_death.set_parent_death_signal(signal.SIGKILL)


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block, the first stop signal raises in the main thread: Ctrl-C (SIGINT)
    KeyboardInterrupt, SIGTERM and SIGHUP :class:`TaskInterrupted`, so cleanup code runs.
    Later ones are ignored: the stop is under way, and Luigi follows a Ctrl-C with SIGTERM,
    which must neither cut the cleanup short nor hide why the job stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised: list[int] = []

    def _raise(signum: int, _frame: object) -> None:
        if raised:
            return
        raised.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise TaskInterrupted(f"received {signal.Signals(signum).name}", signum)

    previous = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def ignore_stop_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM are ignored (in the main thread): for
    cleanup that must finish, such as killing a YARN application."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class JobProcess:
    """``with JobProcess(argv, env, log) as job: rc = job.wait()``.

    Output (stdout and stderr merged) is streamed by a thread into ``log`` and to
    ``on_line``; the last lines are kept for error messages.
    """

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: IO[str],
                 on_line: Callable[[str], None] | None = None, grace_s: float = 5.0, tail_lines: int = 40) -> None:
        self.argv = list(argv)
        self.env = env
        self.log = log
        self.on_line = on_line
        self.grace_s = grace_s
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> JobProcess:
        self.proc = subprocess.Popen(  # an argument list, never a shell
            self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace", bufsize=1,
            start_new_session=True, preexec_fn=_child_setup if parent_death.prctl is not None else None,
        )
        self._reader = threading.Thread(target=self._read, name=f"job-output-{self.proc.pid}", daemon=True)
        self._reader.start()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self.log.write(line)
                self.tail.append(line.rstrip("\n"))
                if self.on_line is not None:
                    try:
                        self.on_line(line)
                    except Exception:  # a reporting hiccup must not stop output draining
                        logger.exception("could not handle job output line")
            self.log.flush()
        except ValueError:  # the pipe or the log was closed under us: the job is being given up
            return

    def wait(self, deadline: float | None = None) -> int:
        """Wait for the job; short polls keep signal handlers responsive. On a
        ``time.monotonic()`` deadline, raises TimeoutError (the exit kills the job)."""
        assert self.proc is not None
        while True:
            try:
                rc = self.proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job pid {self.proc.pid} passed its deadline") from None
        if self._reader is not None:
            self._reader.join(timeout=10)
        return rc

    def kill_tree(self) -> None:
        """SIGTERM to the job's process group, SIGKILL to whatever outlives the grace."""
        assert self.proc is not None
        pgid = self.proc.pid
        if not _group_alive(pgid):
            return
        logger.debug("stopping job process group %d (spark-submit and its children)", pgid)
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        while time.monotonic() < deadline and _group_alive(pgid):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.1)
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.proc is not None
        with ignore_stop_signals():  # Luigi follows a Ctrl-C with SIGTERM: the kill must finish
            self._finish()

    def _finish(self) -> None:
        assert self.proc is not None
        try:
            # After an error: the whole job. After a normal exit: any member that outlived
            # spark-submit (none expected; kill_tree returns at once for an empty group).
            self.kill_tree()
        finally:
            if self._reader is not None:
                self._reader.join(timeout=5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader counts as alive to killpg; check for live members.
    return _group_has_live_members(pgid)


def _group_has_live_members(pgid: int) -> bool:
    import psutil

    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return False
