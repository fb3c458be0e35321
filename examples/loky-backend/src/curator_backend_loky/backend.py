"""Run curator items on joblib's loky process pool."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass

from curator import Backend, Capabilities, Event, Outcome, TaskStart, Work, option


@dataclass(frozen=True)
class LokyOptions:
    """Options of the ``loky`` backend."""

    in_flight: int = option(2, help="items queued per worker, to hide the round trip")

    def __post_init__(self) -> None:
        if self.in_flight < 1:  # none queued: the backend would end with items never run
            raise ValueError(f"in_flight must be 1 or more, not {self.in_flight}")


IN_TRANSIT_SECONDS = 0.2
"""At a hard stop, how long to wait for the next result on its way from a worker."""


def _run_one(work: Work, index: int) -> Outcome:
    return work(index, worker=f"loky-{os.getpid()}")


class LokyBackend(Backend):
    """One loky future per item, at most ``in_flight`` per worker queued."""

    name = "loky"
    description = "joblib's loky process pool (the tutorial's third-party backend)."
    requires = ("joblib",)
    capabilities = Capabilities(parallel=True, needs_picklable_work=True, cancel_running=True)
    Options = LokyOptions

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        """Submit items as workers free up; yield each outcome as it completes."""
        from joblib.externals.loky import ProcessPoolExecutor  # heavy: import on use

        pool = ProcessPoolExecutor(max_workers=self.jobs)
        todo = iter(indices)
        pending: set[Future[Outcome]] = set()
        finished = False
        try:
            while True:
                while not self.stop_requested and len(pending) < self.jobs * self.options.in_flight:
                    index = next(todo, None)
                    if index is None:
                        break
                    pending.add(pool.submit(_run_one, work, index))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from self._handed_over(future.result())
            finished = True
        except BaseException as stop:  # a hard stop, or a stream closed early
            if not isinstance(stop, GeneratorExit):  # a closed generator yields no more
                # Items that finished since the last look are done, and the results
                # still on their way from the workers land within a moment: hand both
                # over (the running items' wait ends as soon as nothing more lands).
                while pending:
                    done, pending = wait(pending, IN_TRANSIT_SECONDS, FIRST_COMPLETED)
                    if not done:
                        break
                    for future in done:
                        if not future.cancelled() and future.exception() is None:
                            yield from self._handed_over(future.result())
            raise
        finally:
            # A normal end waits for idle workers; a hard stop kills running items.
            pool.shutdown(wait=True, kill_workers=not finished)

    def _handed_over(self, outcome: Outcome) -> Iterator[Event]:
        if self.wants_starts:
            yield TaskStart.of(outcome)
        yield outcome
