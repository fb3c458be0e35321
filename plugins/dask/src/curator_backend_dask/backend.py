"""The ``dask`` backend: chunks of indices as futures on a distributed cluster.

The pipeline reaches the cluster once (scattered to every worker); each task
carries only a chunk of indices. At most two chunks per worker are in flight,
chunks are sized from measured item times, and outcomes stream back as chunks
complete. A cluster curator did not start is never shut down: on cancel its
pending futures are cancelled and it is left running and clean.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from curator import (
    Backend,
    Capabilities,
    ErrorInfo,
    Event,
    Outcome,
    Status,
    TaskStart,
    UsageError,
    Work,
    option,
)
from curator.dispatch import ChunkSizer, Grouped, Todo
from curator.lifecycle import teardown_abandoned
from curator.spawning import main_module_stays_home

TARGET_CHUNK_SECONDS = 0.2
"""A Dask task costs about a millisecond; chunks of this length make that negligible."""
MAX_CHUNK = 10_000
"""Upper bound on adaptive chunks."""
STOP_SECONDS = 10.0
"""How long the end of a run waits for the workers to hear that it stops."""
TEARDOWN_FATE = "Dask cannot stop a thread: it was left to finish in the background"


@dataclass(frozen=True)
class DaskOptions:
    """Options of the ``dask`` backend."""

    address: str | None = option(
        None, help="scheduler of an existing cluster, e.g. tcp://127.0.0.1:8786"
    )
    scheduler_file: str | None = option(
        None, help="scheduler file of an existing cluster (dask-jobqueue, dask scheduler)"
    )
    chunksize: int | None = option(None, help="indices per task (default: adaptive)")

    def __post_init__(self) -> None:
        if self.address and self.scheduler_file:
            raise ValueError("give address or scheduler_file, not both")
        if self.chunksize is not None and self.chunksize < 1:
            raise ValueError("chunksize must be at least 1")


class DaskBackend(Backend):
    """Run items on a Dask cluster: an existing one, or a LocalCluster of ``jobs`` processes."""

    name = "dask"
    description = "A Dask distributed cluster: local by default, or an existing scheduler."
    requires = ("dask", "distributed")
    # A lost worker fails its task; the chunk's items are then retried one by one so
    # that only the culprit is reported crashed. Dask does not tell how the worker
    # process ended, so the kit's crash check (which wants the exit code) does not apply.
    capabilities = Capabilities(
        parallel=True,
        needs_picklable_work=True,
        cancel_running=True,
        keeps_groups=True,
        worker_lifecycle=True,
        lifecycle_timeouts=True,
    )
    Options = DaskOptions

    def __init__(self, options: Any, jobs: int) -> None:
        super().__init__(options, jobs)
        self._dispatch: _Dispatch | None = None

    def request_stop(self) -> None:
        """Dispatch nothing new, and tell the workers to start no further item of the run.

        Items already running finish (Dask cannot interrupt them); chunks
        waiting on the workers come back without running.
        """
        super().request_stop()
        dispatch = self._dispatch
        if dispatch is not None:
            dispatch.stop_workers()

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        """Connect (or start a LocalCluster), scatter the work, stream chunk outcomes.

        Workers of a LocalCluster never import the user's main module (the
        work reaches them by value, through Dask's cloudpickle), so a script
        needs no ``if __name__ == "__main__":`` guard.
        """
        # Dask's nanny starts (and restarts) worker processes from a thread of its own.
        with main_module_stays_home():
            yield from self._execute(work, indices)

    def _execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        import dask
        from distributed import Client, LocalCluster

        options: DaskOptions = self.options
        cluster = None
        if options.address or options.scheduler_file:
            client = _connect(Client, options)
        else:
            # A death should fail the task at once: the run loop decides about retries.
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                cluster = LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=self.jobs,
                    threads_per_worker=1,
                    processes=True,
                    # Not None: the scheduler's HTTP server would still take port 8787
                    # (and warn when a notebook's cluster or another run holds it).
                    dashboard_address=":0",
                    # Its dask_setup makes the workers ignore a terminal's Ctrl-C.
                    preload=["curator_backend_dask.tasks"],
                )
                client = Client(cluster)  # type: ignore[no-untyped-call]
        try:
            self._dispatch = _Dispatch(self, client, work, indices)
            if self.stop_requested:  # asked while the cluster started
                return
            yield from self._dispatch.run()
        finally:
            self._dispatch = None
            client.close()
            if cluster is not None:
                cluster.close()


def _connect(client_cls: Any, options: DaskOptions) -> Any:
    try:
        if options.scheduler_file:
            return client_cls(scheduler_file=options.scheduler_file, timeout="10s")
        return client_cls(options.address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        where = options.address or options.scheduler_file
        raise UsageError(f"cannot reach the Dask scheduler at {where}: {exc}") from None


class _Dispatch:
    """One run on a connected client: bounded chunks in flight, results as they complete."""

    def __init__(
        self, backend: DaskBackend, client: Any, work: Work, indices: Sequence[int]
    ) -> None:
        self.backend = backend
        self.client = client
        self.work = work
        self.todo = Todo(indices)  # whole keep-together groups per chunk
        self.grouped = isinstance(indices, Grouped)
        self.end_at_failure = backend.failure_budget is not None and not self.grouped
        """Chunks end at their first failure, so the core sees it at once and can stop
        close to its budget (a group's rest must stay on its worker: not for groups)."""
        self.retry_singly: list[int] = []
        self.in_quarantine: set[int] = set()
        """Items of a crashed chunk, run one by one."""
        self.topic = f"curator-chunks-{uuid.uuid4().hex}"
        """Names the run on the scheduler (its tasks' log) and on the workers."""
        self.work_future: Any = None
        """The work scattered to the workers (scattered again if its last copy is lost)."""
        self.tokens = itertools.count()
        self.stopper: threading.Thread | None = None
        """Tells the workers that the run stops (see :meth:`stop_workers`)."""
        self.workers = max(1, len(client.scheduler_info().get("workers", {})) or backend.jobs)
        self.sizer = ChunkSizer(
            self.workers,
            fixed=backend.options.chunksize,
            target_seconds=TARGET_CHUNK_SECONDS,
            max_chunk=MAX_CHUNK,
        )

    def _next_chunk(self) -> list[int]:
        if self.retry_singly:
            return [self.retry_singly.pop()]
        return self.todo.take(self.sizer.next_size(len(self.todo)))

    def _may_submit(self, chunks: dict[Any, tuple[list[int], int]]) -> bool:
        if self.backend.stop_requested or len(chunks) >= 2 * self.workers:
            return False
        if self.retry_singly:
            # A crashed chunk's items, one by one to find the culprit; in a grouped
            # run one at a time, so no two items of a group ever run at once.
            running = {chunk[0] for chunk, _ in chunks.values()}
            return not (self.grouped and self.in_quarantine & running)
        return bool(self.todo)

    def run(self) -> Iterator[Event]:
        from distributed import as_completed

        from curator_backend_dask.tasks import run_chunk

        client = self.client
        self._scatter()
        slots = {
            address: slot
            for slot, address in enumerate(sorted(client.scheduler_info().get("workers", {})))
        }
        jobs = max(len(slots), self.workers)
        chunks: dict[Any, tuple[list[int], int]] = {}
        pending = as_completed()  # type: ignore[no-untyped-call]
        finished = False
        try:
            while True:
                while self._may_submit(chunks):
                    chunk = self._next_chunk()
                    token = next(self.tokens)
                    future = client.submit(
                        run_chunk, self.work_future, chunk, self.topic, token, slots, jobs,
                        self.backend.setup_timeout, self.end_at_failure, pure=False,
                    )  # fmt: skip
                    chunks[future] = (chunk, token)
                    pending.add(future)  # type: ignore[no-untyped-call]
                if not chunks:
                    break
                future = next(pending)
                yield from self._collect(future, *chunks.pop(future))
            finished = True
            self._tear_down()
        except KeyboardInterrupt:
            # A hard stop: hand over the chunks that finished meanwhile, then stop.
            for future, (chunk, token) in list(chunks.items()):
                if future.status == "finished":
                    del chunks[future]
                    yield from self._collect(future, chunk, token)
            raise
        finally:
            if not finished and chunks:
                client.cancel(list(chunks))
            client.cancel([self.work_future])
            if self.stopper is not None:
                self.stopper.join(timeout=STOP_SECONDS)

    def stop_workers(self) -> None:
        """Let the workers start no further item of this run; returns at once, from any thread.

        Called from a signal handler too, so the message goes from a thread
        of its own.
        """
        if self.stopper is None:
            self.stopper = threading.Thread(
                target=self._broadcast_stop, name="curator-dask-stop", daemon=True
            )
            self.stopper.start()

    def _broadcast_stop(self) -> None:
        from curator_backend_dask.tasks import stop

        # Best effort: the cluster may be going away; the dispatch stops submitting anyway.
        with contextlib.suppress(Exception):
            self.client.run(stop, topic=self.topic)

    def _scatter(self) -> None:
        """Put the work on the workers, under a key of its own.

        hash=False: never shared with an equal work of an earlier run that is
        being released (its copies hold that run's set-up stages).
        """
        self.work_future = self.client.scatter(self.work, broadcast=True, hash=False)

    def _collect(self, future: Any, chunk: list[int], token: int) -> Iterator[Event]:
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError

        started = time.time()
        try:
            outcomes: list[Outcome] = future.result()
        except KilledWorker as exc:
            yield from self._lost(chunk, token, started, exc)
            return
        except FutureCancelledError as exc:
            # Dask forgets a task whose input is gone: the last copy of the work
            # died with a worker (the active memory manager keeps one copy of
            # what no queued task needs). Scatter it again; the chunk is judged
            # as if its worker had died.
            if self.work_future.status != "finished":
                self._scatter()
            yield from self._lost(chunk, token, started, exc)
            return
        self.sizer.observe(len(outcomes), sum(o.finished - o.started for o in outcomes))
        if len(outcomes) < len(chunk) and not self.backend.stop_requested:
            self.todo.requeue(chunk[len(outcomes) :])  # it ended at a failure
        for outcome in outcomes:
            if self.backend.wants_starts:
                yield TaskStart.of(outcome)
            yield outcome

    def _lost(
        self, chunk: list[int], token: int, started: float, exc: BaseException
    ) -> Iterator[Outcome]:
        """A chunk whose result is gone with a worker: run it again, or find its culprit."""
        if not self._died_running(token):
            # It waited in the dead worker's queue, finished before the worker died,
            # or ran on a live worker when the work was lost: innocent, so it runs
            # again, next, without using a retry.
            self.todo.requeue(chunk)
            return
        if len(chunk) > 1:
            # Quarantine: run the chunk's items one by one to find the culprit.
            self.retry_singly.extend(reversed(chunk))
            self.in_quarantine.update(chunk)
            return
        yield self._crashed(chunk[0], started, exc)

    def _tear_down(self) -> None:
        """Each worker tears its copy of the work down; a ``teardown()`` that raised is an error.

        One past its limit is abandoned (it goes on in its thread) with a warning.
        """
        from curator_backend_dask.tasks import tear_down

        limit = self.backend.teardown_timeout
        answers = self.client.run(tear_down, topic=self.topic, limit=limit)
        problems = []
        for address, answer in sorted(answers.items()):
            if answer is None:
                continue
            kind, what = answer
            if kind == "abandoned" and limit is not None:
                teardown_abandoned(what, limit, f"dask {address}", TEARDOWN_FATE)
            else:
                problems.append(f"{address}: {what}")
        if problems:
            raise UsageError("a stage's teardown() failed on " + "; ".join(sorted(problems)))

    def _died_running(self, token: int) -> bool:
        """Whether the chunk of ``token`` was running on a worker that is gone now.

        Its task logged when it began, and where, and when it was done (see
        :func:`curator_backend_dask.tasks.run_chunk`).
        """
        began: set[str] = set()
        for _, message in self.client.get_events(self.topic):
            if message.get("token") != token:
                continue
            if message.get("done"):
                return False
            began.add(message["worker"])
        if not began:
            return False
        alive = self.client.scheduler_info(n_workers=-1).get("workers", {})
        return bool(began - set(alive))

    def _crashed(self, index: int, started: float, exc: BaseException) -> Outcome:
        # Dask reports a lost worker, not how its process ended: no exit code here.
        error = ErrorInfo(
            type="WorkerCrash", message=f"the Dask worker running item {index} died ({exc})"
        )
        now = time.time()
        return Outcome(
            index, Status.CRASHED, error=error, worker="dask", started=started, finished=now,
            attempt=self.work.attempt,
        )  # fmt: skip
