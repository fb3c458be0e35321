"""The worker a batch job's supervisor forks: loads the work, runs the task's items.

It appends what finished (and the item it runs) to the task's records every
:data:`FLUSH_SECONDS` and at the end, and shares a page of memory with its
supervisor (:class:`Shared`), which watches it for time limits and blames
the item it was running should it die.
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import threading
import time

from curator.backends.batch import records
from curator.backends.batch.folder import KILL, RoundFolder, Settings
from curator.backends.batch.records import Kind

FLUSH_SECONDS = 0.05
"""How often a worker appends what finished (and the item it runs) to its task's records."""
IDLE = -1
SETTING_UP = -2
TEARING_DOWN = -3


class Shared:
    """The page a supervisor and its worker share.

    The item running (or :data:`SETTING_UP`, :data:`TEARING_DOWN`), the
    stop level, how many items the worker started, and since when it runs
    what it runs.
    """

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, 32)
        self.ints = memoryview(self._page)[:24].cast("q")  # running index, stop level, started
        self.since = memoryview(self._page)[24:32].cast("d")
        self.ints[0] = IDLE


def worker_process(
    folder: RoundFolder, settings: Settings, fd: int, shared: Shared, slot: int, todo: list[int]
) -> None:
    """The forked worker's whole life; never returns."""
    code = 1
    try:
        code = _Worker(folder, settings, fd, shared, slot).run(todo)
    except BaseException:
        import traceback

        traceback.print_exc()  # into the job's output, where the batch system keeps it
    finally:
        os._exit(code)


class _Worker:
    """The forked worker: loads the work and runs the items, appending what finished."""

    def __init__(
        self, folder: RoundFolder, settings: Settings, fd: int, shared: Shared, slot: int
    ) -> None:
        self.folder = folder
        self.settings = settings
        self.fd = fd
        self.shared = shared
        self.slot = slot
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def run(self, todo: list[int]) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, self.settings.leave_signal):
            if signum is not None:  # the supervisor decides what a signal to the job means
                signal.signal(signum, signal.SIG_IGN)
        _exit_with(os.getppid())
        from curator.backends.columns import Batch
        from curator.backends.lifecycle import WorkerInfo
        from curator.model.outcome import ErrorInfo

        ints, since = self.shared.ints, self.shared.since
        since[0] = time.time()
        ints[0] = SETTING_UP
        try:
            with open(self.folder.work_path, "rb") as file:
                work = pickle.loads(file.read())
            work.setup(WorkerInfo(self.slot, self.settings.backend, self.settings.jobs), self._hook)
        except BaseException as exc:  # the work does not load here, or a stage's setup failed
            records.append(self.fd, Kind.SETUP_FAILED, (ErrorInfo.from_exception(exc),))
            return 0
        ints[0] = IDLE
        self.batch = batch = Batch(work.metric_width)
        self.sent = 0
        self.reported: tuple[int, float] | None = None
        flusher = threading.Thread(target=self._flush_periodically, daemon=True)
        flusher.start()
        run_index = work.run_index
        measures = batch.width > 0
        unmeasured = work.meter.nothing if work.meter is not None else None
        started = time.time()
        with work.in_a_row():  # nothing but items write from this thread
            for index in todo:
                if ints[1]:
                    break
                since[0] = started
                ints[0] = index
                ints[2] += 1
                ok, payload, finished = run_index(index, started)
                # Idle before the row is in: a death now blames nobody, the item runs again.
                ints[0] = IDLE
                batch.indices.append(index)
                batch.started.append(started)
                batch.finished.append(finished)
                if measures and work.measured is not unmeasured:
                    batch.measured.append(len(batch.values))
                    batch.metrics.extend(work.measured)
                if work.captured is not None:
                    batch.captured.append((len(batch.values), work.captured))
                if work.extras is not None:
                    batch.extras.append((len(batch.values), work.extras))
                if not ok:
                    batch.failed.append(len(batch.values))
                batch.values.append(payload)  # last: the row is complete for the flusher
                started = finished
        self.closed.set()
        flusher.join()
        self.flush()
        if ints[1] >= KILL:
            return 0
        since[0] = time.time()
        ints[0] = TEARING_DOWN
        try:
            work.teardown(self._hook)
            problem = None
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        records.append(self.fd, Kind.END, (problem, False, None))
        return 0

    def _hook(self, hook: str, stage: str) -> None:
        with self.lock:
            records.append(self.fd, Kind.HOOK, (hook, stage))

    def flush(self) -> None:
        """Append the rows finished since the last flush, and the item running now."""
        from curator.backends.columns import pickled

        with self.lock:
            index = self.shared.ints[0]
            running = (index, self.shared.since[0]) if index >= 0 else None
            end = len(self.batch)
            rows = self.batch.rows(self.sent, end) if end > self.sent else None
            self.sent = end
            if running == self.reported and rows is None:
                return
            self.reported = running
            if rows is None:
                records.append(self.fd, Kind.ROWS, (None, running, None))
                return
            blob = pickled((rows,), lambda m: pickle.dumps(m, protocol=5), rows_at=0)
            records.append(self.fd, Kind.ROWS, (rows[0], running, blob))

    def _flush_periodically(self) -> None:
        while not self.closed.wait(FLUSH_SECONDS):
            self.flush()
            if self.shared.ints[1] >= KILL:
                os._exit(0)  # what finished is written; the running item is abandoned


def _exit_with(parent: int) -> None:
    """End this worker when its supervisor is gone (killed alone, say, by pid)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="curator-supervisor-watch", daemon=True).start()


PARENT_SECONDS = 0.2
"""How often a worker checks that its supervisor still runs."""
