"""Per-job results of a run, kept as small JSON files in the log folder, and the
summary table printed at the end of a run.

Task outcomes are decided in Luigi's task processes; files are the one channel every
process (and a later rerun) can read. The job runner writes these records; the console,
the exit summary, MLflow tracking, the notebook API and the HTML report read them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from pipeline.data.labels import label_slug

_RUN_ID = f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"


def current_run_id() -> str:
    """Identifies this controller process's run in result files and summaries (Luigi's
    forked task processes inherit it)."""
    return _RUN_ID


RESULT_FILE = "result.json"
#: Every status but these is a success (each kind names its own: "trained", "scored", ...).
FAILED_STATUSES = ("failed", "interrupted")
#: A job's output was completed by another run (another controller's job won the race).
REUSED = "reused"


@dataclass
class JobResult:
    """The latest outcome of one job (one label, one script job, ...)."""

    name: str  # the unit of work: a label, a job name
    status: str  # the kind's success status ("trained", "succeeded") | "failed" | "interrupted"
    run_id: str
    seconds: float | None = None
    artifact: str | None = None
    error: str | None = None
    log: str | None = None
    application_id: str | None = None
    killed_application_id: str | None = None  # the application this task stopped, if any
    rm_requests: int | None = None  # ResourceManager calls made (YARN only)
    controller_cpu_seconds: float | None = None  # CPU used by the controller for this task
    finished_at: float | None = None
    batch: str | None = None  # the batch job (its first member's name) this one ran in
    startup_seconds: float | None = None  # the job's spark-submit start until its data was ready
    work_seconds: float | None = None  # this unit's own time inside the job (a label: sample, train, write)


def result_dir(log_dir: str, name: str, group: str = "") -> Path:
    """Folder of one job's logs and result: ``<log_dir>[/<group>]/<slug of name>``. The
    group keeps apart jobs of one name in different kinds or configurations."""
    base = Path(log_dir) / group if group else Path(log_dir)
    return base / label_slug(name)


def record(log_dir: str, result: JobResult, group: str = "") -> None:
    """Write ``result`` atomically as the job's latest result."""
    folder = result_dir(log_dir, result.name, group)
    folder.mkdir(parents=True, exist_ok=True)
    result.finished_at = result.finished_at or time.time()
    tmp = folder / f".{RESULT_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(asdict(result), ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, folder / RESULT_FILE)


def latest(log_dir: str, name: str, group: str = "") -> JobResult | None:
    """The job's latest result, ``None`` if it never ran (or its record is unreadable)."""
    path = result_dir(log_dir, name, group) / RESULT_FILE
    try:
        return JobResult(**json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def of_run(log_dir: str, name: str, run_id: str, group: str = "") -> JobResult | None:
    """The job's latest result if run ``run_id`` wrote it, else ``None``."""
    res = latest(log_dir, name, group)
    return res if res is not None and res.run_id == run_id else None


#: A job Luigi never started in this run: its row says why (see :func:`mark_not_started`).
NOT_RUN = "not run"
NOT_STARTED = "not started: the run ended first; rerun to continue"
#: Rows at most in the printed summary; a longer one prints the rows that need attention.
SHORT_SUMMARY_ROWS = 40


def summarize(labels: list[str], run_id: str, log_dir: str, complete: set[str], group: str = "",
              success: str = "trained", kept: str = "artifact") -> list[dict[str, object]]:
    """One row per job (``labels`` name them): what happened to it in run ``run_id``.

    ``complete`` holds the names whose output is complete now. A complete one with no
    result from this run was done by an earlier run (``kept`` names its output); one that
    failed in this run stays failed, whoever completed it since.
    """
    rows = []
    for label in labels:
        res = latest(log_dir, label, group)
        this_run = res is not None and res.run_id == run_id
        if this_run and res.status == success:
            row = {"label": label, "status": success, "seconds": res.seconds, "detail": res.artifact}
        elif this_run and res.status == REUSED:
            row = {"label": label, "status": f"{success} by another run", "seconds": res.seconds, "detail": res.artifact}
        elif this_run and res.status in FAILED_STATUSES:
            row = {"label": label, "status": res.status, "seconds": res.seconds, "detail": res.error}
        elif label in complete:
            row = {"label": label, "status": "done earlier", "seconds": None, "detail": f"{kept} complete, not rerun"}
        elif this_run:
            row = {"label": label, "status": res.status, "seconds": res.seconds, "detail": res.error}
        else:
            row = {"label": label, "status": NOT_RUN, "seconds": None, "detail": NOT_STARTED}
        rows.append(row)
    return rows


def mark_not_started(rows: list[dict[str, object]], why: str) -> list[dict[str, object]]:
    """The rows, those of jobs that never started saying ``why`` (the run was stopped, the
    scheduler was lost)."""
    return [{**r, "detail": f"not started: {why}; rerun to continue"} if r["status"] == NOT_RUN else r for r in rows]


def needs_attention(row: dict[str, object]) -> bool:
    """A row someone must look at: its job failed or was stopped."""
    return str(row["status"]) in FAILED_STATUSES


def outcome(rows: list[dict[str, object]], unit: str = "label") -> str:
    """What a run did, in one clause: ``2 labels trained, 1 stopped (label_02), 1 not started``."""
    words = {"interrupted": "stopped", NOT_RUN: "not started"}
    groups: dict[str, list[str]] = {}
    for r in rows:
        status = str(r["status"])
        status = words.get(status, status.split(" ")[0] if status.startswith("ranked ") else status)
        groups.setdefault(status, []).append(str(r["label"]))
    parts = []
    for i, (status, names) in enumerate(sorted(groups.items(), key=lambda kv: _outcome_order(kv[0]))):
        noun = f" {unit}{'s' if len(names) != 1 else ''}" if i == 0 else ""
        listed = ""
        if status in ("stopped", "failed"):
            listed = f" ({', '.join(names[:3])}{', …' if len(names) > 3 else ''})"
        parts.append(f"{len(names)}{noun} {status}{listed}")
    return ", ".join(parts) if parts else f"no {unit}s"


def _outcome_order(status: str) -> tuple[int, str]:
    rank = {"done earlier": 1, "failed": 2, "stopped": 3, "not started": 4}
    return rank.get(status, 0), status


def format_table(rows: list[dict[str, object]], width: int = 100, unit: str = "label",
                 detail: str = "artifact / error") -> str:
    """A plain-text table (``unit``, status, duration, ``detail``) and a line of counts."""
    def cell(value: object, limit: int) -> str:
        text = "" if value is None else (f"{value:.1f}s" if isinstance(value, float) else str(value))
        text = text.replace("\n", " ")
        return text if len(text) <= limit else text[: limit - 1] + "…"

    if not rows:
        return f"no {unit} to show"
    lw = min(32, max([len(unit)] + [len(str(r["label"])) for r in rows]))
    sw = min(26, max([6] + [len(str(r["status"])) for r in rows]))
    lines = [f"{unit:<{lw}}  {'status':<{sw}} {'time':>7}  {detail}"]
    lines.append("-" * min(width, lw + sw + 12 + 40))
    for r in rows:
        lines.append(f"{cell(r['label'], lw):<{lw}}  {cell(r['status'], sw):<{sw}} {cell(r['seconds'], 7):>7}  "
                     f"{cell(r['detail'], width)}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    lines.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return "\n".join(lines)


def short_summary(rows: list[dict[str, object]], full_table: str, unit: str = "label",
                  detail: str = "artifact / error", limit: int = SHORT_SUMMARY_ROWS) -> str:
    """The summary of a long run: the rows that need attention (at most ``limit``), the
    counts, and where the full table is (``full_table``)."""
    attention = [r for r in rows if needs_attention(r)]
    shown = attention[:limit]
    lines = []
    if shown:
        lines.append(format_table(shown, unit=unit, detail=detail).rsplit("\n", 1)[0])
        if len(attention) > len(shown):
            lines.append(f"… and {len(attention) - len(shown)} more failed or stopped")
    else:
        lines.append(f"no {unit} failed or was stopped")
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    lines.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    lines.append(f"every {unit} ({len(rows)} rows): {full_table}")
    return "\n".join(lines)
