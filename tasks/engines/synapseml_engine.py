"""SynapseML's LightGBMClassifier on the Spark executors, with LightGBM's parameters.

It takes LightGBM's names (the same table as native LightGBM): the ones SynapseML has
a setter for go to their setters, every other one through ``passThroughArgs``. It
saves the Spark model and the native LightGBM model string; Predict scores the latter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.engines.base import EXECUTORS, LABEL_COL, EngineUnavailable, SparkRows
from tasks.engines.lightgbm_engine import LIGHTGBM_DEFAULTS, LightGBMEngine, lightgbm_params
from tasks.layout import NATIVE_MODEL

SYNAPSEML_CLASS = "com.microsoft.azure.synapse.ml.lightgbm.LightGBMClassifier"
SYNAPSEML_HINT = (
    "set [spark] packages=com.microsoft.azure:synapseml_2.12:1.1.3 (and [spark] conf "
    "spark.jars.repositories=https://mmlspark.azureedge.net/maven if your Maven mirror lacks it), "
    "or use --engine lightgbm"
)
#: LightGBM names with a SynapseML setter of their own.
_SETTERS = {"num_iterations": "numIterations", "learning_rate": "learningRate", "num_leaves": "numLeaves",
            "min_data_in_leaf": "minDataInLeaf", "feature_fraction": "featureFraction", "lambda_l2": "lambdaL2"}


class SynapseMLEngine(LightGBMEngine):
    name = "synapseml"
    description = "SynapseML's LightGBMClassifier on the Spark executors (LightGBM's parameters)"
    trains_on = EXECUTORS
    saves_spark_model = True
    model_files = (NATIVE_MODEL,)
    requires = (("synapse.ml.lightgbm", "pip install 'spark-fanout[synapseml]'"),)
    defaults = {k: v for k, v in LIGHTGBM_DEFAULTS.items() if k != "num_threads"}
    ranks_features = False  # FeatureSweep's baseline for it stays native LightGBM, as it always was

    def versions(self) -> dict[str, str]:
        return {}

    def refused_param(self, name: str) -> str | None:
        if name == "num_threads":
            return "SynapseML sets LightGBM's threads per executor task"
        if name == "early_stopping_round":
            return "early stopping is not wired for synapseml here: use --engine lightgbm"
        return super().refused_param(name)

    def early_stopping_rounds(self, params: Mapping[str, Any]) -> int:
        return 0

    def missing_setting(self, packages: list[str]) -> str | None:
        if "synapseml" not in ",".join(packages):
            return f"engine synapseml needs SynapseML's jar: {SYNAPSEML_HINT}"
        return None

    def check_job(self, spark: Any) -> None:
        """Fail fast, with the setting to change, when SynapseML's jar is not loaded."""
        try:
            spark._jvm.java.lang.Class.forName(SYNAPSEML_CLASS, False, spark._jvm.Thread.currentThread().getContextClassLoader())
        except Exception:  # py4j raises Py4JJavaError wrapping ClassNotFoundException
            raise EngineUnavailable(f"engine synapseml: SynapseML's jar is not on the job's classpath: {SYNAPSEML_HINT}") from None
        super().check_job(spark)

    def fit(self, rows: Any) -> tuple[Any, dict[str, Any]]:
        raise NotImplementedError("synapseml trains on Spark executors")

    def fit_spark(self, rows: SparkRows) -> tuple[Any, dict[str, bytes], dict[str, Any]]:
        from pyspark.ml import Pipeline
        from pyspark.ml.feature import VectorAssembler
        from synapse.ml.lightgbm import LightGBMClassifier

        native = lightgbm_params(rows.params, rows.seed)
        settings = {setter: native.pop(name) for name, setter in _SETTERS.items() if name in native}
        native.pop("num_iterations", None)
        objective = native.pop("objective")
        passed = " ".join(f"{k}={_lightgbm_value(v)}" for k, v in sorted(native.items()) if k not in ("seed", "verbosity"))
        clf = LightGBMClassifier(labelCol=LABEL_COL, featuresCol="features", objective=objective, seed=rows.seed,
                                 passThroughArgs=passed, **settings,
                                 **({"weightCol": rows.weight_col} if rows.weight_col else {}))
        assembler = VectorAssembler(inputCols=rows.features, outputCol="features", handleInvalid="keep")
        model = Pipeline(stages=[assembler, clf]).fit(rows.train)
        return model, {NATIVE_MODEL: model.stages[-1].getNativeModel().encode("utf-8")}, {}


def _lightgbm_value(value: Any) -> str:
    """A value as LightGBM's own parameter strings write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_lightgbm_value(v) for v in value)
    return str(value)
