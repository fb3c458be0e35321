"""The checkpoint's pickler, and the check that a value will pickle with it.

The checkpoint stores sinks' results and stages' partial states with plain
:mod:`pickle`, in the run's process (so that reading them back needs nothing
but the classes they name). Whatever an item's work accepts must be storable
there, or the checkpoint's writer fails on it and takes the outcomes of its
whole batch with it. So :func:`dumps` is the one pickler: the journal's
encoder stores with it and :class:`curator.Work` checks each value with it
where the value is made, so a value the checkpoint cannot store fails its
own item there.

A worker process is not the run's process. It has the run's modules (it
imports them, or its copy of the work brought them), except the user's
``__main__`` and the modules the work brought by value
(:func:`sent_by_value`: a pipeline file on a cluster): their classes and
functions travel to workers by value (with cloudpickle), so plain pickle in
the worker cannot find them by name, while the run's process, which defines
them, can. Where a value is made outside the run's process, :func:`dumps`
therefore pickles those by name as the run's process will. Anything else that plain pickle
refuses (a class defined inside a function, a lambda, a lock) is refused
everywhere, even though cloudpickle could carry it home by value: the
checkpoint could not store it.
"""

from __future__ import annotations

import importlib
import io
import itertools
import pickle
import sys
import types
from collections.abc import Iterable
from typing import Any

PROTOCOL = pickle.HIGHEST_PROTOCOL

_SENT_BY_VALUE: set[str] = set()
"""Modules besides ``__main__`` whose classes and functions reached this process by value."""


def sent_by_value(modules: Iterable[str]) -> None:
    """Note that what ``modules`` define reached this (worker) process by value.

    Loading what :func:`curator.backends.shipping.dumps` pickled calls it: copies of
    those modules' classes and functions are then pickled by name, as
    ``__main__``'s are.
    """
    _SENT_BY_VALUE.update(modules)


def code_in(code: types.CodeType, filename: str) -> types.CodeType:
    """``code`` with ``filename`` as its file: how code sent by value gets its file name back.

    See :func:`curator.backends.shipping.dumps`; a worker's traceback then
    names the user's file and line, and shows the line where the file exists.
    """
    return code.replace(co_filename=filename)


def dumps(value: Any, elsewhere: bool = False) -> bytes:
    """``value`` pickled as the checkpoint stores it.

    ``elsewhere``: the value was made outside the run's process (a worker);
    classes and functions of the run's ``__main__`` it holds are then taken
    to be the run's own, by name.

    Raises
    ------
    Exception
        Whatever :mod:`pickle` raises for a value the run's process could
        not pickle (``PicklingError``, ``TypeError``, ``AttributeError``, ...).
    """
    try:
        return pickle.dumps(value, protocol=PROTOCOL)
    except Exception:
        if not elsewhere:
            raise
    buffer = io.BytesIO()
    _AsTheRunWill(buffer, protocol=PROTOCOL).dump(value)
    return buffer.getvalue()


_ATOMS = frozenset({str, int, float, bool, bytes, type(None)})
"""Types whose values hold no reference to another object: no cycle can run through them."""
_FLAT_OUTPUTS = frozenset({list, tuple, type(None)})
"""What an output may be for :func:`dumps_outputs` to skip the memo (``None``: a failed item)."""


def dumps_outputs(values: list[Any]) -> bytes:
    """The sinks' outputs of many items (one entry each) pickled as :func:`dumps` does.

    A sink most often returns a list of paths or numbers. When every output is
    such a list or tuple of strings, numbers, bytes or ``None`` (or is ``None``), pickle's memo
    (which keeps every object it wrote, to write a repeated one by reference)
    is skipped: it costs more than the rest of the pickling, and such values
    hold no cycle. What they share is written again instead (two items that
    returned one list come back with two equal lists, as they would from two
    workers). The result unpickles equal.
    """
    if set(map(type, values)) <= _FLAT_OUTPUTS and (
        set(map(type, itertools.chain.from_iterable(filter(None, values)))) <= _ATOMS
    ):
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=PROTOCOL)
        pickler.fast = True  # no memo: nothing repeats by reference in these values
        pickler.dump(values)
        return buffer.getvalue()
    return dumps(values)


def problem(value: Any, elsewhere: bool = False) -> Exception | None:
    """Why the checkpoint could not store ``value`` (see :func:`dumps`), or ``None``."""
    try:
        dumps(value, elsewhere)
    except Exception as exc:
        return exc
    return None


def _main_attribute(qualname: str) -> Any:
    """The object named ``qualname`` in ``__main__`` (how a copy pickles; never unpickled here)."""
    return _module_attribute("__main__", qualname)


def _module_attribute(module: str, qualname: str) -> Any:
    """The object named ``qualname`` in ``module`` (how a copy of a by-value module pickles)."""
    return _walk(importlib.import_module(module), qualname)


def _walk(found: Any, qualname: str) -> Any:
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


class _AsTheRunWill(pickle.Pickler):
    """Plain pickle, with copies of the run's by-value classes and functions pickled by name."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type | types.FunctionType) and _copy_from_the_run(obj):
            if obj.__module__ == "__main__":
                return _main_attribute, (obj.__qualname__,)
            return _module_attribute, (obj.__module__, obj.__qualname__)
        return NotImplemented


def _copy_from_the_run(obj: type | types.FunctionType) -> bool:
    """Whether ``obj`` is a by-value copy of a name of ``__main__`` or of a module sent by value."""
    module = getattr(obj, "__module__", None)
    if module != "__main__" and module not in _SENT_BY_VALUE:
        return False
    qualname = getattr(obj, "__qualname__", "")
    if not qualname or "<" in qualname:  # <locals>, <lambda>: no name to find it by
        return False
    loaded = sys.modules.get(module)
    if loaded is None:  # never imported here: only its copies are
        return True
    try:
        return _walk(loaded, qualname) is not obj
    except AttributeError:
        return True
