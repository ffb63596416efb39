"""The engine record: one class per model library, and everything the rest of
spark-fanout asks about it (parameters, where it trains, what it saves, how its model
is loaded and applied). Nothing outside :mod:`tasks.engines` compares engine names.

Imports no model library at module level: the controller checks parameters without a
JVM, and a job imports only the library its engine needs.

A model library's own checks run native, threaded code (OpenMP, BLAS), which a process
that later forks must not start: Luigi forks a process per task, and a child whose
parent had started OpenMP's threads hangs in its first parallel region. The controller
therefore calls :func:`isolate_library_calls`; its main process then asks a helper
process (:mod:`tasks.engines.probe`) instead, and keeps each answer (a forked task
inherits them). Jobs, the helper and forked tasks call the library directly.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

LABEL_COL = "__label__"
WEIGHT_COL = "__weight__"
#: Where an engine trains: on the job's driver, on rows collected from Spark, or as a
#: Spark ML estimator on the executors.
DRIVER = "driver"
EXECUTORS = "executors"


_KINDS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str, "list": list}
_library_here = True


def isolate_library_calls() -> None:
    """From now on, this process (while it has no parent process of its own: Luigi's
    forked tasks do) runs model libraries' checks in a helper process."""
    global _library_here
    _library_here = False


def library_calls_here() -> bool:
    """Whether a model library's native code may run in this process."""
    if _library_here:
        return True
    import multiprocessing

    return multiprocessing.parent_process() is not None


def kind_name(kind: type | None) -> str | None:
    return None if kind is None else kind.__name__


class EngineParamError(ValueError):
    """An engine name or parameter is not acceptable; the message says which and why."""


class EngineUnavailable(RuntimeError):
    """The engine cannot run in this job (a missing jar or Python package)."""


@dataclass(frozen=True)
class Param:
    """A parameter whose default spark-fanout always writes into a configuration (so
    spelling that default out and leaving it out name one configuration)."""

    kind: type | None
    default: Any
    low: float | None = None  # inclusive bounds checked before any job, None = unbounded
    high: float | None = None


@dataclass
class TrainedModel:
    """What a label's training gives its artifact."""

    files: dict[str, bytes] = field(default_factory=dict)  # artifact-relative name -> bytes
    spark_model: Any = None  # a Spark ML model, saved under layout.SPARK_MODEL when set
    metrics: dict[str, Any] = field(default_factory=dict)
    training_seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # engine facts for metadata.json (early stopping, ...)


@dataclass
class DriverRows:
    """One label's rows for an engine that trains on the driver (pandas frames of the
    ``f0…fN`` feature columns, numpy labels 0/1). ``stop_x``/``stop_y``: the slice of the
    training rows that decides when to stop (early stopping), or ``None``."""

    x: Any
    y: Any
    weights: Any
    stop_x: Any
    stop_y: Any
    features: list[str]
    params: dict[str, Any]
    seed: int


@dataclass
class SparkRows:
    """One label's training rows for an engine that trains on the executors: a Spark
    frame of ``LABEL_COL``, the ``f0…fN`` features and, when classes are weighted,
    ``WEIGHT_COL``."""

    spark: Any
    train: Any
    features: list[str]
    params: dict[str, Any]
    seed: int
    weight_col: str | None


def suggestion(name: str, known: Collection[str]) -> str:
    """``: did you mean 'x'?`` for the nearest known name, or an empty string."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else ""


def one_line(text: str, limit: int = 300) -> str:
    """A library's error message as one line (its first non-empty line, trimmed)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def tiny_rows(n_features: int) -> tuple[Any, Any]:
    """A few seeded random rows with both classes, for a library's parameter check."""
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.standard_normal((64, max(1, n_features))), (np.arange(64) % 2).astype("float64")


def library_refusal(library: str, params: Mapping[str, Any], defaults: Mapping[str, Param],
                    error: str | None) -> str | None:
    """``library``'s own refusal as one line naming the parameters the user gave (not the
    defaults we fill in), or None when it accepted them."""
    if error is None:
        return None
    given = {k: v for k, v in params.items() if k not in defaults or v != defaults[k].default}
    return f"{library} refuses the parameters {given}: {error}"


def check_number(where: str, kind: type, value: Any, low: float | None = None, high: float | None = None) -> Any:
    """``value`` as ``kind`` (int or float), refused in one line when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EngineParamError(f"{where}: expected a number ({kind.__name__})")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise EngineParamError(f"{where}: expected a whole number")
        value = int(value)
    else:
        value = float(value)
    if isinstance(value, float) and math.isnan(value):
        raise EngineParamError(f"{where}: NaN is not allowed")
    if low is not None and value < low or high is not None and value > high:
        bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise EngineParamError(f"{where}: must lie in {bounds}")
    return value


class EngineParameters:
    """The parameters concern of an :class:`Engine` record: which names it takes, of which
    kinds, how a user's JSON becomes a configuration's parameters, and the library's own
    check of them. Engine records inherit it; its methods use the record's ``name``."""

    #: As users write it (set by the Engine record).
    name: str = ""
    #: Parameters always written into a configuration with these defaults.
    defaults: Mapping[str, Param] = {}
    #: Where its parameters are documented (named in refusals).
    params_doc: str = ""
    #: Whether its default parameters need no check by the library (a built-in engine's).
    defaults_are_valid: bool = False

    def param_names(self) -> Collection[str]:
        """Every parameter name this engine accepts, aliases included."""
        return self.defaults

    def canonical_name(self, name: str) -> str | None:
        """The parameter's main name (aliases resolved), ``None`` if it is unknown."""
        return name if name in self.param_names() else None

    def refused_param(self, name: str) -> str | None:
        """Why a known parameter is not the user's to set here (one clause), or None."""
        return None

    def param_kind(self, name: str) -> type | None:
        """int, float, bool, str or list when known (search ranges need int or float):
        the defaults' kinds, else what :meth:`library_kinds` learnt from the library."""
        p = self.defaults.get(name)
        return p.kind if p is not None else self.learned_kinds().get(name)

    def learned_kinds(self) -> dict[str, type | None]:
        """:meth:`library_kinds`, learnt once per installed library version (in a helper
        process where needed) and kept: in this process, and in a cache file when the
        record names its library's version (:meth:`table_key`)."""
        cached = self.__dict__.get("_kind_table")
        if cached is None:
            from tasks.engines import tables

            key = self.table_key()
            table = tables.read(key) if key else None
            if table is None:
                if library_calls_here():
                    table = {n: kind_name(k) for n, k in self.library_kinds().items()}
                else:
                    from tasks.engines.probe import ask

                    table = ask(self.name, {"op": "kinds"})["kinds"]
                if key:
                    tables.write(key, table)
            cached = self.__dict__["_kind_table"] = {n: _KINDS.get(k) if k else None for n, k in table.items()}
        return cached

    def library_kinds(self) -> dict[str, type | None]:
        """Override: every parameter's kind as the library knows it (its native code may run)."""
        return {}

    def table_key(self) -> str | None:
        """Names what :meth:`library_kinds` depends on (the library and its version), so
        the table is learnt once per version; None: learnt in every process."""
        return None

    def coerce(self, name: str, value: Any, where: str) -> Any:
        """One value, checked and converted to its kind where spark-fanout keeps the
        parameter's default (others are the library's to check: :meth:`check_params`)."""
        p = self.defaults.get(name)
        kind = p.kind if p is not None else None
        if kind in (int, float):
            return check_number(where, kind, value, p.low if p else None, p.high if p else None)
        if kind is bool and not isinstance(value, bool):
            raise EngineParamError(f"{where}: expected true or false")
        if isinstance(value, float) and not math.isfinite(value):
            raise EngineParamError(f"{where}: expected a finite number")
        return value

    def resolve(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The defaults overlaid with ``given``: names resolved to their main name, each
        value checked; a bad name is refused naming the nearest valid one."""
        out = {name: p.default for name, p in self.defaults.items()}
        seen: dict[str, str] = {}
        for name, value in dict(given or {}).items():
            main = self.canonical_name(name) if isinstance(name, str) else None
            if main is None:
                hint = suggestion(str(name), self.param_names())
                doc = f" (see {self.params_doc})" if self.params_doc and not hint else ""
                raise EngineParamError(f"unknown parameter {name!r} for engine {self.name}{hint}{doc}")
            why = self.refused_param(main)
            if why:
                raise EngineParamError(f"parameter {name!r} for engine {self.name}: {why}")
            if main in seen:
                raise EngineParamError(f"parameters {seen[main]!r} and {name!r} both set {self.name}'s {main}: give it once")
            seen[main] = name
            out[main] = self.coerce(main, value, f"parameter {name}={value!r} for engine {self.name}")
        return out

    def check_params(self, params: Mapping[str, Any], n_features: int) -> None:
        """The library's own checks of resolved ``params`` for ``n_features`` features
        (ranges, choices; :meth:`library_check`), in a helper process where this one
        must not run it; each answer is kept. Raises EngineParamError in one line."""
        if self.defaults_are_valid and dict(params) == self.resolve({}):
            return  # the library's defaults with ours: nothing to ask
        key = json.dumps([params, n_features], sort_keys=True, default=str)
        checked = self.__dict__.setdefault("_checked", {})
        if key not in checked:
            if library_calls_here():
                checked[key] = self.library_check(params, n_features)
            else:
                from tasks.engines.probe import ask

                checked[key] = ask(self.name, {"op": "check", "params": dict(params), "n_features": n_features})["error"]
        if checked[key]:
            raise EngineParamError(checked[key])

    def library_check(self, params: Mapping[str, Any], n_features: int) -> str | None:
        """Override: the library's refusal of ``params`` as one line, None when it takes
        them (its native code may run here)."""
        return None

    def early_stopping_rounds(self, params: Mapping[str, Any]) -> int:
        """Rounds without improvement after which training stops (0: no early stopping);
        the job then holds a slice of the training rows out to decide it."""
        return 0

    @property
    def weighs_classes(self) -> bool:
        """Whether ``--class-weight balanced`` can reach this engine (sample weights)."""
        return True


class Engine(EngineParameters):
    """One model library as spark-fanout uses it. Subclasses set the class attributes
    and implement the verbs of their kind: ``fit``/``save`` (driver engines) or
    ``fit_spark`` (executor engines), and ``load``/``predict`` or ``spark_probability``
    for scoring. A user engine is an instance of a subclass, registered under the
    entry point group ``spark_fanout.engines`` (README, "Your own engine")."""

    #: As users write it: ``--engine NAME``, the keys of a search space.
    name: str = ""
    #: One line for ``--help`` and the report.
    description: str = ""
    #: DRIVER (rows collected once per batch, labels trained side by side on driver
    #: threads) or EXECUTORS (a Spark ML estimator per label).
    trains_on: str = DRIVER
    #: Files the engine writes into an artifact for scoring (artifact-relative names).
    model_files: tuple[str, ...] = ()
    #: Whether a Spark ML model is saved too (under layout.SPARK_MODEL).
    saves_spark_model: bool = False
    #: Python modules the job imports, each with what to install when it is missing.
    requires: tuple[tuple[str, str], ...] = ()
    #: The engine's own parameters that weigh the classes (reported in metadata.json).
    imbalance_params: tuple[str, ...] = ()

    # --- identity ---------------------------------------------------------------------
    @property
    def folder(self) -> str:
        """Prefix of its configuration folders (``<folder>-<hash>``): safe in any path."""
        return self.name

    def versions(self) -> dict[str, str]:
        """Library versions recorded in metadata.json."""
        return {}

    def missing_setting(self, packages: list[str]) -> str | None:
        """Before submitting: what the job lacks to run this engine (given the jars and
        packages it gets), as one line naming the setting; None when nothing."""
        return None

    def check_job(self, spark: Any) -> None:
        """Inside the job, before training: raise EngineUnavailable when the engine
        cannot run here (by default: when a Python module it needs is missing)."""
        self.check_modules()

    def check_modules(self) -> None:
        """Raise EngineUnavailable, saying what to install, when a module it needs is missing."""
        import importlib

        for module, install in self.requires:
            try:
                importlib.import_module(module)
            except ImportError:
                raise EngineUnavailable(f"engine {self.name}: the Python package {module!r} is missing in the job's "
                                        f"Python: {install}") from None

    # --- training ------------------------------------------------------------------------
    def fit(self, rows: DriverRows) -> tuple[Any, dict[str, Any]]:
        """DRIVER engines: the fitted model and facts for metadata.json."""
        raise NotImplementedError(f"engine {self.name} does not train on the driver")

    def save(self, model: Any) -> dict[str, bytes]:
        """DRIVER engines: the model as files (names from :attr:`model_files`)."""
        raise NotImplementedError

    def fit_spark(self, rows: SparkRows) -> tuple[Any, dict[str, bytes], dict[str, Any]]:
        """EXECUTORS engines: the fitted Spark ML model, extra files, facts."""
        raise NotImplementedError(f"engine {self.name} does not train on Spark executors")

    # --- scoring -----------------------------------------------------------------------
    @property
    def scores_in_python(self) -> bool:
        """Whether its model is scored from :attr:`model_files` by :meth:`load` and
        :meth:`predict` (broadcast to executors); otherwise a Spark ML model is applied."""
        return bool(self.model_files)

    def load(self, files: Mapping[str, bytes]) -> Any:
        """The model from its files."""
        raise NotImplementedError

    def predict(self, model: Any, x: Any) -> Any:
        """Probabilities of class 1 for a float64 matrix of the model's features."""
        raise NotImplementedError

    def load_spark_model(self, uri: str) -> Any:
        """Spark-scored engines: the Spark ML model saved under ``uri`` (in a job)."""
        from pyspark.ml import PipelineModel

        return PipelineModel.load(uri)

    def spark_probability(self, model: Any, frame: Any, columns: list[str], out: str) -> Any:
        """Spark-scored engines: ``frame`` with a double column ``out``, the probability
        of class 1 computed from ``columns`` (the model's features, in its order)."""
        raise NotImplementedError

    #: Whether :meth:`feature_importance` ranks features (FeatureSweep's baseline).
    ranks_features: bool = False

    def feature_importance(self, model: Any) -> list[float] | None:
        """Gain importance per feature (the model's order), None if the engine has none."""
        return None
