"""The run loop's intake: a round's events into the ledger, the checkpoint and the hooks.

A mixin of :class:`curator.running.loop.RunLoop`, kept apart because its per-event
loop (:meth:`EventIntake._drain`) is the one place every item passes through:
it checks each record against the backend contract, counts the stages'
partials, records the outcome (in columns when nobody reads them one by one)
and tells the listeners.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from curator.backends.backend import Backend
from curator.model.errors import BackendContractError, HardStop
from curator.model.outcome import Event, Outcome, Status, Successes, TaskStart
from curator.model.result import RunInfo
from curator.model.state import Contributed, StageStates, StateMark
from curator.observing.progress import RunProgress
from curator.plugin_host.relay import EventRelay
from curator.running.ledger import Ledger
from curator.running.policy import Policy

if TYPE_CHECKING:  # the checkpoint's modules (sqlite3, hashlib) load only for a run that keeps one
    from curator.checkpoint.store import CheckpointStore

OK = Status.OK


class EventIntake:
    """Takes in a round's events (a mixin of :class:`~curator.running.loop.RunLoop`)."""

    info: RunInfo
    policy: Policy
    ledger: Ledger
    progress: RunProgress
    backend: Backend | None
    store: CheckpointStore | None
    relay: EventRelay
    started: dict[int, TaskStart]
    held: dict[int, Outcome]
    attempt: int
    states: StageStates | None
    final_failures: int

    def _consume(
        self, events: Iterator[Event | list[Event]], final: bool
    ) -> Generator[Sequence[Outcome | Successes], None, Outcome | None]:
        """Feed a round's events to the ledger, checkpoint and hooks.

        Returns the outcome that used up the failure budget, if any. On a hard
        stop (a :class:`KeyboardInterrupt` raised here or in the backend) the
        stop is thrown into the backend's generator, which may still yield the
        outcomes it can collect (finished items, ``interrupted`` ones) before
        it ends; they are recorded like any other, then the stop goes on. A
        consumer that closes the run's generator (a stream left early) stops
        the backend the same way: nothing that finished is reported
        ``cancelled``.
        """
        budget = self.policy.failure_budget if final else None
        try:
            try:
                return (yield from self._drain(events, budget, final))
            except KeyboardInterrupt as stop:
                yield from self._drain(_handed_over(events, stop), budget, final)
                yield from self._interrupt_started()
                raise
            except GeneratorExit:
                # The consumer closed the stream: the run stops at once, as at a hard
                # stop, and what the backend still hands over (items that finished,
                # the running ones interrupted) is recorded, though nobody takes it.
                for _ in self._drain(_handed_over(events, HardStop()), budget, final):
                    pass
                for _ in self._interrupt_started():
                    pass
                raise
        finally:
            # Closing the generator is how a backend learns to stop and clean up.
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def _drain(
        self, events: Iterable[Event | list[Event]], budget: int | None, final: bool = True
    ) -> Generator[Sequence[Outcome | Successes], None, Outcome | None]:
        """The per-event loop (kept in one frame: it runs once per item).

        Takes records one by one or in lists (a backend's batches), and yields,
        per batch, the outcomes that are final: all of them in the last round
        a run may have, else the successes (a failure waits in :attr:`held`
        until the loop knows whether it is retried).

        Failures of a round that will be retried do not count against the
        budget. Once the budget is used up the backend is asked to stop
        dispatching, and the loop keeps draining it, so items already running
        still have their outcomes recorded.
        """
        info, ledger, progress, backend = self.info, self.ledger, self.progress, self.backend
        assert backend is not None
        record = self.store.record if self.store is not None else None  # list.append
        stopped_by: Outcome | None = None
        call = self.relay.call
        # A listener disabled mid-run leaves an empty list that call() walks for nothing.
        report_starts = self.relay.listens("curator_task_start")
        report_finishes = self.relay.listens("curator_task_finish")
        one_by_one = report_starts or report_finishes  # the checkpoint takes columns
        announce = self.relay.listens("curator_batch_finish")
        started = self.started
        held = self.held
        attempt = self.attempt
        states = self.states
        # The core knows the round's attempt: a record built without it (say
        # TaskStart(index, worker, started)) is corrected here, not believed.
        for event in events:
            batch: Iterable[Event] = event if isinstance(event, list) else (event,)
            finals: list[Outcome | Successes] = []
            tracking = progress.tracking_starts  # a reporter may start watching mid-run
            if tracking or one_by_one:
                batch = _outcomes_of(batch, info.backend)
            for item in batch:
                if type(item) is Successes:  # only when nobody reads them one by one
                    _check_status(item, info.backend)
                    if item.attempt != attempt:
                        item.attempt = attempt
                    if states is not None:
                        values, indices = item.values, item.indices
                        item.values = _contributions(values, states, info, indices, ledger)
                    broken = ledger.record_successes(item)
                    if broken is not None:
                        raise BackendContractError(f"backend {info.backend!r} {broken}")
                    if record is not None:
                        record(item)
                    finals.append(item)  # they stay columns
                elif type(item) is Outcome:
                    if item.attempt != attempt:
                        item.attempt = attempt
                    if states is not None and item.status is OK:
                        item.value = _contribution(item.value, states, info, item.index, ledger)
                    broken = ledger.record(item)
                    if broken is not None:
                        raise BackendContractError(f"backend {info.backend!r} {broken}")
                    if record is not None:
                        record(item)
                    if item.output is not None:
                        progress.record_output(item)
                    if item.status is not OK and item.status.is_failure:
                        progress.record_finish(item)
                        if budget is not None:
                            self.final_failures += 1
                            if stopped_by is None and self.final_failures >= budget:
                                stopped_by = item
                                backend.request_stop()
                        if final:
                            finals.append(item)
                        else:
                            held[item.index] = item
                    else:
                        finals.append(item)
                        if tracking:
                            progress.record_finish(item)
                    if report_starts:
                        started.pop(item.index, None)
                    if report_finishes:
                        call("curator_task_finish", run=info, outcome=item)
                elif type(item) is TaskStart:
                    if item.attempt != attempt:
                        item.attempt = attempt
                    if tracking:
                        progress.record_start(item)
                    if report_starts:
                        started[item.index] = item
                        call("curator_task_start", run=info, start=item)
                else:
                    raise BackendContractError(
                        f"backend {info.backend!r} yielded {item!r}; expected curator.Outcome, "
                        "curator.Successes or curator.TaskStart records (or a list of them)"
                    )
            if states is not None:
                partials = states.end_batch()
                if partials is not None and record is not None:
                    record(StateMark(partials))  # after the outcomes it covers
            if ledger.open <= progress.alarm_open:
                progress.ring()
            if finals:
                if announce:
                    call("curator_batch_finish", run=info, batch=finals)
                yield finals
        return stopped_by

    def _interrupt_started(self) -> Iterator[Sequence[Outcome | Successes]]:
        """Give every reported start without an outcome its ``interrupted`` finish."""
        leftovers = [s for s in self.started.values() if self.ledger.is_open(s.index)]
        self.started.clear()
        if leftovers:
            ends = (Outcome.interrupted(s.index, s.started, s.worker, s.attempt) for s in leftovers)
            yield from self._drain(ends, None)


def _contribution(
    value: Any, states: StageStates, info: RunInfo, index: int, ledger: Ledger
) -> Any:
    """An ``ok`` item's value, its stages' partials counted."""
    if type(value) is not Contributed:
        if ledger.reported(index):  # its value was unwrapped the first time round
            raise BackendContractError(f"backend {info.backend!r} reported index {index} twice")
        raise BackendContractError(
            f"backend {info.backend!r} yielded an ok outcome without its stages' state: "
            "values must come from calling curator.Work (or its run_index), unchanged"
        )
    states.add(value.states)
    return value.value


def _contributions(
    values: Sequence[Any],
    states: StageStates,
    info: RunInfo,
    indices: Sequence[int],
    ledger: Ledger,
) -> list[Any]:
    """:func:`_contribution` for a column of values, in passes that run in C."""
    if set(map(type, values)) - {Contributed}:
        for value, index in zip(values, indices, strict=False):  # names the broken one
            _contribution(value, states, info, index, ledger)
    states.add_all([value.states for value in values])
    return [value.value for value in values]


def _check_status(batch: Successes, backend: str) -> None:
    """Refuse a backend's ``Successes`` that are not ``ok`` (the core makes the skipped ones)."""
    if batch.status is not OK:
        raise BackendContractError(
            f"backend {backend!r} sent a Successes batch of status {batch.status.value!r}: "
            "a backend's are ok"
        )


def _outcomes_of(batch: Iterable[Event], backend: str) -> Iterator[Event]:
    """``batch`` with each :class:`~curator.model.outcome.Successes` given as its outcomes."""
    for item in batch:
        if type(item) is Successes:
            _check_status(item, backend)
            yield from item
        else:
            yield item


def _handed_over(
    events: Iterator[Event | list[Event]], stop: KeyboardInterrupt
) -> Iterator[Event | list[Event]]:
    """What a backend still yields once a hard stop is thrown into it.

    A backend's generator that catches the stop may yield the outcomes it can
    still collect, then re-raise; one that does not simply ends.
    """
    throw = getattr(events, "throw", None)
    if throw is None:
        return
    try:
        event = throw(stop)
        while True:
            yield event
            event = next(events)
    except (KeyboardInterrupt, StopIteration):
        return
