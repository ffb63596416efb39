"""One ResourceManager poll shared by all of a run's YARN jobs in flight: the pure part.

Why: followed one by one (2 s, backing off ×1.5 to 30 s), a job that ends is noticed up to
30 s late and its Luigi worker slot idles that long, while 20 jobs just started send 10
requests a second. Instead the run asks once per interval for all of its applications in
flight, ``GET /ws/v1/cluster/apps?applicationTags=<tag>,<tag>,…`` (the RM lists the
applications carrying any of the given tags; each job's tag is its own, see
:func:`pipeline.cluster.yarn.yarn_tag`), and every job reads its own report from that one
answer. Luigi runs each task in a process of its own, so the answer is shared through a
file (:mod:`pipeline.cluster.yarn_shared` does the I/O); this module decides who polls and
when, and what one answer means for one job.

Request rate, ``T`` = ``[yarn] poll_interval`` (2 s), ``N`` jobs in flight, ``B`` =
:data:`TAGS_PER_REQUEST`:

* before: ``N/2`` requests a second after a start or a state change, ``N/30`` once every
  job has backed off; a finish noticed up to 30 s late.
* shared: ``ceil(N/B)/T`` a second whatever the jobs do (0.5 for N ≤ 40); a finish noticed
  within ``T`` plus one request. That is below the old worst case for any N, and at or
  below the old best case (every job backed off to 30 s) from N = 15 jobs in flight on
  (0.5 ≤ 15/30). Below that it is more than a fully backed-off run sent, never more than
  0.5 a second: the rate of one spark-submit that waits for its application (Spark's
  ``spark.yarn.report.interval`` is 1 s).

An application the answer does not show although its tag was asked about (the RM forgot
it, or filters differently) is asked about on its own, with the old back-off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from pipeline.cluster.yarn import ApplicationReport

#: Tags named in one list request: 40 tags of 39 characters keep the URL near 1.6 kB, far
#: below the RM's request header limit; a run with more jobs in flight sends more requests.
TAGS_PER_REQUEST = 40

#: The fields of a report, as the shared file carries them.
_REPORT_FIELDS = tuple(f.name for f in fields(ApplicationReport))

#: What a shared answer may carry instead of reports, by the typed error it stands for.
PROBLEM_KINDS = ("unavailable", "denied", "error")


@dataclass(frozen=True)
class PollAnswer:
    """One shared poll: when it started (``time.monotonic()``, the same clock in every
    process of the machine), which tags it asked about, the reports by application id,
    or the problem that stopped it (``problem_kind`` one of :data:`PROBLEM_KINDS`)."""

    polled_at: float
    tags: frozenset[str] = frozenset()
    reports: Mapping[str, ApplicationReport] = field(default_factory=dict)
    problem: str | None = None
    problem_kind: str | None = None


@dataclass(frozen=True)
class Sighting:
    """What one answer says about one job's application.

    ``kind``: ``"report"`` (``report`` set), ``"not-asked"`` (its tag was not in the poll:
    the job started following after it; wait for the next), ``"missing"`` (asked, not
    listed: ask for it on its own), or a problem kind with its ``message``.
    """

    kind: str
    report: ApplicationReport | None = None
    message: str | None = None


def sighting(answer: PollAnswer, app_id: str, tag: str) -> Sighting:
    """What ``answer`` says about ``app_id`` (submitted with ``tag``). Reports are found by
    application id: a task's tag may also carry applications of earlier runs."""
    if answer.problem is not None:
        return Sighting(answer.problem_kind or "error", message=answer.problem)
    if tag.lower() not in answer.tags:
        return Sighting("not-asked")
    report = answer.reports.get(app_id)
    return Sighting("report", report) if report is not None else Sighting("missing")


def is_due(answer: PollAnswer | None, now: float, interval: float) -> bool:
    """True when a new poll is due: no answer yet, or one started ``interval`` ago or more
    (or one from another clock, in the future)."""
    if answer is None:
        return True
    age = now - answer.polled_at
    return age >= interval or age < 0


def wait_before_check(answer: PollAnswer | None, now: float, interval: float, recheck: float) -> float:
    """Seconds to sleep before looking at the shared answer again: until the next poll is
    due, or ``recheck`` while one is due (someone is polling, or about to)."""
    if is_due(answer, now, interval):
        return recheck
    assert answer is not None  # is_due says so
    return max(recheck, answer.polled_at + interval - now)


def tag_batches(tags: Iterable[str], size: int = TAGS_PER_REQUEST) -> list[list[str]]:
    """The tags to ask about, lowercase, sorted and deduplicated, ``size`` per request."""
    if size < 1:
        raise ValueError(f"a list request names at least one tag, not {size}")
    unique = sorted({t.strip().lower() for t in tags if t.strip()})
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def requests_per_second(jobs: int, interval: float, size: int = TAGS_PER_REQUEST) -> float:
    """The shared poll's RM request rate with ``jobs`` in flight (see the module text)."""
    return math.ceil(jobs / size) / interval if jobs > 0 else 0.0


def answer_of(polled_at: float, tags: Sequence[str], reports: Iterable[ApplicationReport]) -> PollAnswer:
    """The shared answer made of the RM's reports for a poll of ``tags``."""
    return PollAnswer(polled_at, frozenset(t.lower() for t in tags), {r.application_id: r for r in reports})


def failed_answer(polled_at: float, tags: Sequence[str], kind: str, message: str) -> PollAnswer:
    """The shared answer of a poll that failed (``kind`` one of :data:`PROBLEM_KINDS`)."""
    if kind not in PROBLEM_KINDS:
        raise ValueError(f"problem kind {kind!r} is not one of {PROBLEM_KINDS}")
    return PollAnswer(polled_at, frozenset(t.lower() for t in tags), problem=message, problem_kind=kind)


# --------------------------------------------------------------------------- the shared file


def answer_to_json(answer: PollAnswer) -> dict[str, Any]:
    """The answer as JSON-ready data (the shared file's content)."""
    return {
        "polled_at": answer.polled_at,
        "tags": sorted(answer.tags),
        # Fields read one by one: dataclasses.asdict deep-copies each value, the poller's main
        # cost per poll (a report holds only strings, numbers and the tags tuple).
        "reports": [{f: getattr(r, f) for f in _REPORT_FIELDS} | {"tags": list(r.tags)} for r in answer.reports.values()],
        "problem": answer.problem,
        "problem_kind": answer.problem_kind,
    }


def answer_from_json(doc: Mapping[str, Any]) -> PollAnswer:
    """The answer :func:`answer_to_json` wrote; ``ValueError`` for anything else."""
    try:
        reports = [ApplicationReport(**(dict(r) | {"tags": tuple(r["tags"])})) for r in doc["reports"]]
        return PollAnswer(
            polled_at=float(doc["polled_at"]),
            tags=frozenset(str(t) for t in doc["tags"]),
            reports={r.application_id: r for r in reports},
            problem=doc.get("problem"),
            problem_kind=doc.get("problem_kind"),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a shared poll answer ({exc})") from None
