"""``curator.stream``: a run's outcomes as they complete, without keeping them.

``curator.run`` returns every outcome at the end, so its memory grows with
the item count. A stream hands each outcome over as soon as it is final and
keeps only a byte per index and the failed outcomes, so a run of millions of
items costs the parent what a run of thousands does. Validation, policies,
retries, the checkpoint and reporters are those of ``run``.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from curator.model.columns import OutcomeColumns
from curator.model.errors import HardStop, RunInterrupted, UsageError
from curator.model.outcome import Outcome, Successes
from curator.model.pipeline import Pipeline
from curator.model.result import RunInfo, RunResult
from curator.model.table import OutcomeTable
from curator.plugin_host.registry import Registry
from curator.running.choosing import ReporterSpec
from curator.running.loop import RunLoop
from curator.running.policy import OnError, Policy
from curator.running.runner import RunRequest, check_switch, plan_run
from curator.running.session import Session


class RunStream:
    """The outcomes of one run, in the order they complete (or requested order).

    Iterate it once. Each requested index yields exactly one outcome:
    ``skipped`` ones first (resume), then each as it becomes final (a failure
    once no retry follows), and ``cancelled`` ones last when the run stopped
    early. After the last one, :attr:`result` holds the run's counts and its
    failures, and the run's end is raised as :func:`curator.run` raises it
    (:class:`~curator.model.errors.TaskFailedError`, :class:`~curator.model.errors.RunInterrupted`).

    Leaving the loop early (``break``, an exception) and then calling
    :meth:`close` (or leaving a ``with`` block) stops the run at once, as a
    second Ctrl-C does: what finished is recorded (``ok``, though not handed
    out), running items are abandoned (``interrupted``), the rest reads
    ``cancelled``. A hard stop that reaches the loop body (a second Ctrl-C,
    the end of the grace period, SIGTERM) leaves a ``with`` block as
    :class:`~curator.model.errors.RunInterrupted`, as :func:`curator.run` raises it.
    """

    def __init__(self, loop: RunLoop, ordered: bool) -> None:
        self._loop = loop
        self._ordered = ordered
        self._batched = False
        self._closed = False
        self._started = False
        self._iterated = False
        self._runs: Generator[Any, None, None] = loop.outcome_runs()
        """The run's generator: closing it stops the run."""
        outcomes = itertools.chain.from_iterable(self._runs)
        self._outcomes = _in_request_order(outcomes, loop.ledger.position) if ordered else outcomes
        _LEFT_OPEN.add(self)

    @property
    def run(self) -> RunInfo:
        """What the run covers."""
        return self._loop.info

    @property
    def result(self) -> RunResult | None:
        """The run's result (counts, failures, timing) once the stream is exhausted."""
        return self._loop.result

    def __iter__(self) -> Iterator[Outcome]:
        # The run's outcomes chained in C: a for loop then takes each without a
        # Python call of __next__ per item. Until it first runs, close() still
        # treats the stream as never iterated (see there).
        if self._batched:
            raise UsageError(_TAKEN_IN_BATCHES)
        if self._closed:  # it would give nothing, as if the run had had no items
            raise UsageError(_CLOSED)
        if not self._iterated:  # once: islice() and next(iter()) call this again and again
            self._iterated = True  # the loop holds the iterator, not this object
            _released_if_dropped(self._runs, self._loop)
        return self._outcomes

    def __next__(self) -> Outcome:
        if self._batched or self._closed:
            raise UsageError(_TAKEN_IN_BATCHES if self._batched else _CLOSED)
        self._started = True
        return next(self._outcomes)

    def batches(self) -> Iterator[OutcomeTable]:
        """The outcomes in the batches they complete in, each as columns.

        Instead of iterating the stream: each batch is an
        :class:`~curator.model.table.OutcomeTable` of the outcomes that arrived
        together (a worker's chunk, a few single ones), in the order they
        completed, never empty. Its :meth:`~curator.model.table.OutcomeTable.indices`
        and :meth:`~curator.model.table.OutcomeTable.values` come from its columns,
        so a consumer that takes them (to add a chunk of paths to a catalog at
        once) pays per item what :func:`curator.run` does, where iterating the
        stream builds an :class:`~curator.model.outcome.Outcome` per item;
        iterating a batch still gives its outcomes one by one. Everything else
        (each index once, skipped first, cancelled last, the run's end raised
        after the last batch, closing early) is as for iterating the stream.

        Raises
        ------
        UsageError
            For an ``ordered`` stream (its outcomes wait for earlier ones one by
            one), one closed, one already iterated, or a second call.
        """
        if self._ordered:
            raise UsageError(
                "batches() hands out outcomes as they complete; an ordered stream "
                "(ordered=True) yields them one by one in requested order: iterate it instead"
            )
        if self._closed:
            raise UsageError(_CLOSED)
        if self._batched:
            raise UsageError(_TAKEN_IN_BATCHES)
        if self._iterated or self._started:
            raise UsageError("this stream is already being iterated: take its outcomes one way")
        self._iterated = self._batched = True
        self._runs = self._loop.batches()  # the per-outcome generator never ran: nothing to close
        _released_if_dropped(self._runs, self._loop)
        return filter(None, map(_batch_table, self._runs))  # an end may hand out nothing

    def close(self) -> None:
        """Stop the run now if it still runs; record and report what finished.

        A stream never iterated releases its checkpoint (opened and locked
        when the stream was made, so that a busy or foreign checkpoint is
        refused at once) without recording a run. A Ctrl-C or SIGTERM that
        arrives while the run records its end waits for the record, then is
        raised here as :class:`~curator.model.errors.RunInterrupted`.
        """
        _LEFT_OPEN.discard(self)
        self._closed = True
        if not self._started and not self._loop.began:  # closing its generator runs nothing
            self._started = True
            self._loop.abandon()
        self._loop.closed_by_caller = True  # a stop during the end is raised here, not dropped
        close = getattr(self._outcomes, "close", None)  # the generator that orders them
        if close is not None:
            close()
        self._runs.close()

    def __del__(self) -> None:
        if not getattr(self, "_started", True) and not getattr(self, "_iterated", True):
            self.close()

    def __enter__(self) -> RunStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except RunInterrupted as stop:  # it arrived during the run's end
            if error is not None and not isinstance(error, KeyboardInterrupt):
                raise stop from error  # the body's own error, not lost behind it
            raise
        result = self.result
        if isinstance(error, HardStop) and result is not None and result.interrupted:
            # The stop reached the loop body (a second Ctrl-C, the grace period's
            # end, SIGTERM while the consumer worked): raised as run() raises it.
            raise RunInterrupted(result) from error


_CLOSED = "this stream is closed: start another to take its outcomes"
_TAKEN_IN_BATCHES = (
    "this stream is already being taken in batches (batches()): take its outcomes one way"
)

_LEFT_OPEN: weakref.WeakSet[RunStream] = weakref.WeakSet()
"""Streams not closed yet: the interpreter's exit closes those a script left open."""


@atexit.register
def _close_left_open() -> None:
    """Close the streams a script left open, while the interpreter can still run threads.

    Left to the interpreter's last stage, the run's end would wait for threads
    that can no longer run (the checkpoint's writer): the process hung.
    """
    for left in list(_LEFT_OPEN):
        with contextlib.suppress(RunInterrupted):  # a stop in its end: the process is leaving
            left.close()


def _batch_table(batch: Sequence[Outcome | Successes]) -> OutcomeTable:
    """One batch of the run loop as a table (its ``Successes`` stay columns)."""
    return OutcomeColumns.of(batch).table()


def _released_if_dropped(runs: Generator[Any, None, None], loop: RunLoop) -> None:
    """Release the run's checkpoint if ``runs`` is dropped without ever taking a step.

    A generator that never started runs none of its code when it is collected,
    and once the caller holds the iterator the stream itself cannot tell (it
    may be gone while the iterator is stepped later): without this, an empty
    checkpoint file and its lock stayed behind.
    """
    weakref.finalize(runs, _abandon_unbegun, loop)


def _abandon_unbegun(loop: RunLoop) -> None:
    if not loop.began:
        loop.abandon()


def _in_request_order(
    outcomes: Iterator[Outcome], position: Callable[[int], int | None]
) -> Iterator[Outcome]:
    """``outcomes`` in requested order: each waits only for those requested before it."""
    waiting: dict[int, Outcome] = {}
    next_up = 0
    try:
        for outcome in outcomes:
            at = position(outcome.index)
            if at != next_up:
                waiting[at if at is not None else -1] = outcome
                continue
            yield outcome
            next_up += 1
            while next_up in waiting:
                yield waiting.pop(next_up)
                next_up += 1
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()


def stream(
    pipeline: Pipeline[Any],
    *,
    ordered: bool = False,
    backend: str = "sequential",
    jobs: int | None = None,
    indices: Iterable[int] | None = None,
    options: Mapping[str, Any] | None = None,
    on_error: OnError = "raise",
    max_failures: int | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    retry_backoff: float = 2.0,
    timeout: float | None = None,
    checkpoint: str | os.PathLike[str] | bool | None = None,
    resume: bool = False,
    grace: float = 30.0,
    setup_timeout: float | None = None,
    teardown_timeout: float | None = None,
    metrics: bool | Literal["all"] = True,
    capture: bool = True,
    reporter: ReporterSpec = "auto",
    reporter_options: Mapping[str, Mapping[str, Any]] | None = None,
    registry: Registry | None = None,
    session: Session | None = None,
) -> RunStream:
    """Run ``pipeline`` and hand out each outcome as it completes, keeping none of them.

    Takes the arguments of :func:`curator.run`, with the same meaning, and
    checks them all before returning (bad input raises
    :class:`~curator.model.errors.UsageError` here, before the run starts). The
    run itself starts when iteration does::

        for outcome in curator.stream(pipeline, backend="process-pool"):
            if outcome.ok:
                index_paths(outcome.index, outcome.value)

    Parameters
    ----------
    ordered
        Yield outcomes in requested order (each waits for those before it)
        instead of as they complete.

    Returns
    -------
    RunStream
        An iterator of :class:`~curator.model.outcome.Outcome`, one per requested index.
    """
    check_switch("ordered", ordered)
    policy = Policy(
        on_error, max_failures, retries, retry_delay, retry_backoff, timeout, grace,
        setup_timeout, teardown_timeout,
    )  # fmt: skip
    request = RunRequest(
        backend, jobs, indices, options, policy, checkpoint, resume, reporter,
        reporter_options, metrics, capture, keep=False,
    )  # fmt: skip
    loop = plan_run(pipeline, request, registry, session)
    return RunStream(loop, ordered)
