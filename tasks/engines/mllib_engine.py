"""Spark MLlib classifiers, trained on the job's executors, each with its own parameters.

The parameters are the estimator's: pyspark declares each as a class attribute (a
``Param`` with a type converter), read here without starting a JVM. They are written
in snake_case (``max_iter``; MLlib's ``maxIter`` is accepted too). Value ranges (e.g.
``reg_param >= 0``) are Spark's own checks, made in the JVM: inside the job.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Collection, Mapping
from functools import cached_property
from typing import Any

from tasks.engines.base import EXECUTORS, LABEL_COL, Engine, EngineParamError, Param, SparkRows, check_number

_CONVERTERS = {"toInt": int, "toFloat": float, "toBoolean": bool, "toString": str, "toListInt": list,
               "toListFloat": list, "toListString": list}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def pipeline_probability(model: Any, frame: Any, columns: list[str], out: str) -> Any:
    """Apply a saved ``[VectorAssembler, classifier]`` pipeline to ``columns`` of
    ``frame`` and add the probability of class 1 as ``out``; every column it makes is
    named after ``out``, so several models apply to one frame."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    vec, prob, raw, pred = (f"{out}__{part}" for part in ("features", "probability", "raw", "prediction"))
    assembler = model.stages[0].copy().setInputCols(list(columns)).setOutputCol(vec)
    clf = model.stages[-1].copy()
    clf.setFeaturesCol(vec).setProbabilityCol(prob).setRawPredictionCol(raw).setPredictionCol(pred)
    scored = clf.transform(assembler.transform(frame))
    return scored.withColumn(out, vector_to_array(F.col(prob))[1]).drop(vec, prob, raw, pred)


class MLlibEngine(Engine):
    """One ``pyspark.ml.classification`` estimator in a ``[VectorAssembler, estimator]`` pipeline."""

    trains_on = EXECUTORS
    saves_spark_model = True
    requires = (("pyspark", "pip install pyspark"),)
    params_doc = "https://spark.apache.org/docs/latest/api/python/reference/pyspark.ml.html#classification"
    defaults_are_valid = True

    def __init__(self, name: str, estimator: str, description: str, defaults: Mapping[str, Param]) -> None:
        self.name, self.estimator, self.description, self.defaults = name, estimator, description, dict(defaults)

    def versions(self) -> dict[str, str]:
        return {}  # Spark's version is recorded for every job

    @cached_property
    def cls(self) -> type:
        module, _, name = self.estimator.rpartition(".")
        return getattr(importlib.import_module(module), name)

    @cached_property
    def _params(self) -> dict[str, Any]:
        """snake_case name -> pyspark Param, read from the class (no JVM)."""
        from pyspark.ml.param import Param as SparkParam

        found = {n: getattr(self.cls, n) for n in dir(self.cls) if isinstance(getattr(self.cls, n, None), SparkParam)}
        return {snake(n): p for n, p in found.items()}

    def param_names(self) -> Collection[str]:
        names = set(self._params) | {p.name for p in self._params.values()} | set(self.defaults)
        return names

    def canonical_name(self, name: str) -> str | None:
        if name in self.defaults or name in self._params:
            return name
        main = snake(name)
        return main if main in self._params and self._params[main].name == name else None

    def refused_param(self, name: str) -> str | None:
        if name.endswith("_col"):
            return "a column of spark-fanout's own (features, label, weights and scores are its to name)"
        if name == "seed":
            return "set by --seed"
        if name == "layers" and "hidden_layers" in self.defaults:
            return "give hidden_layers: the input and output layers come from the features and the two classes"
        if name in self._params and self._kind_of(name) is None:
            return "takes a Spark vector or matrix, which a JSON value cannot be"
        return None

    def _kind_of(self, name: str) -> type | None:
        return _CONVERTERS.get(getattr(self._params[name].typeConverter, "__name__", ""))

    def param_kind(self, name: str) -> type | None:
        if name in self.defaults:
            return self.defaults[name].kind
        return self._kind_of(name) if name in self._params else None

    def coerce(self, name: str, value: Any, where: str) -> Any:
        if name == "hidden_layers":
            if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
                raise EngineParamError(f"{where}: expected a non-empty list of positive integers, e.g. [16, 8]")
            return value
        p = self.defaults.get(name)
        kind = self.param_kind(name)
        if kind in (int, float):
            return check_number(where, kind, value, p.low if p else None, p.high if p else None)
        try:
            converted = self._params[name].typeConverter(value)
        except (TypeError, ValueError) as exc:
            raise EngineParamError(f"{where}: {exc}") from None
        return list(converted) if isinstance(converted, (list, tuple)) else converted

    @property
    def weighs_classes(self) -> bool:
        return "weight_col" in self._params

    # --- training -----------------------------------------------------------------------
    def fit_spark(self, rows: SparkRows) -> tuple[Any, dict[str, bytes], dict[str, Any]]:
        from pyspark.ml import Pipeline
        from pyspark.ml.feature import VectorAssembler

        settings = {camel(k): v for k, v in rows.params.items() if k != "hidden_layers"}
        if "hidden_layers" in rows.params:
            settings["layers"] = [len(rows.features), *rows.params["hidden_layers"], 2]
        if "seed" in self._params:
            settings["seed"] = rows.seed
        if rows.weight_col is not None:
            settings["weightCol"] = rows.weight_col
        assembler = VectorAssembler(inputCols=rows.features, outputCol="features", handleInvalid="keep")
        clf = self.cls(labelCol=LABEL_COL, featuresCol="features", **settings)
        return Pipeline(stages=[assembler, clf]).fit(rows.train), {}, {}

    # --- scoring --------------------------------------------------------------------------
    def spark_probability(self, model: Any, frame: Any, columns: list[str], out: str) -> Any:
        return pipeline_probability(model, frame, columns, out)


MLLIB_ENGINES = {
    "mllib-gbt": ("pyspark.ml.classification.GBTClassifier", "Spark MLlib gradient-boosted trees on the executors", {
        "max_iter": Param(int, 20, 1, 10000),
        "max_depth": Param(int, 5, 1, 30),
        "step_size": Param(float, 0.1, 1e-6, 1.0),
    }),
    "mllib-logreg": ("pyspark.ml.classification.LogisticRegression", "Spark MLlib logistic regression on the executors", {
        "max_iter": Param(int, 100, 1, 100000),
        "reg_param": Param(float, 0.0, 0.0, None),
        "elastic_net_param": Param(float, 0.0, 0.0, 1.0),
    }),
    "mllib-mlp": ("pyspark.ml.classification.MultilayerPerceptronClassifier", "Spark MLlib multilayer perceptron on the executors", {
        "max_iter": Param(int, 100, 1, 100000),
        "hidden_layers": Param(list, [16]),
        "step_size": Param(float, 0.03, 1e-6, 10.0),
    }),
}


def mllib_engine(name: str) -> MLlibEngine:
    estimator, description, defaults = MLLIB_ENGINES[name]
    return MLlibEngine(name, estimator, description, defaults)
