"""The built-in backends, registered through the same hook as third-party ones."""

from __future__ import annotations

from curator.backends.backend import Backend
from curator.backends.sequential import SequentialBackend
from curator.backends.thread_pool import ThreadPoolBackend
from curator.plugin_host.hookspecs import hookimpl

__all__ = ["SequentialBackend", "ThreadPoolBackend"]


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    """Provide ``sequential`` and ``thread-pool``."""
    return [SequentialBackend, ThreadPoolBackend]
