"""``FeatureSweep``: how few features does each label need? Rank features once, then
train one ``TrainModel`` per (label, N) on the top N, and report metric against N.

``luigi --module pipeline FeatureSweep --sizes '[5, 10, 20]' --models M --workers 20``

The ranking is the gain importance of a baseline model per label trained on every
feature with default parameters (an ordinary artifact, so it is trained once and
reused): of the swept engine when its record gives importances (LightGBM, XGBoost,
tree estimators of scikit-learn), else of LightGBM; or a ranking file (``--ranking``: a JSON list of features, or an object of label to list). Each
(label, N) is its own configuration folder, so a sweep resumes like TrainAll. Writes
``feature_sweep.csv``/``.json`` under ``--models``: one row per (label, N), and per label
the smallest N whose metric is within ``--tolerance`` of the best.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

import luigi
from luigi.freezing import recursively_unfreeze

from pipeline.data.artifacts import ArtifactTarget
from pipeline.data.leaderboard import csv_text
from pipeline.data.reports import read_report, write_report
from pipeline.errors import ConfigError, FanoutError
from pipeline.flows.train import TrainModel
from pipeline.flows.tune import SearchBase
from pipeline.params import FloatParameter, ListParameter, OptionalParameter
from pipeline.runner.controller import install_controller_hooks
from pipeline.storage import storage_for
from pipeline.storage.locations import parse_location
from tasks.engines import DEFAULT_ENGINE, get_engine
from tasks.evaluation import HIGHER_IS_BETTER

REPORT = "feature_sweep"


def top_features_by_gain(feature_names: Sequence[str], gains: Sequence[float]) -> list[str]:
    """Features by gain importance, largest first (ties keep the dataset's order)."""
    order = sorted(range(len(feature_names)), key=lambda i: (-float(gains[i]), i))
    return [feature_names[i] for i in order]


def smallest_within(points: Mapping[int, float | None], tolerance: float, higher_is_better: bool) -> tuple[int, float] | None:
    """The smallest N whose value is within ``tolerance`` of the best value, and that best."""
    known = {n: v for n, v in points.items() if v is not None}
    if not known:
        return None
    best = max(known.values()) if higher_is_better else min(known.values())
    ok = [n for n, v in known.items() if (v >= best - tolerance if higher_is_better else v <= best + tolerance)]
    return min(ok), best


def parse_ranking(doc: Any, labels: Sequence[str], features: Sequence[str], source: str) -> dict[str, list[str]]:
    """A ranking file's content as label -> ranked features, every name checked."""
    per_label = {label: doc for label in labels} if isinstance(doc, list) else doc
    if not isinstance(per_label, Mapping):
        raise ConfigError(f"{source}: a ranking is a JSON list of features or an object of label to list")
    out = {}
    for label in labels:
        ranked = per_label.get(label)
        if not isinstance(ranked, list) or not ranked:
            raise ConfigError(f"{source}: no ranked feature list for label {label!r}")
        unknown = [f for f in ranked if f not in features]
        if unknown:
            raise ConfigError(f"{source}: feature {unknown[0]!r} (label {label!r}) is not a feature of the data: fix the ranking")
        out[label] = list(dict.fromkeys(ranked))
    return out


class FeatureSweep(SearchBase, luigi.Task):
    """Train each label on its top-N features for every N in ``--sizes``."""

    sizes = ListParameter(item=int, example="5,10,20", description="Feature counts to try, e.g. 5,10,20 or [5, 10, 20]")
    ranking = OptionalParameter(default=None, example="ranking.json", description="Ranking file (JSON list, or label -> "
                                "list); default: gain importance of a baseline LightGBM per label")
    tolerance = FloatParameter(default=0.005, description="Smallest N within this much of the best metric is chosen")

    @cached_property
    def plan(self) -> dict[str, Any]:
        self.check_common()
        self.check_training_parameters()
        labels, features = self.data_plan()
        sizes = list(self.sizes)
        bad = [n for n in sizes if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(features)]
        if not sizes or bad:
            raise ConfigError(f"--sizes {sizes!r}: each must be a whole number from 1 to {len(features)} (the feature count)")
        ranking = None
        if self.ranking:
            loc = parse_location(self.ranking)
            storage = storage_for(loc)
            if not storage.exists(loc):
                raise ConfigError(f"ranking file {self.ranking!r} does not exist: check --ranking")
            try:
                doc = json.loads(storage.read_bytes(loc).decode("utf-8"))
            except ValueError as exc:
                raise ConfigError(f"{self.ranking} is not valid JSON ({exc}): fix it") from None
            ranking = parse_ranking(doc, labels, features, self.ranking)
        about = {"labels": labels, "features": features, "sizes": sorted(set(sizes)), "ranking": ranking,
                 "engine": self.engine, "params": recursively_unfreeze(self.params), **self.data_about(),
                 "balance_ratio": float(self.balance_ratio), "test_fraction": float(self.test_fraction),
                 "seed": int(self.seed), "metric": self.metric, "tolerance": float(self.tolerance)}
        about["id"] = hashlib.sha256(json.dumps(about, sort_keys=True).encode("utf-8")).hexdigest()[:12]
        return {"labels": labels, "features": features, "sizes": about["sizes"], "ranking": ranking, "about": about}

    @property
    def baseline_engine(self) -> str:
        """The swept engine when it ranks features itself (a model scored in Python whose
        record gives importances), else the default engine."""
        return self.engine if self.engine_record.ranks_features else DEFAULT_ENGINE

    def baselines(self) -> list[TrainModel]:
        """Each label's baseline: one configuration (every feature, default parameters)."""
        return [self.job(label, self.baseline_engine, {}, self.plan["features"]) for label in self.plan["labels"]]

    @staticmethod
    def gain_ranking(job: TrainModel) -> list[str]:
        target = ArtifactTarget(job.output().location)
        meta = target.metadata()
        engine = get_engine(meta["engine"])
        model = engine.load({name: target.storage.read_bytes(target.location.join(name)) for name in engine.model_files})
        return top_features_by_gain(meta["features"], engine.feature_importance(model) or [0.0] * len(meta["features"]))

    def rankings(self) -> dict[str, list[str]]:
        if self.plan["ranking"] is not None:
            return self.plan["ranking"]
        return {job.label: self.gain_ranking(job) for job in self.baselines()}

    def sweep_jobs(self, rankings: Mapping[str, list[str]]) -> dict[tuple[str, int], TrainModel]:
        # The top N in the dataset's order: the same N features are one configuration
        # whatever their ranking, so N = all features is the baseline itself (no extra job).
        def top(label: str, n: int) -> list[str]:
            chosen = set(rankings[label][:n])
            return [f for f in self.plan["features"] if f in chosen]

        return {(label, n): self.job(label, self.engine, recursively_unfreeze(self.params), top(label, n))
                for label in self.plan["labels"] for n in self.plan["sizes"]}

    def run(self) -> Iterator[list[TrainModel]]:
        install_controller_hooks(self)
        if self.plan["ranking"] is None:
            baselines = self.baselines()
            yield self.planned(baselines, self.pending_plan(self.missing(baselines)))
        rankings = self.rankings()
        jobs = self.sweep_jobs(rankings)
        swept = list(jobs.values())
        yield self.planned(swept, self.pending_plan(self.missing(swept)))
        rows = self.report_rows(jobs)
        write_report(self.models_root, REPORT, rows, {**self.plan["about"], "rankings": rankings}, csv_text=to_csv(rows, self.metric))

    def report_rows(self, jobs: Mapping[tuple[str, int], TrainModel] | None = None) -> list[dict[str, Any]]:
        """One row per finished (label, N); ``chosen`` marks each label's smallest good N."""
        jobs = jobs if jobs is not None else self.sweep_jobs(self.rankings())
        rows = []
        for (_label, n), job in sorted(jobs.items(), key=lambda kv: kv[0]):
            row = self.row(job, n=n)
            if row is not None:
                rows.append(row)
        higher = HIGHER_IS_BETTER[self.metric]
        for label in self.plan["labels"]:
            mine = [r for r in rows if r["label"] == label]
            picked = smallest_within({r["n"]: r["metrics"].get(self.metric) for r in mine}, self.tolerance, higher)
            for r in mine:
                r["value"] = r["metrics"].get(self.metric)
                r["chosen"] = picked is not None and r["n"] == picked[0]
                r["best"] = None if picked is None else picked[1]
                r["rank"] = 1 if r["chosen"] else 0
        return rows

    def plan_lines(self) -> list[str]:
        """The plan in words (``--dry-run``): the baselines still missing, then the (label,
        N) jobs, which are known once the features are ranked."""
        lines = []
        if self.plan["ranking"] is None:
            pending = self.missing(self.baselines())
            lines.append(f"baselines: {self.pending_plan(pending).describe()}")
            if pending:
                jobs = len(self.plan["labels"]) * len(self.plan["sizes"])
                return [*lines, f"then up to {jobs} (label, N) jobs, planned once the baselines have ranked the features"]
        missing = self.missing(list(self.sweep_jobs(self.rankings()).values()))
        return [*lines, f"(label, N) jobs: {self.pending_plan(missing).describe()}"]

    def complete(self) -> bool:
        about = self.plan["about"]  # first: bad input is refused while Luigi schedules, not once run() started
        if self.dry_run:  # the plan is printed, nothing is left to do
            self.print_plan(*self.plan_lines())
            return True
        current = read_report(self.models_root, REPORT)
        return current is not None and {k: v for k, v in current.get("search", {}).items() if k != "rankings"} == about

    @property
    def summary_title(self) -> str:
        return f"{self.models_root} feature sweep {self.plan['about']['id']}"

    def summary_rows(self) -> list[dict[str, object]]:
        try:
            rows = self.report_rows()
        except (FanoutError, OSError, ValueError):  # baselines not trained yet
            return []
        return [{"label": f"{r['label']} N={r['n']}", "status": "chosen" if r["chosen"] else "trained",
                 "seconds": r.get("duration"), "detail": f"{self.metric}={r['value']}"} for r in rows]


def to_csv(rows: Sequence[Mapping[str, Any]], metric: str) -> str:
    return csv_text(({**r, "metric": metric} for r in rows),
                    ("label", "n", "metric", "value", "best", "chosen", "config", "artifact"))
