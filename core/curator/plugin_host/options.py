"""Typed option schemas for backends and reporters, and their validation.

A backend declares its options as a dataclass; every field has a type, a
default and a help text (see :func:`option`). :func:`build_options` checks a
user's mapping against it before anything starts: an unknown name or a value
of the wrong type is a :class:`~curator.model.errors.UsageError` that lists the valid
options, never a silently dropped setting. Values given as strings (the CLI's
``-o key=value``) are converted to the declared type.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import math
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, Union

from curator.model.errors import UsageError

S = TypeVar("S")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def option(default: Any, *, help: str, flag: str | None = None) -> Any:
    """Declare a schema field with its default and a one-line help text.

    ``flag``: a flag of ``curator run`` that sets this option, short for
    ``-o NAME=VALUE`` (``"--memory-limit"``); the CLI adds it while the
    backend is installed, and ``--resume`` remembers it with the options.
    It must be a long flag, ``--`` and a name without spaces or ``=``: the
    command refuses any other, as one it has already.
    """
    metadata = {"help": help} if flag is None else {"help": help, "flag": flag}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The schema of a backend that takes no options."""


@dataclasses.dataclass(frozen=True)
class OptionInfo:
    """One option of a schema, for listings and error messages."""

    name: str
    type: str
    default: str
    """The default as people read it (``None``, ``()``, ``'fork'``), or ``(required)``."""
    help: str
    value: Any = None
    """The default as a JSON value (``null``, ``[]``, ``"fork"``); callables by name."""


def describe_options(schema: type[Any]) -> list[OptionInfo]:
    """List the options of ``schema`` with their type, default and help."""
    hints = _hints(schema)
    infos = []
    for field in dataclasses.fields(schema):
        default = _default(field)
        shown = "(required)" if default is dataclasses.MISSING else _show(default)
        value = None if default is dataclasses.MISSING else _json_value(default)
        infos.append(
            OptionInfo(
                field.name,
                type_name(hints[field.name]),
                shown,
                field.metadata.get("help", ""),
                value,
            )
        )
    return infos


def schema_problems(schema: Any) -> list[str]:
    """Everything wrong with an ``Options`` schema: not a dataclass, bad types or defaults.

    Checked when a plugin registers, so that a default of ``'two'`` for an
    ``int`` option is the plugin's error, not a value that reaches the backend.
    """
    if not (isinstance(schema, type) and dataclasses.is_dataclass(schema)):
        return [f"Options must be a dataclass, got {schema!r}"]
    try:
        hints = _hints(schema)
    except TypeError as exc:
        return [str(exc)]
    problems = []
    for field in dataclasses.fields(schema):
        default = _default(field)
        if default is dataclasses.MISSING:
            continue  # a required option: every run must give it
        hint = hints[field.name]
        try:
            converted = convert(default, hint)
        except (TypeError, ValueError) as exc:
            reason = str(exc)
        else:
            reason = ""
            if isinstance(default, str) and not isinstance(converted, str):
                reason = "a string where a value is expected"
        if reason:
            problems.append(
                f"option {field.name!r} is declared {type_name(hint)} but its default "
                f"{default!r} is not ({reason})"
            )
    return problems


def _default(field: dataclasses.Field[Any]) -> Any:
    """A field's default value, or :data:`dataclasses.MISSING` for a required option."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def check_mapping(values: object, what: str) -> None:
    """Refuse ``values`` that are neither ``None`` nor a mapping (``UsageError`` naming ``what``).

    ``options=[("chunksize", 4)]`` or ``options="chunksize=4"`` from Python
    otherwise failed deep inside with Python's own error about lists or strings.
    """
    if values is not None and not isinstance(values, Mapping):
        raise UsageError(
            f"{what} must be a dict of option names to values, such as {{'name': value}}, "
            f"not a {type(values).__name__} ({values!r})"
        )


def build_options(schema: type[S], values: Mapping[str, object] | None, *, owner: str) -> S:
    """Validate ``values`` against ``schema`` and return the options instance.

    Parameters
    ----------
    schema
        A dataclass type.
    values
        Option names to values; strings are converted to the declared type.
    owner
        What the options are for (``"backend 'thread-pool'"``), for messages.

    Raises
    ------
    UsageError
        For an unknown option name, a value of the wrong type, a number that
        is not finite, or a value the schema's own ``__post_init__`` rejects.
    """
    check_mapping(values, f"the options of {owner}")
    values = dict(values or {})
    hints = _hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
    unknown = [name for name in values if name not in fields]
    if unknown:
        raise UsageError(_unknown_message(unknown, schema, owner))
    converted = {}
    for name, value in values.items():
        try:
            converted[name] = convert(value, hints[name])
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"option {name!r} of {owner} must be {type_name(hints[name])}, "
                f"got {value!r} ({exc})"
            ) from None
        number = converted[name]
        # nan converts without complaint and then compares false with everything, so a
        # check like "interval < 0" lets it pass (log.interval=nan wrote no progress).
        # Only what is given: a schema's default is its author's.
        if isinstance(number, float) and not math.isfinite(number):
            raise UsageError(f"option {name!r} of {owner} must be a finite number, got {number!r}")
    try:
        return schema(**converted)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid options for {owner}: {exc}") from None


def _hints(schema: type[Any]) -> dict[str, Any]:
    # The names are those of the schema's module. A dataclass's __init__ keeps that module's
    # namespace even once the module has left sys.modules (a test's patch.dict around the
    # run that first loaded the class): get_type_hints alone would then know none of them.
    # Only then is the namespace given: given, it would serve every base class too.
    namespace = None
    if schema.__module__ not in sys.modules:
        namespace = getattr(schema.__init__, "__globals__", None)
    try:
        return typing.get_type_hints(schema, globalns=namespace)
    except Exception as exc:
        # A schema whose annotations name something its module does not define.
        raise TypeError(f"cannot read the option types of {schema.__qualname__}: {exc}") from exc


def _unknown_message(unknown: list[str], schema: type[Any], owner: str) -> str:
    infos = describe_options(schema)
    names = ", ".join(repr(n) for n in unknown)
    noun = "option" if len(unknown) == 1 else "options"
    message = f"unknown {noun} {names} for {owner}"
    import difflib  # for the error message only: off the path of every run

    close = difflib.get_close_matches(unknown[0], [i.name for i in infos], n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    if infos:
        listing = ", ".join(f"{i.name} ({i.type})" for i in infos)
        message += f"\nvalid options: {listing}"
    else:
        message += f"\n{owner} takes no options"
    return message


def convert(value: object, hint: Any) -> Any:
    """Return ``value`` as type ``hint``, converting from a string where needed.

    Raises
    ------
    TypeError, ValueError
        When the value does not fit the type.
    """
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin is Literal:
        return _convert_literal(value, typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return _convert_union(value, typing.get_args(hint))
    if hint is type(None):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        raise TypeError("expected None")
    if (
        origin is not None
        and origin.__module__ == "collections.abc"
        and origin.__name__ == "Callable"
    ):
        return _convert_callable(value)
    if hint is bool:
        return _convert_bool(value)
    if hint in (int, float):
        return _convert_number(value, hint)
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if origin in (tuple, list, dict) or hint in (tuple, list, dict):
        return _convert_container(value, origin or hint)
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise TypeError(f"expected {hint.__name__}, got {type(value).__name__}")
    return value


def _convert_literal(value: object, choices: tuple[Any, ...]) -> Any:
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return choice
        if isinstance(value, str) and str(choice) == value:
            return choice
    raise ValueError("not one of the allowed values")


def _convert_union(value: object, members: tuple[Any, ...]) -> Any:
    # None first, so "none" on the command line means None rather than the string.
    ordered = sorted(members, key=lambda m: m is not type(None))
    reasons: list[str] = []
    for member in ordered:
        try:
            return convert(value, member)
        except (TypeError, ValueError) as exc:
            if member is not type(None):
                reasons.append(str(exc))
    expected = type_name(Union[members])  # noqa: UP007
    if len(reasons) == 1:  # one real candidate (X | None): its reason is the useful one
        raise ValueError(reasons[0])
    raise TypeError(f"expected {expected}")


def _convert_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("use true or false")
    raise TypeError(f"expected a bool, got {type(value).__name__}")


def _convert_number(value: object, kind: type[Any]) -> Any:
    if isinstance(value, bool):
        raise TypeError("expected a number, got a bool")
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            raise ValueError("not an integer" if kind is int else "not a number") from None
    if isinstance(value, int) or (kind is float and isinstance(value, float)):
        return kind(value)
    raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")


def _convert_callable(value: object) -> Callable[..., Any]:
    if isinstance(value, str):
        module_name, _, attr = value.partition(":")
        if not attr or not module_name:
            raise ValueError("name a callable as module:attribute")
        try:
            target = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"cannot import {module_name!r} ({exc})") from None
        for part in attr.split("."):
            if not hasattr(target, part):
                raise ValueError(f"{module_name} has no attribute {attr!r}")
            target = getattr(target, part)
        value = target
    if not callable(value):
        raise TypeError(f"{type(value).__name__} is not callable")
    return value


def _convert_container(value: object, kind: type[Any]) -> Any:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            raise ValueError(f"{value!r} is not a Python literal such as (1, 'a')") from None
    if kind is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    if isinstance(value, (list, tuple)):
        return kind(value)
    raise TypeError(f"expected a sequence, got {type(value).__name__}")


def type_name(hint: Any) -> str:
    """Spell a type hint the way a user reads it (``int | None``, ``'spawn' | 'fork'``)."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " | ".join(repr(c) for c in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(m) for m in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if hint is Any:
        return "any"
    if origin is not None and getattr(origin, "__name__", "") == "Callable":
        return "callable"
    if origin is not None:
        return getattr(origin, "__name__", str(hint))
    return getattr(hint, "__name__", str(hint))


def _json_value(value: object) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple, frozenset, set)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return _show(value)


def _show(value: object) -> str:
    if callable(value) and hasattr(value, "__qualname__"):
        return str(value.__qualname__)
    return repr(value)
