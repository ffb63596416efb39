"""``Predict``: the combined multi-label classifier. One Spark job scores a dataset with
every chosen label model and writes one probability column per label, plus the row key.

``luigi --module pipeline Predict --data D --models M --out O [--config lightgbm-1a2b3c4d]``

Models: the best per label of ``<models>/leaderboard.json`` (``TuneAll``'s), or every
label of the configurations ``--config`` names (one or several, no label in two);
``--labels`` narrows either. Any mix of engines: each label's engine record says how
its model is applied (broadcast to the executors, or a Spark ML model applied in the
same job). The output is committed like a
RunScripts output: Spark writes a temporary sibling, the controller renames it into
place once ``_SUCCESS`` is there, with a record of what it was computed from (the
dataset's fingerprint, each model's configuration and application, the key columns):
``--out`` is complete or absent, and a rerun with other inputs recomputes and replaces
it. An ``--out`` spark-fanout did not make is refused.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import tasks
from pipeline.data import leaderboard as board
from pipeline.data.artifacts import ArtifactTarget, artifact_location, completed_slugs
from pipeline.data.datasets import data_identity, read_schema
from pipeline.data.outputs import OwnedOutput
from pipeline.data.reports import read_report
from pipeline.data.results import current_run_id
from pipeline.errors import ConfigError, DatasetError, JobFailed
from pipeline.params import OptionalListParameter, Parameter
from pipeline.runner.batching import check_workers
from pipeline.runner.job import SparkJob
from pipeline.storage import storage_for
from pipeline.storage.locations import Location, first_overlap, parse_location
from tasks.engines import EngineParamError, get_engine
from tasks.jobspec import SPEC_FLAG, encode_spec
from tasks.layout import SPARK_MODEL
from tasks.outputs import SUCCESS

logger = logging.getLogger("luigi-interface")

MODELS_FILE = "_models.json"  # which model scored which column; Spark and pyarrow skip "_" files


def choose_models(models: Location, configs: list[str] | None, labels: list[str] | None) -> list[dict[str, Any]]:
    """``[{"label", "config", "artifact": Location}]``: the leaderboard's rank-1 row per
    label, or every complete label of each of ``configs``; refused in one line when
    nothing fits or two configurations hold one label."""
    if configs:
        chosen = []
        source: dict[str, str] = {}
        for config in configs:
            root = models.join(config)
            done = completed_slugs(root)
            if not done:
                raise ConfigError(f"configuration {config} under {models} has no complete artifact: train it or fix --config")
            for slug in sorted(done):
                meta = ArtifactTarget(root.join(slug)).metadata()
                if meta["label"] in source and (labels is None or meta["label"] in labels):
                    raise ConfigError(f"label {meta['label']!r} is in configurations {source[meta['label']]} and {config}: "
                                      "name one of them in --config, or narrow --labels")
                source[meta["label"]] = config
                chosen.append({"label": meta["label"], "config": config, "artifact": root.join(slug)})
    else:
        report = read_report(models, board.LEADERBOARD)
        if report is None:
            raise ConfigError(f"no {board.LEADERBOARD}.json under {models}: run TuneAll first, or pass --config")
        chosen = [{"label": r["label"], "config": r["config"], "artifact": artifact_location(models.join(r["config"]), r["label"])}
                  for r in board.best_per_label(report["rows"]).values()]
    if labels is not None:
        known = {c["label"] for c in chosen}
        missing = [la for la in labels if la not in known]
        if missing:
            raise ConfigError(f"label {missing[0]!r} has no chosen model under {models}: check --labels")
        chosen = [c for c in chosen if c["label"] in labels]
    return sorted(chosen, key=lambda c: c["label"])


class Predict(OwnedOutput, SparkJob):
    """Score ``--data`` with each chosen label's model in one spark-submit job."""

    data = Parameter(example="new.parquet", description="Parquet dataset to score: local path, file://, hdfs:// or webhdfs://")
    models = Parameter(default="models", description="Artifact root the models come from")
    out = Parameter(example="scores", description="Output Parquet folder: key columns plus one probability column per label")
    config = OptionalListParameter(default=None, example="lightgbm-3f2a91c0", description="Use every label of these "
                                   "configurations (a,b or a JSON list; default: the best per label in "
                                   "<models>/leaderboard.json)")
    labels = OptionalListParameter(default=None, example="label_00,label_01", description="Only these labels (a,b or a JSON list)")
    key = OptionalListParameter(default=None, example="customer_id", description="Row key columns copied to the output (a,b or a "
                                "JSON list); default: row_hash, a 64-bit hash of the whole row")

    unit = "prediction"
    success_status = "scored"
    result_group = "predict"
    name_prefix = "predict"
    marker_kind = "predict"

    @property
    def job_name(self) -> str:
        return Path(self.out_location.path).name or "predict"

    @property
    def app(self) -> str:
        return str(Path(tasks.__file__).resolve().parent / "predict.py")

    @cached_property
    def chosen(self) -> list[dict[str, Any]]:
        """Each chosen model with its features, checked against the dataset."""
        chosen = choose_models(parse_location(self.models), None if self.config is None else list(self.config),
                               None if self.labels is None else list(self.labels))
        schema = read_schema(self.data)
        keys = list(self.key or [])
        for k in keys:
            if k not in schema.columns:
                raise DatasetError(f"key column {k!r} is not a column of {self.data}: fix --key")
        out = []
        for c in chosen:
            target = ArtifactTarget(c["artifact"])
            meta = target.metadata()
            try:
                engine = get_engine(meta["engine"])
            except EngineParamError as exc:
                raise ConfigError(f"label {c['label']!r}: its model ({c['config']}) cannot be scored here: {exc}") from None
            needed = list(engine.model_files) if engine.scores_in_python else [SPARK_MODEL]
            lacking = [name for name in needed if not target.storage.exists(c["artifact"].join(name))]
            if lacking:
                raise ConfigError(f"label {c['label']!r}: its model ({meta['engine']}, {c['config']}) lacks {lacking[0]}: "
                                  "retrain that configuration")
            missing = [f for f in meta["features"] if f not in schema.columns]
            if missing:
                raise DatasetError(f"feature {missing[0]!r} of label {c['label']!r}'s model is not a column of {self.data}")
            odd = [f for f in meta["features"] if f in schema.facts and not schema.facts[f].numeric]
            if odd:
                raise DatasetError(f"feature {odd[0]!r} of label {c['label']!r}'s model is a {schema.facts[odd[0]].type} column "
                                   f"in {self.data}, not numeric: score data with the columns' training types")
            if c["label"] in keys:
                raise ConfigError(f"label {c['label']!r} is also a --key column: its score column would replace it")
            out.append({"label": c["label"], "config": c["config"], "engine": meta["engine"],
                        "artifact_uri": c["artifact"].uri(), "features": list(meta["features"]), "artifact": target.path,
                        "application_id": meta.get("application_id"), "created_at": meta.get("created_at")})
        if not out:
            raise ConfigError(f"no model chosen under {self.models}: check --labels")
        return out

    def output_identity(self) -> dict[str, Any]:
        """The dataset (path and fingerprint), each chosen model exactly (its artifact and
        the application that trained it) and the key columns."""
        return {"data": parse_location(self.data).uri(), "data_fingerprint": data_identity(self.data, self.run_id or current_run_id()),
                "key": list(self.key or []),
                "models": [{k: m[k] for k in ("label", "config", "artifact", "application_id", "created_at")}
                           for m in self.chosen]}

    def complete(self) -> bool:
        """Done once the output is committed. Until then, what :meth:`preflight` refuses is
        refused here, while Luigi schedules (exit code [retcode] scheduling_error, as for
        every other task's bad input), not after the task started."""
        if super().complete():
            return True
        check_workers()
        self.preflight()
        return False

    def preflight(self) -> None:
        overlap = first_overlap([("--out", self.out_location), ("--data", parse_location(self.data)),
                                 ("--models", parse_location(self.models))])
        if overlap and "--out" in overlap:
            other = overlap[0] if overlap[1] == "--out" else overlap[1]
            raise ConfigError(f"--out {self.out} and {other} overlap (one lies inside the other): write the scores "
                              f"to a folder of their own")
        self.refuse_foreign_output()
        _ = self.chosen
        if self.on_yarn and self.out_location.is_local:
            raise ConfigError(f"--out {self.out} is a local path but the job runs on YARN nodes: use an hdfs:// path")

    def app_options(self) -> list[str]:
        spec = {"data": parse_location(self.data).uri(), "out": self.out_location.uri(), "temp": self.temp_location.uri(),
                "key": list(self.key or []), "run_id": self.run_id or current_run_id(),
                "models": [{k: m[k] for k in ("label", "engine", "artifact_uri", "features")} for m in self.chosen]}
        return [SPEC_FLAG, encode_spec(spec)]

    def before_submit(self) -> None:
        if not self.claim_output(self.state, self.status_message):
            self.done_elsewhere(self.job_name)

    def after_success(self) -> None:
        storage = storage_for(self.out_location)
        if not storage.exists(self.temp_location.join(SUCCESS)):
            raise JobFailed(f"{self.title}: the job ended without {SUCCESS} in {self.temp_location}")
        storage.write_bytes(self.temp_location.join(MODELS_FILE),
                            json.dumps(self.models_table(), indent=1, ensure_ascii=False).encode("utf-8"))
        if not self.commit_output():
            self.done_elsewhere(self.job_name)

    def models_table(self) -> list[dict[str, Any]]:
        """Which model scored which column (also in ``<out>/_models.json``)."""
        return [{k: m[k] for k in ("label", "engine", "config", "artifact")} | {"column": m["label"], "output": self.out}
                for m in self.chosen]
