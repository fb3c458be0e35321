"""Observing: what is measured and kept around each item, and how a run is shown.

Owns captured output and the stage meter (the worker side of capture and
metrics), per-item features of plugins, their built-in plugins, the
reporter base class, the live progress view of a run and the built-in
reporters. May import :mod:`curator.model` and :mod:`curator.plugin_host`;
never a backend, the run, the checkpoint or the command line.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # The classes of the built-in capture and metrics plugins, where release 0.1 had them
    # (module curator.observing, now the package: its capture and metrics are modules).
    if name in ("Capture", "Measure", "Provides"):
        from curator.observing import builtin

        return getattr(builtin, name)
    raise AttributeError(f"module 'curator.observing' has no attribute {name!r}")
