"""One run on a connected Dask client: bounded chunks in flight, outcomes as they complete.

The work travels once, pickled by :func:`curator.backends.shipping.pickle_work` and
scattered to the workers; each task carries only a chunk of indices. A
worker's death is judged chunk by chunk (see :meth:`ChunkDispatch._lost`),
and a lost scheduler or a worker that cannot load the work ends the run with
an error that names it.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from curator import Event, Outcome, TaskStart, TeardownError, UsageError, Work
from curator.backends.dispatch import ChunkSizer, Grouped, Todo
from curator.backends.lifecycle import teardown_abandoned

if TYPE_CHECKING:
    from curator_backend_dask.backend import DaskBackend

TARGET_CHUNK_SECONDS = 0.2
"""A Dask task costs about a millisecond; chunks of this length make that negligible."""
MAX_CHUNK = 10_000
"""Upper bound on adaptive chunks."""
STOP_SECONDS = 10.0
"""How long the end of a run waits for the workers to hear that it stops."""
WORKERS_BACK_SECONDS = 120.0
"""How long a run waits mid-run for a worker to run again, when every worker died at once.

A LocalCluster's nannies start new ones; on a loaded machine that can take
longer than a client's timeout (30 s), which is how long one scatter waits.
"""
TEARDOWN_FATE = "Dask cannot stop a thread: it was left to finish in the background"


class SchedulerLost(ConnectionError):
    """The client lost its scheduler mid-run (the backend names it in a usage error)."""


class ChunkDispatch:
    """One run on a connected client: bounded chunks in flight, results as they complete."""

    def __init__(
        self,
        backend: DaskBackend,
        client: Any,
        work: Work,
        shipped: bytes,
        indices: Sequence[int],
    ) -> None:
        self.backend = backend
        self.client = client
        self.work = work
        self.shipped = shipped
        """The work as :func:`curator.backends.shipping.pickle_work` pickled it."""
        self.todo = Todo(indices)  # whole keep-together groups per chunk
        self.grouped = isinstance(indices, Grouped)
        self.end_at_failure = backend.failure_budget is not None and not self.grouped
        """Chunks end at their first failure, so the core sees it at once and can stop
        close to its budget (a group's rest must stay on its worker: not for groups)."""
        self.retry_singly: list[int] = []
        self.in_quarantine: set[int] = set()
        """Items of a crashed chunk, run one by one."""
        import uuid  # here, not at the top: every run imports this module to list the backend

        self.topic = f"curator-chunks-{uuid.uuid4().hex}"
        """Names the run on the scheduler (its tasks' log) and on the workers."""
        self.work_future: Any = None
        """The pickled work scattered to the workers (again if its last copy is lost)."""
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
        """Scatter the work, keep chunks in flight, yield outcomes; tear down at the end."""
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
            if client.status == "running":  # else nothing is left to cancel, and no one to ask
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

    def _scatter(self, wait: float = 0.0) -> None:
        """Put the pickled work on the workers, under a key of its own.

        hash=False: never shared with an equal work of an earlier run that is
        being released. Each worker loads it once per run (see
        :func:`curator_backend_dask.tasks.run_chunk`). One attempt waits the
        client's timeout for a running worker; with no worker after ``wait``
        seconds more, the run ends with an error that says so.
        """
        import asyncio  # here, not at the top: every run loads this module, few scatter

        deadline = time.monotonic() + wait
        while True:
            try:
                self.work_future = self.client.scatter(self.shipped, broadcast=True, hash=False)
                return
            # The scheduler's "No valid workers found": asyncio's TimeoutError, which
            # before Python 3.11 is not the builtin one.
            except (TimeoutError, asyncio.TimeoutError) as exc:
                if time.monotonic() < deadline and not self.backend.stop_requested:
                    continue
                kept = (
                    "; the outcomes that came back before are recorded (--resume runs the rest)"
                    if self.work_future is not None  # lost mid-run: all workers died at once
                    else ""
                )
                raise UsageError(
                    f"no Dask worker is running to take the pipeline ({exc}): start workers "
                    f"for the scheduler, or use curator's LocalCluster (no address){kept}"
                ) from None

    def _collect(self, future: Any, chunk: list[int], token: int) -> Iterator[Event]:
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError

        from curator_backend_dask.tasks import CannotLoadWork

        started = time.time()
        try:
            outcomes: list[Outcome] = future.result()
        except KilledWorker as exc:
            yield from self._lost(chunk, token, started, exc)
            return
        except CannotLoadWork as exc:
            raise UsageError(
                f"a Dask worker cannot load the pipeline ({exc}). The workers import the "
                "modules the pipeline uses: install them there (a pipeline file given to "
                "curator run travels whole, but not the modules it imports)"
            ) from None
        except FutureCancelledError as exc:
            if exc.reason == "scheduler-connection-lost":
                raise SchedulerLost(exc.msg or str(exc)) from None
            # Dask forgets a task whose input is gone: the last copy of the work
            # died with a worker (the active memory manager keeps one copy of
            # what no queued task needs). Scatter it again; the chunk is judged
            # as if its worker had died.
            if self.work_future.status != "finished":
                self._scatter(WORKERS_BACK_SECONDS)
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
            raise TeardownError("a stage's teardown() failed on " + "; ".join(sorted(problems)))

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
        message = f"the Dask worker running item {index} died ({exc})"
        return Outcome.crashed(index, message, "dask", started, self.work.attempt)
