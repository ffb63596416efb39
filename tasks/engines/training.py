"""How any engine trains one label: class weights, the early-stopping slice, timing,
and the common evaluation on the validation rows. The engine record does the fitting.

Class weights (``--class-weight balanced``) are scikit-learn's "balanced" weights,
``rows / (2 * rows of the class)`` over the rows the model is fitted on, given to the
engine as sample weights (LightGBM and XGBoost datasets, an estimator's
``sample_weight``, MLlib's ``weightCol``). Early stopping, when the engine's parameters
ask for it, holds ``stopping_fraction`` of the *training* rows out to decide when to
stop; the validation rows stay for evaluation only.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.engines.base import LABEL_COL, WEIGHT_COL, DriverRows, Engine, SparkRows, TrainedModel

CLASS_WEIGHTS = ("none", "balanced")
DEFAULT_STOPPING_FRACTION = 0.1


@dataclass(frozen=True)
class Options:
    """Training settings that reach every engine alike (from the job spec)."""

    class_weight: str = "none"
    stopping_fraction: float = DEFAULT_STOPPING_FRACTION

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Options:
        return cls(class_weight=str(spec.get("class_weight") or "none"),
                   stopping_fraction=float(spec.get("stopping_fraction") or DEFAULT_STOPPING_FRACTION))


def evaluate(labels: Any, scores: Any, train_counts: tuple[int, int] | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The common metric set (:mod:`tasks.evaluation`) and ``curves.json`` for the artifact."""
    from tasks import evaluation

    metrics, curve_points = evaluation.metrics_and_curves(labels, scores, train_counts=train_counts)
    files = {evaluation.CURVES_FILE: json.dumps(curve_points, separators=(",", ":")).encode("utf-8")} if curve_points else {}
    return metrics, files


def balanced_weights(negatives: int, positives: int) -> dict[int, float]:
    """scikit-learn's "balanced" class weights: ``rows / (2 * rows of the class)``."""
    total = negatives + positives
    return {0: total / (2 * negatives) if negatives else 1.0, 1: total / (2 * positives) if positives else 1.0}


def imbalance_facts(engine: Engine, params: Mapping[str, Any], balance_ratio: float, weights: dict[int, float] | None) -> dict[str, Any]:
    """How the label's classes were balanced, for metadata.json."""
    out: dict[str, Any] = {"balance_ratio": float(balance_ratio), "class_weight": "balanced" if weights else "none"}
    if weights:
        out["weights"] = {str(c): round(w, 6) for c, w in weights.items()}
    native = {k: params[k] for k in engine.imbalance_params if k in params}
    if native:
        out["engine_params"] = native
    return out


def _stopping_mask(seed: int, label: str, rows: int, fraction: float) -> Any:
    """Which training rows decide when to stop: a seeded draw per label (as balancing's)."""
    import numpy as np

    rng = np.random.default_rng([(int(seed) + 1) & 0xFFFFFFFF, zlib.crc32(label.encode("utf-8"))])
    return rng.random(rows) < fraction


def train_on_driver(engine: Engine, train: Any, validation: Any, columns: list[str], params: dict[str, Any], seed: int,
                    label: str, options: Options) -> tuple[TrainedModel, dict[str, Any]]:
    """Fit a DRIVER engine on pandas rows; returns the model and the imbalance facts."""
    import numpy as np

    y = train[LABEL_COL].to_numpy(dtype="float64")
    x = train[columns]
    stop_x = stop_y = None
    rounds = engine.early_stopping_rounds(params)
    info: dict[str, Any] = {}
    if rounds > 0:
        stop = _stopping_mask(seed, label, len(y), options.stopping_fraction)
        if 0 < stop.sum() < len(y) and 0 < y[stop].sum() < stop.sum():  # both classes on both sides
            stop_x, stop_y, x, y = x[stop], y[stop], x[~stop], y[~stop]
        info["early_stopping"] = {"rounds": rounds, "stopping_rows": 0 if stop_y is None else int(len(stop_y)),
                                  "stopping_fraction": options.stopping_fraction}
    positives = int(y.sum())
    weights = balanced_weights(len(y) - positives, positives) if options.class_weight == "balanced" else None
    sample_weights = None if weights is None else np.where(y == 1.0, weights[1], weights[0])
    started = time.perf_counter()
    model, facts = engine.fit(DriverRows(x=x, y=y, weights=sample_weights, stop_x=stop_x, stop_y=stop_y,
                                         features=list(columns), params=params, seed=seed))
    files = engine.save(model)
    elapsed = time.perf_counter() - started
    if "early_stopping" in info:
        info["early_stopping"].update(facts)
    elif facts:
        info["training"] = facts
    scores = engine.predict(model, validation[columns].to_numpy(dtype="float64")) if len(validation) else []
    metrics, curve_files = evaluate(validation[LABEL_COL], scores, (len(y), positives))
    trained = TrainedModel(files={**files, **curve_files}, metrics=metrics, training_seconds=elapsed,
                           versions=engine.versions(), info=info)
    return trained, {"weights": weights}


def train_on_executors(engine: Engine, spark: Any, train: Any, validation: Any, columns: list[str], params: dict[str, Any],
                       seed: int, class_counts: dict[int, int], options: Options) -> tuple[TrainedModel, dict[str, Any]]:
    """Fit an EXECUTORS engine on Spark frames (``train`` cached by the caller); the
    validation rows are scored in Spark, then (label, probability) pairs are collected
    and evaluated by the same code as every other engine's. Validation sets are a
    held-out share of one dataset: two doubles a row fit the driver easily."""
    from pyspark.sql import functions as F

    weights = balanced_weights(class_counts[0], class_counts[1]) if options.class_weight == "balanced" else None
    if weights is not None:
        train = train.withColumn(WEIGHT_COL, F.when(F.col(LABEL_COL) == 1.0, F.lit(weights[1])).otherwise(F.lit(weights[0])))
    started = time.perf_counter()
    model, files, facts = engine.fit_spark(SparkRows(spark=spark, train=train, features=list(columns), params=params,
                                                     seed=seed, weight_col=WEIGHT_COL if weights else None))
    elapsed = time.perf_counter() - started
    pairs = engine_scores(engine, model, validation, columns).toPandas()
    metrics, curve_files = evaluate(pairs[LABEL_COL], pairs["p"], (class_counts[0] + class_counts[1], class_counts[1]))
    trained = TrainedModel(files={**files, **curve_files}, spark_model=model, metrics=metrics, training_seconds=elapsed,
                           versions=engine.versions(), info={"training": facts} if facts else {})
    return trained, {"weights": weights}


def engine_scores(engine: Engine, model: Any, frame: Any, columns: list[str]) -> Any:
    """(LABEL_COL, p) of ``frame`` scored by a Spark-trained model."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    if engine.scores_in_python:
        # Its Spark model still scores the validation rows in Spark (the pipeline's own columns).
        scored = model.transform(frame)
        return scored.select(F.col(LABEL_COL), vector_to_array(F.col("probability"))[1].alias("p"))
    return engine.spark_probability(model, frame, columns, "p").select(LABEL_COL, "p")
