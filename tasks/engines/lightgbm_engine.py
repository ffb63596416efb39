"""Native LightGBM on the job's driver: every parameter LightGBM accepts, aliases included.

The names come from the installed LightGBM's own table (the aliases its C library
dumps, as ``lightgbm.basic._ConfigAliases`` reads them); the values are checked by
LightGBM itself, building a booster on a few random rows before any job starts.
"""

from __future__ import annotations

import threading
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
from tasks.engines.quiet import library_output_hidden
from tasks.layout import NATIVE_MODEL

#: Defaults always written into a configuration (the seven parameters spark-fanout has
#: always filled in, so configurations trained before every parameter was accepted
#: keep their ids). ``num_threads`` 1: labels train side by side on the driver's cores.
LIGHTGBM_DEFAULTS = {
    "num_iterations": Param(int, 100),
    "learning_rate": Param(float, 0.1),
    "num_leaves": Param(int, 31),
    "min_data_in_leaf": Param(int, 20),
    "feature_fraction": Param(float, 1.0),
    "lambda_l2": Param(float, 0.0),
    "num_threads": Param(int, 1),
}

#: Objectives whose prediction is a probability of class 1.
BINARY_OBJECTIVES = ("binary", "cross_entropy", "xentropy")

_SET_BY_JOB = {
    "seed": "set by --seed",
    "num_class": "a binary model has one score: leave it out",
    "task": "the job trains; Predict scores",
    "valid": "the job's validation rows (--test-fraction) are for evaluation; early stopping uses a slice of "
             "the training rows (--stopping-fraction)",
    "data": "the job hands LightGBM its rows (--data, --features)",
}
#: LightGBM's command-line and file settings: the job hands LightGBM its rows and
#: writes the model itself.
_FILE_SETTINGS = {
    "config", "input_model", "output_model", "output_result", "convert_model", "convert_model_language", "save_binary",
    "snapshot_freq", "machine_list_filename", "machines", "parser_config_file", "forcedbins_filename",
    "forcedsplits_filename", "header", "two_round", "precise_float_parser", "label_column", "weight_column",
    "group_column", "ignore_column", "categorical_feature", "initscore_filename", "valid_data_initscores",
}
_PREDICTION_SETTINGS = ("predict_", "pred_early_stop", "num_iteration_predict", "start_iteration_predict")

_lock = threading.Lock()


def lightgbm_aliases() -> dict[str, list[str]]:
    """LightGBM's parameter table: main name -> every name it accepts for it."""
    from lightgbm.basic import _ConfigAliases

    return {main: list(names) for main, names in _ConfigAliases._get_all_param_aliases().items()}


def lightgbm_params(params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """What ``lightgbm.train`` gets: the resolved parameters without the rounds, the
    objective binary unless another probability objective is named, quiet, seeded."""
    out = {"objective": "binary", "verbosity": -1, "deterministic": True, "force_row_wise": True}
    out.update({k: v for k, v in params.items() if k != "num_iterations"})
    out["seed"] = seed
    return out


class LightGBMEngine(Engine):
    name = "lightgbm"
    description = "native LightGBM on the job's driver (every LightGBM parameter)"
    trains_on = DRIVER
    model_files = (NATIVE_MODEL,)
    requires = (("lightgbm", "pip install lightgbm"),)
    defaults = LIGHTGBM_DEFAULTS
    imbalance_params = ("scale_pos_weight", "is_unbalance", "pos_bagging_fraction", "neg_bagging_fraction")
    params_doc = "https://lightgbm.readthedocs.io/en/latest/Parameters.html"
    defaults_are_valid = True
    ranks_features = True

    def versions(self) -> dict[str, str]:
        import lightgbm

        return {"lightgbm": lightgbm.__version__}

    # --- parameters -------------------------------------------------------------------
    @cached_property
    def _main_of(self) -> dict[str, str]:
        table = lightgbm_aliases()
        out = {alias: main for main, names in table.items() for alias in names}
        out.update({main: main for main in table})
        return out

    def param_names(self) -> Collection[str]:
        return self._main_of

    def canonical_name(self, name: str) -> str | None:
        return self._main_of.get(name)

    def refused_param(self, name: str) -> str | None:
        if name in _SET_BY_JOB:
            return _SET_BY_JOB[name]
        if name in _FILE_SETTINGS:
            return "a LightGBM file or command-line setting: the job hands LightGBM its rows and saves the model itself"
        if name.startswith(_PREDICTION_SETTINGS) or name.endswith("_predict"):
            return "a prediction setting: Predict applies the saved model as LightGBM's predict() does"
        return None

    @cached_property
    def _defaults_of_lightgbm(self) -> dict[str, Any]:
        """Every parameter's default as a booster trained with defaults reports it."""
        import lightgbm

        x, y = tiny_rows(2)
        with _lock, library_output_hidden(("[LightGBM]",)):
            booster = lightgbm.train({"objective": "binary", "verbosity": -1, "num_threads": 1}, lightgbm.Dataset(x, y),
                                     num_boost_round=1)
        return lightgbm.Booster(model_str=booster.model_to_string()).params

    def library_kinds(self) -> dict[str, type | None]:
        """Each parameter's kind from its default as a booster reports it; an integral
        default is an int when LightGBM refuses 0.5 for it as "should be of type int"."""
        kinds: dict[str, type | None] = {}
        for name, default in self._defaults_of_lightgbm.items():
            if isinstance(default, (bool, str, list)):
                kinds[name] = type(default)
            elif isinstance(default, float) and not default.is_integer():
                kinds[name] = float
            elif isinstance(default, (int, float)):
                error = self._refusal({name: 0.5}, 2)
                kinds[name] = int if error is not None and "should be of type int" in error else float
        return kinds

    def table_key(self) -> str | None:
        from importlib.metadata import version

        return f"lightgbm-{version('lightgbm')}"

    def coerce(self, name: str, value: Any, where: str) -> Any:
        if name == "objective" and value not in BINARY_OBJECTIVES:
            raise EngineParamError(f"{where}: spark-fanout trains binary classifiers: use one of {', '.join(BINARY_OBJECTIVES)}")
        return super().coerce(name, value, where)

    def _refusal(self, params: Mapping[str, Any], n_features: int) -> str | None:
        import lightgbm

        x, y = tiny_rows(n_features)
        check = {**lightgbm_params(params, 0), "num_threads": 1}
        try:
            with _lock, library_output_hidden(("[LightGBM]",)):
                lightgbm.Booster(params=check, train_set=lightgbm.Dataset(x, y))
        except lightgbm.basic.LightGBMError as exc:
            return one_line(str(exc).split(" at /")[0].split(" at \\")[0])
        return None

    def library_check(self, params: Mapping[str, Any], n_features: int) -> str | None:
        return library_refusal("LightGBM", params, self.defaults, self._refusal(params, n_features))

    def early_stopping_rounds(self, params: Mapping[str, Any]) -> int:
        return int(params.get("early_stopping_round") or 0)

    # --- training -----------------------------------------------------------------------
    def fit(self, rows: DriverRows) -> tuple[Any, dict[str, Any]]:
        import lightgbm

        params = lightgbm_params(rows.params, rows.seed)
        train = lightgbm.Dataset(rows.x, label=rows.y, weight=rows.weights, free_raw_data=True)
        valid_sets = []
        if rows.stop_x is not None:
            valid_sets = [lightgbm.Dataset(rows.stop_x, label=rows.stop_y, reference=train)]
        else:
            params.pop("early_stopping_round", None)
        booster = lightgbm.train(params, train, num_boost_round=rows.params["num_iterations"], valid_sets=valid_sets)
        info = {}
        if valid_sets:
            info = {"best_iteration": int(booster.best_iteration), "rounds_trained": int(booster.current_iteration())}
        return booster, info

    def save(self, model: Any) -> dict[str, bytes]:
        # After early stopping LightGBM saves up to the best iteration.
        return {NATIVE_MODEL: model.model_to_string().encode("utf-8")}

    # --- scoring --------------------------------------------------------------------------
    def load(self, files: Mapping[str, bytes]) -> Any:
        import lightgbm

        return lightgbm.Booster(model_str=files[NATIVE_MODEL].decode("utf-8"))

    def predict(self, model: Any, x: Any) -> Any:
        return model.predict(x)

    def feature_importance(self, model: Any) -> list[float] | None:
        return [float(v) for v in model.feature_importance(importance_type="gain")]
