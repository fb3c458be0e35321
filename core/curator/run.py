"""The run loop: validate, dispatch to a backend, apply the failure policy, report.

The core owns everything but execution: index validation, ``jobs``
resolution, option checking, ordering of results, the on-error policy, and
calling the event hooks in the parent process. Backends only execute, so all
backends behave the same.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import pluggy

from curator.backend import Backend, normalize_name
from curator.backends.sequential import SequentialBackend
from curator.errors import BackendContractError, RunInterrupted, TaskFailedError, UsageError
from curator.ledger import Ledger
from curator.options import NoOptions, build_options
from curator.outcome import Event, Outcome, TaskStart
from curator.pipeline import Pipeline, check_runnable
from curator.progress import RunProgress
from curator.registry import Registry, default_registry
from curator.reporter import Reporter
from curator.reporters import auto_reporter
from curator.result import RunInfo, RunResult
from curator.selection import resolve_indices, resolve_jobs
from curator.work import Work

OnError = Literal["raise", "continue"]
ReporterSpec = str | Reporter | None | Sequence[str | Reporter]

_run_ids = itertools.count(1)


def run(
    pipeline: Pipeline[Any],
    *,
    backend: str = "sequential",
    jobs: int = 1,
    indices: Iterable[int] | None = None,
    options: Mapping[str, Any] | None = None,
    on_error: OnError = "raise",
    reporter: ReporterSpec = "auto",
    reporter_options: Mapping[str, Mapping[str, Any]] | None = None,
    registry: Registry | None = None,
) -> RunResult:
    """Run ``pipeline`` over ``indices`` on a backend and return every outcome.

    Parameters
    ----------
    pipeline
        A pipeline with a sink (``source.filter(f).write(sink)``).
    backend
        A registered backend name; ``_`` and ``-`` are interchangeable.
    jobs
        Items at once: ``1`` runs in this process, one after another, whatever
        the backend (stateful stages keep their state in ``pipeline``); ``N``
        workers; ``-1`` all CPUs, ``-2`` all but one. ``0`` is an error.
    indices
        Which indices to run, in the order results are returned; ``None`` for all.
    options
        Backend options, validated against the backend's schema.
    on_error
        ``"raise"``: stop at the first failed item and raise
        :class:`~curator.errors.TaskFailedError`; ``"continue"``: run every
        item and report failures in the result.
    reporter
        A reporter name, a :class:`~curator.Reporter` instance, a list of
        them, or ``None`` for no reporting. ``"auto"`` picks ``rich`` when
        stderr is an interactive terminal (and ``CI`` is not set), else ``log``.
    reporter_options
        Options per reporter name, e.g. ``{"json": {"file": "events.jsonl"}}``.
    registry
        Where to look names up (default: the installed plugins).

    Returns
    -------
    RunResult
        One outcome per requested index, in the requested order.

    Raises
    ------
    UsageError
        For bad input, before anything starts.
    TaskFailedError
        With ``on_error="raise"``, when an item fails; it carries the partial result.
    RunInterrupted
        On Ctrl-C, after the backend has shut down; it carries the partial result.
    """
    plan = _plan(
        pipeline, backend, jobs, indices, options, on_error, reporter, reporter_options, registry
    )
    return plan.execute()


class _Plan:
    """A validated run, ready to execute."""

    def __init__(
        self,
        info: RunInfo,
        work: Work,
        executor: Backend,
        relay: pluggy.PluginManager,
    ) -> None:
        self.info = info
        self.work = work
        self.executor = executor
        self.hook = relay.hook
        self.ledger = Ledger(info.indices)
        self.progress = RunProgress(info, self.ledger, executor.activity)

    def execute(self) -> RunResult:
        info = self.info
        started = time.time()
        self.hook.curator_run_start(run=info, progress=self.progress)
        failed: Outcome | None = None
        interrupted = False
        self.executor.wants_starts = bool(self.hook.curator_task_start.get_hookimpls())
        try:
            if info.indices:
                failed = self._consume(self.executor.execute(self.work, info.indices))
        except KeyboardInterrupt:
            interrupted = True
        except BaseException:
            # A backend bug or a setup error: observers still get the end of the run.
            self.hook.curator_run_finish(run=info, result=self._result(started, False))
            raise
        result = self._result(started, interrupted)
        self.hook.curator_run_finish(run=info, result=result)
        if interrupted:
            raise RunInterrupted(result)
        if failed is not None:
            raise TaskFailedError(failed, result)
        return result

    def _consume(self, events: Iterator[Event]) -> Outcome | None:
        """Feed events to the hooks; return the outcome that stopped the run, if any.

        At the first failure with ``on_error="raise"`` the backend is asked to
        stop dispatching, and the loop keeps draining it, so items that were
        already running still have their outcomes recorded.
        """
        info, ledger, progress = self.info, self.ledger, self.progress
        stop_on_failure = info.on_error == "raise"
        stopped_by: Outcome | None = None
        task_start = self.hook.curator_task_start
        task_finish = self.hook.curator_task_finish
        report_starts = bool(task_start.get_hookimpls())
        report_finishes = bool(task_finish.get_hookimpls())
        try:
            for event in events:
                if type(event) is Outcome:
                    broken = ledger.record(event)
                    if broken is not None:
                        raise BackendContractError(f"backend {info.backend!r} {broken}")
                    if event.status.is_failure:
                        progress.record_finish(event)
                        if stop_on_failure and stopped_by is None:
                            stopped_by = event
                            self.executor.request_stop()
                    elif progress.tracking_starts:
                        progress.record_finish(event)
                    if report_finishes:
                        task_finish(run=info, outcome=event)
                    if ledger.open <= progress.alarm_open:
                        progress.ring()
                elif type(event) is TaskStart:
                    if progress.tracking_starts:
                        progress.record_start(event)
                    if report_starts:
                        task_start(run=info, start=event)
                else:
                    raise BackendContractError(
                        f"backend {info.backend!r} yielded {event!r}; "
                        "expected curator.Outcome or curator.TaskStart records"
                    )
        finally:
            # Closing the generator is how a backend learns to stop and clean up.
            close = getattr(events, "close", None)
            if close is not None:
                close()
        if ledger.open and stopped_by is None:
            missing = list(itertools.islice(ledger.missing(), 20))
            raise BackendContractError(
                f"backend {info.backend!r} finished without an outcome for "
                f"{ledger.open} indices: {missing}"
            )
        return stopped_by

    def _result(self, started: float, interrupted: bool) -> RunResult:
        finished = time.time()
        return RunResult(self.info, self.ledger.outcomes(finished), started, finished, interrupted)


def _plan(
    pipeline: Pipeline[Any],
    backend: str,
    jobs: int,
    indices: Iterable[int] | None,
    options: Mapping[str, Any] | None,
    on_error: str,
    reporter: ReporterSpec,
    reporter_options: Mapping[str, Mapping[str, Any]] | None,
    registry: Registry | None,
) -> _Plan:
    runnable = check_runnable(pipeline)
    if on_error not in ("raise", "continue"):
        raise UsageError(f"on_error must be 'raise' or 'continue', got {on_error!r}")
    if not isinstance(backend, str):
        raise UsageError(f"backend must be a name, got {type(backend).__name__}")
    n_jobs = resolve_jobs(jobs)
    selected = resolve_indices(indices, len(runnable))
    registry = registry if registry is not None else default_registry()
    backend_cls = registry.backend(backend)
    name = normalize_name(backend)
    backend_options = build_options(backend_cls.Options, options, owner=f"backend {name!r}")
    if n_jobs > 1 and not backend_cls.capabilities.parallel:
        parallel = sorted(
            n for n, e in registry.backends.items() if e.cls and e.cls.capabilities.parallel
        )
        raise UsageError(
            f"backend {name!r} runs one item at a time, so jobs={jobs} needs a parallel "
            f"backend: {', '.join(parallel)}"
        )
    executor: Backend
    if n_jobs == 1:
        executor = SequentialBackend(NoOptions(), 1)
    else:
        executor = backend_cls(backend_options, n_jobs)
    reporters = resolve_reporters(reporter, registry, reporter_options)
    info = RunInfo(
        run_id=f"{os.getpid()}-{next(_run_ids)}",
        backend=name,
        jobs=n_jobs,
        indices=selected if isinstance(selected, range) else tuple(selected),
        pipeline=repr(runnable),
        on_error=on_error,
    )
    return _Plan(info, Work(runnable), executor, registry.host.event_relay(reporters))


def resolve_reporters(
    spec: ReporterSpec,
    registry: Registry,
    reporter_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Reporter]:
    """Turn the ``reporter`` argument into reporter instances.

    Parameters
    ----------
    spec
        A name (``"auto"`` picks ``rich`` on an interactive terminal, else
        ``log``), a :class:`~curator.Reporter` instance, a list of them, or ``None``.
    registry
        Where names are looked up.
    reporter_options
        Options per reporter name, validated against each reporter's schema.

    Raises
    ------
    UsageError
        For an unknown name, an object that is not a :class:`~curator.Reporter`,
        or options for a reporter that is not selected or that it does not take.
    """
    chosen = {normalize_name(i) for i in _names(spec)}
    for name in reporter_options or {}:
        if normalize_name(name) not in chosen:
            raise UsageError(f"options given for reporter {name!r}, which is not selected")
    if spec is None:
        return []
    items = [spec] if isinstance(spec, (str, Reporter)) or not _iterable(spec) else list(spec)
    reporters: list[Reporter] = []
    for item in items:
        if isinstance(item, Reporter):
            reporters.append(item)
        elif isinstance(item, str):
            name = auto_reporter() if normalize_name(item) == "auto" else item
            cls = registry.reporter(name)
            given = (reporter_options or {}).get(normalize_name(name), {})
            settings = build_options(cls.Options, given, owner=f"reporter {normalize_name(name)!r}")
            reporters.append(cls(settings))
        else:
            raise UsageError(f"reporter must be a name or a curator.Reporter, got {item!r}")
    return reporters


def _names(spec: ReporterSpec) -> list[str]:
    if isinstance(spec, str):
        return [spec]
    if spec is None or isinstance(spec, Reporter) or not _iterable(spec):
        return []
    return [item for item in spec if isinstance(item, str)]


def _iterable(value: object) -> bool:
    try:
        iter(value)  # type: ignore[call-overload]
    except TypeError:
        return False
    return True
