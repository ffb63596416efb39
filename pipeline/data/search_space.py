"""Search spaces of ``TuneAll``: parsing, validation, and the trials each search makes.

A space maps engines to parameters, each a list of values or a range::

    {"lightgbm": {"num_leaves": [15, 63], "learning_rate": {"low": 0.01, "high": 0.3, "log": true}},
     "mllib-logreg": {"reg_param": [0.0, 0.1]}}

An engine with ``{}`` is one trial with its defaults. No file system, no Spark: every
name and value is checked by the engine's record (:mod:`tasks.engines`), so a bad space
is refused, naming its entry, before any job. A parameter is written as its library
names it; aliases count as the parameter they stand for.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.data.documents import parse_document
from pipeline.errors import ConfigError
from tasks.engines import Engine, EngineParamError, get_engine

SEARCHES = ("grid", "random", "optuna")
_RANGE_KEYS = {"low", "high", "log", "int"}


@dataclass(frozen=True)
class Choice:
    """A list of values (grid: each one; random/optuna: one of them)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """A numeric interval, sampled uniformly (or log-uniformly), whole numbers if ``integer``."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


Dimension = Choice | Range
SearchSpace = dict[str, dict[str, Dimension]]


@dataclass(frozen=True)
class Trial:
    """One configuration to train: an engine and its (resolved) parameters."""

    engine: str
    params: dict[str, Any]

    @property
    def key(self) -> str:
        return json.dumps([self.engine, self.params], sort_keys=True)


def parse_space_text(text: str, source: str) -> Any:
    """The raw document of a space file (JSON or YAML, see :func:`parse_document`)."""
    return parse_document(text, source)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _record(name: str, source: str) -> Engine:
    try:
        return get_engine(name)
    except EngineParamError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _main_name(engine: str, name: str, where: str) -> str:
    """The parameter's main name (an alias resolved), refused naming the nearest known one."""
    record = get_engine(engine)
    main = record.canonical_name(name)
    if main is not None and not record.refused_param(main):
        return main
    try:
        record.resolve({name: None})  # raises the engine's own one-line refusal
    except EngineParamError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    raise ConfigError(f"{where}: unknown parameter {name!r} for engine {engine}")


def _check_value(engine: str, name: str, value: Any, where: str) -> Any:
    try:
        return get_engine(engine).resolve({name: value})[name]
    except EngineParamError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _range(engine: str, name: str, spec: Mapping[str, Any], where: str) -> Range:
    extra = sorted(set(spec) - _RANGE_KEYS)
    if extra:
        raise ConfigError(f"{where}: unknown key {extra[0]!r} in a range: use low, high, log, int")
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: a range needs both 'low' and 'high'")
    low, high = spec["low"], spec["high"]
    if not (_is_number(low) and _is_number(high)):
        raise ConfigError(f"{where}: low and high must be numbers (got {low!r}, {high!r})")
    if low > high:
        raise ConfigError(f"{where}: empty range (low {low} > high {high}): swap them")
    for flag in ("log", "int"):
        if flag in spec and not isinstance(spec[flag], bool):
            raise ConfigError(f"{where}: '{flag}' must be true or false (got {spec[flag]!r})")
    kind = get_engine(engine).param_kind(name)
    if kind is list:
        raise ConfigError(f"{where}: {name} takes lists, not a range: give a list of choices, e.g. [[16], [32, 8]]")
    if kind not in (int, float, None):
        raise ConfigError(f"{where}: {name} takes {kind.__name__} values, not a range: give a list of choices")
    integer = spec.get("int", kind is int)
    if integer and kind is float:
        raise ConfigError(f"{where}: 'int': true but {name} is a real-valued parameter: drop 'int'")
    if not integer and kind is int:
        raise ConfigError(f"{where}: {name} takes whole numbers: drop 'int': false")
    if integer and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"{where}: an integer range needs whole-number bounds (got {low}, {high})")
    if spec.get("log", False) and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0 (got {low})")
    _check_value(engine, name, low, f"{where}.low")
    _check_value(engine, name, high, f"{where}.high")
    return Range(float(low), float(high), bool(spec.get("log", False)), bool(integer))


def validate_space(doc: Any, source: str, search: str) -> SearchSpace:
    """The checked space; :class:`ConfigError` names the first bad entry."""
    if search not in SEARCHES:
        raise ConfigError(f"--search {search!r} is unknown: use one of {', '.join(SEARCHES)}")
    if not isinstance(doc, Mapping) or not doc:
        raise ConfigError(f"{source}: a search space is a non-empty object of engines, "
                          'e.g. {"lightgbm": {"num_leaves": [15, 63]}}')
    space: SearchSpace = {}
    for engine, params in doc.items():
        _record(engine, source)
        if not isinstance(params, Mapping):
            raise ConfigError(f"{source}: {engine}: expected an object of parameters (or {{}} for the defaults)")
        dims: dict[str, Dimension] = {}
        for given, spec in params.items():
            where = f"{source}: {engine}.{given}"
            name = _main_name(engine, given, where)
            if name in dims:
                raise ConfigError(f"{where}: {engine}'s {name} is in the space twice (an alias of another entry): keep one")
            if isinstance(spec, list):
                if not spec:
                    raise ConfigError(f"{where}: empty list of values: give at least one")
                dims[name] = Choice(tuple(_check_value(engine, name, v, f"{where}[{i}]") for i, v in enumerate(spec)))
            elif isinstance(spec, Mapping):
                if search == "grid":
                    raise ConfigError(f"{where}: a range cannot be searched by grid: list the values, "
                                      "or use --search random or optuna")
                dims[name] = _range(engine, name, spec, where)
            else:
                raise ConfigError(f"{where}: expected a list of values or a range "
                                  f'{{"low": …, "high": …}} (got {spec!r})')
        space[engine] = dims
    return space


def canonical(space: SearchSpace) -> str:
    """A stable text of the space (for naming a search)."""
    plain = {e: {n: (list(d.values) if isinstance(d, Choice) else vars(d)) for n, d in sorted(dims.items())}
             for e, dims in sorted(space.items())}
    return json.dumps(plain, sort_keys=True, separators=(",", ":"))


def _trial(engine: str, chosen: Mapping[str, Any]) -> Trial:
    return Trial(engine, get_engine(engine).resolve(dict(chosen)))


def grid_trials(space: SearchSpace) -> list[Trial]:
    """Every combination of every engine's lists, engines in the space's order."""
    out: list[Trial] = []
    for engine, dims in space.items():
        names = list(dims)
        for combo in itertools.product(*(dims[n].values for n in names)):  # type: ignore[union-attr]
            out.append(_trial(engine, dict(zip(names, combo, strict=True))))
    return _unique(out)


def _sample(dim: Dimension, rng: random.Random) -> Any:
    if isinstance(dim, Choice):
        return dim.values[rng.randrange(len(dim.values))]
    if dim.log:
        value = math.exp(rng.uniform(math.log(dim.low), math.log(dim.high)))
    else:
        value = rng.uniform(dim.low, dim.high)
    return min(max(round(value), int(dim.low)), int(dim.high)) if dim.integer else value


def random_trials(space: SearchSpace, count: int, seed: int) -> list[Trial]:
    """``count`` trials, the i-th drawn from its own seeded generator: the same space and
    seed give the same trials in every run (so a rerun finds them trained), and a larger
    ``count`` keeps the first ones. Repeats of one configuration count once."""
    engines = list(space)
    out = []
    for i in range(count):
        rng = random.Random(f"{seed}:{i}")
        engine = engines[rng.randrange(len(engines))]
        out.append(_trial(engine, {n: _sample(d, rng) for n, d in space[engine].items()}))
    return _unique(out)


def _unique(trials: list[Trial]) -> list[Trial]:
    seen: dict[str, Trial] = {}
    for t in trials:
        seen.setdefault(t.key, t)
    return list(seen.values())


def _encode(value: Any) -> Any:
    """Optuna's categorical choices are scalars; lists (hidden layers) travel as JSON."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _decode(value: Any, original: tuple[Any, ...]) -> Any:
    return json.loads(value) if isinstance(value, str) and any(isinstance(v, (list, dict)) for v in original) else value


def suggest(trial: Any, space: SearchSpace) -> Trial:
    """Ask an Optuna trial for an engine, then that engine's parameters (named
    ``<engine>.<parameter>``, so engines never share a distribution)."""
    engine = trial.suggest_categorical("engine", list(space))
    chosen = {}
    for name, dim in space[engine].items():
        key = f"{engine}.{name}"
        if isinstance(dim, Choice):
            chosen[name] = _decode(trial.suggest_categorical(key, [_encode(v) for v in dim.values]), dim.values)
        elif dim.integer:
            chosen[name] = trial.suggest_int(key, int(dim.low), int(dim.high), log=dim.log)
        else:
            chosen[name] = trial.suggest_float(key, dim.low, dim.high, log=dim.log)
    return _trial(engine, chosen)
