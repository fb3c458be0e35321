"""Run curator items on joblib's loky process pool."""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from dataclasses import dataclass

from curator import (
    Backend,
    Capabilities,
    Event,
    Outcome,
    TaskStart,
    Work,
    option,
    starting_workers,
    tie_to_run,
)


@dataclass(frozen=True)
class LokyOptions:
    """Options of the ``loky`` backend."""

    in_flight: int = option(2, help="items queued per worker, to hide the round trip")

    def __post_init__(self) -> None:
        if self.in_flight < 1:  # none queued: the backend would end with items never run
            raise ValueError(f"in_flight must be 1 or more, not {self.in_flight}")


IN_TRANSIT_SECONDS = 0.2
"""At a hard stop, how long to wait for the next result on its way from a worker."""


Pending = dict[Future[Outcome], tuple[int, float, bool]]
"""The futures in flight: each item's index, when it was submitted, whether it runs alone."""


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

        _start_trackers()  # before starting_workers: each unblocks SIGINT as it starts
        pool = new_pool()
        todo: Iterator[int] = iter(indices)
        suspects: list[int] = []  # held by a pool when a worker died: each runs alone next
        pending: Pending = {}
        finished = False
        try:
            while True:
                broken = False
                with starting_workers():  # loky starts its workers as items are submitted
                    while (taken := self._next(todo, suspects, pending)) is not None:
                        index, alone = taken
                        try:
                            future = pool.submit(_run_one, work, index)
                        except BrokenExecutor:  # a worker died since the last look: back it goes
                            if alone:
                                suspects.insert(0, index)
                            else:
                                todo = itertools.chain((index,), todo)
                            broken = True
                            break
                        pending[future] = (index, time.time(), alone)
                if pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    broken = broken or any(_died_in(f) for f in done)
                elif not broken:
                    break
                if broken:  # loky fails every item of a pool that lost a worker
                    yield from self._after_a_death(work, pending, suspects)
                    pool.shutdown(wait=True, kill_workers=True)
                    pool = new_pool()
                    continue
                for future in done:
                    del pending[future]  # before the yield: a hard stop there hands over the rest
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

    def _next(
        self, todo: Iterator[int], suspects: list[int], pending: Pending
    ) -> tuple[int, bool] | None:
        """The index to submit now, if any, and whether it runs alone (a suspect does)."""
        if self.stop_requested or any(alone for _, _, alone in pending.values()):
            return None
        if suspects:
            return (suspects.pop(0), True) if not pending else None
        if len(pending) >= self.jobs * self.options.in_flight:
            return None
        index = next(todo, None)
        return None if index is None else (index, False)

    def _after_a_death(self, work: Work, pending: Pending, suspects: list[int]) -> Iterator[Event]:
        """Hand over what a broken pool finished; find who killed its worker.

        loky fails every item the pool held and cannot say which one ran in the
        worker that died. An item alone in the pool is the one: it is reported
        ``crashed``. Several become suspects, which then run one at a time: the
        innocent ones finish, the guilty one is found alone. If the run stops
        first, suspects are not run again: the core reports them ``cancelled``,
        and a resume runs them.
        """
        wait(pending)  # a broken pool settles all its futures at once
        lost: list[tuple[int, float, BaseException]] = []
        for future, (index, submitted, _) in list(pending.items()):
            del pending[future]  # before the yield: a hard stop there must not hand it over again
            problem = future.exception()
            if problem is None:
                yield from self._handed_over(future.result())
            elif _died_in(future):
                lost.append((index, submitted, problem))
            else:  # the pool broke for another reason (work that cannot load there)
                raise problem
        if len(lost) > 1:
            suspects += [index for index, _, _ in lost]
        elif lost:
            index, submitted, problem = lost[0]
            codes = _exit_codes(problem)
            single = re.fullmatch(r"\{\w+\((-?\d+)\)\}", codes)  # {EXIT(7)}, {SIGKILL(-9)}
            message = f"the loky worker running this item died (exit {codes})"
            exit_code = int(single.group(1)) if single else None
            crashed = Outcome.crashed(index, message, "loky", submitted, work.attempt, exit_code)
            yield from self._handed_over(crashed)

    def _handed_over(self, outcome: Outcome) -> Iterator[Event]:
        if self.wants_starts:
            yield TaskStart.of(outcome)
        yield outcome


def _start_trackers() -> None:
    """Start the resource trackers of loky and multiprocessing, which loky's pool uses."""
    import multiprocessing.resource_tracker

    from joblib.externals.loky.backend import resource_tracker

    resource_tracker.ensure_running()
    multiprocessing.resource_tracker.ensure_running()


def _died_in(future: Future[Outcome]) -> bool:
    """Whether ``future`` failed because a worker of its pool died."""
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    return isinstance(future.exception(), TerminatedWorkerError)


def _exit_codes(problem: BaseException) -> str:
    """The exit codes loky's error names (``{SIGKILL(-9)}``); its text if it names none."""
    found = re.findall(r"\{[^{}]*\}", str(problem))
    return found[-1] if found else " ".join(str(problem).split())
