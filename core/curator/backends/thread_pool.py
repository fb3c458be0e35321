"""The ``thread-pool`` backend: worker threads, each with its own copy of the pipeline.

Filters and sinks are often stateful (counters, open files, caches) and not
thread-safe; the origin dropped its thread pool for that reason. Here every
worker thread gets a private deep copy of the pipeline, made in the parent
before any thread starts, so no two threads ever share a stage object. The
caller's pipeline is not touched, exactly as with a process pool. A pipeline
that is known to be thread-safe can be shared with ``copy_pipeline=False``.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from curator.backend import Backend, Capabilities
from curator.errors import UsageError
from curator.options import option
from curator.outcome import Event
from curator.work import Work

_DONE = object()


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
    """

    name = "thread-pool"
    description = "Worker threads in this process, one pipeline copy per thread (I/O-bound work)."
    capabilities = Capabilities(parallel=True)
    Options = ThreadPoolOptions

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        """Start the threads, stream their records, and join them when done or closed."""
        n_threads = min(self.jobs, len(indices))
        works = [self._copy(work) for _ in range(n_threads)]
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in indices:
            todo.put(index)
        records: queue.SimpleQueue[object] = queue.SimpleQueue()
        stop = self._stop
        threads = [
            threading.Thread(
                target=_worker,
                args=(works[slot], f"thread-{slot}", todo, records, stop),
                name=f"curator-thread-{slot}",
                daemon=True,
            )
            for slot in range(n_threads)
        ]
        for thread in threads:
            thread.start()
        try:
            running = n_threads
            while running:
                record = records.get()
                if record is _DONE:
                    running -= 1
                elif isinstance(record, BaseException):
                    raise record
                else:
                    yield record  # type: ignore[misc]
        finally:
            # Reached early only on a hard stop (close, Ctrl-C). Running items cannot
            # be interrupted: stop dispatch and wait for them.
            stop.set()
            for thread in threads:
                thread.join()

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


def _worker(
    work: Work,
    worker: str,
    todo: queue.SimpleQueue[int],
    records: queue.SimpleQueue[object],
    stop: threading.Event,
) -> None:
    try:
        while not stop.is_set():
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            records.put(work.start(index, worker))
            records.put(work(index, worker))
    except BaseException as exc:  # a KeyboardInterrupt or bug: hand it to the parent
        records.put(exc)
    finally:
        records.put(_DONE)
