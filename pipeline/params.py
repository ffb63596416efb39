"""Luigi parameters that read the way people type them and refuse the rest in one line.

Luigi parses command-line and ``luigi.cfg`` values before any code of ours runs; its own
classes raise a bare ``ValueError`` or ``JSONDecodeError`` there, which the ``luigi``
command prints as "Uncaught exception in luigi" and a traceback. The classes here raise
a :class:`~pipeline.errors.ConfigError` instead, naming the parameter (``--seed``, or
``[TrainAll] seed`` for a luigi.cfg value), the value and an example of a right one; the
console prints it as one line and Luigi exits with ``[retcode] unhandled_exception``.

- Lists: ``--labels label_00,label_01`` and ``--labels '["label_00", "label_01"]'`` mean
  the same; a value that starts with ``[`` is JSON (the way to write a name holding a
  comma), anything else is split at commas.
- An empty value on the command line (``--labels ''``, ``--data "$UNSET"``) is refused:
  Luigi would silently take the default (every label, the demo dataset). An empty value
  in luigi.cfg keeps meaning "not set" where the parameter is optional.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from configparser import NoOptionError, NoSectionError
from typing import Any

import luigi
from luigi import configuration
from luigi.freezing import FrozenOrderedDict
from luigi.task_register import Register, TaskClassNotFoundException

from pipeline.errors import ConfigError, FanoutError, one_line
from pipeline.internals import NO_VALUE


def parse_list(text: str, what: str = "value", item: Callable[[str], Any] = str) -> list[Any]:
    """``a,b`` or a JSON list as a list; ``item`` converts each comma-separated entry
    (JSON entries must already have its type)."""
    stripped = text.strip()
    hint = f"write {what} as a,b or as a JSON list like '[\"a\", \"b\"]'" if item is str else \
        f"write {what} as 5,10 or as a JSON list like '[5, 10]'"
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise ConfigError(f"{what} {text!r} is not a valid JSON list ({exc.msg} at character {exc.pos}): {hint}") from None
        if not isinstance(value, list):
            raise ConfigError(f"{what} {text!r} is not a list: {hint}")
        wrong = [v for v in value if isinstance(v, bool) or not isinstance(v, item)]
        if wrong:
            raise ConfigError(f"{what} {text!r} holds {wrong[0]!r}, not a {item.__name__}: {hint}")
        return value
    if stripped.startswith(("{", '"')):
        raise ConfigError(f"{what} {text!r} is JSON but not a list: {hint}")
    parts = [p.strip() for p in stripped.split(",")]
    if not stripped or any(p == "" for p in parts):
        raise ConfigError(f"{what} {text!r} has an empty entry (a stray or doubled comma?): {hint}")
    out = []
    for p in parts:
        try:
            out.append(item(p))
        except ValueError:
            raise ConfigError(f"{what} {text!r}: {p!r} is not a {item.__name__}: {hint}") from None
    return out


#: How Luigi wraps an error raised while reading a value that was not passed as an argument
#: (a luigi.cfg value, a ``--Task-param`` flag, a setting of a Config class such as ``core``).
_UNREADABLE = re.compile(r"^(\w+)\[args=.*\]: Error when parsing the default value of '(\w+)'$", re.S)


def auto_or_number(value: object, minimum: int) -> int | None:
    """``auto`` (any case, spaces around) → ``None``; a whole number ≥ ``minimum`` → itself;
    anything else raises ValueError (the caller says what the setting takes)."""
    text = str(value).strip().lower()
    if text == "auto":
        return None
    number = int(text)  # ValueError for anything but a whole number
    if number < minimum:
        raise ValueError(f"{number} < {minimum}")
    return number


def unreadable_value(error: BaseException | None) -> str | None:
    """The one line for an error Luigi met while reading a user's value of a parameter
    (ours or Luigi's own, such as ``--workers two``), or ``None`` for any other error. Such
    an error is the user's to fix, never a bug: it gets no traceback."""
    if not isinstance(error, ValueError) or error.__cause__ is None:
        return None
    cause = error.__cause__
    return describe_unreadable(str(error), str(cause) if isinstance(cause, FanoutError) else None,
                               f"{type(cause).__name__}: {cause}")


def describe_unreadable(wrapper: str, ours: str | None, cause: str) -> str | None:
    """:func:`unreadable_value` from text: ``wrapper`` is Luigi's ValueError message,
    ``ours`` the message of our own error that caused it (else ``None``), ``cause`` the
    cause as ``Type: message``."""
    found = _UNREADABLE.match(wrapper.strip())
    if found is None:
        return None
    if ours is not None:
        return ours
    family, name = found.groups()
    return (f"the value of {family} parameter {name!r} cannot be read ({one_line(cause, 200)}): "
            f"fix {command_line_flag(family, name)} or [{family}] {name} in the configuration")


def command_line_flag(family: str, name: str) -> str:
    """The flag that sets parameter ``name`` of task or Config class ``family`` when it is
    not the root task: ``--fanout-job-timeout``; ``--workers`` for Luigi's ``core``."""
    try:
        sectioned = Register.get_task_cls(family).use_cmdline_section
    except TaskClassNotFoundException:
        sectioned = True
    return "--" + (f"{family}_{name}" if sectioned else name).replace("_", "-")


class _Blank(str):
    """What argparse hands Luigi for an empty command-line value: a non-empty string, so
    that Luigi passes it to ``parse`` (it skips empty values) and we can refuse it."""

    __slots__ = ()


BLANK = _Blank("<empty>")


def _mark_blank(text: str) -> str:
    return BLANK if not text.strip() else text


class _Checked:
    """Mixin for a Luigi parameter class: ``_convert`` turns text into the value or raises
    ``ValueError(reason)``; the refusal names the parameter, the value and an example."""

    #: Example of a right value when the parameter has no default to show.
    example = "value"

    def __init__(self, *args: Any, example: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if example is not None:
            self.example = example
        elif self._default is not NO_VALUE and self._default not in (None, (), {}):
            self.example = self.serialize(self._default)

    def __set_name__(self, owner: type, name: str) -> None:
        super().__set_name__(owner, name)
        self._owner = owner

    def _flag(self) -> str:
        """How the command line names it: ``--seed`` for a task's, ``--fanout-job-timeout``
        for a setting of a Config class."""
        name = getattr(self, "_attribute_name", None)
        if not name:
            return "the parameter"
        owner = getattr(self, "_owner", None)
        if isinstance(owner, type) and issubclass(owner, luigi.Config):
            return command_line_flag(owner.get_task_family(), name)
        return f"--{name.replace('_', '-')}"

    def _convert(self, text: str) -> Any:  # noqa: ANN401 - the parameter's own type
        return text

    def _read(self, x: Any, where: str) -> Any:  # noqa: ANN401 - the parameter's own type
        """``x`` converted; ``where`` names its source: ``--seed``, or ``[TrainAll] seed =``."""
        example = f"{where} {self.example}" if where.endswith("=") else f"{self._flag()} {self.example}"
        if isinstance(x, _Blank):
            raise ConfigError(f"{where} is empty: leave it out for its default, or give a value, e.g. {example}")
        if not isinstance(x, str):  # a TOML value, already typed
            return x
        try:
            return self._convert(x)
        except ValueError as exc:
            raise ConfigError(f"{where} {x!r} {exc}: write e.g. {example}") from None

    def parse(self, x: Any) -> Any:  # noqa: ANN401 - Luigi's signature
        return self._read(x, self._flag())

    def _get_value_from_config(self, section: str, name: str) -> Any:  # noqa: ANN401 - Luigi's signature
        try:
            value = configuration.get_config().get(section, name)
        except (NoSectionError, NoOptionError, KeyError):
            return NO_VALUE
        return self._read(value, f"[{section}] {name} =")

    def _parser_kwargs(self, param_name: str, task_name: str | None = None) -> dict[str, Any]:
        kwargs = super()._parser_kwargs(param_name, task_name)
        kwargs["type"] = _mark_blank
        return kwargs


class Parameter(_Checked, luigi.Parameter):
    """Text; only an empty command-line value is refused."""


class OptionalParameter(_Checked, luigi.OptionalParameter):
    """Text or none (empty in luigi.cfg)."""

    def _convert(self, text: str) -> Any:  # noqa: ANN401 - Luigi's signature
        return text or None


class IntParameter(_Checked, luigi.IntParameter):
    """A whole number."""

    example = "1"

    def _convert(self, text: str) -> int:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError("is not a whole number") from None


class FloatParameter(_Checked, luigi.FloatParameter):
    """A finite number."""

    example = "0.5"

    def _convert(self, text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError("is not a number") from None
        if not math.isfinite(value):
            raise ValueError("is not a finite number")
        return value


class ChoiceParameter(_Checked, luigi.ChoiceParameter):
    """One of ``choices`` (strings)."""

    def __init__(self, *args: Any, choices: Any, **kwargs: Any) -> None:  # noqa: ANN401 - any iterable
        self._in_order = [str(c) for c in choices]
        kwargs.setdefault("var_type", str)
        super().__init__(*args, choices=self._in_order, **kwargs)

    def _convert(self, text: str) -> str:
        value = text.strip()
        if value not in self._in_order:
            raise ValueError(f"is not one of {', '.join(self._in_order)}")
        return value


def _json_kind(value: Any) -> str:  # noqa: ANN401 - any JSON value
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), "null")


class JsonObjectParameter(_Checked, luigi.DictParameter):
    """A JSON object (``{"num_iterations": 200}``); Luigi freezes it, as DictParameter does."""

    example = "'{\"key\": 1}'"

    def _convert(self, text: str) -> Any:  # noqa: ANN401 - a frozen dict
        try:
            value = json.loads(text, object_pairs_hook=FrozenOrderedDict)
        except ValueError as exc:
            raise ValueError(f"is not JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(value, Mapping):
            raise ValueError(f"is {_json_kind(value)}, not a JSON object")
        return value


class _CommaListMixin(_Checked):
    """Parses ``a,b`` or JSON; what the entries must be comes from ``item``."""

    def __init__(self, *args: Any, item: Callable[[str], Any] = str, **kwargs: Any) -> None:
        self._item = item
        kwargs.setdefault("example", "5,10" if item is int else "a,b")
        super().__init__(*args, **kwargs)

    def _read(self, x: Any, where: str) -> Any:  # noqa: ANN401 - Luigi's signature
        if isinstance(x, str) and not isinstance(x, _Blank):
            return tuple(parse_list(x, where, self._item))
        return super()._read(x, where)


class ListParameter(_CommaListMixin, luigi.ListParameter):
    """A list given as ``a,b`` or as JSON."""


class OptionalListParameter(_CommaListMixin, luigi.OptionalListParameter):
    """An optional list given as ``a,b`` or as JSON; empty in luigi.cfg means none."""

    def _read(self, x: Any, where: str) -> Any:  # noqa: ANN401 - Luigi's signature
        if isinstance(x, str) and not isinstance(x, _Blank) and not x.strip():
            return None
        return super()._read(x, where)
