"""How a worker ended, in words people can act on; and fork-server deaths told apart."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from curator import ErrorInfo, ErrorKind, Outcome, Status
from curator.backends.spawning import describe_exit
from curator.model.measures import format_bytes
from curator_backend_process_pool.memory import MemoryWatch
from curator_backend_process_pool.slots import WorkerSlot


def outlived_its_fork_server(process: BaseProcess) -> int | None:
    """The pid of a forkserver worker whose sentinel closed while it still runs, else ``None``.

    A forkserver worker's sentinel is a pipe from the fork server, which
    reports exit code 255 when the fork server itself dies.
    """
    pid = process.pid
    if process.exitcode != 255 or pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            alive = stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return None
    return pid if alive else None


def name_of(function: Callable[..., object] | None) -> str:
    """``module:function`` of an initializer, for messages."""
    if function is None:
        return "none given"
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', function)}"


def crash_outcome(
    w: WorkerSlot, index: int, attempt: int, timeout: float | None, memory: MemoryWatch
) -> Outcome:
    """The outcome of item ``index``, which was running when worker ``w`` died.

    ``timed_out`` when the pool killed it for the timeout, ``failed`` with a
    ``MemoryLimit`` error when it killed it for the memory limit, else
    ``crashed`` with the exit described (for a ``SIGKILL``, whether the
    kernel's OOM killer sent it; see :class:`~.memory.OomCounters`) and the
    worker's last known memory use.
    """
    now = time.time()
    start = w.last_start
    started = start.started if start is not None and start.index == index else now
    pid, exitcode = w.process.pid, w.process.exitcode
    status = Status.CRASHED
    if w.timed_out == index:
        status = Status.TIMED_OUT
        error = ErrorInfo(
            type=ErrorKind.TIMEOUT.value,
            message=f"item {index} ran longer than {timeout:g} s; its worker {w.name} "
            f"(pid {pid}) was killed and replaced",
            exit_code=exitcode,
        )
    elif w.over_limit is not None and w.over_limit[0] == index:
        status = Status.FAILED
        error = ErrorInfo(
            type=ErrorKind.MEMORY_LIMIT.value,
            message=f"memory limit: item {index} made its worker {w.name} (pid {pid}) use "
            f"{format_bytes(w.over_limit[1])} of memory (RSS of the worker and its child "
            f"processes), over the limit of {format_bytes(memory.limit or 0)} per worker; the "
            "worker was killed and replaced",
            exit_code=exitcode,
        )
    else:
        how = describe_exit(exitcode)
        if exitcode == -signal.SIGKILL:
            how += f" ({memory.counters.verdict()})"
        last = memory.last.get(w.slot)
        seen = f"; its last known memory use (RSS) was {format_bytes(last)}" if last else ""
        message = f"worker {w.name} (pid {pid}) {how} while running item {index}{seen}"
        return Outcome.crashed(index, message, w.name, started, attempt, exitcode)
    return Outcome(
        index, status, error=error, worker=w.name, started=started, finished=now, attempt=attempt
    )
