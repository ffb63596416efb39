"""Training engines. Each takes prepared Spark frames and returns what to save.

Frames hold ``__label__`` (0/1 double) and feature columns ``f0…fN``; the original
names travel in the metadata, so odd column names never reach Spark expressions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tasks.layout import NATIVE_MODEL

LABEL_COL = "__label__"


class EngineUnavailable(RuntimeError):
    """The engine cannot run in this job (e.g. SynapseML's jar is not on the classpath)."""


@dataclass
class TrainedModel:
    files: dict[str, bytes] = field(default_factory=dict)  # artifact-relative name → bytes
    spark_model: Any = None  # saved under layout.SPARK_MODEL when set
    metrics: dict[str, Any] = field(default_factory=dict)
    training_seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)


def evaluate(labels: Any, scores: Any, train_counts: tuple[int, int] | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The common metric set (:mod:`tasks.evaluation`) and ``curves.json`` for the artifact."""
    import json

    from tasks import evaluation

    metrics = evaluation.binary_metrics(labels, scores, train_counts=train_counts)
    curve_points = evaluation.curves(labels, scores)
    files = {evaluation.CURVES_FILE: json.dumps(curve_points, separators=(",", ":")).encode("utf-8")} if curve_points else {}
    return metrics, files


def _lightgbm_params(params: dict[str, Any], seed: int) -> dict[str, Any]:
    out = {k: v for k, v in params.items() if k != "num_iterations"}
    out.update(objective="binary", verbosity=-1, seed=seed, deterministic=True, force_row_wise=True)
    return out


def train_lightgbm(train_pd: Any, test_pd: Any, features: list[str], params: dict[str, Any], seed: int) -> TrainedModel:
    """Native LightGBM on the driver, on pandas frames: the balanced sample is small
    enough to collect, and one fast process beats spreading a small job over many cores."""
    import lightgbm as lgb

    started = time.perf_counter()
    booster = lgb.train(
        _lightgbm_params(params, seed),
        lgb.Dataset(train_pd[features], label=train_pd[LABEL_COL], free_raw_data=True),
        num_boost_round=params["num_iterations"],
    )
    elapsed = time.perf_counter() - started
    scores = booster.predict(test_pd[features]) if len(test_pd) else []
    y_train = train_pd[LABEL_COL]
    metrics, curve_files = evaluate(test_pd[LABEL_COL], scores, (len(y_train), int(y_train.sum())))
    return TrainedModel(
        files={NATIVE_MODEL: booster.model_to_string().encode("utf-8"), **curve_files},
        metrics=metrics,
        training_seconds=elapsed,
        versions={"lightgbm": lgb.__version__},
    )


def _spark_evaluation(model: Any, train_counts: tuple[int, int], test: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Score the validation rows in Spark, then collect (label, probability of class 1)
    to the driver and evaluate them with the same code as every other engine. Validation
    sets are a held-out share of one dataset: two doubles a row fit the driver easily
    (10 million rows: 160 MB). ``train_counts`` (rows, positives) the caller counted
    already: counting again would cost one more Spark action."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    scored = model.transform(test).select(F.col(LABEL_COL), vector_to_array(F.col("probability"))[1].alias("p"))
    pairs = scored.toPandas()
    return evaluate(pairs[LABEL_COL], pairs["p"], train_counts)


def train_mllib(engine: str, train: Any, test: Any, features: list[str], params: dict[str, Any], seed: int,
                train_counts: tuple[int, int]) -> TrainedModel:
    """Spark MLlib classifiers, distributed over the job's executors."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import GBTClassifier, LogisticRegression, MultilayerPerceptronClassifier
    from pyspark.ml.feature import VectorAssembler

    assembler = VectorAssembler(inputCols=features, outputCol="features", handleInvalid="keep")
    if engine == "mllib-gbt":
        clf = GBTClassifier(labelCol=LABEL_COL, maxIter=params["max_iter"], maxDepth=params["max_depth"],
                            stepSize=params["step_size"], seed=seed)
    elif engine == "mllib-logreg":
        clf = LogisticRegression(labelCol=LABEL_COL, maxIter=params["max_iter"], regParam=params["reg_param"],
                                 elasticNetParam=params["elastic_net_param"])
    else:
        layers = [len(features), *params["hidden_layers"], 2]
        clf = MultilayerPerceptronClassifier(labelCol=LABEL_COL, layers=layers, maxIter=params["max_iter"],
                                             stepSize=params["step_size"], seed=seed)
    started = time.perf_counter()
    model = Pipeline(stages=[assembler, clf]).fit(train)
    elapsed = time.perf_counter() - started
    metrics, curve_files = _spark_evaluation(model, train_counts, test)
    return TrainedModel(files=curve_files, spark_model=model, metrics=metrics, training_seconds=elapsed)


SYNAPSEML_CLASS = "com.microsoft.azure.synapse.ml.lightgbm.LightGBMClassifier"
SYNAPSEML_HINT = (
    "set [spark] packages=com.microsoft.azure:synapseml_2.12:1.1.3 (and [spark] conf "
    "spark.jars.repositories=https://mmlspark.azureedge.net/maven if your Maven mirror lacks it), "
    "or use --engine lightgbm"
)


def check_synapseml(spark: Any) -> None:
    """Fail fast, with the setting to change, when SynapseML's jar is not loaded."""
    try:
        spark._jvm.java.lang.Class.forName(SYNAPSEML_CLASS, False, spark._jvm.Thread.currentThread().getContextClassLoader())
    except Exception:  # py4j raises Py4JJavaError wrapping ClassNotFoundException
        raise EngineUnavailable(f"engine synapseml: SynapseML's jar is not on the job's classpath: {SYNAPSEML_HINT}") from None
    try:
        import synapse.ml.lightgbm  # noqa: F401
    except ImportError:
        raise EngineUnavailable(
            "engine synapseml: the Python package 'synapseml' is missing in the job's Python: pip install 'spark-fanout[synapseml]'"
        ) from None


def train_synapseml(spark: Any, train: Any, test: Any, features: list[str], params: dict[str, Any], seed: int,
                    train_counts: tuple[int, int]) -> TrainedModel:
    """SynapseML's LightGBMClassifier on Spark; also saves the native model string."""
    check_synapseml(spark)
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from synapse.ml.lightgbm import LightGBMClassifier

    clf = LightGBMClassifier(
        labelCol=LABEL_COL, objective="binary", numIterations=params["num_iterations"],
        learningRate=params["learning_rate"], numLeaves=params["num_leaves"],
        minDataInLeaf=params["min_data_in_leaf"], featureFraction=params["feature_fraction"],
        lambdaL2=params["lambda_l2"], seed=seed,
    )
    assembler = VectorAssembler(inputCols=features, outputCol="features", handleInvalid="keep")
    started = time.perf_counter()
    model = Pipeline(stages=[assembler, clf]).fit(train)
    elapsed = time.perf_counter() - started
    native = model.stages[-1].getNativeModel()
    metrics, curve_files = _spark_evaluation(model, train_counts, test)
    return TrainedModel(files={NATIVE_MODEL: native.encode("utf-8"), **curve_files}, spark_model=model,
                        metrics=metrics, training_seconds=elapsed)
