"""``TuneAll``: hyper-parameter search across engines, one ``TrainModel`` job per
(trial, label), each trial its own configuration folder, so trials resume like TrainAll.

``luigi --module pipeline TuneAll --space space.json --search grid --models M --workers 20``

``grid`` and ``random`` know every trial up front and require them all; ``optuna`` asks
its study for ``--parallel-trials`` trials at a time (Luigi dynamic dependencies), tells it each
finished trial's mean metric over the labels, and keeps the study in a file journal
beside the artifacts (``<models>/_tune/<search id>.journal``), so a stopped search
continues where it was on the next run and a finished trial is never trained again.
``--study per-label`` gives each label a study of its own (its own ``--trials``, told
that label's metric alone), so each label finds its own best parameters.
The leaderboard (``leaderboard.csv`` and ``.json`` under ``--models``) is written when
every trial is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

import luigi

from pipeline.data import leaderboard as board
from pipeline.data.artifacts import ArtifactTarget, completed_slugs
from pipeline.data.columns import check_training_data
from pipeline.data.datasets import read_schema
from pipeline.data.labels import feature_columns, label_slug, resolve_labels
from pipeline.data.reports import read_report, write_report
from pipeline.data.results import current_run_id
from pipeline.data.search_space import (
    SEARCHES,
    SearchSpace,
    Trial,
    canonical,
    grid_trials,
    parse_space_text,
    random_trials,
    suggest,
    validate_space,
)
from pipeline.errors import ConfigError
from pipeline.flows.train import PlannedRun, TrainingParameters, TrainModel, engine_record
from pipeline.params import ChoiceParameter, IntParameter, OptionalListParameter, Parameter
from pipeline.runner.batching import Plan, check_workers
from pipeline.runner.controller import install_controller_hooks
from pipeline.storage import storage_for
from pipeline.storage.locations import parse_location
from tasks.engines import EngineParamError
from tasks.engines.training import DEFAULT_STOPPING_FRACTION
from tasks.evaluation import DEFAULT_METRIC, HIGHER_IS_BETTER, RANKABLE

logger = logging.getLogger("luigi-interface")

STUDY_FOLDER = "_tune"
STUDIES = ("shared", "per-label")


def load_space(path: str, search: str) -> SearchSpace:
    """Read and check a space file (local path or storage URI)."""
    loc = parse_location(path)
    storage = storage_for(loc)
    if not storage.exists(loc):
        raise ConfigError(f"search space file {path!r} does not exist: check --space")
    return validate_space(parse_space_text(storage.read_bytes(loc).decode("utf-8", errors="replace"), path), path, search)


def check_metric(metric: str) -> str:
    if metric not in RANKABLE:
        raise ConfigError(f"--metric {metric!r} is unknown: use one of {', '.join(RANKABLE)}")
    return metric


class SearchBase(PlannedRun, TrainingParameters):
    """What TuneAll and FeatureSweep share: labels and features as TrainAll picks them,
    one TrainModel per (configuration, label), planned in batches as TrainAll plans its
    labels, artifacts read back into rows."""

    labels = OptionalListParameter(default=None, example="label_00,label_01", description="Labels as a,b or a JSON list; default: every column starting with label-prefix")
    metric = Parameter(default=DEFAULT_METRIC, description="Metric that ranks trials: " + ", ".join(RANKABLE))

    def check_common(self) -> None:
        check_workers()
        check_metric(self.metric)
        if not (self.balance_ratio == 0 or self.balance_ratio >= 1):
            raise ConfigError(f"balance-ratio {self.balance_ratio} is invalid: use 0 (off) or a value >= 1")
        if not 0 < self.test_fraction <= 0.9:
            raise ConfigError(f"test-fraction {self.test_fraction} is invalid: a search needs validation rows, use 0 < f <= 0.9")

    def data_plan(self) -> tuple[list[str], list[str]]:
        self.check_apart()
        schema = read_schema(self.data)
        labels = resolve_labels(None if self.labels is None else list(self.labels), schema.columns, self.label_prefix, self.data)
        features = list(self.features) if self.features is not None else feature_columns(schema.numeric, labels, self.label_prefix)
        check_training_data(schema, features, self.data)
        return labels, features

    def job(self, label: str, engine: str, params: dict[str, Any], features: Sequence[str]) -> TrainModel:
        """The TrainModel of one (configuration, label); it names its own configuration.
        Not planned yet (one label a job, ``[spark] master`` as written): see :meth:`planned`."""
        job = self.clone(TrainModel, label=label, engine=engine, params=params, features=list(features), config="",
                         run_id=self.run_id or current_run_id())
        # The configuration id goes into the task id: features are hidden from luigid and
        # so from task ids, and two feature sets must never be one task.
        return job.clone(config=job.config_name)

    def missing(self, jobs: Sequence[TrainModel]) -> list[TrainModel]:
        """The jobs without a complete artifact: one listing per configuration."""
        done = self.done(jobs)
        return [j for j in jobs if (j.config_name, label_slug(j.label)) not in done]

    def pending_plan(self, pending: Sequence[TrainModel]) -> Plan:
        """TrainAll's plan for ``pending`` jobs: a batch holds labels of one configuration."""
        return self.batch_plan(list(Counter(j.config_name for j in pending).values()))

    @staticmethod
    def planned(jobs: Sequence[TrainModel], plan: Plan) -> list[TrainModel]:
        """``jobs`` as ``plan`` runs them: up to its batch size of one configuration's
        pending labels in one job, on its share of this machine's cores. Neither setting
        is part of a task id, so a rerun finds the same tasks."""
        return [j.clone(batch_limit=plan.batch_size, local_cores=plan.cores_per_batch) for j in jobs]

    @staticmethod
    def done(jobs: Sequence[TrainModel]) -> set[tuple[str, str]]:
        """(configuration, slug) pairs complete among ``jobs``: one listing per configuration."""
        listed: dict[str, set[str]] = {}
        for j in jobs:
            if j.config_name not in listed:
                listed[j.config_name] = completed_slugs(j.config_root)
        return {(name, slug) for name, slugs in listed.items() for slug in slugs}

    def check_trial(self, trial: Trial, features: Sequence[str]) -> None:
        """The engine library's own checks of one trial's parameters, before any job."""
        try:
            engine_record(trial.engine).check_params(trial.params, len(features))
        except EngineParamError as exc:
            raise ConfigError(f"{self.space}: {trial.engine}: {exc}") from None

    def row(self, job: TrainModel, **extra: Any) -> dict[str, Any] | None:
        """The leaderboard row of a finished job (None while it is not complete)."""
        target = ArtifactTarget(job.output().location)
        if not target.exists():
            return None
        meta = target.metadata()
        return {"label": job.label, "engine": job.engine, "params": meta.get("params", {}),
                "metrics": meta.get("metrics", {}), "duration": meta.get("job_seconds", meta.get("training_seconds")),
                "config": job.config_name, "artifact": target.path, **extra}

    summary_unit = "job"  # a row is one (label, trial) job: "label_00 #3"
    summary_detail = "configuration and metric"

    def summary_rows(self) -> list[dict[str, object]]:
        rows = self.report_rows()
        return [{"label": f"{r['label']} #{r.get('trial', '')}", "status": "ranked " + str(r["rank"]),
                 "seconds": r.get("duration"), "detail": f"{r['config']} {self.metric}={(r['metrics'] or {}).get(self.metric)}"}
                for r in rows]

    def report_rows(self) -> list[dict[str, Any]]:
        raise NotImplementedError


class TuneAll(SearchBase, luigi.Task):
    """Search engines and parameters (``--space``) for every label; rank the trials."""

    # Each trial's engine and parameters come from the space, not from these.
    engine = None
    params = None

    space = Parameter(example="space.json", description="Search space file (JSON, or YAML with pyyaml): engines to "
                      "parameters, each a list of values or a range {low, high, log, int}")
    search = ChoiceParameter(choices=SEARCHES, default="grid", description="grid | random | optuna")
    trials = IntParameter(default=20, description="Trials for random and optuna (grid: every combination)")
    parallel_trials = IntParameter(default=4, description="optuna: trials asked (and run) at once; more = more parallel, "
                                   "less informed sampling")
    study = ChoiceParameter(choices=STUDIES, default="shared", description="optuna: shared (one study, told the mean "
                            "metric over the labels) | per-label (one study per label, each told its own metric)")

    @cached_property
    def plan(self) -> dict[str, Any]:
        """Space, labels, features and (grid/random) the trials: checked before any job."""
        space = load_space(self.space, self.search)
        self.check_common()
        if self.search != "grid" and self.trials < 1:
            raise ConfigError(f"--trials {self.trials} is invalid: use 1 or more")
        if self.parallel_trials < 1:
            raise ConfigError(f"--parallel-trials {self.parallel_trials} is invalid: use 1 or more")
        if self.study != "shared" and self.search != "optuna":
            raise ConfigError(f"--study {self.study} needs --search optuna: grid and random try every trial on every "
                              "label already")
        labels, features = self.data_plan()
        about = {"space": json.loads(canonical(space)), "search": self.search, "labels": labels, "features": features,
                 **self.data_about(), "balance_ratio": float(self.balance_ratio),
                 "test_fraction": float(self.test_fraction), "seed": int(self.seed), "metric": self.metric}
        # Written only when they differ from what searches always did, so earlier searches keep their ids.
        if self.study != "shared":
            about["study"] = self.study
        if self.class_weight != "none":
            about["class_weight"] = self.class_weight
        if self.stopping_fraction != DEFAULT_STOPPING_FRACTION:
            about["stopping_fraction"] = float(self.stopping_fraction)
        search_id = hashlib.sha256(json.dumps(about, sort_keys=True).encode("utf-8")).hexdigest()[:12]
        if self.search == "grid":
            trials = grid_trials(space)
        elif self.search == "random":
            trials = random_trials(space, self.trials, self.seed)
        else:
            trials = []
        for trial in trials:
            self.check_trial(trial, features)
        return {"space": space, "labels": labels, "features": features, "about": about, "id": search_id,
                "trials": trials}

    # --- jobs ---------------------------------------------------------------------------
    def trial_jobs(self, trial: Trial, labels: Sequence[str] | None = None) -> list[TrainModel]:
        return [self.job(label, trial.engine, trial.params, self.plan["features"])
                for label in (self.plan["labels"] if labels is None else labels)]

    @cached_property
    def optuna_plan(self) -> Plan:
        """The plan of one optuna step: ``--parallel-trials`` trials of every study at once,
        a shared study's trial training every label (one configuration), a label's own
        study's trial that label."""
        labels = len(self.plan["labels"])
        at_once = min(self.parallel_trials, self.trials)
        return self.batch_plan([labels] * at_once if self.study == "shared" else [1] * (labels * at_once))

    def requires(self) -> list[TrainModel]:
        check_workers()  # before the exit summary is hooked: a refused run has nothing to sum up
        install_controller_hooks(self)
        plan = self.plan
        jobs = [j for t in plan["trials"] for j in self.trial_jobs(t)]
        missing = self.missing(jobs)
        batches = self.pending_plan(missing)
        if plan["trials"]:
            logger.info("TuneAll %s: %d trials x %d labels, %d jobs to run%s", plan["id"], len(plan["trials"]),
                        len(plan["labels"]), len(missing),
                        f", up to {batches.batch_size} labels of a trial per spark-submit" if batches.batch_size > 1 else "")
        return self.planned(missing, batches)

    def plan_lines(self) -> list[str]:
        """The plan in words (``--dry-run``): of the jobs still missing (grid, random) or of
        one step of the studies (optuna)."""
        plan = self.plan
        if self.search == "optuna":
            studies = len(self.studies())
            return [f"optuna, {self.trials} trials per study x {studies} {'study' if studies == 1 else 'studies'}, "
                    f"{min(self.parallel_trials, self.trials)} trials at once: each step {self.optuna_plan.describe()}"]
        missing = self.missing([j for t in plan["trials"] for j in self.trial_jobs(t)])
        return [f"{len(plan['trials'])} trials x {len(plan['labels'])} labels, {len(missing)} jobs to run: "
                f"{self.pending_plan(missing).describe()}"]

    # --- optuna ---------------------------------------------------------------------------
    @property
    def study_path(self) -> str:
        """The study's journal: beside the artifacts when they are local, else under the log folder."""
        root = self.models_root
        base = os.path.join(root.path, STUDY_FOLDER) if root.is_local else os.path.join(self.log_dir, "tune")
        return os.path.join(base, f"{self.plan['id']}.journal")

    def studies(self) -> dict[str, list[str]]:
        """Study name -> the labels its trials train: one shared study, or one per label."""
        labels = self.plan["labels"]
        if self.study == "shared":
            return {self.plan["id"]: labels}
        return {f"{self.plan['id']}-{label_slug(label)}": [label] for label in labels}

    def open_study(self, name: str) -> Any:
        try:
            import optuna
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend
        except ImportError:
            raise ConfigError("--search optuna needs optuna: pip install 'spark-fanout[tune]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        os.makedirs(os.path.dirname(self.study_path), exist_ok=True)
        storage = JournalStorage(JournalFileBackend(self.study_path))
        direction = "maximize" if HIGHER_IS_BETTER[self.metric] else "minimize"
        known = optuna.create_study(study_name=name, storage=storage, load_if_exists=True, direction=direction)
        # A sampler seeded alike in every process would suggest a rerun's first trials
        # again: seeding with the trials asked so far keeps runs reproducible, never repeating.
        # Each label's own study starts from a seed of its own (not every label the same trials).
        own = 0 if name == self.plan["id"] else zlib.crc32(name.encode("utf-8")) % 1_000_003
        sampler = optuna.samplers.TPESampler(seed=self.seed + own + len(known.get_trials(deepcopy=False)))
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler)

    @staticmethod
    def _trial_of(frozen: Any) -> Trial:
        return Trial(frozen.user_attrs["engine"], frozen.user_attrs["params"])

    def _objective(self, jobs: list[TrainModel]) -> float | None:
        values = [m for j in jobs if (r := self.row(j)) and (m := r["metrics"].get(self.metric)) is not None]
        return sum(values) / len(values) if values else None

    def optuna_steps(self) -> Iterator[list[TrainModel]]:
        """Ask, run, tell until every study has ``--trials`` finished trials. Luigi calls
        ``run()`` again from the top after yielded jobs finish (in a new task process,
        possibly a new controller run): every step is read back from the studies, never
        held in memory."""
        studies = {name: (self.open_study(name), labels) for name, labels in self.studies().items()}
        while True:
            steps = [self._step(study, labels) for study, labels in studies.values()]
            if all(step is None for step in steps):
                return
            jobs = [j for step in steps if step for j in step]
            if jobs:  # none missing: the trials asked were trained before, told on the next pass
                yield self.planned(jobs, self.optuna_plan)

    def _step(self, study: Any, labels: list[str]) -> list[TrainModel] | None:
        """Tell ``study`` its finished trials, ask new ones up to ``--parallel-trials``;
        the jobs its running trials still miss (``None``: the study is done)."""
        from optuna.trial import TrialState

        frozen = study.get_trials(deepcopy=False)
        for t in (t for t in frozen if t.state == TrialState.RUNNING):
            jobs = self.trial_jobs(self._trial_of(t), labels)
            if not self.missing(jobs):
                value = self._objective(jobs)
                study.tell(t.number, value, state=TrialState.COMPLETE if value is not None else TrialState.FAIL)
        frozen = study.get_trials(deepcopy=False)
        finished = sum(t.state.is_finished() for t in frozen)
        running = [t for t in frozen if t.state == TrialState.RUNNING]
        if finished >= self.trials:
            return None
        for _ in range(min(self.parallel_trials - len(running), self.trials - finished - len(running))):
            asked = study.ask()
            trial = suggest(asked, self.plan["space"])
            asked.set_user_attr("engine", trial.engine)
            asked.set_user_attr("params", trial.params)
            running.append(study.trials[asked.number])
        logger.info("TuneAll %s: %d/%d trials finished, running %s", study.study_name, finished, self.trials,
                    [t.number for t in running])
        return [j for t in running for j in self.missing(self.trial_jobs(self._trial_of(t), labels))]

    # --- result -----------------------------------------------------------------------------
    def report_rows(self) -> list[dict[str, Any]]:
        """Leaderboard rows of every finished (trial, label), ranked per label."""
        rows = []
        for name, labels in self.studies().items():
            if self.search == "optuna":
                from optuna.trial import TrialState

                trials = [(t.number, self._trial_of(t)) for t in self.open_study(name).get_trials(deepcopy=False)
                          if t.state != TrialState.WAITING and "engine" in t.user_attrs]
            else:
                trials = list(enumerate(self.plan["trials"]))
            study = "shared" if self.study == "shared" else labels[0]
            for number, trial in trials:
                for job in self.trial_jobs(trial, labels):
                    row = self.row(job, trial=number, study=study)
                    if row is not None:
                        rows.append(row)
        return board.rank(rows, self.metric)

    def about(self) -> dict[str, Any]:
        return {**self.plan["about"], "id": self.plan["id"], "trials": self.trials if self.search != "grid" else len(self.plan["trials"])}

    def run(self) -> Iterator[list[TrainModel]]:
        if self.search == "optuna":
            yield from self.optuna_steps()
        location = write_report(self.models_root, board.LEADERBOARD, self.report_rows(), self.about())
        logger.info("TuneAll %s: leaderboard written to %s", self.plan["id"], location)

    def complete(self) -> bool:
        """Done when the leaderboard under --models is this search's and every trial is
        done (a deleted artifact makes the search incomplete again). ``--dry-run``: the
        plan is printed, and nothing is left to do."""
        if self.dry_run:
            self.print_plan(*self.plan_lines())
            return True
        current = read_report(self.models_root, board.LEADERBOARD)
        if current is None or current.get("search", {}) != self.about():
            return False
        if self.search == "optuna":
            return True
        jobs = [j for t in self.plan["trials"] for j in self.trial_jobs(t)]
        return not self.missing(jobs)

    @property
    def summary_title(self) -> str:
        return f"{self.models_root} search {self.plan['id']}"
