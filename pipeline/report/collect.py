"""Everything a report shows, read from the artifact root and the log folder: no plots,
no HTML. Artifacts go through the storage layer (local or HDFS); job results are the
controller's local ``result.json`` files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.data.artifacts import CONFIG_FILE, ArtifactTarget, completed_slugs, configurations, read_json
from pipeline.data.labels import natural_key
from pipeline.data.leaderboard import LEADERBOARD
from pipeline.data.results import FAILED_STATUSES, RESULT_FILE, JobResult
from pipeline.storage.locations import Location, parse_location
from tasks.evaluation import CURVES_FILE

SWEEP = "feature_sweep"  # FeatureSweep's report name under --models
#: Fewer positive validation rows than this and a label's metrics are mostly noise.
FEW_POSITIVES = 10
#: Worst labels per configuration the report lists (by AUC).
WORST_N = 10


@dataclass
class Artifact:
    label: str
    path: str
    metadata: dict[str, Any]
    curves: dict[str, Any]


@dataclass
class Configuration:
    name: str
    config: dict[str, Any]
    artifacts: list[Artifact] = field(default_factory=list)


@dataclass
class RunData:
    """What ran under one artifact root and log folder."""

    models: str
    log_dir: str
    configurations: list[Configuration]
    leaderboard: dict[str, Any] | None
    sweep: dict[str, Any] | None
    results: list[tuple[str, JobResult]]  # (result file, result) of every job's latest attempt

    @property
    def labels(self) -> list[str]:
        seen = {a.label: None for c in self.configurations for a in c.artifacts}
        return list(seen)

    def failed(self) -> list[tuple[str, JobResult]]:
        """Jobs whose latest attempt failed or was stopped, in natural order of their names."""
        failed = [(path, r) for path, r in self.results if r.status in FAILED_STATUSES]
        return sorted(failed, key=lambda item: natural_key(item[1].name))


def read_configuration(root: Location, name: str) -> Configuration:
    config_root = root.join(name)
    out = Configuration(name, read_json(config_root, CONFIG_FILE) or {})
    for slug in sorted(completed_slugs(config_root)):  # one listing: a final name is a complete artifact
        target = ArtifactTarget(config_root.join(slug))
        meta = target.metadata()
        out.artifacts.append(Artifact(str(meta.get("label", slug)), target.path, meta,
                                      read_json(target.location, CURVES_FILE) or {}))
    out.artifacts.sort(key=lambda a: natural_key(a.label))  # label_2 before label_10
    return out


def metric(artifact: Artifact, name: str) -> float | None:
    """One of the artifact's validation metrics, ``None`` when missing or not a number."""
    value = (artifact.metadata.get("metrics") or {}).get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value else None


def degenerate_reason(artifact: Artifact) -> str | None:
    """Why a trained label's metrics cannot be trusted, ``None`` if they can."""
    positives = (artifact.metadata.get("metrics") or {}).get("positives_validation")
    if metric(artifact, "auc_roc") is None:
        return "no AUC: the validation rows hold one class"
    if isinstance(positives, int) and positives < FEW_POSITIVES:
        return f"{positives} positive validation rows (under {FEW_POSITIVES}): its metrics are mostly noise"
    return None


def needs_attention(data: RunData, worst: int = WORST_N) -> list[dict[str, Any]]:
    """The labels to look at first: failed or stopped jobs, trained labels whose metrics
    are degenerate, and each configuration's worst by AUC (``worst``, at most a quarter
    of its labels); one row each
    (``label``, ``configuration``, ``why``, ``auc_roc``, ``positives``)."""
    rows: list[dict[str, Any]] = []
    for _, r in data.failed():
        rows.append({"label": r.name, "configuration": "", "why": f"{r.status}: {r.error or ''}".rstrip(": "),
                     "auc_roc": None, "positives": None})
    for conf in data.configurations:
        listed = set()
        for a in conf.artifacts:
            reason = degenerate_reason(a)
            if reason:
                listed.add(a.label)
                rows.append(_attention_row(a, conf.name, reason))
        ranked = sorted((a for a in conf.artifacts if a.label not in listed and metric(a, "auc_roc") is not None),
                        key=lambda a: metric(a, "auc_roc"))
        # the worst only stand out among many: none of 3 labels, 5 of 20, 10 of 40 or more
        for rank, a in enumerate(ranked[:min(worst, len(conf.artifacts) // 4)], 1):
                rows.append(_attention_row(a, conf.name, f"worst AUC #{rank} of {len(conf.artifacts)}"))
    return rows


def _attention_row(a: Artifact, configuration: str, why: str) -> dict[str, Any]:
    return {"label": a.label, "configuration": configuration, "why": why, "auc_roc": metric(a, "auc_roc"),
            "positives": (a.metadata.get("metrics") or {}).get("positives_validation")}


def curve_picks(artifacts: list[Artifact], most: int) -> list[Artifact]:
    """At most ``most`` labels whose curves stand for all: every label when they are few,
    else the best, the worst and evenly spaced ranks between by AUC."""
    drawable = [a for a in artifacts if a.curves.get("roc") and a.curves.get("pr")]
    if len(drawable) <= most:
        return drawable
    ranked = sorted(drawable, key=lambda a: metric(a, "auc_roc") if metric(a, "auc_roc") is not None else -1.0,
                    reverse=True)
    picks = sorted({round(i * (len(ranked) - 1) / (most - 1)) for i in range(most)})
    return [ranked[i] for i in picks]


def read_results(log_dir: str) -> list[tuple[str, JobResult]]:
    found = []
    for path in sorted(Path(log_dir).rglob(RESULT_FILE)):
        try:
            found.append((str(path), JobResult(**json.loads(path.read_text(encoding="utf-8")))))
        except (OSError, ValueError, TypeError):
            continue  # a result being written or from another version: not this report's to judge
    return found


def collect(models: str, log_dir: str = "logs") -> RunData:
    """Configurations with their artifacts (metadata, curves), the search's leaderboard and
    the feature sweep if ``models`` holds them, and every job result under ``log_dir``."""
    root = parse_location(models)
    configs = [read_configuration(root, name) for name in configurations(root)]
    return RunData(models=str(root), log_dir=log_dir, configurations=[c for c in configs if c.artifacts or c.config],
                   leaderboard=read_json(root, f"{LEADERBOARD}.json"), sweep=read_json(root, f"{SWEEP}.json"),
                   results=read_results(log_dir))


def job_spans(results: list[JobResult]) -> list[dict[str, Any]]:
    """One bar per spark-submit job of the most recent run: its members, start and end
    (epoch seconds), the start-up part, and its status (failed if any member failed).

    A job's end is its latest member record; its start is the end less the longest of
    a member's wall time and its job's start-up plus own work (a batch member's
    ``seconds`` are its own work)."""
    timed = [r for r in results if r.finished_at and r.seconds is not None]
    if not timed:
        return []
    last_run = max(timed, key=lambda r: r.finished_at).run_id
    jobs: dict[str, list[JobResult]] = {}
    for r in timed:
        if r.run_id == last_run:
            jobs.setdefault(r.batch or r.name, []).append(r)
    spans = []
    for name, members in jobs.items():
        end = max(r.finished_at for r in members)
        length = max(max(r.seconds or 0.0, (r.startup_seconds or 0.0) + (r.work_seconds or 0.0)) for r in members)
        startup = max((r.startup_seconds or 0.0) for r in members)
        bad = [r for r in members if r.status in FAILED_STATUSES]
        spans.append({"job": name, "members": [r.name for r in members], "start": end - length, "end": end,
                      "startup": min(startup, length), "status": bad[0].status if bad else members[0].status,
                      "run_id": last_run})
    return sorted(spans, key=lambda s: (s["start"], s["job"]))
