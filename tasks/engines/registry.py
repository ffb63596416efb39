"""The engine registry: every engine by name, built in or added by another package.

Built in: ``lightgbm``, ``xgboost``, ``mllib-gbt``, ``mllib-logreg``, ``mllib-mlp``,
``synapseml``, and ``sklearn:<module>.<Class>`` for any scikit-learn classifier. A
package adds its own through the entry point group ``spark_fanout.engines``: the entry
point's name is the engine's name, its object an :class:`~tasks.engines.base.Engine`
(or a class or function that makes one). Records are made once per process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from tasks.engines.base import Engine, EngineParamError, suggestion

ENTRY_POINT_GROUP = "spark_fanout.engines"
DEFAULT_ENGINE = "lightgbm"


def _lightgbm() -> Engine:
    from tasks.engines.lightgbm_engine import LightGBMEngine

    return LightGBMEngine()


def _xgboost() -> Engine:
    from tasks.engines.xgboost_engine import XGBoostEngine

    return XGBoostEngine()


def _synapseml() -> Engine:
    from tasks.engines.synapseml_engine import SynapseMLEngine

    return SynapseMLEngine()


def _mllib(name: str) -> Callable[[], Engine]:
    def make() -> Engine:
        from tasks.engines.mllib_engine import mllib_engine

        return mllib_engine(name)

    return make


BUILT_IN: dict[str, Callable[[], Engine]] = {
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
    "mllib-gbt": _mllib("mllib-gbt"),
    "mllib-logreg": _mllib("mllib-logreg"),
    "mllib-mlp": _mllib("mllib-mlp"),
    "synapseml": _synapseml,
}
SKLEARN_PREFIX = "sklearn:"
SKLEARN_EXAMPLE = "sklearn:sklearn.ensemble.HistGradientBoostingClassifier"

_made: dict[str, Engine] = {}
_lock = threading.Lock()


def _new_lock_after_fork() -> None:
    # Luigi forks a process per task: a lock another thread held at that moment would stay
    # held in the child, where no thread will ever release it.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def plugin_names() -> list[str]:
    """Engines other packages register (names only: nothing is imported)."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} - set(BUILT_IN))


def engine_names() -> list[str]:
    """Every engine a name alone selects (``sklearn:…`` names come on top)."""
    return [*BUILT_IN, *plugin_names()]


def _from_entry_point(name: str) -> Engine | None:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        return None
    try:
        obj: Any = found[0].load()
    except Exception as exc:  # the package's own import error, said in one line
        raise EngineParamError(f"engine {name!r} (entry point {found[0].value}) cannot be loaded: "
                               f"{type(exc).__name__}: {exc}") from None
    engine = obj() if callable(obj) and not isinstance(obj, Engine) else obj
    if not isinstance(engine, Engine) or engine.name != name:
        raise EngineParamError(f"entry point {name!r} in group {ENTRY_POINT_GROUP} ({found[0].value}) does not give an "
                               f"Engine named {name!r}: fix the package that registers it")
    return engine


def _make(name: str) -> Engine:
    if name in BUILT_IN:
        return BUILT_IN[name]()
    if name.startswith(SKLEARN_PREFIX):
        from tasks.engines.sklearn_engine import SklearnEngine

        return SklearnEngine(name[len(SKLEARN_PREFIX):])
    engine = _from_entry_point(name)
    if engine is None:
        known = engine_names()
        hint = suggestion(name, known)
        if hint:
            raise EngineParamError(f"unknown engine {name!r}{hint} (engines: {', '.join(known)}, {SKLEARN_PREFIX}<module>.<Class>)")
        raise EngineParamError(f"unknown engine {name!r}: choose one of {', '.join(known)}, "
                               f"or a scikit-learn classifier as {SKLEARN_EXAMPLE}")
    return engine


def get_engine(name: str) -> Engine:
    """The engine record named ``name``; EngineParamError (one line) when there is none."""
    if not isinstance(name, str) or not name:
        raise EngineParamError(f"engine {name!r} is not a name: choose one of {', '.join(engine_names())}")
    with _lock:
        if name not in _made:
            _made[name] = _make(name)
        return _made[name]
