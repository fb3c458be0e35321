"""Run curator items on joblib's loky process pool."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from dataclasses import dataclass

from curator import Backend, Capabilities, Event, Outcome, TaskStart, Work, option, tie_to_run


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

        def new_pool() -> ProcessPoolExecutor:
            # Each worker ignores the terminal's Ctrl-C and exits when this process does.
            return ProcessPoolExecutor(self.jobs, initializer=tie_to_run, initargs=(os.getpid(),))

        pool = new_pool()
        todo: Iterator[int] = iter(indices)
        pending: dict[Future[Outcome], tuple[int, float]] = {}  # index, when submitted
        finished = False
        try:
            while True:
                broken = False
                while not self.stop_requested and len(pending) < self.jobs * self.options.in_flight:
                    index = next(todo, None)
                    if index is None:
                        break
                    try:
                        pending[pool.submit(_run_one, work, index)] = (index, time.time())
                    except BrokenExecutor:  # a worker died since the last look
                        todo, broken = itertools.chain((index,), todo), True
                        break
                if pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    broken = broken or any(isinstance(f.exception(), BrokenExecutor) for f in done)
                elif not broken:
                    break
                if broken:  # loky fails every item of a pool that lost a worker
                    yield from self._lost_with_the_pool(work, pending)
                    pool.shutdown(wait=True, kill_workers=True)
                    pool = new_pool()
                    continue
                for future in done:
                    del pending[future]
                    yield from self._handed_over(future.result())
            finished = True
        except BaseException as stop:  # a hard stop, or a stream closed early
            if not isinstance(stop, GeneratorExit):  # a closed generator yields no more
                # Items that finished since the last look are done, and the results
                # still on their way from the workers land within a moment: hand both
                # over (the running items' wait ends as soon as nothing more lands).
                waiting = set(pending)
                while waiting:
                    done, waiting = wait(waiting, IN_TRANSIT_SECONDS, FIRST_COMPLETED)
                    if not done:
                        break
                    for future in done:
                        if not future.cancelled() and future.exception() is None:
                            yield from self._handed_over(future.result())
            raise
        finally:
            # A normal end waits for idle workers; a hard stop kills running items.
            pool.shutdown(wait=True, kill_workers=not finished)

    def _lost_with_the_pool(
        self, work: Work, pending: dict[Future[Outcome], tuple[int, float]]
    ) -> Iterator[Event]:
        """Hand over what a broken pool held: what finished, and the rest as crashed.

        loky cannot tell which item a dead worker ran: it fails every item its
        pool held, so each of them is reported ``crashed`` (a retry runs them again).
        """
        wait(pending)  # a broken pool settles all its futures at once
        for future, (index, submitted) in pending.items():
            problem = future.exception()
            if problem is None:
                yield from self._handed_over(future.result())
                continue
            cause = " ".join(str(problem).split())
            message = (
                f"a loky worker died ({cause}); loky fails every item its pool held, so this "
                "item may have been waiting, not running"
            )
            crashed = Outcome.crashed(index, message, "loky", submitted, work.attempt)
            yield from self._handed_over(crashed)
        pending.clear()

    def _handed_over(self, outcome: Outcome) -> Iterator[Event]:
        if self.wants_starts:
            yield TaskStart.of(outcome)
        yield outcome
