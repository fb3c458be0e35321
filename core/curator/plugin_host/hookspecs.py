"""The hook specifications: the whole plugin API of curator.

Plugins implement these with :data:`curator.hookimpl`. An implementation may
take any subset of a hook's arguments, so new optional arguments can be added
without breaking existing plugins. Every hook below says when it is called and
in which process.

Registration hooks are called once per plugin when curator builds its
registry (on the first run or listing in a process). Event hooks are called
for every run, always in the parent process, in this order per index:
``curator_task_start`` (when the backend reports it) then
``curator_task_finish``, and per batch of final outcomes
``curator_batch_finish``; all of them between ``curator_run_start`` and
``curator_run_finish``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from curator.backends.backend import Backend
    from curator.cli.plugin_commands import Commands
    from curator.model.outcome import Outcome, Successes, TaskStart
    from curator.model.result import RunInfo, RunResult
    from curator.observing.features import ItemFeature
    from curator.observing.progress import RunProgress
    from curator.observing.reporter import Reporter
    from curator.plugin_host.class_ref import ClassRef

PROJECT = "curator"

EVENT_HOOKS = (
    "curator_run_start",
    "curator_task_start",
    "curator_task_finish",
    "curator_batch_finish",
    "curator_run_finish",
)
"""The hooks that report a run's events, in the order a run calls them."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marker for hook implementations: ``@curator.hookimpl``."""


# -- registration -----------------------------------------------------------


@hookspec
def curator_register_backends() -> list[type[Backend] | ClassRef]:  # type: ignore[empty-body]
    """Return the backend classes this plugin provides, or references to them.

    Called once per plugin, in the process that builds the registry (the CLI,
    or the process calling :func:`curator.run`), before any run. Keep it
    cheap: import no heavy engine (import those inside
    :meth:`~curator.backends.backend.Backend.execute`). Better, return a
    :class:`~curator.plugin_host.class_ref.ClassRef` (name and import path):
    the class's module is then imported by a run that uses the backend, or a
    listing (the command line lists every backend for ``curator run``'s flags),
    never by a ``curator.run`` on another backend.

    Each class is checked (a referenced one when it is imported): it
    implements ``execute``, its name is lowercase words joined by dashes, its
    ``Options`` defaults have their declared types and its capabilities are
    consistent; a class that fails is not registered and its plugin is listed
    ``broken`` with the problems. Built-ins register first, then plugins in
    distribution-name order: a name already registered is rejected and
    reported, naming both providers.

    Returns
    -------
    list[type[Backend] | ClassRef]
        Subclasses of :class:`curator.Backend`, or references to them.
    """


@hookspec
def curator_register_reporters() -> list[type[Reporter] | ClassRef]:  # type: ignore[empty-body]
    """Return the reporter classes this plugin provides, or references to them.

    Called once per plugin, in the process that builds the registry, before
    any run. The same rules as :func:`curator_register_backends` apply; in
    addition, every method of a reporter named ``curator_*`` must be an event
    hook marked ``@hookimpl`` with arguments from its specification.

    Returns
    -------
    list[type[Reporter] | ClassRef]
        Subclasses of :class:`curator.Reporter`, or references to them.
    """


@hookspec
def curator_register_item_features() -> list[type[ItemFeature] | ClassRef]:  # type: ignore[empty-body]
    """Return the per-item feature classes this plugin provides (:mod:`curator.observing.features`).

    Called once per plugin, in the process that builds the registry, before
    any run; the same rules as :func:`curator_register_backends` apply (a
    class that fails its checks, or whose name is taken, is not registered and
    its plugin is listed ``broken``). Every run then makes one instance of
    each feature in the run's process and ships it to the workers with the
    run's :class:`~curator.backends.work.Work`; there its ``begin`` and ``end`` are
    called around each item, in the process (or thread) that runs the item.

    Returns
    -------
    list[type[ItemFeature] | ClassRef]
        Subclasses of :class:`curator.ItemFeature`, or references to them.
    """


# -- the command line ---------------------------------------------------------


@hookspec
def curator_add_commands(commands: Commands) -> None:
    """Called once per plugin, in the CLI's process only, to add subcommands to ``curator``.

    It is called after the registry is built and before the command line is
    parsed (``--no-plugins`` and ``CURATOR_DISABLE_PLUGINS`` leave a plugin's
    commands out); tox's ``tox_add_option`` is the model. Add each one
    with ``parser = commands.add_parser(name, help=...)``, as with argparse,
    and give it a handler with ``parser.set_defaults(handler=function)``: the
    function takes the :class:`~curator.plugin_host.registry.Registry` and the parsed
    arguments and returns the exit code. A
    :class:`~curator.model.errors.UsageError` it raises is the user's mistake (exit
    2, the message shown, no traceback).

    A name that is taken (a built-in command or another plugin's) is refused:
    the plugin is listed ``broken`` with the reason, and the commands it added
    are taken out again. Import heavy modules inside the handler, not here:
    every ``curator`` command calls this hook.

    Parameters
    ----------
    commands
        Adds subcommands (:class:`curator.cli.plugin_commands.Commands`).
    """


# -- run events ---------------------------------------------------------------


@hookspec
def curator_run_start(run: RunInfo, progress: RunProgress) -> None:
    """Called once when a run starts, in the parent process, before any item is dispatched.

    Parameters
    ----------
    run
        What the run covers: backend, jobs, indices (``run.total`` of them).
    progress
        Live counters the core keeps for this run (done, failures, busy workers,
        alarms at a count of finished items). A reporter that draws at its own
        pace can read it instead of implementing the per-item hooks, so its cost
        does not grow with the item rate.
    """


@hookspec
def curator_task_start(run: RunInfo, start: TaskStart) -> None:
    """Called when a worker begins an item (each attempt), in the parent process.

    Every backend reports a start for every item it runs (the conformance kit
    checks it), before that attempt's :func:`curator_task_finish`. For work
    done in other processes the call happens when the start record reaches the
    parent; a backend that learns of an item only when it ended (a Dask chunk)
    reports the start right before the outcome. ``start.attempt`` is set by
    the core. Items skipped on resume and items never dispatched get no call.
    When no plugin implements this hook, backends may skip making start records.

    Parameters
    ----------
    run
        The run the item belongs to.
    start
        Index, worker id, start time and attempt number.
    """


@hookspec
def curator_task_finish(run: RunInfo, outcome: Outcome) -> None:
    """Called once per attempt of each item, in the parent process, as its outcome arrives.

    Outcomes arrive in completion order, not index order. An item that is
    retried gets one call per attempt (``outcome.attempt`` counts up; the
    earlier outcomes end in ``result.retried``). Items skipped on resume get
    one call with status ``skipped``; items never dispatched (``cancelled``)
    get none and appear only in the result.

    Parameters
    ----------
    run
        The run the item belongs to.
    outcome
        Status, value or error (with the worker's traceback), worker and timing.
    """


@hookspec
def curator_batch_finish(run: RunInfo, batch: Sequence[Outcome | Successes]) -> None:
    """Called once per batch of final outcomes, in the parent process, as the run records them.

    A batch is what one step of the run loop made final: the successes of a
    worker's message (as :class:`~curator.model.outcome.Successes` columns) with its
    failures that no retry follows, a resume's skipped items, the failures
    held for a retry that did not come, the ``cancelled`` items at the end.
    Every requested index is in exactly one batch. Listening costs one call
    per batch, not per item: an observer that aggregates (counts, a
    histogram of a plugin's ``extras``) reads the columns instead of
    implementing :func:`curator_task_finish`. Iterating a ``Successes`` makes
    its :class:`~curator.model.outcome.Outcome` objects; its columns are cheaper.
    Called after the batch's outcomes are in the run's table and handed to
    the checkpoint's writer (not necessarily committed yet).

    Parameters
    ----------
    run
        The run the outcomes belong to.
    batch
        The batch: ``Successes`` columns and single ``Outcome`` objects; do
        not change them.
    """


@hookspec
def curator_run_finish(run: RunInfo, result: RunResult) -> None:
    """Called once when a run ends, in the parent process, however it ends.

    It is called after the last outcome, also when the run stopped early (a
    failure with ``on_error="raise"``, or Ctrl-C, in which case
    ``result.interrupted`` is true).

    Parameters
    ----------
    run
        The run that ended.
    result
        All outcomes (in requested order), counts and timing.
    """
