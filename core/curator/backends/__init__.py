"""Backends: what runs the items, and the toolkit for writing a backend.

Owns the :class:`~curator.backends.backend.Backend` base class and its
capabilities, :class:`~curator.backends.work.Work` (one run's pipeline and
settings, shipped to each worker once, running items there with the stage
lifecycle and the watchdog), dispatch planning, spawning and shipping
helpers for backend authors and the built-in ``sequential`` and
``thread-pool`` backends, registered (:mod:`curator.backends.builtin`) through
the same hook as third-party ones. Importing the package imports nothing: a
worker that unpickles a :class:`~curator.backends.work.Work` loads only what
``Work`` needs, not the plugin system. May import :mod:`curator.model`,
:mod:`curator.plugin_host` and :mod:`curator.observing`; never the run's
loop, the checkpoint or the command line.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # The built-in backends, where release 0.1 had them, without importing them eagerly.
    if name in ("SequentialBackend", "ThreadPoolBackend"):
        from curator.backends import builtin

        return getattr(builtin, name)
    raise AttributeError(f"module 'curator.backends' has no attribute {name!r}")
