"""The ``process-pool`` backend: options, pickling check, and the run."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from curator import Backend, Capabilities, Event, Work, option
from curator.backends.shipping import pickle_work
from curator_backend_process_pool.environment import parse_worker_env
from curator_backend_process_pool.memory import parse_size

if TYPE_CHECKING:
    from curator_backend_process_pool.pool import Pool

StartMethod = Literal["spawn", "forkserver", "fork"]

FORKSERVER_PRELOAD = ["curator_backend_process_pool.preload"]
"""What the fork server imports once, so every worker forks with it loaded.

Not ``__main__``: workers never import the user's main module (see
:mod:`curator.backends.spawning`); what the pipeline needs from it travels by value.
"""


def default_start_method() -> StartMethod:
    """``forkserver`` on Linux (safe with threads, fast to start), ``spawn`` elsewhere."""
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


@dataclass(frozen=True)
class ProcessPoolOptions:
    """Options of the ``process-pool`` backend."""

    start_method: StartMethod | None = option(
        None, help="how workers start: spawn, forkserver or fork (default: forkserver on Linux)"
    )
    chunksize: int | None = option(
        None, help="indices per chunk (default: adaptive, ~50 ms of work per chunk)"
    )
    max_tasks_per_child: int | None = option(
        None, help="replace a worker after it ran this many items (default: never)"
    )
    initializer: Callable[..., Any] | None = option(
        None, help="called once in each worker before any item (module:function)"
    )
    initargs: tuple[Any, ...] = option((), help="arguments for the initializer")
    worker_env: dict[str, str] | tuple[str, ...] | str = option(
        (),
        help="environment variables per worker, NAME=TEMPLATE with {slot}, {jobs}, {pid}, "
        "{host}, e.g. CUDA_VISIBLE_DEVICES={slot} (several: a tuple or a dict)",
    )
    memory_limit: int | str | None = option(
        None,
        help="memory (RSS) a worker may use, e.g. 2GiB: a worker over it is killed and its item "
        "fails with 'memory limit' (default: no limit)",
        flag="--memory-limit",
    )
    cap_threads: bool = option(
        True,
        help="cap BLAS/OpenMP threads in each worker to cpus // jobs (at least 1) "
        "unless the variable is set; false leaves them alone",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "worker_env", parse_worker_env(self.worker_env))
        if self.memory_limit is not None:
            object.__setattr__(self, "memory_limit", parse_size(self.memory_limit))
        if self.chunksize is not None and self.chunksize < 1:
            raise ValueError("chunksize must be at least 1")
        if self.max_tasks_per_child is not None and self.max_tasks_per_child < 1:
            raise ValueError("max_tasks_per_child must be at least 1")
        if self.start_method is not None and (
            self.start_method not in multiprocessing.get_all_start_methods()
        ):
            raise ValueError(f"start method {self.start_method!r} is not available here")


class ProcessPoolBackend(Backend):
    """Run items on ``jobs`` worker processes.

    The pipeline is pickled once, checked before any worker starts, and sent
    to each worker once. Indices go out in adaptive chunks with at most two
    chunks per worker in flight; outcomes stream back as they complete.
    """

    name = "process-pool"
    description = "Worker processes; the pipeline ships once per worker, work goes in chunks."
    capabilities = Capabilities(
        parallel=True,
        needs_picklable_work=True,
        timeouts=True,
        cancel_running=True,
        isolates_crashes=True,
        checks_results=True,
        keeps_groups=True,
        worker_lifecycle=True,
        lifecycle_timeouts=True,
    )
    Options = ProcessPoolOptions

    _pool: Pool | None = None

    def __init__(self, options: Any, jobs: int) -> None:
        super().__init__(options, jobs)
        self._shipped: dict[int, bytes] = {}
        """Work pickled by prepare(), by the id of the Work (execute gets the same object)."""

    def prepare(self, work: Work) -> None:
        """Pickle the work now: a pipeline that cannot be sent is named before the run starts.

        Nothing starts here: a run that runs no item (it selects none, or a
        resume skips them all) never calls :meth:`execute` and starts no
        worker. The fork server started with the run's checks
        (:meth:`start_early`, not called for a run that selects no index), or
        starts with the first workers.
        """
        self._shipped = {id(work): pickle_work(work, self.name)}

    def activity(self) -> Mapping[str, tuple[int, float]] | None:
        """What each worker runs now, from shared memory: no start events needed."""
        pool = self._pool
        return pool.activity() if pool is not None else {}

    def request_stop(self) -> None:
        """Stop dispatching, and tell the workers at once to start no other item."""
        super().request_stop()
        pool = self._pool
        if pool is not None:
            pool.stop_dispatching()

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event | list[Event]]:
        """Dispatch every index on the workers, starting them if none are left from before.

        Workers stay up after the run, for the retry rounds of the same run
        and the next runs of a :class:`curator.Session`, until :meth:`close`.
        A run that ends early (Ctrl-C, an error) stops them at once.
        """
        work_bytes = self._shipped.pop(id(work), None) or pickle_work(work, self.name)
        pool = self._pool if self._pool is not None else self._new_pool()
        self._pool = pool
        hard = True
        try:
            yield from pool.run(
                work_bytes,
                indices,
                stop_requested=lambda: self.stop_requested,
                report_starts=self.wants_starts,
                attempt=work.attempt,
                timeout=self.timeout,
                chunksize=self.options.chunksize,
                setup_timeout=self.setup_timeout,
                teardown_timeout=self.teardown_timeout,
            )
            hard = False
        finally:
            if hard:
                self._pool = None
                pool.shutdown(hard=True)

    def close(self) -> None:
        """Stop the workers kept between runs."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    @classmethod
    def start_early(cls, options: Any, jobs: int) -> None:
        """Start the fork server (when workers fork from one), without waiting for it.

        Its interpreter's start and imports are the longest part of a short
        run: they overlap the run's checks, its checkpoint's opening and its
        reporters' start. A fork server needs no stopping: it ends with this
        process, and the next run's workers fork from it.
        """
        if _context(options).get_start_method() == "forkserver":
            from multiprocessing import forkserver

            forkserver.ensure_running()

    def _new_pool(self) -> Pool:
        from curator_backend_process_pool.pool import Pool

        options: ProcessPoolOptions = self.options
        return Pool(
            _context(self.options),
            size=self.jobs,
            max_tasks_per_child=options.max_tasks_per_child,
            initializer=options.initializer,
            initargs=options.initargs,
            worker_env=dict(options.worker_env),  # type: ignore[arg-type]  # parsed
            thread_cap=max(1, (os.cpu_count() or 1) // self.jobs) if options.cap_threads else None,
            memory_limit=options.memory_limit,  # type: ignore[arg-type]  # parsed
        )


def _context(options: ProcessPoolOptions) -> multiprocessing.context.BaseContext:
    """The context of the start method ``options`` name (a fork server preloads curator)."""
    context = multiprocessing.get_context(options.start_method or default_start_method())
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(FORKSERVER_PRELOAD)
    return context
