"""The worker process: receives the work once, then runs chunks of indices.

Everything here runs in the child process. The parent talks to each worker
over its own pipe (no shared queue, so a worker killed mid-write cannot
deadlock the others) and sees, through shared memory, which index each worker
is running, so a crash blames exactly that item.
"""

from __future__ import annotations

import pickle
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from curator import ErrorInfo, Outcome, Work
from curator_backend_process_pool import wire

FLUSH_SECONDS = 0.05
"""How often records reach the parent while a chunk runs."""

IDLE = -1


class Outbox:
    """Buffers records and sends them at chunk ends and every :data:`FLUSH_SECONDS`.

    A background thread flushes the buffer on a timer, and announces the item
    that is running at that moment, so the parent learns of long items at once
    while fast items cost one message per batch rather than two per item.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.buffer: list[wire.Record] = []
        self.lock = threading.Lock()  # guards buffer and the running item
        self.send_lock = threading.Lock()  # keeps messages in order
        self.running: tuple[int, float] | None = None
        self.announced = False
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._flush_periodically, daemon=True)
        self.thread.start()

    def begin(self, index: int, started: float) -> None:
        """Note that ``index`` is running (announced by the next flush)."""
        with self.lock:
            self.running = (index, started)
            self.announced = False

    def end(self, outcome: Outcome) -> None:
        """Buffer the outcome of the running item."""
        with self.lock:
            self.buffer.append(wire.encode(outcome, self.announced))
            self.running = None

    def flush(self, done: tuple[int, float] | None = None) -> None:
        """Send what is buffered (and ``done``: a finished chunk's id and seconds)."""
        with self.send_lock:
            with self.lock:
                if self.running is not None and not self.announced:
                    self.buffer.append((wire.START, *self.running))
                    self.announced = True
                batch, self.buffer = self.buffer, []
            if batch or done is not None:
                self.conn.send(("batch", batch, done))

    def _flush_periodically(self) -> None:
        while not self.closed.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except (OSError, ValueError):  # the parent went away
                return

    def close(self) -> None:
        """Stop the flusher thread."""
        self.closed.set()
        self.thread.join()


def main(
    slot: int,
    conn: Connection,
    work_bytes: bytes,
    current: Any,
    stop: Any,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
) -> None:
    """Run in the worker process until the parent sends ``None`` or goes away.

    Parameters
    ----------
    slot
        The worker's slot; its id is ``process-<slot>``.
    conn
        This worker's end of its pipe to the parent.
    work_bytes
        The pickled :class:`curator.Work`, unpickled once here.
    current
        Shared array: ``current[slot]`` is the index running now, or -1.
    stop
        Shared flag: when set, finish the current item and skip the rest.
    initializer, initargs
        Called once before any item, like ``ProcessPoolExecutor``'s.
    """
    # Ctrl-C goes to the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if initializer is not None:
            initializer(*initargs)
        work: Work = pickle.loads(work_bytes)
    except BaseException as exc:
        conn.send(("init-failed", ErrorInfo.from_exception(exc)))
        return
    del work_bytes
    worker = f"process-{slot}"
    outbox = Outbox(conn)
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            if message is None:
                return
            chunk_id, indices = message
            chunk_started = time.perf_counter()
            for index in indices:
                if stop.value:
                    break
                current[slot] = index
                outbox.begin(index, time.time())
                outcome = work(index, worker)
                outbox.end(outcome)
                current[slot] = IDLE
            outbox.flush(done=(chunk_id, time.perf_counter() - chunk_started))
    except (OSError, ValueError):  # the parent closed the pipe: nothing left to report to
        return
    finally:
        outbox.close()
