"""How the initializer travels to the workers: pickled once, as the work is.

The work itself is pickled by the core (:func:`curator.backends.shipping.pickle_work`):
classes and functions of importable modules travel by reference (workers
import them); those of ``__main__`` (a script, ``python -c``, a notebook cell)
and of a pipeline file given to ``curator run`` travel by value with
cloudpickle, as in loky and Dask, so workers never need the user's main module
and never run it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from curator import UsageError
from curator.backends.shipping import dumps

__all__ = ["dumps", "pickle_setup"]


def pickle_setup(initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> bytes:
    """Pickle the initializer and its arguments the way the work is pickled."""
    try:
        return dumps((initializer, initargs))
    except Exception as exc:
        raise UsageError(
            f"process-pool cannot pickle the initializer or its arguments "
            f"({type(exc).__name__}: {exc})"
        ) from exc
