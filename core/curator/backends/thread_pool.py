"""The ``thread-pool`` backend: worker threads, each with its own copy of the pipeline.

Filters and sinks are often stateful (counters, open files, caches) and not
thread-safe; the origin dropped its thread pool for that reason. Here every
worker thread gets a private deep copy of the pipeline, made in the parent
before any thread starts, so no two threads ever share a stage object. The
caller's pipeline is not touched, exactly as with a process pool. A pipeline
that is known to be thread-safe can be shared with ``copy_pipeline=False``.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from curator.backends.backend import Backend, Capabilities, StopFlag
from curator.backends.dispatch import units
from curator.backends.lifecycle import WorkerInfo
from curator.backends.seats import Phase, Seat, SeatWatch, abandoned, unrunnable
from curator.backends.watchdog import set_up_in_time, tear_down_in_time, unrun
from curator.backends.work import Work
from curator.model.errors import UsageError
from curator.model.outcome import Event, Outcome, TaskStart
from curator.plugin_host.options import option

_DONE = object()
_HOOK = object()
"""A thread entered its stages' setup or teardown: the parent starts watching the time."""
HARD_STOP_JOIN_SECONDS = 0.05

AHEAD_PER_THREAD = 8
"""Items a thread may start beyond those whose outcomes the run took (see :class:`_Window`)."""


@dataclass(frozen=True)
class ThreadPoolOptions:
    """Options of the ``thread-pool`` backend."""

    copy_pipeline: bool = option(
        True,
        help="give each thread its own deep copy of the pipeline; "
        "false shares one object (only for thread-safe pipelines)",
    )


class ThreadPoolBackend(Backend):
    """Run items on ``jobs`` threads that pull indices from a shared queue.

    Good for I/O-bound items and for code that releases the GIL (NumPy,
    compression, file and network I/O). Each thread owns a pipeline copy.
    A graceful stop lets running items finish; a hard stop cannot kill a
    thread, so it abandons running items to finish (or not) in the background.
    """

    name = "thread-pool"
    description = "Worker threads in this process, one pipeline copy per thread (I/O-bound work)."
    capabilities = Capabilities(
        parallel=True, keeps_groups=True, worker_lifecycle=True, lifecycle_timeouts=True
    )
    Options = ThreadPoolOptions

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        """Start the threads, stream their records, and join them when done or closed.

        A thread whose stages' ``setup``/``teardown`` overruns its limit is
        abandoned (see :mod:`curator.backends.seats`): the items it took fail
        ``SetupTimeout``, a teardown gets a warning, and the run goes on with
        the other threads. A shared pipeline is set up and torn down in this
        thread, bounded as on ``sequential`` (see :mod:`curator.backends.watchdog`).
        """
        n_threads = min(self.jobs, len(indices))
        works = [self._copy(work) for _ in range(n_threads)]
        shared = works[0] is work  # copy_pipeline=false: one setup for every thread
        if shared:
            info = WorkerInfo(0, self.name, self.jobs)
            overrun = set_up_in_time(work, info, self.setup_timeout, "main")
            if overrun is not None:
                yield from unrun(indices, overrun, work.attempt, lambda: self.stop_requested)
                return
        todo = _Dispenser(units(indices))
        records: queue.SimpleQueue[object] = queue.SimpleQueue()
        stop = self._stop
        window = _Window(AHEAD_PER_THREAD * n_threads, stop)
        seats = [Seat(f"thread-{slot}") for slot in range(n_threads)]
        watch = None
        if not shared and (self.setup_timeout is not None or self.teardown_timeout is not None):
            watch = SeatWatch(seats, self.setup_timeout, self.teardown_timeout)
        threads = self._start(works, shared, seats, todo, records, window)
        finished = False
        running: dict[int, TaskStart] = {}  # started, no outcome yet
        try:
            yield from _relay(records, n_threads, window, watch, running, work.attempt)
            if watch is not None and not self.stop_requested:
                # Every thread was abandoned in its setup: nobody is left for these.
                left = [index for unit in iter(todo.next, None) for index in unit]
                stuck = [seat for seat in seats if seat.abandoned]
                if left and stuck:
                    yield from unrunnable(left, stuck[-1], watch, work.attempt)
            finished = True
        except KeyboardInterrupt:  # the core's hard stop (curator.model.errors.HardStop)
            # Threads cannot be killed: hand over what finished, and report the
            # items still running as interrupted (they are abandoned, see above).
            stop.set()
            yield from _finished_so_far(records, running)
            for start in running.values():
                yield work.interrupted(start.index, start.started, start.worker)
            raise
        finally:
            stop.set()
            window.wake()
            self._end(work, threads, seats, shared, finished)

    def _start(
        self,
        works: list[Work],
        shared: bool,
        seats: list[Seat],
        todo: _Dispenser,
        records: queue.SimpleQueue[object],
        window: _Window,
    ) -> list[threading.Thread]:
        """One started thread per seat, each taking units from ``todo``."""
        threads = [
            threading.Thread(
                target=_worker,
                args=(
                    works[slot],
                    None if shared else WorkerInfo(slot, self.name, self.jobs),
                    seats[slot],
                    todo,
                    records,
                    window,
                ),
                name=f"curator-thread-{slot}",
                daemon=True,
            )
            for slot in range(len(seats))
        ]
        for thread in threads:
            thread.start()
        return threads

    def _end(
        self,
        work: Work,
        threads: list[threading.Thread],
        seats: list[Seat],
        shared: bool,
        finished: bool,
    ) -> None:
        """Join the threads (briefly, after a hard stop) and tear a shared pipeline down."""
        # On a hard stop (closed early, a second Ctrl-C) do not wait for running
        # items: threads cannot be killed. They are daemons, so they end with the
        # process, and they take no new item.
        for thread, seat in zip(threads, seats, strict=True):
            if not seat.abandoned:  # an abandoned one may never come back
                thread.join(None if finished else HARD_STOP_JOIN_SECONDS)
        if shared:
            if finished:
                tear_down_in_time(work, self.teardown_timeout, "main")
            else:
                with contextlib.suppress(Exception):  # the run's own end matters more
                    tear_down_in_time(work, self.teardown_timeout, "main")

    def prepare(self, work: Work) -> None:
        """Refuse what the threads cannot run, before the run starts.

        Accumulating stages cannot be shared between threads (each needs its
        own copy), and a pipeline that cannot be copied is named here, not
        after the run began. The trial copy is not kept: a run that never
        executes (nothing left to run) would hold it, and the caller's
        pipeline, on a session's backend.
        """
        if work.accumulating and not self.options.copy_pipeline:
            names = ", ".join(type(stage).__qualname__ for stage in work.accumulating)
            raise UsageError(
                f"the stage {names} accumulates state (reset/state/merge), which threads "
                "cannot share: run it with copy_pipeline=true (the default), so each thread "
                "has its own copy and curator merges them"
            )
        self._copy(work)

    def _copy(self, work: Work) -> Work:
        if not self.options.copy_pipeline:
            return work
        try:
            return copy.deepcopy(work)
        except Exception as exc:
            raise UsageError(
                f"thread-pool could not copy the pipeline for each thread "
                f"({type(exc).__name__}: {exc}); make its stages copyable, or pass "
                "copy_pipeline=false if the pipeline is thread-safe"
            ) from exc


class _Dispenser:
    """Hands out units to threads, one at a time, without copying the sequence.

    A unit is one index, or a keep-together group that one thread runs in order.

    With the GIL, ``next()`` on a built-in iterator is atomic, and a lock would
    only add contention (it doubled the per-item cost in the benchmark). On a
    free-threaded build there is no such guarantee, so a lock is used there.
    """

    __slots__ = ("_iterator", "_lock")

    def __init__(self, units: Iterator[Sequence[int]]) -> None:
        self._iterator = units
        gil = getattr(sys, "_is_gil_enabled", lambda: True)()
        self._lock = None if gil else threading.Lock()

    def next(self) -> Sequence[int] | None:
        if self._lock is None:
            return next(self._iterator, None)
        with self._lock:
            return next(self._iterator, None)


class _Window:
    """Backpressure: how far the threads may run ahead of the run that takes their outcomes.

    A thread takes a ticket before each item and starts it only while fewer
    than ``size`` tickets are ahead of the outcomes the run took; otherwise it
    waits. So a slow consumer of a stream holds the threads back, and at most
    ``size`` outcomes (and their start records) ever wait in the queue, whatever
    the item count: memory stays flat. A run that keeps up never waits.

    Cheap on the common path: with the GIL, ``next()`` on a count and an int
    compare for a thread, an increment and a read for the run. Waiting threads
    are woken when the run took half a window, and whenever it finds the queue
    empty (so none can be forgotten), and when the run stops.
    """

    __slots__ = ("_cond", "_lock", "_tickets", "_waiting", "_wake_every", "size", "stop", "taken")

    def __init__(self, size: int, stop: StopFlag) -> None:
        self.size = size
        self.taken = 0
        """Outcomes the run took (written by the run's thread only)."""
        self.stop = stop
        self._tickets = itertools.count()
        gil = getattr(sys, "_is_gil_enabled", lambda: True)()
        self._lock = None if gil else threading.Lock()  # as _Dispenser
        self._cond = threading.Condition()
        self._waiting = 0
        self._wake_every = max(1, size // 2)

    def enter(self) -> None:
        """Wait (in a thread) until the next item may start, or the run stops."""
        if self._lock is None:
            ticket = next(self._tickets)
        else:
            with self._lock:
                ticket = next(self._tickets)
        if ticket - self.taken < self.size:
            return
        with self._cond:
            self._waiting += 1  # before the check: the run reads it after it took one
            try:
                while ticket - self.taken >= self.size and not self.stop.is_set():
                    self._cond.wait(WAKE_ANYWAY_SECONDS)
            finally:
                self._waiting -= 1

    def took(self) -> None:
        """Count one outcome taken by the run (in the run's thread)."""
        self.taken += 1
        if self._waiting and not self.taken % self._wake_every:
            self.wake()

    def wake(self) -> None:
        """Let waiting threads check again."""
        if self._waiting:
            with self._cond:
                self._cond.notify_all()


SIGNAL_LOOK_SECONDS = 0.2
"""The longest the run's thread waits on the queue at a time. A Ctrl-C or SIGTERM the
kernel hands to another thread only sets a flag, which this thread sees when it runs
Python code again: a wait without end would keep the run from stopping until an item
finished (a second Ctrl-C once waited out a 30 s item)."""

WAKE_ANYWAY_SECONDS = 0.1
"""A waiting thread checks again after this long even if nobody woke it (a safety net)."""


def _finished_so_far(
    records: queue.SimpleQueue[object], running: dict[int, TaskStart]
) -> Iterator[Event]:
    """The outcomes already queued by the threads (taken without waiting)."""
    while True:
        try:
            record = records.get_nowait()
        except queue.Empty:
            return
        if type(record) is Outcome:
            running.pop(record.index, None)
            yield record


def _relay(
    records: queue.SimpleQueue[object],
    alive: int,
    window: _Window,
    watch: SeatWatch | None,
    running: dict[int, TaskStart],
    attempt: int,
) -> Iterator[Event]:
    """The threads' records as events, until every thread is done or abandoned.

    ``running`` keeps the items started and not finished, for a hard stop.
    """
    while alive:
        if watch is not None:
            for seat in watch.overdue():
                alive -= 1
                yield from abandoned(seat, watch, attempt)
            if not alive:
                break
        try:
            record = records.get_nowait()
        except queue.Empty:
            window.wake()  # threads wait for room only while nothing is queued
            wait = None if watch is None else watch.wait()
            look = SIGNAL_LOOK_SECONDS if wait is None else min(wait, SIGNAL_LOOK_SECONDS)
            try:
                record = records.get(timeout=look)
            except queue.Empty:
                continue
        if record is _DONE:
            alive -= 1
        elif record is _HOOK:
            if watch is not None:
                watch.look_now()
        elif isinstance(record, BaseException):
            raise record
        elif type(record) is TaskStart:
            running[record.index] = record
            yield record
        else:
            running.pop(record.index, None)  # type: ignore[attr-defined]
            yield record  # type: ignore[misc]
            window.took()  # the run came back for more: it took this outcome


def _worker(
    work: Work,
    info: WorkerInfo | None,
    seat: Seat,
    todo: _Dispenser,
    records: queue.SimpleQueue[object],
    window: _Window,
) -> None:
    """One thread's loop; ``info`` is set when it owns its copy (it sets up its stages).

    Once the parent abandoned the thread (its hook overran), it puts nothing
    more in ``records`` (see :mod:`curator.backends.seats`).
    """
    stop = window.stop
    worker = seat.name
    problem: BaseException | None = None
    try:
        try:
            while not stop.is_set():
                unit = todo.next()
                if unit is None:
                    break
                if info is not None and not work.is_set_up:
                    # Before this thread's first item; once.
                    if not seat.enter(Phase.SETUP, unit):
                        return
                    records.put(_HOOK)
                    work.setup(info, seat.announce)
                    if not seat.enter(Phase.ITEMS):
                        _quietly_tear_down(work)  # its setup came back too late
                        return
                for index in unit:
                    window.enter()
                    if stop.is_set():
                        break
                    records.put(work.start(index, worker))
                    records.put(work(index, worker))
        except BaseException:
            if info is not None:
                _quietly_tear_down(work)  # what ended the thread matters more
            raise
        if info is not None and seat.enter(Phase.TEARDOWN):
            records.put(_HOOK)
            work.teardown(seat.announce)  # after its last item (nothing if it ran none)
    except BaseException as exc:  # setup/teardown errors, or a bug: hand it to the parent
        problem = exc
    finally:
        if seat.close():
            if problem is not None:
                records.put(problem)
            records.put(_DONE)


def _quietly_tear_down(work: Work) -> None:
    with contextlib.suppress(Exception):
        work.teardown()
