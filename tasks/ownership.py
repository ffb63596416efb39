"""Ownership records: how spark-fanout knows a path is its own, for what, and whether the
process writing it is still there. Shared by the controller and the jobs (pure data and
process checks; no storage access here).

Two records:

* an **owner record** (:data:`OWNER_FILE`, inside a temporary folder the tool created, or
  :func:`claim_name` beside a temporary that Spark creates) names the live writer: its
  host, process id and start time, and a heartbeat the writer refreshes. Another run may
  remove that temporary only when :func:`owner_gone` says so: on the same host, the
  process is gone; elsewhere, the heartbeat is older than the lease.
* a **made-by record** (:data:`MADE_FILE` in a finished output, the ``_COMPLETE`` marker
  of a model artifact) says the tool made the output and from which inputs
  (``identity``): a rerun whose inputs differ recomputes and replaces it; a path without
  one is not ours to replace or remove.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

TOOL = "spark-fanout"
OWNER_FILE = "_fanout_owner.json"
MADE_FILE = "_fanout.json"
CLAIM_SUFFIX = ".claim.json"
DEFAULT_LEASE_SECONDS = 600.0


def this_host() -> str:
    return socket.gethostname()


def process_started(pid: int) -> float | None:
    """Start time of a process (seconds since the epoch), or ``None`` when unknown; with
    the pid it tells a live owner from a new process that reused its pid."""
    try:
        import psutil
    except ImportError:  # a cluster node's Python may lack it: the pid alone must do
        return None
    try:
        return round(psutil.Process(pid).create_time(), 2)
    except (psutil.Error, OSError):
        return None


def process_alive(pid: int, started: float | None) -> bool:
    """Whether process ``pid`` of this host is running and is the one that started at
    ``started`` (when both are known). A zombie (exited, not yet reaped: where nothing
    reaps orphans, a killed job's driver stays one) is gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    try:
        import psutil
    except ImportError:
        return True
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        now_started = round(process.create_time(), 2)
    except (psutil.Error, OSError):
        return False
    return started is None or abs(now_started - started) < 1.0


def owner_record(lease_seconds: float, **details: Any) -> dict[str, Any]:
    """The record a writer puts beside (or into) its temporary, with a fresh heartbeat."""
    pid = os.getpid()
    return {"tool": TOOL, "host": this_host(), "pid": pid, "pid_started": process_started(pid),
            "heartbeat": round(time.time(), 3), "lease_seconds": float(lease_seconds), **details}


def owner_gone(record: Mapping[str, Any] | None, *, now: float, lease_seconds: float, here: str,
               alive: Callable[[int, float | None], bool], fallback_time: float | None) -> bool:
    """Whether the writer of a temporary is gone, so the temporary may be removed.

    ``record`` is its owner record (``None`` when there is none or it is unreadable: a
    writer killed between creating the folder and writing the record, or one of an older
    version); then ``fallback_time`` (the folder's modification time) stands in for the
    heartbeat. Same host: the process decides; another host: the lease (the record's
    own, else ``lease_seconds``)."""
    if record is None or record.get("tool") != TOOL:
        return fallback_time is not None and now - fallback_time > lease_seconds
    if record.get("host") == here and isinstance(record.get("pid"), int):
        return not alive(record["pid"], record.get("pid_started"))
    lease = float(record.get("lease_seconds") or lease_seconds)
    return now - float(record.get("heartbeat") or 0) > lease


def describe_owner(record: Mapping[str, Any] | None) -> str:
    """``pid 4242 on edge-1`` for messages."""
    if not record:
        return "an unknown process"
    return f"pid {record.get('pid')} on {record.get('host')}"


def made_record(kind: str, identity: str, **details: Any) -> dict[str, Any]:
    """What goes into a finished output: the tool, what made it, and from which inputs."""
    return {"tool": TOOL, "kind": kind, "identity": identity, **details}


def parse_record(data: bytes | None) -> dict[str, Any] | None:
    """A record read back; ``None`` when absent or not one of ours."""
    if not data:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("tool") == TOOL else None


def encode_record(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8")


def claim_name(temp_name: str) -> str:
    """The owner record beside a temporary that Spark (not the tool) creates."""
    return temp_name + CLAIM_SUFFIX


class Heartbeat:
    """Calls ``beat()`` every ``interval`` seconds on a daemon thread until stopped, so a
    long job's owner record stays fresh. A failed beat is retried at the next interval
    (``on_error`` hears of it): the lease is long enough to miss a few."""

    def __init__(self, beat: Callable[[], None], interval: float,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self._beat, self._interval, self._on_error = beat, max(0.05, interval), on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fanout-heartbeat", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except Exception as exc:  # noqa: BLE001 - a missed beat must not kill the thread
                if self._on_error is not None:
                    self._on_error(exc)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)
