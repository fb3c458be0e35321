"""The parent side of the process pool: workers, dispatch, results and crashes.

One pipe per worker carries chunks of indices down and batches of records up.
The parent waits on all pipes and all process sentinels at once, so results
stream back as they complete and a dead worker is noticed immediately: the
item it was running (read from shared memory) is reported ``crashed`` with
the exit code or signal, the rest of its chunks go back to the queue, and a
new worker takes its slot.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import wait
from multiprocessing.context import BaseContext
from typing import Any

from curator import ErrorInfo, Event, Outcome, TaskStart, TeardownError, UsageError
from curator.backends import columns
from curator.backends.dispatch import ChunkSizer, Todo
from curator.backends.lifecycle import setup_timed_out, teardown_abandoned
from curator.backends.spawning import describe_exit, main_module_stays_home, parent_world
from curator_backend_process_pool import worker
from curator_backend_process_pool.deaths import (
    crash_outcome,
    name_of,
    outlived_its_fork_server,
)
from curator_backend_process_pool.limits import Limits
from curator_backend_process_pool.memory import MemoryWatch, below_the_floor, kill_tree
from curator_backend_process_pool.shared import SharedBlock
from curator_backend_process_pool.shipping import pickle_setup
from curator_backend_process_pool.slots import Chunk, WorkerSlot

PREFETCH_BELOW_SECONDS = 0.001
"""Queue a second chunk on a worker only when items are faster than this.

For fast items the second chunk hides the round trip to the parent; for slow
ones it would pin work to a busy worker while another one idles at the end.
"""

GRACE_SECONDS = 0.5
"""How long a shutdown, or a hard stop, waits for workers to exit before killing them."""

MAX_START_FAILURES = 3

START_ATTEMPTS = 6
"""Tries to start a worker process (the fork server may be restarting)."""


class Pool:
    """Worker processes that run one run after another (a session keeps them warm).

    Workers start when a run needs them and stay until :meth:`shutdown`; each
    run sends its work (and the run's environment, import path and working
    directory) to each worker once. A worker that finds a module it imported
    changed on disk since then asks to be replaced, so a warm worker is as
    fresh as a new one.

    Parameters
    ----------
    context
        The multiprocessing context (start method).
    size
        Number of worker processes at most.
    max_tasks_per_child
        Replace a worker after it ran this many items.
    initializer, initargs
        Run once in each worker before any item.
    memory_limit
        Bytes of RSS a worker may use while it runs an item: over it, the
        worker is killed and the item fails with ``MemoryLimit`` (see
        :mod:`~curator_backend_process_pool.memory`).
    """

    def __init__(
        self,
        context: BaseContext,
        size: int,
        max_tasks_per_child: int | None,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        worker_env: dict[str, str] | None = None,
        thread_cap: int | None = None,
        memory_limit: int | None = None,
    ) -> None:
        self.context = context
        self.size = size
        self.max_tasks = max_tasks_per_child
        self.initializer = initializer
        self.setup_bytes = pickle_setup(initializer, initargs)
        self.worker_env = worker_env or {}
        self.thread_cap = thread_cap
        self.shared = SharedBlock(size)
        self.current, self.since, self.stop = (
            self.shared.current,
            self.shared.since,
            self.shared.stop,
        )
        for slot in range(size):
            self.current[slot] = worker.IDLE
        self.workers: dict[int, WorkerSlot] = {}
        self.chunk_ids = itertools.count()
        self.parent = os.getpid()
        self.runs = 0
        """How many runs this pool started; a worker holds the work of run ``work_of``."""
        # What the current run set (see run()).
        self.work_bytes = b""
        self.world = parent_world()
        self.sizer = ChunkSizer(size)
        self.stop_requested: Callable[[], bool] = lambda: False
        self.report_starts = True
        self.attempt = 1
        self.limits = Limits()
        self.start_failures = 0
        self.teardown_problems: list[str] = []
        self.memory = MemoryWatch(memory_limit)

    # -- lifecycle ------------------------------------------------------------

    def _start(self, slot: int) -> None:
        parent_end, child_end = self.context.Pipe(duplex=True)
        process = self.context.Process(  # type: ignore[attr-defined]
            target=worker.main,
            args=(
                slot,
                child_end,
                self.world,
                self.setup_bytes,
                self.shared,
                self.parent,
                self.size,
                self.worker_env,
                self.thread_cap,
                self.memory.limit,
            ),
            name=f"curator-process-{slot}",
            daemon=True,
        )
        for attempt in range(START_ATTEMPTS):
            try:
                with main_module_stays_home():
                    process.start()
                break
            except OSError:
                # A fork server that just died refuses connections until it has
                # been reaped; multiprocessing then starts a new one.
                if attempt == START_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        child_end.close()
        self.memory.forget(slot)
        self.current[slot] = worker.IDLE
        self.workers[slot] = WorkerSlot(slot, process, parent_end, budget=self.max_tasks)
        self._give_work(self.workers[slot])

    def _give_work(self, w: WorkerSlot) -> None:
        """Send the current run's work (and world) to ``w`` if it has another run's."""
        if w.work_of != self.runs:
            w.work_of = self.runs
            self._send(w, ("work", self.world, self.work_bytes))

    def activity(self) -> dict[str, tuple[int, float]]:
        """What each worker runs now, read from shared memory (any thread may call it)."""
        busy = {}
        for slot in range(self.size):
            index = self.current[slot]
            if index >= 0:  # not idle, not in its stages' setup
                busy[f"process-{slot}"] = (index, self.since[slot])
        return busy

    def shutdown(self, hard: bool = False) -> None:
        """Stop every worker and leave no process behind.

        Idle workers are asked to exit and given :data:`GRACE_SECONDS`; with
        ``hard`` (an interrupted run) workers are terminated at once.
        """
        self.stop[0] = 1
        for w in self.workers.values():
            with contextlib.suppress(OSError, ValueError):
                w.conn.send(None)
        deadline = time.monotonic() + (0.0 if hard else GRACE_SECONDS)
        for w in self.workers.values():
            w.process.join(max(0.0, deadline - time.monotonic()))
        for w in self.workers.values():
            if w.process.is_alive():
                w.process.terminate()
        for w in self.workers.values():
            w.process.join(1.0)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self.workers.clear()

    def stop_dispatching(self) -> None:
        """Tell the workers, through shared memory, to start no new item (any thread)."""
        if not self.stop[0]:
            self.stop[0] = worker.STOP

    # -- the run ----------------------------------------------------------------

    def run(
        self,
        work_bytes: bytes,
        indices: Sequence[int],
        stop_requested: Callable[[], bool],
        report_starts: bool = True,
        attempt: int = 1,
        timeout: float | None = None,
        chunksize: int | None = None,
        setup_timeout: float | None = None,
        teardown_timeout: float | None = None,
    ) -> Iterator[Event | list[Event]]:
        """Dispatch ``indices`` and yield start events and outcomes as they arrive, in batches.

        Parameters
        ----------
        work_bytes
            The pickled :class:`curator.Work`, sent to each worker once.
        indices
            What to run.
        stop_requested
            Returns true once the core asked the run to stop dispatching.
        report_starts
            Whether to produce start events (false when nobody listens).
        attempt
            The attempt number the work carries (for records of crashes).
        timeout
            Seconds an item may run before its worker is killed and the item
            is reported ``timed_out``; ``None`` for no limit.
        chunksize
            Indices per chunk; ``None`` for adaptive chunks.
        setup_timeout
            Seconds a worker's stages may take in ``setup(worker)``: past it the
            worker is killed and replaced, and the items of the chunk it was to
            run fail ``SetupTimeout``; ``None`` for no limit.
        teardown_timeout
            Seconds a worker's stages may take in ``teardown()`` when the run
            ends: past it the worker is killed, with a warning.

        A :class:`KeyboardInterrupt` (the core's hard stop, raised here or
        thrown in at a ``yield``) ends the run at once, but first collects and
        yields what already finished, and the running items as ``interrupted``.
        Afterwards the pool has no workers left.
        """
        self.runs += 1
        self.work_bytes = work_bytes
        self.world = parent_world()
        self.sizer = ChunkSizer(min(self.size, len(indices)), fixed=chunksize)
        self.stop_requested = stop_requested
        self.report_starts = report_starts
        self.attempt = attempt
        self.limits = Limits(timeout, setup_timeout, teardown_timeout)
        self.start_failures = 0
        self.stop[0] = 0
        self.teardown_problems = []
        try:
            yield from self._loop(Todo(indices))
        except KeyboardInterrupt:
            yield from self._hard_stop()
            raise
        self._end_run()

    def _loop(self, todo: Todo) -> Iterator[Event | list[Event]]:
        for slot in range(min(self.size, len(todo))):
            if slot in self.workers:
                self._give_work(self.workers[slot])
            else:
                self._start(slot)
        stopping = False
        while True:
            if not stopping and self.stop_requested():
                stopping = True
                self.stop[0] = 1
            if not stopping:
                self._dispatch(todo)
            busy = [w for w in self.workers.values() if w.chunks or w.quitting]
            if not busy and (stopping or not todo):
                return
            waitables: list[Any] = []
            for w in self.workers.values():
                waitables += [w.conn, w.process.sentinel]
            deadline = self.limits.wait(self.workers, self.current, self.since)
            sample = self.memory.wait(time.monotonic())
            ready = set(wait(waitables, sample if deadline is None else min(deadline, sample)))
            if deadline is not None:
                for w in self.limits.overdue(self.workers, self.current, self.since):
                    _kill(w)  # with what its item started: it may hang in a child
            self._watch_memory()
            for w in list(self.workers.values()):
                if w.conn in ready:
                    yield self._receive(w)
                if w.process.sentinel in ready:
                    yield from self._exited(w, todo, stopping)

    def _end_run(self) -> None:
        """Have the workers that hold this run's work tear their stages down; wait for them.

        A worker that dies meanwhile is left for the next run to replace.

        Raises
        ------
        TeardownError
            Naming the workers whose stages' ``teardown()`` raised.
        """
        waiting = [w for w in self.workers.values() if w.work_of == self.runs and not w.quitting]
        for w in waiting:
            w.ended = False
            w.stage = None
            self._send(w, ("end",))
        waiting = [w for w in waiting if not w.broken]
        limit = self.limits.teardown
        deadline = None if limit is None else time.monotonic() + limit
        while waiting:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                for w in waiting:
                    self._abandon_teardown(w)
                break
            waitables: list[Any] = [x for w in waiting for x in (w.conn, w.process.sentinel)]
            ready = set(wait(waitables, left))
            for w in list(waiting):
                if w.conn in ready:
                    self._receive(w)  # nothing but "ended" is left to say
                if w.ended or w.process.sentinel in ready:
                    waiting.remove(w)
        if self.teardown_problems:
            raise TeardownError(
                "a stage's teardown() failed on " + "; ".join(self.teardown_problems)
            )

    def _abandon_teardown(self, w: WorkerSlot) -> None:
        """Kill ``w``, whose stages' teardown ran past its limit, with a warning naming it."""
        assert self.limits.teardown is not None
        self._receive(w)  # the stage it announced last
        fate = f"its process (pid {w.process.pid}) was killed"
        teardown_abandoned(w.stage, self.limits.teardown, w.name, fate)
        _kill(w)
        w.process.join()
        w.conn.close()
        del self.workers[w.slot]  # the next run starts a fresh one

    def _watch_memory(self) -> None:
        """Sample busy workers' RSS when due; kill the workers over the memory limit."""
        busy = [
            (slot, w.process.pid)
            for slot, w in self.workers.items()
            if self.current[slot] >= 0 and w.process.pid is not None
            and w.timed_out is None and w.over_limit is None
        ]  # fmt: skip
        for slot, size in self.memory.sample(time.monotonic(), busy):
            w, index = self.workers[slot], self.current[slot]
            if index >= 0:
                w.over_limit = (index, size)
                kill_tree(w.process.pid)  # type: ignore[arg-type]  # sampled: it has one

    def _dispatch(self, todo: Todo) -> None:
        fast = (
            self.sizer.seconds_per_item is not None
            and self.sizer.seconds_per_item < PREFETCH_BELOW_SECONDS
        )
        limit = 2 if fast else 1
        for w in self.workers.values():
            while (
                not w.quitting and not w.broken and len(w.chunks) < limit and todo and w.budget != 0
            ):
                size = self.sizer.next_size(len(todo))
                if w.budget is not None:
                    size = min(size, w.budget)
                chunk_id = next(self.chunk_ids)
                chunk = todo.take(size)  # whole keep-together groups: it may be larger
                if w.budget is not None:
                    w.budget = max(0, w.budget - len(chunk))
                # Recorded before sending: if the worker died meanwhile, its exit
                # puts these indices back in the queue.
                w.chunks[chunk_id] = Chunk(chunk)
                self._send(w, (chunk_id, chunk))
            if w.budget == 0 and not w.chunks and not w.quitting:
                self._retire(w)  # max_tasks_per_child reached: a fresh worker follows

    def _send(self, w: WorkerSlot, message: object) -> None:
        """Send to ``w``; a dead worker's broken pipe is left for its sentinel to report."""
        if w.broken:
            return
        try:
            w.conn.send(message)
        except (OSError, ValueError):
            w.broken = True

    def _retire(self, w: WorkerSlot) -> None:
        w.quitting = True
        self._send(w, None)

    def _receive(self, w: WorkerSlot) -> list[Event]:
        """Read every message waiting on ``w``'s pipe and decode it."""
        events: list[Event] = []
        try:
            while w.conn.poll():
                message = w.conn.recv_bytes()
                try:
                    loaded = pickle.loads(message)
                except (EOFError, pickle.UnpicklingError):
                    raise
                except Exception as exc:  # a value's own loading failed, here only
                    raise UsageError(
                        f"this process cannot load what process-pool worker {w.name} sent "
                        f"back: {type(exc).__name__}: {exc}; results must load where the run "
                        "is. What came back before is recorded (--resume runs the rest)"
                    ) from exc
                self._handle(w, loaded, events)
        except (EOFError, OSError, pickle.UnpicklingError):
            pass  # the worker died mid-message; its sentinel reports the rest
        return events

    def _handle(self, w: WorkerSlot, message: tuple[Any, ...], events: list[Event]) -> None:
        kind = message[0]
        if kind == "hook":
            w.stage = message[2]
            return
        if kind == "stale":
            w.stale = True
            return
        if kind == "ended":
            w.ended = True
            if message[1] is not None:
                self.teardown_problems.append(f"{w.name}: {message[1]}")
            return
        if kind == "over-limit":
            raise UsageError(below_the_floor(self.memory.limit or 0, message[1], w.name))
        if kind == "init-failed":
            error: ErrorInfo = message[1]
            raise UsageError(
                f"process-pool worker {w.name} could not start: {error.headline()}\n"
                f"{error.details() if error.traceback else ''}".rstrip()
            )
        _, rows, done, running = message
        indices = rows[0] if rows is not None else ()
        if rows is not None:
            count = columns.decode(
                rows, w.name, w.announced, events, self.report_starts, self.attempt
            )
            # A message holds rows of one chunk, the oldest one in flight.
            next(iter(w.chunks.values())).reported += count
            w.finished_items += count
            if w.announced is not None and w.announced in indices:
                w.announced = None
        if running is not None and running[0] != w.announced:
            index, started = running
            if index not in indices:
                w.announced = index
                w.last_start = TaskStart(index, w.name, started, self.attempt)
                if self.report_starts:
                    events.append(w.last_start)
        if done is not None:
            chunk_id, seconds = done
            chunk = w.chunks.pop(chunk_id)
            self.sizer.observe(chunk.reported, seconds)

    def _exited(self, w: WorkerSlot, todo: Todo, stopping: bool) -> Iterator[Event]:
        yield from self._receive(w)  # whatever it sent before it died
        w.process.join()
        forkserver = self.context.get_start_method() == "forkserver"
        orphaned = outlived_its_fork_server(w.process) if forkserver else None
        if orphaned:
            # The fork server died, not the worker: its sentinel closed. The worker's
            # item is innocent; stop the worker and run its items elsewhere.
            with contextlib.suppress(OSError):
                os.kill(orphaned, signal.SIGKILL)
            yield from self._receive(w)
        w.conn.close()
        del self.workers[w.slot]
        unreported = w.unreported()
        if w.stale:  # it ran none of them: a fresh worker takes its slot and its chunks
            todo.requeue(unreported)
            if not stopping and todo:
                self._start(w.slot)
            return
        if w.setup_overran and not orphaned:
            yield from self._setup_overran(w, unreported, todo)
            if not stopping and todo:
                self._start(w.slot)
            return
        running = self.current[w.slot] if not orphaned else worker.IDLE
        if not unreported and (w.quitting or stopping):
            if not stopping and todo:
                self._start(w.slot)  # max_tasks_per_child: a fresh worker takes the slot
            return
        # Items before the running one finished, but their records died with the
        # worker: they run again. Only the running item is to blame.
        crashed = running if running in unreported else None
        if crashed is not None and w.timed_out is not None and crashed != w.timed_out:
            crashed = None  # killed for an item that had just ended: the next one is innocent
        if crashed is not None and w.over_limit is not None and crashed != w.over_limit[0]:
            crashed = None  # the same, for the memory limit
        if crashed is not None:
            unreported.remove(crashed)
            yield crash_outcome(w, crashed, self.attempt, self.limits.item, self.memory)
        elif w.finished_items == 0 and w.timed_out is None and not orphaned:
            self.start_failures += 1
            if self.start_failures >= MAX_START_FAILURES:
                raise UsageError(
                    f"process-pool workers keep dying before running any item "
                    f"({describe_exit(w.process.exitcode)}). Check the initializer "
                    f"({name_of(self.initializer)}), and that the pipeline's modules import "
                    "cleanly in a new process"
                )
        todo.requeue(unreported)
        if not stopping and todo:
            self._start(w.slot)

    def _setup_overran(self, w: WorkerSlot, unreported: list[int], todo: Todo) -> list[Outcome]:
        """The chunk ``w`` was to run fails ``SetupTimeout``; its other chunks go back."""
        assert self.limits.setup is not None
        first = next(iter(w.chunks.values()), None)
        failed = [] if first is None else first.indices[first.reported :]
        todo.requeue(unreported[len(failed) :])
        fate = f"its process (pid {w.process.pid}) was killed and replaced"
        return setup_timed_out(failed, w.stage, self.limits.setup, w.name, fate, self.attempt)

    def _hard_stop(self) -> Iterator[Event]:
        """Collect what finished, stop every worker now, and report running items.

        Workers see the flag within one flush interval, send their finished
        records and exit, even while an item runs; the ones that do not
        (stuck in C code) are killed after :data:`GRACE_SECONDS`.
        """
        self.stop[0] = worker.HARD_STOP
        deadline = time.monotonic() + GRACE_SECONDS
        while self.workers:
            left = deadline - time.monotonic()
            waitables: list[Any] = []
            for w in self.workers.values():
                waitables += [w.conn, w.process.sentinel]
            ready = set(wait(waitables, max(0.0, left)))
            for w in list(self.workers.values()):
                if w.conn in ready:
                    yield from self._receive(w)
                if w.process.sentinel in ready or left <= 0:
                    yield from self._reap(w)

    def _reap(self, w: WorkerSlot) -> Iterator[Event]:
        """Kill ``w`` if needed, read its last records, report its running item interrupted."""
        if w.process.is_alive():
            _kill(w)
        w.process.join()
        yield from self._receive(w)
        w.conn.close()
        del self.workers[w.slot]
        running = self.current[w.slot]
        if running != worker.IDLE and running in w.unreported():
            yield Outcome.interrupted(running, self.since[w.slot], w.name, self.attempt)


def _kill(w: WorkerSlot) -> None:
    """``SIGKILL`` worker ``w`` and the processes its item started (they would outlive it)."""
    if w.process.pid is not None:
        kill_tree(w.process.pid)
