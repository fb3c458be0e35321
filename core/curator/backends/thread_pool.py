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
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from curator.backend import Backend, Capabilities
from curator.dispatch import units
from curator.errors import UsageError
from curator.lifecycle import WorkerInfo
from curator.options import option
from curator.outcome import Event, Outcome, TaskStart
from curator.work import Work

_DONE = object()
HARD_STOP_JOIN_SECONDS = 0.05


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
    capabilities = Capabilities(parallel=True, keeps_groups=True, worker_lifecycle=True)
    Options = ThreadPoolOptions

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        """Start the threads, stream their records, and join them when done or closed."""
        n_threads = min(self.jobs, len(indices))
        works = [self._copy(work) for _ in range(n_threads)]
        shared = works[0] is work  # copy_pipeline=false: one setup for every thread
        if shared:
            work.setup(WorkerInfo(0, self.name, self.jobs))
        todo = _Dispenser(units(indices))
        records: queue.SimpleQueue[object] = queue.SimpleQueue()
        stop = self._stop
        threads = [
            threading.Thread(
                target=_worker,
                args=(
                    works[slot],
                    None if shared else WorkerInfo(slot, self.name, self.jobs),
                    f"thread-{slot}",
                    todo,
                    records,
                    stop,
                ),
                name=f"curator-thread-{slot}",
                daemon=True,
            )
            for slot in range(n_threads)
        ]
        for thread in threads:
            thread.start()
        finished = False
        running: dict[int, TaskStart] = {}  # started, no outcome yet
        try:
            alive = n_threads
            while alive:
                record = records.get()
                if record is _DONE:
                    alive -= 1
                elif isinstance(record, BaseException):
                    raise record
                else:
                    if type(record) is TaskStart:
                        running[record.index] = record
                    else:
                        running.pop(record.index, None)  # type: ignore[attr-defined]
                    yield record  # type: ignore[misc]
            finished = True
        except KeyboardInterrupt:  # the core's hard stop (curator.errors.HardStop)
            # Threads cannot be killed: hand over what finished, and report the
            # items still running as interrupted (they are abandoned, see above).
            stop.set()
            yield from _finished_so_far(records, running)
            for start in running.values():
                yield work.interrupted(start.index, start.started, start.worker)
            raise
        finally:
            stop.set()
            # On a hard stop (closed early, a second Ctrl-C) do not wait for running
            # items: threads cannot be killed. They are daemons, so they end with the
            # process, and they take no new item.
            for thread in threads:
                thread.join(None if finished else HARD_STOP_JOIN_SECONDS)
            if shared:
                if finished:
                    work.teardown()
                else:
                    with contextlib.suppress(Exception):  # the run's own end matters more
                        work.teardown()

    def prepare(self, work: Work) -> None:
        """Refuse to share accumulating stages between threads (each needs its own copy)."""
        if work.accumulating and not self.options.copy_pipeline:
            names = ", ".join(type(stage).__qualname__ for stage in work.accumulating)
            raise UsageError(
                f"the stage {names} accumulates state (reset/state/merge), which threads "
                "cannot share: run it with copy_pipeline=true (the default), so each thread "
                "has its own copy and curator merges them"
            )

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


def _worker(
    work: Work,
    info: WorkerInfo | None,
    worker: str,
    todo: _Dispenser,
    records: queue.SimpleQueue[object],
    stop: threading.Event,
) -> None:
    """One thread's loop; ``info`` is set when it owns its copy (it sets up its stages)."""
    try:
        try:
            while not stop.is_set():
                unit = todo.next()
                if unit is None:
                    break
                if info is not None:
                    work.setup(info)  # before this thread's first item; once
                for index in unit:
                    if stop.is_set():
                        break
                    records.put(work.start(index, worker))
                    records.put(work(index, worker))
        except BaseException:
            if info is not None:
                with contextlib.suppress(Exception):  # what ended the thread matters more
                    work.teardown()
            raise
        if info is not None:
            work.teardown()  # after its last item (nothing if it ran none)
    except BaseException as exc:  # setup/teardown errors, or a bug: hand it to the parent
        records.put(exc)
    finally:
        records.put(_DONE)
