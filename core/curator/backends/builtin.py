"""The built-in backends, registered through the same hook as third-party ones.

By reference, as a plugin's: a run imports the module of the backend it runs only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curator.backends.backend import Backend
from curator.plugin_host.class_ref import ClassRef, loaded_on_access
from curator.plugin_host.hookspecs import hookimpl

if TYPE_CHECKING:
    from curator.backends.sequential import SequentialBackend
    from curator.backends.thread_pool import ThreadPoolBackend

__all__ = ["SequentialBackend", "ThreadPoolBackend"]

_CLASSES = {
    "SequentialBackend": ClassRef("sequential", "curator.backends.sequential:SequentialBackend"),
    "ThreadPoolBackend": ClassRef("thread-pool", "curator.backends.thread_pool:ThreadPoolBackend"),
}


# Where release 0.1 had the classes, without importing them eagerly.
__getattr__ = loaded_on_access(__name__, _CLASSES)


@hookimpl
def curator_register_backends() -> list[type[Backend] | ClassRef]:
    """Provide ``sequential`` and ``thread-pool``."""
    return list(_CLASSES.values())
