"""curator: run data-curation pipelines on pluggable run backends.

The public API::

    from curator import Source, Filter, Sink, Pipeline, run

    pipeline = MySource(...).filter(MyFilter()).write(MySink(out))
    result = run(pipeline, backend="thread-pool", jobs=4)
    result.outputs  # one entry per index, in order

Importing curator loads no plugin; plugins load on the first run or listing.
"""

from __future__ import annotations

from curator._version import __version__
from curator.backend import Backend, Capabilities
from curator.errors import (
    BackendContractError,
    CuratorError,
    PluginError,
    RunInterrupted,
    TaskFailedError,
    UnknownNameError,
    UsageError,
)
from curator.hookspecs import hookimpl
from curator.options import NoOptions, option
from curator.outcome import ErrorInfo, Event, Outcome, Status, TaskStart
from curator.pipeline import Filter, Pipeline, Sink, Source
from curator.registry import Registry, default_registry
from curator.reporter import Reporter
from curator.result import RunInfo, RunResult
from curator.run import run
from curator.work import Work

__all__ = [
    "Backend",
    "BackendContractError",
    "Capabilities",
    "CuratorError",
    "ErrorInfo",
    "Event",
    "Filter",
    "NoOptions",
    "Outcome",
    "Pipeline",
    "PluginError",
    "Registry",
    "Reporter",
    "RunInfo",
    "RunInterrupted",
    "RunResult",
    "Sink",
    "Source",
    "Status",
    "TaskFailedError",
    "TaskStart",
    "UnknownNameError",
    "UsageError",
    "Work",
    "__version__",
    "default_registry",
    "hookimpl",
    "option",
    "run",
]
