"""How the pipeline and the initializer travel to the workers: pickled once, by value when needed.

Classes and functions of importable modules travel by reference (workers
import them). Those of ``__main__`` (a script, ``python -c``, a notebook cell)
travel by value with cloudpickle, as in loky and Dask, so workers never need
the user's main module and never run it again.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from curator import UsageError, Work


def dumps(obj: object) -> bytes:
    """Pickle ``obj``, with what ``__main__`` defines by value; plain ``pickle.loads`` reads it."""
    import cloudpickle  # type: ignore[import-untyped]  # about 60 ms: only when needed

    return bytes(cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def pickle_work(work: Work) -> bytes:
    """Pickle the work once, or say which part of the pipeline cannot be pickled.

    Classes and functions of importable modules travel by reference (workers
    import them); those of ``__main__`` (a script, ``python -c``, a notebook)
    travel by value, so workers never need the main module.
    """
    try:
        return dumps(work)
    except Exception as exc:
        culprit = _find_unpicklable(work)
        raise UsageError(
            f"process-pool needs a picklable pipeline, but {culprit} cannot be pickled "
            f"({type(exc).__name__}: {exc}); keep open files, locks and connections out "
            "of the pipeline's attributes (open them lazily, in the worker)"
        ) from exc


def pickle_setup(initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> bytes:
    """Pickle the initializer and its arguments the way the work is pickled."""
    try:
        return dumps((initializer, initargs))
    except Exception as exc:
        raise UsageError(
            f"process-pool cannot pickle the initializer or its arguments "
            f"({type(exc).__name__}: {exc})"
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
