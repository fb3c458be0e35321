"""Backends: what runs the items, and the toolkit for writing a backend.

Owns the :class:`~curator.backends.backend.Backend` base class and its
capabilities, :class:`~curator.backends.work.Work` (one run's pipeline and
settings, shipped to each worker once, running items there with the stage
lifecycle and the watchdog), dispatch planning, spawning and shipping
helpers for backend authors, the contract checks and the built-in
``sequential`` and ``thread-pool`` backends, registered here through the same
hook as third-party ones. May import :mod:`curator.model`,
:mod:`curator.plugin_host` and :mod:`curator.observing`; never the run's
loop, the checkpoint or the command line.
"""

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
