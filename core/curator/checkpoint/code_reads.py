"""What a pipeline's code reads, for its fingerprint (see :mod:`curator.checkpoint.fingerprint`).

The module-level names a function loads, whether a module is installed code
(whose state is no user's configuration), what a user class defines (plain
data, methods, and the data methods a pipeline calls, unwrapped), and which
values cannot change in place.
"""

from __future__ import annotations

import dis
import enum
import functools
import os
import sys
import sysconfig
import types
from collections.abc import Iterator
from typing import Any

MAX_DEPTH = 32
"""How deep containers and wrappers are followed."""
PLAIN = (type(None), bool, int, float, str, bytes, tuple, list, dict, set, frozenset, enum.Enum)
"""Plain data a class body may define: a parameter."""

_ATOMS = (type(None), bool, int, float, complex, str, bytes, enum.Enum)


def fixed(value: object, depth: int = 0) -> bool:
    """Whether ``value`` cannot change in place: an atom, or a tuple or frozenset of fixed ones."""
    if isinstance(value, _ATOMS):
        return True
    if isinstance(value, (tuple, frozenset)) and depth < MAX_DEPTH:
        return all(fixed(item, depth + 1) for item in value)
    return False


def unwrapped(method: object) -> types.FunctionType | None:
    """The function a data method runs: through staticmethod, partialmethod and decorators."""
    for _ in range(MAX_DEPTH):
        if isinstance(method, types.FunctionType) and not hasattr(method, "__wrapped__"):
            return method
        if isinstance(method, (staticmethod, classmethod)):
            method = method.__func__
        elif isinstance(method, functools.partialmethod):
            method = method.func
        elif hasattr(method, "__wrapped__"):  # functools.wraps, as decorators set it
            method = method.__wrapped__
        else:
            return None
    return None


def global_names(code: types.CodeType) -> Iterator[str]:
    """Names that ``code`` (and the functions and lambdas nested in it) load as globals."""
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME") and instruction.argval:
            yield instruction.argval
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from global_names(const)


@functools.lru_cache(maxsize=1024)
def is_library(module: str | None) -> bool:
    """Whether ``module`` was installed (standard library, site-packages), not user code."""
    if not module or module in sys.builtin_module_names:
        return True
    if module.split(".")[0] == "curator":
        return module.startswith("curator.") and not module.startswith("curator.testing")
    path = getattr(sys.modules.get(module), "__file__", None)
    if not path:
        return False
    path = os.path.realpath(path)
    return any(path.startswith(root + os.sep) for root in _installed_roots())


@functools.lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    return tuple(sorted(os.path.realpath(r) for r in roots))


_DATA_METHODS = frozenset({"__getitem__", "__len__", "__iter__", "__call__"})
"""The special methods through which a pipeline reads and makes its data."""


def class_contents(
    kind: type,
) -> tuple[dict[str, Any], list[types.FunctionType], list[types.FunctionType]]:
    """The plain data a user class defines, its methods, and its data methods.

    The globals of both kinds of methods count; the data methods' are described
    apart (see the module's docstring).
    """
    data: dict[str, Any] = {}
    methods: list[types.FunctionType] = []
    data_methods: list[types.FunctionType] = []
    for klass in reversed(kind.__mro__):
        if is_library(klass.__module__):
            continue
        for name, value in vars(klass).items():
            if name in _DATA_METHODS:
                method = unwrapped(value)
                if method is not None:
                    data_methods.append(method)
                continue
            if name.startswith("__") and name.endswith("__"):
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, types.FunctionType):
                methods.append(value)
            elif isinstance(value, property):
                methods += [f for f in (value.fget,) if isinstance(f, types.FunctionType)]
            elif isinstance(value, PLAIN):
                data[name] = value
    return data, methods, data_methods


def slots(cls: type) -> list[str]:
    """The slot names of ``cls`` and its bases (not ``__dict__`` or ``__weakref__``)."""
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return [n for n in names if n not in ("__dict__", "__weakref__")]
