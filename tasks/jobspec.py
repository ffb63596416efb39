"""The contract between the controller and a job: the job spec and progress events.

The whole spec travels as ONE base64url-encoded JSON argument, so labels holding
spaces, quotes, ``$(…)`` or unicode survive every hop unchanged (spark-submit's shell
wrapper, YARN's container launch script) with nothing to escape. The job reports back
with single ``FANOUT_EVENT {json}`` lines on its standard output.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from typing import Any

SPEC_FLAG = "--spec"
EVENT_PREFIX = "FANOUT_EVENT "
FAIL_LABELS_ENV = "FANOUT_FAIL_LABELS"  # test-only: labels whose job raises after Spark starts
LABEL_DELAY_ENV = "FANOUT_LABEL_DELAY"  # test-only: seconds each label waits before training
COMMIT_DELAY_ENV = "FANOUT_COMMIT_DELAY"  # test-only: seconds a label's written artifact waits for its marker
SPEC_VERSION = 1


def encode_spec(spec: dict[str, Any]) -> str:
    payload = json.dumps({"version": SPEC_VERSION, **spec}, sort_keys=True, ensure_ascii=True)
    return base64.urlsafe_b64encode(payload.encode("ascii")).decode("ascii")


def decode_spec(text: str) -> dict[str, Any]:
    spec = json.loads(base64.urlsafe_b64decode(text.encode("ascii")).decode("ascii"))
    if spec.get("version") != SPEC_VERSION:
        raise ValueError(f"job spec version {spec.get('version')!r} is not {SPEC_VERSION}: controller and job differ")
    return spec


def format_event(event: str, **fields: Any) -> str:
    return EVENT_PREFIX + json.dumps({"event": event, **fields}, ensure_ascii=True, sort_keys=True)


_emit_lock = threading.Lock()


def emit_event(event: str, **fields: Any) -> None:
    """Print one event line (flushed at once: the controller reads it as it streams).
    Whole lines only, also when several training threads report at once."""
    line = format_event(event, **fields) + "\n"
    with _emit_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def parse_event(line: str) -> dict[str, Any] | None:
    """The event carried by an output line, or ``None`` for any other line."""
    start = line.find(EVENT_PREFIX)
    if start < 0:
        return None
    try:
        event = json.loads(line[start + len(EVENT_PREFIX) :])
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def fail_labels(env_value: str | None) -> set[str]:
    """Labels named by the test-only ``FANOUT_FAIL_LABELS`` (comma-separated)."""
    return {part.strip() for part in (env_value or "").split(",") if part.strip()}
