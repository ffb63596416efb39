"""Training engines: one record per model library (:class:`Engine`), found by name in
one registry (:func:`get_engine`). The controller asks a record about parameters,
requirements and saved files; the job asks it to train and score. Nothing else in
spark-fanout compares engine names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.engines.base import (
    DRIVER,
    EXECUTORS,
    LABEL_COL,
    WEIGHT_COL,
    DriverRows,
    Engine,
    EngineParamError,
    EngineUnavailable,
    Param,
    SparkRows,
    TrainedModel,
)
from tasks.engines.registry import DEFAULT_ENGINE, ENTRY_POINT_GROUP, SKLEARN_EXAMPLE, engine_names, get_engine

__all__ = [
    "DEFAULT_ENGINE", "DRIVER", "ENTRY_POINT_GROUP", "EXECUTORS", "LABEL_COL", "SKLEARN_EXAMPLE", "WEIGHT_COL",
    "DriverRows", "Engine", "EngineParamError", "EngineUnavailable", "Param", "SparkRows", "TrainedModel",
    "check_engine", "engine_names", "get_engine", "resolve_params",
]


def check_engine(name: str) -> str:
    """``name`` if an engine has it; EngineParamError otherwise."""
    get_engine(name)
    return name


def resolve_params(engine: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The engine's defaults overlaid with ``given`` (names resolved, values checked)."""
    return get_engine(engine).resolve(given)
