"""The run loop's end: the last outcomes, the result, the checkpoint closed, the listeners told.

A mixin of :class:`curator.running.loop.RunLoop`. However a run ends (done, out of
failure budget, Ctrl-C, a backend's bug), it ends here: the failures no retry
followed and the items that never ran (``cancelled``) get their outcomes, the
stages' states and shards are merged, the checkpoint records the run's end,
and ``curator_run_finish`` is called once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from curator.backends.backend import Backend
from curator.model.errors import BackendContractError, StateMergeError
from curator.model.outcome import Outcome, Status, Successes
from curator.model.result import RunInfo, RunResult
from curator.model.shards import ShardMerge
from curator.model.state import StageStates
from curator.observing.progress import RunProgress
from curator.plugin_host.relay import EventRelay
from curator.running.interrupts import Finishing
from curator.running.ledger import Ledger

if TYPE_CHECKING:  # the checkpoint's modules (sqlite3, hashlib) load only for a run that keeps one
    from curator.checkpoint.latest import Latest
    from curator.checkpoint.store import CheckpointStore

OK = Status.OK

BATCH = 8192
"""Outcomes the loop hands on at once when it makes them itself (skipped, cancelled)."""


class RunEnding:
    """Ends a run (a mixin of :class:`~curator.running.loop.RunLoop`)."""

    info: RunInfo
    ledger: Ledger
    progress: RunProgress
    store: CheckpointStore | None
    relay: EventRelay
    held: dict[int, Outcome]
    states: StageStates | None
    shards: ShardMerge | None
    runner: Backend | None
    hand_back: Callable[[Backend], None] | None
    superseded: list[Outcome]
    merge_error: StateMergeError | None
    close_error: BackendContractError | None
    recorded: Latest | None
    result: RunResult | None
    stopped_at_the_end: Finishing | None

    def _in_request_order(self, indices: Iterable[int]) -> list[int]:
        position = self.ledger.position
        return sorted(indices, key=lambda index: position(index) or 0)

    def _last_outcomes(self, when: float) -> Iterator[Sequence[Outcome | Successes]]:
        """The failures no retry followed, then ``cancelled`` for every index that never ran."""
        for batch, cancelled in self._leftovers(when):
            if cancelled:
                self.progress.cancelled += len(batch)  # first: never counted done meanwhile
                for outcome in batch:
                    self.ledger.record(outcome)
            yield self._announced(batch)

    def _leftovers(self, when: float) -> Iterator[tuple[list[Outcome], bool]]:
        """What is still to hand out, in batches; ``True`` marks the ``cancelled`` ones.

        The held failures come first, and leave :attr:`held` before they are
        handed out: a stop meanwhile never hands them out twice.
        """
        held = self.held
        if held:
            last = [held[i] for i in self._in_request_order(held)]
            held.clear()
            yield last, False
        missing = list(self.ledger.missing())
        for start in range(0, len(missing), BATCH):
            yield (
                [
                    Outcome(index, Status.CANCELLED, started=when, finished=when)
                    for index in missing[start : start + BATCH]
                ],
                True,
            )

    def _announced(self, batch: list[Outcome]) -> list[Outcome]:
        """``batch``, once the ``curator_batch_finish`` listeners have seen it."""
        if self.relay.listens("curator_batch_finish"):
            self.relay.call("curator_batch_finish", run=self.info, batch=batch)
        return batch

    def _announce_the_rest(self, when: float) -> None:
        """Give ``curator_batch_finish`` what a run that ended early never handed out.

        A stream closed by its consumer, a backend's error or a hard stop ends
        the run before :meth:`_last_outcomes`: its held failures and the
        items that never ran (``cancelled`` in the result, which reads the
        open slots so) are announced here, so that every index is in exactly
        one batch however the run ends.
        """
        if self.relay.listens("curator_batch_finish"):
            for batch, _ in self._leftovers(when):
                self._announced(batch)

    def _tally(self) -> Counter[Status]:
        """Outcomes per status, the open slots as the ``cancelled`` they read as."""
        tally = self.ledger.counts()
        if self.ledger.open:
            tally[Status.CANCELLED] += self.ledger.open
        return tally

    def _recorded_ok(self, index: int) -> bool:
        """Whether item ``index`` is recorded ``ok``: by this run, or the checkpoint it resumes."""
        done = self.ledger.done(index)
        if done is not None:
            return done
        return self.recorded is not None and self.recorded.is_done(index)

    def _let_go(self, runner: Backend) -> None:
        if self.hand_back is not None:
            self.hand_back(runner)
            return
        try:
            runner.close()
        except Exception as exc:
            # Its bug, raised once the end is recorded: raised here, it cost the
            # checkpoint's last records, the reporters' run_finish and the result.
            self.close_error = BackendContractError(
                f"backend {runner.name!r} raised in close(): {type(exc).__name__}: {exc}"
            )
            self.close_error.__cause__ = exc

    def _close_error_aside(self) -> None:
        """Say a ``close()`` that raised, where the run ends on another error (raised)."""
        if self.close_error is not None:
            logging.getLogger("curator").warning("%s", self.close_error)

    def _finish(
        self, started: float, interrupted: bool, terminated: bool, stopped: bool = False
    ) -> RunResult:
        """End the run: record and report it. ``stopped``: it ends early, not by a hard stop.

        A stop asked for meanwhile is kept in :attr:`stopped_at_the_end`.
        """
        finishing = self.stopped_at_the_end = Finishing()
        with finishing:
            return self._record_end(started, interrupted, terminated, stopped)

    def _record_end(
        self, started: float, interrupted: bool, terminated: bool, stopped: bool
    ) -> RunResult:
        runner, self.runner = self.runner, None
        if runner is not None:
            self._let_go(runner)
        if self.states is not None:
            try:
                self.states.finish()
            except StateMergeError as problem:
                self.merge_error = problem
        if self.shards is not None:
            tally = self.ledger.counts()
            complete = tally[OK] + tally[Status.SKIPPED] == len(self.info.indices)
            unmerged = self.shards.finish(complete, self._recorded_ok)
            if unmerged is not None and self.merge_error is None:
                self.merge_error = StateMergeError(
                    f"{unmerged}. Every outcome is recorded and the checkpoint is intact"
                )
        finished = time.time()
        result = RunResult(
            self.info,
            self.ledger.outcomes(finished),
            started,
            finished,
            interrupted,
            retried=self.superseded,
            checkpoint=self.store.path if self.store is not None else None,
            terminated=terminated,
            tally=self._tally(),
        )
        self.result = result
        try:
            self._announce_the_rest(finished)
            if self.store is not None:
                counts = {status.value: n for status, n in result.counts().items()}
                counts["failed"] = len(result.failures)
                # A stream closed after its last outcome ended no earlier than a run.
                early = stopped and bool(
                    result.count(Status.CANCELLED) or result.count(Status.INTERRUPTED)
                )
                self.store.finish_run(counts, interrupted, result.seconds, result.ran, early)
        finally:
            if self.store is not None:
                self.store.close()
            self.relay.call("curator_run_finish", run=self.info, result=result)
        return result
