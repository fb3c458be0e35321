"""A worker process's ties to the run: deaf to the terminal's Ctrl-C, gone when the run is.

A backend whose workers are processes of its own (a pool's, an executor's)
calls :func:`tie_to_run` in each worker as it starts (an executor's
``initializer``), and starts them inside :func:`starting_workers`, so that

- a Ctrl-C typed in the terminal, which the terminal sends to the whole process
  group, reaches only the run's process: the run decides what stops (the first
  Ctrl-C lets running items finish), instead of every running item ending
  ``failed`` with a ``KeyboardInterrupt``;
- the worker exits as soon as the run's process is gone, even by ``SIGKILL``,
  instead of running items nobody will collect.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Iterator

RUN_GONE_EXIT = 75
"""Exit code of a worker that outlived the run's process."""

POLL_SECONDS = 0.2
"""Where the system cannot notify a process's end, how often the worker looks."""


def tie_to_run(run_pid: int) -> None:
    """Make this process a worker of the run in process ``run_pid``.

    Ignores SIGINT and starts a daemon thread that ends this process (exit code
    :data:`RUN_GONE_EXIT`) the moment ``run_pid`` exits. Call it in the
    worker's main thread before its first item, with the run's process id
    taken in the run's process (``os.getpid()`` there)::

        ProcessPoolExecutor(jobs, initializer=curator.tie_to_run, initargs=(os.getpid(),))

    Neither the worker's parent process id nor a parent-death signal would do:
    a worker's parent is often not the run (a fork server, an executor's
    manager process). The thread works while the worker's main thread is busy
    in Python code, not in C code that never releases the GIL.

    Parameters
    ----------
    run_pid
        The process id of the run's process.

    Raises
    ------
    ValueError
        When called outside the worker's main thread (signal handlers are set there only).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # also drops one that came while blocked
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # see starting_workers
    threading.Thread(
        target=_exit_when_gone, args=(run_pid,), name="curator-run-watch", daemon=True
    ).start()


@contextlib.contextmanager
def starting_workers() -> Iterator[None]:
    """Block SIGINT in this thread while it starts worker processes; restore it after.

    A worker takes a Ctrl-C typed while it starts (its interpreter and
    imports, before :func:`tie_to_run` runs) and dies of it. A process, and a
    thread, inherit the signal mask of the thread that starts them, even
    across ``exec``: workers started here, or by a thread started here (an
    executor's manager, which also replaces workers), hold a Ctrl-C back until
    :func:`tie_to_run` drops it. The run's own process still takes it (the
    kernel gives it to a thread that does not block it). Keep the block to
    starting and submitting, never waiting for results.

    Code that unblocks SIGINT inside the block undoes it for what it starts
    after: Python's resource trackers do as they start (multiprocessing's,
    loky's). Start those before the block (their ``ensure_running()``).
    Workers forked by a server started outside the block (multiprocessing's
    ``forkserver``) have the server's mask, not this thread's.

    Yields
    ------
    None
        The block in which to start the workers.
    """
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _exit_when_gone(pid: int) -> None:
    try:
        handle: int | None = os.pidfd_open(pid)
    except ProcessLookupError:  # already gone
        os._exit(RUN_GONE_EXIT)
    except (AttributeError, OSError):  # no pidfd here (an old kernel, a sandbox): look now and then
        handle = None
    if handle is not None:
        select.select([handle], [], [])  # readable the moment the process exits
    else:
        while _exists(pid):
            time.sleep(POLL_SECONDS)
    os._exit(RUN_GONE_EXIT)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as somebody else's
        return True
    return True
