"""The run loop: rounds of attempts on a backend, the failure policy, events, checkpoint.

A run is one or more *rounds*. The first runs every requested index that is
not already done in the checkpoint; each further round retries the items
whose last attempt failed, crashed or timed out, after a delay, until they
succeed or run out of retries. A round is one call of the backend's
``execute``, so every backend gets retries without knowing about them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from curator.backends.backend import Backend
from curator.backends.work import Work
from curator.model.errors import (
    BackendContractError,
    RunInterrupted,
    StateMergeError,
    TaskFailedError,
    TeardownError,
    UsageError,
)
from curator.model.outcome import Outcome, Status, Successes, TaskStart
from curator.model.pipeline import Pipeline
from curator.model.plan import StagePlan
from curator.model.result import RunInfo, RunResult
from curator.model.shards import ShardMerge
from curator.model.state import StageStates
from curator.observing import capture
from curator.observing.features import ItemFeature
from curator.observing.progress import RunProgress
from curator.plugin_host.relay import EventRelay
from curator.running.ending import RunEnding
from curator.running.groups import KeepTogether
from curator.running.intake import EventIntake
from curator.running.interrupts import Finishing, Interrupts
from curator.running.ledger import Ledger
from curator.running.policy import Policy

if TYPE_CHECKING:  # the checkpoint's modules (sqlite3, hashlib) load only for a run that keeps one
    from curator.checkpoint.latest import Latest
    from curator.checkpoint.settings import RunSettings
    from curator.checkpoint.store import CheckpointStore

OK = Status.OK


class RunLoop(EventIntake, RunEnding):
    """One validated run, ready to execute.

    Parameters
    ----------
    info
        What the run covers.
    pipeline
        The pipeline (shipped to workers inside :class:`~curator.backends.work.Work`).
    make_backend
        Builds a fresh backend instance for each round.
    relay
        The run's event hooks (plugins and reporters); a failing listener is disabled.
    policy
        Failure, retry, timeout and interrupt rules.
    store
        The checkpoint, or ``None``.
    resume
        Skip indices the checkpoint records as done.
    settings
        What the run was asked for, recorded in the checkpoint.
    keep
        Keep every outcome for the result (``curator.run``); a streamed run
        keeps only the failed ones, so its memory does not grow with the items.
    hand_back
        What to do with the backend when the run ends: ``None`` closes it
        (the run made it); a session takes its backend back (``Session.release``).
    groups
        The pipeline's keep-together groups: each round's indices go to the
        backend as :class:`~curator.backends.dispatch.Grouped` units.
    features
        The per-item features the run's work calls around each item (see
        :mod:`curator.observing.features`).
    plan
        The run's stage plan (made here when not given).
    measure_all
        With metrics on, measure every item in full instead of sampling quick
        ones (``metrics="all"``, see :mod:`curator.observing.metrics`).
    """

    def __init__(
        self,
        info: RunInfo,
        pipeline: Pipeline[Any],
        make_backend: Callable[[], Backend],
        relay: EventRelay,
        policy: Policy,
        store: CheckpointStore | None = None,
        resume: bool = False,
        settings: RunSettings | None = None,
        keep: bool = True,
        hand_back: Callable[[Backend], None] | None = None,
        groups: KeepTogether | None = None,
        features: tuple[ItemFeature, ...] = (),
        plan: StagePlan | None = None,
        measure_all: bool = False,
    ) -> None:
        self.info = info
        self.measure_all = measure_all
        self.plan = plan if plan is not None else StagePlan.of(pipeline)
        self.features = features
        self.pipeline = pipeline
        self.make_backend = make_backend
        self.relay = relay
        self.policy = policy
        self.store = store
        self.resume = resume
        self.settings = settings
        self.ledger = Ledger(info.indices, keep, self.plan.metric_width if info.metrics else 0)
        self.backend: Backend | None = None
        """The backend while a round runs (what the progress view asks)."""
        self.runner: Backend | None = None
        """The backend of every round of this run, once the first started."""
        self.began = False
        """Whether the run started (its generator took its first step)."""
        self.hand_back = hand_back
        self.groups = groups
        self._works: dict[int, Work] = {}
        self.progress = RunProgress(info, self.ledger, self._activity)
        self.progress.guard = relay.guarded  # a reporter's callbacks fail as its hooks do
        self.superseded: list[Outcome] = []
        self.started: dict[int, TaskStart] = {}
        """Reported starts without an outcome yet (kept only while hooks listen to starts)."""
        self.final_failures = 0
        self.attempt = 1
        """The attempt of the current round, stamped on its events."""
        self.held: dict[int, Outcome] = {}
        """Failures of a round that may be retried: final only once the loop decides."""
        self.result: RunResult | None = None
        """Set when :meth:`outcomes` is exhausted (or raised)."""
        self.stopped_at_the_end: Finishing | None = None
        """The run's end, and the Ctrl-C or SIGTERM that waited for it, if any."""
        self.closed_by_caller = False
        """Whether a stream's close() ended the run: a stop held by its end is raised
        there (a generator the garbage collector finalizes could only print it)."""
        accumulating = self.plan.accumulating
        self.states = StageStates(accumulating) if accumulating else None
        """Where accumulating stages' partials meet (see :mod:`curator.model.state`)."""
        self.merge_error: StateMergeError | None = None
        self.close_error: BackendContractError | None = None
        self.recorded: Latest | None = None
        """What the checkpoint a resume continues records for each item (read when it starts)."""
        sharding = self.plan.sharding
        self.shards = ShardMerge(sharding) if sharding else None
        """Shard-writing stages' outputs, merged when the run ends (:mod:`curator.model.shards`)."""
        if self.states is not None and store is not None:
            store.keeps_state = True

    def _activity(self) -> Any:
        backend = self.backend
        return backend.activity() if backend is not None else {}

    def execute(self) -> RunResult:
        """Run every round, report, record, and return (or raise) the result."""
        batches = self.batches()
        while True:
            try:
                for _ in batches:
                    pass
                break
            except KeyboardInterrupt as stop:
                if getattr(batches, "gi_frame", None) is None:
                    raise  # the run ended with it
                # A hard stop that landed here, between two batches, is the run's to handle.
                try:
                    batches.throw(stop)
                except StopIteration:
                    break
        assert self.result is not None
        return self.result

    def outcomes(self) -> Iterator[Outcome]:
        """Run every round and yield each index's final outcome as soon as it is known.

        Every requested index gets exactly one: ``skipped`` ones first (resume),
        then successes as they complete, failures once no retry follows them,
        and at the end ``cancelled`` for indices that never ran. When the last
        one is out, :attr:`result` is set and the run's end is raised as
        :meth:`execute` would (``TaskFailedError``, ``RunInterrupted``).
        Closing :meth:`outcome_runs` (what this chains) early stops the run at
        once, like a hard stop, and records what finished.
        """
        return itertools.chain.from_iterable(self.outcome_runs())

    def outcome_runs(self) -> Generator[Iterable[Outcome], None, None]:
        """:meth:`outcomes` in the runs they arrive in: ``Successes``, or one outcome.

        A worker's :class:`~curator.model.outcome.Successes` makes its outcomes
        as they are read. Chained, the runs give each outcome without a step of this generator per
        item. Closing it early stops the run at once, like a hard stop, and
        records what finished.
        """
        batches = self.batches()
        try:
            for batch in batches:
                for outcome in batch:
                    yield outcome if isinstance(outcome, Successes) else (outcome,)
        finally:
            batches.close()

    def batches(self) -> Generator[Sequence[Outcome | Successes], None, None]:
        """:meth:`outcomes` in the lists they arrive in (one step per batch, not per item).

        A backend's :class:`~curator.model.outcome.Successes` stay columns here: a
        consumer that only drains the run (``run()``) never makes their outcomes.
        """
        info, policy = self.info, self.policy
        started = time.time()
        self._begin()
        # Items that run in this process (sequential, threads, a backend that never
        # calls Work.setup) print into their buffers; the run puts the streams back.
        if info.capture:
            capture.acquire()
        try:
            stopped_by: Outcome | None = None
            interrupts = Interrupts(self._stop_dispatching, policy.grace)
            hard_stop = False
            try:
                try:
                    with interrupts:
                        stopped_by = yield from self._rounds(interrupts)
                finally:
                    interrupts.close()  # even if a signal's handler raised as it left
            except KeyboardInterrupt:
                hard_stop = True
            except BaseException as problem:
                # A backend bug, a setup error, or the consumer closed the stream:
                # still record and report what finished (a new checkpoint that
                # nothing reached is not left behind). A hard stop raised in a
                # stream's loop body closed it: the run was interrupted, not left.
                if self.store is not None:
                    self.store.discard_unused = True
                # Ctrl-C reaches the workers too (the terminal signals the whole process
                # group): an engine whose workers it killed fails with its own error
                # (Dask's "Nanny failed to start", loky's TerminatedWorkerError). The
                # user stopped the run; that error is its cause, not a bug to report.
                signalled = interrupts.requested or interrupts.terminated
                stopped = interrupts.stopped_hard or (
                    signalled
                    and isinstance(problem, Exception)
                    and not isinstance(problem, (UsageError, TeardownError, BackendContractError))
                )
                result = self._finish(
                    started,
                    interrupted=stopped,
                    terminated=interrupts.terminated,
                    stopped=not stopped,
                )
                self._close_error_aside()
                if isinstance(problem, TeardownError) and problem.result is None:
                    problem.result = result
                held, terminated = self._stop_held()
                # A plugin's bug still goes to its authors, unless the user stopped the run.
                reported = isinstance(problem, BackendContractError) and not stopped
                if (stopped or held) and isinstance(problem, Exception) and not reported:
                    raise RunInterrupted(result, terminated=terminated) from problem
                self._stop_on_closing(problem, result)
                raise
            try:
                yield from self._last_outcomes(time.time())
            except KeyboardInterrupt:  # handed in between two batches: what is left reads cancelled
                hard_stop = True
            except BaseException as problem:
                # The consumer closed the stream while it handed these out: the run
                # still ends (checkpoint released, listeners told, backend let go).
                stopped = hard_stop or interrupts.requested or interrupts.stopped_hard
                result = self._finish(started, stopped, interrupts.terminated)
                self._close_error_aside()
                self._stop_on_closing(problem, result)
                raise
            interrupted = hard_stop or interrupts.requested
            result = self._finish(started, interrupted, interrupts.terminated)
            # A stop that waited for the run's end to be recorded is still the caller's,
            # even when every item ended: a script's next run, the bench's next one.
            held, terminated = self._stop_held()
            if interrupted:
                self._close_error_aside()
                raise RunInterrupted(result, terminated=terminated)
            try:
                if self.merge_error is not None:
                    self.merge_error.result = result
                    raise self.merge_error
                self.relay.check(result)
                if stopped_by is not None:
                    raise TaskFailedError(stopped_by, result)
                if self.close_error is not None:  # the run's own failure goes first
                    self.close_error.result = result
                    raise self.close_error
            except Exception as ended:
                if ended is not self.close_error:
                    self._close_error_aside()
                if held:  # how the run ended is the stop's cause: a script must still stop
                    raise RunInterrupted(result, terminated=terminated) from ended
                raise
            if held:
                raise RunInterrupted(result, terminated=terminated)
        finally:
            if info.capture:
                capture.release()

    def _stop_held(self) -> tuple[bool, bool]:
        """Whether a Ctrl-C or SIGTERM waited for the run's end, and whether a SIGTERM did."""
        end = self.stopped_at_the_end
        if end is None:
            return False, False
        return end.stop_asked, end.terminated

    def _stop_on_closing(self, problem: BaseException, result: RunResult) -> None:
        """Raise the stop that waited for the run's end, when a stream's close() ended it.

        Only there: a generator that the garbage collector finalizes could only print it.
        """
        held, terminated = self._stop_held()
        if held and isinstance(problem, GeneratorExit) and self.closed_by_caller:
            raise RunInterrupted(result, terminated=terminated) from None

    def _begin(self) -> None:
        """Start the run: the backend takes the work, listeners and the checkpoint hear of it."""
        self.began = True
        info = self.info
        try:
            # The backend sees the work first: a pipeline it cannot ship is the
            # user's mistake, told before any event or checkpoint record.
            self.runner = self.make_backend()
            self.runner.check()
            self.runner.prepare(self._work(1))
            self.relay.call("curator_run_start", run=info, progress=self.progress)
            if self.store is not None:
                settings = self.settings.to_json() if self.settings is not None else None
                self.store.start_run(info.backend, info.jobs, info.total, settings, info.stages)
            if self.shards is not None and not self.resume:
                self.shards.remove_stale()
        except BaseException:
            # A backend that refuses the work, a reporter that cannot start (its
            # file cannot be opened, ...) or a checkpoint that cannot take a run
            # ends the run before it began.
            if self.store is not None:
                self.store.discard_unused = True
                self.store.close()
            runner, self.runner = self.runner, None
            if runner is not None:
                self._let_go(runner)
            raise

    def _rounds(
        self, interrupts: Interrupts
    ) -> Generator[Sequence[Outcome | Successes], None, Outcome | None]:
        """The first round and the retries; returns the outcome that stopped the run, if any."""
        policy = self.policy
        to_run = yield from self._skip_done()
        attempt = 1
        stopped_by: Outcome | None = None
        while to_run:
            final = attempt > policy.retries
            stopped_by = yield from self._round(to_run, attempt, final)
            retry = self._in_request_order(self.held)
            if stopped_by is not None or interrupts.requested or not retry:
                break
            attempt += 1
            if interrupts.sleep(policy.delay_before(attempt)):
                break
            self.held.clear()
            self.superseded += self.ledger.reopen(retry)
            self.progress.retrying(retry)
            to_run = retry
        return stopped_by

    def abandon(self) -> None:
        """Give up a run that never started: release its checkpoint (and lock).

        A checkpoint this run made is removed again: it records nothing.
        """
        if self.store is not None:
            self.store.discard_unused = True
            self.store.close()

    def _work(self, attempt: int) -> Work:
        """The work of one round, the same object for the same attempt."""
        work = self._works.get(attempt)
        if work is None:
            runner = self.runner
            assert runner is not None
            # A result that cannot be pickled must fail its own item where it is made,
            # not break a batch on its way to the parent or into the checkpoint.
            caps = runner.capabilities
            check_results = (self.store is not None or caps.needs_picklable_work) and not (
                caps.checks_results
            )
            work = self._works[attempt] = Work(
                self.pipeline,
                attempt,
                check_results,
                "all" if self.measure_all and self.info.metrics else self.info.metrics,
                self.info.capture,
                self.features,
                self.plan,
            )
        return work

    def _stop_dispatching(self) -> None:
        self.progress.stop_requested(self.policy.grace)
        if self.backend is not None:
            self.backend.request_stop()

    def _skip_done(self) -> Generator[Sequence[Outcome | Successes], None, Sequence[int]]:
        """Report (and yield) checkpointed items as skipped; return the indices still to run."""
        indices = self.info.indices
        if self.store is None or not self.resume:
            return indices
        from curator.checkpoint.resuming import load_recorded  # with the checkpoint's modules

        resumed = load_recorded(self.store, self.states)
        stored = resumed.skippable
        self.recorded = stored.latest
        skipped, to_run = stored.split(indices, resumed.rerun)
        ledger, call, info = self.ledger, self.relay.call, self.info
        one_by_one = self.relay.listens("curator_task_finish")
        announce = self.relay.listens("curator_batch_finish")
        for batch in skipped:
            if one_by_one:  # each listener sees the progress as of its item
                for outcome in batch:
                    ledger.record(outcome)
                    self.progress.skipped += 1
                    call("curator_task_finish", run=info, outcome=outcome)
            else:
                ledger.record_successes(batch)
                self.progress.skipped += len(batch)
            if announce:
                call("curator_batch_finish", run=info, batch=[batch])
            yield [batch]
        return to_run if len(to_run) < len(indices) else indices

    def _round(
        self, indices: Sequence[int], attempt: int, final: bool
    ) -> Generator[Sequence[Outcome | Successes], None, Outcome | None]:
        # One backend for every round: its workers stay up for the retries.
        backend = self.runner
        assert backend is not None
        self.attempt = attempt
        policy = self.policy
        bounded = backend.capabilities.lifecycle_timeouts
        # Names the run across processes: a resume writes into the same checkpoint.
        backend.run_key = None if self.store is None else str(self.store.path.resolve())
        backend.resumes = self.resume and self.store is not None
        backend._begin(
            policy.timeout,
            self.relay.listens("curator_task_start"),
            policy.setup_limit if bounded else None,
            policy.teardown_limit if bounded else None,
            policy.failure_budget if final else None,
        )
        self.backend = backend
        if self.progress.watching_workers and backend.activity() is None:
            self.progress.track_starts()  # before the round's first item starts
        open_before = self.ledger.open
        try:
            planned = self.groups.plan(indices) if self.groups is not None else indices
            stopped_by = yield from self._consume(
                backend.execute(self._work(attempt), planned), final
            )
        finally:
            self.backend = None
        if not backend.stop_requested and self.ledger.open > open_before - len(indices):
            missing = [i for i in indices if self.ledger.is_open(i)]
            raise BackendContractError(
                f"backend {self.info.backend!r} finished without an outcome for "
                f"{len(missing)} indices: {missing[:20]}"
            )
        return stopped_by
