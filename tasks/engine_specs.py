"""The training engines and the parameters each accepts.

Pure data and checks, imported both by the controller (to refuse a bad parameter before
a JVM starts) and by the job (to fill in defaults). Nothing here imports Spark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    kind: type
    default: Any
    low: float | None = None  # inclusive bounds, None = unbounded
    high: float | None = None
    doc: str = ""


_LGBM = {
    "num_iterations": Param(int, 100, 1, 100000, "boosting rounds"),
    "learning_rate": Param(float, 0.1, 1e-6, 1.0, "shrinkage"),
    "num_leaves": Param(int, 31, 2, 131072, "leaves per tree"),
    "min_data_in_leaf": Param(int, 20, 1, None, "minimum rows per leaf"),
    "feature_fraction": Param(float, 1.0, 1e-6, 1.0, "columns sampled per tree"),
    "lambda_l2": Param(float, 0.0, 0.0, None, "L2 regularisation"),
    "num_threads": Param(int, 1, 0, 1024, "threads (0 = all cores)"),
}

ENGINES: dict[str, dict[str, Param]] = {
    # native LightGBM on the job's driver: fast single-process training for small data
    "lightgbm": _LGBM,
    # SynapseML's LightGBMClassifier on Spark executors; needs its jar ([spark] packages)
    "synapseml": {k: v for k, v in _LGBM.items() if k != "num_threads"},
    "mllib-gbt": {
        "max_iter": Param(int, 20, 1, 10000, "boosting rounds"),
        "max_depth": Param(int, 5, 1, 30, "tree depth"),
        "step_size": Param(float, 0.1, 1e-6, 1.0, "learning rate"),
    },
    "mllib-logreg": {
        "max_iter": Param(int, 100, 1, 100000, "optimiser iterations"),
        "reg_param": Param(float, 0.0, 0.0, None, "regularisation strength"),
        "elastic_net_param": Param(float, 0.0, 0.0, 1.0, "L1/L2 mix"),
    },
    "mllib-mlp": {
        "max_iter": Param(int, 100, 1, 100000, "optimiser iterations"),
        "hidden_layers": Param(list, [16], None, None, "sizes of the hidden layers"),
        "step_size": Param(float, 0.03, 1e-6, 10.0, "learning rate"),
    },
}

DEFAULT_ENGINE = "lightgbm"


class EngineParamError(ValueError):
    """An engine name or parameter is not acceptable; the message says which and why."""


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise EngineParamError(f"unknown engine {engine!r}: choose one of {', '.join(sorted(ENGINES))}")
    return engine


def resolve_params(engine: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults of ``engine`` overlaid with ``given``, each value checked for type and range."""
    spec = ENGINES[check_engine(engine)]
    given = dict(given or {})
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise EngineParamError(
            f"unknown parameter {unknown[0]!r} for engine {engine}: known ones are {', '.join(sorted(spec))}"
        )
    out = {name: p.default for name, p in spec.items()}
    for name, value in given.items():
        out[name] = _check_value(engine, name, spec[name], value)
    return out


def _check_value(engine: str, name: str, p: Param, value: Any) -> Any:
    where = f"parameter {name}={value!r} for engine {engine}"
    if p.kind is list:
        if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise EngineParamError(f"{where}: expected a non-empty list of positive integers, e.g. [16, 8]")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EngineParamError(f"{where}: expected a number ({p.kind.__name__})")
    if p.kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise EngineParamError(f"{where}: expected a whole number")
        value = int(value)
    else:
        value = float(value)
    if value != value:  # NaN
        raise EngineParamError(f"{where}: NaN is not allowed")
    if p.low is not None and value < p.low or p.high is not None and value > p.high:
        bounds = f"[{p.low if p.low is not None else '-inf'}, {p.high if p.high is not None else 'inf'}]"
        raise EngineParamError(f"{where}: must lie in {bounds}")
    return value
