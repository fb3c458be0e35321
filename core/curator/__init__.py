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

from curator import _moved
from curator._version import __version__

_moved.install()

if TYPE_CHECKING:
    from curator.backends.backend import Backend, Capabilities
    from curator.backends.lifecycle import WorkerInfo
    from curator.backends.releasing import uninterrupted
    from curator.backends.work import Work
    from curator.backends.worker_process import starting_workers, tie_to_run
    from curator.model.captured import Captured
    from curator.model.errors import (
        BackendContractError,
        CuratorError,
        HardStop,
        HookFailedError,
        PluginError,
        RunInterrupted,
        SessionBusyError,
        StateMergeError,
        TaskFailedError,
        TeardownError,
        UnknownNameError,
        UsageError,
    )
    from curator.model.measures import Metrics, StageSummary
    from curator.model.outcome import (
        ErrorInfo,
        ErrorKind,
        Event,
        Outcome,
        Status,
        Successes,
        TaskStart,
    )
    from curator.model.pipeline import Filter, Pipeline, Sink, Source
    from curator.model.result import RunInfo, RunResult
    from curator.model.table import OutcomeTable
    from curator.observing.features import ItemFeature
    from curator.observing.reporter import Reporter
    from curator.plugin_host.class_ref import ClassRef
    from curator.plugin_host.hookspecs import hookimpl
    from curator.plugin_host.options import NoOptions, option
    from curator.plugin_host.registry import Registry, default_registry
    from curator.running.runner import run
    from curator.running.session import Session
    from curator.running.streaming import RunStream, stream

# Names resolve on first use (PEP 562), so a worker process that only needs
# ``curator.backends.work`` does not pay for the plugin system, and the CLI's import
# stays small.
_HOMES = {
    "Backend": "curator.backends.backend",
    "Capabilities": "curator.backends.backend",
    "Captured": "curator.model.captured",
    "BackendContractError": "curator.model.errors",
    "CuratorError": "curator.model.errors",
    "HardStop": "curator.model.errors",
    "HookFailedError": "curator.model.errors",
    "PluginError": "curator.model.errors",
    "RunInterrupted": "curator.model.errors",
    "SessionBusyError": "curator.model.errors",
    "StateMergeError": "curator.model.errors",
    "TaskFailedError": "curator.model.errors",
    "TeardownError": "curator.model.errors",
    "UnknownNameError": "curator.model.errors",
    "UsageError": "curator.model.errors",
    "ItemFeature": "curator.observing.features",
    "hookimpl": "curator.plugin_host.hookspecs",
    "ClassRef": "curator.plugin_host.class_ref",
    "WorkerInfo": "curator.backends.lifecycle",
    "Metrics": "curator.model.measures",
    "StageSummary": "curator.model.measures",
    "NoOptions": "curator.plugin_host.options",
    "option": "curator.plugin_host.options",
    "ErrorInfo": "curator.model.outcome",
    "ErrorKind": "curator.model.outcome",
    "Event": "curator.model.outcome",
    "Outcome": "curator.model.outcome",
    "Status": "curator.model.outcome",
    "Successes": "curator.model.outcome",
    "TaskStart": "curator.model.outcome",
    "Filter": "curator.model.pipeline",
    "Pipeline": "curator.model.pipeline",
    "Sink": "curator.model.pipeline",
    "Source": "curator.model.pipeline",
    "Registry": "curator.plugin_host.registry",
    "default_registry": "curator.plugin_host.registry",
    "Reporter": "curator.observing.reporter",
    "RunInfo": "curator.model.result",
    "RunResult": "curator.model.result",
    "run": "curator.running.runner",
    "uninterrupted": "curator.backends.releasing",
    "tie_to_run": "curator.backends.worker_process",
    "starting_workers": "curator.backends.worker_process",
    "RunStream": "curator.running.streaming",
    "OutcomeTable": "curator.model.table",
    "Session": "curator.running.session",
    "stream": "curator.running.streaming",
    "Work": "curator.backends.work",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        if name in _moved.MOVED:  # a module by its name before the sub-packages
            return importlib.import_module(f"curator.{name}")
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
    "ClassRef",
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
    "OutcomeTable",
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
    "TeardownError",
    "UnknownNameError",
    "UsageError",
    "Work",
    "WorkerInfo",
    "__version__",
    "default_registry",
    "hookimpl",
    "option",
    "run",
    "starting_workers",
    "stream",
    "tie_to_run",
    "uninterrupted",
]
