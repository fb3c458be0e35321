"""curator: run data-curation pipelines on pluggable run backends.

The public API::

    from curator import Source, Filter, Sink, Pipeline, run

    pipeline = MySource(...).filter(MyFilter()).write(MySink(out))
    result = run(pipeline, backend="thread-pool", jobs=4)
    result.outputs  # one entry per index, in order

Importing curator loads no plugin; plugins load on the first run or listing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from curator._version import __version__

if TYPE_CHECKING:
    from curator.backend import Backend, Capabilities
    from curator.capture import Captured
    from curator.errors import (
        BackendContractError,
        CuratorError,
        HardStop,
        HookFailedError,
        PluginError,
        RunInterrupted,
        SessionBusyError,
        StateMergeError,
        TaskFailedError,
        UnknownNameError,
        UsageError,
    )
    from curator.features import ItemFeature
    from curator.hookspecs import hookimpl
    from curator.lifecycle import WorkerInfo
    from curator.metrics import Metrics, StageSummary
    from curator.options import NoOptions, option
    from curator.outcome import ErrorInfo, ErrorKind, Event, Outcome, Status, Successes, TaskStart
    from curator.pipeline import Filter, Pipeline, Sink, Source
    from curator.registry import Registry, default_registry
    from curator.reporter import Reporter
    from curator.result import RunInfo, RunResult
    from curator.runner import run
    from curator.session import Session
    from curator.streaming import RunStream, stream
    from curator.work import Work

# Names resolve on first use (PEP 562), so a worker process that only needs
# ``curator.work`` does not pay for the plugin system, and the CLI's import
# stays small.
_HOMES = {
    "Backend": "curator.backend",
    "Capabilities": "curator.backend",
    "Captured": "curator.capture",
    "BackendContractError": "curator.errors",
    "CuratorError": "curator.errors",
    "HardStop": "curator.errors",
    "HookFailedError": "curator.errors",
    "PluginError": "curator.errors",
    "RunInterrupted": "curator.errors",
    "SessionBusyError": "curator.errors",
    "StateMergeError": "curator.errors",
    "TaskFailedError": "curator.errors",
    "UnknownNameError": "curator.errors",
    "UsageError": "curator.errors",
    "ItemFeature": "curator.features",
    "hookimpl": "curator.hookspecs",
    "WorkerInfo": "curator.lifecycle",
    "Metrics": "curator.metrics",
    "StageSummary": "curator.metrics",
    "NoOptions": "curator.options",
    "option": "curator.options",
    "ErrorInfo": "curator.outcome",
    "ErrorKind": "curator.outcome",
    "Event": "curator.outcome",
    "Outcome": "curator.outcome",
    "Status": "curator.outcome",
    "Successes": "curator.outcome",
    "TaskStart": "curator.outcome",
    "Filter": "curator.pipeline",
    "Pipeline": "curator.pipeline",
    "Sink": "curator.pipeline",
    "Source": "curator.pipeline",
    "Registry": "curator.registry",
    "default_registry": "curator.registry",
    "Reporter": "curator.reporter",
    "RunInfo": "curator.result",
    "RunResult": "curator.result",
    "run": "curator.runner",
    "RunStream": "curator.streaming",
    "Session": "curator.session",
    "stream": "curator.streaming",
    "Work": "curator.work",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'curator' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Backend",
    "BackendContractError",
    "Capabilities",
    "Captured",
    "CuratorError",
    "ErrorInfo",
    "ErrorKind",
    "Event",
    "Filter",
    "HardStop",
    "HookFailedError",
    "ItemFeature",
    "Metrics",
    "NoOptions",
    "Outcome",
    "Pipeline",
    "PluginError",
    "Registry",
    "Reporter",
    "RunInfo",
    "RunInterrupted",
    "RunResult",
    "RunStream",
    "Session",
    "SessionBusyError",
    "Sink",
    "Source",
    "StageSummary",
    "StateMergeError",
    "Status",
    "Successes",
    "TaskFailedError",
    "TaskStart",
    "UnknownNameError",
    "UsageError",
    "Work",
    "WorkerInfo",
    "__version__",
    "default_registry",
    "hookimpl",
    "option",
    "run",
    "stream",
]
