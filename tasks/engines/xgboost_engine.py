"""XGBoost on the job's driver: every parameter XGBoost accepts for a binary:logistic booster.

The names are read from the installed XGBoost: the full configuration it saves for a
booster of each kind (gbtree, dart, gblinear) lists every parameter it knows, under its
``*_param`` sections; the values are checked by XGBoost itself, training one round on
a few random rows before any job starts. ``num_boost_round`` (alias ``n_estimators``)
and ``early_stopping_rounds`` are ``xgboost.train``'s own arguments.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Collection, Mapping
from functools import cached_property
from typing import Any

from tasks.engines.base import (
    DRIVER,
    DriverRows,
    Engine,
    EngineParamError,
    Param,
    library_refusal,
    one_line,
    tiny_rows,
)

MODEL_FILE = "model.json"

XGBOOST_DEFAULTS = {
    "num_boost_round": Param(int, 100),
    "nthread": Param(int, 1),  # labels train side by side on the driver's cores
}
#: ``xgboost.train`` arguments and learner settings that its saved configuration does not list.
_TRAIN_ARGUMENTS = {"num_boost_round": int, "early_stopping_rounds": int, "eval_metric": None, "verbosity": int}
_ALIASES = {"n_estimators": "num_boost_round", "num_round": "num_boost_round"}
_SET_BY_JOB = {
    "seed": "set by --seed",
    "random_state": "set by --seed",
    "num_class": "a binary model has one score: leave it out",
    "num_feature": "set from --features",
    "num_target": "a binary model has one target: leave it out",
    "num_trees": "the number of rounds is num_boost_round",
}

_lock = threading.Lock()


def _param_sections(node: Any, found: set[str]) -> None:
    """Every key of every ``*_param`` section of a saved XGBoost configuration."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_param") and isinstance(value, dict):
                found.update(k for k, v in value.items() if not isinstance(v, (dict, list)))
            _param_sections(value, found)
    elif isinstance(node, list):
        for item in node:
            _param_sections(item, found)


class XGBoostEngine(Engine):
    name = "xgboost"
    description = "XGBoost on the job's driver (every XGBoost parameter)"
    trains_on = DRIVER
    model_files = (MODEL_FILE,)
    requires = (("xgboost", "pip install 'spark-fanout[xgboost]'"),)
    defaults = XGBOOST_DEFAULTS
    imbalance_params = ("scale_pos_weight", "max_delta_step")
    params_doc = "https://xgboost.readthedocs.io/en/stable/parameter.html"
    defaults_are_valid = True
    ranks_features = True

    def versions(self) -> dict[str, str]:
        import xgboost

        return {"xgboost": xgboost.__version__}

    @cached_property
    def _library_names(self) -> dict[str, str]:
        """Every parameter name XGBoost's saved configurations list -> a booster that has it."""
        import xgboost

        x, y = tiny_rows(2)
        found: dict[str, str] = {}
        with _lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for booster in ("gbtree", "dart", "gblinear"):
                model = xgboost.train({"objective": "binary:logistic", "booster": booster, "nthread": 1},
                                      xgboost.DMatrix(x, label=y), num_boost_round=1)
                names: set[str] = set()
                _param_sections(json.loads(model.save_config()), names)
                for name in names:
                    found.setdefault(name, booster)  # the first booster that knows it
        return found

    def param_names(self) -> Collection[str]:
        return set(self.learned_kinds()) | set(_ALIASES)

    def canonical_name(self, name: str) -> str | None:
        return _ALIASES.get(name, name) if name in self.param_names() else None

    def refused_param(self, name: str) -> str | None:
        return _SET_BY_JOB.get(name)

    def library_kinds(self) -> dict[str, type | None]:
        """A parameter XGBoost takes 0.5 for is real-valued; one it refuses as "expect
        int" whole; any other refusal: neither (a choice of names)."""
        kinds: dict[str, type | None] = dict(_TRAIN_ARGUMENTS)
        for name, booster in self._library_names.items():
            if name in kinds:
                continue
            error = None if name in _SET_BY_JOB else self._refusal({"booster": booster, name: 0.5}, 2)
            kinds[name] = float if error is None else int if "expect int" in error else None
        return kinds

    def param_kind(self, name: str) -> type | None:
        return _TRAIN_ARGUMENTS[name] if name in _TRAIN_ARGUMENTS else super().param_kind(name)

    def table_key(self) -> str | None:
        import xgboost

        return f"xgboost-{xgboost.__version__}"

    def coerce(self, name: str, value: Any, where: str) -> Any:
        if name == "objective" and value != "binary:logistic":
            raise EngineParamError(f"{where}: spark-fanout trains binary classifiers with probabilities: use binary:logistic")
        return super().coerce(name, value, where)

    def _refusal(self, params: Mapping[str, Any], n_features: int) -> str | None:
        import xgboost

        x, y = tiny_rows(n_features)
        booster_params, _, _ = _split(params, 0)
        booster_params["nthread"] = 1
        try:
            with _lock, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                xgboost.train(booster_params, xgboost.DMatrix(x, label=y), num_boost_round=1)
        except xgboost.core.XGBoostError as exc:
            return one_line(str(exc))
        except Exception as exc:  # refused by XGBoost's Python side (constraints given as numbers, …)
            return f"{type(exc).__name__}: {one_line(str(exc))}"
        return None

    def library_check(self, params: Mapping[str, Any], n_features: int) -> str | None:
        return library_refusal("XGBoost", params, self.defaults, self._refusal(params, n_features))

    def early_stopping_rounds(self, params: Mapping[str, Any]) -> int:
        return int(params.get("early_stopping_rounds") or 0)

    # --- training -----------------------------------------------------------------------
    def fit(self, rows: DriverRows) -> tuple[Any, dict[str, Any]]:
        import xgboost

        params, rounds, stopping = _split(rows.params, rows.seed)
        train = xgboost.DMatrix(rows.x, label=rows.y, weight=rows.weights)
        evals = []
        if rows.stop_x is not None and stopping:
            evals = [(xgboost.DMatrix(rows.stop_x, label=rows.stop_y), "stopping")]
        booster = xgboost.train(params, train, num_boost_round=rounds, evals=evals,
                                early_stopping_rounds=stopping if evals else None, verbose_eval=False)
        if not evals:
            return booster, {}
        best = int(booster.best_iteration)
        trained = int(booster.num_boosted_rounds())
        return booster[: best + 1], {"best_iteration": best + 1, "rounds_trained": trained}

    def save(self, model: Any) -> dict[str, bytes]:
        return {MODEL_FILE: bytes(model.save_raw("json"))}

    # --- scoring --------------------------------------------------------------------------
    def load(self, files: Mapping[str, bytes]) -> Any:
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(files[MODEL_FILE]))
        return booster

    def predict(self, model: Any, x: Any) -> Any:
        import numpy as np

        return model.inplace_predict(np.asarray(x, dtype="float64"), validate_features=False)

    def feature_importance(self, model: Any) -> list[float] | None:
        gains = model.get_score(importance_type="total_gain")
        names = model.feature_names or [f"f{i}" for i in range(model.num_features())]
        return [float(gains.get(n, 0.0)) for n in names]


def _split(params: Mapping[str, Any], seed: int) -> tuple[dict[str, Any], int, int]:
    """``xgboost.train``'s parameters, rounds and early-stopping rounds."""
    booster = {"objective": "binary:logistic", "eval_metric": "logloss"}
    booster.update({k: v for k, v in params.items() if k not in ("num_boost_round", "early_stopping_rounds")})
    booster["seed"] = seed
    return booster, int(params.get("num_boost_round", 100)), int(params.get("early_stopping_rounds") or 0)
