"""The worker process: receives the work once, then runs chunks of indices.

Everything here runs in the child process. The parent talks to each worker
over its own pipe (no shared queue, so a worker killed mid-write cannot
deadlock the others) and sees, through shared memory, which index each worker
is running, so a crash blames exactly that item.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

from curator import ErrorInfo, Work, WorkerInfo, tie_to_run
from curator.backends import columns
from curator.backends.lifecycle import Announce
from curator.backends.spawning import World, adopt_world
from curator_backend_process_pool.environment import THREAD_VARIABLES
from curator_backend_process_pool.memory import over_before_any_item
from curator_backend_process_pool.shared import SharedBlock

FLUSH_SECONDS = 0.05
"""How often records reach the parent while a chunk runs."""

IDLE = -1
SETTING_UP = -2
"""In ``current[slot]``: the worker's stages are in ``setup(worker)`` (since ``since[slot]``)."""

STOP = 1
"""Value of the shared stop flag: finish the running item, start no other."""
HARD_STOP = 2
"""Value of the shared stop flag: send what finished and exit now (the parent kills stragglers)."""


class Outbox:
    """Buffers records and sends them at chunk ends and every :data:`FLUSH_SECONDS`.

    A background thread flushes on a timer and reports the item running at
    that moment, so the parent learns of long items at once, while fast items
    cost one message per batch instead of two per item. The worker's loop only
    appends to the :class:`~curator.backends.columns.Batch` columns
    (each append atomic), so the hot path takes no lock; ``send_lock`` keeps
    the two senders' messages in order. The running item is read from the
    shared memory the parent watches for crashes, not kept twice.
    """

    def __init__(self, conn: Connection, stop: Any, slot: int, current: Any, since: Any) -> None:
        self.conn = conn
        self.stop = stop
        self.slot = slot
        self.current = current
        self.since = since
        self.batch = columns.Batch()
        self.sent = 0  # rows of ``batch`` already sent
        self.reported_running: tuple[int, float] | None = None
        self.send_lock = threading.Lock()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._flush_periodically, daemon=True)
        self.thread.start()

    def flush(self, done: tuple[int, float] | None = None) -> None:
        """Send new rows, the running item, and ``done`` (a finished chunk's id and seconds).

        The running item is read before the rows are counted: the worker marks
        itself idle before appending the item's row, so an item reported as
        running is either finished in this same message or later, never earlier.
        """
        with self.send_lock:
            index = self.current[self.slot]
            running = (index, self.since[self.slot]) if index >= 0 else None
            batch = self.batch
            end = len(batch)
            rows = batch.rows(self.sent, end) if end > self.sent else None
            self.sent = end
            if done is not None:
                # Only the worker's own thread passes ``done``: nothing is appended meanwhile.
                batch.clear()
                self.sent = 0
            if running is not None and running == self.reported_running and rows is None:
                running = None  # already announced; nothing new to say about it
            if rows is not None or done is not None or running is not None:
                self.conn.send_bytes(
                    columns.pickled(("batch", rows, done, running), ForkingPickler.dumps)
                )
                if running is not None:
                    self.reported_running = running

    def _flush_periodically(self) -> None:
        while not self.closed.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except (OSError, ValueError):  # the parent went away
                return
            if self.stop[0] == HARD_STOP:
                # Whatever finished is now with the parent; the running item (if
                # any) is abandoned, whether or not the main thread can be reached.
                os._exit(0)

    def announce(self, hook: str, stage: str) -> None:
        """Tell the parent which stage's ``setup``/``teardown`` runs now (it names overruns)."""
        with self.send_lock:
            self.conn.send(("hook", hook, stage))

    def close(self) -> None:
        """Stop the flusher thread."""
        self.closed.set()
        self.thread.join()


def main(
    slot: int,
    conn: Connection,
    world: World,
    setup_bytes: bytes,
    shared: SharedBlock,
    parent: int,
    jobs: int,
    worker_env: dict[str, str],
    thread_cap: int | None,
    memory_limit: int | None = None,
) -> None:
    """Run in the worker process until the parent sends ``None`` or goes away.

    Parameters
    ----------
    slot
        The worker's slot; its id is ``process-<slot>``.
    conn
        This worker's end of its pipe to the parent. It brings
        ``("work", world, work_bytes)`` for each run (the pickled
        :class:`curator.Work` and the run's world), then chunks
        ``(chunk_id, indices)`` of that run, and ``("end",)`` when the run
        is over (the stages are torn down, and ``("ended", problem)`` goes
        back); ``None`` ends the worker (after the same teardown).
    world
        The environment variables, import path and working directory to take
        over before anything is unpickled (a fork server's are stale).
    setup_bytes
        The pickled ``(initializer, initargs)``: called once before any item,
        like ``ProcessPoolExecutor``'s; with ``worker=`` (a
        :class:`curator.WorkerInfo`) when it takes that keyword.
    shared
        The memory shared with the parent: ``current[slot]`` is the index
        running now, or -1; ``since[slot]`` when that item started (wall
        clock); ``stop[0]``: :data:`STOP` finishes the current item and skips
        the rest, :data:`HARD_STOP` sends what finished and exits at once.
    parent
        The run's process id: the worker exits when that process is gone.
    jobs
        How many workers the pool has (for :class:`curator.WorkerInfo`).
    worker_env
        ``NAME: TEMPLATE`` to set in this worker, formatted with its
        :class:`curator.WorkerInfo` (``CUDA_VISIBLE_DEVICES={slot}``).
    thread_cap
        Threads for the numerical libraries' pools, set where the run's
        environment leaves the variable unset; ``None`` leaves them alone.
    memory_limit
        The pool's memory limit: a worker over it before its first item says
        so (``("over-limit", rss)``) and exits instead of running items.
    """
    tie_to_run(parent)  # deaf to the terminal's Ctrl-C; gone when the run is
    current, since, stop = shared.current, shared.since, shared.stop
    info = WorkerInfo(slot, "process-pool", jobs)
    own_env = {
        name: template.format(
            slot=info.slot, jobs=info.jobs, pid=info.pid, host=info.host, backend=info.backend
        )
        for name, template in worker_env.items()
    }
    try:
        adopt_world(world)
        _adopt_own_env(own_env, thread_cap)
        initializer, initargs = pickle.loads(setup_bytes)
        if initializer is not None:
            if _takes_worker(initializer):
                initializer(*initargs, worker=info)
            else:
                initializer(*initargs)
    except BaseException as exc:
        conn.send(("init-failed", ErrorInfo.from_exception(exc)))
        return
    modules = ModuleFiles()
    modules.note()
    outbox = Outbox(conn, stop, slot, current, since)
    work: Work | None = None
    first_item = True
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            if message is None or message[0] == "end":
                if work is not None:
                    conn.send(("ended", _torn_down(work, outbox.announce)))
                if message is None:
                    return
                continue
            if message[0] == "work":
                _, world, work_bytes = message
                if work is not None:
                    _torn_down(work)  # not ended by the parent: a run that stopped early
                    work = None
                adopt_world(world)
                _adopt_own_env(own_env, thread_cap)
                if modules.changed():
                    conn.send(("stale",))
                    return
                try:
                    work = pickle.loads(work_bytes)
                except BaseException as exc:
                    conn.send(("init-failed", ErrorInfo.from_exception(exc)))
                    return
                modules.note()
                continue
            assert work is not None
            if not work.is_set_up:  # before this worker's first item of the run; once
                # The parent watches the setup's time as it watches an item's.
                since[slot] = time.time()
                current[slot] = SETTING_UP
                try:
                    work.setup(info, outbox.announce)
                except BaseException as exc:
                    conn.send(("init-failed", ErrorInfo.from_exception(exc)))
                    return
                finally:
                    current[slot] = IDLE
            if first_item:
                first_item = False
                held = over_before_any_item(memory_limit)
                if held is not None:
                    conn.send(("over-limit", held))
                    return
            chunk_id, indices = message
            chunk_started = time.perf_counter()
            batch = outbox.batch
            add_index, add_start = batch.indices.append, batch.started.append
            add_finish, add_value = batch.finished.append, batch.values.append
            failed = batch.failed
            run_index = work.run_index
            batch.width = work.metric_width
            measures = batch.width > 0
            add_metrics, add_measured = batch.metrics.extend, batch.measured.append
            unmeasured = work.meter.nothing if work.meter is not None else None
            # An item starts when the one before it ended: one clock read per item, not two.
            started = time.time()
            with work.in_a_row():  # nothing but items write from this thread
                for index in indices:
                    if stop[0]:
                        break
                    since[slot] = started
                    current[slot] = index
                    ok, payload, finished = run_index(index, started)
                    # Idle before the row is in: a death now leaves the item
                    # unreported (it runs again), never blamed for a crash it did not cause.
                    current[slot] = IDLE
                    add_index(index)
                    add_start(started)
                    add_finish(finished)
                    if measures and work.measured is not unmeasured:  # quick items are sampled
                        add_measured(len(batch.values))
                        add_metrics(work.measured)  # type: ignore[arg-type]
                    if work.captured is not None:
                        batch.captured.append((len(batch.values), work.captured))
                    if work.extras is not None:
                        batch.extras.append((len(batch.values), work.extras))
                    if not ok:
                        failed.append(len(batch.values))
                    add_value(payload)  # last: the row is complete for the flusher
                    started = finished
            outbox.flush(done=(chunk_id, time.perf_counter() - chunk_started))
            modules.note()  # what the items imported: cheap when they imported nothing
    except (OSError, ValueError):  # the parent closed the pipe: nothing left to report to
        return
    finally:
        outbox.close()


def _adopt_own_env(own_env: dict[str, str], thread_cap: int | None) -> None:
    """Set this worker's own variables over the run's environment, then cap thread pools.

    Called after each run's environment is taken over, before anything of the
    run is unpickled (numerical libraries read these when they load).
    """
    os.environ.update(own_env)
    if thread_cap is not None:
        for name in THREAD_VARIABLES:
            os.environ.setdefault(name, str(thread_cap))


def _takes_worker(initializer: Any) -> bool:
    """Whether ``initializer`` accepts a ``worker=`` keyword."""
    import inspect  # here: only workers with an initializer need it, and it costs a start 4 ms

    try:
        parameters = inspect.signature(initializer).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        (p.name == "worker" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        or p.kind is p.VAR_KEYWORD
        for p in parameters
    )


def _torn_down(work: Work, announce: Announce | None = None) -> str | None:
    """Tear the work's stages down; what went wrong, in words, or ``None``."""
    try:
        work.teardown(announce)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


STDLIB = os.path.dirname(os.__file__) + os.sep
"""The standard library's folder (where ``os`` lives; ``sysconfig`` would cost a worker 1 ms)."""


class ModuleFiles:
    """The files of the modules this worker imported, and when each was last changed.

    A worker kept for another run must not run it with code older than what
    is on disk: a notebook edits a module between two runs and expects the
    edit in the second, as a fresh worker would have it.
    """

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.modules = 0

    def note(self) -> None:
        """Remember the modification time of every module file imported so far.

        The standard library is left out: it does not change under a running
        notebook, and leaving it out keeps the check to the user's modules.
        """
        if len(sys.modules) == self.modules:
            return
        self.modules = len(sys.modules)
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and path not in self.seen and not path.startswith(STDLIB):
                with contextlib.suppress(OSError):
                    self.seen[path] = os.stat(path).st_mtime

    def changed(self) -> bool:
        """Whether any remembered module file changed (or vanished) since :meth:`note`."""
        for path, mtime in self.seen.items():
            try:
                if os.stat(path).st_mtime != mtime:
                    return True
            except OSError:
                return True
        return False
