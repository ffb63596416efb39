"""scikit-learn estimators named by import path, trained on the job's driver.

``--engine sklearn:sklearn.ensemble.HistGradientBoostingClassifier``: any classifier
with scikit-learn's API (``get_params``, ``fit``, ``predict_proba``), e.g. also
``sklearn:lightgbm.LGBMClassifier``. Its parameters are the estimator's own
(``get_params``), checked by the estimator itself: it is fitted on a few random rows
before any job starts. ``random_state`` comes from ``--seed``. The fitted estimator
is saved with pickle (``model.pkl``): load artifacts only from a models root you trust,
as for any pickle.
"""

from __future__ import annotations

import importlib
import pickle  # noqa: S403 - artifacts are written by spark-fanout's own jobs (see module docstring)
import threading
import warnings
from collections.abc import Collection, Mapping
from functools import cached_property
from typing import Any

from tasks.engines.base import DRIVER, DriverRows, Engine, EngineParamError, one_line, suggestion

PREFIX = "sklearn:"
MODEL_FILE = "model.pkl"

_lock = threading.Lock()


def estimator_class(path: str) -> type:
    """The class at ``module.Class``; refused in one line naming what is wrong."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name or not class_name:
        raise EngineParamError(f"engine {PREFIX}{path}: name a class by its import path, "
                               f"e.g. {PREFIX}sklearn.ensemble.HistGradientBoostingClassifier")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineParamError(f"engine {PREFIX}{path}: cannot import {module_name} ({one_line(str(exc))}): "
                               "install it or fix the import path") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        classes = [n for n, v in vars(module).items() if isinstance(v, type) and hasattr(v, "predict_proba")]
        raise EngineParamError(f"engine {PREFIX}{path}: {module_name} has no class {class_name!r}{suggestion(class_name, classes)}")
    missing = [m for m in ("get_params", "fit", "predict_proba") if not hasattr(cls, m)]
    if missing:
        raise EngineParamError(f"engine {PREFIX}{path}: {class_name} has no {missing[0]}(): name a scikit-learn "
                               "classifier that predicts probabilities")
    return cls


class SklearnEngine(Engine):
    """One scikit-learn estimator class; the registry makes one per ``sklearn:`` name."""

    trains_on = DRIVER
    model_files = (MODEL_FILE,)
    requires = (("sklearn", "pip install scikit-learn"),)
    imbalance_params = ("class_weight",)
    params_doc = "the estimator's get_params()"

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = PREFIX + path
        self.cls = estimator_class(path)
        self.description = f"scikit-learn's {self.cls.__name__} on the job's driver"

    @property
    def ranks_features(self) -> bool:  # type: ignore[override]
        return hasattr(self.cls, "feature_importances_")

    @property
    def folder(self) -> str:
        return f"sklearn-{self.cls.__name__}"

    def versions(self) -> dict[str, str]:
        import sklearn

        out = {"scikit-learn": sklearn.__version__}
        root = self.cls.__module__.split(".")[0]
        version = getattr(importlib.import_module(root), "__version__", None)
        if version and root != "sklearn":
            out[root] = str(version)
        return out

    @cached_property
    def _defaults(self) -> dict[str, Any]:
        return self.cls().get_params(deep=False)

    def param_names(self) -> Collection[str]:
        return self._defaults

    def refused_param(self, name: str) -> str | None:
        return "set by --seed" if name == "random_state" else None

    def param_kind(self, name: str) -> type | None:
        default = self._defaults.get(name)
        if isinstance(default, bool):
            return bool
        if isinstance(default, (int, float)):
            return type(default)
        return None

    def coerce(self, name: str, value: Any, where: str) -> Any:
        if self.param_kind(name) is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    def _estimator(self, params: Mapping[str, Any], seed: int) -> Any:
        extra = {"random_state": seed} if "random_state" in self._defaults else {}
        return self.cls(**params, **extra)

    def library_check(self, params: Mapping[str, Any], n_features: int) -> str | None:
        import numpy as np

        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((64, max(1, n_features))), (np.arange(64) % 2).astype("float64")
        try:
            with _lock, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = self._estimator(params, 0).fit(x, y)
                model.predict_proba(x[:2])
        except Exception as exc:  # the estimator's own validation: ValueError, TypeError, AttributeError, …
            return f"{self.cls.__name__} refuses the parameters {dict(params)}: {type(exc).__name__}: {one_line(str(exc))}"
        return None

    @property
    def weighs_classes(self) -> bool:
        from sklearn.utils.validation import has_fit_parameter

        return has_fit_parameter(self.cls, "sample_weight")

    # --- training -----------------------------------------------------------------------
    def fit(self, rows: DriverRows) -> tuple[Any, dict[str, Any]]:
        model = self._estimator(rows.params, rows.seed)
        extra = {"sample_weight": rows.weights} if rows.weights is not None else {}
        model.fit(rows.x.to_numpy(dtype="float64"), rows.y, **extra)
        info = {"n_iter": int(model.n_iter_)} if isinstance(getattr(model, "n_iter_", None), int) else {}
        return model, info

    def save(self, model: Any) -> dict[str, bytes]:
        return {MODEL_FILE: pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)}

    # --- scoring --------------------------------------------------------------------------
    def load(self, files: Mapping[str, bytes]) -> Any:
        return pickle.loads(files[MODEL_FILE])  # noqa: S301 - see the module docstring

    def predict(self, model: Any, x: Any) -> Any:
        positive = list(model.classes_).index(1.0)
        return model.predict_proba(x)[:, positive]

    def feature_importance(self, model: Any) -> list[float] | None:
        values = getattr(model, "feature_importances_", None)
        return None if values is None else [float(v) for v in values]
