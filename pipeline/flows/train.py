"""The controller: ``TrainAll`` fans out one ``TrainModel`` spark-submit job per label."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

import luigi
from luigi.freezing import recursively_unfreeze
from luigi.parameter import ParameterVisibility

from pipeline.config import batching, fanout
from pipeline.data import results
from pipeline.data.artifacts import (
    ArtifactTarget,
    artifact_location,
    completed_slugs,
    config_id,
    ensure_config_file,
    foreign_configuration,
    remove_stale_temporaries,
    slugs_in,
    training_config,
)
from pipeline.data.columns import check_label, check_training_data
from pipeline.data.datasets import DatasetSchema, data_identity, dataset_fingerprint, read_schema
from pipeline.data.labels import DEFAULT_LABEL_PREFIX, feature_columns, label_slug, resolve_labels
from pipeline.data.results import current_run_id
from pipeline.errors import ConfigError, DatasetError, FanoutError
from pipeline.params import (
    ChoiceParameter,
    FloatParameter,
    IntParameter,
    JsonObjectParameter,
    OptionalListParameter,
    Parameter,
)
from pipeline.runner.batching import (
    MemberParameter,
    Plan,
    check_workers,
    configured_plan,
    fits_at_once,
    members,
    parse_batch_size,
    planned_master,
)
from pipeline.runner.controller import install_controller_hooks
from pipeline.runner.job import WRAPPER_PRIORITY, RunParameters, SparkJob, start_in_order
from pipeline.runner.submit import train_script
from pipeline.storage import storage_for
from pipeline.storage.locations import Location, first_overlap, parse_location
from tasks.engines import DEFAULT_ENGINE, DRIVER, SKLEARN_EXAMPLE, Engine, EngineParamError, engine_names, get_engine
from tasks.engines.training import CLASS_WEIGHTS, DEFAULT_STOPPING_FRACTION
from tasks.jobspec import SPEC_FLAG, encode_spec
from tasks.layout import MARKER
from tasks.ownership import parse_record

logger = logging.getLogger("luigi-interface")


class _LabelAndConfig:
    """TrainModel's identifying parameters, declared before the others so that luigid
    lists them first."""

    label = MemberParameter(description="Label column to train a binary classifier for (a batch: several)")
    config = luigi.Parameter(default="", description="Configuration id (<engine>-<hash>) that TrainAll computed; "
                             "empty: computed from the other parameters")


def engine_record(name: str) -> Engine:
    """The engine record named ``name``, or ConfigError in one line."""
    try:
        return get_engine(name)
    except EngineParamError as exc:
        raise ConfigError(str(exc)) from None


def engine_help() -> str:
    """``--engine``'s description: the registry's engines (plugins included)."""
    return f"{' | '.join(engine_names())} | {SKLEARN_EXAMPLE} (any scikit-learn classifier by import path)"


class TrainingParameters(RunParameters):
    """Parameters shared by TrainAll and TrainModel (TrainAll hands them down)."""

    data = Parameter(default="data/demo.parquet", description="Parquet dataset: local path, file://, hdfs:// or webhdfs://")
    models = Parameter(default="models", description="Artifact root: one folder per label is written under it")
    engine = Parameter(default=DEFAULT_ENGINE, description=engine_help())
    params = JsonObjectParameter(default={}, example="'{\"num_iterations\": 200}'", description="Engine parameters as JSON, "
                                 'each as the library names it, e.g. {"num_iterations": 200, "bagging_fraction": 0.8}')
    # Hidden in luigid (hundreds of names on real data); the configuration id carries them.
    features = OptionalListParameter(default=None, example="f000,f001", visibility=ParameterVisibility.HIDDEN,
                                     description="Feature columns (a,b or a JSON list); default: every numeric column that is not a label")
    label_prefix = Parameter(default=DEFAULT_LABEL_PREFIX, visibility=ParameterVisibility.HIDDEN,
                             description="Columns starting with this are labels (default label rule)")
    balance_ratio = FloatParameter(default=1.0, description="Keep at most this many majority rows per minority row (0 = no balancing)")
    test_fraction = FloatParameter(default=0.2, description="Share of rows held out for evaluation (0 to 0.9)")
    seed = IntParameter(default=42, description="Seed for splitting, balancing and training")
    class_weight = ChoiceParameter(choices=CLASS_WEIGHTS, default="none", description="balanced: weigh each class by "
                                   "rows / (2 * its rows) while training, beside or instead of --balance-ratio (0)")
    stopping_fraction = FloatParameter(default=DEFAULT_STOPPING_FRACTION, description="Share of the training rows held out to decide when to "
                                       "stop, when the engine's parameters ask for early stopping (e.g. LightGBM's "
                                       "early_stopping_round)")

    @property
    def engine_record(self) -> Engine:
        return engine_record(self.engine)

    def check_training_parameters(self) -> dict[str, Any]:
        """Validate what can be checked without data; returns the resolved engine params."""
        engine = self.engine_record
        try:
            resolved = engine.resolve(recursively_unfreeze(self.params))
        except EngineParamError as exc:
            raise ConfigError(str(exc)) from None
        if not (self.balance_ratio == 0 or self.balance_ratio >= 1):
            raise ConfigError(f"balance-ratio {self.balance_ratio} is invalid: use 0 (off) or a value >= 1")
        if not 0 <= self.test_fraction <= 0.9:
            raise ConfigError(f"test-fraction {self.test_fraction} is invalid: use a value from 0 to 0.9")
        if not 0 < self.stopping_fraction < 1:
            raise ConfigError(f"stopping-fraction {self.stopping_fraction} is invalid: use a share between 0 and 1")
        if self.class_weight != "none" and not engine.weighs_classes:
            raise ConfigError(f"engine {self.engine} cannot weigh classes: drop --class-weight and balance by "
                              "downsampling (--balance-ratio)")
        return resolved

    def check_engine_params(self, params: dict[str, Any], features: list[str]) -> None:
        """The engine library's own checks of ``params`` for this many features."""
        try:
            self.engine_record.check_params(params, len(features))
        except EngineParamError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def models_root(self) -> Location:
        return parse_location(self.models)

    def training_config(self, features: list[str]) -> dict[str, Any]:
        """Every setting that changes the model (see :func:`pipeline.data.artifacts.training_config`),
        the dataset's fingerprint as this run took it included."""
        params = self.check_training_parameters()
        return training_config(engine=self.engine, params=params, features=features,
                               balance_ratio=self.balance_ratio, test_fraction=self.test_fraction, seed=self.seed,
                               data=self.data_location.uri(),
                               data_fingerprint=data_identity(self.data, self.run_id or current_run_id()),
                               class_weight=self.class_weight,
                               stopping_fraction=self.stopping_fraction if self.engine_record.early_stopping_rounds(params) else None)

    def data_about(self) -> dict[str, Any]:
        """The dataset as a search or sweep names it: its URI, plus its fingerprint as this
        run took it (unless ``[fanout] data_identity = path``)."""
        identity = data_identity(self.data, self.run_id or current_run_id())
        return {"data": self.data_location.uri(), **({"data_fingerprint": identity} if identity is not None else {})}

    def check_apart(self) -> None:
        """Models written inside the dataset (or the dataset inside the models) would be
        read as data, or deleted with it: refused."""
        overlap = first_overlap([("--data", self.data_location), ("--models", self.models_root)])
        if overlap:
            raise ConfigError(f"--data {self.data} and --models {self.models} overlap (one lies inside the other): "
                              f"keep models and data in separate folders")

    @property
    def data_location(self) -> Location:
        return parse_location(self.data)


class _PlannedWidth(luigi.Task):
    """The local master's width the plan (TrainAll's, a search's) chose for a batch."""

    local_cores = luigi.IntParameter(default=0, significant=False, visibility=ParameterVisibility.HIDDEN,
                                     description="Cores of a local master chosen by the run's plan (0: [spark] master as written)")

    @property
    def master(self) -> str:
        """``[spark] master``, widened to the plan's ``local[N]`` when it is a plain local master."""
        return planned_master(super().master, self.local_cores)  # type: ignore[misc]


class TrainModel(_LabelAndConfig, _PlannedWidth, TrainingParameters, SparkJob):
    """Train one label's model in a spark-submit job; output: its artifact under its
    configuration's folder. Luigi batches TrainModel tasks that differ only in their
    label (up to ``batch_limit``): one job then trains them all, reading the data once,
    and writes each label's artifact as soon as that label is done.

    Running the job (local process trees, YARN submit/follow/kill/re-attach, logs,
    results) is :class:`~pipeline.runner.job.SparkJob`'s; this class says what to train.
    Normally made by TrainAll, which passes ``config`` and ``batch_limit``.
    """

    success_status = "trained"
    unit = "label"

    # Not named batch_size: TrainAll's --batch-size ("auto" or N) must not reach it through clone().
    batch_limit = luigi.IntParameter(default=1, significant=False, visibility=ParameterVisibility.HIDDEN,
                                     description="Most labels Luigi batches into one job (TrainAll sets it)")

    @property
    def max_batch_size(self) -> int:  # read by Luigi's worker when it registers the batcher
        return max(1, int(self.batch_limit))

    @property
    def labels(self) -> tuple[str, ...]:
        return members(self.label)

    @property
    def members(self) -> tuple[str, ...]:
        return self.labels

    @property
    def job_name(self) -> str:
        labels = self.labels
        return labels[0] if len(labels) == 1 else f"{labels[0]} +{len(labels) - 1}"

    @property
    def name_prefix(self) -> str:
        folder = self.engine_record.folder
        return folder if len(self.labels) == 1 else f"{folder}-{len(self.labels)}-labels"

    def member_output(self, name: str) -> ArtifactTarget:
        return ArtifactTarget(artifact_location(self.config_root, name))

    def made_here(self, name: str) -> bool:
        """A driver on this machine reports each artifact it commits; a cluster-mode
        driver does not, so the artifact's marker names the application that made it."""
        if self.driver_local:
            return False  # not among the job's own `artifact` events: another run's
        target = self.member_output(name)
        record = parse_record(target.storage.read_bytes(target.location.join(MARKER)))
        app_id = self.state.application_id
        return record is None or not app_id or record.get("application_id") == app_id

    def complete_members(self) -> set[str]:
        if len(self.labels) == 1:
            return super().complete_members()
        done = completed_slugs(self.config_root)  # a batch: one listing, not one request per label
        return {label for label in self.labels if label_slug(label) in done}

    @cached_property
    def config_document(self) -> dict[str, Any]:
        return self.training_config(self.resolved_features())

    @cached_property
    def config_name(self) -> str:
        if self.config:
            return self.config
        try:
            return config_id(self.config_document)
        except FanoutError:
            # Bad settings: no artifact can exist for them, and preflight refuses the
            # task with the reason (output() must not raise while Luigi schedules).
            return "unresolved"

    @property
    def config_root(self) -> Location:
        return self.models_root.join(self.config_name)

    def output(self) -> ArtifactTarget | list[ArtifactTarget]:
        targets = [self.member_output(label) for label in self.labels]
        return targets[0] if len(targets) == 1 else targets

    @property
    def app(self) -> str:
        return train_script()

    def job_spec(self) -> dict[str, Any]:
        labels = self.active_members
        settings = batching()
        limits = fanout()
        return {
            "labels": labels,
            "slugs": [label_slug(label) for label in labels],
            "collect_limit_mb": settings.collect_limit_mb,
            "label_minimums": {"positives": limits.min_positives, "negatives": limits.min_negatives,
                               "validation_per_class": limits.min_validation_per_class,
                               "null_warning_share": limits.null_label_warning},
            "threads": settings.threads,
            "fit_place": settings.fit_place,
            "fits_at_once": fits_at_once(self.master, self.num_executors, self.executor_cores, self.conf),
            "data": self.data_location.uri(),
            "artifact_root": self.config_root.uri(),
            "engine": self.engine,
            "params": recursively_unfreeze(self.params),
            "features": list(self.resolved_features()),
            "balance_ratio": self.balance_ratio,
            "test_fraction": self.test_fraction,
            "class_weight": self.class_weight,
            "stopping_fraction": self.stopping_fraction,
            "seed": self.seed,
            "run_id": self.run_id or current_run_id(),
            "task_id": self.task_id,
            "config": self.config_name,
            "lease_seconds": fanout().temporary_lease_seconds,
            "driver_local": self.driver_local,
        }

    def app_options(self) -> list[str]:
        return [SPEC_FLAG, encode_spec(self.job_spec())]

    # --- checks before any JVM starts --------------------------------------------------
    @cached_property
    def schema(self) -> DatasetSchema:
        return read_schema(self.data)

    def resolved_features(self) -> list[str]:
        if self.features is not None:
            return list(self.features)
        return feature_columns(self.schema.numeric, list(self.labels), self.label_prefix)

    def preflight(self) -> None:
        """Everything that can be refused in milliseconds instead of after a JVM start."""
        params = self.check_training_parameters()
        if self.config and self.config != config_id(self.config_document):
            raise ConfigError(f"--config {self.config} does not match this task's settings "
                              f"({config_id(self.config_document)}): leave --config empty")
        self.check_apart()
        planned = self.config_document.get("data_fingerprint")
        if planned is not None and dataset_fingerprint(self.data) != planned:
            raise DatasetError(f"dataset {self.data} changed since this run planned its configuration {self.config_name}: "
                               f"rerun, and the new data trains as a new configuration")
        engine = self.engine_record
        missing = engine.missing_setting(list(self.packages or []) + list(self.jars or []))
        if missing:
            raise ConfigError(missing)
        if self.on_yarn:
            # Executors read the data on cluster nodes; Spark models are saved by executors
            # too, and in cluster mode the driver itself runs on a node.
            local_models_ok = not self.cluster_mode and engine.trains_on == DRIVER and not engine.saves_spark_model
            for what, loc, local_ok in (("--data", self.data_location, False), ("--models", self.models_root, local_models_ok)):
                if loc.is_local and not local_ok:
                    raise ConfigError(f"{what} {loc} is a local path but the job runs on YARN nodes: use an hdfs:// path")
        schema = self.schema
        features = self.resolved_features()
        check_training_data(schema, features, self.data)
        self.check_engine_params(params, features)
        for label in self.labels:
            try:
                self._check_label(label, schema, features)
            except FanoutError as exc:
                if len(self.labels) == 1:
                    raise
                self.refuse_member(label, str(exc))  # the batch's other labels go on

    def _check_label(self, label: str, schema: DatasetSchema, features: list[str]) -> None:
        if label in features and label in schema.columns:
            raise ConfigError(f"label {label!r} is also in --features: remove it, a model must not see its target")
        check_label(schema, label, self.data, self.label_prefix)

    def before_submit(self) -> None:
        ensure_config_file(self.config_root, self.config_document)
        remove_stale_temporaries(self.config_root, [label_slug(label) for label in self.active_members],
                                 lease_seconds=fanout().temporary_lease_seconds)


class PlannedRun:
    """What TrainAll and the searches share about their plan of batches
    (:func:`~pipeline.runner.batching.configured_plan`): the workers it is made for, and
    ``--dry-run``, which prints it and trains nothing."""

    planned_workers = luigi.IntParameter(default=0, significant=False, visibility=ParameterVisibility.HIDDEN,
                                         description="Internal: workers the plan of batches is made for (0: --workers)")
    dry_run = luigi.BoolParameter(default=False, significant=False,
                                  description="Print the plan (batches, labels per batch, fits at once, expected time) "
                                  "and train nothing")

    def batch_plan(self, groups: list[int], **measured: Any) -> Plan:
        """The plan for ``groups`` (labels to train, per configuration) under this run's settings."""
        return configured_plan(groups, workers=self.planned_workers or None, **measured)

    def print_plan(self, *lines: str) -> None:
        """``<task> plan: line`` on standard output for each line, once (Luigi may ask a
        task twice)."""
        if not getattr(self, "_plan_printed", False):
            for line in lines:
                print(f"{type(self).__name__} plan: {line}", flush=True)
            self._plan_printed = True


class TrainAll(PlannedRun, TrainingParameters, luigi.WrapperTask):
    """Train one model per label. Only labels without a complete artifact for this
    configuration are required, learned from one listing of the configuration's folder;
    so a rerun resumes where the last one stopped, a run with other settings trains
    anew beside it, and a finished run costs one storage request to confirm."""

    labels = OptionalListParameter(default=None, example="label_00,label_01", description="Labels as a,b or a JSON list; default: every column starting with label-prefix")
    batch_size = Parameter(default="auto", description="Labels per spark-submit: auto (from measured start-up "
                           "and per-label times, see [batching]) | N | 1 (one job per label)")
    priority = WRAPPER_PRIORITY  # its jobs start in the order of --labels (start_in_order)
    summary_unit = "label"

    @cached_property
    def plan(self) -> dict[str, Any]:
        """Labels, features and the labels still missing, computed once per run (a new
        run — a new process, or a new ``run_id`` — plans afresh)."""
        self.check_training_parameters()
        self.check_apart()
        parse_batch_size(self.batch_size)  # refused before anything is written under --models
        schema = read_schema(self.data)
        labels = resolve_labels(None if self.labels is None else list(self.labels), schema.columns, self.label_prefix, self.data)
        features = list(self.features) if self.features is not None else feature_columns(schema.numeric, labels, self.label_prefix)
        check_training_data(schema, features, self.data)
        self.check_engine_params(self.check_training_parameters(), features)
        config = self.training_config(features)
        name = config_id(config)
        root = self.models_root.join(name)
        storage = storage_for(root)
        entries = storage.list_dir(root)
        refusal = foreign_configuration(root, entries)
        if refusal is not None:
            raise refusal
        done = slugs_in(entries)
        if not done and not self.dry_run:  # a configuration with finished labels has its config.json already
            ensure_config_file(root, config, storage)
        missing = [label for label in labels if label_slug(label) not in done]
        plan = self.chosen_plan(len(missing), labels, root)
        logger.info("TrainAll: %d labels, %d complete, %d to train (configuration %s)%s",
                    len(labels), len(labels) - len(missing), len(missing), name,
                    f", up to {plan.batch_size} per spark-submit" if plan.batch_size > 1 else "")
        return {"labels": labels, "features": features, "missing": missing, "config": name, "root": root,
                "batch_size": plan.batch_size, "plan": plan}

    def chosen_batch_size(self, missing: int, labels: list[str], root: Location) -> int:
        """Labels per spark-submit of :meth:`chosen_plan`."""
        return self.chosen_plan(missing, labels, root).batch_size

    def chosen_plan(self, missing: int, labels: list[str], root: Location) -> Plan:
        """``--batch-size`` N, or ``auto`` by the rule in :mod:`pipeline.runner.batching`:
        on a local master the fewest batches, each on its share of this machine's cores;
        on a cluster from the start-up and per-label seconds earlier runs of this
        configuration recorded in the log folder (local files: no storage requests)."""
        startups, per_label = [], []
        for label in labels[:64]:
            res = results.latest(self.log_dir, label)
            if res is None or res.status != "trained" or not str(res.artifact or "").startswith(str(root)):
                continue
            startups.append(res.startup_seconds)
            per_label.append(res.work_seconds)
        return self.batch_plan([missing], startups=startups, per_label=per_label,
                               fixed_size=parse_batch_size(self.batch_size))

    @property
    def summary_title(self) -> str:
        return str(self.plan["root"])

    def requires(self) -> list[TrainModel]:
        check_workers()  # before the exit summary is hooked: a refused run has nothing to sum up
        if not self.dry_run:  # a dry run has no exit summary
            install_controller_hooks(self)
        plan = self.plan
        if self.dry_run:
            self.print_plan(plan["plan"].describe())
            return []
        run_id = self.run_id or current_run_id()
        return start_in_order([self.clone(TrainModel, label=label, features=plan["features"], config=plan["config"],
                                          run_id=run_id, batch_limit=plan["batch_size"],
                                          local_cores=plan["plan"].cores_per_batch)
                               for label in plan["missing"]])

    def summary_rows(self) -> list[dict[str, object]]:
        """The per-label outcome of this task in this controller run."""
        labels = self.plan["labels"]
        done = completed_slugs(self.plan["root"])
        complete = {label for label in labels if label_slug(label) in done}
        return results.summarize(labels, self.run_id or current_run_id(), self.log_dir, complete)
