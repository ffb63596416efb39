"""Run one spark-submit so that stopping it stops everything it started.

spark-submit starts a JVM, which starts the Python driver, which starts Python workers.
Each job runs in a process group of its own; leaving :class:`JobProcess` by an exception
(Ctrl-C, SIGTERM, timeout, error) terminates that whole group, then kills what is left.
A Linux parent-death signal covers the case where the task process itself is killed.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import io
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import psutil

from pipeline.errors import TaskInterrupted
from tasks import parent_death

logger = logging.getLogger("luigi-interface")

# Bytes still read from a job's pipe once reading is told to stop (a chatty leaked daemon
# would otherwise keep the reader going).
_READ_AFTER_STOP = 1 << 20

def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal this process when its parent dies (used in Luigi's forked task processes,
    so a controller killed outright takes its jobs with it); at once if the parent
    ``parent_pid`` is already gone."""
    parent_death.die_with_parent(sig, expected_parent=parent_pid)


def _child_setup() -> None:
    # Runs between fork and exec: only a C call to a function resolved before the fork.
    parent_death.set_parent_death_signal(signal.SIGKILL)


def stop_signals_raise() -> contextlib.AbstractContextManager[None]:
    """Within the block, the first stop signal raises in the main thread: Ctrl-C (SIGINT)
    KeyboardInterrupt, SIGTERM and SIGHUP :class:`TaskInterrupted`, so cleanup code runs.
    Later ones are ignored: the stop is under way, and Luigi follows a Ctrl-C with SIGTERM,
    which must neither cut the cleanup short nor hide why the job stopped."""
    raised: list[int] = []

    def _raise(signum: int, _frame: object) -> None:
        if raised:
            return
        raised.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise TaskInterrupted(f"received {signal.Signals(signum).name}", signum)

    return _signals_handled((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), _raise)


def ignore_stop_signals() -> contextlib.AbstractContextManager[None]:
    """Within the block, SIGINT and SIGTERM are ignored (in the main thread): for
    cleanup that must finish, such as killing a YARN application."""
    return _signals_handled((signal.SIGINT, signal.SIGTERM), signal.SIG_IGN)


@contextlib.contextmanager
def _signals_handled(signals: Sequence[int], handler: Any) -> Iterator[None]:
    # Only the main thread may set handlers; elsewhere the block runs as it is.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


class JobProcess:
    """``with JobProcess(argv, env, log) as job: rc = job.wait()``.

    Output (stdout and stderr merged) is streamed by a thread into ``log`` and to
    ``on_line``; the last lines are kept for error messages. Reading ends at the end of
    the output or, at the latest, ``drain_s`` seconds after the job's own process has
    exited: a descendant that left the job's process group (``setsid``) may hold the
    pipe open for good, and must not hold the task with it.
    """

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: IO[str],
                 on_line: Callable[[str], None] | None = None, grace_s: float = 5.0, tail_lines: int = 40,
                 drain_s: float = 2.0) -> None:
        self.argv = list(argv)
        self.env = env
        self.log = log
        self.on_line = on_line
        self.grace_s = grace_s
        self.drain_s = drain_s
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._stop_reading = threading.Event()
        self._exited_at: float | None = None
        self._ended = False  # the reader saw the end of the output

    def __enter__(self) -> JobProcess:
        self.proc = subprocess.Popen(  # an argument list, never a shell
            self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, bufsize=0,
            start_new_session=True, preexec_fn=_child_setup if parent_death.prctl is not None else None,
        )
        # The reader sleeps in poll() until output comes; this pipe wakes it when told to stop.
        self._wake_r, self._wake_w = os.pipe()
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
            self._drain(self.proc.stdout.fileno())
        except (ValueError, OSError):  # the pipe or the log was closed under us: the job is being given up
            return

    def _drain(self, fd: int) -> None:
        # Raw reads behind poll() rather than iterating a text file: a blocked read of a
        # file object cannot be stopped, and its close() waits for that read.
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        # What text mode did: UTF-8 with replacement, and \r or \r\n ending a line too.
        decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder("utf-8")(errors="replace"), translate=True)
        pending = ""
        left_after_stop = _READ_AFTER_STOP
        while True:
            stopping = self._stop_reading.is_set()
            # Until output comes or the wake pipe says stop (no timed wake-ups: a job that
            # is quiet for minutes costs nothing). Once told to stop: only what is already
            # in the pipe (up to a bound), without waiting.
            if not any(ready == fd for ready, _ in poller.poll(0 if stopping else None)):
                if stopping:
                    break
                continue
            if stopping and left_after_stop <= 0:
                break
            chunk = os.read(fd, 65536)
            left_after_stop -= len(chunk) if stopping else 0
            self._ended = not chunk
            pending += decoder.decode(chunk, final=not chunk)
            *lines, pending = pending.split("\n")
            for line in lines:
                self._handle(line + "\n")
            if not chunk:
                break
        if pending:
            self._handle(pending)
        self.log.flush()

    def _handle(self, line: str) -> None:
        self.log.write(line)
        self.tail.append(line.rstrip("\n"))
        if self.on_line is not None:
            try:
                self.on_line(line)
            except Exception:  # a reporting hiccup must not stop output draining
                logger.exception("could not handle job output line")

    def wait(self, deadline: float | None = None) -> int:
        """Wait for the job; a signal handler that raises ends the wait. On a
        ``time.monotonic()`` deadline, raises TimeoutError (the exit kills the job)."""
        assert self.proc is not None
        pidfd = _pidfd(self.proc.pid)
        exited = select.poll()  # poll(), not select(): a notebook's descriptors may number over 1024
        if pidfd is not None:
            exited.register(pidfd, select.POLLIN)
        try:
            while True:
                if pidfd is not None:
                    # Asleep until the job exits (or the deadline): no wake-ups meanwhile.
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    exited.poll(None if left is None else left * 1000)
                    rc = self.proc.poll()
                    if rc is not None:
                        break
                else:  # Popen.wait(timeout) polls every few ms up to 50 ms: fallback only
                    try:
                        rc = self.proc.wait(timeout=0.5)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job pid {self.proc.pid} passed its deadline") from None
        finally:
            if pidfd is not None:
                os.close(pidfd)
        self._exited_at = time.monotonic()
        if self._reader is not None:
            self._reader.join(timeout=self.drain_s)
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
            self._stop_reader()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            if self._reader is not None and not self._reader.is_alive():
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _stop_reader(self) -> None:
        """Let the reader drain for what is left of ``drain_s`` after the job's exit,
        then stop it and say in the log who kept the pipe open."""
        if self._reader is None:
            return
        if self._exited_at is None:
            self._exited_at = time.monotonic()
        self._reader.join(timeout=max(0.0, self._exited_at + self.drain_s - time.monotonic()))
        if not self._reader.is_alive():
            return
        holders = _pipe_holders(self.proc.stdout.fileno()) if self.proc and self.proc.stdout else []
        self._stop_reading.set()
        os.write(self._wake_w, b"x")
        self._reader.join()
        if self._ended:  # only slow to hand lines on: nobody kept the pipe open
            return
        named = ", ".join(f"pid {pid} ({name})" for pid, name in holders) or "a process outside its group"
        note = (f"spark-fanout: the job exited, but {named} still holds its output pipe (a descendant that left "
                f"the job's process group, e.g. with setsid); stopped reading {self.drain_s:g} s after the exit, "
                f"and that process was left running")
        self.log.write(f"{note}\n")
        self.log.flush()
        logger.warning("job pid %d: %s", self.proc.pid if self.proc else -1, note)


def _pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when process ``pid`` exits (Linux 5.3+),
    or ``None`` where there is none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _pipe_holders(fd: int) -> list[tuple[int, str]]:
    """Other processes holding the pipe behind ``fd`` (Linux, this user's processes)."""
    try:
        target = f"pipe:[{os.fstat(fd).st_ino}]"
    except OSError:
        return []
    holders = []
    for proc in psutil.process_iter(["pid", "name"]):
        if proc.pid == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{proc.pid}/fd")
            if any(_readlink(f"/proc/{proc.pid}/fd/{n}") == target for n in fds):
                holders.append((proc.pid, proc.info["name"] or "?"))
        except OSError:
            continue
    return holders


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


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
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return False
