"""A stable fingerprint of a pipeline's configuration (not of object identities).

Two pipelines built the same way, in different processes or on different
days, get the same fingerprint; change a parameter, a stage or the number of
items and the fingerprint changes. A checkpoint is keyed by it, so records of
one pipeline are never taken for another's, and resume never returns results
computed with other parameters.

What it covers, for the source, every filter and the sink:

- objects through their attributes (``__dict__``, slots, dataclass fields) and
  the plain data their classes define (``factor = 2`` in a class body);
- functions and lambdas by qualified name, with their default arguments, the
  values their closures captured, and the module-level values their code
  reads (``FACTOR = int(os.environ["FACTOR"])``), also for the methods of a
  stage's class; for its data methods (``__getitem__``, ``__len__``,
  ``__iter__``, ``__call__``), the module-level values that cannot change in
  place and the user functions they call (see :meth:`_Walker._fixed_reads`);
- bound methods with their instance, ``functools.partial`` with its arguments;
- containers element by element (sets and dict keys sorted), large bytes and
  strings by digest, other objects through what they pickle to
  (``__reduce_ex__``).

What it does not cover: the code itself. Editing a stage's code without
changing its parameters keeps the fingerprint, so a resume would reuse results
of the old code; start over (a new checkpoint) after such an edit.

What the data methods read was covered from 2026-12-07 on: it is described
under its own key, added only when there is any, so a pipeline whose data
methods read no such value kept its fingerprint. :func:`legacy_fingerprint`
gives the one curator gave before, so that a checkpoint made then is still
found and resumed.

An object can take over with a ``__curator_fingerprint__()`` method returning
something JSON-serializable. An object curator cannot describe (an open file,
a lock, a socket) makes the pipeline *unfingerprintable*: its checkpoint still
records outcomes, but resume refuses (see :func:`check_fingerprintable`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import logging
import math
import os
import threading
import types
from typing import Any

from curator.checkpoint.code_reads import (
    MAX_DEPTH,
    class_contents,
    fixed,
    global_names,
    is_library,
    slots,
)
from curator.model.errors import UsageError
from curator.model.pipeline import Pipeline
from curator.model.state import accumulates, clean_copy

_DIGEST_ABOVE = 4096  # bytes or characters
_DATA_READS = "data_methods_read"
"""The key of what a class's data methods read (new on 2026-12-07, see :func:`identify`)."""
_LOCKS = (type(threading.Lock()), type(threading.RLock()))
"""Hold no data that could shape an output: described by their type, never a reason to refuse."""


def fingerprint(pipeline: Pipeline[Any]) -> str:
    """The hex SHA-256 of the pipeline's canonical description."""
    return _digest_of(describe(pipeline))


def digest(description: dict[str, Any]) -> str:
    """The fingerprint of a description from :func:`describe` (``fingerprint`` in two steps)."""
    return _digest_of(description)


def describe(pipeline: Pipeline[Any]) -> dict[str, Any]:
    """The canonical, JSON-ready description the fingerprint is computed from."""
    return _describe(pipeline, _Walker())


def legacy_fingerprint(pipeline: Pipeline[Any]) -> str:
    """The fingerprint curator gave ``pipeline`` before it covered the data methods' reads.

    Equal to :func:`fingerprint` for a pipeline whose ``__getitem__``, ``__len__``,
    ``__iter__`` and ``__call__`` read no module-level value that cannot change
    in place (a number, a string, a tuple of them), themselves or through the
    user functions they call.
    """
    return identify(pipeline)[2]


def identify(pipeline: Pipeline[Any]) -> tuple[dict[str, Any], str, str]:
    """The description, its fingerprint and :func:`legacy_fingerprint`, from one walk.

    The earlier description is this one without what the data methods read,
    the one thing an earlier curator left out.
    """
    walker = _Walker()
    description = _describe(pipeline, walker)
    today = _digest_of(description)
    if not walker.data_reads:
        return description, today, today
    held = [(place, place.pop(_DATA_READS)) for place in walker.data_reads]
    try:
        earlier = _digest_of(description)
    finally:
        for place, read in held:
            place[_DATA_READS] = read
    return description, today, earlier


def check_fingerprintable(pipeline: Pipeline[Any]) -> None:
    """Raise :class:`~curator.UsageError` if part of ``pipeline`` cannot be fingerprinted.

    Resume relies on the fingerprint to never reuse results computed with
    other parameters, so it refuses a pipeline whose state it cannot see.
    """
    walker = _Walker()
    _describe(pipeline, walker)
    if walker.problems:
        listed = "; ".join(walker.problems[:5])
        raise UsageError(
            f"cannot resume: curator cannot fingerprint part of the pipeline ({listed}), so it "
            "could not tell whether the checkpoint's results were computed with the same "
            "parameters. Open such resources lazily (inside the stage, on first use), or give "
            "the stage a __curator_fingerprint__() method that returns the values that "
            "determine its output (JSON-serializable)"
        )


def _describe(pipeline: Pipeline[Any], walk: _Walker) -> dict[str, Any]:
    # What an accumulating stage holds is a run's result, not a parameter: it
    # is described reset, so a run that merges state into it keeps its fingerprint.
    return {
        "items": len(pipeline),
        "source": walk.labelled("the source", pipeline.source),
        "filters": [
            walk.labelled(f"filter {n}", _parameters(f)) for n, f in enumerate(pipeline.filters, 1)
        ],
        "sink": walk.labelled("the sink", _parameters(pipeline.sink)),
    }


def _parameters(stage: object) -> object:
    return clean_copy(stage) if accumulates(stage) else stage


class _Walker:
    def __init__(self) -> None:
        self.data_reads: list[dict[str, Any]] = []
        """The descriptions given what their data methods read (see :func:`identify`)."""
        self.active: set[int] = set()
        self.path: list[str] = []
        self.problems: list[str] = []

    def labelled(self, label: str, obj: object) -> Any:
        self.path.append(label)
        try:
            return self(obj, 0)
        finally:
            self.path.pop()

    def __call__(self, obj: object, depth: int) -> Any:
        if obj is None or isinstance(obj, (bool, int)):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else repr(obj)
        if isinstance(obj, str):
            return obj if len(obj) <= _DIGEST_ABOVE else {"sha256": _digest(obj.encode())}
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return {"bytes": len(obj), "sha256": _digest(bytes(obj))}
        if isinstance(obj, os.PathLike):
            return {"path": os.fspath(obj)}
        if isinstance(obj, enum.Enum):
            return {"enum": _qualname(type(obj)), "value": self(obj.value, depth + 1)}
        if isinstance(obj, type):
            return {"class": _qualname(obj)}
        if isinstance(obj, types.ModuleType):
            return {"module": obj.__name__}
        if isinstance(obj, logging.Logger):  # a named singleton (log = getLogger(__name__))
            return {"logger": obj.name}
        if isinstance(obj, _LOCKS):
            return {"lock": _qualname(type(obj))}
        if depth > MAX_DEPTH or id(obj) in self.active:
            return {"ref": _qualname(type(obj))}
        self.active.add(id(obj))
        try:
            return self._compound(obj, depth)
        finally:
            self.active.discard(id(obj))

    def _compound(self, obj: object, depth: int) -> Any:
        custom = getattr(type(obj), "__curator_fingerprint__", None)
        if callable(custom):
            return {"type": _qualname(type(obj)), "custom": custom(obj)}
        if isinstance(obj, (list, tuple)):
            return [self(item, depth + 1) for item in obj]
        if isinstance(obj, dict):
            items = [(self(k, depth + 1), self(v, depth + 1)) for k, v in obj.items()]
            return {"dict": sorted(items, key=_sort_key)}
        if isinstance(obj, (set, frozenset)):
            return {"set": sorted((self(item, depth + 1) for item in obj), key=_sort_key)}
        if isinstance(obj, Pipeline):
            return {"pipeline": _describe(obj, self)}
        if isinstance(obj, functools.partial):
            return {
                "partial": self(obj.func, depth + 1),
                "args": self(list(obj.args), depth + 1),
                "keywords": self(obj.keywords, depth + 1),
            }
        if isinstance(obj, types.MethodType):
            return {"method": _qualname(obj), "self": self._attribute("self", obj.__self__, depth)}
        if isinstance(obj, types.FunctionType):
            return self._function(obj, depth)
        if isinstance(obj, types.BuiltinFunctionType):
            bound = obj.__self__
            if bound is None or isinstance(bound, types.ModuleType):
                return {"callable": _qualname(obj)}
            return {"callable": _qualname(obj), "self": self._attribute("self", bound, depth)}
        return self._instance(obj, depth)

    def _function(self, fn: types.FunctionType, depth: int) -> Any:
        if is_library(fn.__module__):
            # Installed code: its module-level state is not the user's configuration.
            return {"function": _qualname(fn), "defaults": self(list(fn.__defaults__ or ()), depth)}
        closure = []
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
            try:
                closure.append([name, self._attribute(name, cell.cell_contents, depth)])
            except ValueError:  # an empty cell (a name not assigned yet)
                closure.append([name, None])
        return {
            "function": _qualname(fn),
            "defaults": self(list(fn.__defaults__ or ()), depth + 1),
            "kwdefaults": self(fn.__kwdefaults__ or {}, depth + 1),
            "closure": closure,
            "globals": self._globals([fn], depth),
        }

    def _globals(self, functions: list[types.FunctionType], depth: int) -> dict[str, Any]:
        """The module-level data that ``functions`` read (modules and classes by name)."""
        found: dict[str, Any] = {}
        for fn in functions:
            namespace = fn.__globals__
            for name in sorted(global_names(fn.__code__)):
                if name in found or name not in namespace:
                    continue
                value = namespace[name]
                if isinstance(value, (type, types.ModuleType)):
                    found[name] = self(value, depth + 1)
                else:
                    found[name] = self._attribute(name, value, depth)
        return found

    def _instance(self, obj: object, depth: int) -> Any:
        kind = type(obj)
        state: dict[str, Any] | None = None
        if dataclasses.is_dataclass(obj):
            state = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        elif hasattr(obj, "__dict__") or slots(kind):
            state = dict(getattr(obj, "__dict__", {}))
            for slot in slots(kind):
                if hasattr(obj, slot):
                    state[slot] = getattr(obj, slot)
        described: dict[str, Any] = {"type": _qualname(kind)}
        if state is not None:
            described["state"] = {
                key: self._attribute(key, value, depth) for key, value in sorted(state.items())
            }
        else:
            described["reduced"] = self._reduced(obj, depth)
        data, methods, data_methods = class_contents(kind)
        if data:
            described["class"] = {k: self._attribute(k, v, depth) for k, v in data.items()}
        if methods:
            described["globals"] = self._globals(methods, depth)
        if data_methods:
            covered = {
                (id(f.__globals__), name) for f in methods for name in global_names(f.__code__)
            }
            read = self._fixed_reads(data_methods, depth, covered, set())
            if read:  # only then: a pipeline whose data methods read nothing keeps its key
                described[_DATA_READS] = read
                self.data_reads.append(described)
        return described

    def _fixed_reads(
        self,
        functions: list[types.FunctionType],
        depth: int,
        covered: set[tuple[int, str]],
        seen: set[int],
    ) -> dict[str, Any]:
        """The module-level values ``functions`` read that cannot change while a run goes.

        Numbers, strings, bytes, enum members, and tuples and frozensets of
        them (by digest when large), and the user functions they call, with
        theirs. What can change in place (a dict filled as items pass, a
        connection, an object) is left out: describing it would give the
        pipeline another fingerprint as it ran. ``covered`` names what the
        other methods read (by module namespace and name): described already.
        """
        found: dict[str, Any] = {}
        for fn in functions:
            if id(fn) in seen:  # a function that calls itself
                continue
            seen.add(id(fn))
            namespace = fn.__globals__
            for name in sorted(global_names(fn.__code__)):
                if name in found or (id(namespace), name) in covered or name not in namespace:
                    continue
                value = namespace[name]
                if isinstance(value, types.FunctionType) and not is_library(value.__module__):
                    reads = self._fixed_reads([value], depth + 1, covered, seen)
                    if reads:
                        found[name] = {"function": _qualname(value), "globals": reads}
                elif fixed(value):
                    described = self._attribute(name, value, depth)
                    text = _canonical(described)
                    found[name] = (
                        described
                        if len(text) <= _DIGEST_ABOVE
                        else {"sha256": _digest(text.encode())}
                    )
        return found

    def _reduced(self, obj: object, depth: int) -> Any:
        """Objects without attributes (C types): what they pickle to."""
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception as exc:
            where = " > ".join(self.path) or "the pipeline"
            self.problems.append(f"{where} is a {_qualname(type(obj))} ({exc})")
            return {"unfingerprintable": _qualname(type(obj))}
        if isinstance(reduced, str):
            return {"global": reduced}
        parts = list(reduced[:5]) + [None] * (5 - len(reduced))
        maker, args, state, items, entries = parts
        return {
            "maker": self(maker, depth + 1),
            "args": self(list(args or ()), depth + 1),
            "state": self(state, depth + 1),
            "items": self(list(items) if items is not None else None, depth + 1),
            "entries": self(dict(entries) if entries is not None else None, depth + 1),
        }

    def _attribute(self, name: str, value: object, depth: int) -> Any:
        self.path.append(repr(name))
        try:
            return self(value, depth + 1)
        finally:
            self.path.pop()


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(description: Any) -> str:
    return json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)


def _digest_of(description: Any) -> str:
    return _digest(_canonical(description).encode())


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
