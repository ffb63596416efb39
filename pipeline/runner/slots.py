"""How many spark-submit JVMs may run at once on this machine, across processes.

Luigi forks one process per running task (``--workers``), so an in-process semaphore
cannot bound them. A :class:`SlotPool` is N lock files in a folder of the controller run;
holding a slot is holding an ``flock`` on one of them. The kernel drops the lock when its
holder exits, however it exits, so a killed task never leaks a slot; the files work
across fork and across processes. The cap is per controller run: two controllers started
separately each get their own.

Two pools use it (see :func:`job_slot`):

* ``submit``: a YARN job holds a slot from the start of its spark-submit until YARN
  accepted the application (or spark-submit exited) — the part that costs the edge node
  a JVM of ~300 MB and several CPU-seconds. The size comes from the machine's free memory
  (:func:`submit_job_cap`) unless a setting gives it. Jobs in flight stay capped by
  ``--workers`` only.
* ``local``: a local-mode job holds a slot for its whole run, because its JVM *is* the
  job. The size comes from the machine (:func:`local_job_cap`) unless a setting gives it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.cluster.yarn_clients import yarn as yarn_settings
from pipeline.config import fanout
from pipeline.errors import ConfigError
from pipeline.internals import command_line_workers, on_luigi_command_line
from pipeline.params import auto_or_number
from pipeline.runner.submit import is_local_master, private_cache_dir

logger = logging.getLogger("luigi-interface")

#: Memory a local job needs beyond its driver heap: JVM metaspace, threads and off-heap
#: buffers plus the Python driver and worker processes (local mode runs them all here).
LOCAL_JOB_OVERHEAD_BYTES = 512 * 2**20
_MEMORY_UNITS = {"": 2**20, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}  # bare number: MiB, as Spark
#: Resident memory of one submitting spark-submit JVM: ~300 MB measured on a real Hadoop
#: 3.3.6 edge node (issue 13; bench/README.md, submit_scale.py: ~310 MB per JVM at peak).
SUBMIT_JVM_BYTES = 300 * 2**20


class Slot:
    """One held slot (or none, for an unbounded pool); :meth:`release` is idempotent and
    may be called from any thread (e.g. the one reading spark-submit's output)."""

    def __init__(self, fd: int | None, index: int | None, release_on_submit: bool) -> None:
        self._fd = fd
        self.index = index
        self.release_on_submit = release_on_submit
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def submitted(self) -> None:
        """YARN accepted the application: a submission slot is free for the next job."""
        if self.release_on_submit:
            self.release()


class SlotPool:
    """``size`` slots named ``<name>-<i>.lock`` in ``folder``; ``size`` 0 means unbounded."""

    def __init__(self, folder: Path | str, name: str, size: int, poll_s: float = 0.1, max_poll_s: float = 0.5) -> None:
        if size < 0:
            raise ValueError(f"a slot pool holds 0 (unbounded) or more slots, not {size}")
        self.folder = Path(folder)
        self.name = name
        self.size = size
        self.poll_s = poll_s
        self.max_poll_s = max(poll_s, max_poll_s)

    def _try(self, index: int) -> int | None:
        path = self.folder / f"{self.name}-{index}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        return fd

    def acquire(self, *, release_on_submit: bool = False, on_wait: Callable[[], None] | None = None) -> Slot:
        """A free slot, waiting (polling) as long as it takes; ``on_wait`` runs once when
        every slot is taken. Interrupts (signals that raise) end the wait. The pause between
        tries grows from ``poll_s`` to ``max_poll_s``: 17 jobs waiting 30 s for 3 submission
        slots cost ~36 ms of CPU each at a steady 0.1 s."""
        if self.size == 0:
            return Slot(None, None, release_on_submit)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        start = random.randrange(self.size)  # spread first tries, so waiters do not all knock on slot 0
        waited = False
        pause = self.poll_s
        while True:
            for k in range(self.size):
                index = (start + k) % self.size
                fd = self._try(index)
                if fd is not None:
                    return Slot(fd, index, release_on_submit)
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            time.sleep(pause * (0.5 + random.random()))
            pause = min(self.max_poll_s, pause * 1.5)

    def holders(self) -> int:
        """How many slots are held right now (by any process); for tests and diagnostics."""
        held = 0
        for index in range(self.size):
            fd = self._try(index)
            if fd is None:
                held += 1
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        return held


# --------------------------------------------------------------------------- local mode


def parse_memory(value: str) -> int:
    """Bytes in a Spark memory string (``1g``, ``512m``, ``2048`` = MiB)."""
    match = re.fullmatch(r"\s*(\d+)\s*([bkmgt]?)b?\s*", str(value).lower())
    if not match:
        raise ValueError(f"{value!r} is not a Spark memory size such as 512m or 2g")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]


def cores_per_local_job(master: str, cores: int) -> int:
    """Cores one ``local[...]`` job uses: ``local`` 1, ``local[n]`` n, ``local[*]`` all."""
    match = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if not match or match.group(1) is None:
        return 1
    return cores if match.group(1) == "*" else max(1, int(match.group(1)))


@dataclass(frozen=True)
class Cap:
    """How many jobs (local jobs, or submitting spark-submits) fit at once, and why (for the
    log and luigid); 0 jobs: no cap."""

    jobs: int
    reason: str


def local_job_cap(*, cores: int, available_bytes: int, driver_memory: str | None, master: str,
                  configured: int = 0) -> Cap:
    """At most as many local jobs as the cores hold (jobs beyond that only share them) and
    as free memory holds (driver heap + :data:`LOCAL_JOB_OVERHEAD_BYTES` each); at least
    one. ``configured`` > 0 overrides the machine's answer."""
    if configured > 0:
        return Cap(configured, f"[fanout] max_local_jobs = {configured}")
    per_job = parse_memory(driver_memory or "1g") + LOCAL_JOB_OVERHEAD_BYTES
    job_cores = cores_per_local_job(master, cores)
    by_cores = max(1, cores // job_cores)
    by_memory = max(1, available_bytes // per_job)
    reason = (f"{cores} cores / {job_cores} per job ({master}) -> {by_cores}; "
              f"{available_bytes / 2**30:.1f} GiB free / {per_job / 2**30:.1f} GiB per job "
              f"(driver {driver_memory or '1g'} + overhead) -> {by_memory}")
    return Cap(min(by_cores, by_memory), reason)


def parse_submit_cap(value: object) -> int | None:
    """``[yarn] max_concurrent_submits``: ``None`` for ``auto``, else a whole number >= 0
    (0 = no cap); anything else is refused in one line."""
    try:
        return auto_or_number(value, minimum=0)
    except ValueError:
        raise ConfigError(f"[yarn] max_concurrent_submits = {value!r} is neither auto nor a whole number >= 0: "
                          f"write auto, a number such as 4, or 0 for no cap") from None


def submit_job_cap(setting: object, *, available_bytes: int, workers: int | None) -> Cap:
    """How many spark-submit JVMs may submit at once: the number ``setting`` gives, or for
    ``auto`` as many as ``available_bytes`` hold at :data:`SUBMIT_JVM_BYTES` each, at most
    ``workers`` (more could never run at once) when known, at least one."""
    configured = parse_submit_cap(setting)
    if configured is not None:
        return Cap(configured, f"[yarn] max_concurrent_submits = {configured}")
    by_memory = max(1, available_bytes // SUBMIT_JVM_BYTES)
    reason = (f"{available_bytes / 2**30:.1f} GiB free / {SUBMIT_JVM_BYTES // 2**20} MiB per submitting JVM "
              f"-> {by_memory}")
    if workers is not None and workers >= 1:
        reason += f"; --workers {workers}"
        return Cap(min(by_memory, workers), reason)
    return Cap(by_memory, reason)


def machine_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


# --------------------------------------------------------------------------- for SparkJob


def slots_folder(run_id: str) -> Path:
    """The slot files of one controller run (shared by its forked worker processes, and by
    any process given the same run id); folders of runs older than a week are removed."""
    root = private_cache_dir() / "slots"
    folder = root / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id or "default")
    if not folder.is_dir():
        _prune_runs(root)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _prune_runs(root: Path, max_age_s: float = 7 * 86400) -> None:
    now = time.time()
    for old in root.glob("*") if root.is_dir() else []:
        with contextlib.suppress(OSError):
            if old.is_dir() and now - old.stat().st_mtime > max_age_s:
                shutil.rmtree(old)


def run_cap(folder: Path, kind: str, measure: Callable[[], Cap]) -> Cap:
    """The ``kind`` (``local`` or ``submit``) cap of this controller run, measured once by
    whichever of its processes gets here first (and logged then), read back by the others:
    measured again per job, free memory would shrink by the jobs already running and the
    cap with it."""
    path = folder / f"{kind}-cap"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        for _ in range(200):  # the first process writes it right after creating it
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:  # its measurement failed and it removed the file: measure here
                return run_cap(folder, kind, measure)
            if "\n" in text:
                jobs, reason = text.split("\n", 1)
                return Cap(int(jobs), reason.strip())
            time.sleep(0.01)
        raise RuntimeError(f"{path} stays incomplete: remove it and rerun") from None
    try:
        cap = measure()
    except BaseException:
        os.close(fd)
        path.unlink()  # a refused setting: the next process says so too, rather than waiting
        raise
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{cap.jobs}\n{cap.reason}\n")
    logger.info("%s", cap_line(kind, cap))
    return cap


def cap_line(kind: str, cap: Cap) -> str:
    """The one line that says a cap and why (logged once per run, shown while a job waits)."""
    if kind == "local":
        return (f"local mode: at most {cap.jobs} job{'' if cap.jobs == 1 else 's'} at once on this machine "
                f"({cap.reason}); [fanout] max_local_jobs overrides")
    if cap.jobs == 0:
        return f"no cap on spark-submit JVMs submitting at once ({cap.reason})"
    overrides = "" if cap.reason.startswith("[yarn]") else "; [yarn] max_concurrent_submits overrides"
    return (f"at most {cap.jobs} spark-submit JVM{'' if cap.jobs == 1 else 's'} submitting at once "
            f"({cap.reason}){overrides}")


@contextlib.contextmanager
def job_slot(job: Any, status: Callable[[str], None], run_id: str) -> Iterator[Slot]:
    """The slot ``job`` (a :class:`~pipeline.runner.job.SparkJob`) needs before it starts
    spark-submit: a submission slot on YARN (freed at submission), a local slot in local
    mode (held to the end); ``status`` shows the wait in luigid. Released on exit."""
    folder = slots_folder(run_id)
    if job.on_yarn:
        setting = yarn_settings().max_concurrent_submits
        cap = run_cap(folder, "submit", lambda: submit_job_cap(
            setting, available_bytes=available_memory(),
            workers=command_line_workers() if on_luigi_command_line() else None))
        line = cap_line("submit", cap)
        pool = SlotPool(folder, "submit", cap.jobs)
        slot = pool.acquire(release_on_submit=True, on_wait=lambda: status(f"waiting for a submission slot: {line}"))
    elif is_local_master(job.master):
        cap = run_cap(folder, "local", lambda: local_job_cap(
            cores=machine_cores(), available_bytes=available_memory(), driver_memory=job.driver_memory,
            master=job.master, configured=int(fanout().max_local_jobs)))
        line = cap_line("local", cap)
        pool = SlotPool(folder, "local", cap.jobs)
        slot = pool.acquire(on_wait=lambda: status(f"waiting for a local job slot: {line}"))
    else:  # another master (spark://, k8s://): nothing measured to bound it by
        slot = Slot(None, None, False)
    try:
        yield slot
    finally:
        slot.release()
