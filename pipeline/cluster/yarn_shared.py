"""One ResourceManager poll shared by every process of a run: the I/O around
:mod:`pipeline.cluster.yarn_poll` (read that module for the why and the request rates).

Luigi forks a process per running task, so the processes meet in a folder of the run:

* ``following/<tag>``: one file per job being followed, ``flock``-ed (shared) by its
  process while it follows; the kernel drops the lock however the process ends, so a
  poller tells a dead follower's leftover file from a live one and removes it.
* ``answer.json``: the last answer, replaced atomically (write, then rename).
* ``poll.lock``: whoever finds the answer due takes it (``flock``, non-blocking), checks
  again that nobody polled meanwhile, sends the one request for every live follower's tag
  and writes the answer; the others find the lock taken and look again shortly.

Every file is opened per use, in the process that uses it: nothing crosses a fork.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.cluster.yarn import (
    ApplicationReport,
    YarnError,
    YarnPermissionDenied,
    YarnUnavailable,
    next_poll_delay,
)
from pipeline.cluster.yarn_clients import check_app_id, poll, wait_before_next_poll
from pipeline.cluster.yarn_poll import (
    PollAnswer,
    Sighting,
    answer_from_json,
    answer_of,
    answer_to_json,
    failed_answer,
    is_due,
    sighting,
    tag_batches,
    wait_before_check,
)

_SAFE_NAME_RE = re.compile(r"[a-z0-9._-]{1,100}")
_ERRORS = {"unavailable": YarnUnavailable, "denied": YarnPermissionDenied, "error": YarnError}


class SharedPoll:
    """The shared poll of the processes that use ``folder`` (one per controller run).

    ``client`` is this process's :class:`~pipeline.cluster.yarn_clients.ResourceManagerRest`
    or :class:`~pipeline.cluster.yarn_clients.YarnCli` (made after the fork); it polls for
    everyone when this process finds the answer due. ``interval`` is the seconds between
    polls; ``recheck`` how often a waiting process looks again while a poll is under way.
    """

    def __init__(self, folder: Path | str, client: Any, interval: float = 2.0, *, recheck: float = 0.2,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if interval <= 0 or recheck <= 0:
            raise ValueError(f"poll interval {interval} and recheck {recheck} must be positive")
        self.folder = Path(folder)
        self.client = client
        self.interval, self.recheck = interval, recheck
        self.clock, self.sleep = clock, sleep
        self.polls = 0  # shared polls this process sent (for tests and diagnostics)
        self._cached: tuple[tuple[int, int, int], PollAnswer] | None = None

    # --- following ---------------------------------------------------------------------
    def follow(self, app_id: str, tag: str, on_report: Callable[[ApplicationReport], None], *,
               deadline: float | None = None, unavailable_grace: float = 120.0,
               max_poll_interval: float = 30.0) -> ApplicationReport:
        """Follow ``app_id`` (submitted with ``tag``) to its terminal report, as
        :func:`~pipeline.cluster.yarn_clients.follow` does (``on_report`` on each change,
        ``deadline``, an unreachable RM ridden out for ``unavailable_grace`` seconds), from
        the run's shared answers."""
        check_app_id(app_id)
        watch = _Watch(self, app_id, tag, on_report, unavailable_grace, max_poll_interval)
        with self.following(tag):
            while True:
                answer = self.current()
                report = watch.see(answer)
                if report is not None and report.is_terminal:
                    return report
                delay = wait_before_check(answer, self.clock(), self.interval, self.recheck)
                self.sleep(wait_before_next_poll(delay, deadline, self.clock(), app_id, watch.last))

    @contextlib.contextmanager
    def following(self, tag: str) -> Iterator[None]:
        """Put ``tag`` on the list the poller asks about while the block runs."""
        folder = self.folder / "following"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path, tmp = folder / _entry_name(tag), self.folder / f".following.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            # Locked and written before it is in the folder: a poller never finds it unlocked.
            fcntl.flock(fd, fcntl.LOCK_SH)
            os.write(fd, tag.lower().encode("utf-8"))
            os.replace(tmp, path)
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            os.close(fd)

    # --- the shared answer -------------------------------------------------------------
    def current(self) -> PollAnswer | None:
        """The run's latest answer, polled first by this process when due and nobody else
        is polling."""
        answer = self._read()
        if is_due(answer, self.clock(), self.interval) and self._poll_if_due():
            answer = self._read()
        return answer

    def _poll_if_due(self) -> bool:
        """Poll for every follower when the answer is still due once the lock is held;
        False when another process holds the lock (it is polling)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.folder / "poll.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                raise
            now = self.clock()
            if is_due(self._read(), now, self.interval):
                self._write(self._ask(now, self.live_tags()))
            return True
        finally:
            os.close(fd)  # drops the lock

    def _ask(self, now: float, tags: Sequence[str]) -> PollAnswer:
        """One list request per :data:`~pipeline.cluster.yarn_poll.TAGS_PER_REQUEST` tags;
        a failure becomes the answer (every follower judges it as its own request's)."""
        reports: list[ApplicationReport] = []
        self.polls += 1
        try:
            for batch in tag_batches(tags):
                reports.extend(self.client.applications_with_tags(batch))
        except YarnUnavailable as exc:
            return failed_answer(now, tags, "unavailable", str(exc))
        except YarnPermissionDenied as exc:
            return failed_answer(now, tags, "denied", str(exc))
        except YarnError as exc:
            return failed_answer(now, tags, "error", str(exc))
        return answer_of(now, tags, reports)

    def live_tags(self) -> list[str]:
        """Tags of the jobs followed now; entries whose process is gone are removed."""
        tags = []
        for path in sorted((self.folder / "following").glob("*")):
            tag = _live_entry(path)
            if tag:
                tags.append(tag)
        return tags

    def _read(self) -> PollAnswer | None:
        path = self.folder / "answer.json"
        try:
            st = path.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            answer = answer_from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except ValueError:  # not ours, or from another version: poll again
            return None
        self._cached = (key, answer)
        return answer

    def _write(self, answer: PollAnswer) -> None:
        tmp = self.folder / f".answer.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(answer_to_json(answer)), encoding="utf-8")
        os.replace(tmp, self.folder / "answer.json")


class _Watch:
    """One job's view of the shared answers: each new answer judged once, reports passed
    on when they change, an unreachable RM's grace counted, an application the answer
    does not list asked about on its own (with the old back-off)."""

    def __init__(self, poll: SharedPoll, app_id: str, tag: str, on_report: Callable[[ApplicationReport], None],
                 grace: float, max_poll_interval: float) -> None:
        self.poll, self.app_id, self.tag, self.on_report = poll, app_id, tag, on_report
        self.grace, self.max_poll_interval = grace, max_poll_interval
        self.last: ApplicationReport | None = None
        self._seen: PollAnswer | None = None
        self._down_since: float | None = None
        self._alone_delay: float | None = None
        self._alone_next = float("-inf")

    def see(self, answer: PollAnswer | None) -> ApplicationReport | None:
        """The job's report in ``answer`` if it is new (``None`` otherwise); raises what a
        request of its own would have raised."""
        if answer is None or answer is self._seen:
            return None
        self._seen = answer
        seen = sighting(answer, self.app_id, self.tag)
        if seen.kind == "report":
            self._down_since = None
            return self._take(seen.report)
        if seen.kind == "missing":
            return self._alone()
        if seen.kind != "not-asked":
            self._problem(seen)
        return None

    def _take(self, report: ApplicationReport | None) -> ApplicationReport | None:
        if report is not None and report != self.last:
            self.last = report
            self.on_report(report)
        return report

    def _alone(self) -> ApplicationReport | None:
        """Ask the RM about this application alone: at once the first time, then no more
        often than the per-job back-off allowed before."""
        now = self.poll.clock()
        if now < self._alone_next:
            return None
        report, self._down_since = poll(self.poll.client, self.app_id, self._down_since, self.poll.clock, self.grace)
        changed = report is not None and report != self.last
        self._alone_delay = next_poll_delay(self._alone_delay, changed=changed, initial=self.poll.interval,
                                            maximum=max(self.max_poll_interval, self.poll.interval))
        self._alone_next = now + self._alone_delay
        return self._take(report)

    def _problem(self, seen: Sighting) -> None:
        """A failed shared poll, judged as this job's own request: an unreachable RM is
        waited for during the grace, anything else raised at once."""
        if seen.kind == "unavailable":
            now = self.poll.clock()
            self._down_since = now if self._down_since is None else self._down_since
            if now - self._down_since < self.grace:
                return
        raise _ERRORS.get(seen.kind, YarnError)(seen.message or "the shared ResourceManager poll failed")


def _entry_name(tag: str) -> str:
    """A file name for ``tag`` (ours are already safe; others are hashed)."""
    tag = tag.lower()
    return tag if _SAFE_NAME_RE.fullmatch(tag) else "h-" + hashlib.sha256(tag.encode("utf-8")).hexdigest()[:32]


def _live_entry(path: Path) -> str | None:
    """The tag in a ``following/`` entry whose process still holds it; a leftover of a
    process that is gone is removed (``None``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip() or None
            raise
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # nobody holds it: its follower is gone
        return None
    finally:
        os.close(fd)
