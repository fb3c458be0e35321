"""Pickling the work for other processes: what they may be unable to import travels by value.

Classes and functions of importable modules travel by reference (the
receiving process imports them). Those of ``__main__`` (a script, ``python
-c``, a notebook) travel by value with cloudpickle, and so do those of a
pipeline file given to ``curator run`` (``jobs/convert.py:pipeline``): it is
imported under the file's name from its folder, which a worker on another
machine, or started in another directory, does not have. The CLI marks such a
module with :func:`ship_by_value`; :func:`dumps` pickles it by value, and
:func:`pickle_work` pickles a run's work with it (or names the part of the
pipeline that cannot be pickled). cloudpickle comes with the backends that
send work away (process pool, Dask); the core imports it only in :func:`dumps`, and
only when something must travel by value (else the work is pickled plainly).
"""

from __future__ import annotations

import io
import pickle
import sys
from functools import partial
from types import CodeType, FunctionType, ModuleType
from typing import Any

from curator.backends.work import Work
from curator.model.errors import PluginError, UsageError
from curator.model.pickling import code_in, sent_by_value

_BY_VALUE: set[str] = set()
"""Names of the modules :func:`ship_by_value` marked."""


def ship_by_value(module: ModuleType) -> None:
    """Let :func:`dumps` pickle what ``module`` defines by value (workers may lack the module)."""
    _BY_VALUE.add(module.__name__)


def dumps(obj: object) -> bytes:
    """Pickle ``obj`` for another process; plain :func:`pickle.loads` reads it where curator is.

    What ``__main__`` and the modules marked by :func:`ship_by_value` define
    goes by value, with cloudpickle; what they import from other modules goes by
    reference, so those modules must be importable where the bytes are loaded.
    Loading the bytes tells that process which modules came by value
    (:func:`curator.model.pickling.sent_by_value`), so its check of the values it
    makes takes their copies for the run's own.

    Work that is all importable (classes and functions of installed modules)
    is pickled plainly: the receiving process imports them by name either way,
    and neither process imports cloudpickle (about 10 ms each). Not while
    modules are registered with cloudpickle's own
    ``cloudpickle.register_pickle_by_value`` (say, for a Dask cluster that
    lacks them): those, and their submodules, must travel by value too.
    """
    shipped = sorted(name for name in _BY_VALUE if isinstance(sys.modules.get(name), ModuleType))
    homes = ("__main__", *shipped)
    if not _registered_elsewhere(shipped) and not _made_in(obj, homes):
        plain = _by_reference(obj, homes)
        if plain is not None:
            return plain
    import cloudpickle  # type: ignore[import-untyped,unused-ignore]  # ~60 ms: only when needed

    registered = set(cloudpickle.list_registry_pickle_by_value())
    for name in shipped:
        if name not in registered:
            cloudpickle.register_pickle_by_value(sys.modules[name])
    payload = _Arrival(tuple(shipped), obj) if shipped else obj
    buffer = io.BytesIO()
    _file_naming_pickler(cloudpickle)(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(payload)
    return buffer.getvalue()


_FileNaming: type | None = None


def _file_naming_pickler(cloudpickle: Any) -> Any:
    """The pickler of cloudpickle, keeping the file name of the code it sends by value.

    cloudpickle (3.1) names every such function's file ``<dynamic-code>``, for
    payloads that do not depend on where the code was defined. A worker's
    traceback then names no file: the item failed "in <dynamic-code>, line
    7". Each code object here travels as a copy that cloudpickle reduces as
    usual, with its file name beside it (:func:`curator.model.pickling.code_in`).
    """
    global _FileNaming
    if _FileNaming is None:

        class FileNaming(cloudpickle.Pickler):  # type: ignore[misc,name-defined,unused-ignore]
            def __init__(self, file: io.BytesIO, protocol: int) -> None:
                super().__init__(file, protocol=protocol)
                self.copies: dict[int, CodeType] = {}  # kept alive: their ids stay theirs

            def reducer_override(self, obj: Any) -> Any:
                if type(obj) is CodeType and id(obj) not in self.copies:
                    copy = obj.replace()
                    self.copies[id(copy)] = copy  # cloudpickle's own reduction takes it
                    return code_in, (copy, obj.co_filename)
                return super().reducer_override(obj)

        _FileNaming = FileNaming
    return _FileNaming


def _registered_elsewhere(shipped: list[str]) -> bool:
    """Whether modules besides ``shipped`` are registered with cloudpickle to go by value."""
    cloudpickle = sys.modules.get("cloudpickle")
    if cloudpickle is None:  # nobody registered anything
        return False
    listed = getattr(cloudpickle, "list_registry_pickle_by_value", None)
    return listed is not None and bool(set(listed()) - set(shipped))


def _made_in(obj: object, homes: tuple[str, ...]) -> bool:
    """Whether ``obj``, a stage of a work, or a stage's attribute comes from one of ``homes``.

    A quick look (classes, functions, bound methods, partials), to spare
    pickling a large pipeline twice in the common cases (stages, or the
    callables they hold, defined in a script or notebook): :func:`_by_reference`
    is what decides.
    """
    parts: list[object] = [obj]
    if isinstance(obj, Work):
        pipeline = obj.pipeline
        stages = [pipeline.source, *pipeline.filters, pipeline.sink]
        parts += stages
        for stage in stages:
            parts += getattr(stage, "__dict__", {}).values()
    for part in parts:
        try:
            if isinstance(part, partial):
                part = part.func
            part = getattr(part, "__func__", part)  # a bound method: its function
        except Exception:  # an attribute hook of the user's: only a shortcut is lost
            continue
        kind = part if isinstance(part, (type, FunctionType)) else type(part)
        if getattr(kind, "__module__", None) in homes:
            return True
    return False


def _by_reference(obj: object, homes: tuple[str, ...]) -> bytes | None:
    """``obj`` pickled plainly, or ``None`` when something in it must travel by value.

    Plain pickle names classes, functions and other globals (a ``TypeVar``) by
    module and name. It refuses what has no importable name (a lambda, a class
    defined in a function), and names what lives in ``homes`` (modules the
    receiving process lacks) without complaint: the bytes are searched for
    those module names, as the opcodes that push a string write them. A match
    in plain data only costs the cloudpickle route.
    """
    try:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None
    for home in homes:
        name = home.encode()
        size = len(name)
        short = b"\x8c" + bytes([size]) if size < 256 else b""  # SHORT_BINUNICODE
        long = b"X" + size.to_bytes(4, "little")  # BINUNICODE
        if (short and short + name in data) or long + name in data:
            return None
    return data


class _Arrival:
    """``obj`` with the modules it brought by value; unpickles as ``obj`` itself."""

    def __init__(self, modules: tuple[str, ...], obj: object) -> None:
        self.modules = modules
        self.obj = obj

    def __reduce__(self) -> tuple[Any, tuple[tuple[str, ...], object]]:
        return _arrive, (self.modules, self.obj)


def _arrive(modules: tuple[str, ...], obj: object) -> object:
    sent_by_value(modules)
    return obj


def pickle_work(work: Work, backend: str) -> bytes:
    """The work pickled with :func:`dumps` once, or a clear error naming what cannot be pickled.

    Raises
    ------
    UsageError
        Naming the stage, and its attribute when one is the culprit.
    PluginError
        Naming the per-item feature of a plugin that cannot be pickled.
    """
    try:
        return dumps(work)
    except Exception as exc:
        for feature in work.features:  # a plugin's per-item feature travels with the work
            if not _picklable(feature):
                raise PluginError(
                    f"{backend} ships the run's per-item features to its workers, but the "
                    f"feature {feature.name!r} ({_name(feature)}) cannot be pickled "
                    f"({type(exc).__name__}: {exc}); its plugin must keep locks, files and "
                    "connections out of the feature's attributes (or disable the plugin: "
                    "CURATOR_DISABLE_PLUGINS)"
                ) from exc
        culprit = _find_unpicklable(work)
        raise UsageError(
            f"{backend} needs a picklable pipeline, but {culprit} cannot be pickled "
            f"({type(exc).__name__}: {exc}); keep open files, locks and connections out "
            "of the pipeline's attributes (open them lazily, in the worker)"
        ) from exc


def _find_unpicklable(work: Work) -> str:
    pipeline = work.pipeline
    stages: list[tuple[str, object]] = [("the source", pipeline.source)]
    stages += [(f"filter {n}", f) for n, f in enumerate(pipeline.filters, 1)]
    stages.append(("the sink", pipeline.sink))
    for role, stage in stages:
        if _picklable(stage):
            continue
        label = f"{role} ({_name(stage)})"
        for attr, value in getattr(stage, "__dict__", {}).items():
            if not _picklable(value):
                return f"attribute {attr!r} of {label}, a {type(value).__name__},"
        return label
    return "the pipeline"


def _picklable(obj: object) -> bool:
    try:
        dumps(obj)
    except Exception:
        return False
    return True


def _name(obj: object) -> str:
    kind = (
        obj
        if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__"))
        else type(obj)
    )
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', repr(kind))}"
