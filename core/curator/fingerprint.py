"""A stable fingerprint of a pipeline's configuration (not of object identities).

Two pipelines built the same way, in different processes or on different
days, get the same fingerprint; change a parameter, a stage or the number of
items and the fingerprint changes. A checkpoint is keyed by it, so records of
one pipeline are never taken for another's.

The walk covers the source, every filter and the sink: classes and functions
by qualified name, containers element by element (sets and dict keys sorted),
objects through their attributes, large bytes and strings by digest. An
object can take over with a ``__curator_fingerprint__()`` method returning
something JSON-serializable.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import math
import os
import types
from typing import Any

from curator.pipeline import Pipeline

_FUNCTIONS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    functools.partial,
)
_MAX_DEPTH = 32
_DIGEST_ABOVE = 4096  # bytes or characters


def fingerprint(pipeline: Pipeline[Any]) -> str:
    """The hex SHA-256 of the pipeline's canonical description."""
    description = describe(pipeline)
    text = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def describe(pipeline: Pipeline[Any]) -> dict[str, Any]:
    """The canonical, JSON-ready description the fingerprint is computed from."""
    walk = _Walker()
    return {
        "items": len(pipeline),
        "source": walk(pipeline.source, 0),
        "filters": [walk(f, 0) for f in pipeline.filters],
        "sink": walk(pipeline.sink, 0),
    }


class _Walker:
    def __init__(self) -> None:
        self.active: set[int] = set()

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
        if isinstance(obj, _FUNCTIONS):
            return {"callable": _qualname(obj)}
        if depth > _MAX_DEPTH or id(obj) in self.active:
            return {"ref": _qualname(type(obj))}
        self.active.add(id(obj))
        try:
            return self._container(obj, depth)
        finally:
            self.active.discard(id(obj))

    def _container(self, obj: object, depth: int) -> Any:
        custom = getattr(obj, "__curator_fingerprint__", None)
        if callable(custom):
            return {"type": _qualname(type(obj)), "custom": custom()}
        if isinstance(obj, (list, tuple)):
            return [self(item, depth + 1) for item in obj]
        if isinstance(obj, dict):
            items = [(self(k, depth + 1), self(v, depth + 1)) for k, v in obj.items()]
            return {"dict": sorted(items, key=_sort_key)}
        if isinstance(obj, (set, frozenset)):
            return {"set": sorted((self(item, depth + 1) for item in obj), key=_sort_key)}
        if isinstance(obj, Pipeline):
            return {"pipeline": describe(obj)}
        state: dict[str, Any] = {}
        if dataclasses.is_dataclass(obj):
            state = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        else:
            state = dict(getattr(obj, "__dict__", {}))
            for slot in _slots(type(obj)):
                if hasattr(obj, slot):
                    state[slot] = getattr(obj, slot)
        return {
            "type": _qualname(type(obj)),
            "state": {key: self(value, depth + 1) for key, value in sorted(state.items())},
        }


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return [n for n in names if n not in ("__dict__", "__weakref__")]


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
